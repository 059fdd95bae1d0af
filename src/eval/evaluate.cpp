// The evaluation protocol behind `diffuse eval` and the Python module: reference resolution,
// standardized units, paired score/floor draws, per-column and correlation views, copy_share, and
// the JSON / text reports. See include/diffuse/evaluate.h for the definitions.
#include "diffuse/evaluate.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/rng.h"

namespace diffuse {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Rows of the fixed i.i.d. draw whose mean and std are a shape's standardized units, and its seed.
constexpr int kShapeUnitsRows = 100000;
constexpr uint64_t kShapeUnitsSeed = 0x5eedu;
// The most reference rows the knn_accuracy classifier is fitted on (a CSV: a fixed random subset
// beyond; a shape: the first rows of the units draw).
constexpr int64_t kKnnMaxCsvRows = 50000;
constexpr int64_t kKnnShapeRows = 20000;

void check_finite(const Points& x, const std::string& what) {
  if (x.allFinite()) return;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index d = 0; d < x.cols(); ++d) {
      if (!std::isfinite(x(i, d))) {
        throw Error(what + ": a non-finite value at row " + std::to_string(i) + ", column " +
                    std::to_string(d));
      }
    }
  }
}

// Rows idx[first, first + count) of x, in that order.
Points gather(const Points& x, const std::vector<uint32_t>& idx, size_t first, size_t count) {
  Points out(Eigen::Index(count), x.cols());
  for (size_t i = 0; i < count; ++i) out.row(Eigen::Index(i)) = x.row(idx[first + i]);
  return out;
}

// The first k entries of a random permutation of 0..n-1 (partial Fisher-Yates); k <= n.
std::vector<uint32_t> random_prefix(uint32_t n, uint32_t k, Rng& rng) {
  std::vector<uint32_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0u);
  for (uint32_t i = 0; i < k; ++i) std::swap(perm[i], perm[i + rng.below(n - i)]);
  perm.resize(k);
  return perm;
}

// theta (D, K): K unit directions, normals from rng filled row by row, columns normalized.
Eigen::MatrixXd random_directions(Eigen::Index dim, int k, Rng& rng) {
  Eigen::MatrixXd theta(dim, k);
  for (Eigen::Index d = 0; d < dim; ++d) {
    for (int j = 0; j < k; ++j) theta(d, j) = rng.normal();
  }
  for (int j = 0; j < k; ++j) theta.col(j) /= theta.col(j).norm();
  return theta;
}

// Column d of x, sorted ascending, in double.
std::vector<double> sorted_column(const Points& x, Eigen::Index d) {
  std::vector<double> v(size_t(x.rows()));
  for (Eigen::Index i = 0; i < x.rows(); ++i) v[size_t(i)] = x(i, d);
  std::sort(v.begin(), v.end());
  return v;
}

double w1_columns(const std::vector<double>& a, const std::vector<double>& b) {
  return wasserstein1_sorted(a.data(), int64_t(a.size()), b.data(), int64_t(b.size()));
}

// Pearson correlation matrix (D, D) of x's columns; a constant column correlates 0 with the rest.
Eigen::MatrixXd correlation(const Points& x) {
  const Eigen::MatrixXd xd = x.cast<double>();
  const Eigen::MatrixXd c = xd.rowwise() - xd.colwise().mean();
  Eigen::MatrixXd cov = (c.transpose() * c) / double(std::max<Eigen::Index>(x.rows() - 1, 1));
  Eigen::VectorXd sd = cov.diagonal().cwiseSqrt();
  Eigen::MatrixXd r(x.cols(), x.cols());
  for (Eigen::Index i = 0; i < x.cols(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      r(i, j) = (sd(i) > 0 && sd(j) > 0) ? cov(i, j) / (sd(i) * sd(j)) : (i == j ? 1.0 : 0.0);
    }
  }
  return r;
}

// Largest |a - b| over i < j, and where.
double max_offdiag_diff(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b, int* at_i, int* at_j) {
  double best = 0.0;
  for (Eigen::Index i = 0; i < a.rows(); ++i) {
    for (Eigen::Index j = i + 1; j < a.cols(); ++j) {
      const double d = std::abs(a(i, j) - b(i, j));
      if (d > best || (at_i != nullptr && *at_i < 0)) {
        best = d;
        if (at_i != nullptr) {
          *at_i = int(i);
          *at_j = int(j);
        }
      }
    }
  }
  return best;
}

