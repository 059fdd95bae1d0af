// The denoiser: a network (model.h) and what its output predicts (ModelConfig::prediction), seen
// by the samplers as a noise predictor and by the trainer as a regression target with a weight per
// noise level. Pure per-element arithmetic on the schedule's alpha_bar; it knows no network
// internals (k-diffusion / diffusers keep the same split: the sampler calls a small wrapper that
// turns the model's output into eps or x0).
//
// With a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t) and x_t = a x0 + s eps:
//   eps prediction: eps = out                 x0 = (x_t - s out) / a
//   x0 prediction:  x0 = out                  eps = (x_t - a out) / s
//   v prediction:   v = a eps - s x0 = out    eps = s x_t + a out,  x0 = a x_t - s out
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/model.h"
#include "diffuse/sampler.h"
#include "diffuse/schedule.h"

namespace diffuse {

// How the training loss weights the noise levels. kUniform: the plain MSE on the prediction
// target (Ho et al.'s L_simple for eps). kMinSnr: min-SNR-gamma (Hang et al. 2023), the x0-space
// error weighted by min(SNR_t, gamma), written for each target: eps min(SNR, g) / SNR,
// x0 min(SNR, g), v min(SNR, g) / (SNR + 1); SNR_t = alpha_bar_t / (1 - alpha_bar_t).
enum class LossWeighting { kUniform, kMinSnr };

std::string to_string(LossWeighting w);  // "uniform", "min-snr"
std::optional<LossWeighting> loss_weighting_from_string(std::string_view name);
std::vector<std::string> loss_weighting_names();
// The weighting of that name, or unknown_name_error naming --loss-weighting.
LossWeighting parse_loss_weighting(std::string_view name);

// The regression target for n elements at timestep t: eps, x0 or v = a eps - s x0.
void prediction_target(Prediction p, const Schedule& s, int t, const float* x0, const float* eps,
                       size_t n, float* target);

// The loss weight of timestep t (1 for kUniform).
double loss_weight(LossWeighting w, double gamma, Prediction p, const Schedule& s, int t);

// eps from the network's output `out` at x_t (n elements at timestep t). eps may be out.
void output_to_eps(Prediction p, const Schedule& s, int t, const float* xt, const float* out,
                   size_t n, float* eps);

// The samplers' EpsFn for a trained denoiser: model_eps_fn on the network, then output_to_eps
// (nothing more for eps prediction: the same function, the same bits). Same contract as
// model_eps_fn (threads, errors, no allocation once a call has seen its largest n); the schedule
// must outlive the function and have the model's T.
EpsFn denoiser_eps_fn(const ModelConfig& c, const std::vector<float>& params,
                      const Schedule& schedule, int threads);
// The same for a conditional model: each column's label goes to the network (null: the null
// class), then output_to_eps.
ConditionalEpsFn denoiser_conditional_eps_fn(const ModelConfig& c, const std::vector<float>& params,
                                             const Schedule& schedule, int threads);

// Classifier-free guidance (Ho & Salimans 2022) in diffusers' convention: for columns with labels,
//   eps = eps_null + W (eps_label - eps_null),
// eps_null the prediction with null_label. W = 1 calls eps_fn once with the labels (the plain
// conditional model, the same bits), W = 0 once with null_label for every column (the
// unconditional model, the same bits); other W call it twice and combine per element in float.
// It combines eps, after denoiser_conditional_eps_fn's output_to_eps: for x0 or v prediction that
// is the same as combining the network's outputs, since eps is affine in the output with
// coefficients that do not depend on the label (eps = s x_t + a v; eps = (x_t - a x0) / s), so
// the weights 1 - W and W, which sum to 1, carry through. Null labels (no class asked for) pass
// through as the unconditional prediction. Allocates only when a call is larger than any before.
// Throws UsageError naming --guidance for a negative or non-finite W.
ConditionalEpsFn guided_eps_fn(ConditionalEpsFn eps_fn, double guidance, int32_t null_label,
                               int dim);

}  // namespace diffuse
