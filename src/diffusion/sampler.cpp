// Samplers over an abstract noise predictor: DDPM (Ho et al. 2020), DDIM (Song et al. 2021) and
// DPM-Solver++(2M) (Lu et al. 2022), plus model_eps_fn, the adapter from a network to an EpsFn.
#include "diffuse/sampler.h"

#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <functional>
#include <iomanip>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "diffuse/error.h"
#include "diffuse/rng.h"

namespace diffuse {
namespace {

constexpr int kEpsBlock = 256;  // columns per model call in model_eps_fn (workspace max_batch)

// One step of the generalized DDPM/DDIM update  x <- a x + b eps_theta(x, t) + sigma z.
// Both samplers are this affine map with different coefficients, so they share one loop.
struct LinearStep {
  int t = 0;
  double a = 0, b = 0, sigma = 0;
  bool noise = false;  // draw z for this step (the draw order is part of the seed's contract)
};

// DDPM ancestral sampling (Ho et al. 2020, Alg. 2), every t = T-1 .. 0:
//   x <- (x - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t) + sigma_t z,  no z at t = 0.
std::vector<LinearStep> ddpm_steps(const Schedule& s, VarianceKind variance) {
  std::vector<LinearStep> steps;
  for (int t = s.T() - 1; t >= 0; --t) {
    LinearStep st;
    st.t = t;
    st.a = 1.0 / std::sqrt(s.alpha[t]);
    st.b = -s.beta[t] / (s.sqrt_one_minus_alpha_bar[t] * std::sqrt(s.alpha[t]));
    st.noise = t > 0;
    if (st.noise) {
      st.sigma =
          std::sqrt(variance == VarianceKind::kPosterior ? s.posterior_variance[t] : s.beta[t]);
    }
    steps.push_back(st);
  }
  return steps;
}

// DDIM (Song et al. 2021, Eq. 12) from alpha_bar_t to alpha_bar_prev (the next timestep of the
// subsequence, or 1 after the last one):
//   x0_hat = (x - sqrt(1 - ab) eps) / sqrt(ab)
//   x     <- sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev - sigma^2) eps + sigma z
//   sigma  = eta sqrt((1 - ab_prev) / (1 - ab) (1 - ab / ab_prev))
// which is a x + b eps + sigma z with the a and b below. With eta = 1 and every timestep, sigma^2
// is the posterior variance and the map is DDPM's posterior-variance step.
std::vector<LinearStep> ddim_steps(const Schedule& s, const std::vector<int>& ts, double eta) {
  std::vector<LinearStep> steps;
  for (size_t i = 0; i < ts.size(); ++i) {
    const int t = ts[i];
    const double ab = s.alpha_bar[t];
    const double ab_prev = i + 1 < ts.size() ? s.alpha_bar[ts[i + 1]] : 1.0;
    LinearStep st;
    st.t = t;
    st.sigma = eta * std::sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev));
    // 1 - ab_prev - sigma^2 >= 0 in exact arithmetic (ab <= ab_prev <= 1); clamp the rounding.
    const double c_eps = std::sqrt(std::max(0.0, 1 - ab_prev - st.sigma * st.sigma));
    st.a = std::sqrt(ab_prev / ab);
    st.b = c_eps - std::sqrt(ab_prev) * std::sqrt(1 - ab) / std::sqrt(ab);
    st.noise = eta > 0 && i + 1 < ts.size();
    steps.push_back(st);
  }
  return steps;
}

// One DPM-Solver++(2M) step as a combination of the state and two data predictions:
//   x <- cx x + c_cur x0_theta(x, t) + c_prev x0_theta(previous state, previous t)
// where x0_theta = (x - sqrt(1 - ab) eps) / sqrt(ab) = x0_x x + x0_eps eps. The update folds
// x0_theta(x, t) into the x and eps coefficients in double (a x + b eps + c_prev x0_prev): near
// t = T-1, 1/sqrt(ab) is ~2000 and a float x0 would lose that much precision.
struct DpmStep {
  int t = 0;
  double x0_x = 0, x0_eps = 0;
  double cx = 0, c_cur = 0, c_prev = 0;
  double a() const { return cx + c_cur * x0_x; }
  double b() const { return c_cur * x0_eps; }
};