// For each row of q, the Euclidean distance to its nearest row of p (both (., D), double math).
std::vector<double> nearest_distances(const Points& q, const Points& p) {
  const Eigen::MatrixXd pd = p.cast<double>();  // (P, D), one contiguous array per column
  std::vector<double> out(size_t(q.rows()));
#pragma omp parallel
  {
    Eigen::ArrayXd d2(pd.rows());
#pragma omp for schedule(static)
    for (Eigen::Index i = 0; i < q.rows(); ++i) {
      d2 = (pd.col(0).array() - double(q(i, 0))).square();
      for (Eigen::Index d = 1; d < pd.cols(); ++d)
        d2 += (pd.col(d).array() - double(q(i, d))).square();
      out[size_t(i)] = std::sqrt(d2.minCoeff());
    }
  }
  return out;
}

// Linear-interpolated quantile (as numpy's default) of v, which is sorted here.
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

nlohmann::ordered_json to_json(const Evaluation& e) {
  const EvalResult& r = e.scores;
  nlohmann::ordered_json j = {
      {"swd", r.swd}, {"swd_floor", r.swd_floor}, {"swd_ratio", r.swd_ratio},
      {"mmd", r.mmd}, {"mmd_floor", r.mmd_floor}, {"n", r.n}};
  if (r.coverage) {
    j["modes"] = r.coverage->modes;
    j["modes_hit"] = r.coverage->modes_hit;
    j["mode_coverage"] = r.coverage->mode_share;
    j["in_mode_share"] = r.coverage->sample_share;
  }
  j["compared"] = e.compared;
  j["pairs"] = e.pairs;
  j["units"] = "standardized";
  j["reference"] = e.reference;
  nlohmann::ordered_json cols = nlohmann::ordered_json::array();
  size_t worst = 0;
  for (size_t c = 0; c < e.columns.size(); ++c) {
    const ColumnScore& s = e.columns[c];
    cols.push_back({{"name", s.name},
                    {"w1", s.w1},
                    {"w1_floor", s.w1_floor},
                    {"w1_ratio", s.w1_ratio},
                    {"mean_shift", s.mean_shift}});
    if (s.w1_ratio > e.columns[worst].w1_ratio) worst = c;
  }
  j["columns"] = cols;
  if (!e.columns.empty()) j["worst_column"] = e.columns[worst].name;
  j["corr_max_diff"] = e.corr_max_diff;
  j["corr_max_diff_floor"] = e.corr_max_diff_floor;
  if (e.corr_i >= 0) {
    j["corr_pair"] = {e.columns[size_t(e.corr_i)].name, e.columns[size_t(e.corr_j)].name};
  }
  if (e.copy_share) {
    j["copy_share"] = *e.copy_share;
    j["copy_threshold"] = *e.copy_threshold;
  }
  if (!e.label_column.empty()) {
    const auto opt = [](const std::optional<double>& v) {
      return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
    };
    j["label_column"] = e.label_column;
    j["knn_accuracy"] = opt(e.knn_accuracy);
    nlohmann::ordered_json classes = nlohmann::ordered_json::array();
    for (const ClassScore& c : e.classes) {
      classes.push_back({{"name", c.name},
                         {"n", c.n},
                         {"reference_rows", c.reference_rows},
                         {"compared", c.compared},
                         {"swd", opt(c.swd)},
                         {"swd_floor", opt(c.swd_floor)},
                         {"swd_ratio", opt(c.swd_ratio)}});
    }
    j["classes"] = classes;
  }
  return j;
}

// One class's swd score and floor in standardized units: the class's samples s (n, D) against
// its reference rows pool (R, D), by the CSV rule: m = min(n, R / 2), `pairs` pairs of disjoint
// m-row subsets A, B of the pool and (when m < n) an m-subset of the samples, one set of
// directions per pair.
void score_class(const Points& s, const Points& pool, const EvalConfig& config, Rng ev,
                 ClassScore& out) {
  out.n = s.rows();
  out.reference_rows = pool.rows();
  if (s.rows() < 2 || pool.rows() < 4) return;
  const int64_t n = s.rows();
  const int64_t m = std::min<int64_t>(n, pool.rows() / 2);
  out.compared = m;
  double swd_sum = 0, floor_sum = 0;
  for (int k = 0; k < config.pairs; ++k) {
    Rng rng = ev.fork(uint64_t(k));
    const auto idx = random_prefix(uint32_t(pool.rows()), uint32_t(2 * m), rng);
    const Points a = gather(pool, idx, 0, size_t(m));
    const Points b = gather(pool, idx, size_t(m), size_t(m));
    const Points sk =
        m == n ? s : gather(s, random_prefix(uint32_t(n), uint32_t(m), rng), 0, size_t(m));
    const Eigen::MatrixXd theta = random_directions(s.cols(), config.directions, rng);
    swd_sum += swd_with_directions(sk, b, theta);
    floor_sum += swd_with_directions(a, b, theta);
  }
  out.swd = swd_sum / config.pairs;
  out.swd_floor = floor_sum / config.pairs;
  // A class whose reference rows are all equal has floor 0: its ratio is undefined.
  if (*out.swd_floor > 0.0) out.swd_ratio = *out.swd / *out.swd_floor;
}

}  // namespace

