// Data: built-in 2-D shapes (seeded generators), CSV files of N-D points, per-column
// standardization. Not a data-loading framework: everything is an in-memory (N, D) matrix.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/tensor.h"

namespace diffuse {

enum class Shape {
  kSwissRoll,
  kSCurve,
  kMoons,
  kCircles,
  kCheckerboard,
  kEightGaussians,
  kTwentyFiveGaussians,
  kSpiral,
};

std::string to_string(Shape s);  // "swiss_roll", "s_curve", "moons", "circles", "checkerboard",
                                 // "8gaussians", "25gaussians", "spiral"
std::optional<Shape> shape_from_string(std::string_view name);
std::vector<Shape> all_shapes();
std::string describe(Shape s);  // one line for `diffuse data --list`

// n points of a built-in shape, (n, 2). noise is the std of the Gaussian added to each point
// (the tutorial's default 0.1). Same seed, same points.
Points make_shape(Shape s, int n, double noise, uint64_t seed);

// For mixture shapes (8gaussians, 25gaussians): the mode centres (K, 2) and the std of each mode
// at this noise, for coverage metrics. Empty for the others.
struct Modes {
  Points centres;
  double std = 0.0;
};
Modes shape_modes(Shape s, double noise);

// Points plus optional column names (from a CSV header, written back on sampled output).
struct Dataset {
  Points x;
  std::vector<std::string> columns;  // empty when the file had no header
};

// Reads a CSV of numbers: optional header, comma-separated, blank lines and '#' comments allowed.
// Throws Error "FILE:LINE: what is wrong" on ragged rows, non-numbers, NaN/Inf/overflow, empty
// files.
Dataset read_csv(const std::string& path);
// Writes atomically (temporary file in the same folder, then rename). Header when columns given.
void write_csv(const std::string& path, const Points& x, const std::vector<std::string>& columns);

// "NAME" of a built-in shape (n points, noise, seed) or a path ending in .csv (read whole).
// Throws UsageError for an unknown name.
Dataset load_data(const std::string& name_or_path, int n, double noise, uint64_t seed);
bool is_shape_name(std::string_view name_or_path);

// Per-column standardization x' = (x - mean) / std, stored in checkpoints and undone on sampling.
struct Normalization {
  std::vector<double> mean, std;  // empty: identity
  bool empty() const { return mean.empty(); }
  void apply(Points& x) const;
  void undo(Points& x) const;
};
// Fits mean and std per column; a constant column gets std 1 and its index in constant_columns.
Normalization fit_normalization(const Points& x, std::vector<int>* constant_columns = nullptr);

}  // namespace diffuse
