// The data's range (per-column min, max, integer) and the x0 clamp the samplers apply with it.
#include "diffuse/data_range.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "diffuse/error.h"

namespace diffuse {
namespace {

void check_width(const DataRange& r, const Points& x) {
  if (r.min.size() != static_cast<size_t>(x.cols()) || r.max.size() != r.min.size() ||
      r.integer.size() != r.min.size()) {
    throw Error("data range has " + std::to_string(r.min.size()) + " columns but the points have " +
                std::to_string(x.cols()));
  }
}

// The q-quantile of v[0..D) with linear interpolation between order statistics (numpy's and
// torch.quantile's default), reordering v.
float quantile(float* v, int D, double q) {
  const double pos = q * (D - 1);
  const int k = static_cast<int>(std::floor(pos));
  std::nth_element(v, v + k, v + D);
  const float lo = v[k];
  if (k + 1 >= D) return lo;
  const float hi = *std::min_element(v + k + 1, v + D);
  return static_cast<float>(lo + (pos - k) * (hi - lo));
}

}  // namespace

DataRange fit_data_range(const Points& x) {
  if (x.rows() == 0 || x.cols() == 0) throw Error("data range: the data has no points");
  DataRange r;
  const auto D = static_cast<size_t>(x.cols());
  r.min.resize(D);
  r.max.resize(D);
  r.integer.resize(D);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    float lo = x(0, j), hi = x(0, j);
    bool whole = true;
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const float v = x(i, j);
      if (!std::isfinite(v)) {
        throw Error("data range: column " + std::to_string(j + 1) + ", row " +
                    std::to_string(i + 1) + " is not a finite number");
      }
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      whole = whole && v == std::nearbyint(v);
    }
    r.min[j] = lo;
    r.max[j] = hi;
    r.integer[j] = whole;
  }
  return r;
}

std::string to_string(X0Clamp k) {
  switch (k) {
    case X0Clamp::kOff:
      return "off";
    case X0Clamp::kClip:
      return "clip";
    case X0Clamp::kThreshold:
      return "threshold";
  }
  return "unknown";
}

std::optional<X0Clamp> x0_clamp_from_string(std::string_view name) {
  for (X0Clamp k : {X0Clamp::kOff, X0Clamp::kClip, X0Clamp::kThreshold}) {
    if (name == to_string(k)) return k;
  }
  return std::nullopt;
}

std::vector<std::string> x0_clamp_names() { return {"clip", "threshold", "off"}; }

X0Clamp parse_x0_clamp(std::string_view name) {
  if (auto k = x0_clamp_from_string(name)) return *k;
  throw unknown_name_error("--x0-clamp", "mode", name, x0_clamp_names());
}

X0Range x0_range(const DataRange& range, const Normalization& norm) {
  X0Range r;
  if (range.empty()) return r;
  const size_t D = range.min.size();
  if (!norm.empty() && norm.mean.size() != D) {
    throw Error("data range has " + std::to_string(D) + " columns but the normalization has " +
                std::to_string(norm.mean.size()));
  }
  r.lo.resize(D);
  r.hi.resize(D);
  for (size_t j = 0; j < D; ++j) {
    const double mean = norm.empty() ? 0.0 : norm.mean[j];
    const double std = norm.empty() ? 1.0 : norm.std[j];
    r.lo[j] = static_cast<float>((range.min[j] - mean) / std);
    r.hi[j] = static_cast<float>((range.max[j] - mean) / std);
  }
  return r;
}

size_t clamp_x0(X0Clamp mode, const X0Range& r, float* x0, int n, float* scratch) {
  if (mode == X0Clamp::kOff || r.empty()) return 0;
  const int D = static_cast<int>(r.lo.size());
  size_t changed = 0;
  auto clip = [&](float* col) {
    for (int d = 0; d < D; ++d) {
      const float v = std::clamp(col[d], r.lo[d], r.hi[d]);
      changed += v != col[d];
      col[d] = v;
    }
  };
  if (mode == X0Clamp::kClip) {
    for (int i = 0; i < n; ++i) clip(x0 + static_cast<size_t>(i) * D);
    return changed;
  }
  // Dynamic thresholding in each column's [-1, 1] coordinates u = (x0 - centre) / half-width.
  // s <= 1 is Imagen's max(s, 1) = 1: a plain clip. A constant column (half-width 0) is set to
  // its value.
  for (int i = 0; i < n; ++i) {
    float* col = x0 + static_cast<size_t>(i) * D;
    for (int d = 0; d < D; ++d) {
      const float half = 0.5f * (r.hi[d] - r.lo[d]);
      scratch[d] = half > 0 ? std::abs(col[d] - 0.5f * (r.hi[d] + r.lo[d])) / half : 0.0f;
    }
    const float s = quantile(scratch, D, kThresholdQuantile);
    if (!(s > 1.0f)) {
      clip(col);
      continue;
    }
    for (int d = 0; d < D; ++d) {
      const float centre = 0.5f * (r.hi[d] + r.lo[d]), half = 0.5f * (r.hi[d] - r.lo[d]);
      const float v =
          half > 0 ? centre + half * (std::clamp((col[d] - centre) / half, -s, s) / s) : centre;
      changed += v != col[d];
      col[d] = std::clamp(v, r.lo[d], r.hi[d]);  // the division may round a hair outside
    }
  }
  return changed;
}

void clip_to_range(const DataRange& range, Points& x) {
  if (range.empty()) return;
  check_width(range, x);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      x(i, j) =
          std::clamp(x(i, j), static_cast<float>(range.min[j]), static_cast<float>(range.max[j]));
    }
  }
}

void round_integer_columns(const DataRange& range, Points& x) {
  if (range.empty()) return;
  check_width(range, x);
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    if (!range.integer[j]) continue;
    for (Eigen::Index i = 0; i < x.rows(); ++i) x(i, j) = std::nearbyint(x(i, j));
  }
}

}  // namespace diffuse