Points draw_shape_iid(Shape s, int n, double noise, uint64_t seed, std::vector<int32_t>* classes) {
  if (s != Shape::kMoons && s != Shape::kCircles) {
    return classes != nullptr ? make_shape(s, n, noise, seed, classes)
                              : make_shape(s, n, noise, seed);
  }
  if (n < 1) throw UsageError("-n: got " + std::to_string(n) + ", expected >= 1 points");
  if (!std::isfinite(noise) || noise < 0) {
    throw UsageError("--noise: got " + std::to_string(noise) + ", expected a finite number >= 0");
  }
  // The same distributions as make_shape's (src/data/dataset.cpp), with the half (moon or circle)
  // chosen by a fair coin and the angle uniform, independently for every point.
  Rng rng(seed);
  Points x(n, 2);
  if (classes != nullptr) classes->assign(size_t(n), 0);
  for (int i = 0; i < n; ++i) {
    const bool first = rng.below(2) == 0;
    if (classes != nullptr) (*classes)[size_t(i)] = first ? 0 : 1;
    double px, py;
    if (s == Shape::kMoons) {
      const double a = kPi * rng.uniform();  // make_shape: evenly spaced in [0, pi]
      px = first ? std::cos(a) : 1.0 - std::cos(a);
      py = first ? std::sin(a) : 1.0 - std::sin(a) - 0.5;
    } else {
      const double r = first ? 1.0 : 0.5, a = 2.0 * kPi * rng.uniform();
      px = r * std::cos(a);
      py = r * std::sin(a);
    }
    const double ex = rng.normal();
    const double ey = rng.normal();
    x(i, 0) = static_cast<float>(px + noise * ex);
    x(i, 1) = static_cast<float>(py + noise * ey);
  }
  return x;
}

Reference resolve_reference(const std::string& against, double noise) {
  Reference ref;
  ref.name = against;
  ref.noise = noise;
  if (auto shape = shape_from_string(against)) {
    if (!std::isfinite(noise) || noise < 0) {
      throw UsageError("--noise: got " + std::to_string(noise) + ", expected a finite number >= 0");
    }
    ref.shape = shape;
    ref.columns = {"x", "y"};
    return ref;
  }
  Dataset d = load_data(against, 1, noise, 0);  // an unknown name throws, listing the shapes
  if (d.x.rows() < 4) {
    throw Error(against + ": has " + std::to_string(d.x.rows()) +
                " rows; a reference needs at least 4 (two samples of 2 rows for the floor)");
  }
  ref.rows = std::move(d.x);
  ref.columns = std::move(d.columns);
  if (ref.columns.size() != size_t(ref.rows.cols())) {
    ref.columns.clear();
    for (Eigen::Index c = 0; c < ref.rows.cols(); ++c)
      ref.columns.push_back("x" + std::to_string(c));
  }
  return ref;
}

Reference resolve_labelled_reference(const std::string& against, double noise,
                                     const std::string& label_column) {
  if (auto shape = shape_from_string(against)) {
    if (shape_class_count(*shape) == 0) {
      throw UsageError("--against: " + against +
                       " has no classes, so no per-class scores (a continuous curve); give a "
                       "labelled CSV or a shape with classes");
    }
    Reference ref = resolve_reference(against, noise);
    ref.labels.column = label_column;
    ref.labels.classes = shape_class_names(*shape);
    return ref;
  }
  if (against.find('/') == std::string::npos &&
      !(against.size() >= 4 && against.ends_with(".csv")) && !std::filesystem::exists(against)) {
    return resolve_reference(against, noise);  // throws the unknown-name line
  }
  LabelledDataset d = read_labelled_csv_checked(against, label_column, "--label-column");
  if (d.data.x.rows() < 4) {
    throw Error(against + ": has " + std::to_string(d.data.x.rows()) +
                " rows; a reference needs at least 4 (two samples of 2 rows for the floor)");
  }
  Reference ref;
  ref.name = against;
  ref.noise = noise;
  ref.rows = std::move(d.data.x);
  ref.columns = std::move(d.data.columns);
  ref.labels = std::move(d.labels);
  return ref;
}

Reference resolve_eval_reference(const std::string& against, double noise,
                                 const std::string& label_column) {
  return label_column.empty() ? resolve_reference(against, noise)
                              : resolve_labelled_reference(against, noise, label_column);
}

