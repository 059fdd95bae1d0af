// Tests for the samplers against an exact closed-form noise predictor (Gaussian data), plus their
// contracts: timesteps, validation, seeding and draw order, DDIM = DDPM, trajectories. No network.
#include "diffuse/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numbers>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/model.h"
#include "diffuse/rng.h"
#include "diffuse/schedule.h"

namespace diffuse {
namespace {

// A Schedule from its betas, built by hand so these tests do not depend on make_schedule.
Schedule schedule_from_betas(const std::vector<double>& beta) {
  Schedule s;
  s.config.T = static_cast<int>(beta.size());
  double ab = 1.0;
  for (double b : beta) {
    const double ab_prev = ab;
    ab *= 1.0 - b;
    s.beta.push_back(b);
    s.alpha.push_back(1.0 - b);
    s.alpha_bar.push_back(ab);
    s.alpha_bar_prev.push_back(ab_prev);
    s.sqrt_alpha_bar.push_back(std::sqrt(ab));
    s.sqrt_one_minus_alpha_bar.push_back(std::sqrt(1.0 - ab));
    s.posterior_variance.push_back(b * (1.0 - ab_prev) / (1.0 - ab));
  }
  return s;
}

// Cosine schedule (Nichol & Dhariwal 2021): at T = 100 sqrt(alpha_bar[T-1]) is about 5e-4, so
// x_T ~ N(0, I) is the right start and the samplers' own errors are what the tests see.
Schedule cosine_schedule(int T) {
  ScheduleConfig c = ScheduleConfig::tutorial();
  c.kind = ScheduleKind::kCosine;
  c.T = T;
  return make_schedule(c);
}

// The exact noise predictor for data x0 ~ N(mu, diag(s^2)): x_t ~ N(sqrt(ab) mu, ab s^2 + 1 - ab),
// so E[eps | x_t] = sqrt(1 - ab) (x - sqrt(ab) mu) / (ab s^2 + 1 - ab), per dimension.
EpsFn gaussian_eps(const Schedule& sch, std::vector<double> mu, std::vector<double> s) {
  return [&sch, mu, s](const float* x, int t, int n, float* eps) {
    const double ab = sch.alpha_bar[t];
    const int D = static_cast<int>(mu.size());
    for (int j = 0; j < n; ++j) {
      for (int d = 0; d < D; ++d) {
        const double v = ab * s[d] * s[d] + 1 - ab;
        const size_t k = static_cast<size_t>(j) * D + d;
        eps[k] = static_cast<float>(std::sqrt(1 - ab) * (x[k] - std::sqrt(ab) * mu[d]) / v);
      }
    }
  };
}

EpsFn zero_eps() {
  return [](const float*, int, int n, float* eps) {
    // D is not passed; the tests using this sample D = 2.
    std::fill(eps, eps + static_cast<size_t>(n) * 2, 0.0f);
  };
}

SampleConfig config(SamplerKind k, int nfe, double eta = 0.0, uint64_t seed = 7) {
  SampleConfig c;
  c.sampler = k;
  c.nfe = nfe;
  c.eta = eta;
  c.seed = seed;
  return c;
}

float max_abs_diff(const Points& a, const Points& b) { return (a - b).cwiseAbs().maxCoeff(); }

// ---- names ----

TEST(SamplerNames, RoundTripAndRejectUnknown) {
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim, SamplerKind::kDpmpp2m}) {
    EXPECT_EQ(sampler_from_string(to_string(k)), k);
  }
  EXPECT_EQ(to_string(SamplerKind::kDpmpp2m), "dpmpp2m");
  EXPECT_EQ(sampler_from_string("DDPM"), std::nullopt);
  EXPECT_EQ(sampler_from_string(""), std::nullopt);
  for (VarianceKind k : {VarianceKind::kPosterior, VarianceKind::kBeta}) {
    EXPECT_EQ(variance_from_string(to_string(k)), k);
  }
  EXPECT_EQ(to_string(VarianceKind::kBeta), "beta");
  EXPECT_EQ(variance_from_string("fixed"), std::nullopt);
}

// ---- timesteps ----

