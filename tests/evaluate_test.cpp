// Tests of the evaluation protocol (include/diffuse/evaluate.h): standardized units, the floor,
// built-in against CSV references, per-column and correlation views, copy_share, summaries. Each
// checks a closed form (W1 of a shift, a correlation, exact copies) or an invariance.
#include "diffuse/evaluate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

// n rows of D independent N(0, 1) columns, then column c scaled by scale[c].
Points gaussian_table(int n, const std::vector<double>& scale, uint64_t seed) {
  Rng rng(seed);
  Points p(n, Eigen::Index(scale.size()));
  rng.fill_normal(p.data(), size_t(p.size()));
  for (size_t c = 0; c < scale.size(); ++c) p.col(Eigen::Index(c)) *= float(scale[c]);
  return p;
}

// A wine-like table: column 0 in the thousands, the other `d - 1` of scale 1, each correlated
// (rho = 0.6) with the previous one, so that there is structure in the small columns.
Points mixed_scale_table(int n, int d, uint64_t seed) {
  Points p = gaussian_table(n, std::vector<double>(size_t(d), 1.0), seed);
  for (Eigen::Index c = 2; c < d; ++c) p.col(c) = 0.6f * p.col(c - 1) + 0.8f * p.col(c);
  p.col(0) = (p.col(0).array() * 300.0f + 750.0f).matrix();
  return p;
}

Reference csv_reference(const Points& rows, const std::string& name = "ref.csv") {
  Reference r;
  r.name = name;
  r.rows = rows;
  for (Eigen::Index c = 0; c < rows.cols(); ++c) r.columns.push_back("c" + std::to_string(c));
  return r;
}

// The shipped protocol, for the tests of its noise and agreement.
EvalConfig config(uint64_t seed = 1) {
  EvalConfig c;
  c.seed = seed;
  return c;
}
// Fewer pairs, for tests whose effects are far above the estimator's noise.
EvalConfig quick(uint64_t seed = 1) {
  EvalConfig c = config(seed);
  c.pairs = 48;
  c.directions = 32;
  return c;
}

TEST(Evaluate, FreshDrawsOfAShapeScoreAtTheFloorAndAWrongNoiseDoesNot) {
  const Reference moons = resolve_reference("moons", 0.1);
  const Points fresh = draw_shape_iid(Shape::kMoons, 3000, 0.1, 77);
  const Evaluation a = evaluate_samples(fresh, moons, config());
  const Evaluation b = evaluate_samples(fresh, moons, config());
  EXPECT_EQ(a.scores.swd, b.scores.swd);  // deterministic for a seed
  EXPECT_EQ(a.scores.swd_floor, b.scores.swd_floor);
  EXPECT_EQ(a.compared, 3000);
  EXPECT_EQ(a.pairs, EvalConfig{}.pairs);
  EXPECT_DOUBLE_EQ(a.scores.swd_ratio, a.scores.swd / a.scores.swd_floor);
  EXPECT_NEAR(a.scores.swd_ratio, 1.0, 0.15);
  const Evaluation wrong =
      evaluate_samples(draw_shape_iid(Shape::kMoons, 3000, 0.2, 77), moons, config());
  EXPECT_GT(wrong.scores.swd_ratio, 1.5);  // measured 1.8
  EXPECT_GT(wrong.scores.mmd, 10 * std::abs(wrong.scores.mmd_floor));
}

TEST(Evaluate, EvenlySpacedMoonsAreCloserThanIidDrawsSoTheFloorUsesIidDraws) {
  // `diffuse data moons` spaces points evenly along the arcs: such a set is closer to the
  // distribution than an i.i.d. one, so a floor from two of them would be optimistic.
  const Reference moons = resolve_reference("moons", 0.1);
  double iid = 0, even = 0;
  for (uint64_t s = 0; s < 3; ++s) {
    iid += evaluate_samples(draw_shape_iid(Shape::kMoons, 2000, 0.1, s), moons, config())
               .scores.swd_ratio;
    even +=
        evaluate_samples(make_shape(Shape::kMoons, 2000, 0.1, s), moons, config()).scores.swd_ratio;
  }
  EXPECT_NEAR(iid / 3, 1.0, 0.1);
  EXPECT_LT(even / 3, 0.9 * iid / 3);
}

