// Tests of the built-in shapes (each against its generating formula), load_data and per-column
// standardization. Not the CSV reader/writer (tests/csv_test.cpp).
#include "diffuse/dataset.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

constexpr double kPi = std::numbers::pi;

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats column_stats(const Points& x, int j) {
  Stats s;
  s.min = s.max = x(0, j);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    s.mean += x(i, j);
    s.min = std::min<double>(s.min, x(i, j));
    s.max = std::max<double>(s.max, x(i, j));
  }
  s.mean /= static_cast<double>(x.rows());
  for (Eigen::Index i = 0; i < x.rows(); ++i) s.std += std::pow(x(i, j) - s.mean, 2);
  s.std = std::sqrt(s.std / static_cast<double>(x.rows()));
  return s;
}

template <typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(ShapeNames, RoundTripAndDescribe) {
  const auto shapes = all_shapes();
  ASSERT_EQ(shapes.size(), 8u);
  const std::vector<std::string> expected = {"swiss_roll",   "s_curve",    "moons",       "circles",
                                             "checkerboard", "8gaussians", "25gaussians", "spiral"};
  for (size_t k = 0; k < shapes.size(); ++k) {
    EXPECT_EQ(to_string(shapes[k]), expected[k]);
    EXPECT_EQ(shape_from_string(expected[k]), shapes[k]);
    EXPECT_TRUE(is_shape_name(expected[k]));
    const std::string d = describe(shapes[k]);
    EXPECT_GT(d.size(), 20u) << expected[k];
    EXPECT_EQ(d.find('\n'), std::string::npos) << expected[k];
  }
  EXPECT_FALSE(shape_from_string("swissroll").has_value());
  EXPECT_FALSE(shape_from_string("").has_value());
  EXPECT_FALSE(is_shape_name("moons.csv"));
}

TEST(MakeShape, RejectsBadArguments) {
  EXPECT_THROW(make_shape(Shape::kMoons, 0, 0.1, 1), UsageError);
  EXPECT_EQ(message_of([] { make_shape(Shape::kMoons, -5, 0.1, 1); }),
            "-n: got -5, expected >= 1 points");
  EXPECT_THROW(make_shape(Shape::kMoons, 10, -0.1, 1), UsageError);
  EXPECT_THROW(make_shape(Shape::kMoons, 10, std::nan(""), 1), UsageError);
  EXPECT_THROW(make_shape(Shape::kMoons, 10, INFINITY, 1), UsageError);
  EXPECT_NE(message_of([] { make_shape(Shape::kSpiral, 10, -1, 1); }).find("--noise"),
            std::string::npos);
  // n = 1 is valid for every shape (moons puts its single point on the inner half circle).
  for (Shape s : all_shapes()) {
    const Points x = make_shape(s, 1, 0.1, 3);
    EXPECT_EQ(x.rows(), 1);
    EXPECT_EQ(x.cols(), 2);
  }
}

TEST(MakeShape, SameSeedSamePointsOtherSeedOtherPoints) {
  for (Shape s : all_shapes()) {
    const Points a = make_shape(s, 500, 0.1, 42);
    const Points b = make_shape(s, 500, 0.1, 42);
    const Points c = make_shape(s, 500, 0.1, 43);
    EXPECT_TRUE(a == b) << to_string(s);
    EXPECT_GT((a - c).cwiseAbs().maxCoeff(), 1e-3) << to_string(s);
    EXPECT_TRUE(a.allFinite()) << to_string(s);
  }
}