TEST(SamplingTimesteps, TrailingSpacingFromTMinus1StrictlyDecreasing) {
  for (int T : {2, 3, 10, 100, 1000}) {
    for (int K = 1; K <= T; K += (K < 20 ? 1 : 37)) {
      const std::vector<int> ts = sampling_timesteps(T, K, 1.0);
      ASSERT_EQ(static_cast<int>(ts.size()), K) << "T " << T << " K " << K;
      EXPECT_EQ(ts.front(), T - 1) << "T " << T << " K " << K;
      // The last one is round(T/K) - 1: 0 exactly when T/K < 1.5.
      EXPECT_EQ(ts.back(), static_cast<int>(std::nearbyint(static_cast<double>(T) / K)) - 1)
          << "T " << T << " K " << K;
      EXPECT_GE(ts.back(), 0);
      for (int i = 1; i < K; ++i) EXPECT_LT(ts[i], ts[i - 1]) << "T " << T << " K " << K;
    }
  }
  // Lin et al. 2024, Table 2 (trailing, 0-based): np.round(np.arange(T, 0, -T/K)) - 1.
  EXPECT_EQ(sampling_timesteps(100, 5, 1.0), (std::vector<int>{99, 79, 59, 39, 19}));
  EXPECT_EQ(sampling_timesteps(1000, 4, 1.0), (std::vector<int>{999, 749, 499, 249}));
  EXPECT_EQ(sampling_timesteps(5, 2, 1.0),
            (std::vector<int>{4, 1}));  // round(2.5) = 2, half to even
  EXPECT_EQ(sampling_timesteps(10, 1, 1.0), (std::vector<int>{9}));
  const std::vector<int> all = sampling_timesteps(10, 0, 1.0);  // 0 means T
  EXPECT_EQ(all, (std::vector<int>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
  EXPECT_EQ(sampling_timesteps(10, 10, 1.0), all);
  EXPECT_EQ(sampling_timesteps(100, 70, 1.0).back(), 0);
  EXPECT_EQ(sampling_timesteps(100, 60, 1.0).back(), 1);
}

TEST(SamplingTimesteps, PowerSpacingBendsTowardsTheDataAndStaysStrictlyDecreasing) {
  // round(1000 (1 - i/10)^1.5) - 1: the last evaluation at t = 31 instead of 99.
  EXPECT_EQ(sampling_timesteps(1000, 10, 1.5),
            (std::vector<int>{999, 853, 715, 585, 464, 353, 252, 163, 88, 31}));
  // p = 2, DPM-Solver's "time quadratic": round(1000 (1 - i/10)^2) - 1.
  EXPECT_EQ(sampling_timesteps(1000, 10, 2.0),
            (std::vector<int>{999, 809, 639, 489, 359, 249, 159, 89, 39, 9}));
  for (double p : {1.25, 1.5, 2.0, 3.0, 4.0}) {
    for (int T : {2, 3, 10, 100, 1000}) {
      for (int K = 1; K <= T; K += (K < 20 ? 1 : 37)) {
        const std::vector<int> ts = sampling_timesteps(T, K, p);
        ASSERT_EQ(static_cast<int>(ts.size()), K) << "p " << p << " T " << T << " K " << K;
        EXPECT_EQ(ts.front(), T - 1);
        EXPECT_GE(ts.back(), 0);
        // Never later than trailing spacing's last step: at least as near the data.
        EXPECT_LE(ts.back(), sampling_timesteps(T, K, 1.0).back());
        for (int i = 1; i < K; ++i) EXPECT_LT(ts[i], ts[i - 1]) << "p " << p << " T " << T;
      }
    }
    // Every timestep when K = T, whatever the power.
    EXPECT_EQ(sampling_timesteps(10, 10, p), sampling_timesteps(10, 0, 1.0));
  }
  // Where the curve crowds at t = 0 (T = 20, K = 15, p = 4), the tail is pushed up, not dropped:
  // 14 - i for the last ones.
  const std::vector<int> crowded = sampling_timesteps(20, 15, 4.0);
  EXPECT_EQ(crowded.back(), 0);
  EXPECT_EQ(crowded[13], 1);
}

// The default (0) is each sampler's own: DPM-Solver++ even in log-SNR, DDIM 1 (even in t), DDPM 1
// (every step anyway); an explicit spacing wins for every sampler.
TEST(SamplingTimesteps, EachSamplerHasItsOwnDefaultSpacing) {
  EXPECT_EQ(SampleConfig{}.spacing, kSamplerSpacing);
  EXPECT_EQ(sampler_spacing(SamplerKind::kDpmpp2m), kLogSnrSpacing);
  EXPECT_EQ(sampler_spacing(SamplerKind::kDdim), 1.0);
  EXPECT_EQ(sampler_spacing(SamplerKind::kDdpm), 1.0);
  EXPECT_EQ(resolved_spacing(SamplerKind::kDdim, kSamplerSpacing), 1.0);
  EXPECT_EQ(resolved_spacing(SamplerKind::kDpmpp2m, kSamplerSpacing), kLogSnrSpacing);
  EXPECT_EQ(resolved_spacing(SamplerKind::kDdim, 2.0), 2.0);
  EXPECT_EQ(resolved_spacing(SamplerKind::kDpmpp2m, 1.0), 1.0);
  // The samples follow: DDIM at its default is DDIM at spacing 1, not at 1.5.
  const Schedule sch = cosine_schedule(100);
  const EpsFn eps = gaussian_eps(sch, {0.5, -0.5}, {0.3, 0.8});
  SampleConfig ddim = config(SamplerKind::kDdim, 10);
  const Points own = sample(eps, sch, 50, 2, ddim);
  ddim.spacing = 1.0;
  EXPECT_EQ(sample(eps, sch, 50, 2, ddim), own);
  ddim.spacing = 1.5;
  EXPECT_NE(sample(eps, sch, 50, 2, ddim), own);
  SampleConfig dpm = config(SamplerKind::kDpmpp2m, 10);
  const Points dpm_own = sample(eps, sch, 50, 2, dpm);
  dpm.spacing = kLogSnrSpacing;
  EXPECT_EQ(sample(eps, sch, 50, 2, dpm), dpm_own);
  dpm.spacing = 1.5;
  EXPECT_NE(sample(eps, sch, 50, 2, dpm), dpm_own);
}

// The grid checked against the formula computed independently (numpy, from the cosine schedule's
// closed form): K values even in lambda from lambda(round(T max(0.9, 1 - 1/K))) to
// lambda(round(T / K^2) - 1), each at its nearest timestep, the first moved to T-1.
TEST(SamplingTimesteps, LogSnrGridIsEvenInLogSnrBetweenItsClippedEnds) {
  const Schedule sch = cosine_schedule(1000);
  EXPECT_EQ(log_snr_timesteps(sch, 10),
            (std::vector<int>{999, 819, 685, 499, 312, 176, 93, 47, 22, 9}));
  EXPECT_EQ(log_snr_timesteps(sch, 5), (std::vector<int>{999, 714, 378, 134, 39}));
  EXPECT_EQ(sampling_timesteps(sch, 10, kLogSnrSpacing), log_snr_timesteps(sch, 10));
  const auto lambda = [&](int t) {
    return 0.5 * std::log(sch.alpha_bar[t] / (1 - sch.alpha_bar[t]));
  };
  // Even steps in lambda after the first (within the rounding to whole timesteps).
  const std::vector<int> ts = log_snr_timesteps(sch, 20);
  const double step = (lambda(ts[19]) - lambda(950)) / 19;
  for (int i = 2; i < 19; ++i) {
    EXPECT_NEAR(lambda(ts[i]) - lambda(ts[i - 1]), step, 0.25 * step) << i;
  }
  // Any schedule, T and K: starts at T-1, strictly decreasing, K = T is every timestep; the int-T
  // overload refuses it (it has no schedule).
  for (const Schedule& s : {cosine_schedule(100), make_schedule(ScheduleConfig::tutorial()),
                            make_schedule(ScheduleConfig{ScheduleKind::kLinear, 7})}) {
    const int T = s.T();
    for (int K : {1, 2, 3, T / 2, T - 1, T}) {
      const std::vector<int> g = log_snr_timesteps(s, K);
      ASSERT_EQ(static_cast<int>(g.size()), K);
      EXPECT_EQ(g.front(), T - 1);
      EXPECT_GE(g.back(), 0);
      for (int i = 1; i < K; ++i) EXPECT_LT(g[i], g[i - 1]) << "T " << T << " K " << K;
    }
    EXPECT_EQ(log_snr_timesteps(s, T), sampling_timesteps(T, T, 1.0));
    EXPECT_EQ(log_snr_timesteps(s, 0), sampling_timesteps(T, 0, 1.0));
  }
  // alpha_bar exactly 1 at t = 0 (beta 1e-17) or underflowing to 0 near T: lambda is infinite
  // there, and the grid's ends stay inside its finite part (found in review).
  for (const ScheduleConfig& c : {ScheduleConfig{ScheduleKind::kLinear, 1000, 1e-17, 0.02},
                                  ScheduleConfig{ScheduleKind::kLinear, 100000, 1e-4, 0.9}}) {
    const Schedule extreme = make_schedule(c);
    const std::vector<int> g = log_snr_timesteps(extreme, 40);
    for (int i = 1; i < 39; ++i) {  // the last may be t = 0, as with every spacing at K = T
      const double ab = extreme.alpha_bar[g[i]];
      EXPECT_TRUE(ab > 0.0 && ab < 1.0) << "T " << c.T << " i " << i << " t " << g[i];
    }
    EXPECT_GT(g[20], 40) << c.T;  // the collapsed grid had 999, 38, 37, ..., 0
  }
  EXPECT_THROW(log_snr_timesteps(sch, 1001), UsageError);
  EXPECT_THROW(sampling_timesteps(1000, 10, kLogSnrSpacing), Error);
}

TEST(SamplingTimesteps, SpacingTextIsLogSnrOrANumber) {
  EXPECT_EQ(parse_spacing("logsnr"), kLogSnrSpacing);
  EXPECT_EQ(parse_spacing("0"), kSamplerSpacing);
  EXPECT_EQ(parse_spacing("1.5"), 1.5);
  EXPECT_EQ(spacing_name(kLogSnrSpacing), "logsnr");
  EXPECT_EQ(spacing_name(2.0), "2");
  // -1 is kLogSnrSpacing's value: only the name gives it.
  for (const char* bad : {"", "log", "1.5x", "0.5", "5", "nan", "-1", "-inf"}) {
    try {
      parse_spacing(bad);
      ADD_FAILURE() << "accepted --spacing " << bad;
    } catch (const UsageError& e) {
      EXPECT_EQ(
          std::string(e.what()).rfind("--spacing: expected logsnr, 0 (the sampler's own) or a "
                                      "power from 1 to 4, got ",
                                      0),
          0u)
          << e.what();
    }
  }
}

TEST(SamplingTimesteps, RejectsOutOfRange) {
  for (double p : {0.5, 0.999, 4.01, std::nan("")}) {
    try {
      sampling_timesteps(100, 10, p);
      ADD_FAILURE() << "accepted --spacing " << p;
    } catch (const UsageError& e) {
      EXPECT_EQ(
          std::string(e.what()).rfind(
              "--spacing: expected logsnr, 0 (the sampler's own) or a power from 1 to 4, got", 0),
          0)
          << e.what();
    }
  }
  SampleConfig c;
  c.sampler = SamplerKind::kDpmpp2m;
  c.nfe = 10;
  c.spacing = 0.5;
  EXPECT_THROW(validate(c, 100), UsageError);
  c.spacing = kSamplerSpacing;  // 0 is the sampler's own, and valid
  EXPECT_NO_THROW(validate(c, 100));
  EXPECT_THROW(sampling_timesteps(10, 5, kSamplerSpacing), UsageError);  // resolve it first
  EXPECT_THROW(sampling_timesteps(10, 11, 1.0), UsageError);
  EXPECT_THROW(sampling_timesteps(10, -1, 1.0), UsageError);
  EXPECT_THROW(sampling_timesteps(0, 1, 1.0), UsageError);
}

// ---- validation ----

void expect_usage_error(const SampleConfig& c, int T, const std::string& option) {
  try {
    validate(c, T);
    ADD_FAILURE() << "no error for option " << option;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
}

TEST(SampleValidate, AcceptsValidConfigs) {
  EXPECT_NO_THROW(validate(config(SamplerKind::kDdpm, 0), 100));
  EXPECT_NO_THROW(validate(config(SamplerKind::kDdpm, 100), 100));
  EXPECT_NO_THROW(validate(config(SamplerKind::kDdim, 1, 1.0), 100));
  EXPECT_NO_THROW(validate(config(SamplerKind::kDdim, 100, 0.5), 100));
  EXPECT_NO_THROW(validate(config(SamplerKind::kDpmpp2m, 7), 100));
}

TEST(SampleValidate, RejectsWithTheOptionName) {
  expect_usage_error(config(SamplerKind::kDdim, 101), 100, "--nfe");
  expect_usage_error(config(SamplerKind::kDdim, -1), 100, "--nfe");
  expect_usage_error(config(SamplerKind::kDdpm, 50), 100, "--nfe");
  expect_usage_error(config(SamplerKind::kDdim, 10, -0.1), 100, "--eta");
  expect_usage_error(config(SamplerKind::kDdim, 10, 1.5), 100, "--eta");
  expect_usage_error(config(SamplerKind::kDdim, 10, std::nan("")), 100, "--eta");
  expect_usage_error(config(SamplerKind::kDdpm, 0, 0.5), 100, "--eta");
  expect_usage_error(config(SamplerKind::kDpmpp2m, 10, 1.0), 100, "--eta");
  SampleConfig no_threads = config(SamplerKind::kDdpm, 0);
  no_threads.threads = 0;
  expect_usage_error(no_threads, 100, "--threads");
  // sample() validates too, before drawing anything.
  const Schedule sch = cosine_schedule(10);
  EXPECT_THROW(sample(zero_eps(), sch, 4, 2, config(SamplerKind::kDdpm, 5)), UsageError);
  EXPECT_THROW(sample(zero_eps(), sch, 4, 0, config(SamplerKind::kDdpm, 0)), UsageError);
}

TEST(Sample, RejectsAnInconsistentSchedule) {
  Schedule sch = cosine_schedule(10);
  sch.posterior_variance.pop_back();
  EXPECT_THROW(sample(zero_eps(), sch, 4, 2, config(SamplerKind::kDdpm, 0)), Error);
}

TEST(Sample, NonFiniteModelOutputIsAnErrorNotASample) {
  const Schedule sch = cosine_schedule(10);
  const EpsFn nan_eps = [](const float*, int, int n, float* eps) {
    std::fill(eps, eps + static_cast<size_t>(n) * 2, std::nanf(""));
  };
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim, SamplerKind::kDpmpp2m}) {
    EXPECT_THROW(sample(nan_eps, sch, 8, 2, config(k, 0)), Error) << to_string(k);
  }
}

TEST(Sample, ZeroSamplesGivesAnEmptyMatrix) {
  const Schedule sch = cosine_schedule(10);
  const Points x = sample(zero_eps(), sch, 0, 2, config(SamplerKind::kDdim, 3));
  EXPECT_EQ(x.rows(), 0);
  EXPECT_EQ(x.cols(), 2);
}

// ---- seeding, draw order and the exact update equations ----

// Reproduces DDPM (Ho et al. 2020, Alg. 2) and DDIM (Song et al. 2021, Eq. 12) by hand in double
// on a 3-step schedule with a constant eps, drawing the noise in the documented order: x_T, then
// one z per noisy step, all n*D values at a time.
TEST(Sample, DdpmAndDdimFollowThePapersAndTheDocumentedDrawOrder) {
  const Schedule sch = schedule_from_betas({0.1, 0.2, 0.3});
  const int n = 5, D = 2;
  const size_t size = n * D;
  const EpsFn const_eps = [](const float*, int, int n, float* eps) {
    std::fill(eps, eps + static_cast<size_t>(n) * 2, 0.5f);
  };
  for (VarianceKind v : {VarianceKind::kPosterior, VarianceKind::kBeta}) {
    SampleConfig c = config(SamplerKind::kDdpm, 0, 0.0, 11);
    c.variance = v;
    const Points got = sample(const_eps, sch, n, D, c);
    Rng rng(11);
    std::vector<float> xf(size), z(size);
    rng.fill_normal(xf.data(), size);
    std::vector<double> x(xf.begin(), xf.end());
    for (int t = 2; t >= 0; --t) {
      const double sigma =
          std::sqrt(v == VarianceKind::kPosterior ? sch.posterior_variance[t] : sch.beta[t]);
      if (t > 0) rng.fill_normal(z.data(), size);
      for (size_t k = 0; k < size; ++k) {
        x[k] =
            (x[k] - sch.beta[t] / std::sqrt(1 - sch.alpha_bar[t]) * 0.5) / std::sqrt(sch.alpha[t]) +
            (t > 0 ? sigma * z[k] : 0.0);
      }
    }
    for (size_t k = 0; k < size; ++k) {
      EXPECT_NEAR(got.data()[k], x[k], 1e-5 * (1 + std::abs(x[k]))) << to_string(v) << " " << k;
    }
  }
  // DDIM, eta 0.5, K = 2: trailing timesteps {2, 1} (spacing 1), then from t = 1 to
  // alpha_bar = 1.
  SampleConfig trailing = config(SamplerKind::kDdim, 2, 0.5, 11);
  trailing.spacing = 1.0;
  const Points got = sample(const_eps, sch, n, D, trailing);
  Rng rng(11);
  std::vector<float> xf(size), z(size);
  rng.fill_normal(xf.data(), size);
  std::vector<double> x(xf.begin(), xf.end());
  const std::vector<int> ts = {2, 1};
  for (size_t i = 0; i < ts.size(); ++i) {
    const double ab = sch.alpha_bar[ts[i]];
    const double ab_prev = i + 1 < ts.size() ? sch.alpha_bar[ts[i + 1]] : 1.0;
    const double sigma = 0.5 * std::sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev));
    if (sigma > 0) rng.fill_normal(z.data(), size);
    for (size_t k = 0; k < size; ++k) {
      const double x0_hat = (x[k] - std::sqrt(1 - ab) * 0.5) / std::sqrt(ab);
      x[k] = std::sqrt(ab_prev) * x0_hat + std::sqrt(1 - ab_prev - sigma * sigma) * 0.5 +
             (sigma > 0 ? sigma * z[k] : 0.0);
    }
  }
  for (size_t k = 0; k < size; ++k) {
    EXPECT_NEAR(got.data()[k], x[k], 1e-5 * (1 + std::abs(x[k]))) << "ddim " << k;
  }
}