TEST(Evaluate, ScalingAColumnOfBothFilesBy1000ChangesNoScore) {
  const Points ref = gaussian_table(1200, {1, 2, 0.5}, 1);
  Points samples = gaussian_table(500, {1.2, 2, 0.5}, 2);
  Points train = gaussian_table(400, {1, 2, 0.5}, 3);
  const Evaluation a = evaluate_samples(samples, csv_reference(ref), quick(), &train);
  Points ref2 = ref, samples2 = samples, train2 = train;
  ref2.col(1) *= 1000.0f;
  samples2.col(1) *= 1000.0f;
  train2.col(1) *= 1000.0f;
  const Evaluation b = evaluate_samples(samples2, csv_reference(ref2), quick(), &train2);
  auto near = [](double x, double y) { EXPECT_NEAR(x, y, 1e-5 * std::max(1.0, std::abs(x))); };
  near(a.scores.swd, b.scores.swd);
  near(a.scores.swd_floor, b.scores.swd_floor);
  near(a.scores.swd_ratio, b.scores.swd_ratio);
  near(a.scores.mmd, b.scores.mmd);
  near(a.scores.mmd_floor, b.scores.mmd_floor);
  near(a.corr_max_diff, b.corr_max_diff);
  for (size_t c = 0; c < 3; ++c) near(a.columns[c].w1_ratio, b.columns[c].w1_ratio);
  EXPECT_EQ(*a.copy_share, *b.copy_share);
  EXPECT_GT(a.scores.swd_ratio, 1.2);  // the first column's wider spread is seen
}

TEST(Evaluate, AFlattenedMixedScaleTableScoresFarWorseThanRealRows) {
  // Issue 11: replacing all but the large column of wine by constants did not move the raw-unit
  // score. In standardized units the flattened table is far from the reference.
  const int d = 13;
  const Points ref = mixed_scale_table(2000, d, 1);
  const Points real = mixed_scale_table(1000, d, 2);
  Points flat = real;
  for (Eigen::Index c = 2; c < d; ++c) flat.col(c).setConstant(ref.col(c).mean());
  const Evaluation good = evaluate_samples(real, csv_reference(ref), quick());
  const Evaluation bad = evaluate_samples(flat, csv_reference(ref), quick());
  EXPECT_LT(good.scores.swd_ratio, 1.3);
  EXPECT_GT(bad.scores.swd_ratio, 4.0 * good.scores.swd_ratio);
  EXPECT_GT(bad.scores.mmd, 10 * std::abs(good.scores.mmd) + 1e-3);
  // Per column: the flattened ones, not the two kept ones. W1(N(0, 1), a point at 0) = E|z| =
  // sqrt(2 / pi), over a floor of about 0.02 to 0.04 at 1,000 rows.
  EXPECT_LT(bad.columns[0].w1_ratio, 2.0);
  EXPECT_LT(bad.columns[1].w1_ratio, 2.0);
  for (int c = 2; c < d; ++c) {
    EXPECT_NEAR(bad.columns[size_t(c)].w1, std::sqrt(2 / M_PI), 0.05) << c;
    EXPECT_GT(bad.columns[size_t(c)].w1_ratio, 8.0) << c;
  }
}

TEST(Evaluate, TheBuiltInShapeAndACsvOfItAgree) {
  const Reference builtin = resolve_reference("8gaussians", 0.1);
  const Reference csv = csv_reference(draw_shape_iid(Shape::kEightGaussians, 20000, 0.1, 5));
  for (double noise : {0.1, 0.14}) {
    const Points samples = draw_shape_iid(Shape::kEightGaussians, 4000, noise, 9);
    const Evaluation a = evaluate_samples(samples, builtin, config());
    const Evaluation b = evaluate_samples(samples, csv, config());
    EXPECT_EQ(a.compared, b.compared);
    EXPECT_NEAR(b.scores.swd_ratio / a.scores.swd_ratio, 1.0, 0.1) << noise;
    EXPECT_NEAR(b.scores.swd_floor / a.scores.swd_floor, 1.0, 0.1) << noise;
  }
}

