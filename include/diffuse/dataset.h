// Data: built-in 2-D shapes (seeded generators), CSV files of N-D points, per-column
// standardization. Not a data-loading framework: everything is an in-memory (N, D) matrix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/tensor.h"

namespace diffuse {

class AtomicFile;

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
// The shape of that name, or UsageError "unknown shape 'NAME': expected one of swiss_roll, ...".
Shape parse_shape(std::string_view name);
std::vector<Shape> all_shapes();
// One line for `diffuse data --list`: the definition, without the name (print to_string first).
std::string describe(Shape s);

// n points of a built-in shape, (n, 2). noise is the std of the Gaussian added to each point
// (the tutorial's default 0.1; swiss_roll and s_curve add it before their /10, as sklearn + the
// tutorial do). Same seed, same points. Throws UsageError for n < 1 ("-n") or a negative or
// non-finite noise ("--noise"). The definitions (see describe() and src/data/dataset.cpp):
//   swiss_roll   sklearn make_swiss_roll columns (0, 2) / 10: t (cos t, sin t), t ~ U[1.5pi, 4.5pi]
//   s_curve      sklearn make_s_curve columns (0, 2) / 10: (sin t, sign(t)(cos t - 1)),
//                t ~ U[-1.5pi, 1.5pi]
//   moons        sklearn make_moons: two evenly sampled half circles of radius 1, shuffled
//   circles      radius 1 (n/2 points) and radius 0.5 (the rest), angles ~ U[0, 2pi), shuffled
//   checkerboard uniform on the 8 dark 2x2 squares of a 4x4 board covering [-4, 4]^2
//   8gaussians   8 equal modes on the circle of radius 2, each N(centre, noise^2 I)
//   25gaussians  25 equal modes on the grid {-2,-1,0,1,2}^2, each N(centre, noise^2 I)
//   spiral       Archimedean r = theta / pi, theta = 4pi sqrt(u) (uniform along the arc), r <= 4
inline constexpr double kMaxShapeNoise = 1000.0;
// A draw of a built-in shape. Its defaults are those of `diffuse data`, `diffuse.make_shape` and
// the training data of a run (RunConfig's n and noise); one source of truth.
struct ShapeConfig {
  int n = 10000;
  double noise = 0.1;  // the tutorial's
  uint64_t seed = 0;
};
Points make_shape(Shape s, int n, double noise, uint64_t seed);
// The same points, bit for bit, and each point's class in `classes` (n): the mixture component
// of 8gaussians (k at angle 2 pi k / 8) and 25gaussians (5 i + j at (i - 2, j - 2)), the moon of
// moons and the circle of circles (0 outer, 1 inner, as sklearn's y), the dark square of
// checkerboard (0..7, row by row from the bottom left), the turn of spiral (0 inner, theta < 2 pi;
// 1 outer). swiss_roll and s_curve have no natural classes: UsageError naming --labels.
Points make_shape(Shape s, int n, double noise, uint64_t seed, std::vector<int32_t>* classes);
// Classes of a shape (their names are "0", "1", ...), 0 for swiss_roll and s_curve.
int shape_class_count(Shape s);
// UsageError "--labels: swiss_roll has no natural classes ...; shapes with classes: ..." for a
// shape without classes.
void check_shape_has_classes(Shape s);
// make_shape's checks: UsageError naming -n (n < 1, or the points and the copies training makes
// do not fit in memory) or --noise (negative, not finite, above kMaxShapeNoise).
void check_shape_size(int n, double noise);

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

// Lines longer than this are rejected by read_csv (a CSV of numbers never has them; a binary or
// one-line file would otherwise be read whole into memory).
inline constexpr std::size_t kCsvMaxLineBytes = std::size_t{1} << 20;

// Reads a CSV of numbers: optional header, comma-separated, blank lines and '#' comments allowed.
// Throws Error "FILE:LINE: what is wrong" on ragged rows, non-numbers, NaN/Inf/overflow, empty
// files. The first non-blank, non-comment line is a header when its fields are not all numbers.
// Spaces around fields, CRLF endings and a UTF-8 BOM are accepted. Streams the file in fixed-size
// chunks.
Dataset read_csv(const std::string& path);
// The same from text in memory (tests, fuzzing); `source` takes the path's place in messages.
Dataset parse_csv(std::string_view text, const std::string& source);
// Writes atomically (temporary file in the same folder, then rename). Header when columns given:
// any name read_csv can give back, put in double quotes where needed so that it reads back the
// same (names that are all numbers, "#..." first, "\"...\""). Numbers as %.9g, which round-trips
// every float. Throws Error (nothing written) on NaN/Inf, a column count that does not match the
// names, or a name no header can hold (column_name_problem).
void write_csv(const std::string& path, const Points& x, const std::vector<std::string>& columns);

// Why a column name cannot be written to a CSV header and read back the same (empty, spaces at
// an end, a comma, line break or control character, invalid UTF-8); "" when it can.
std::string column_name_problem(std::string_view name);

// write_csv a block of rows at a time, for outputs too large to hold in memory: the header is
// written on construction, each write() appends rows (throwing Error naming the row, counted over
// all blocks, on NaN/Inf), commit() renames the whole file into place; destroyed without commit(),
// nothing is written.
class CsvWriter {
 public:
  CsvWriter(const std::string& path, Eigen::Index cols, const std::vector<std::string>& columns);
  // With a label column after the features (see labels.h, write_labelled_csv): the header names
  // the features (empty columns: "x1", "x2", ...) and then label_column; each row ends with
  // classes[its label]. Throws Error (nothing written) for a class name no CSV can hold back
  // (class_name_problem) or a label column named like a feature.
  CsvWriter(const std::string& path, Eigen::Index cols, const std::vector<std::string>& columns,
            const std::string& label_column, std::vector<std::string> classes);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;
  void write(const Points& x);  // without a label column
  // With a label column: labels (x.rows()) index classes; Error naming the row when one does not.
  void write(const Points& x, std::span<const int32_t> labels);
  void commit();
  // Throws Error naming path and the row (first_row + i + 1) of the first non-finite value.
  static void check_finite(const std::string& path, const Points& x, int64_t first_row);

 private:
  void write_rows(const Points& x, std::span<const int32_t> labels);
  std::string path_;
  Eigen::Index cols_;
  std::string label_column_;  // empty: no label column
  std::vector<std::string> classes_;
  int64_t rows_ = 0;
  std::unique_ptr<AtomicFile> file_;
};

// "NAME" of a built-in shape (n points, noise, seed; columns "x", "y") or a path (contains '/',
// ends in .csv, or names an existing file; read whole, n/noise/seed unused). A shape name wins
// over a file of the same name in the current folder (write ./NAME for the file).
// Throws UsageError for an unknown name, listing the valid ones.
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

// A random split of a table's rows for held-out evaluation: test gets round(test_share * N) rows
// (at least 1, at most N - 1), train the rest; both keep the columns and the rows' original order.
// Same seed, same split. Throws UsageError for test_share outside (0, 1) ("--test") and Error
// for fewer than 2 rows.
struct Split {
  Dataset train, test;
};
Split split_rows(const Dataset& data, double test_share, uint64_t seed);
// The rows split_rows puts in the test part (1) and in the train part (0), for n rows: the one
// definition of the split, shared by labelled tables (split_labelled_rows). Same errors.
std::vector<char> split_test_rows(int64_t n, double test_share, uint64_t seed);

}  // namespace diffuse