Reference reference_from_rows(const std::string& name, Points rows,
                              std::vector<std::string> columns, Labels labels) {
  if (rows.rows() < 4) throw Error(name + ": needs at least 4 rows (two samples of 2)");
  if (!labels.classes.empty() && static_cast<Eigen::Index>(labels.of_row.size()) != rows.rows()) {
    throw Error(name + ": " + std::to_string(labels.of_row.size()) + " labels for " +
                std::to_string(rows.rows()) + " rows");
  }
  Reference ref;
  ref.name = name;
  if (columns.size() != static_cast<size_t>(rows.cols())) {
    columns.clear();
    for (Eigen::Index c = 0; c < rows.cols(); ++c) columns.push_back("x" + std::to_string(c));
  }
  ref.rows = std::move(rows);
  ref.columns = std::move(columns);
  ref.labels = std::move(labels);
  return ref;
}

std::vector<int32_t> knn_classify(const Points& fitted, const std::vector<int32_t>& classes,
                                  int num_classes, const Points& query, int k) {
  if (fitted.cols() != query.cols() || fitted.rows() < 1 ||
      static_cast<Eigen::Index>(classes.size()) != fitted.rows() || k < 1 || k > 64) {
    throw Error("knn_classify: " + std::to_string(fitted.rows()) + " fitted rows of " +
                std::to_string(fitted.cols()) + " columns, " + std::to_string(classes.size()) +
                " classes, queries of " + std::to_string(query.cols()) +
                " columns, k = " + std::to_string(k));
  }
  for (const int32_t c : classes) {
    if (c < 0 || c >= num_classes) throw Error("knn_classify: a class outside [0, num_classes)");
  }
  const int kk = static_cast<int>(std::min<Eigen::Index>(k, fitted.rows()));
  const Eigen::MatrixXd fd = fitted.cast<double>();  // (F, D), one contiguous array per column
  std::vector<int32_t> out(size_t(query.rows()));
#pragma omp parallel
  {
    Eigen::ArrayXd d2(fd.rows());
    std::vector<double> best_d(static_cast<size_t>(kk));
    std::vector<int32_t> best_c(static_cast<size_t>(kk));
    std::vector<int> votes(size_t(num_classes), 0);
#pragma omp for schedule(static)
    for (Eigen::Index i = 0; i < query.rows(); ++i) {
      d2 = (fd.col(0).array() - double(query(i, 0))).square();
      for (Eigen::Index d = 1; d < fd.cols(); ++d) {
        d2 += (fd.col(d).array() - double(query(i, d))).square();
      }
      // The kk nearest, sorted by distance; an equal distance keeps the earlier row.
      std::fill(best_d.begin(), best_d.end(), std::numeric_limits<double>::infinity());
      for (Eigen::Index j = 0; j < fd.rows(); ++j) {
        const double v = d2(j);
        if (!(v < best_d[size_t(kk - 1)])) continue;
        int p = kk - 1;
        while (p > 0 && best_d[size_t(p - 1)] > v) {
          best_d[size_t(p)] = best_d[size_t(p - 1)];
          best_c[size_t(p)] = best_c[size_t(p - 1)];
          --p;
        }
        best_d[size_t(p)] = v;
        best_c[size_t(p)] = classes[size_t(j)];
      }
      int top = 0;
      for (int p = 0; p < kk; ++p) top = std::max(top, ++votes[size_t(best_c[size_t(p)])]);
      // The first (nearest) neighbour whose class has the most votes.
      int32_t pick = best_c[0];
      for (int p = 0; p < kk; ++p) {
        if (votes[size_t(best_c[size_t(p)])] == top) {
          pick = best_c[size_t(p)];
          break;
        }
      }
      for (int p = 0; p < kk; ++p) votes[size_t(best_c[size_t(p)])] = 0;
      out[size_t(i)] = pick;
    }
  }
  return out;
}

double copy_share(const Points& samples, const Points& heldout, const Points& train,
                  double* threshold_out) {
  if (samples.cols() != train.cols() || heldout.cols() != train.cols()) {
    throw Error("copy_share: the samples, held-out rows and training rows have " +
                std::to_string(samples.cols()) + ", " + std::to_string(heldout.cols()) + " and " +
                std::to_string(train.cols()) + " columns; all must have the same");
  }
  if (samples.rows() < 1 || heldout.rows() < 1 || train.rows() < 1) {
    throw Error("copy_share: the samples, held-out rows and training rows must not be empty");
  }
  const double threshold = quantile(nearest_distances(heldout, train), 0.05);
  if (threshold_out != nullptr) *threshold_out = threshold;
  const std::vector<double> d = nearest_distances(samples, train);
  const auto close = std::count_if(d.begin(), d.end(), [&](double v) { return v <= threshold; });
  return double(close) / double(d.size());
}