TEST(Sample, SeedsReproduceAndDdimEta0IsDeterministicGivenXT) {
  const Schedule sch = cosine_schedule(100);
  const EpsFn eps = gaussian_eps(sch, {1.0, -1.0}, {0.5, 0.5});
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim, SamplerKind::kDpmpp2m}) {
    const int nfe = k == SamplerKind::kDdpm ? 0 : 10;
    const Points a = sample(eps, sch, 64, 2, config(k, nfe, 0.0, 1));
    const Points b = sample(eps, sch, 64, 2, config(k, nfe, 0.0, 1));
    const Points c = sample(eps, sch, 64, 2, config(k, nfe, 0.0, 2));
    EXPECT_EQ(a, b) << to_string(k);
    EXPECT_GT(max_abs_diff(a, c), 0.1f) << to_string(k);
  }
  // DDIM eta = 0 draws nothing but x_T: its output is a fixed function of x_T. x_T of 32 samples is
  // the first 64 normals of the seed's stream, which is also how x_T of 64 samples starts, so the
  // 32-sample run reproduces the first 32 of the 64 (eps acts per column).
  Trajectory tr;
  SampleConfig c = config(SamplerKind::kDdim, 10, 0.0, 3);
  c.record_every = 1;
  const Points full = sample(eps, sch, 64, 2, c, &tr);
  std::vector<float> x_t(64 * 2);
  Rng(3).fill_normal(x_t.data(), x_t.size());
  ASSERT_FALSE(tr.x.empty());
  EXPECT_EQ(tr.t.front(), 100);
  EXPECT_TRUE(std::equal(x_t.begin(), x_t.end(), tr.x.front().data()));
  const Points half = sample(eps, sch, 32, 2, config(SamplerKind::kDdim, 10, 0.0, 3));
  EXPECT_EQ(half, full.topRows(32));
  // Stochastic DDIM draws step noise after x_T, so neither holds for it.
  const Points noisy = sample(eps, sch, 64, 2, config(SamplerKind::kDdim, 10, 1.0, 3));
  const Points noisy_half = sample(eps, sch, 32, 2, config(SamplerKind::kDdim, 10, 1.0, 3));
  EXPECT_GT(max_abs_diff(full, noisy), 0.1f);
  EXPECT_GT(max_abs_diff(noisy_half, noisy.topRows(32)), 0.1f);
}