TEST(MakeShape, SwissRollFollowsItsFormula) {
  // Without noise each point is t (cos t, sin t) / 10 with t ~ U[1.5pi, 4.5pi].
  const Points x = make_shape(Shape::kSwissRoll, 20000, 0.0, 7);
  std::vector<double> t(x.rows());
  double t_sum = 0, t_min = 1e9, t_max = -1e9;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    t[i] = 10.0 * std::hypot(x(i, 0), x(i, 1));
    EXPECT_NEAR(10.0 * x(i, 0), t[i] * std::cos(t[i]), 1e-4);
    EXPECT_NEAR(10.0 * x(i, 1), t[i] * std::sin(t[i]), 1e-4);
    t_sum += t[i];
    t_min = std::min(t_min, t[i]);
    t_max = std::max(t_max, t[i]);
  }
  EXPECT_GE(t_min, 1.5 * kPi - 1e-5);
  EXPECT_LE(t_max, 4.5 * kPi + 1e-5);
  EXPECT_LT(t_min, 1.5 * kPi + 0.01);  // the whole range is covered
  EXPECT_GT(t_max, 4.5 * kPi - 0.01);
  // Uniform t: mean radius 3pi (sd of the mean 0.02).
  EXPECT_NEAR(t_sum / x.rows(), 3.0 * kPi, 0.08);
  // Extremes of t cos t / 10 and t sin t / 10 on [1.5pi, 4.5pi] (the last one at t = 4.5pi).
  const Stats sx = column_stats(x, 0), sy = column_stats(x, 1);
  EXPECT_NEAR(sx.min, -0.94773, 0.002);
  EXPECT_NEAR(sx.max, 1.26059, 0.002);
  EXPECT_NEAR(sy.min, -1.10407, 0.002);
  EXPECT_NEAR(sy.max, 0.45 * kPi, 0.002);
  // E[t cos t] = 6pi / 3pi = 2 and E[t sin t] = 2 / 3pi, over 10 (sd of the means ~0.005).
  EXPECT_NEAR(sx.mean, 0.2, 0.02);
  EXPECT_NEAR(sy.mean, 2.0 / (30.0 * kPi), 0.02);
}

TEST(MakeShape, SwissRollAndSCurveAddNoiseBeforeDividingByTen) {
  // Same seed: the same t and the same normals, so the difference is noise * N(0, 1) / 10.
  for (Shape s : {Shape::kSwissRoll, Shape::kSCurve}) {
    const Points clean = make_shape(s, 20000, 0.0, 11);
    const Points noisy = make_shape(s, 20000, 0.5, 11);
    const Points d = noisy - clean;
    for (int j = 0; j < 2; ++j) {
      const Stats st = column_stats(d, j);
      EXPECT_NEAR(st.mean, 0.0, 0.002) << to_string(s);
      EXPECT_NEAR(st.std, 0.05, 0.002) << to_string(s);  // 0.5 / 10
    }
  }
}

TEST(MakeShape, SCurveFollowsItsFormula) {
  // (sin t, sign(t) (cos t - 1)) / 10, t ~ U[-1.5pi, 1.5pi]: each point lies on one of two unit
  // circles centred at (0, -1) and (0, 1) (before / 10).
  const Points x = make_shape(Shape::kSCurve, 20000, 0.0, 5);
  double abs_y = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double a = 10.0 * x(i, 0), b = 10.0 * x(i, 1);
    const double on_upper = std::abs(a * a + (b + 1) * (b + 1) - 1);  // t > 0: cos t = b + 1
    const double on_lower = std::abs(a * a + (1 - b) * (1 - b) - 1);  // t < 0: cos t = 1 - b
    EXPECT_LT(std::min(on_upper, on_lower), 1e-4);
    abs_y += std::abs(b);
  }
  const Stats sx = column_stats(x, 0), sy = column_stats(x, 1);
  EXPECT_GE(sx.min, -0.1 - 1e-6);
  EXPECT_LE(sx.max, 0.1 + 1e-6);
  EXPECT_GE(sy.min, -0.2 - 1e-6);
  EXPECT_LE(sy.max, 0.2 + 1e-6);
  EXPECT_NEAR(sx.mean, 0.0, 0.005);
  EXPECT_NEAR(sy.mean, 0.0, 0.005);
  // E|1 - cos t| = 1 - sin(1.5pi) / (1.5pi) = 1 + 2 / (3pi).
  EXPECT_NEAR(abs_y / x.rows(), 1.0 + 2.0 / (3.0 * kPi), 0.02);
}

