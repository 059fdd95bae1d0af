// Tests of the sample-quality metrics: exact cases worked by hand, statistical properties, and
// agreement with the PyTorch peer reference on the fixed sets in tests/fixtures/metrics.json.
#include "diffuse/metrics.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "test_util.h"

namespace diffuse {
namespace {

Points gaussian(int n, int d, uint64_t seed, double mean = 0.0, double std = 1.0) {
  Rng rng(seed);
  Points p(n, d);
  rng.fill_normal(p.data(), size_t(p.size()));
  p = (p.array() * float(std) + float(mean)).matrix();
  return p;
}

Points from_rows(const std::vector<std::vector<double>>& rows) {
  Points p(Eigen::Index(rows.size()), Eigen::Index(rows.at(0).size()));
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t d = 0; d < rows[i].size(); ++d)
      p(Eigen::Index(i), Eigen::Index(d)) = float(rows[i][d]);
  }
  return p;
}

Points from_json(const nlohmann::json& rows) {
  return from_rows(rows.get<std::vector<std::vector<double>>>());
}

Eigen::MatrixXd unit_directions(int d, int k, uint64_t seed) {  // (d, k)
  Rng rng(seed);
  Eigen::MatrixXd theta(d, k);
  for (Eigen::Index i = 0; i < theta.size(); ++i) theta.data()[i] = rng.normal();
  for (Eigen::Index j = 0; j < theta.cols(); ++j) {
    double norm2 = 0.0;
    for (Eigen::Index i = 0; i < d; ++i) norm2 += theta(i, j) * theta(i, j);
    theta.col(j) /= std::sqrt(norm2);
  }
  return theta;
}

// The unbiased MMD^2 written out directly: five exps per pair, full double loops.
double naive_mmd(const Points& a, const Points& b, double med) {
  auto k = [med](const Points& x, Eigen::Index i, const Points& y, Eigen::Index j) {
    const double d2 = (x.row(i).cast<double>() - y.row(j).cast<double>()).squaredNorm();
    double s = 0.0;
    for (double f : {0.25, 0.5, 1.0, 2.0, 4.0}) s += std::exp(-d2 / (2.0 * f * med * f * med));
    return s / 5.0;
  };
  const double m = double(a.rows()), p = double(b.rows());
  double saa = 0, sbb = 0, sab = 0;
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    for (Eigen::Index j = 0; j < a.rows(); ++j)
      if (i != j) saa += k(a, i, a, j);
  for (Eigen::Index i = 0; i < b.rows(); ++i)
    for (Eigen::Index j = 0; j < b.rows(); ++j)
      if (i != j) sbb += k(b, i, b, j);
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    for (Eigen::Index j = 0; j < b.rows(); ++j) sab += k(a, i, b, j);
  return saa / (m * (m - 1)) + sbb / (p * (p - 1)) - 2.0 * sab / (m * p);
}

TEST(Swd, OfASetWithItselfIsZero) {
  const Points a = gaussian(300, 3, 1);
  Rng rng(7);
  EXPECT_EQ(swd(a, a, rng), 0.0);
}

TEST(Swd, OfAShiftedCopyIsTheMeanProjectedShift) {
  // Points on a 1/64 grid and a shift of 0.75 and -1.5: a + delta is exact in float.
  Rng grid(3);
  Points a(256, 2);
  for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = float(int(grid.below(257)) - 128) / 64;
  const double dx = 0.75, dy = -1.5;
  Points b = a;
  b.col(0).array() += float(dx);
  b.col(1).array() += float(dy);
  const Eigen::MatrixXd theta = unit_directions(2, 100, 11);
  double expected = 0.0;
  for (Eigen::Index k = 0; k < theta.cols(); ++k) {
    expected += std::abs(dx * theta(0, k) + dy * theta(1, k)) / double(theta.cols());
  }
  EXPECT_NEAR(swd_with_directions(a, b, theta), expected, 1e-12 * expected);

  // With random directions the mean of |theta . delta| over the circle is |delta| * 2 / pi.
  Rng rng(5);
  const double many = swd(a, b, rng, 10000);
  EXPECT_NEAR(many, std::hypot(dx, dy) * 2.0 / std::numbers::pi, 0.02 * many);
}