// The threads share each step's Box-Muller transform; the noise, and so the samples, are those of
// one thread. An odd number of values over several chunks (the pairs straddle the cuts).
TEST(Sample, ThreadsShareTheNoiseWithoutChangingIt) {
  const Schedule sch = cosine_schedule(20);
  const int n = 16001, D = 3;  // 48,003 normals a step: two chunks of the sampler's 32,768
  const EpsFn eps = gaussian_eps(sch, {0.5, -1.0, 2.0}, {0.3, 0.6, 0.9});
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim}) {
    SampleConfig c =
        config(k, k == SamplerKind::kDdpm ? 0 : 5, k == SamplerKind::kDdim ? 1.0 : 0.0);
    const Points one = sample(eps, sch, n, D, c);
    for (int threads : {2, 3}) {
      c.threads = threads;
      EXPECT_EQ(sample(eps, sch, n, D, c), one) << to_string(k) << ", threads=" << threads;
    }
    c.threads = 1;
  }
}

// With K = T and eta = 1, DDIM's sigma^2 is the posterior variance and its mean is DDPM's: the
// two samplers must agree at every step (same seed, same draws).
TEST(Sample, DdimWithAllStepsAndEta1IsDdpmStepByStep) {
  ScheduleConfig linear = ScheduleConfig::tutorial();
  linear.kind = ScheduleKind::kLinear;
  linear.T = 200;
  for (const Schedule& sch : {cosine_schedule(100), make_schedule(linear)}) {
    const EpsFn eps = gaussian_eps(sch, {0.7, -1.2}, {0.3, 1.5});
    SampleConfig ddpm = config(SamplerKind::kDdpm, 0, 0.0, 5);
    SampleConfig ddim = config(SamplerKind::kDdim, sch.T(), 1.0, 5);
    ddpm.record_every = ddim.record_every = 1;
    Trajectory a, b;
    sample(eps, sch, 500, 2, ddpm, &a);
    sample(eps, sch, 500, 2, ddim, &b);
    ASSERT_EQ(a.t, b.t);
    ASSERT_EQ(static_cast<int>(a.t.size()), sch.T() + 1);
    float worst = 0;
    for (size_t i = 0; i < a.x.size(); ++i) {
      const float scale = 1 + a.x[i].cwiseAbs().maxCoeff();
      worst = std::max(worst, max_abs_diff(a.x[i], b.x[i]) / scale);
    }
    EXPECT_LT(worst, 1e-5f) << "T " << sch.T();
  }
}

// DDPM's last step (t = 0) adds no noise: with eps = 0 it is exactly x / sqrt(alpha_0), for both
// variance choices (beta_0 > 0, so a noise draw there would show with kBeta).
TEST(Sample, DdpmAddsNoNoiseAtTheLastStep) {
  const Schedule sch = cosine_schedule(100);
  for (VarianceKind v : {VarianceKind::kPosterior, VarianceKind::kBeta}) {
    SampleConfig c = config(SamplerKind::kDdpm, 0, 0.0, 9);
    c.variance = v;
    c.record_every = 1;
    Trajectory tr;
    const Points x = sample(zero_eps(), sch, 100, 2, c, &tr);
    ASSERT_EQ(tr.t.size(), 101u);
    ASSERT_EQ(tr.t[99], 1);
    ASSERT_EQ(tr.t[100], 0);
    const Points& x1 = tr.x[99];  // state before the t = 0 step
    const Points& x2 = tr.x[98];  // state before the t = 1 step
    const float inv_sqrt_alpha0 = static_cast<float>(1 / std::sqrt(sch.alpha[0]));
    for (int i = 0; i < x.rows(); ++i) {
      for (int d = 0; d < 2; ++d) EXPECT_FLOAT_EQ(x(i, d), x1(i, d) * inv_sqrt_alpha0);
    }
    // ... while the t = 1 step does add noise.
    const Points no_noise = x2 * static_cast<float>(1 / std::sqrt(sch.alpha[1]));
    EXPECT_GT(max_abs_diff(x1, no_noise), 1e-3f) << to_string(v);
  }
}

// DPM-Solver++(2M)'s first step is first order, which is DDIM's eta = 0 step, and its final step
// returns the x0 prediction like DDIM's step to alpha_bar = 1: with K <= 2 they coincide.
TEST(Sample, DpmSolverWithOneOrTwoStepsIsDdim) {
  const Schedule sch = cosine_schedule(100);
  const EpsFn eps = gaussian_eps(sch, {0.7, -1.2}, {0.3, 1.5});
  for (double spacing : {1.0, 1.5}) {  // the same timesteps for both
    for (int K : {1, 2}) {
      SampleConfig dpm = config(SamplerKind::kDpmpp2m, K), ddim = config(SamplerKind::kDdim, K);
      dpm.spacing = ddim.spacing = spacing;
      const Points a = sample(eps, sch, 500, 2, dpm);
      const Points b = sample(eps, sch, 500, 2, ddim);
      EXPECT_LT(max_abs_diff(a, b), 1e-5f * (1 + b.cwiseAbs().maxCoeff()))
          << "K " << K << " spacing " << spacing;
    }
  }
  // From K = 3 on the second-order correction makes a difference.
  const Points a = sample(eps, sch, 500, 2, config(SamplerKind::kDpmpp2m, 3));
  const Points b = sample(eps, sch, 500, 2, config(SamplerKind::kDdim, 3));
  EXPECT_GT(max_abs_diff(a, b), 1e-2f);
}

// ---- trajectories ----

std::vector<int> expected_labels(int T, int every) {
  std::vector<int> v = {T};
  for (int t = T - 1; t > 0; --t) {
    if (t % every == 0) v.push_back(t);
  }
  v.push_back(0);
  return v;
}

TEST(Trajectory, LabelsAndCountAsDocumented) {
  const Schedule sch = cosine_schedule(100);
  const EpsFn eps = gaussian_eps(sch, {0.0, 0.0}, {1.0, 1.0});
  Trajectory tr;
  // DDPM: x_T, then after each step whose t is a multiple of k, and the final sample (t = 0).
  for (int every : {1, 7, 10, 100}) {
    SampleConfig c = config(SamplerKind::kDdpm, 0);
    c.record_every = every;
    const Points x = sample(eps, sch, 20, 2, c, &tr);
    EXPECT_EQ(tr.t, expected_labels(100, every)) << "every " << every;
    ASSERT_EQ(tr.x.size(), tr.t.size());
    EXPECT_EQ(tr.x.back(), x);
    EXPECT_EQ(tr.x.front().rows(), 20);
  }
  // Subsequence samplers (nfe < T): x_T, then after every step labelled with the t it evaluated;
  // the final sample is labelled 0.
  for (SamplerKind k : {SamplerKind::kDdim, SamplerKind::kDpmpp2m}) {
    SampleConfig c = config(k, 5);
    c.record_every = 3;
    const Points x = sample(eps, sch, 20, 2, c, &tr);
    // At T = 100, K = 5, DDIM's own spacing 1: t = 99, 79, 59, 39, 19; DPM-Solver++'s log-SNR:
    // t = 99, 72, 38, 13, 3.
    const std::vector<int> want = k == SamplerKind::kDdim
                                      ? std::vector<int>{100, 99, 79, 59, 39, 0}
                                      : std::vector<int>{100, 99, 72, 38, 13, 0};
    EXPECT_EQ(tr.t, want) << to_string(k);
    ASSERT_EQ(tr.x.size(), 6u);
    EXPECT_EQ(tr.x.back(), x);
  }
  // All T steps through DDIM record like DDPM.
  SampleConfig c = config(SamplerKind::kDdim, 100);
  c.record_every = 10;
  sample(eps, sch, 20, 2, c, &tr);
  EXPECT_EQ(tr.t, expected_labels(100, 10));
  // record_every = 0 records nothing and clears what was there.
  c.record_every = 0;
  sample(eps, sch, 20, 2, c, &tr);
  EXPECT_TRUE(tr.t.empty());
  EXPECT_TRUE(tr.x.empty());
}

