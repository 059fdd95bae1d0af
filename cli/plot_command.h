// What plot_command.cpp offers other commands besides `diffuse plot` and `diffuse animate` (the
// demo's figures). Orchestration only; drawing is in plot.h, training snapshots in run.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/evaluate.h"
#include "diffuse/plot.h"
#include "options.h"

namespace diffuse::cli {

// "sigmoid schedule, T=100, β 0.0001..0.1" for figure titles (cosine: its offset s).
std::string schedule_title(const Schedule& s);
// The forward strip: q(x_t | x_0) at `panels` steps from t = 0 to T-1, on shared axes.
void forward_strip(const std::string& out, const Points& x0, const Schedule& s, int panels,
                   uint64_t seed, const std::string& what,
                   const std::vector<std::string>& columns = {});

// `plot compare`'s figure: 2-D data and samples side by side with the swd_ratio in the title, or
// for N-D (or given cols) a pairwise grid of cols (default: the 4 worst columns by W1 ratio).
// With sample_labels (and a labelled ref), the 2-D panels colour each point by its class, with
// a legend; the N-D grid keeps its data / samples colours.
void compare_figure(const std::string& out, const Points& samples, const Reference& ref,
                    const Evaluation& e, std::vector<int> cols = {},
                    const Labels* sample_labels = nullptr);

}  // namespace diffuse::cli