TEST(Swd, UnequalSizesUseTheExactQuantileIntegral) {
  // F_a^-1 = 0 on (0, 1/2], 1 after; F_b^-1 = 0, 0.5, 1 on thirds: |difference| is 1/2 on
  // (1/3, 2/3), so W1 = 1/6.
  const double a[] = {0.0, 1.0}, b[] = {0.0, 0.5, 1.0};
  EXPECT_NEAR(wasserstein1_sorted(a, 2, b, 3), 1.0 / 6.0, 1e-15);
  EXPECT_NEAR(wasserstein1_sorted(b, 3, a, 2), 1.0 / 6.0, 1e-15);
  // {0} vs {1, 3}: half the mass moves 1, half moves 3.
  const double c[] = {0.0}, d[] = {1.0, 3.0};
  EXPECT_NEAR(wasserstein1_sorted(c, 1, d, 2), 2.0, 1e-15);
  // In 1-D every unit direction is +1 or -1, so swd is W1 itself.
  Rng rng(1);
  EXPECT_NEAR(swd(from_rows({{0}, {1}}), from_rows({{0}, {0.5}, {1}}), rng), 1.0 / 6.0, 1e-15);
  // Equal sizes: the mean absolute difference of the sorted values.
  const double e[] = {0.0, 1.0, 5.0}, f[] = {2.0, 2.0, 2.0};
  EXPECT_NEAR(wasserstein1_sorted(e, 3, f, 3), (2.0 + 1.0 + 3.0) / 3.0, 1e-15);
}

// swd sorts the projections with a radix sort on their top bits and fixes up ties below: against
// std::sort, on projections that tie in their top bits (one long run, many short ones), with
// duplicates and both signs.
TEST(Swd, SortedProjectionsMatchAPlainSort) {
  Rng rng(42);
  const int n = 3000;
  Points a(n, 1), b(n, 1);
  for (int i = 0; i < n; ++i) {
    // Four values one float ulp apart: equal in their top 33 bits as doubles, one long run.
    a(i, 0) = 1.0f + static_cast<float>(rng.below(4)) * 0x1p-23f;
    b(i, 0) = static_cast<float>(rng.normal());
  }
  for (int i = 0; i < 10; ++i)
    b(700 + i, 0) = 0.5f + static_cast<float>(9 - i) * 0x1p-24f;  // short
  for (int i = 0; i < 200; ++i) b(i, 0) = b(i + 200, 0);          // duplicates
  for (int i = 0; i < 64; ++i) b(i + 500, 0) = -b(i + 500, 0);
  Eigen::MatrixXd theta(1, 2);
  theta << 1.0, -1.0;
  auto w1_plain = [&](double sign) {
    std::vector<double> pa(n), pb(n);
    for (int i = 0; i < n; ++i) pa[i] = sign * double(a(i, 0)), pb[i] = sign * double(b(i, 0));
    std::sort(pa.begin(), pa.end());
    std::sort(pb.begin(), pb.end());
    double s = 0.0;
    for (int i = 0; i < n; ++i) s += std::abs(pa[i] - pb[i]);
    return s / n;
  };
  EXPECT_EQ(swd_with_directions(a, b, theta), (w1_plain(1.0) + w1_plain(-1.0)) / 2.0);
}

TEST(Swd, IsSymmetricForUnequalSizes) {
  const Points a = gaussian(333, 4, 1), b = gaussian(517, 4, 2, 0.3);
  const Eigen::MatrixXd theta = unit_directions(4, 64, 3);
  const double ab = swd_with_directions(a, b, theta);
  EXPECT_GT(ab, 0.1);
  EXPECT_NEAR(ab, swd_with_directions(b, a, theta), 1e-12 * ab);
}

TEST(Swd, RejectsDifferentDimensionsNamingBoth) {
  Rng rng(1);
  try {
    swd(gaussian(10, 3, 1), gaussian(10, 2, 2), rng);
    FAIL() << "expected diffuse::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("a: 3 columns"), std::string::npos) << msg;
    EXPECT_NE(msg.find("b: 2 columns"), std::string::npos) << msg;
  }
}

