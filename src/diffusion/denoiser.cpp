// Prediction targets, loss weights and the samplers' adapter (include/diffuse/denoiser.h).
#include "diffuse/denoiser.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "diffuse/error.h"

namespace diffuse {

std::string to_string(LossWeighting w) {
  return w == LossWeighting::kMinSnr ? "min-snr" : "uniform";
}

std::optional<LossWeighting> loss_weighting_from_string(std::string_view name) {
  if (name == "uniform") return LossWeighting::kUniform;
  if (name == "min-snr") return LossWeighting::kMinSnr;
  return std::nullopt;
}

std::vector<std::string> loss_weighting_names() { return {"uniform", "min-snr"}; }

LossWeighting parse_loss_weighting(std::string_view name) {
  if (auto k = loss_weighting_from_string(name)) return *k;
  throw unknown_name_error("--loss-weighting", "weighting", name, loss_weighting_names());
}

void prediction_target(Prediction p, const Schedule& s, int t, const float* x0, const float* eps,
                       size_t n, float* target) {
  switch (p) {
    case Prediction::kEps:
      std::copy_n(eps, n, target);
      return;
    case Prediction::kX0:
      std::copy_n(x0, n, target);
      return;
    case Prediction::kV: {
      const auto a = static_cast<float>(s.sqrt_alpha_bar[t]);
      const auto sg = static_cast<float>(s.sqrt_one_minus_alpha_bar[t]);
      for (size_t i = 0; i < n; ++i) target[i] = a * eps[i] - sg * x0[i];
      return;
    }
  }
}

double loss_weight(LossWeighting w, double gamma, Prediction p, const Schedule& s, int t) {
  if (w == LossWeighting::kUniform) return 1.0;
  const double snr = s.alpha_bar[t] / (1.0 - s.alpha_bar[t]);
  const double clipped = std::min(snr, gamma);
  switch (p) {
    case Prediction::kEps:
      return clipped / snr;
    case Prediction::kX0:
      return clipped;
    case Prediction::kV:
      return clipped / (snr + 1.0);
  }
  return 1.0;
}

void output_to_eps(Prediction p, const Schedule& s, int t, const float* xt, const float* out,
                   size_t n, float* eps) {
  const auto a = static_cast<float>(s.sqrt_alpha_bar[t]);
  const auto sg = static_cast<float>(s.sqrt_one_minus_alpha_bar[t]);
  switch (p) {
    case Prediction::kEps:
      if (eps != out) std::copy_n(out, n, eps);
      return;
    case Prediction::kX0:
      for (size_t i = 0; i < n; ++i) eps[i] = (xt[i] - a * out[i]) / sg;
      return;
    case Prediction::kV:
      for (size_t i = 0; i < n; ++i) eps[i] = sg * xt[i] + a * out[i];
      return;
  }
}

EpsFn denoiser_eps_fn(const ModelConfig& c, const std::vector<float>& params,
                      const Schedule& schedule, int threads) {
  if (c.prediction == Prediction::kEps && c.classes == 0) {
    return model_eps_fn(c, params, threads);  // nothing to convert: the same function
  }
  ConditionalEpsFn f = denoiser_conditional_eps_fn(c, params, schedule, threads);
  return [f](const float* x, int t, int n, float* eps) { f(x, t, n, nullptr, eps); };
}

ConditionalEpsFn denoiser_conditional_eps_fn(const ModelConfig& c, const std::vector<float>& params,
                                             const Schedule& schedule, int threads) {
  ModelConfig network = c;
  network.prediction = Prediction::kEps;  // model_conditional_eps_fn gives the raw output
  ConditionalEpsFn raw = model_conditional_eps_fn(network, params, threads);
  if (c.prediction == Prediction::kEps) return raw;
  if (schedule.T() != c.T) {
    throw Error("model: built for T=" + std::to_string(c.T) +
                " but the schedule has T=" + std::to_string(schedule.T()));
  }
  const Prediction p = c.prediction;
  const Schedule* s = &schedule;
  const size_t D = static_cast<size_t>(c.dim);
  return [raw, p, s, D](const float* x, int t, int n, const int32_t* labels, float* eps) {
    raw(x, t, n, labels, eps);  // the output, converted in place (element by element)
    output_to_eps(p, *s, t, x, eps, static_cast<size_t>(n) * D, eps);
  };
}

ConditionalEpsFn guided_eps_fn(ConditionalEpsFn eps_fn, double guidance, int32_t null_label,
                               int dim) {
  if (!(guidance >= 0.0) || !std::isfinite(guidance)) {
    throw UsageError("--guidance: expected a finite scale >= 0, got " + std::to_string(guidance));
  }
  if (guidance == 1.0) return eps_fn;
  // Buffers that grow to the largest call: the null labels and the unconditional eps.
  struct Buffers {
    std::vector<int32_t> nulls;
    std::vector<float> uncond;
  };
  auto buf = std::make_shared<Buffers>();
  const auto w = static_cast<float>(guidance);
  const size_t D = static_cast<size_t>(dim);
  return [eps_fn, w, null_label, D, buf](const float* x, int t, int n, const int32_t* labels,
                                         float* eps) {
    if (labels == nullptr) {
      eps_fn(x, t, n, nullptr, eps);
      return;
    }
    const size_t size = static_cast<size_t>(n) * D;
    if (buf->nulls.size() < static_cast<size_t>(n)) buf->nulls.assign(n, null_label);
    if (w == 0.0f) {
      eps_fn(x, t, n, buf->nulls.data(), eps);
      return;
    }
    if (buf->uncond.size() < size) buf->uncond.resize(size);
    float* u = buf->uncond.data();
    eps_fn(x, t, n, buf->nulls.data(), u);
    eps_fn(x, t, n, labels, eps);
    for (size_t i = 0; i < size; ++i) eps[i] = u[i] + w * (eps[i] - u[i]);
  };
}

}  // namespace diffuse