// DPM-Solver++(2M) (Lu et al. 2022, Alg. 2, data prediction, multistep second order) on the
// timesteps ts, with alpha = sqrt(ab), sigma = sqrt(1 - ab), lambda = log(alpha / sigma),
// h_i = lambda_{t_i} - lambda_{t_{i-1}}:
//   first step (first order):  x <- (sigma_next / sigma) x - alpha_next (e^-h - 1) x0
//   then, r = h_prev / h:      D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev,  x <- ... same with D.
// The last evaluated timestep steps to alpha_bar = 1 (clean data), where lambda = +inf: the
// first-order step there is exactly x <- x0_theta(x, t_last) (the usual "denoise to zero" final
// step; a second-order step is undefined since r = 0).
std::vector<DpmStep> dpm_steps(const Schedule& s, const std::vector<int>& ts) {
  auto lambda = [&](int t) {
    const double ab = s.alpha_bar[t];
    return 0.5 * (std::log(ab) - std::log1p(-ab));
  };
  std::vector<DpmStep> steps;
  double h_prev = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const int t = ts[i];
    DpmStep st;
    st.t = t;
    st.x0_x = 1.0 / s.sqrt_alpha_bar[t];
    st.x0_eps = -s.sqrt_one_minus_alpha_bar[t] / s.sqrt_alpha_bar[t];
    if (i + 1 == ts.size()) {
      st.c_cur = 1.0;  // x <- x0_theta
    } else {
      const int tn = ts[i + 1];
      const double h = lambda(tn) - lambda(t);
      st.cx = s.sqrt_one_minus_alpha_bar[tn] / s.sqrt_one_minus_alpha_bar[t];
      const double c_d = -s.sqrt_alpha_bar[tn] * std::expm1(-h);
      if (i == 0) {
        st.c_cur = c_d;
      } else {
        const double r = h_prev / h;
        st.c_cur = c_d * (1 + 1 / (2 * r));
        st.c_prev = -c_d / (2 * r);
      }
      h_prev = h;
    }
    steps.push_back(st);
  }
  return steps;
}

// Records sampler states into an optional Trajectory.
class Recorder {
 public:
  // full: the sampler evaluates every timestep, so only t % every == 0 is kept.
  Recorder(Trajectory* tr, int every, bool full)
      : tr_(every > 0 ? tr : nullptr), every_(every), full_(full) {
    if (tr != nullptr) {
      tr->t.clear();
      tr->x.clear();
    }
  }
  void initial(int T, const Points& x) { add(T, x); }
  void after_step(int t, bool last, const Points& x) {
    if (tr_ == nullptr) return;
    if (last) {
      add(0, x);
    } else if (!full_ || t % every_ == 0) {
      add(t, x);
    }
  }

 private:
  void add(int t, const Points& x) {
    if (tr_ == nullptr) return;
    tr_->t.push_back(t);
    tr_->x.push_back(x);
  }
  Trajectory* tr_;
  int every_;
  bool full_;
};

// The x0 clamp (SampleConfig::x0_clamp) as a step on the model's output: the x0 prediction
// implied by eps at timestep t is clamped, and where it moved eps is re-derived from it.
// Allocates its buffers once, so apply() allocates nothing.
class X0Guard {
 public:
  X0Guard(const SampleConfig& c, const Schedule& s, int n, int D)
      : mode_(c.x0_clamp), range_(c.x0_range), schedule_(s), n_(n) {
    if (!active()) return;
    if (range_.lo.size() != static_cast<size_t>(D) || range_.hi.size() != range_.lo.size()) {
      throw Error("sample: the x0 range has " + std::to_string(range_.lo.size()) +
                  " columns but the samples have " + std::to_string(D));
    }
    x0_.resize(static_cast<size_t>(n) * D);
    scratch_.resize(D);
  }
  bool active() const { return mode_ != X0Clamp::kOff && !range_.empty(); }
  void apply(const float* x, int t, float* eps) {
    if (!active()) return;
    const double a = schedule_.sqrt_alpha_bar[t], s = schedule_.sqrt_one_minus_alpha_bar[t];
    if (!(s > 0)) return;  // no noise left: x is its own x0 and eps does not matter
    const size_t size = x0_.size();
    auto x0_of = [&](size_t k) { return static_cast<float>((x[k] - s * eps[k]) / a); };
    for (size_t k = 0; k < size; ++k) x0_[k] = x0_of(k);
    if (clamp_x0(mode_, range_, x0_.data(), n_, scratch_.data()) == 0) return;
    for (size_t k = 0; k < size; ++k) {
      if (x0_[k] != x0_of(k)) eps[k] = static_cast<float>((x[k] - a * x0_[k]) / s);
    }
  }