Evaluation evaluate_samples(const Points& samples, const Reference& ref, const EvalConfig& config,
                            const Points* train) {
  if (config.pairs < 1)
    throw UsageError("--pairs: got " + std::to_string(config.pairs) + ", expected >= 1");
  if (config.directions < 1) {
    throw UsageError("--directions: got " + std::to_string(config.directions) + ", expected >= 1");
  }
  if (config.mmd_pairs < 0 || config.mmd_pairs > config.pairs) {
    throw UsageError("mmd_pairs: got " + std::to_string(config.mmd_pairs) + ", expected 0..pairs");
  }
  if (samples.rows() < 2) {
    throw Error("evaluate: the samples have " + std::to_string(samples.rows()) +
                " row(s); expected at least 2");
  }
  if (ref.shape && samples.cols() != 2) {
    throw Error("samples have " + std::to_string(samples.cols()) + " columns but '" + ref.name +
                "' is 2-D");
  }
  if (!ref.shape && samples.cols() != ref.rows.cols()) {
    throw Error(ref.name + ": has " + std::to_string(ref.rows.cols()) +
                " columns but the samples have " + std::to_string(samples.cols()));
  }
  if (samples.rows() > Eigen::Index(INT32_MAX)) throw Error("evaluate: too many samples");
  check_finite(samples, "the samples");
  if (train != nullptr) {
    if (train->cols() != samples.cols()) {
      throw Error("--train: has " + std::to_string(train->cols()) +
                  " columns but the samples have " + std::to_string(samples.cols()));
    }
    check_finite(*train, "--train");
  }

  // Units: the reference's mean and std per column (a constant column keeps std 1).
  const Points units_rows =
      ref.shape ? draw_shape_iid(*ref.shape, kShapeUnitsRows, ref.noise, kShapeUnitsSeed)
                : ref.rows;
  const Normalization units = fit_normalization(units_rows);
  Points s = samples;
  units.apply(s);
  Points pool;  // the CSV's rows, standardized
  if (!ref.shape) {
    pool = ref.rows;
    units.apply(pool);
  }

  const int64_t n = samples.rows();
  const int64_t m = ref.shape ? n : std::min<int64_t>(n, ref.rows.rows() / 2);
  const Eigen::Index dim = samples.cols();
  Evaluation e;
  e.reference = ref.name;
  e.compared = m;
  e.pairs = config.pairs;
  e.scores.n = n;
  e.columns.resize(size_t(dim));
  for (Eigen::Index c = 0; c < dim; ++c) e.columns[size_t(c)].name = ref.columns[size_t(c)];

  // With every sample in every pair (m == n), the samples' sorted columns are the same each time.
  std::vector<std::vector<double>> s_sorted;
  if (m == n) {
    for (Eigen::Index c = 0; c < dim; ++c) s_sorted.push_back(sorted_column(s, c));
  }
  Rng ev(config.seed);
  double swd_sum = 0, floor_sum = 0;
  std::vector<double> w1_sum(size_t(dim), 0.0), w1_floor_sum(size_t(dim), 0.0);
  for (int k = 0; k < config.pairs; ++k) {
    Rng rng = ev.fork(uint64_t(k));
    Points a, b;  // the honest sample and the target, m rows each, standardized
    if (ref.shape) {
      a = draw_shape_iid(*ref.shape, int(m), ref.noise, rng.next_u64());
      b = draw_shape_iid(*ref.shape, int(m), ref.noise, rng.next_u64());
      units.apply(a);
      units.apply(b);
    } else {
      const auto idx = random_prefix(uint32_t(pool.rows()), uint32_t(2 * m), rng);
      a = gather(pool, idx, 0, size_t(m));
      b = gather(pool, idx, size_t(m), size_t(m));
    }
    const Points sk =
        m == n ? s : gather(s, random_prefix(uint32_t(n), uint32_t(m), rng), 0, size_t(m));
    const Eigen::MatrixXd theta = random_directions(dim, config.directions, rng);
    swd_sum += swd_with_directions(sk, b, theta);
    floor_sum += swd_with_directions(a, b, theta);
    if (k < config.mmd_pairs) {
      e.scores.mmd += mmd(sk, b, b) / config.mmd_pairs;
      e.scores.mmd_floor += mmd(a, b, b) / config.mmd_pairs;
    }
    for (Eigen::Index c = 0; c < dim; ++c) {
      const std::vector<double> bc = sorted_column(b, c);
      w1_sum[size_t(c)] += w1_columns(m == n ? s_sorted[size_t(c)] : sorted_column(sk, c), bc);
      w1_floor_sum[size_t(c)] += w1_columns(sorted_column(a, c), bc);
    }
    if (k == 0 && dim > 1) {
      e.corr_max_diff_floor = max_offdiag_diff(correlation(a), correlation(b), nullptr, nullptr);
    }
  }
  e.scores.swd = swd_sum / config.pairs;
  e.scores.swd_floor = floor_sum / config.pairs;
  if (!(e.scores.swd_floor > 0.0)) {
    throw Error("evaluate: the floor between two reference samples is 0 (" + ref.name +
                " has too few distinct rows); swd_ratio is undefined");
  }
  e.scores.swd_ratio = e.scores.swd / e.scores.swd_floor;
  for (Eigen::Index c = 0; c < dim; ++c) {
    ColumnScore& cs = e.columns[size_t(c)];
    cs.w1 = w1_sum[size_t(c)] / config.pairs;
    cs.w1_floor = w1_floor_sum[size_t(c)] / config.pairs;
    // A constant reference column has floor 0: then any difference is infinitely worse than none.
    cs.w1_ratio = cs.w1_floor > 0 ? cs.w1 / cs.w1_floor : (cs.w1 > 0 ? HUGE_VAL : 1.0);
    cs.mean_shift = s.col(c).cast<double>().mean();
  }
  if (dim > 1) {
    const Points& whole = ref.shape ? units_rows : ref.rows;  // correlations are unit-free
    e.corr_max_diff =
        max_offdiag_diff(correlation(samples), correlation(whole), &e.corr_i, &e.corr_j);
  }
  if (ref.shape) {
    const Modes modes = shape_modes(*ref.shape, ref.noise);
    if (modes.centres.rows() > 0) e.scores.coverage = mode_coverage(samples, modes);
  }
  if (train != nullptr) {
    Points t = *train;
    units.apply(t);
    Points heldout = pool;
    if (ref.shape) {  // a fresh draw stands in for held-out rows
      heldout = draw_shape_iid(*ref.shape, int(std::min<Eigen::Index>(t.rows(), 10000)), ref.noise,
                               ev.fork(uint64_t(config.pairs)).next_u64());
      units.apply(heldout);
    }
    double threshold = 0;
    e.copy_share = copy_share(s, heldout, t, &threshold);
    e.copy_threshold = threshold;
  }
  return e;
}