// ---- correctness against the exact predictor ----

struct MomentCase {
  SamplerKind sampler;
  double eta;
  int K;
  VarianceKind variance = VarianceKind::kPosterior;
  double spacing = kSamplerSpacing;  // the sampler's own timesteps unless said
};

std::string case_name(const MomentCase& m) {
  std::string s = to_string(m.sampler);
  if (m.sampler == SamplerKind::kDdim) s += m.eta == 0 ? "_eta0" : "_eta1";
  if (m.sampler == SamplerKind::kDdpm) s += "_" + to_string(m.variance);
  return s + "_K" + std::to_string(m.K);
}

// a u + b for a base random variable u.
struct Affine {
  double a = 0, b = 0;
};
Affine operator*(double k, Affine x) { return {k * x.a, k * x.b}; }
Affine operator+(Affine x, Affine y) { return {x.a + y.a, x.b + y.b}; }
Affine operator+(Affine x, double c) { return {x.a, x.b + c}; }

struct Moments {
  double mean = 0, var = 0;
};

// The exact mean and variance of one coordinate of the sampler's output for data N(mu, s^2) and
// the exact predictor, in double: every step is affine in the state, so the Gaussian x_T ~ N(0, 1)
// stays Gaussian and its moments can be pushed through the papers' equations (written here in
// their own form, independently of the coefficient tables in sampler.cpp). The gap between this
// and (mu, s^2) is the sampler's discretisation error; the gap between it and the samples is
// sampling noise plus any implementation error.
Moments predicted_moments(const Schedule& sch, const MomentCase& m, double mu, double s) {
  const int T = sch.T();
  const std::vector<int> ts = sampling_timesteps(sch, m.K, resolved_spacing(m.sampler, m.spacing));
  // eps*(x, t) as an affine function of x.
  auto eps_of = [&](int t, Affine x) {
    const double ab = sch.alpha_bar[t];
    const double g = std::sqrt(1 - ab) / (ab * s * s + 1 - ab);
    return g * (x + (-std::sqrt(ab) * mu));
  };
  auto x0_of = [&](int t, Affine x) {
    const double ab = sch.alpha_bar[t];
    return (1 / std::sqrt(ab)) * (x + -std::sqrt(1 - ab) * eps_of(t, x));
  };
  const Affine id{1, 0};
  if (m.sampler != SamplerKind::kDpmpp2m) {
    Moments x{0, 1};
    for (size_t i = 0; i < ts.size(); ++i) {
      const int t = ts[i];
      Affine next;  // in terms of the current state
      double sigma = 0;
      if (m.sampler == SamplerKind::kDdpm) {  // Ho et al. 2020, Alg. 2
        next = (1 / std::sqrt(sch.alpha[t])) *
               (id + (-sch.beta[t] / std::sqrt(1 - sch.alpha_bar[t])) * eps_of(t, id));
        if (t > 0) {
          sigma = std::sqrt(m.variance == VarianceKind::kPosterior ? sch.posterior_variance[t]
                                                                   : sch.beta[t]);
        }
      } else {  // Song et al. 2021, Eq. 12
        const double ab = sch.alpha_bar[t];
        const double ab_prev = i + 1 < ts.size() ? sch.alpha_bar[ts[i + 1]] : 1.0;
        sigma = m.eta * std::sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev));
        next = std::sqrt(ab_prev) * x0_of(t, id) +
               std::sqrt(std::max(0.0, 1 - ab_prev - sigma * sigma)) * eps_of(t, id);
      }
      x = {next.a * x.mean + next.b, next.a * next.a * x.var + sigma * sigma};
    }
    return x;
  }
  // DPM-Solver++(2M), Lu et al. 2022, Alg. 2; deterministic, so everything is affine in x_T.
  auto lambda = [&](int t) {
    const double ab = sch.alpha_bar[t];
    return std::log(std::sqrt(ab) / std::sqrt(1 - ab));
  };
  Affine x = id, x0_prev;
  double h_prev = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const int t = ts[i];
    const Affine x0 = x0_of(t, x);
    if (i + 1 == ts.size()) {
      x = x0;
      break;
    }
    const int tn = ts[i + 1];
    const double h = lambda(tn) - lambda(t);
    Affine d = x0;
    if (i > 0) {
      const double r = h_prev / h;
      d = (1 + 1 / (2 * r)) * x0 + (-1 / (2 * r)) * x0_prev;
    }
    x = (std::sqrt(1 - sch.alpha_bar[tn]) / std::sqrt(1 - sch.alpha_bar[t])) * x +
        (-std::sqrt(sch.alpha_bar[tn]) * (std::exp(-h) - 1)) * d;
    x0_prev = x0;
    h_prev = h;
  }
  return {x.b, x.a * x.a};
}

// Data N(mu, diag(s^2)) with s < 1 in one dimension and s > 1 in the other, so shrinking and
// inflating the variance both show.
const std::vector<double> kMu = {1.5, -0.5}, kS = {0.5, 2.0};

std::vector<MomentCase> moment_cases() {
  std::vector<MomentCase> v = {{SamplerKind::kDdpm, 0.0, 100, VarianceKind::kPosterior},
                               {SamplerKind::kDdpm, 0.0, 100, VarianceKind::kBeta}};
  for (int K : {5, 10, 20, 50, 100}) {
    v.push_back({SamplerKind::kDdim, 0.0, K});
    v.push_back({SamplerKind::kDdim, 1.0, K});
    v.push_back({SamplerKind::kDpmpp2m, 0.0, K});
  }
  return v;
}

class GaussianMoments : public ::testing::TestWithParam<MomentCase> {};

// n = 20000 samples: the standard error of a mean is sd / sqrt(n), of a variance
// var sqrt(2 / (n - 1)). The samples must match the exact moments of the discretised sampler
// within 5 standard errors; how far those are from (mu, s^2) is checked below.
TEST_P(GaussianMoments, SamplesMatchTheExactDiscretisedMoments) {
  const MomentCase m = GetParam();
  const int T = 100, n = 20000, D = 2;
  const Schedule sch = cosine_schedule(T);
  SampleConfig c = config(m.sampler, m.K, m.eta);
  c.variance = m.variance;
  c.spacing = m.spacing;
  const Points x = sample(gaussian_eps(sch, kMu, kS), sch, n, D, c);
  ASSERT_EQ(x.rows(), n);
  ASSERT_EQ(x.cols(), D);
  for (int d = 0; d < D; ++d) {
    const Moments want = predicted_moments(sch, m, kMu[d], kS[d]);
    double sum = 0, sum2 = 0;
    for (int i = 0; i < n; ++i) sum += x(i, d);
    const double mean = sum / n;
    for (int i = 0; i < n; ++i) sum2 += (x(i, d) - mean) * (x(i, d) - mean);
    const double var = sum2 / (n - 1);
    const double se_mean = std::sqrt(want.var / n), se_var = want.var * std::sqrt(2.0 / (n - 1));
    const double s2 = kS[d] * kS[d];
    std::printf(
        "MOMENTS %-20s s %.1f  mean err %+.4f  var rel err %+.4f  | exact-discretised: mean "
        "err %+.5f var rel err %+.4f | samples vs it: %+.2f SE, %+.2f SE\n",
        case_name(m).c_str(), kS[d], mean - kMu[d], (var - s2) / s2, want.mean - kMu[d],
        (want.var - s2) / s2, (mean - want.mean) / se_mean, (var - want.var) / se_var);
    EXPECT_NEAR(mean, want.mean, 5 * se_mean) << "dim " << d;
    EXPECT_NEAR(var, want.var, 5 * se_var) << "dim " << d;
  }
}

INSTANTIATE_TEST_SUITE_P(AllSamplers, GaussianMoments, ::testing::ValuesIn(moment_cases()),
                         [](const auto& info) { return case_name(info.param); });

// Relative variance error of the discretised sampler (no sampling noise), per data scale.
double var_error(const Schedule& sch, const MomentCase& m, double s) {
  const Moments p = predicted_moments(sch, m, 0.3, s);
  return (p.var - s * s) / (s * s);
}

