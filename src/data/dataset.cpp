// Built-in 2-D shapes (seeded, generated in double), data loading by name or path, and per-column
// standardization. Not the CSV parser (src/data/csv.cpp) and not a general sampling library.
#include "diffuse/dataset.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/rng.h"

namespace diffuse {
namespace {

constexpr double kPi = std::numbers::pi;

struct ShapeInfo {
  Shape shape;
  const char* name;
  const char* description;
};

constexpr ShapeInfo kShapes[] = {
    {Shape::kSwissRoll, "swiss_roll",
     "sklearn make_swiss_roll, columns (0, 2) / 10: t (cos t, sin t), t ~ U[1.5pi, 4.5pi]; the "
     "tutorial's data"},
    {Shape::kSCurve, "s_curve",
     "sklearn make_s_curve, columns (0, 2) / 10: (sin t, sign(t) (cos t - 1)), t ~ U[-1.5pi, "
     "1.5pi]"},
    {Shape::kMoons, "moons",
     "sklearn make_moons: two interleaved half circles of radius 1, evenly spaced, shuffled"},
    {Shape::kCircles, "circles",
     "two concentric circles, radius 1 (half the points) and 0.5, uniform angles"},
    {Shape::kCheckerboard, "checkerboard",
     "uniform on the 8 dark 2x2 squares of a 4x4 board covering [-4, 4]^2"},
    {Shape::kEightGaussians, "8gaussians",
     "8 equal Gaussian modes (std = noise) evenly spaced on the circle of radius 2"},
    {Shape::kTwentyFiveGaussians, "25gaussians",
     "25 equal Gaussian modes (std = noise) on the 5x5 grid {-2, -1, 0, 1, 2}^2"},
    {Shape::kSpiral, "spiral",
     "Archimedean spiral r = theta / pi, theta in [0, 4pi] (two turns, r <= 4), uniform along the "
     "arc"},
};

const ShapeInfo& info(Shape s) {
  for (const auto& i : kShapes) {
    if (i.shape == s) return i;
  }
  throw Error("unknown shape id " + std::to_string(static_cast<int>(s)));
}

// The shapes with classes, for messages.
std::string labelled_shape_names() {
  std::string out;
  for (const auto& i : kShapes) {
    if (shape_class_count(i.shape) == 0) continue;
    if (!out.empty()) out += ", ";
    out += i.name;
  }
  return out;
}

std::string valid_names() {
  std::string out;
  for (const auto& i : kShapes) {
    if (!out.empty()) out += ", ";
    out += i.name;
  }
  return out;
}

// Shuffles rows in place (Fisher-Yates), for shapes generated in a fixed order, and their classes
// with them when given.
void shuffle_rows(Points& x, Rng& rng, std::vector<int32_t>* classes) {
  for (Eigen::Index i = x.rows() - 1; i > 0; --i) {
    const auto j = static_cast<Eigen::Index>(rng.below(static_cast<uint32_t>(i + 1)));
    x.row(i).swap(x.row(j));
    if (classes != nullptr) std::swap((*classes)[size_t(i)], (*classes)[size_t(j)]);
  }
}

// numpy.linspace(0, stop, count) element k (endpoint included; a single point is 0).
double linspace(double stop, int count, int k) { return count > 1 ? stop * k / (count - 1) : 0.0; }

// Mode centres, (K, 2).
Points eight_centres() {
  Points c(8, 2);
  for (int k = 0; k < 8; ++k) {
    const double a = 2.0 * kPi * k / 8.0;
    c(k, 0) = static_cast<float>(2.0 * std::cos(a));
    c(k, 1) = static_cast<float>(2.0 * std::sin(a));
  }
  return c;
}

Points twenty_five_centres() {
  Points c(25, 2);
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 5; ++j) {
      c(i * 5 + j, 0) = static_cast<float>(i - 2);
      c(i * 5 + j, 1) = static_cast<float>(j - 2);
    }
  }
  return c;
}

// Each row a uniformly chosen centre plus N(0, noise^2 I); classes[i] = the centre's index.
Points mixture(const Points& centres, int n, double noise, Rng& rng, int32_t* classes) {
  Points x(n, 2);
  const auto k = static_cast<uint32_t>(centres.rows());
  for (int i = 0; i < n; ++i) {
    const uint32_t m = rng.below(k);
    classes[i] = static_cast<int32_t>(m);
    x(i, 0) = static_cast<float>(centres(m, 0) + noise * rng.normal());
    x(i, 1) = static_cast<float>(centres(m, 1) + noise * rng.normal());
  }
  return x;
}

}  // namespace

