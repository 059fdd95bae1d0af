// Tests for the noise schedules: every kind and derived quantity against PyTorch's (fixtures from
// scripts/make_fixtures.py), validation, the terminal-signal warning, and q_sample's closed form.
#include "diffuse/schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

using nlohmann::json;

using test::load_fixture;

const std::vector<double>& field(const Schedule& s, const std::string& name) {
  if (name == "beta") return s.beta;
  if (name == "alpha") return s.alpha;
  if (name == "alpha_bar") return s.alpha_bar;
  if (name == "alpha_bar_prev") return s.alpha_bar_prev;
  if (name == "sqrt_alpha_bar") return s.sqrt_alpha_bar;
  if (name == "sqrt_one_minus_alpha_bar") return s.sqrt_one_minus_alpha_bar;
  if (name == "posterior_variance") return s.posterior_variance;
  throw std::runtime_error("unknown schedule field " + name);
}

const char* const kFields[] = {"beta",
                               "alpha",
                               "alpha_bar",
                               "alpha_bar_prev",
                               "sqrt_alpha_bar",
                               "sqrt_one_minus_alpha_bar",
                               "posterior_variance"};

ScheduleConfig config_of(const json& c) {
  ScheduleConfig cfg = ScheduleConfig::tutorial();
  auto kind = schedule_from_string(c.at("kind").get<std::string>());
  if (!kind) throw std::runtime_error("unknown kind in fixture");
  cfg.kind = *kind;
  cfg.T = c.at("T").get<int>();
  cfg.beta_start = c.at("beta_start").get<double>();
  cfg.beta_end = c.at("beta_end").get<double>();
  cfg.cosine_s = c.at("cosine_s").get<double>();
  return cfg;
}

// The same formulas in double in PyTorch: agree to 1e-10 relative (measured: 4e-14 at worst).
TEST(Schedule, MatchesPyTorchFloat64ForEveryKindAndQuantity) {
  json fx = load_fixture("schedules.json");
  ASSERT_EQ(fx.at("cases").size(), 8u);
  for (const json& c : fx.at("cases")) {
    Schedule s = make_schedule(config_of(c));
    std::string label =
        c.at("kind").get<std::string>() + " T=" + std::to_string(c.at("T").get<int>());
    ASSERT_EQ(s.T(), c.at("T").get<int>()) << label;
    double worst_all = 0;
    for (const char* name : kFields) {
      std::vector<double> ref = c.at("float64").at(name).get<std::vector<double>>();
      const std::vector<double>& got = field(s, name);
      ASSERT_EQ(got.size(), ref.size()) << label << " " << name;
      double worst = 0;
      for (size_t i = 0; i < ref.size(); ++i) {
        double err = std::abs(got[i] - ref[i]);
        EXPECT_LE(err, 1e-10 * std::abs(ref[i]) + 1e-15)
            << label << " " << name << "[" << i << "] = " << got[i] << ", PyTorch " << ref[i];
        if (ref[i] != 0) worst = std::max(worst, err / std::abs(ref[i]));
      }
      worst_all = std::max(worst_all, worst);
    }
    std::printf("  %-15s worst rel err vs float64 PyTorch %.2e\n", label.c_str(), worst_all);
  }
}

// The tutorial's own float32 numbers differ from exact by float32 rounding (up to 2e-4 relative
// where 1 - alpha_bar cancels), so compare absolutely, scaled by the array's largest value.
TEST(Schedule, MatchesTheTutorialsFloat32Numbers) {
  json fx = load_fixture("schedules.json");
  for (const json& c : fx.at("cases")) {
    Schedule s = make_schedule(config_of(c));
    std::string label =
        c.at("kind").get<std::string>() + " T=" + std::to_string(c.at("T").get<int>());
    for (const char* name : kFields) {
      std::vector<double> ref = c.at("float32").at(name).get<std::vector<double>>();
      const std::vector<double>& got = field(s, name);
      ASSERT_EQ(got.size(), ref.size());
      double scale = 0;
      for (double r : ref) scale = std::max(scale, std::abs(r));
      for (size_t i = 0; i < ref.size(); ++i) {
        EXPECT_NEAR(got[i], ref[i], 4e-6 * scale) << label << " " << name << "[" << i << "]";
      }
    }
  }
}

