// The data's range: each column's observed minimum and maximum and whether it holds only integers
// (stored in checkpoints), and the step that keeps a model's x0 prediction inside that range while
// sampling (static clipping as in Ho et al. 2020's code, or Imagen's dynamic thresholding, Saharia
// et al. 2022, Sec. 2.3). Not a sampler: the samplers call clamp_x0 on each x0 prediction.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/tensor.h"

namespace diffuse {

// Per-column observed range of the training data, in the data's own units. Empty: unknown (a
// checkpoint saved before ranges were stored), and nothing is clamped or rounded.
struct DataRange {
  std::vector<double> min, max;
  std::vector<bool> integer;  // the column holds only whole numbers
  bool empty() const { return min.empty(); }
};

// The range of x's columns. Throws Error on an empty matrix or a non-finite value.
DataRange fit_data_range(const Points& x);

// How a sampler keeps the x0 prediction inside the range.
enum class X0Clamp {
  kOff,        // not at all
  kClip,       // each coordinate clipped to its column's [lo, hi]
  kThreshold,  // per sample: coordinates mapped to [-1, 1] by their column's range, s = the
               // kThresholdQuantile quantile of their magnitudes, and if s > 1 every coordinate
               // clipped to [-s, s] and divided by s (Imagen's dynamic thresholding)
};
inline constexpr double kThresholdQuantile = 0.995;  // Imagen's p
std::string to_string(X0Clamp k);                    // "off", "clip", "threshold"
std::optional<X0Clamp> x0_clamp_from_string(std::string_view name);
std::vector<std::string> x0_clamp_names();
// The clamp of that name, or unknown_name_error naming --x0-clamp.
X0Clamp parse_x0_clamp(std::string_view name);

// The range an x0 prediction is kept in, in the model's (normalized) units; empty: none.
struct X0Range {
  std::vector<float> lo, hi;  // one per column
  bool empty() const { return lo.empty(); }
};

// The range in the model's units: (min - mean) / std per column (identity when norm is empty);
// empty when range is. Throws Error when the widths differ.
X0Range x0_range(const DataRange& range, const Normalization& norm);

// Keeps x0, (D, n) column-major (one sample per column), inside r as mode says; D = r.lo.size().
// Does nothing when mode is kOff or r is empty. scratch holds D floats (used by kThreshold).
// Allocates nothing. Returns the number of coordinates it changed.
size_t clamp_x0(X0Clamp mode, const X0Range& r, float* x0, int n, float* scratch);

// On output, in the data's units: every value clipped to its column's [min, max] (the model-unit
// clamp can miss by a float rounding when undone) and, when round_integers, the integer columns
// rounded to the nearest whole number. Does nothing for an empty range. Throws Error when the
// widths differ.
void clip_to_range(const DataRange& range, Points& x);
void round_integer_columns(const DataRange& range, Points& x);

}  // namespace diffuse