TEST(MakeShape, MoonsAreTwoHalfCircles) {
  const int n = 1001;  // 500 outer, 501 inner
  const Points x = make_shape(Shape::kMoons, n, 0.0, 9);
  int outer = 0, inner = 0, outer_in_first_half = 0;
  std::set<std::pair<float, float>> distinct;
  for (Eigen::Index i = 0; i < n; ++i) {
    const double a = x(i, 0), b = x(i, 1);
    distinct.insert({x(i, 0), x(i, 1)});
    if (std::abs(std::hypot(a, b) - 1) < 1e-5 && b >= -1e-6) {
      ++outer;
      if (i < n / 2) ++outer_in_first_half;
    } else if (std::abs(std::hypot(a - 1, b - 0.5) - 1) < 1e-5 && b <= 0.5 + 1e-6) {
      ++inner;
    }
  }
  EXPECT_EQ(outer, 500);
  EXPECT_EQ(inner, 501);
  EXPECT_EQ(distinct.size(), static_cast<size_t>(n));  // evenly spaced, no repeats
  // Shuffled: the outer points are not all in front.
  EXPECT_GT(outer_in_first_half, 200);
  EXPECT_LT(outer_in_first_half, 300);

  // With noise: the means stay at (0.5, 0.25) and each coordinate gets sd 0.1 around the curve.
  const Points y = make_shape(Shape::kMoons, 20000, 0.1, 9);
  EXPECT_NEAR(column_stats(y, 0).mean, 0.5, 0.01);
  EXPECT_NEAR(column_stats(y, 1).mean, 0.25, 0.01);
  EXPECT_GT(column_stats(y, 0).min, -1.6);
  EXPECT_LT(column_stats(y, 0).max, 2.6);
}

TEST(MakeShape, CirclesHaveRadiusOneAndHalf) {
  const Points x = make_shape(Shape::kCircles, 10001, 0.0, 4);
  int big = 0, small = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double r = std::hypot(x(i, 0), x(i, 1));
    if (std::abs(r - 1.0) < 1e-5) ++big;
    if (std::abs(r - 0.5) < 1e-5) ++small;
  }
  EXPECT_EQ(big, 5000);
  EXPECT_EQ(small, 5001);
  EXPECT_NEAR(column_stats(x, 0).mean, 0.0, 0.03);  // uniform angles
  EXPECT_NEAR(column_stats(x, 1).mean, 0.0, 0.03);
}

TEST(MakeShape, CheckerboardFillsTheDarkSquaresEvenly) {
  const int n = 16000;
  const Points x = make_shape(Shape::kCheckerboard, n, 0.0, 2);
  std::vector<int> count(16, 0);
  for (Eigen::Index p = 0; p < n; ++p) {
    ASSERT_GE(x(p, 0), -4.0f);
    ASSERT_LT(x(p, 0), 4.0f);
    ASSERT_GE(x(p, 1), -4.0f);
    ASSERT_LT(x(p, 1), 4.0f);
    const int i = static_cast<int>(std::floor((x(p, 0) + 4.0) / 2.0));
    const int j = static_cast<int>(std::floor((x(p, 1) + 4.0) / 2.0));
    ++count[i * 4 + j];
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      if ((i + j) % 2 == 0) {
        EXPECT_NEAR(count[i * 4 + j], n / 8, 200) << i << "," << j;  // sd ~ 42
      } else {
        EXPECT_EQ(count[i * 4 + j], 0) << i << "," << j;
      }
    }
  }
  EXPECT_NEAR(column_stats(x, 0).mean, 0.0, 0.05);
  EXPECT_NEAR(column_stats(x, 1).mean, 0.0, 0.05);
}

// Every mode gets about n / K points within 3 std, and nearly every point is near some mode.
void check_mixture(Shape s, int k, double spacing) {
  const double noise = 0.1;
  const int n = 1000 * k;
  const Modes m = shape_modes(s, noise);
  ASSERT_EQ(m.centres.rows(), k);
  ASSERT_EQ(m.centres.cols(), 2);
  EXPECT_EQ(m.std, noise);
  // Modes are far apart relative to the std.
  for (int a = 0; a < k; ++a) {
    for (int b = a + 1; b < k; ++b) {
      EXPECT_GE((m.centres.row(a) - m.centres.row(b)).norm(), spacing - 1e-5);
    }
  }
  const Points x = make_shape(s, n, noise, 8);
  std::vector<int> near(k, 0);
  std::vector<double> sq(k, 0.0);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (int c = 0; c < k; ++c) {
      const double d = (x.row(i) - m.centres.row(c)).norm();
      if (d < 3 * m.std) {
        ++near[c];
        sq[c] += d * d;
      }
    }
  }
  int total = 0;
  for (int c = 0; c < k; ++c) {
    // P(|N(0, I2)| < 3) = 1 - exp(-4.5) = 0.989; 1000 draws per mode, sd ~ 31.
    EXPECT_NEAR(near[c], 989, 130) << to_string(s) << " mode " << c;
    // E[d^2 | d < 3 std] is a bit under 2 std^2 (2-D): the spread matches the std.
    EXPECT_NEAR(std::sqrt(sq[c] / near[c]), std::sqrt(2.0) * noise, 0.02);
    total += near[c];
  }
  EXPECT_GT(total, 0.98 * n);
}