// The discretisation error itself: means are right for every sampler; variances converge as K
// grows, at first order for DDIM and faster for DPM-Solver++(2M). The rates are those of even
// (trailing) spacing; DPM-Solver++'s own log-SNR spacing converges too (last check).
TEST(GaussianMoments, DiscretisationErrorShrinksWithSteps) {
  const Schedule sch = cosine_schedule(100);
  for (const MomentCase& m : moment_cases()) {
    for (double s : kS) {
      const Moments p = predicted_moments(sch, m, 1.5, s);
      EXPECT_NEAR(p.mean, 1.5, 0.01 * s) << case_name(m);
    }
  }
  for (double s : kS) {
    // DDPM brackets the truth: posterior variance (the lower bound of Ho et al. 2020, Sec. 3.2)
    // loses variance, beta (the upper bound) adds some; both within 8% at T = 100.
    const double post = var_error(sch, {SamplerKind::kDdpm, 0.0, 100}, s);
    const double beta = var_error(sch, {SamplerKind::kDdpm, 0.0, 100, VarianceKind::kBeta}, s);
    EXPECT_LT(post, 0) << s;
    EXPECT_GT(post, -0.08) << s;
    EXPECT_GT(beta, post) << s;
    EXPECT_LT(std::abs(beta), 0.08) << s;
    double prev_ddim = 1e9;
    for (int K : {5, 10, 20, 50, 100}) {
      const MomentCase ddim_case{SamplerKind::kDdim, 0.0, K, VarianceKind::kPosterior, 1.0};
      const MomentCase dpm_case{SamplerKind::kDpmpp2m, 0.0, K, VarianceKind::kPosterior, 1.0};
      const double ddim = var_error(sch, ddim_case, s);
      const double dpm = var_error(sch, dpm_case, s);
      // DDIM is first order: the error roughly halves when K doubles (K |err| stays about 3).
      EXPECT_LT(std::abs(ddim), prev_ddim) << "s " << s << " K " << K;
      EXPECT_LT(K * std::abs(ddim), 3.5) << "s " << s << " K " << K;
      EXPECT_GT(K * std::abs(ddim), 2.0) << "s " << s << " K " << K;
      prev_ddim = std::abs(ddim);
      // The second-order solver beats it from K = 10 on, and is within 5% from K = 20.
      if (K >= 10) {
        EXPECT_LT(std::abs(dpm), std::abs(ddim)) << "s " << s << " K " << K;
      }
      if (K >= 20) {
        EXPECT_LT(std::abs(dpm), 0.05) << "s " << s << " K " << K;
      }
    }
    EXPECT_LT(std::abs(var_error(sch, {SamplerKind::kDpmpp2m, 0.0, 100}, s)), 0.005);
    // Its own spacing, even in log-SNR: within 5% from K = 20 (2.1% at most measured, where the
    // power 1.5 had 8.7% for broad data, s = 2), better at 10 steps than at 5, and at K = T the
    // same as every spacing, every timestep.
    EXPECT_LT(std::abs(var_error(sch, {SamplerKind::kDpmpp2m, 0.0, 10}, s)),
              std::abs(var_error(sch, {SamplerKind::kDpmpp2m, 0.0, 5}, s)))
        << s;
    for (int K : {20, 30, 50, 70}) {
      EXPECT_LT(std::abs(var_error(sch, {SamplerKind::kDpmpp2m, 0.0, K}, s)), 0.05)
          << "s " << s << " K " << K;
    }
    EXPECT_EQ(var_error(sch, {SamplerKind::kDpmpp2m, 0.0, 100}, s),
              var_error(sch, {SamplerKind::kDpmpp2m, 0.0, 100, VarianceKind::kPosterior, 1.0}, s));
  }
}

// ---- the x0 clamp ----

// Data N(0, 1) in both dimensions and a range well inside it, so the exact predictor's x0 leaves
// the range at most steps of most samples.
const std::vector<double> kMu0 = {0.0, 0.0}, kS1 = {1.0, 1.0};
const X0Range kNarrow = {{-0.5f, -0.2f}, {0.5f, 1.0f}};

SampleConfig clamped(SamplerKind k, int nfe, double eta, X0Clamp mode, const X0Range& r) {
  SampleConfig c = config(k, nfe, eta, 5);
  c.x0_clamp = mode;
  c.x0_range = r;
  return c;
}

// E[x0 | x_t] for data N(mu, s^2), in double.
double exact_x0(const Schedule& sch, int t, double x, double mu, double s) {
  const double ab = sch.alpha_bar[t];
  return mu + s * s * std::sqrt(ab) * (x - std::sqrt(ab) * mu) / (ab * s * s + 1 - ab);
}

double clip(double v, int d, const X0Range& r) { return std::clamp<double>(v, r.lo[d], r.hi[d]); }

size_t outside(const Points& x, const X0Range& r, float tol) {
  size_t k = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (int d = 0; d < 2; ++d) k += x(i, d) < r.lo[d] - tol || x(i, d) > r.hi[d] + tol;
  }
  return k;
}

// Without the clamp most sampled values leave the range; with it (clip or threshold) none does,
// for every sampler.
TEST(X0Clamp, EverySamplerEndsInsideTheRange) {
  const Schedule sch = cosine_schedule(100);
  const EpsFn eps = gaussian_eps(sch, kMu0, kS1);
  const int n = 2000;
  struct Case {
    SamplerKind k;
    int nfe;
    double eta;
  };
  for (const Case& cs : {Case{SamplerKind::kDdpm, 0, 0.0}, Case{SamplerKind::kDdim, 10, 0.0},
                         Case{SamplerKind::kDdim, 10, 1.0}, Case{SamplerKind::kDpmpp2m, 10, 0.0}}) {
    const std::string name = to_string(cs.k) + " eta " + std::to_string(cs.eta);
    const Points off =
        sample(eps, sch, n, 2, clamped(cs.k, cs.nfe, cs.eta, X0Clamp::kOff, kNarrow));
    EXPECT_GT(outside(off, kNarrow, 0.0f), static_cast<size_t>(n)) << name;  // > 25% of 2n
    for (X0Clamp mode : {X0Clamp::kClip, X0Clamp::kThreshold}) {
      const Points x = sample(eps, sch, n, 2, clamped(cs.k, cs.nfe, cs.eta, mode, kNarrow));
      EXPECT_EQ(outside(x, kNarrow, 1e-6f), 0u) << name << " " << to_string(mode);
    }
  }
}

// The clamp acts at every step, not only on the output: each DDIM (eta 0) step, recorded in the
// trajectory, is Song et al.'s Eq. 12 with the clipped x0 of the exact predictor, computed here in
// double: x_prev = sqrt(ab_prev) x0c + sqrt(1 - ab_prev) (x - sqrt(ab) x0c) / sqrt(1 - ab).
TEST(X0Clamp, EachDdimStepUsesTheClippedX0) {
  const Schedule sch = cosine_schedule(100);
  const int K = 10, n = 200;
  SampleConfig c = clamped(SamplerKind::kDdim, K, 0.0, X0Clamp::kClip, kNarrow);
  c.record_every = 1;
  Trajectory tr;
  sample(gaussian_eps(sch, kMu0, kS1), sch, n, 2, c, &tr);
  const std::vector<int> ts = sampling_timesteps(sch, K, resolved_spacing(c.sampler, c.spacing));
  ASSERT_EQ(tr.x.size(), ts.size() + 1);
  size_t clipped = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    const double ab = sch.alpha_bar[ts[i]];
    const double ab_prev = i + 1 < ts.size() ? sch.alpha_bar[ts[i + 1]] : 1.0;
    for (int j = 0; j < n; ++j) {
      for (int d = 0; d < 2; ++d) {
        const double x = tr.x[i](j, d);
        const double x0 = exact_x0(sch, ts[i], x, kMu0[d], kS1[d]);
        const double x0c = clip(x0, d, kNarrow);
        clipped += x0c != x0;
        const double want = std::sqrt(ab_prev) * x0c +
                            std::sqrt(1 - ab_prev) * (x - std::sqrt(ab) * x0c) / std::sqrt(1 - ab);
        ASSERT_NEAR(tr.x[i + 1](j, d), want, 1e-4 * (1 + std::abs(want)))
            << "step " << i << " sample " << j << " dim " << d;
      }
    }
  }
  EXPECT_GT(clipped, ts.size() * n / 2) << "the range should bind at many steps";
}

