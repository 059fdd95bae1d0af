// Tests of the training loop: determinism per seed and thread count, learning, validation of the
// options, divergence handling, EMA and learning-rate schedules.
#include "diffuse/train.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "diffuse/error.h"

namespace diffuse {
namespace {

// A 2-D ring of radius 1 with a little noise: easy to learn, cheap to draw.
Points ring(int n, uint64_t seed) {
  Rng rng(seed);
  Points x(n, 2);
  for (int i = 0; i < n; ++i) {
    const double a = 2 * M_PI * rng.uniform();
    x(i, 0) = static_cast<float>(std::cos(a) + 0.05 * rng.normal());
    x(i, 1) = static_cast<float>(std::sin(a) + 0.05 * rng.normal());
  }
  return x;
}

struct TrainRun {
  std::vector<float> params;
  std::vector<EpochStats> stats;
};

TrainRun run(const Points& data, TrainConfig tc, int hidden = 32) {
  const Schedule s = make_schedule({ScheduleKind::kLinear, 50, 1e-4, 0.1});
  Model m(ModelConfig{2, hidden, 50});
  Rng init(7);
  m.init(init);
  Trainer tr(m, s, data, tc);
  TrainRun r;
  r.stats = train(tr);
  r.params = tr.sampling_params();
  return r;
}

// Largest |a_i - b_i|; infinite when the sizes differ.
double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

TEST(Train, SameSeedAndThreadsGiveIdenticalWeights) {
  const Points data = ring(1000, 1);
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = 3;
  tc.batch_size = 64;
  tc.seed = 5;
  for (int threads : {1, 2}) {
    tc.threads = threads;
    const TrainRun a = run(data, tc), b = run(data, tc);
    EXPECT_EQ(a.params, b.params) << "threads=" << threads;
  }
  tc.threads = 1;
  const TrainRun a = run(data, tc);
  tc.seed = 6;
  const TrainRun c = run(data, tc);
  EXPECT_NE(a.params, c.params);
}

TEST(Train, TwoThreadsComputeTheSameStepsAsOne) {
  // The batch, t and eps are drawn in one order whatever the thread count, so the weights differ
  // only by the rounding of the split gradient sum.
  const Points data = ring(512, 2);
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = 2;
  tc.batch_size = 128;
  tc.threads = 1;
  const TrainRun one = run(data, tc);
  tc.threads = 2;
  const TrainRun two = run(data, tc);
  EXPECT_LT(max_abs_diff(one.params, two.params), 1e-4);
  EXPECT_NEAR(one.stats.back().mean_loss, two.stats.back().mean_loss, 1e-4);
}

TEST(Train, MoreThreadsThanTheLastBatchHasColumns) {
  // 513 rows in batches of 128: the last batch has one column, fewer than the threads, which then
  // sit out its forward and backward but still share the update.
  const Points data = ring(513, 3);
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = 2;
  tc.batch_size = 128;
  tc.ema_decay = 0.9;
  const TrainRun one = run(data, tc);
  for (int threads : {2, 3}) {
    tc.threads = threads;
    const TrainRun many = run(data, tc), again = run(data, tc);
    EXPECT_EQ(many.params, again.params) << "threads=" << threads;
    EXPECT_LT(max_abs_diff(one.params, many.params), 1e-4) << "threads=" << threads;
    EXPECT_EQ(many.stats.back().steps, 10) << "5 steps an epoch, the one-column one included";
  }
}

TEST(Train, LossFallsOnLearnableData) {
  const Points data = ring(2048, 3);
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = 40;
  tc.batch_size = 128;
  const TrainRun r = run(data, tc, 64);
  ASSERT_EQ(r.stats.size(), 40u);
  // The initial loss is about 1 (predicting noise of unit variance badly); a trained model
  // explains a good part of it.
  EXPECT_GT(r.stats.front().mean_loss, 0.6);
  EXPECT_LT(r.stats.back().mean_loss, 0.75 * r.stats.front().mean_loss);
  EXPECT_EQ(r.stats.back().steps, 40 * 16);
  EXPECT_EQ(r.stats.back().epoch, 40);
}

TEST(Train, InvalidOptionsNameTheOption) {
  const Points data = ring(100, 4);
  auto expect_usage = [&](TrainConfig tc, const std::string& option) {
    try {
      validate(tc, data.rows());
      FAIL() << "no error for " << option;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(option), std::string::npos) << e.what();
    }
  };
  TrainConfig tc = TrainConfig::tutorial();
  tc.batch_size = 10;
  auto with = [&](auto f) {
    TrainConfig c = tc;
    f(c);
    return c;
  };
  expect_usage(with([](TrainConfig& c) { c.epochs = -3; }), "--epochs");
  expect_usage(with([](TrainConfig& c) { c.updates = 0; }), "--updates");
  expect_usage(with([](TrainConfig& c) { c.batch_size = -1; }), "--batch-size");
  expect_usage(with([](TrainConfig& c) { c.batch_size = 101; }), "--batch-size");
  expect_usage(with([](TrainConfig& c) { c.lr = 0; }), "--lr");
  expect_usage(with([](TrainConfig& c) { c.lr = -1e-3; }), "--lr");
  expect_usage(with([](TrainConfig& c) { c.threads = 0; }), "--threads");
  expect_usage(with([](TrainConfig& c) { c.ema_decay = 1.0; }), "--ema");
  EXPECT_NO_THROW(validate(tc, data.rows()));
}

TEST(Train, NonFiniteLossStopsWithTheLastGoodWeights) {
  for (int threads : {1, 2}) {
    Points data = ring(256, 5);
    data(17, 1) = std::numeric_limits<float>::quiet_NaN();
    const Schedule s = make_schedule({ScheduleKind::kLinear, 50, 1e-4, 0.1});
    Model m(ModelConfig{2, 16, 50});
    Rng init(1);
    m.init(init);
    const std::vector<float> before = m.params;
    TrainConfig tc = TrainConfig::tutorial();
    tc.epochs = 1;
    tc.batch_size = 256;  // one step, which contains the NaN row
    tc.threads = threads;
    Trainer tr(m, s, data, tc);
    try {
      tr.run_epoch();
      FAIL() << "expected an error, threads=" << threads;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("diverged"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("step 1 "), std::string::npos) << e.what();
    }
    EXPECT_EQ(m.params, before) << "threads=" << threads;
    EXPECT_EQ(tr.adam().step_count, 0) << "threads=" << threads;
  }
}

TEST(Train, EmaTracksTheWeightsWithALag) {
  const Points data = ring(512, 6);
  const Schedule s = make_schedule({ScheduleKind::kLinear, 50, 1e-4, 0.1});
  Model m(ModelConfig{2, 16, 50});
  Rng init(1);
  m.init(init);
  const std::vector<float> w0 = m.params;
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = 5;
  tc.ema_decay = 0.99;
  Trainer tr(m, s, data, tc);
  train(tr);
  const auto& ema = tr.sampling_params();
  ASSERT_EQ(&ema, &tr.ema_params());
  // The average lies between the start and the current weights, closer than the start is.
  double d_ema = 0, d_start = 0;
  for (size_t i = 0; i < w0.size(); ++i) {
    d_ema += std::pow(ema[i] - m.params[i], 2);
    d_start += std::pow(w0[i] - m.params[i], 2);
  }
  EXPECT_GT(d_ema, 0.0);
  EXPECT_LT(d_ema, d_start);
}

TEST(Train, LearningRateWarmupAndCosine) {
  const Points data = ring(1000, 7);
  const Schedule s = make_schedule({ScheduleKind::kLinear, 50, 1e-4, 0.1});
  Model m(ModelConfig{2, 8, 50});
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = 10;
  tc.batch_size = 100;  // 10 steps an epoch, 100 in all
  tc.lr = 1e-2;
  tc.warmup_steps = 4;
  tc.lr_schedule = LrSchedule::kCosine;
  tc.lr_min = 1e-4;
  Trainer tr(m, s, data, tc);
  const double c0 = 1e-4 + 0.5 * (1e-2 - 1e-4) * (1 + std::cos(0.0));
  EXPECT_NEAR(tr.learning_rate(0), c0 * 0.25, 1e-12);
  EXPECT_NEAR(tr.learning_rate(3), (1e-4 + 0.5 * (1e-2 - 1e-4) * (1 + std::cos(M_PI * 3 / 99))),
              1e-12);
  EXPECT_NEAR(tr.learning_rate(99), 1e-4, 1e-12);
  EXPECT_GT(tr.learning_rate(40), tr.learning_rate(60));

  // A warm-up longer than a tenth of the run is cut to a tenth (10 of 100 steps).
  tc.warmup_steps = 1000;
  Trainer capped(m, s, data, tc);
  EXPECT_NEAR(capped.learning_rate(0), c0 * 0.1, 1e-12);
  EXPECT_NEAR(
      capped.learning_rate(9) / (1e-4 + 0.5 * (1e-2 - 1e-4) * (1 + std::cos(M_PI * 9 / 99))), 1.0,
      1e-12);
}

// The default budget is kDefaultUpdates optimizer steps whatever the data's size (150 rows get as
// many as 10,000); the default batch never exceeds the data; --epochs, when given, wins; a run far
// below the default budget is warned about.
TEST(Train, TheDefaultBudgetIsCountedInOptimizerSteps) {
  const TrainConfig defaults;
  struct Case {
    int64_t rows;
    int batch, epochs;
  };
  for (const Case& c : {Case{10000, 128, 1000}, Case{150, 128, 39500}, Case{120, 120, 79000},
                        Case{1437, 128, 6584}}) {
    const TrainConfig r = resolve_budget(defaults, c.rows);
    EXPECT_EQ(r.batch_size, c.batch) << c.rows;
    EXPECT_EQ(r.epochs, c.epochs) << c.rows;
    EXPECT_GE(planned_updates(r, c.rows), kDefaultUpdates) << c.rows;
    EXPECT_LT(planned_updates(r, c.rows), kDefaultUpdates + (c.rows + c.batch - 1) / c.batch);
    EXPECT_FALSE(budget_warning(r, c.rows).has_value()) << c.rows;
    // 150 and 120 rows make 39,500 and 79,000 passes: the samples tend to copy rows.
    EXPECT_EQ(memorization_warning(r, c.rows).has_value(), c.rows < 1000) << c.rows;
  }
  // Breast cancer's 455 rows: 19,750 passes, copy_share 0.10 at the default; not warned about.
  EXPECT_FALSE(memorization_warning(resolve_budget(defaults, 455), 455).has_value());
  const auto copies = memorization_warning(resolve_budget(defaults, 120), 120);
  ASSERT_TRUE(copies.has_value());
  EXPECT_EQ(copies->rfind("79000 passes over 120 rows: ", 0), 0u) << *copies;
  TrainConfig given = defaults;
  given.epochs = 1000;  // the old default: 2,000 steps on 150 rows
  const TrainConfig r = resolve_budget(given, 150);
  EXPECT_EQ(r.epochs, 1000);
  EXPECT_EQ(planned_updates(r, 150), 2000);
  const auto warning = budget_warning(r, 150);
  ASSERT_TRUE(warning.has_value());
  EXPECT_NE(warning->find("only 2000 optimizer steps"), std::string::npos) << *warning;
  given.epochs = 0;
  given.updates = 500;
  EXPECT_EQ(resolve_budget(given, 150).epochs, 250);
  given.batch_size = 200;  // an explicit batch larger than the data is still an error
  EXPECT_THROW(resolve_budget(given, 150), UsageError);

  // The Trainer trains with the resolved budget.
  const Points data = ring(120, 9);
  const Schedule s = make_schedule({ScheduleKind::kLinear, 50, 1e-4, 0.1});
  Model m(ModelConfig{2, 8, 50});
  Trainer tr(m, s, data, defaults);
  EXPECT_EQ(tr.config().batch_size, 120);
  EXPECT_EQ(tr.config().epochs, 79000);
}

TEST(Train, RejectsDataOfTheWrongWidth) {
  const Points data = ring(100, 8);
  const Schedule s = make_schedule({ScheduleKind::kLinear, 50, 1e-4, 0.1});
  Model m(ModelConfig{3, 8, 50});
  TrainConfig tc = TrainConfig::tutorial();
  tc.batch_size = 10;
  EXPECT_THROW(Trainer(m, s, data, tc), Error);
}

}  // namespace
}  // namespace diffuse