TEST(Swd, RejectsNonFiniteValues) {
  Points a = gaussian(10, 2, 1);
  a(4, 1) = std::nanf("");
  Rng rng(1);
  try {
    swd(a, gaussian(10, 2, 2), rng);
    FAIL() << "expected diffuse::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 4, column 1"), std::string::npos) << e.what();
  }
}

TEST(Mmd, MedianIsTheLowerMiddlePairwiseDistance) {
  // On a line at 0, 1, 3, 7 the distances are 1, 2, 3, 4, 6, 7: torch.median gives 3, not 3.5.
  EXPECT_EQ(median_pairwise_distance(from_rows({{0}, {1}, {3}, {7}})), 3.0);
  // Odd count: 0, 1, 3 give 1, 2, 3.
  EXPECT_EQ(median_pairwise_distance(from_rows({{0, 0}, {1, 0}, {3, 0}})), 2.0);
  // Only the first 1,000 rows count.
  Points r = gaussian(1001, 2, 4);
  const double first = median_pairwise_distance(r);
  r.row(1000).setConstant(1e6f);
  EXPECT_EQ(median_pairwise_distance(r), first);
  EXPECT_NE(median_pairwise_distance(r, 1001), first);
}

TEST(Mmd, MatchesTheKernelWrittenOutDirectly) {
  const Points a = gaussian(150, 3, 1), b = gaussian(170, 3, 2, 0.5, 0.8), ref = gaussian(90, 3, 3);
  const double med = median_pairwise_distance(ref);
  const double expected = naive_mmd(a, b, med);
  EXPECT_GT(expected, 0.01);
  EXPECT_NEAR(mmd(a, b, ref), expected, 1e-12 * expected);
  // Truncation: only the first max_points rows of a and b.
  EXPECT_NEAR(mmd(a, b, ref, 60), naive_mmd(a.topRows(60), b.topRows(60), med), 1e-12);
}

TEST(Mmd, ASetFarFromItsShiftedCopyApproachesTheKernelBound) {
  // a is tight compared with the bandwidths (set by the spread ref), b is a copy 100 away:
  // K(a, b) vanishes and K(a, a), K(b, b) approach 1, so MMD^2 approaches its bound 2.
  const Points a = gaussian(200, 2, 1, 0.0, 0.01), ref = gaussian(200, 2, 2);
  const Points b = (a.array() + 100.0f).matrix();
  const double v = mmd(a, b, ref);
  EXPECT_NEAR(v, naive_mmd(a, b, median_pairwise_distance(ref)), 1e-12);
  EXPECT_GT(v, 1.99);
  EXPECT_LE(v, 2.0);
}

TEST(Mmd, IsNearZeroForTheSameGaussianAndPositiveForAShiftedOne) {
  const Points a = gaussian(2000, 2, 1), b = gaussian(2000, 2, 2), c = gaussian(2000, 2, 3, 1.0);
  const double same = mmd(a, b, a), shifted = mmd(a, c, a);
  EXPECT_LT(std::abs(same), 2e-3);
  EXPECT_GT(shifted, 0.05);
  EXPECT_GT(shifted, 20 * std::abs(same));
}

TEST(Mmd, DoesNotDependOnTheThreadCount) {
  const Points a = gaussian(700, 2, 1), b = gaussian(650, 2, 2, 0.1);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const double one = mmd(a, b, a);
  omp_set_num_threads(3);
  const double three = mmd(a, b, a);
  omp_set_num_threads(threads);
  EXPECT_EQ(one, three);
}

TEST(Mmd, RejectsAZeroBandwidth) {
  const Points same = Points::Ones(10, 2);
  EXPECT_THROW(mmd(gaussian(10, 2, 1), gaussian(10, 2, 2), same), Error);
}