// DDPM with the clamp is Ho et al.'s clip_denoised: each step goes to the mean of the posterior
// q(x_{t-1} | x_t, x0 = clip(x0_hat)) plus sigma_t z, reproduced here in double with the
// documented draw order (x_T, then one z per step but the last).
TEST(X0Clamp, DdpmStepsToThePosteriorMeanOfTheClippedX0) {
  const Schedule sch = cosine_schedule(20);
  const int n = 100, D = 2;
  const size_t size = static_cast<size_t>(n) * D;
  const SampleConfig c = clamped(SamplerKind::kDdpm, 0, 0.0, X0Clamp::kClip, kNarrow);
  const Points got = sample(gaussian_eps(sch, kMu0, kS1), sch, n, D, c);
  Rng rng(c.seed);
  std::vector<float> xf(size), z(size);
  rng.fill_normal(xf.data(), size);
  std::vector<double> x(xf.begin(), xf.end());
  for (int t = sch.T() - 1; t >= 0; --t) {
    const double ab = sch.alpha_bar[t], ab_prev = sch.alpha_bar_prev[t], beta = sch.beta[t];
    const double c0 = std::sqrt(ab_prev) * beta / (1 - ab);
    const double ct = std::sqrt(sch.alpha[t]) * (1 - ab_prev) / (1 - ab);
    if (t > 0) rng.fill_normal(z.data(), size);
    for (size_t k = 0; k < size; ++k) {
      const int d = static_cast<int>(k % D);
      const double x0c = clip(exact_x0(sch, t, x[k], kMu0[d], kS1[d]), d, kNarrow);
      x[k] = c0 * x0c + ct * x[k] + (t > 0 ? std::sqrt(sch.posterior_variance[t]) * z[k] : 0.0);
    }
  }
  for (size_t k = 0; k < size; ++k) {
    EXPECT_NEAR(got.data()[k], x[k], 1e-4 * (1 + std::abs(x[k]))) << k;
  }
}

// DPM-Solver++(2M) with the clamp: Lu et al.'s Alg. 2 with every data prediction clipped (as
// their Sec. 5 proposes thresholding), reproduced here in double.
TEST(X0Clamp, DpmSolverUsesTheClippedDataPredictions) {
  const Schedule sch = cosine_schedule(100);
  const int n = 100, D = 2, K = 6;
  const size_t size = static_cast<size_t>(n) * D;
  const SampleConfig c = clamped(SamplerKind::kDpmpp2m, K, 0.0, X0Clamp::kClip, kNarrow);
  const Points got = sample(gaussian_eps(sch, kMu0, kS1), sch, n, D, c);
  std::vector<float> xf(size);
  Rng(c.seed).fill_normal(xf.data(), size);
  const std::vector<int> ts = sampling_timesteps(sch, K, resolved_spacing(c.sampler, c.spacing));
  auto lambda = [&](int t) {
    return std::log(std::sqrt(sch.alpha_bar[t]) / std::sqrt(1 - sch.alpha_bar[t]));
  };
  for (size_t k = 0; k < size; ++k) {
    const int d = static_cast<int>(k % D);
    double x = xf[k], x0_prev = 0, h_prev = 0;
    for (size_t i = 0; i < ts.size(); ++i) {
      const int t = ts[i];
      const double x0 = clip(exact_x0(sch, t, x, kMu0[d], kS1[d]), d, kNarrow);
      if (i + 1 == ts.size()) {
        x = x0;
        break;
      }
      const int tn = ts[i + 1];
      const double h = lambda(tn) - lambda(t);
      const double dd = i == 0 ? x0 : (1 + h / (2 * h_prev)) * x0 - h / (2 * h_prev) * x0_prev;
      x = std::sqrt(1 - sch.alpha_bar[tn]) / std::sqrt(1 - sch.alpha_bar[t]) * x -
          std::sqrt(sch.alpha_bar[tn]) * std::expm1(-h) * dd;
      x0_prev = x0;
      h_prev = h;
    }
    EXPECT_NEAR(got.data()[k], x, 1e-4 * (1 + std::abs(x))) << k;
  }
}

// A range that never binds leaves every sample bit for bit as without the clamp, and so does an
// empty range or kOff.
TEST(X0Clamp, ARangeThatNeverBindsChangesNoBit) {
  const Schedule sch = cosine_schedule(100);
  const EpsFn eps = gaussian_eps(sch, kMu0, kS1);
  const X0Range wide = {{-1e9f, -1e9f}, {1e9f, 1e9f}};
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim, SamplerKind::kDpmpp2m}) {
    const int nfe = k == SamplerKind::kDdpm ? 0 : 10;
    const Points off = sample(eps, sch, 300, 2, clamped(k, nfe, 0.0, X0Clamp::kOff, kNarrow));
    for (X0Clamp mode : {X0Clamp::kClip, X0Clamp::kThreshold}) {
      EXPECT_EQ(sample(eps, sch, 300, 2, clamped(k, nfe, 0.0, mode, wide)), off) << to_string(k);
      EXPECT_EQ(sample(eps, sch, 300, 2, clamped(k, nfe, 0.0, mode, {})), off) << to_string(k);
    }
  }
}

TEST(X0Clamp, ARangeOfTheWrongWidthIsAnError) {
  const Schedule sch = cosine_schedule(10);
  const X0Range r3 = {{0, 0, 0}, {1, 1, 1}};
  EXPECT_THROW(
      sample(zero_eps(), sch, 4, 2, clamped(SamplerKind::kDdpm, 0, 0.0, X0Clamp::kClip, r3)),
      Error);
}

// ---- the model adapter ----

// model_eps_fn deals fixed blocks of columns out to threads: its output is model_predict's, bit
// for bit, whatever the thread count.
TEST(ModelEpsFn, MatchesModelPredictForAnyThreadCount) {
  ModelConfig mc;
  mc.dim = 3;
  mc.hidden = 16;
  mc.T = 50;
  Model model(mc);
  Rng rng(4);
  model.init(rng);
  const int n = 1001;  // not a multiple of the chunk sizes
  std::vector<float> x(static_cast<size_t>(n) * mc.dim), want(x.size()), got(x.size());
  rng.fill_normal(x.data(), x.size());
  Workspace ws(mc, 256);
  for (int t : {0, 17, 49}) {
    model_predict(mc, model.params.data(), x.data(), t, n, ws, want.data());
    for (int threads : {1, 2, 3, 8}) {
      const EpsFn eps = model_eps_fn(mc, model.params, threads);
      std::fill(got.begin(), got.end(), std::nanf(""));
      eps(x.data(), t, n, got.data());
      EXPECT_EQ(got, want) << "t " << t << " threads " << threads;
      // The same function called again gives the same bits.
      std::vector<float> again(x.size());
      eps(x.data(), t, n, again.data());
      EXPECT_EQ(again, got);
    }
  }
  // So a whole DPM-Solver++ run through the network gives the same samples on 1 or 3 threads.
  ScheduleConfig sc = ScheduleConfig::tutorial();
  sc.kind = ScheduleKind::kCosine;
  sc.T = mc.T;
  const Schedule sch = make_schedule(sc);
  const Points one = sample(model_eps_fn(mc, model.params, 1), sch, 700, mc.dim,
                            config(SamplerKind::kDpmpp2m, 10));
  const Points three = sample(model_eps_fn(mc, model.params, 3), sch, 700, mc.dim,
                              config(SamplerKind::kDpmpp2m, 10));
  EXPECT_EQ(one.rows(), 700);
  EXPECT_TRUE(one.allFinite());
  EXPECT_EQ(one, three);
}

