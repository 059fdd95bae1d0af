// What plot_command.cpp offers other commands besides `diffuse plot` and `diffuse animate`: the
// training-snapshot hook (reverse strips every N epochs). Orchestration only; drawing is in plot.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "diffuse/evaluate.h"
#include "diffuse/plot.h"
#include "options.h"

namespace diffuse::cli {

// A run_training hook that, every `every` epochs, samples n points from the current weights
// (recording the trajectory) and writes the reverse strip DIR/reverse_epoch_NNNN.png. Throws
// UsageError naming --snapshot-every / --snapshot-dir when every < 1 or dir is not a writable
// folder.
// "sigmoid schedule, T=100, β 0.0001..0.1" for figure titles (cosine: its offset s).
std::string schedule_title(const Schedule& s);
// The reverse strip: `panels` states spread over the trajectory, x_T and x_0 included.
// columns: the data's column names, for the axis labels (none when empty).
void reverse_strip(const std::string& out, const Trajectory& tr, int panels,
                   const std::string& figure_title, const std::vector<std::string>& columns = {});
// The forward strip: q(x_t | x_0) at `panels` steps from t = 0 to T-1, on shared axes.
void forward_strip(const std::string& out, const Points& x0, const Schedule& s, int panels,
                   uint64_t seed, const std::string& what,
                   const std::vector<std::string>& columns = {});
// Axis labels from the first two column names (none when there are fewer).
PlotStyle axis_labels(const std::vector<std::string>& columns);

// `plot compare`'s figure: 2-D data and samples side by side with the swd_ratio in the title, or
// for N-D (or given cols) a pairwise grid of cols (default: the 4 worst columns by W1 ratio).
void compare_figure(const std::string& out, const Points& samples, const Reference& ref,
                    const Evaluation& e, std::vector<int> cols = {});

// Writes DIR/reverse_epoch_NNNN.png (n samples' reverse strip) every `every` epochs and at the end,
// its axes labelled with `columns` (the data's column names) when given.
ExtraEpochHook reverse_snapshot_hook(const std::string& dir, int every, int n, uint64_t seed,
                                     int threads, const std::vector<std::string>& columns = {});

}  // namespace diffuse::cli