TEST(Schedule, DerivedQuantitiesAreConsistent) {
  for (ScheduleKind kind : {ScheduleKind::kLinear, ScheduleKind::kSigmoid, ScheduleKind::kQuadratic,
                            ScheduleKind::kCosine}) {
    ScheduleConfig cfg = ScheduleConfig::tutorial();
    cfg.kind = kind;
    cfg.T = 50;
    Schedule s = make_schedule(cfg);
    ASSERT_EQ(s.T(), 50);
    EXPECT_EQ(s.config.kind, kind);
    EXPECT_DOUBLE_EQ(s.alpha_bar_prev[0], 1.0);
    EXPECT_DOUBLE_EQ(s.posterior_variance[0], 0.0);
    double prod = 1;
    for (int t = 0; t < s.T(); ++t) {
      EXPECT_GT(s.beta[t], 0.0);
      EXPECT_LT(s.beta[t], 1.0);
      prod *= 1 - s.beta[t];
      EXPECT_NEAR(s.alpha_bar[t], prod, 1e-14);
      EXPECT_NEAR(s.sqrt_alpha_bar[t] * s.sqrt_alpha_bar[t] +
                      s.sqrt_one_minus_alpha_bar[t] * s.sqrt_one_minus_alpha_bar[t],
                  1.0, 1e-14);
      if (t > 0) {
        EXPECT_DOUBLE_EQ(s.alpha_bar_prev[t], s.alpha_bar[t - 1]);
        // The posterior variance lies between 0 and beta_t (Ho et al. 2020, Sec. 3.2).
        EXPECT_GT(s.posterior_variance[t], 0.0);
        EXPECT_LE(s.posterior_variance[t], s.beta[t]);
      }
    }
  }
}

TEST(Schedule, CosineBetasAreClippedAt0999) {
  ScheduleConfig cfg = ScheduleConfig::tutorial();
  cfg.kind = ScheduleKind::kCosine;
  cfg.T = 100;
  Schedule s = make_schedule(cfg);
  // f(T) = cos(pi/2)^2 = 0, so the last beta would be 1 without the clip.
  EXPECT_DOUBLE_EQ(s.beta.back(), 0.999);
  for (double b : s.beta) EXPECT_LE(b, 0.999);
}

TEST(Schedule, TerminalSignalAndWarning) {
  ScheduleConfig tutorial =
      ScheduleConfig::tutorial();  // sigmoid, T=100, 1e-4..0.02: x_T keeps 60% of the signal
  Schedule s = make_schedule(tutorial);
  EXPECT_NEAR(terminal_signal(s), 0.6025, 1e-3);
  std::optional<std::string> w = schedule_warning(s);
  ASSERT_TRUE(w.has_value());
  EXPECT_FALSE(w->empty());
  EXPECT_EQ(w->find('\n'), std::string::npos) << "warning must be one line: " << *w;

  ScheduleConfig cosine = ScheduleConfig::tutorial();
  cosine.kind = ScheduleKind::kCosine;
  cosine.T = 100;
  Schedule c = make_schedule(cosine);
  EXPECT_NEAR(terminal_signal(c), 4.928e-4, 1e-6);
  EXPECT_FALSE(schedule_warning(c).has_value());

  ScheduleConfig linear = ScheduleConfig::tutorial();
  linear.kind = ScheduleKind::kLinear;
  linear.T = 1000;
  Schedule l = make_schedule(linear);
  EXPECT_NEAR(terminal_signal(l), 0.00635, 1e-4);
  EXPECT_FALSE(schedule_warning(l).has_value());

  // Too little signal: the samplers' 1 / sqrt(alpha_bar) overflows float (the sigmoid schedule to
  // beta 0.1, the default before the cosine one, gave NaN from every sampler at T = 1200).
  ScheduleConfig ours;
  ours.kind = ScheduleKind::kSigmoid;
  ours.beta_end = 0.1;
  ours.T = 1200;
  const std::optional<std::string> nan = schedule_warning(make_schedule(ours));
  ASSERT_TRUE(nan.has_value());
  EXPECT_NE(nan->find("will not sample"), std::string::npos) << *nan;
  ours.T = 1000;  // samples (measured)
  EXPECT_FALSE(schedule_warning(make_schedule(ours)).has_value());
}