std::string to_string(Shape s) { return info(s).name; }

std::optional<Shape> shape_from_string(std::string_view name) {
  for (const auto& i : kShapes) {
    if (name == i.name) return i.shape;
  }
  return std::nullopt;
}

std::vector<Shape> all_shapes() {
  std::vector<Shape> out;
  for (const auto& i : kShapes) out.push_back(i.shape);
  return out;
}

std::string describe(Shape s) { return info(s).description; }

void check_shape_size(int n, double noise) {
  if (n < 1) throw UsageError("-n: got " + std::to_string(n) + ", expected >= 1 points");
  if (!std::isfinite(noise) || noise < 0 || noise > kMaxShapeNoise) {
    char got[32];
    std::snprintf(got, sizeof got, "%g", noise);
    throw UsageError(std::string("--noise: got ") + got +
                     ", expected a finite number >= 0 and <= " +
                     std::to_string(static_cast<int>(kMaxShapeNoise)) +
                     " (the shapes span a few units; more noise only hides them)");
  }
  // The points, and the copies training makes of them (standardized, shuffled batches).
  check_memory(static_cast<uint64_t>(n) * 2 * sizeof(float) * 4,
               "-n " + std::to_string(n) + " points", /*usage=*/true);
}

int shape_class_count(Shape s) {
  switch (s) {
    case Shape::kMoons:
    case Shape::kCircles:
    case Shape::kSpiral:
      return 2;
    case Shape::kCheckerboard:
    case Shape::kEightGaussians:
      return 8;
    case Shape::kTwentyFiveGaussians:
      return 25;
    case Shape::kSwissRoll:
    case Shape::kSCurve:
      return 0;
  }
  return 0;
}

void check_shape_has_classes(Shape s) {
  if (shape_class_count(s) > 0) return;
  throw UsageError("--labels: " + to_string(s) +
                   " has no natural classes (one continuous curve); shapes with classes: " +
                   labelled_shape_names());
}

Points make_shape(Shape s, int n, double noise, uint64_t seed) {
  return make_shape(s, n, noise, seed, nullptr);
}