TEST(Evaluate, ASmallCsvComparesHalvesAndASubsetOfTheSamples) {
  const Points ref = gaussian_table(101, {1, 1}, 1);
  const Evaluation e =
      evaluate_samples(gaussian_table(1000, {1, 1}, 2), csv_reference(ref), quick());
  EXPECT_EQ(e.compared, 50);
  EXPECT_EQ(e.scores.n, 1000);
  EXPECT_NEAR(e.scores.swd_ratio, 1.0, 0.3);
}

TEST(Evaluate, PerColumnDistancesFlagAShiftedColumn) {
  const Points ref = gaussian_table(4000, {1, 10, 1, 0.1}, 1);
  Points samples = gaussian_table(4000, {1, 10, 1, 0.1}, 2);
  samples.col(2).array() += 0.5f;  // half a std
  const Evaluation e = evaluate_samples(samples, csv_reference(ref), quick());
  // W1(N(0, 1), N(0.5, 1)) = 0.5 exactly; the other columns sit at their floor.
  EXPECT_NEAR(e.columns[2].w1, 0.5, 0.05);
  EXPECT_NEAR(e.columns[2].mean_shift, 0.5, 0.05);
  EXPECT_GT(e.columns[2].w1_ratio, 10.0);
  for (size_t c : {0u, 1u, 3u}) EXPECT_LT(e.columns[c].w1_ratio, 2.0) << c;
  const auto j = nlohmann::json::parse(evaluation_json(e));
  EXPECT_EQ(j["worst_column"], "c2");
  EXPECT_EQ(j["columns"].size(), 4u);
  EXPECT_NE(evaluation_text(e).find("c2"), std::string::npos);
}

TEST(Evaluate, CorrelationDifferenceIsTheLostCorrelation) {
  // Reference: columns 0 and 1 with correlation 0.8; samples: the same marginals, independent.
  Points ref = gaussian_table(5000, {1, 1, 1}, 1);
  ref.col(1) = 0.8f * ref.col(0) + 0.6f * ref.col(1);
  const Points samples = gaussian_table(5000, {1, 1, 1}, 2);
  const Evaluation e = evaluate_samples(samples, csv_reference(ref), quick());
  EXPECT_NEAR(e.corr_max_diff, 0.8, 0.05);
  EXPECT_EQ(e.corr_i, 0);
  EXPECT_EQ(e.corr_j, 1);
  EXPECT_LT(e.corr_max_diff_floor, 0.1);
  // The marginals are right: per-column distances do not see it, the correlation does.
  for (const ColumnScore& c : e.columns) EXPECT_LT(c.w1_ratio, 2.0) << c.name;
}

TEST(CopyShare, JitteredCopiesScoreNearOneAndFreshDrawsNearTheFivePercentDefinition) {
  const Points train = gaussian_table(2000, {1, 1, 1}, 1);
  const Points heldout = gaussian_table(500, {1, 1, 1}, 2);
  Points copies = train.topRows(1000);
  copies += 0.01f * gaussian_table(1000, {1, 1, 1}, 3);
  EXPECT_GT(copy_share(copies, heldout, train), 0.9);
  EXPECT_EQ(copy_share(train.topRows(300), heldout, train), 1.0);  // exact copies: all of them
  const double fresh = copy_share(gaussian_table(2000, {1, 1, 1}, 4), heldout, train);
  EXPECT_LT(fresh, 0.15);
  EXPECT_GT(fresh, 0.01);
  // Through evaluate_samples, in standardized units of a mixed-scale table.
  const Points big = mixed_scale_table(3000, 5, 1);
  const Points big_train = big.topRows(2400), big_test = big.bottomRows(600);
  Points jitter = big_train.topRows(1000);
  Points noise = 0.02f * gaussian_table(1000, std::vector<double>(5, 1.0), 6);
  noise.col(0) *= 300.0f;  // in the column's own units
  jitter += noise;
  const Evaluation copied = evaluate_samples(jitter, csv_reference(big_test), quick(), &big_train);
  const Evaluation honest =
      evaluate_samples(mixed_scale_table(1000, 5, 7), csv_reference(big_test), quick(), &big_train);
  EXPECT_GT(*copied.copy_share, 0.9);
  EXPECT_LT(*honest.copy_share, 0.15);
  EXPECT_LT(honest.scores.swd_ratio, 1.3);
  const auto j = nlohmann::json::parse(evaluation_json(copied));
  EXPECT_DOUBLE_EQ(j["copy_share"].get<double>(), *copied.copy_share);
}