Evaluation evaluate_labelled_samples(const Points& samples, const Labels& labels,
                                     const Reference& ref, const EvalConfig& config,
                                     const Points* train) {
  if (ref.labels.classes.empty()) {
    throw Error(ref.name + ": the reference has no label column; per-class scores need one");
  }
  if (static_cast<Eigen::Index>(labels.of_row.size()) != samples.rows()) {
    throw Error("evaluate: " + std::to_string(labels.of_row.size()) + " labels for " +
                std::to_string(samples.rows()) + " samples");
  }
  // The samples' classes as the reference's class indices.
  const int num_classes = ref.labels.num_classes();
  std::vector<int32_t> to_ref(labels.classes.size(), -1);
  const std::vector<int64_t> sample_counts = labels.counts();
  for (size_t k = 0; k < labels.classes.size(); ++k) {
    to_ref[k] = ref.labels.find(labels.classes[k]);
    if (to_ref[k] < 0 && sample_counts[k] > 0) {
      std::string list;
      for (int c = 0; c < num_classes && list.size() < 200; ++c) {
        list += (c > 0 ? ", " : "") + ref.labels.classes[size_t(c)];
      }
      if (list.size() >= 200) list += ", ...";
      throw UsageError("the samples' class " + quote_for_message(labels.classes[k], 40) + " (" +
                       std::to_string(sample_counts[k]) + " rows) is not a class of " + ref.name +
                       " (its classes: " + list + ")");
    }
  }
  std::vector<int32_t> sample_class(labels.of_row.size());
  for (size_t i = 0; i < sample_class.size(); ++i) {
    const int32_t l = labels.of_row[i];
    if (l < 0 || static_cast<size_t>(l) >= to_ref.size()) {
      throw Error("evaluate: sample " + std::to_string(i + 1) + " has a class index outside " +
                  "its class names");
    }
    sample_class[i] = to_ref[size_t(l)];
  }

  Evaluation e = evaluate_samples(samples, ref, config, train);
  e.label_column = labels.column.empty() ? ref.labels.column : labels.column;

  // The reference rows with their classes, in the units evaluate_samples used.
  Points pool;
  std::vector<int32_t> pool_class;
  if (ref.shape) {
    pool = draw_shape_iid(*ref.shape, kShapeUnitsRows, ref.noise, kShapeUnitsSeed, &pool_class);
  } else {
    pool = ref.rows;
    pool_class = ref.labels.of_row;
  }
  const Normalization units = fit_normalization(pool);
  units.apply(pool);
  Points s = samples;
  units.apply(s);

  const Labels pool_labels{ref.labels.column, ref.labels.classes, pool_class};
  const Labels sample_labels{ref.labels.column, ref.labels.classes, sample_class};
  Rng ev(config.seed);
  e.classes.resize(size_t(num_classes));
  for (int c = 0; c < num_classes; ++c) {
    ClassScore& cs = e.classes[size_t(c)];
    cs.name = ref.labels.classes[size_t(c)];
    score_class(rows_of_class(s, sample_labels, c), rows_of_class(pool, pool_labels, c), config,
                ev.fork(uint64_t(config.pairs) + 1 + uint64_t(c)), cs);
  }

  // knn_accuracy: a shape's first kKnnShapeRows rows, a CSV's rows (a fixed random subset beyond
  // kKnnMaxCsvRows).
  Points fitted;
  std::vector<int32_t> fitted_class;
  if (ref.shape || pool.rows() <= kKnnMaxCsvRows) {
    const Eigen::Index f =
        ref.shape ? std::min<Eigen::Index>(kKnnShapeRows, pool.rows()) : pool.rows();
    fitted = pool.topRows(f);
    fitted_class.assign(pool_class.begin(), pool_class.begin() + f);
  } else {
    Rng pick = ev.fork(uint64_t(config.pairs) + 1 + uint64_t(num_classes));
    const auto idx = random_prefix(uint32_t(pool.rows()), uint32_t(kKnnMaxCsvRows), pick);
    fitted = gather(pool, idx, 0, idx.size());
    for (const uint32_t r : idx) fitted_class.push_back(pool_class[r]);
  }
  const std::vector<int32_t> predicted = knn_classify(fitted, fitted_class, num_classes, s);
  int64_t agree = 0;
  for (size_t i = 0; i < predicted.size(); ++i) agree += predicted[i] == sample_class[i];
  e.knn_accuracy = double(agree) / double(predicted.size());
  return e;
}