Points make_shape(Shape s, int n, double noise, uint64_t seed, std::vector<int32_t>* classes) {
  if (classes != nullptr) check_shape_has_classes(s);
  check_shape_size(n, noise);
  // Every class is computed beside the draws, never from them: the points are the same, bit for
  // bit, with and without classes. Without `classes` they go to a scratch vector.
  std::vector<int32_t> scratch;
  std::vector<int32_t>& cls = classes != nullptr ? *classes : scratch;
  cls.assign(shape_class_count(s) > 0 ? size_t(n) : 0, 0);
  Rng rng(seed);
  Points x(n, 2);
  switch (s) {
    case Shape::kSwissRoll:
      // sklearn: X = (t cos t, 21 u, t sin t) + noise * N(0, I3); the tutorial keeps columns 0, 2
      // and divides by 10. The dropped middle column never influences the kept ones.
      for (int i = 0; i < n; ++i) {
        const double t = 1.5 * kPi * (1.0 + 2.0 * rng.uniform());
        x(i, 0) = static_cast<float>((t * std::cos(t) + noise * rng.normal()) / 10.0);
        x(i, 1) = static_cast<float>((t * std::sin(t) + noise * rng.normal()) / 10.0);
      }
      break;
    case Shape::kSCurve:
      // sklearn: X = (sin t, 2 u, sign(t) (cos t - 1)) + noise * N(0, I3); columns 0, 2, / 10.
      for (int i = 0; i < n; ++i) {
        const double t = 3.0 * kPi * (rng.uniform() - 0.5);
        const double sign = t > 0 ? 1.0 : (t < 0 ? -1.0 : 0.0);
        x(i, 0) = static_cast<float>((std::sin(t) + noise * rng.normal()) / 10.0);
        x(i, 1) = static_cast<float>((sign * (std::cos(t) - 1.0) + noise * rng.normal()) / 10.0);
      }
      break;
    case Shape::kMoons: {
      // sklearn: n/2 points on the outer half circle, the rest on the inner one, at evenly spaced
      // angles in [0, pi] (endpoints included), plus noise, then shuffled.
      const int n_out = n / 2;
      const int n_in = n - n_out;
      for (int i = 0; i < n; ++i) {
        double px, py;
        cls[size_t(i)] = i < n_out ? 0 : 1;  // sklearn's y: 0 the outer (upper) moon
        if (i < n_out) {
          const double a = linspace(kPi, n_out, i);
          px = std::cos(a);
          py = std::sin(a);
        } else {
          const double b = linspace(kPi, n_in, i - n_out);
          px = 1.0 - std::cos(b);
          py = 1.0 - std::sin(b) - 0.5;
        }
        x(i, 0) = static_cast<float>(px + noise * rng.normal());
        x(i, 1) = static_cast<float>(py + noise * rng.normal());
      }
      shuffle_rows(x, rng, &cls);
      break;
    }
    case Shape::kCircles: {
      // Like sklearn make_circles(factor=0.5), but with i.i.d. angles so that fresh draws differ.
      const int n_out = n / 2;
      for (int i = 0; i < n; ++i) {
        const double r = i < n_out ? 1.0 : 0.5;
        cls[size_t(i)] = i < n_out ? 0 : 1;  // sklearn's y: 0 the outer circle
        const double a = 2.0 * kPi * rng.uniform();
        x(i, 0) = static_cast<float>(r * std::cos(a) + noise * rng.normal());
        x(i, 1) = static_cast<float>(r * std::sin(a) + noise * rng.normal());
      }
      shuffle_rows(x, rng, &cls);
      break;
    }
    case Shape::kCheckerboard:
      // Square (i, j), i, j in 0..3, covers [-4 + 2i, -2 + 2i] x [-4 + 2j, -2 + 2j]; dark when
      // i + j is even. Pick one of the 8 dark squares uniformly, then a uniform point in it.
      for (int p = 0; p < n; ++p) {
        const uint32_t k = rng.below(8);
        cls[size_t(p)] = static_cast<int32_t>(k);  // the dark square, row by row from the bottom
        const int j = static_cast<int>(k / 2);
        const int i = static_cast<int>(2 * (k % 2)) + (j % 2);
        // One draw per statement: the order of draws must not depend on the compiler.
        const double u = rng.uniform();
        const double v = rng.uniform();
        x(p, 0) = static_cast<float>(-4.0 + 2.0 * (i + u) + noise * rng.normal());
        x(p, 1) = static_cast<float>(-4.0 + 2.0 * (j + v) + noise * rng.normal());
      }
      break;
    case Shape::kEightGaussians:
      x = mixture(eight_centres(), n, noise, rng, cls.data());
      break;
    case Shape::kTwentyFiveGaussians:
      x = mixture(twenty_five_centres(), n, noise, rng, cls.data());
      break;
    case Shape::kSpiral:
      // theta = 4 pi sqrt(u): arc length grows like theta^2, so this is close to uniform along
      // the curve (uniform theta would crowd the centre).
      for (int i = 0; i < n; ++i) {
        const double theta = 4.0 * kPi * std::sqrt(rng.uniform());
        cls[size_t(i)] = theta < 2.0 * kPi ? 0 : 1;  // the inner or the outer turn
        const double r = theta / kPi;
        x(i, 0) = static_cast<float>(r * std::cos(theta) + noise * rng.normal());
        x(i, 1) = static_cast<float>(r * std::sin(theta) + noise * rng.normal());
      }
      break;
  }
  return x;
}

Modes shape_modes(Shape s, double noise) {
  Modes m;
  if (s == Shape::kEightGaussians) {
    m.centres = eight_centres();
  } else if (s == Shape::kTwentyFiveGaussians) {
    m.centres = twenty_five_centres();
  } else {
    return m;
  }
  m.std = noise;
  return m;
}

Shape parse_shape(std::string_view name) {
  if (auto s = shape_from_string(name)) return *s;
  throw UsageError("unknown shape '" + std::string(name) + "': expected one of " + valid_names());
}

bool is_shape_name(std::string_view name_or_path) {
  return shape_from_string(name_or_path).has_value();
}

