// Samplers: turn noise x_T ~ N(0, I) into data with a noise predictor eps_theta(x_t, t).
// One generalized update covers DDPM (Ho et al. 2020, Alg. 2) and DDIM (Song et al. 2021, Eq. 12);
// DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) is the second-order multistep solver. The samplers
// only see an EpsFn, so they are tested with exact closed-form predictors apart from any network.
// Conditioning is an argument, not a sampler: a ConditionalEpsFn takes each column's class label,
// which the samplers pass through untouched (k-diffusion's extra_args); classifier-free guidance
// is a wrapper of the predictor (denoiser.h's guided_eps_fn).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/data_range.h"
#include "diffuse/model.h"
#include "diffuse/schedule.h"
#include "diffuse/tensor.h"

namespace diffuse {

enum class SamplerKind { kDdpm, kDdim, kDpmpp2m };
enum class VarianceKind { kPosterior, kBeta };

std::string to_string(SamplerKind k);  // "ddpm", "ddim", "dpmpp2m"
std::optional<SamplerKind> sampler_from_string(std::string_view name);
std::vector<std::string> sampler_names();
// The sampler of that name, or unknown_name_error naming --sampler.
SamplerKind parse_sampler(std::string_view name);
std::string to_string(VarianceKind k);  // "posterior", "beta"
std::optional<VarianceKind> variance_from_string(std::string_view name);
std::vector<std::string> variance_names();
// The variance of that name, or unknown_name_error naming --variance.
VarianceKind parse_variance(std::string_view name);

// eps = eps_theta(x, t) for n columns at timestep t. x and eps are (D, n) column-major.
using EpsFn = std::function<void(const float* x, int t, int n, float* eps)>;
// eps = eps_theta(x, t, label) for n columns at timestep t: labels (n) is each column's class
// (model.h: 0..C-1, or the null class C), or null for the unconditional prediction.
using ConditionalEpsFn =
    std::function<void(const float* x, int t, int n, const int32_t* labels, float* eps)>;

// SampleConfig::label for "no one class": a conditional model's rows get their classes in the
// training proportions (run.h's sample_labels).
inline constexpr int kEveryClass = -1;

// SampleConfig::spacing for "the sampler's own spacing", sampler_spacing(sampler).
inline constexpr double kSamplerSpacing = 0.0;
// SampleConfig::spacing for steps even in log-SNR (log_snr_timesteps; `--spacing logsnr`).
inline constexpr double kLogSnrSpacing = -1.0;
// The spacing each sampler measured best with (docs/SAMPLERS.md, 3 training seeds, 8 built-in
// shapes): DPM-Solver++(2M) even in log-SNR (at 10 evaluations 1.11 on average against 1.32 for
// the power 1.5 and 1.43 for even steps; 8gaussians 1.05 against 1.81: its tight modes need the
// last evaluation at t = 9, not 31); DDIM 1, even "trailing" steps (first order, it needs the
// early steps fine); DDPM evaluates every timestep, where the spacing changes nothing.
double sampler_spacing(SamplerKind k);
// c.spacing, or sampler_spacing(c.sampler) when it is kSamplerSpacing.
double resolved_spacing(SamplerKind k, double spacing);
// "logsnr" for kLogSnrSpacing, "0 (the sampler's own)", or the power as a number: for messages.
std::string spacing_name(double spacing);
// The text --spacing takes for it ("logsnr", "0", "1.5"): spacing_from_string reads it back.
std::string spacing_text(double spacing);
// --spacing's text: "logsnr", or a number >= 0 (0 or a power); nullopt for anything else.
std::optional<double> spacing_from_string(const std::string& text);
// The spacing of that text (range-checked), or UsageError naming --spacing.
double parse_spacing(const std::string& text);

struct SampleConfig {
  SamplerKind sampler = SamplerKind::kDdpm;
  int nfe = 0;  // network evaluations; 0 means T (required to be T for DDPM)
  // Where the nfe < T evaluations of DDIM and DPM-Solver++ fall (sampling_timesteps): a power p
  // from 1 to kMaxSpacing (1 spaces them evenly in t, "trailing" as diffusers; larger p puts more
  // of them near the data), kLogSnrSpacing (even in log-SNR), or kSamplerSpacing (0): the
  // sampler's own, sampler_spacing().
  double spacing = kSamplerSpacing;
  double eta = 0.0;  // DDIM: 0 deterministic, 1 ancestral-like
  // DDPM noise std: sqrt(posterior variance) (Ho et al.'s lower bound) or sqrt(beta) (upper).
  VarianceKind variance = VarianceKind::kPosterior;
  uint64_t seed = 0;
  int record_every = 0;  // > 0: record x after every k-th step (and x_T), for figures
  // Threads that share the Box-Muller transform of each step's noise (the model's threads are the
  // EpsFn's). The samples do not depend on it.
  int threads = 1;
  // The x0 clamp: at every step, the x0 prediction x0 = (x - sqrt(1 - ab) eps) / sqrt(ab) is kept
  // inside x0_range (model units; empty: no clamp) as x0_clamp says, and where it moved, eps is
  // re-derived from it, eps = (x - sqrt(ab) x0) / sqrt(1 - ab), before the sampler's update. So
  // DDPM steps to the posterior mean of the clamped x0 (Ho et al.'s clip_denoised), and DDIM and
  // DPM-Solver++ use it as their data prediction. Coordinates it leaves alone keep their bits.
  X0Clamp x0_clamp = X0Clamp::kClip;
  X0Range x0_range;
  // Used by sample_checkpoint, not by sample: round the data's integer columns on output.
  bool round_integers = false;
  // Used by sample_checkpoint on a conditional model, not by sample: the class label every row is
  // drawn from (kEveryClass: each row's own, in the training proportions), and the classifier-free
  // guidance scale W of a class (diffusers' guidance_scale: eps = eps_null + W (eps_class -
  // eps_null); 1 is the plain conditional model, 0 the unconditional one).
  int label = kEveryClass;
  double guidance = 1.0;
};

// Recorded states: x[i] is the state at timestep label t[i] (T for the initial noise; after the
// step that evaluates the model at t, the state is labelled t; the final sample has label 0).
// With record_every = k > 0: when all T timesteps are evaluated (DDPM, or nfe = T), x_T and the
// states after the steps with t % k == 0; with nfe < T, x_T and the state after every step.
// The record_every that keeps about 100 states of a T-step trajectory (every state when T <= 100):
// the figures' and animations' default (`plot reverse`, `animate --every 0`, snapshots).
int auto_record_every(int T);

struct Trajectory {
  std::vector<int> t;
  std::vector<Points> x;
};

// Throws UsageError naming --nfe / --eta / --variance / --sampler when the configuration is invalid
// (eta is DDIM's alone, variance DDPM's alone).
void validate(const SampleConfig& c, int T);

// The K = nfe (0 means T) strictly decreasing timesteps a sampler evaluates, with spacing power p:
// t_i = round(T (1 - i/K)^p) - 1, i = 0..K-1, each then lowered where needed to stay below the one
// before it and raised to leave room for the ones after (so K = T is every timestep). p = 1 is
// "trailing" spacing (Lin et al. 2024, as diffusers): starts at T-1, ends at round(T/K) - 1.
// p > 1 ends nearer the data (p = 2 is DPM-Solver's "time quadratic"); every sampler's last step
// goes from the last t_i to alpha_bar = 1 (clean data). Throws UsageError naming --nfe unless
// 0 <= nfe <= T, or naming --spacing unless 1 <= p <= kMaxSpacing (resolve kSamplerSpacing
// first: resolved_spacing).
std::vector<int> sampling_timesteps(int T, int nfe, double spacing);
// The same for any spacing, kLogSnrSpacing included (which needs the schedule): the samplers' grid.
std::vector<int> sampling_timesteps(const Schedule& schedule, int nfe, double spacing);
// K = nfe (0 means T) timesteps even in log-SNR, lambda(t) = log(alpha_bar_t / (1 - alpha_bar_t))
// / 2: K values evenly from lambda(round(T max(0.9, 1 - 1/K))) down to lambda(round(T / K^2) - 1)
// (both clamped to the timesteps where lambda is finite), each taken to the timestep of nearest
// lambda; the first of them is then replaced by T-1 (where x_T is), so the even-in-lambda part
// starts one step below it, and the grid is made strictly decreasing as above. Why the top: near T
// the cosine and linear schedules' lambda falls steeply (alpha_bar -> 0), and steps spread evenly
// in lambda up to T-1 are wasted on pure noise; at K = 10 of T = 1000 the top at 0.9 T measured
// best (0.85 T: 2.01 on average against 1.11; 0.96 T, with the bottom at t = 4: 1.36), and at
// K = 20, 0.95 T measured 0.92 against 0.96 for 0.9 T. The bottom, t = 9 at K = 10 (t = 1 at
// K = 20), is as near the data as DPM-Solver's quadratic time steps go, so that the last denoising
// step does not shrink tight modes. On the cosine schedule at T = 1000, K = 10:
// 999, 819, 685, 499, 312, 176, 93, 47, 22, 9.
std::vector<int> log_snr_timesteps(const Schedule& schedule, int nfe);
// Above 4 the last of 10 evaluations is at t = 0 for any T up to 10^4: steps would be wasted.
inline constexpr double kMaxSpacing = 4.0;

// n samples of dimension D, (n, D). Seeded with c.seed: x_T is the first n*D normals of
// Rng(c.seed).fill_normal, then each noisy step draws n*D more (DDPM: every step but t = 0; DDIM
// with eta > 0: every step but the last; DDIM eta = 0 and DPM-Solver++ draw nothing more). The last
// step of every sampler goes to alpha_bar = 1 and so returns the x0 prediction at its timestep.
// Throws UsageError on an invalid configuration, Error on a non-finite result. Clears
// *trajectory and fills it when c.record_every > 0.
Points sample(const EpsFn& eps_fn, const Schedule& schedule, int n, int D, const SampleConfig& c,
              Trajectory* trajectory = nullptr);
// The same with a conditional predictor: column j is evaluated with label labels[j] (labels has n
// entries, or is null for the unconditional prediction) at every step. The same bits as the
// unconditional sample() for a predictor that ignores the labels.
Points sample(const ConditionalEpsFn& eps_fn, const Schedule& schedule, int n, int D,
              const SampleConfig& c, const int32_t* labels, Trajectory* trajectory = nullptr);

// sample()'s n samples, chunk_rows at a time (a positive multiple of 256, the model's block),
// handed to sink(first_row, x) in order: the same bits sample() gives rows first..first+m-1 for
// the same config and seed, whatever chunk_rows, in memory that does not grow with n (the noise
// streams of the later chunks are reached by RngJump, not by drawing). No trajectory. stop(),
// when given, is asked after every step; when it says true, throws Interrupted.
void sample_chunked(const EpsFn& eps_fn, const Schedule& schedule, int64_t n, int D,
                    const SampleConfig& c, int chunk_rows,
                    const std::function<void(int64_t first, const Points& x)>& sink,
                    const std::function<bool()>& stop = {});
// The same with a conditional predictor: before each chunk, labels_of(first, m, labels) fills the
// labels of its m rows (called in order of first; empty: the unconditional prediction).
void sample_chunked(const ConditionalEpsFn& eps_fn, const Schedule& schedule, int64_t n, int D,
                    const SampleConfig& c, int chunk_rows,
                    const std::function<void(int64_t first, int m, int32_t* labels)>& labels_of,
                    const std::function<void(int64_t first, const Points& x)>& sink,
                    const std::function<bool()>& stop = {});

// An EpsFn over a model's parameters: blocks of 256 columns spread statically over `threads`
// OpenMP threads, each with its own Workspace allocated here, so a call allocates nothing and
// gives the same bits for any thread count. params must outlive the returned function, which must
// not be called from two threads at once. Throws Error when params does not fit c (or, when
// called, for t outside 0..c.T-1) or when the model does not predict eps (denoiser.h's
// denoiser_eps_fn serves every prediction target), UsageError when threads < 1.
EpsFn model_eps_fn(const ModelConfig& c, const std::vector<float>& params, int threads);
// The same passing each column's label to the network (model_predict's labels; a column's
// prediction depends only on its own input, timestep and label).
ConditionalEpsFn model_conditional_eps_fn(const ModelConfig& c, const std::vector<float>& params,
                                          int threads);

}  // namespace diffuse