 private:
  X0Clamp mode_;
  const X0Range& range_;
  const Schedule& schedule_;
  int n_;
  std::vector<float> x0_, scratch_;
};

void check_schedule(const Schedule& s) {
  const size_t T = s.beta.size();
  if (T < 1 || s.alpha.size() != T || s.alpha_bar.size() != T || s.alpha_bar_prev.size() != T ||
      s.sqrt_alpha_bar.size() != T || s.sqrt_one_minus_alpha_bar.size() != T ||
      s.posterior_variance.size() != T) {
    throw Error("sample: the schedule's arrays are empty or of different lengths");
  }
}

}  // namespace

std::string to_string(SamplerKind k) {
  switch (k) {
    case SamplerKind::kDdpm:
      return "ddpm";
    case SamplerKind::kDdim:
      return "ddim";
    case SamplerKind::kDpmpp2m:
      return "dpmpp2m";
  }
  return "unknown";
}

std::optional<SamplerKind> sampler_from_string(std::string_view name) {
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim, SamplerKind::kDpmpp2m}) {
    if (name == to_string(k)) return k;
  }
  return std::nullopt;
}

int auto_record_every(int T) { return std::max(1, T / 100); }

std::vector<std::string> sampler_names() { return {"ddpm", "ddim", "dpmpp2m"}; }

SamplerKind parse_sampler(std::string_view name) {
  if (auto k = sampler_from_string(name)) return *k;
  throw unknown_name_error("--sampler", "sampler", name, sampler_names());
}

std::string to_string(VarianceKind k) {
  switch (k) {
    case VarianceKind::kPosterior:
      return "posterior";
    case VarianceKind::kBeta:
      return "beta";
  }
  return "unknown";
}

std::optional<VarianceKind> variance_from_string(std::string_view name) {
  for (VarianceKind k : {VarianceKind::kPosterior, VarianceKind::kBeta}) {
    if (name == to_string(k)) return k;
  }
  return std::nullopt;
}

std::vector<std::string> variance_names() { return {"posterior", "beta"}; }

VarianceKind parse_variance(std::string_view name) {
  if (auto k = variance_from_string(name)) return *k;
  throw unknown_name_error("--variance", "variance", name, variance_names());
}

namespace {
// --spacing's one error: `got` is the value as the user gave it (text) or as it came (a number).
UsageError spacing_error(const std::string& got) {
  std::ostringstream msg;
  msg << "--spacing: expected logsnr, 0 (the sampler's own) or a power from 1 to " << kMaxSpacing
      << ", got " << got;
  return UsageError(msg.str());
}

void check_spacing(double spacing) {
  if (spacing == kLogSnrSpacing) return;
  if (!(spacing >= 1.0 && spacing <= kMaxSpacing)) {  // NaN fails too
    std::ostringstream got;
    got << std::setprecision(10) << spacing;
    throw spacing_error(got.str());
  }
}

// K = nfe (0 means T), or UsageError naming --nfe unless 1 <= K <= T.
int resolved_nfe(int T, int nfe) {
  const int K = nfe == 0 ? T : nfe;
  if (K < 1 || K > T) {
    throw UsageError("--nfe: expected 1.." + std::to_string(T) + ", got " + std::to_string(nfe));
  }
  return K;
}

// The strictly decreasing timesteps >= 0 nearest to ts: at least K-1-i timesteps must stay below
// t_i, and t_i below t_{i-1}. t_0 = T-1 >= K-1, so both hold together.
void make_strictly_decreasing(std::vector<int>& ts) {
  const int K = static_cast<int>(ts.size());
  for (int i = 0; i < K; ++i) {
    ts[i] = std::max(ts[i], K - 1 - i);
    if (i > 0) ts[i] = std::min(ts[i], ts[i - 1] - 1);
  }
}
}  // namespace

double sampler_spacing(SamplerKind k) { return k == SamplerKind::kDpmpp2m ? kLogSnrSpacing : 1.0; }

std::string spacing_name(double spacing) {
  if (spacing == kLogSnrSpacing) return "logsnr";
  if (spacing == kSamplerSpacing) return "0 (the sampler's own)";
  std::ostringstream ss;
  ss << spacing;
  return ss.str();
}