TEST(MakeShape, EightGaussiansOnCircleOfRadiusTwo) {
  const Modes m = shape_modes(Shape::kEightGaussians, 0.1);
  ASSERT_EQ(m.centres.rows(), 8);
  for (int c = 0; c < 8; ++c) {
    EXPECT_NEAR(m.centres.row(c).norm(), 2.0, 1e-6);
    EXPECT_NEAR(std::atan2(m.centres(c, 1), m.centres(c, 0)),
                std::remainder(2 * kPi * c / 8, 2 * kPi), 1e-6);
  }
  check_mixture(Shape::kEightGaussians, 8, 4.0 * std::sin(kPi / 8));
}

TEST(MakeShape, TwentyFiveGaussiansOnUnitGrid) {
  const Modes m = shape_modes(Shape::kTwentyFiveGaussians, 0.1);
  ASSERT_EQ(m.centres.rows(), 25);
  std::set<std::pair<float, float>> grid;
  for (int c = 0; c < 25; ++c) grid.insert({m.centres(c, 0), m.centres(c, 1)});
  for (int i = -2; i <= 2; ++i) {
    for (int j = -2; j <= 2; ++j) EXPECT_EQ(grid.count({float(i), float(j)}), 1u);
  }
  check_mixture(Shape::kTwentyFiveGaussians, 25, 1.0);
}

TEST(MakeShape, ModesScaleWithNoiseAndAreEmptyForOtherShapes) {
  EXPECT_EQ(shape_modes(Shape::kEightGaussians, 0.3).std, 0.3);
  for (Shape s : {Shape::kSwissRoll, Shape::kSCurve, Shape::kMoons, Shape::kCircles,
                  Shape::kCheckerboard, Shape::kSpiral}) {
    const Modes m = shape_modes(s, 0.1);
    EXPECT_EQ(m.centres.rows(), 0) << to_string(s);
    EXPECT_EQ(m.std, 0.0);
  }
}

TEST(MakeShape, SpiralIsArchimedean) {
  // r = theta / pi, theta = 4pi sqrt(u): r = 4 sqrt(u), so P(r < 2) = 1/4 and E[r] = 8/3.
  const Points x = make_shape(Shape::kSpiral, 20000, 0.0, 6);
  double r_sum = 0;
  int inside = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double r = std::hypot(x(i, 0), x(i, 1));
    ASSERT_LE(r, 4.0 + 1e-5);
    EXPECT_NEAR(x(i, 0), r * std::cos(kPi * r), 2e-4);
    EXPECT_NEAR(x(i, 1), r * std::sin(kPi * r), 2e-4);
    r_sum += r;
    inside += r < 2.0;
  }
  EXPECT_NEAR(r_sum / x.rows(), 8.0 / 3.0, 0.03);
  EXPECT_NEAR(inside / double(x.rows()), 0.25, 0.015);
}

TEST(MakeShape, NoiseHasTheRequestedStd) {
  // Every 2-D shape adds noise * N(0, 1) to the same base points.
  for (Shape s : {Shape::kCircles, Shape::kCheckerboard, Shape::kEightGaussians,
                  Shape::kTwentyFiveGaussians, Shape::kSpiral, Shape::kMoons}) {
    // Same seed: same base points and normals (moons and circles shuffle after adding the noise,
    // with the same permutation), so rows stay paired.
    const Points d = make_shape(s, 20000, 0.2, 13) - make_shape(s, 20000, 0.0, 13);
    for (int j = 0; j < 2; ++j) EXPECT_NEAR(column_stats(d, j).std, 0.2, 0.006) << to_string(s);
  }
}

TEST(LoadData, ShapeNamePathAndUnknownName) {
  const Dataset d = load_data("moons", 300, 0.1, 5);
  EXPECT_TRUE(d.x == make_shape(Shape::kMoons, 300, 0.1, 5));
  EXPECT_EQ(d.columns, (std::vector<std::string>{"x", "y"}));

  test::TempDir dir;
  const std::string path = dir.file("pts.csv");
  Points p(2, 3);
  p << 1, 2, 3, 4.5f, -5, 6e-3f;
  write_csv(path, p, {"a", "b", "c"});
  const Dataset f = load_data(path, 1, 0.1, 1);  // n, noise and seed do not apply to files
  EXPECT_TRUE(f.x == p);
  EXPECT_EQ(f.columns, (std::vector<std::string>{"a", "b", "c"}));

  try {
    load_data("swirl", 10, 0.1, 1);
    FAIL() << "no exception";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'swirl'"), std::string::npos) << m;
    for (Shape s : all_shapes()) EXPECT_NE(m.find(to_string(s)), std::string::npos) << m;
  }
  // A missing path is an input error naming the file, not an unknown shape.
  EXPECT_EQ(message_of([&] { load_data(dir.file("none.csv"), 10, 0.1, 1); }),
            dir.file("none.csv") + ": no such file");
  EXPECT_THROW(load_data("moons", 0, 0.1, 1), UsageError);
}