TEST(Evaluate, TheEvalSeedMovesTheRatioByLessThanFivePercent) {
  const Reference roll = resolve_reference("swiss_roll", 0.1);
  // Issue 11: the same samples scored 1.41 to 1.81 with four eval seeds. Samples of a slightly
  // too noisy roll (ratio about 1.2 at this size) under four seeds now stay within 5%.
  const Points samples = draw_shape_iid(Shape::kSwissRoll, 10000, 0.13, 3);
  double lo = 1e9, hi = 0;
  for (uint64_t s = 0; s < 4; ++s) {
    const double r = evaluate_samples(samples, roll, config(1000 + s)).scores.swd_ratio;
    lo = std::min(lo, r);
    hi = std::max(hi, r);
  }
  EXPECT_GT(lo, 1.1);
  EXPECT_LT(hi / lo - 1.0, 0.05) << lo << " .. " << hi;
}

TEST(Evaluate, KeepsTheOldJsonKeysAndAddsCoverageForMixtures) {
  const Reference ref = resolve_reference("25gaussians", 0.1);
  const Evaluation e =
      evaluate_samples(draw_shape_iid(Shape::kTwentyFiveGaussians, 2000, 0.1, 1), ref, quick());
  const auto j = nlohmann::json::parse(evaluation_json(e));
  for (const char* k :
       {"swd", "swd_floor", "swd_ratio", "mmd", "mmd_floor", "n", "modes", "modes_hit",
        "mode_coverage", "in_mode_share", "compared", "columns", "corr_max_diff"}) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["modes_hit"], 25);
  EXPECT_EQ(j["n"], 2000);
  EXPECT_FALSE(j.contains("copy_share"));
}

TEST(Evaluate, RejectsMismatchedInputsNamingThem) {
  const Reference moons = resolve_reference("moons", 0.1);
  try {
    evaluate_samples(gaussian_table(100, {1, 1, 1}, 1), moons, quick());
    FAIL() << "expected diffuse::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'moons' is 2-D"), std::string::npos) << e.what();
  }
  try {
    evaluate_samples(gaussian_table(100, {1, 1}, 1),
                     csv_reference(gaussian_table(10, {1, 1, 1}, 1), "r.csv"), quick());
    FAIL() << "expected diffuse::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.csv: has 3 columns"), std::string::npos) << e.what();
  }
  const Points two = gaussian_table(100, {1, 1}, 1);
  const Points three = gaussian_table(100, {1, 1, 1}, 1);
  EXPECT_THROW(evaluate_samples(two, moons, quick(), &three), Error);
  EXPECT_THROW(resolve_reference("heart", 0.1), UsageError);
  EvalConfig bad;
  bad.pairs = 0;
  EXPECT_THROW(evaluate_samples(two, moons, bad), UsageError);
}

TEST(Summary, IsTheMeanAndSampleStdOfEachScore) {
  std::vector<Evaluation> runs(3);
  for (int i = 0; i < 3; ++i) {
    runs[size_t(i)].scores.swd_ratio = 1.0 + i;  // 1, 2, 3: mean 2, std 1
    runs[size_t(i)].scores.swd = 0.1 * (i + 1);
    runs[size_t(i)].columns = {ColumnScore{"x", 0, 0, 2.0 * i, 0}};
  }
  const auto j = nlohmann::json::parse(summary_json(runs));
  EXPECT_DOUBLE_EQ(j["mean"]["swd_ratio"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j["std"]["swd_ratio"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["mean"]["w1_ratio:x"].get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j["std"]["w1_ratio:x"].get<double>(), 2.0);
  EXPECT_EQ(j["runs"].size(), 3u);
  EXPECT_NE(summary_text(runs).find("swd_ratio"), std::string::npos);
}

}  // namespace
}  // namespace diffuse