std::string spacing_text(double spacing) {
  return spacing == kSamplerSpacing ? "0" : spacing_name(spacing);
}

std::optional<double> spacing_from_string(const std::string& text) {
  if (text == "logsnr") return kLogSnrSpacing;
  double v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  // No number below 0 means anything (and -1 is kLogSnrSpacing's value, which only the name gives).
  if (text.empty() || r.ec != std::errc() || r.ptr != end || !(v >= 0.0)) return std::nullopt;
  return v;
}

double parse_spacing(const std::string& text) {
  const std::optional<double> spacing = spacing_from_string(text);
  if (!spacing) throw spacing_error("\"" + text + "\"");
  if (*spacing != kSamplerSpacing) check_spacing(*spacing);
  return *spacing;
}

double resolved_spacing(SamplerKind k, double spacing) {
  return spacing == kSamplerSpacing ? sampler_spacing(k) : spacing;
}

void validate(const SampleConfig& c, int T) {
  const std::string Ts = std::to_string(T);
  check_spacing(resolved_spacing(c.sampler, c.spacing));
  if (c.nfe < 0 || c.nfe > T) {
    throw UsageError("--nfe: expected 1.." + Ts + " (or 0 for all " + Ts + " steps), got " +
                     std::to_string(c.nfe));
  }
  if (c.sampler == SamplerKind::kDdpm && c.nfe != 0 && c.nfe != T) {
    throw UsageError("--nfe: --sampler ddpm evaluates every one of the " + Ts +
                     " steps, so expected " + Ts + " (or 0), got " + std::to_string(c.nfe) +
                     "; use --sampler ddim or dpmpp2m for fewer");
  }
  if (!(c.eta >= 0.0 && c.eta <= 1.0)) {  // also rejects NaN
    throw UsageError("--eta: expected a value in [0, 1], got " + std::to_string(c.eta));
  }
  if (c.eta != 0.0 && c.sampler != SamplerKind::kDdim) {
    throw UsageError("--eta: only --sampler ddim uses eta, got " + std::to_string(c.eta) +
                     " with --sampler " + to_string(c.sampler));
  }
  if (c.spacing != kSamplerSpacing && c.sampler == SamplerKind::kDdpm) {
    throw UsageError(
        "--spacing: --sampler ddpm evaluates every step, so a spacing changes "
        "nothing; got --spacing " +
        spacing_name(c.spacing) + " (use it with ddim or dpmpp2m)");
  }
  if (c.variance != VarianceKind::kPosterior && c.sampler != SamplerKind::kDdpm) {
    throw UsageError("--variance: only --sampler ddpm uses it, got --variance " +
                     to_string(c.variance) + " with --sampler " + to_string(c.sampler) +
                     (c.sampler == SamplerKind::kDdim ? " (DDIM's noise is --eta)" : ""));
  }
  if (c.threads < 1 || c.threads > 256) {
    throw UsageError("--threads: expected 1..256, got " + std::to_string(c.threads));
  }
}

std::vector<int> sampling_timesteps(int T, int nfe, double spacing) {
  if (T < 1) throw UsageError("T: expected at least 1 diffusion step, got " + std::to_string(T));
  const int K = resolved_nfe(T, nfe);
  check_spacing(spacing);
  if (spacing == kLogSnrSpacing) {
    throw Error("sampling_timesteps: log-SNR spacing needs the schedule (the Schedule overload)");
  }
  // p = 1 is "trailing" spacing (Lin et al. 2024, Table 2): t_i = round(T - i T/K) - 1. It starts
  // at T-1, so the first call sees the noise level x_T really has, and ends at round(T/K) - 1 (0
  // only when K > 2T/3): the samplers then step from there to alpha_bar = 1. Rounding is
  // half-to-even like the paper's np.round; spacing T/K >= 1 keeps ts strictly decreasing, and
  // K = T gives every timestep T-1..0. p > 1 keeps t_0 = T-1 and bends the grid towards t = 0,
  // where the steps of a thin or tight shape need the small noise levels: the last evaluation at
  // 10 steps of T = 1000 moves from t = 99 (p = 1) to t = 31 (p = 1.5).
  std::vector<int> ts(K);
  for (int i = 0; i < K; ++i) {
    const double u = 1.0 - static_cast<double>(i) / K;
    const double t = spacing == 1.0 ? T - static_cast<double>(i) * T / K : T * std::pow(u, spacing);
    ts[i] = static_cast<int>(std::nearbyint(t)) - 1;
  }
  make_strictly_decreasing(ts);  // a no-op for p = 1
  return ts;
}