Dataset load_data(const std::string& name_or_path, int n, double noise, uint64_t seed) {
  if (auto s = shape_from_string(name_or_path)) {
    return Dataset{make_shape(*s, n, noise, seed), {"x", "y"}};
  }
  std::error_code ec;
  const bool looks_like_path = name_or_path.find('/') != std::string::npos ||
                               (name_or_path.size() >= 4 && name_or_path.ends_with(".csv")) ||
                               std::filesystem::exists(name_or_path, ec);
  if (looks_like_path) return read_csv(name_or_path);
  throw UsageError("unknown data '" + name_or_path + "': expected a shape (" + valid_names() +
                   ") or a path to a .csv file");
}

Normalization fit_normalization(const Points& x, std::vector<int>* constant_columns) {
  if (x.rows() == 0 || x.cols() == 0) throw Error("cannot standardize: the data has no points");
  if (constant_columns != nullptr) constant_columns->clear();
  const auto n = static_cast<double>(x.rows());
  Normalization norm;
  norm.mean.resize(x.cols());
  norm.std.resize(x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    // Two passes in double: the mean, then the population variance about it (no cancellation).
    double sum = 0.0;
    float lo = x(0, j), hi = x(0, j);
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const float v = x(i, j);
      if (!std::isfinite(v)) {
        throw Error("cannot standardize: column " + std::to_string(j + 1) + ", row " +
                    std::to_string(i + 1) + " is not a finite number");
      }
      sum += v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    if (lo == hi) {
      // A constant column: centre it exactly at 0 and leave its scale alone.
      norm.mean[j] = lo;
      norm.std[j] = 1.0;
      if (constant_columns != nullptr) constant_columns->push_back(static_cast<int>(j));
      continue;
    }
    const double mean = sum / n;
    double ss = 0.0;
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const double d = x(i, j) - mean;
      ss += d * d;
    }
    norm.mean[j] = mean;
    norm.std[j] = std::sqrt(ss / n);
  }
  return norm;
}

namespace {

void check_width(const Normalization& n, const Points& x) {
  if (n.mean.size() != static_cast<size_t>(x.cols()) || n.std.size() != n.mean.size()) {
    throw Error("standardization has " + std::to_string(n.mean.size()) +
                " columns but the data has " + std::to_string(x.cols()));
  }
}

}  // namespace

void Normalization::apply(Points& x) const {
  if (empty()) return;
  check_width(*this, x);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      x(i, j) = static_cast<float>((x(i, j) - mean[j]) / std[j]);
    }
  }
}

void Normalization::undo(Points& x) const {
  if (empty()) return;
  check_width(*this, x);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      x(i, j) = static_cast<float>(x(i, j) * std[j] + mean[j]);
    }
  }
}

std::vector<char> split_test_rows(int64_t n, double test_share, uint64_t seed) {
  if (!(test_share > 0.0 && test_share < 1.0)) {
    throw UsageError("--test: got " + std::to_string(test_share) +
                     ", expected a share of the rows in (0, 1), e.g. 0.2");
  }
  if (n < 2) {
    throw Error("split: the data has " + std::to_string(n) + " row(s); a split needs at least 2");
  }
  if (n > Eigen::Index(UINT32_MAX)) throw Error("split: more than 2^32 - 1 rows");
  const auto n_test = static_cast<Eigen::Index>(
      std::clamp<double>(std::round(test_share * double(n)), 1.0, double(n - 1)));
  // A partial Fisher-Yates shuffle picks the test rows; both parts keep the file's order.
  Rng rng(seed);
  std::vector<uint32_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0u);
  std::vector<char> is_test(static_cast<size_t>(n), 0);
  for (Eigen::Index i = 0; i < n_test; ++i) {
    std::swap(perm[size_t(i)], perm[size_t(i) + rng.below(static_cast<uint32_t>(n - i))]);
    is_test[perm[size_t(i)]] = 1;
  }
  return is_test;
}

Split split_rows(const Dataset& data, double test_share, uint64_t seed) {
  const Eigen::Index n = data.x.rows();
  const std::vector<char> is_test = split_test_rows(n, test_share, seed);
  const auto n_test =
      static_cast<Eigen::Index>(std::count(is_test.begin(), is_test.end(), char{1}));
  Split s;
  s.train.columns = s.test.columns = data.columns;
  s.train.x.resize(n - n_test, data.x.cols());
  s.test.x.resize(n_test, data.x.cols());
  Eigen::Index a = 0, b = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    if (is_test[size_t(i)] != 0) {
      s.test.x.row(b++) = data.x.row(i);
    } else {
      s.train.x.row(a++) = data.x.row(i);
    }
  }
  return s;
}

}  // namespace diffuse
