// Samplers: turn noise x_T ~ N(0, I) into data with a noise predictor eps_theta(x_t, t).
// One generalized update covers DDPM (Ho et al. 2020, Alg. 2) and DDIM (Song et al. 2021, Eq. 12);
// DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) is the second-order multistep solver. The samplers
// only see an EpsFn, so they are tested with exact closed-form predictors apart from any network.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/model.h"
#include "diffuse/schedule.h"
#include "diffuse/tensor.h"

namespace diffuse {

enum class SamplerKind { kDdpm, kDdim, kDpmpp2m };
enum class VarianceKind { kPosterior, kBeta };

std::string to_string(SamplerKind k);
std::optional<SamplerKind> sampler_from_string(std::string_view name);
std::string to_string(VarianceKind k);
std::optional<VarianceKind> variance_from_string(std::string_view name);

// eps = eps_theta(x, t) for n columns at timestep t. x and eps are (D, n) column-major.
using EpsFn = std::function<void(const float* x, int t, int n, float* eps)>;

struct SampleConfig {
  SamplerKind sampler = SamplerKind::kDdpm;
  int nfe = 0;       // network evaluations; 0 means T (required to be T for DDPM)
  double eta = 0.0;  // DDIM: 0 deterministic, 1 ancestral-like
  VarianceKind variance =
      VarianceKind::kPosterior;  // DDPM noise std: sqrt(posterior var) or sqrt(beta)
  uint64_t seed = 0;
  int record_every = 0;  // > 0: record x after every k-th step (and x_T), for figures
};

// Recorded states: x[i] is the state at timestep label t[i] (T for the initial noise; after the
// step that evaluates the model at t, the state is labelled t; the final sample has label 0).
struct Trajectory {
  std::vector<int> t;
  std::vector<Points> x;
};

// Throws UsageError naming --nfe / --eta / --sampler when the configuration is invalid.
void validate(const SampleConfig& c, int T);

// The decreasing timesteps the sampler evaluates, ending at 0 ("trailing" spacing for nfe < T).
std::vector<int> sampling_timesteps(int T, int nfe);

// n samples of dimension D, (n, D).
Points sample(const EpsFn& eps_fn, const Schedule& schedule, int n, int D, const SampleConfig& c,
              Trajectory* trajectory = nullptr);

// An EpsFn over a model's parameters, chunked and spread over `threads` OpenMP threads.
// params must outlive the returned function.
EpsFn model_eps_fn(const ModelConfig& c, const std::vector<float>& params, int threads);

}  // namespace diffuse