std::vector<int> log_snr_timesteps(const Schedule& schedule, int nfe) {
  const int T = schedule.T();
  const int K = resolved_nfe(T, nfe);
  // lambda does not rise with t (alpha_bar falls). It is +inf where alpha_bar rounds to 1 (a beta
  // below 1e-16) and -inf where it underflows to 0: the ends are taken inside the finite part.
  std::vector<double> lambda(static_cast<size_t>(T));
  int first_finite = T, last_finite = -1;
  for (int t = 0; t < T; ++t) {
    const double ab = schedule.alpha_bar[static_cast<size_t>(t)];
    const double l = 0.5 * (std::log(ab) - std::log1p(-ab));
    lambda[static_cast<size_t>(t)] = l;
    if (std::isfinite(l)) {
      first_finite = std::min(first_finite, t);
      last_finite = t;
    }
  }
  if (last_finite < first_finite) return sampling_timesteps(T, nfe, 1.0);  // no finite lambda
  const auto clamp_t = [&](double t) {
    return std::clamp(static_cast<int>(std::nearbyint(t)), first_finite, last_finite);
  };
  const double hi = lambda[static_cast<size_t>(clamp_t(T * std::max(0.9, 1.0 - 1.0 / K)))];
  const double lo = lambda[static_cast<size_t>(clamp_t(static_cast<double>(T) / K / K - 1.0))];
  std::vector<int> ts(static_cast<size_t>(K));
  for (int i = 0; i < K; ++i) {
    const double target = K == 1 ? hi : hi + (lo - hi) * i / (K - 1);
    // The first t whose lambda is at or below the target, or the one before it if nearer.
    const auto it = std::lower_bound(lambda.begin(), lambda.end(), target, std::greater<>());
    int t = static_cast<int>(it - lambda.begin());
    if (t == T || (t > 0 && lambda[static_cast<size_t>(t - 1)] - target < target - lambda[t])) {
      --t;
    }
    ts[static_cast<size_t>(i)] = t;
  }
  ts[0] = T - 1;  // the first evaluation sees the noise level x_T has
  make_strictly_decreasing(ts);
  return ts;
}

std::vector<int> sampling_timesteps(const Schedule& schedule, int nfe, double spacing) {
  if (spacing == kLogSnrSpacing) return log_snr_timesteps(schedule, nfe);
  return sampling_timesteps(schedule.T(), nfe, spacing);
}

namespace {
// The timesteps sample() and sample_chunked() evaluate: c's spacing, or its sampler's own.
std::vector<int> config_timesteps(const Schedule& schedule, const SampleConfig& c) {
  return sampling_timesteps(schedule, c.nfe, resolved_spacing(c.sampler, c.spacing));
}
}  // namespace

namespace {

// The random streams of one sampling run: draw 0 is x_T, draw d >= 1 the d-th noisy step's z.
// sample() takes them all from one generator in order; sample_chunked() keeps one generator per
// draw, each jumped to where that draw starts, so that rows [first, first + m) of every draw come
// out with the bits the whole run gives them.
class NoiseStreams {
 public:
  NoiseStreams(uint64_t seed, int draws, size_t size_per_draw, bool one_stream)
      : one_stream_(one_stream) {
    streams_.emplace_back(seed);
    if (one_stream) return;
    // fill_normal(z, size) draws 2 * ceil(size / 2) values of next_u64 (pairs of uniforms).
    const RngJump jump(2 * ((size_per_draw + 1) / 2));
    for (int d = 1; d < draws; ++d) {
      streams_.push_back(streams_.back());
      jump.apply(streams_.back());
    }
  }
  // The generator for draw d.
  Rng& operator[](int d) { return streams_[one_stream_ ? 0 : static_cast<size_t>(d)]; }
  // Moves every draw's generator on by `jump`, to the next chunk.
  void skip(const RngJump& jump) {
    for (Rng& r : streams_) jump.apply(r);
  }