Evaluation evaluate_sample_table(const std::string& source, const Points& samples,
                                 const Labels* labels, const Reference& ref,
                                 const EvalConfig& config, const Points* train) {
  if (samples.rows() < 2) {
    throw Error(source + ": has " + std::to_string(samples.rows()) +
                (samples.rows() == 1 ? " row" : " rows") +
                "; eval compares distributions and needs at least 2 samples");
  }
  if (labels == nullptr) return evaluate_samples(samples, ref, config, train);
  try {
    return evaluate_labelled_samples(samples, *labels, ref, config, train);
  } catch (const UsageError& e) {
    throw UsageError(source + ": " + e.what());  // a class the reference lacks
  }
}

std::string evaluation_json(const Evaluation& e) { return to_json(e).dump(); }

std::string evaluation_text(const Evaluation& e) {
  const EvalResult& r = e.scores;
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "n          %lld samples, compared %lld vs %lld rows, %d pairs, standardized units\n"
      "swd        %.6g  (floor %.6g, ratio %.3f)\nmmd        %.6g  (floor %.6g)\n",
      static_cast<long long>(r.n), static_cast<long long>(e.compared),
      static_cast<long long>(e.compared), e.pairs, r.swd, r.swd_floor, r.swd_ratio, r.mmd,
      r.mmd_floor);
  std::string out = buf;
  if (r.coverage) {
    std::snprintf(buf, sizeof buf, "modes      %d/%d hit, %.1f%% of samples within 3 std\n",
                  r.coverage->modes_hit, r.coverage->modes, 100.0 * r.coverage->sample_share);
    out += buf;
  }
  if (e.copy_share) {
    std::snprintf(buf, sizeof buf,
                  "copy_share %.3f  (share of samples nearer a training row than 95%% of held-out "
                  "rows are; honest ~0.05)\n",
                  *e.copy_share);
    out += buf;
  }
  if (e.corr_i >= 0) {
    std::snprintf(buf, sizeof buf, "corr diff  %.3f  (floor %.3f), largest at %s / %s\n",
                  e.corr_max_diff, e.corr_max_diff_floor, e.columns[size_t(e.corr_i)].name.c_str(),
                  e.columns[size_t(e.corr_j)].name.c_str());
    out += buf;
  }
  out += "column            w1 ratio   w1        floor     mean shift (std)\n";
  for (const ColumnScore& c : e.columns) {
    std::snprintf(buf, sizeof buf, "%-16.16s  %8.3f   %-9.3g %-9.3g %+.3f\n", c.name.c_str(),
                  c.w1_ratio, c.w1, c.w1_floor, c.mean_shift);
    out += buf;
  }
  if (!e.label_column.empty()) {
    std::snprintf(buf, sizeof buf,
                  "knn_acc    %.3f  (5 nearest reference rows agree with the label; column %s)\n",
                  e.knn_accuracy.value_or(0.0), quote_for_message(e.label_column, 40).c_str());
    out += buf;
    out += "class             samples  swd ratio  swd       floor\n";
    for (const ClassScore& c : e.classes) {
      if (c.swd_ratio) {
        std::snprintf(buf, sizeof buf, "%-16.16s  %7lld  %9.3f  %-9.3g %.3g\n", c.name.c_str(),
                      static_cast<long long>(c.n), *c.swd_ratio, *c.swd, *c.swd_floor);
      } else {
        std::snprintf(buf, sizeof buf,
                      "%-16.16s  %7lld  %9s  (too few rows: %lld samples, %lld "
                      "reference)\n",
                      c.name.c_str(), static_cast<long long>(c.n), "-", static_cast<long long>(c.n),
                      static_cast<long long>(c.reference_rows));
      }
      out += buf;
    }
  }
  return out;
}

