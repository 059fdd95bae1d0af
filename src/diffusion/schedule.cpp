// Beta schedules and their derived quantities (Ho et al. 2020, Eqs. 4 and 7), computed in double.
// The first three match the tutorial's get_betas; cosine is Nichol & Dhariwal 2021, Eq. 17.
#include "diffuse/schedule.h"

#include <cmath>
#include <numbers>
#include <sstream>

#include "diffuse/error.h"
#include "diffuse/io.h"

namespace diffuse {
namespace {

struct KindName {
  ScheduleKind kind;
  const char* name;
};
constexpr KindName kKindNames[] = {{ScheduleKind::kLinear, "linear"},
                                   {ScheduleKind::kSigmoid, "sigmoid"},
                                   {ScheduleKind::kQuadratic, "quadratic"},
                                   {ScheduleKind::kCosine, "cosine"}};

// torch.linspace(lo, hi, n)
std::vector<double> linspace(double lo, double hi, int n) {
  std::vector<double> v(n);
  const double step = (hi - lo) / (n - 1);
  for (int i = 0; i < n; ++i) v[i] = lo + step * i;
  v[n - 1] = hi;
  return v;
}

std::string fmt(double x) {
  std::ostringstream ss;
  ss << x;
  return ss.str();
}

}  // namespace

std::string to_string(ScheduleKind kind) {
  for (const auto& kn : kKindNames) {
    if (kn.kind == kind) return kn.name;
  }
  return "unknown";
}

std::optional<ScheduleKind> schedule_from_string(std::string_view name) {
  for (const auto& kn : kKindNames) {
    if (name == kn.name) return kn.kind;
  }
  return std::nullopt;
}

std::vector<std::string> schedule_names() {
  std::vector<std::string> names;
  for (const auto& kn : kKindNames) names.emplace_back(kn.name);
  return names;
}

ScheduleKind parse_schedule(std::string_view name) {
  if (auto k = schedule_from_string(name)) return *k;
  throw unknown_name_error("--schedule", "schedule", name, schedule_names());
}

ScheduleConfig ScheduleConfig::tutorial() {
  ScheduleConfig c;
  c.kind = ScheduleKind::kSigmoid;
  c.T = 100;
  c.beta_start = 1e-4;
  c.beta_end = 0.02;
  return c;
}

Schedule make_schedule(const ScheduleConfig& c) {
  if (c.T < 2) throw UsageError("--steps: expected at least 2 diffusion steps, got " + fmt(c.T));
  // The range is checked for every kind (the cosine schedule does not read it): a bad value is
  // an error whatever the schedule.
  if (!(c.beta_start > 0.0 && c.beta_start < 1.0)) {
    throw UsageError("--beta-start: expected a value in (0, 1), got " + fmt(c.beta_start));
  }
  if (!(c.beta_end > 0.0 && c.beta_end < 1.0)) {
    throw UsageError("--beta-end: expected a value in (0, 1), got " + fmt(c.beta_end));
  }
  if (c.kind == ScheduleKind::kCosine && !(c.cosine_s > 0.0 && c.cosine_s < 1.0)) {
    throw UsageError("cosine offset s: expected a value in (0, 1), got " + fmt(c.cosine_s));
  }

  // Nine arrays of T doubles (and their temporaries): name --steps before allocating them.
  check_memory(static_cast<uint64_t>(c.T) * sizeof(double) * 12,
               "--steps " + std::to_string(c.T) + ": the schedule", /*usage=*/true);

  Schedule s;
  s.config = c;
  const int T = c.T;
  const double b0 = c.beta_start, b1 = c.beta_end;
  switch (c.kind) {
    case ScheduleKind::kLinear:  // Ho et al. 2020, Sec. 4
      s.beta = linspace(b0, b1, T);
      break;
    case ScheduleKind::kSigmoid:  // the tutorial's sigmoid(linspace(-6, 6)) rescaled to [b0, b1]
      s.beta = linspace(-6.0, 6.0, T);
      for (double& b : s.beta) b = 1.0 / (1.0 + std::exp(-b)) * (b1 - b0) + b0;
      break;
    case ScheduleKind::kQuadratic:  // linear in sqrt(beta)
      s.beta = linspace(std::sqrt(b0), std::sqrt(b1), T);
      for (double& b : s.beta) b = b * b;
      break;
    case ScheduleKind::kCosine: {  // Nichol & Dhariwal 2021, Eq. 17, betas clipped at 0.999
      auto f = [&](double t) {
        const double v = std::cos((t / T + c.cosine_s) / (1.0 + c.cosine_s) * std::numbers::pi / 2);
        return v * v;
      };
      s.beta.resize(T);
      for (int t = 0; t < T; ++t) s.beta[t] = std::min(1.0 - f(t + 1) / f(t), 0.999);
      break;
    }
  }

  s.alpha.resize(T);
  s.alpha_bar.resize(T);
  s.alpha_bar_prev.resize(T);
  s.sqrt_alpha_bar.resize(T);
  s.sqrt_one_minus_alpha_bar.resize(T);
  s.posterior_variance.resize(T);
  double prod = 1.0;
  for (int t = 0; t < T; ++t) {
    if (!(s.beta[t] > 0.0 && s.beta[t] < 1.0)) {
      throw UsageError("schedule: beta at t=" + fmt(t) + " is " + fmt(s.beta[t]) +
                       ", expected a value in (0, 1)");
    }
    s.alpha[t] = 1.0 - s.beta[t];
    s.alpha_bar_prev[t] = prod;
    prod *= s.alpha[t];
    s.alpha_bar[t] = prod;
    s.sqrt_alpha_bar[t] = std::sqrt(prod);
    s.sqrt_one_minus_alpha_bar[t] = std::sqrt(1.0 - prod);
    // beta_tilde (Ho et al. 2020, Eq. 7); 0 at t = 0, where alpha_bar_prev = 1.
    s.posterior_variance[t] = s.beta[t] * (1.0 - s.alpha_bar_prev[t]) / (1.0 - prod);
  }
  return s;
}

double terminal_signal(const Schedule& s) { return s.sqrt_alpha_bar.back(); }

std::optional<std::string> schedule_warning(const Schedule& s) {
  const double r = terminal_signal(s);
  std::ostringstream ss;
  ss.precision(3);
  if (r < kMinTerminalSignal) {
    // Every sampler divides by sqrt(alpha_bar_t) (the x0 prediction) and so multiplies the
    // model's error by up to 1 / r: in float, past ~1e12 the samples overflow to NaN (measured:
    // the default schedule trains at T = 1200 and then gives NaN from every sampler).
    ss << "schedule " << to_string(s.config.kind) << " with T=" << s.T()
       << " leaves sqrt(alpha_bar_T) = " << r << "; sampling divides by it and in float gives "
       << "NaN below about " << kMinTerminalSignal
       << ", so the model will not sample (fewer --steps or a smaller --beta-end)";
    return ss.str();
  }
  if (r <= 0.1) return std::nullopt;
  ss << "schedule " << to_string(s.config.kind) << " with T=" << s.T()
     << " leaves sqrt(alpha_bar_T) = " << r
     << " of the signal in x_T, so x_T is not close to N(0, I) (aim for < 0.1: more steps, a "
        "larger --beta-end, or --schedule cosine)";
  return ss.str();
}

void q_sample(const Schedule& s, const float* x0, const float* eps, const int* t, int B, int D,
              float* xt) {
  // x0, eps, xt are (D, B) column-major; t is (B).
  for (int b = 0; b < B; ++b) {
    const auto a = static_cast<float>(s.sqrt_alpha_bar[t[b]]);
    const auto sigma = static_cast<float>(s.sqrt_one_minus_alpha_bar[t[b]]);
    for (int d = 0; d < D; ++d) {
      const int i = b * D + d;
      xt[i] = a * x0[i] + sigma * eps[i];
    }
  }
}

}  // namespace diffuse