 private:
  bool one_stream_;
  std::vector<Rng> streams_;
};

// Runs the sampler on the n columns of x (x's values are drawn here); draw d of the noise comes
// from streams[d]. stop() is asked after every step.
// labels (n) is handed to every eps_fn call unchanged.
void run_sampler(const ConditionalEpsFn& eps_fn, const Schedule& schedule,
                 const std::vector<int>& ts, const SampleConfig& c, const int32_t* labels,
                 NoiseStreams& streams, Points& x, Recorder& rec,
                 const std::function<bool()>& stop) {
  const int T = schedule.T();
  const int K = static_cast<int>(ts.size());
  const int n = static_cast<int>(x.rows());
  const size_t size = static_cast<size_t>(x.size());

  // Standard normals, the values of rng.fill_normal(z, size) whatever the thread count: the
  // uniforms are one sequential stream, drawn here a chunk at a time; the threads share the costly
  // Box-Muller transform of each chunk (most of a step's time at D = 64).
  constexpr size_t kChunk = 1 << 15;                  // normals (even: chunks start on a pair)
  const bool shared = c.threads > 1 && size >= 4096;  // below, one thread is quicker
  std::vector<double> u(shared ? std::min(size, kChunk) + 1 : 0);
  int draw = 0;
  auto fill_noise = [&](float* z) {
    Rng& rng = streams[draw++];
    if (!shared) {
      rng.fill_normal(z, size);
      return;
    }
    for (size_t i = 0; i < size; i += kChunk) {
      const size_t m = std::min(kChunk, size - i);
      rng.fill_normal_uniforms(u.data(), m);
#pragma omp parallel for num_threads(c.threads) schedule(static)
      for (int part = 0; part < c.threads; ++part) {
        const size_t a = m * part / c.threads, b = m * (part + 1) / c.threads;
        Rng::box_muller(u.data(), a, b, z + i + a);
      }
    }
  };
  auto check_stop = [&] {
    if (stop && stop()) throw Interrupted("sampling interrupted");
  };
  // (n, D) row-major == (D, n) column-major, the EpsFn's layout
  fill_noise(x.data());
  X0Guard guard(c, schedule, n, static_cast<int>(x.cols()));
  rec.initial(T, x);

  // Everything the loop touches is allocated here; Map wraps raw buffers without allocating.
  using Vec = Eigen::Map<Eigen::ArrayXf>;
  std::vector<float> eps_buf(size);  // (D, n)
  Vec xv(x.data(), static_cast<Eigen::Index>(size));
  Vec eps(eps_buf.data(), static_cast<Eigen::Index>(size));

  if (c.sampler == SamplerKind::kDpmpp2m) {
    const std::vector<DpmStep> steps = dpm_steps(schedule, ts);
    std::vector<float> x0_a(size), x0_b(size);  // this step's and the previous step's x0, (D, n)
    float* x0_cur = x0_a.data();
    float* x0_prev = x0_b.data();
    for (int i = 0; i < K; ++i) {
      const DpmStep& st = steps[i];
      eps_fn(x.data(), st.t, n, labels, eps_buf.data());
      guard.apply(x.data(), st.t, eps_buf.data());
      Vec cur(x0_cur, static_cast<Eigen::Index>(size));
      Vec prev(x0_prev, static_cast<Eigen::Index>(size));
      // Kept for the next step's second-order term (not needed after the last step).
      if (i + 1 < K) cur = static_cast<float>(st.x0_x) * xv + static_cast<float>(st.x0_eps) * eps;
      if (st.c_prev != 0) {
        xv = static_cast<float>(st.a()) * xv + static_cast<float>(st.b()) * eps +
             static_cast<float>(st.c_prev) * prev;
      } else {
        xv = static_cast<float>(st.a()) * xv + static_cast<float>(st.b()) * eps;
      }
      std::swap(x0_cur, x0_prev);
      rec.after_step(st.t, i + 1 == K, x);
      check_stop();
    }
  } else {
    const std::vector<LinearStep> steps = c.sampler == SamplerKind::kDdpm
                                              ? ddpm_steps(schedule, c.variance)
                                              : ddim_steps(schedule, ts, c.eta);
    const bool stochastic =
        std::any_of(steps.begin(), steps.end(), [](const LinearStep& s) { return s.noise; });
    std::vector<float> z_buf(stochastic ? size : 0);  // (D, n)
    Vec z(z_buf.data(), static_cast<Eigen::Index>(z_buf.size()));
    for (int i = 0; i < K; ++i) {
      const LinearStep& st = steps[i];
      eps_fn(x.data(), st.t, n, labels, eps_buf.data());
      guard.apply(x.data(), st.t, eps_buf.data());
      if (st.noise) {
        fill_noise(z_buf.data());
        xv = static_cast<float>(st.a) * xv + static_cast<float>(st.b) * eps +
             static_cast<float>(st.sigma) * z;
      } else {
        xv = static_cast<float>(st.a) * xv + static_cast<float>(st.b) * eps;
      }
      rec.after_step(st.t, i + 1 == K, x);
      check_stop();
    }
  }
}

// The number of noise draws a run makes: x_T and one per noisy step.
int noise_draws(const Schedule& schedule, const std::vector<int>& ts, const SampleConfig& c) {
  if (c.sampler == SamplerKind::kDpmpp2m) return 1;
  const std::vector<LinearStep> steps = c.sampler == SamplerKind::kDdpm
                                            ? ddpm_steps(schedule, c.variance)
                                            : ddim_steps(schedule, ts, c.eta);
  return 1 + static_cast<int>(std::count_if(steps.begin(), steps.end(),
                                            [](const LinearStep& s) { return s.noise; }));
}

const char* kNotFinite =
    "the samples contain NaN or infinity (the model or its schedule diverged while sampling)";

// An EpsFn as a ConditionalEpsFn that ignores the labels.
ConditionalEpsFn ignoring_labels(const EpsFn& eps_fn) {
  return
      [&eps_fn](const float* x, int t, int n, const int32_t*, float* eps) { eps_fn(x, t, n, eps); };
}

}  // namespace