namespace {

// The scalar scores of one evaluation, by JSON key, in a fixed order.
std::vector<std::pair<std::string, double>> scalars(const Evaluation& e) {
  std::vector<std::pair<std::string, double>> v = {
      {"swd_ratio", e.scores.swd_ratio}, {"swd", e.scores.swd},
      {"swd_floor", e.scores.swd_floor}, {"mmd", e.scores.mmd},
      {"mmd_floor", e.scores.mmd_floor}, {"corr_max_diff", e.corr_max_diff}};
  if (e.scores.coverage) {
    v.emplace_back("mode_coverage", e.scores.coverage->mode_share);
    v.emplace_back("in_mode_share", e.scores.coverage->sample_share);
  }
  if (e.copy_share) v.emplace_back("copy_share", *e.copy_share);
  for (const ColumnScore& c : e.columns) v.emplace_back("w1_ratio:" + c.name, c.w1_ratio);
  if (e.knn_accuracy) v.emplace_back("knn_accuracy", *e.knn_accuracy);
  for (const ClassScore& c : e.classes) {
    if (c.swd_ratio) v.emplace_back("swd_ratio:class:" + c.name, *c.swd_ratio);
  }
  return v;
}

struct Spread {
  std::vector<std::string> keys;
  std::vector<double> mean, sd;
};

Spread spread(const std::vector<Evaluation>& runs) {
  if (runs.empty()) throw Error("summary: no evaluations");
  Spread s;
  for (const auto& [k, v] : scalars(runs[0])) s.keys.push_back(k);
  for (size_t i = 0; i < s.keys.size(); ++i) {
    std::vector<double> x;
    for (const Evaluation& e : runs) {
      const auto sc = scalars(e);
      if (sc.size() != s.keys.size() || sc[i].first != s.keys[i]) {
        throw Error(
            "summary: the evaluations do not have the same scores (columns or references "
            "differ)");
      }
      x.push_back(sc[i].second);
    }
    const double mean = std::accumulate(x.begin(), x.end(), 0.0) / double(x.size());
    double ss = 0;
    for (double v : x) ss += (v - mean) * (v - mean);
    s.mean.push_back(mean);
    s.sd.push_back(x.size() > 1 ? std::sqrt(ss / double(x.size() - 1)) : 0.0);
  }
  return s;
}

}  // namespace

std::string summary_json(const std::vector<Evaluation>& runs) {
  const Spread s = spread(runs);
  nlohmann::ordered_json j;
  j["runs"] = nlohmann::ordered_json::array();
  for (const Evaluation& e : runs) j["runs"].push_back(to_json(e));
  j["mean"] = nlohmann::ordered_json::object();
  j["std"] = nlohmann::ordered_json::object();
  for (size_t i = 0; i < s.keys.size(); ++i) {
    j["mean"][s.keys[i]] = s.mean[i];
    j["std"][s.keys[i]] = s.sd[i];
  }
  return j.dump();
}

std::string summary_text(const std::vector<Evaluation>& runs) {
  const Spread s = spread(runs);
  std::string out = std::to_string(runs.size()) + " runs: mean ± std (n - 1)\n";
  for (size_t i = 0; i < s.keys.size(); ++i) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-24.24s %.4g ± %.2g\n", s.keys[i].c_str(), s.mean[i], s.sd[i]);
    out += buf;
  }
  return out;
}

}  // namespace diffuse