// Streaming: rows first..first+m-1 of a chunked run are the bits sample() gives them, for every
// sampler's draw pattern (DDPM draws every step but the last, DDIM with eta > 0 every step but the
// last, DPM-Solver++ and DDIM eta = 0 only x_T), odd sizes (n * D odd: the last pair is cut), chunk
// sizes of one block and more, and threads sharing the noise.
TEST(SampleChunked, GivesTheBitsOfOneWholeRun) {
  ModelConfig mc;
  mc.dim = 3;
  mc.hidden = 8;
  mc.T = 20;
  Model model(mc);
  Rng rng(11);
  model.init(rng);
  ScheduleConfig scc;
  scc.kind = ScheduleKind::kCosine;
  scc.T = mc.T;
  const Schedule sch = make_schedule(scc);
  struct Case {
    SamplerKind kind;
    int nfe;
    double eta;
  };
  for (const Case& k : {Case{SamplerKind::kDdpm, 0, 0.0}, Case{SamplerKind::kDdim, 7, 0.5},
                        Case{SamplerKind::kDdim, 5, 0.0}, Case{SamplerKind::kDpmpp2m, 6, 0.0}}) {
    for (int threads : {1, 2}) {
      for (int n : {1, 255, 1001, 1600}) {
        SampleConfig c = config(k.kind, k.nfe, k.eta, 99);
        c.threads = threads;
        const EpsFn eps = model_eps_fn(mc, model.params, threads);
        const Points whole = sample(eps, sch, n, mc.dim, c);
        for (int chunk : {256, 512}) {
          Points joined(n, mc.dim);
          int64_t expect_first = 0;
          sample_chunked(eps, sch, n, mc.dim, c, chunk, [&](int64_t first, const Points& x) {
            EXPECT_EQ(first, expect_first);
            EXPECT_LE(x.rows(), chunk);
            joined.middleRows(first, x.rows()) = x;
            expect_first += x.rows();
          });
          EXPECT_EQ(expect_first, n);
          EXPECT_EQ(std::memcmp(joined.data(), whole.data(), whole.size() * sizeof(float)), 0)
              << to_string(k.kind) << " nfe " << k.nfe << " eta " << k.eta << " threads " << threads
              << " n " << n << " chunk " << chunk;
        }
      }
    }
  }
}

// ---- conditioning: labels passed through to the predictor ----

// The exact predictor of class-conditional point masses: class k's data is the single point
// mu_k (D = 2), so eps = (x - sqrt(ab) mu_k) / sqrt(1 - ab) and every sampler's last step returns
// x0 = mu_k exactly (up to float rounding). The null label (here 3) is never asked for.
ConditionalEpsFn point_mass_eps(const Schedule& sch, const std::vector<std::array<double, 2>>& mu) {
  return [&sch, mu](const float* x, int t, int n, const int32_t* labels, float* eps) {
    const double a = std::sqrt(sch.alpha_bar[t]), s = std::sqrt(1 - sch.alpha_bar[t]);
    for (int j = 0; j < n; ++j) {
      const auto& m = mu.at(static_cast<size_t>(labels[j]));
      for (int d = 0; d < 2; ++d)
        eps[2 * j + d] = static_cast<float>((x[2 * j + d] - a * m[d]) / s);
    }
  };
}

TEST(ConditionalSample, EverySamplerTakesEachColumnToItsOwnClass) {
  const Schedule sch = cosine_schedule(200);
  const std::vector<std::array<double, 2>> mu = {{-2.0, 1.0}, {3.0, 0.5}, {0.25, -4.0}};
  const ConditionalEpsFn eps = point_mass_eps(sch, mu);
  const int n = 300;
  std::vector<int32_t> labels(n);
  for (int j = 0; j < n; ++j) labels[j] = (j * 7) % 3;
  struct Case {
    SamplerKind kind;
    int nfe;
    double eta;
  };
  for (const Case& k : {Case{SamplerKind::kDdpm, 0, 0.0}, Case{SamplerKind::kDdim, 20, 0.0},
                        Case{SamplerKind::kDdim, 13, 1.0}, Case{SamplerKind::kDpmpp2m, 10, 0.0}}) {
    const Points x = sample(eps, sch, n, 2, config(k.kind, k.nfe, k.eta), labels.data());
    double worst = 0;
    for (int j = 0; j < n; ++j) {
      for (int d = 0; d < 2; ++d) worst = std::max(worst, std::abs(x(j, d) - mu[labels[j]][d]));
    }
    EXPECT_LT(worst, 1e-3) << to_string(k.kind) << " nfe " << k.nfe;
  }
}

TEST(ConditionalSample, APredictorThatIgnoresLabelsGivesTheUnconditionalBits) {
  const Schedule sch = cosine_schedule(50);
  const EpsFn plain = gaussian_eps(sch, {0.5, -1.0}, {0.3, 2.0});
  const ConditionalEpsFn cond = [&plain](const float* x, int t, int n, const int32_t*, float* eps) {
    plain(x, t, n, eps);
  };
  std::vector<int32_t> labels(700, 1);
  for (SamplerKind k : {SamplerKind::kDdpm, SamplerKind::kDdim, SamplerKind::kDpmpp2m}) {
    const SampleConfig c = config(k, k == SamplerKind::kDdpm ? 0 : 17);
    const Points a = sample(plain, sch, 700, 2, c);
    const Points b = sample(cond, sch, 700, 2, c, labels.data());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << to_string(k);
  }
}

TEST(ConditionalSample, ChunksGetTheirRowsLabelsAndTheBitsOfOneWholeRun) {
  ModelConfig mc{2, 16, 30, ModelKind::kResMlp, 1};
  mc.classes = 3;
  Model model(mc);
  Rng rng(12);
  model.init(rng);
  const Schedule sch = cosine_schedule(mc.T);
  const int n = 1100;
  std::vector<int32_t> labels(n);
  for (int j = 0; j < n; ++j) labels[j] = static_cast<int32_t>(rng.below(4));  // 3: null
  for (int threads : {1, 3}) {
    const ConditionalEpsFn eps = model_conditional_eps_fn(mc, model.params, threads);
    SampleConfig c = config(SamplerKind::kDdim, 10, 0.3, 5);
    c.threads = threads;
    const Points whole = sample(eps, sch, n, 2, c, labels.data());
    if (threads == 1) {  // the labels matter
      const Points none = sample(eps, sch, n, 2, c, nullptr);
      EXPECT_GT(max_abs_diff(whole, none), 1e-3f);
    }
    Points joined(n, 2);
    int64_t next = 0;
    sample_chunked(
        eps, sch, n, 2, c, 512,
        [&](int64_t first, int m, int32_t* l) {
          EXPECT_EQ(first, next);
          std::copy_n(labels.data() + first, m, l);
          next += m;
        },
        [&](int64_t first, const Points& x) { joined.middleRows(first, x.rows()) = x; });
    EXPECT_EQ(std::memcmp(joined.data(), whole.data(), whole.size() * sizeof(float)), 0)
        << "threads " << threads;
  }
}

TEST(SampleChunked, StopsWithInterruptedAndRejectsOddChunks) {
  const Schedule sch = cosine_schedule(10);
  const EpsFn eps = gaussian_eps(sch, {0.0, 0.0}, {1.0, 1.0});
  int steps = 0;
  EXPECT_THROW(sample_chunked(
                   eps, sch, 1000, 2, config(SamplerKind::kDdpm, 0), 256,
                   [](int64_t, const Points&) {}, [&] { return ++steps == 3; }),
               Interrupted);
  EXPECT_EQ(steps, 3);
  EXPECT_THROW(sample_chunked(eps, sch, 1000, 2, config(SamplerKind::kDdpm, 0), 100,
                              [](int64_t, const Points&) {}),
               Error);
}

TEST(ModelEpsFn, RejectsBadArguments) {
  ModelConfig mc;
  mc.dim = 2;
  mc.hidden = 8;
  mc.T = 10;
  Model model(mc);
  EXPECT_THROW(model_eps_fn(mc, model.params, 0), UsageError);
  std::vector<float> short_params(model.params.begin(), model.params.end() - 1);
  EXPECT_THROW(model_eps_fn(mc, short_params, 1), Error);
  // A timestep beyond the model's table (a schedule with a different T) is an error, not a read
  // past the embedding.
  const EpsFn eps = model_eps_fn(mc, model.params, 1);
  std::vector<float> x(8), y(8);
  EXPECT_THROW(eps(x.data(), 10, 4, y.data()), Error);
  EXPECT_THROW(eps(x.data(), -1, 4, y.data()), Error);
  EXPECT_NO_THROW(eps(x.data(), 9, 4, y.data()));
}

}  // namespace
}  // namespace diffuse