Points sample(const EpsFn& eps_fn, const Schedule& schedule, int n, int D, const SampleConfig& c,
              Trajectory* trajectory) {
  return sample(ignoring_labels(eps_fn), schedule, n, D, c, nullptr, trajectory);
}

void sample_chunked(const EpsFn& eps_fn, const Schedule& schedule, int64_t n, int D,
                    const SampleConfig& c, int chunk_rows,
                    const std::function<void(int64_t first, const Points& x)>& sink,
                    const std::function<bool()>& stop) {
  sample_chunked(ignoring_labels(eps_fn), schedule, n, D, c, chunk_rows, {}, sink, stop);
}

Points sample(const ConditionalEpsFn& eps_fn, const Schedule& schedule, int n, int D,
              const SampleConfig& c, const int32_t* labels, Trajectory* trajectory) {
  check_schedule(schedule);
  const int T = schedule.T();
  validate(c, T);
  if (n < 0) throw UsageError("-n: expected a sample count >= 0, got " + std::to_string(n));
  if (D < 1) throw UsageError("sample: expected dimension D >= 1, got " + std::to_string(D));
  const std::vector<int> ts = config_timesteps(schedule, c);
  Recorder rec(trajectory, c.record_every, static_cast<int>(ts.size()) == T);
  NoiseStreams streams(c.seed, 1, 0, /*one_stream=*/true);
  Points x(n, D);
  run_sampler(eps_fn, schedule, ts, c, labels, streams, x, rec, {});
  if (!x.array().isFinite().all()) throw Error(kNotFinite);
  return x;
}

void sample_chunked(const ConditionalEpsFn& eps_fn, const Schedule& schedule, int64_t n, int D,
                    const SampleConfig& c, int chunk_rows,
                    const std::function<void(int64_t first, int m, int32_t* labels)>& labels_of,
                    const std::function<void(int64_t first, const Points& x)>& sink,
                    const std::function<bool()>& stop) {
  check_schedule(schedule);
  const int T = schedule.T();
  validate(c, T);
  if (n < 0) throw UsageError("-n: expected a sample count >= 0, got " + std::to_string(n));
  if (D < 1) throw UsageError("sample: expected dimension D >= 1, got " + std::to_string(D));
  if (chunk_rows < 1 || chunk_rows % kEpsBlock != 0) {
    throw Error("sample_chunked: chunk_rows must be a positive multiple of 256, got " +
                std::to_string(chunk_rows));
  }
  if (c.record_every > 0) throw Error("sample_chunked: record_every is not supported");
  const std::vector<int> ts = config_timesteps(schedule, c);
  const size_t size = static_cast<size_t>(n) * static_cast<size_t>(D);
  NoiseStreams streams(c.seed, noise_draws(schedule, ts, c), size, /*one_stream=*/false);
  Recorder rec(nullptr, 0, false);
  // Each chunk draws chunk_rows * D normals from every stream: an even count (chunk_rows is), so
  // the next chunk starts on a pair, as in the whole run; a pair of normals takes two draws.
  std::optional<RngJump> next_chunk;
  if (n > chunk_rows) next_chunk.emplace(static_cast<uint64_t>(chunk_rows) * D);
  Points x;
  std::vector<int32_t> labels(labels_of ? static_cast<size_t>(std::min<int64_t>(n, chunk_rows))
                                        : 0);
  for (int64_t first = 0; first < n; first += chunk_rows) {
    const int m = static_cast<int>(std::min<int64_t>(chunk_rows, n - first));
    if (first > 0) streams.skip(*next_chunk);
    NoiseStreams chunk = streams;
    x.resize(m, D);
    if (labels_of) labels_of(first, m, labels.data());
    run_sampler(eps_fn, schedule, ts, c, labels_of ? labels.data() : nullptr, chunk, x, rec, stop);
    if (!x.array().isFinite().all()) {
      throw Error(std::string(kNotFinite) + " (rows " + std::to_string(first + 1) + " to " +
                  std::to_string(first + m) + ")");
    }
    sink(first, x);
  }
}