TEST(Normalization, StandardizesAndUndoes) {
  Rng rng(1);
  const int n = 5000;
  Points x(n, 3);
  for (int i = 0; i < n; ++i) {
    x(i, 0) = static_cast<float>(3.0 + 2.0 * rng.normal());
    x(i, 1) = static_cast<float>(1e4 + 250.0 * rng.normal());
    x(i, 2) = static_cast<float>(1e-3 * rng.uniform());
  }
  std::vector<int> constant{99};
  const Normalization norm = fit_normalization(x, &constant);
  EXPECT_TRUE(constant.empty());
  EXPECT_NEAR(norm.mean[0], 3.0, 0.1);
  EXPECT_NEAR(norm.std[0], 2.0, 0.1);
  EXPECT_NEAR(norm.mean[1], 1e4, 15);
  EXPECT_NEAR(norm.std[1], 250, 10);
  EXPECT_NEAR(norm.std[2], 1e-3 / std::sqrt(12.0), 2e-5);

  Points y = x;
  norm.apply(y);
  for (int j = 0; j < 3; ++j) {
    const Stats s = column_stats(y, j);
    EXPECT_NEAR(s.mean, 0.0, 1e-5);
    EXPECT_NEAR(s.std, 1.0, 1e-5);
  }
  norm.undo(y);
  // Float rounding of (x - mean) / std and of y * std + mean: a few ulps of |x - mean| and |x|.
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < 3; ++j) {
      const double scale = std::abs(x(i, j)) + std::abs(x(i, j) - norm.mean[j]);
      EXPECT_NEAR(y(i, j), x(i, j), 1e-6 * scale) << i << "," << j;
    }
  }
}

TEST(Normalization, ExactSmallExampleAndConstantColumn) {
  Points x(4, 3);
  x << 1, 7, -2,  //
      2, 7, 0,    //
      3, 7, 2,    //
      4, 7, 4;
  std::vector<int> constant;
  const Normalization norm = fit_normalization(x, &constant);
  EXPECT_EQ(constant, std::vector<int>{1});
  EXPECT_DOUBLE_EQ(norm.mean[0], 2.5);
  EXPECT_DOUBLE_EQ(norm.std[0], std::sqrt(1.25));  // population std
  EXPECT_DOUBLE_EQ(norm.mean[1], 7.0);
  EXPECT_DOUBLE_EQ(norm.std[1], 1.0);
  EXPECT_DOUBLE_EQ(norm.mean[2], 1.0);
  EXPECT_DOUBLE_EQ(norm.std[2], std::sqrt(5.0));
  Points y = x;
  norm.apply(y);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y(i, 1), 0.0f);  // constant column centred, not scaled
  EXPECT_NEAR(y(0, 0), -1.5 / std::sqrt(1.25), 1e-6);
  norm.undo(y);
  EXPECT_TRUE(y.isApprox(x, 1e-6f));
  EXPECT_TRUE(y.col(1) == x.col(1));
}

TEST(Normalization, EmptyIsIdentityAndBadInputsThrow) {
  Points x(2, 2);
  x << 1, 2, 3, 4;
  Points y = x;
  Normalization none;
  EXPECT_TRUE(none.empty());
  none.apply(y);
  none.undo(y);
  EXPECT_TRUE(y == x);

  const Normalization two = fit_normalization(x);
  Points wide(2, 3);
  wide.setZero();
  EXPECT_THROW(two.apply(wide), Error);
  EXPECT_THROW(fit_normalization(Points(0, 2)), Error);
  x(1, 1) = std::nanf("");
  EXPECT_NE(message_of([&] { fit_normalization(x); }).find("column 2, row 2"), std::string::npos);
}

}  // namespace
}  // namespace diffuse
