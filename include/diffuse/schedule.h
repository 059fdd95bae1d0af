// Noise schedules beta_t (Ho et al. 2020, Sec. 4; Nichol & Dhariwal 2021 for cosine) and the
// quantities derived from them. Pure arithmetic; it knows nothing of models or samplers.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace diffuse {

enum class ScheduleKind { kLinear, kSigmoid, kQuadratic, kCosine };

std::string to_string(ScheduleKind kind);
std::optional<ScheduleKind> schedule_from_string(std::string_view name);
std::vector<std::string> schedule_names();
// The kind of that name, or unknown_name_error naming --schedule.
ScheduleKind parse_schedule(std::string_view name);

// The defaults are `diffuse train`'s (docs/DEFAULTS.md): the cosine schedule over T = 1000 steps
// (Nichol & Dhariwal 2021), so that DPM-Solver++ may take any 10 of the 1000 steps and x_T is
// noise; beta_start/beta_end serve the other kinds (0.1 ends the tutorial's sigmoid with x_T close
// to N(0, I); its 0.02 leaves 60% of the signal). tutorial() is the tutorial's own: sigmoid,
// T = 100, beta 1e-4..0.02.
struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::kCosine;
  int T = 1000;              // number of diffusion steps, t in {0, ..., T-1}
  double beta_start = 1e-4;  // linear, sigmoid, quadratic
  double beta_end = 0.1;     // linear, sigmoid, quadratic
  double cosine_s = 0.008;   // cosine offset s

  static ScheduleConfig tutorial();
};

// Index t is 0-based as in the tutorial's code: x_t = sqrt(alpha_bar[t]) x0 + sqrt(1-alpha_bar[t])
// eps is the state after t+1 forward steps. Values are computed in double.
struct Schedule {
  ScheduleConfig config;
  std::vector<double> beta;
  std::vector<double> alpha;           // 1 - beta
  std::vector<double> alpha_bar;       // prod_{s<=t} alpha_s
  std::vector<double> alpha_bar_prev;  // alpha_bar[t-1], 1 at t=0
  std::vector<double> sqrt_alpha_bar;
  std::vector<double> sqrt_one_minus_alpha_bar;
  std::vector<double> posterior_variance;  // beta_t (1 - alpha_bar_prev) / (1 - alpha_bar)

  int T() const { return static_cast<int>(beta.size()); }
};

// Builds and validates (T >= 2, 0 < beta < 1): throws UsageError naming the bad value.
Schedule make_schedule(const ScheduleConfig& config);

// sqrt(alpha_bar_{T-1}): the share of signal left in x_T. Near 0 means x_T is close to N(0, I).
double terminal_signal(const Schedule& s);
// Below this terminal_signal the samplers' x0 predictions overflow float: the model trains but
// gives NaN when sampled (the default schedule crosses it between T = 1100 and 1200).
inline constexpr double kMinTerminalSignal = 1e-12;
// A one-line warning when terminal_signal > 0.1 (x_T is not noise) or < kMinTerminalSignal (the
// model will not sample), else nothing.
std::optional<std::string> schedule_warning(const Schedule& s);

// Closed-form forward noising q(x_t | x_0) for a batch with per-sample t.
// x0, eps, xt are (D, B) column-major; t is (B).
void q_sample(const Schedule& s, const float* x0, const float* eps, const int* t, int B, int D,
              float* xt);

}  // namespace diffuse