// Expects make_schedule(cfg) to throw UsageError whose message names `option`.
void expect_usage_error(const ScheduleConfig& cfg, const std::string& option) {
  try {
    make_schedule(cfg);
    ADD_FAILURE() << "no error for a config that should name " << option;
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(option), std::string::npos)
        << "message does not name " << option << ": " << e.what();
  }
}

TEST(Schedule, InvalidConfigsThrowUsageErrorNamingTheOption) {
  for (int T : {1, 0, -5}) {
    for (ScheduleKind kind : {ScheduleKind::kSigmoid, ScheduleKind::kCosine}) {
      ScheduleConfig c = ScheduleConfig::tutorial();
      c.kind = kind;
      c.T = T;
      expect_usage_error(c, "--steps");
    }
  }
  for (double b : {0.0, -1e-4}) {
    ScheduleConfig c = ScheduleConfig::tutorial();
    c.kind = ScheduleKind::kLinear;
    c.beta_start = b;
    expect_usage_error(c, "--beta-start");
  }
  for (double b : {1.0, 1.5}) {
    ScheduleConfig c = ScheduleConfig::tutorial();
    c.kind = ScheduleKind::kQuadratic;
    c.beta_end = b;
    expect_usage_error(c, "--beta-end");
  }
  ScheduleConfig nan_start = ScheduleConfig::tutorial();
  nan_start.beta_start = std::nan("");
  expect_usage_error(nan_start, "--beta-start");
}

TEST(Schedule, NamesRoundTrip) {
  std::vector<std::string> names = schedule_names();
  ASSERT_EQ(names.size(), 4u);
  for (const std::string& n : names) {
    std::optional<ScheduleKind> k = schedule_from_string(n);
    ASSERT_TRUE(k.has_value()) << n;
    EXPECT_EQ(to_string(*k), n);
  }
  EXPECT_EQ(schedule_from_string("sigmoid"), ScheduleKind::kSigmoid);
  EXPECT_EQ(schedule_from_string("cosine"), ScheduleKind::kCosine);
  EXPECT_FALSE(schedule_from_string("cosinus").has_value());
  EXPECT_FALSE(schedule_from_string("").has_value());
}

TEST(Schedule, QSampleMatchesTheClosedForm) {
  ScheduleConfig cfg = ScheduleConfig::tutorial();
  cfg.kind = ScheduleKind::kCosine;
  cfg.T = 40;
  Schedule s = make_schedule(cfg);
  const int B = 37, D = 3;
  Rng rng(7);
  std::vector<float> x0(B * D), eps(B * D), xt(B * D, -999.0f);
  rng.fill_normal(x0.data(), x0.size());
  rng.fill_normal(eps.data(), eps.size());
  std::vector<int> t(B);
  for (int b = 0; b < B; ++b)
    t[b] = b == 0 ? 0 : b == 1 ? cfg.T - 1 : static_cast<int>(rng.below(cfg.T));
  q_sample(s, x0.data(), eps.data(), t.data(), B, D, xt.data());
  for (int b = 0; b < B; ++b) {
    for (int d = 0; d < D; ++d) {
      size_t i = static_cast<size_t>(b) * D + d;  // (D, B) column-major
      double want =
          std::sqrt(s.alpha_bar[t[b]]) * x0[i] + std::sqrt(1 - s.alpha_bar[t[b]]) * eps[i];
      EXPECT_NEAR(xt[i], want, 1e-6 * (std::abs(x0[i]) + std::abs(eps[i])) + 1e-7)
          << "b=" << b << " d=" << d << " t=" << t[b];
    }
  }
}

}  // namespace
}  // namespace diffuse