EpsFn model_eps_fn(const ModelConfig& c, const std::vector<float>& params, int threads) {
  ConditionalEpsFn f = model_conditional_eps_fn(c, params, threads);
  return [f](const float* x, int t, int n, float* eps) { f(x, t, n, nullptr, eps); };
}

ConditionalEpsFn model_conditional_eps_fn(const ModelConfig& c, const std::vector<float>& params,
                                          int threads) {
  validate(c);
  if (c.prediction != Prediction::kEps) {
    throw Error("model: it predicts " + to_string(c.prediction) +
                ", not the noise: sample through denoiser_eps_fn");
  }
  if (params.size() != param_count(c)) {
    throw Error("model: expected " + std::to_string(param_count(c)) + " parameters for dim " +
                std::to_string(c.dim) + ", hidden " + std::to_string(c.hidden) + ", T " +
                std::to_string(c.T) + ", got " + std::to_string(params.size()));
  }
  if (threads < 1) {
    throw UsageError("--threads: expected at least 1, got " + std::to_string(threads));
  }
  // One workspace per thread, allocated here once; the call itself allocates nothing. The
  // returned function therefore must not be called from two threads at once.
  auto workspaces = std::make_shared<std::vector<Workspace>>();
  workspaces->reserve(threads);
  for (int i = 0; i < threads; ++i) workspaces->emplace_back(c, kEpsBlock);
  const float* p = params.data();
  return
      [c, p, threads, workspaces](const float* x, int t, int n, const int32_t* labels, float* eps) {
        if (t < 0 || t >= c.T) {
          throw Error("model: timestep " + std::to_string(t) + " is outside the model's 0.." +
                      std::to_string(c.T - 1) + " (the schedule's T differs from the model's)");
        }
        // Fixed blocks of kEpsBlock columns, dealt out statically. A column's prediction depends
        // only on its block (the same blocks model_predict makes on one thread), so the result is
        // bit-for-bit the same for any thread count and any scheduling.
        const int blocks = (n + kEpsBlock - 1) / kEpsBlock;
        if (threads == 1) {  // no OpenMP region: libgomp allocates a team for each one
          for (int b = 0; b < blocks; ++b) {
            const int begin = b * kEpsBlock;
            const size_t off = static_cast<size_t>(begin) * c.dim;
            model_predict(c, p, x + off, t, std::min(n - begin, kEpsBlock), (*workspaces)[0],
                          eps + off, labels == nullptr ? nullptr : labels + begin);
          }
          return;
        }
        std::exception_ptr failure;  // an exception must not escape an OpenMP region
#pragma omp parallel num_threads(threads)
        {
          Workspace& ws = (*workspaces)[omp_get_thread_num()];
#pragma omp for schedule(static)
          for (int b = 0; b < blocks; ++b) {
            const int begin = b * kEpsBlock;
            const int cols = std::min(n - begin, kEpsBlock);
            const size_t off = static_cast<size_t>(begin) * c.dim;
            try {
              model_predict(c, p, x + off, t, cols, ws, eps + off,
                            labels == nullptr ? nullptr : labels + begin);
            } catch (...) {
#pragma omp critical(diffuse_model_eps_fn)
              if (!failure) failure = std::current_exception();
            }
          }
        }
        if (failure) std::rethrow_exception(failure);
      };
}

}  // namespace diffuse