TEST(Metrics, AgreeWithTheTorchReferenceOnFixtures) {
  const auto j = nlohmann::json::parse(test::slurp(test::fixture_path("metrics.json")));
  ASSERT_GE(j.at("cases").size(), 5u);
  for (const auto& c : j.at("cases")) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const Points a = from_json(c.at("a")), b = from_json(c.at("b"));
    const Points ref = c.at("ref").is_string() ? a : from_json(c.at("ref"));
    const auto rows = c.at("theta").get<std::vector<std::vector<double>>>();
    Eigen::MatrixXd theta(Eigen::Index(rows.size()), Eigen::Index(rows[0].size()));
    for (Eigen::Index d = 0; d < theta.rows(); ++d)
      for (Eigen::Index k = 0; k < theta.cols(); ++k) theta(d, k) = rows[d][k];

    const double want_swd = c.at("swd"), want_med = c.at("median"), want_mmd = c.at("mmd");
    EXPECT_NEAR(swd_with_directions(a, b, theta), want_swd, 1e-9 * std::abs(want_swd));
    EXPECT_NEAR(median_pairwise_distance(ref), want_med, 1e-12 * want_med);
    EXPECT_NEAR(mmd(a, b, ref, c.at("max_points")), want_mmd, 1e-9 * std::abs(want_mmd));
  }
}

TEST(Coverage, ASampleSetMissingOneOfEightModesScoresSevenEighths) {
  Modes modes;
  modes.std = 0.05;
  modes.centres.resize(8, 2);
  for (int k = 0; k < 8; ++k) {
    const double angle = 2.0 * std::numbers::pi * k / 8;
    modes.centres.row(k) << float(2 * std::cos(angle)), float(2 * std::sin(angle));
  }
  // 10 samples near each of modes 0..6 (0.1 < 3 std away), 10 far from every mode (the origin).
  Points s(80, 2);
  Rng rng(2);
  for (int i = 0; i < 70; ++i) {
    const double r = 0.1 * rng.uniform(), a = 2.0 * std::numbers::pi * rng.uniform();
    s(i, 0) = modes.centres(i / 10, 0) + float(r * std::cos(a));
    s(i, 1) = modes.centres(i / 10, 1) + float(r * std::sin(a));
  }
  s.bottomRows(10).setZero();
  const Coverage c = mode_coverage(s, modes);
  EXPECT_EQ(c.modes, 8);
  EXPECT_EQ(c.modes_hit, 7);
  EXPECT_DOUBLE_EQ(c.mode_share, 7.0 / 8.0);
  EXPECT_DOUBLE_EQ(c.sample_share, 70.0 / 80.0);

  // Just outside 3 std of mode 7 does not count.
  s.row(79) = modes.centres.row(7);
  s(79, 0) += 0.16f;
  EXPECT_EQ(mode_coverage(s, modes).modes_hit, 7);
  s.row(79) = modes.centres.row(7);
  s(79, 0) += 0.14f;
  EXPECT_EQ(mode_coverage(s, modes).modes_hit, 8);
}

TEST(Coverage, EightGaussiansWithoutOneModeHitSevenModes) {
  const Points x = make_shape(Shape::kEightGaussians, 4000, 0.1, 3);
  const Modes modes = shape_modes(Shape::kEightGaussians, 0.1);
  ASSERT_EQ(modes.centres.rows(), 8);
  const Coverage all = mode_coverage(x, modes);
  EXPECT_EQ(all.modes_hit, 8);
  // Within 3 std of its centre lies 1 - exp(-9/2) = 98.9% of a 2-D Gaussian's mass.
  EXPECT_NEAR(all.sample_share, 1.0 - std::exp(-4.5), 0.006);

  // Drop every point whose nearest centre is mode 7.
  std::vector<Eigen::Index> keep;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    Eigen::Index nearest = 0;
    (modes.centres.rowwise() - x.row(i)).rowwise().squaredNorm().minCoeff(&nearest);
    if (nearest != 7) keep.push_back(i);
  }
  const Points missing = x(keep, Eigen::all);
  ASSERT_LT(missing.rows(), 3700);
  const Coverage c = mode_coverage(missing, modes);
  EXPECT_EQ(c.modes, 8);
  EXPECT_EQ(c.modes_hit, 7);
  EXPECT_DOUBLE_EQ(c.mode_share, 7.0 / 8.0);
  EXPECT_NEAR(c.sample_share, 1.0 - std::exp(-4.5), 0.006);
}

}  // namespace
}  // namespace diffuse
