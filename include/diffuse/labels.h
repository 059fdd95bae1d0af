// Class labels beside the numeric features of a CSV: one named column whose values are any strings
// or integers, read as per-row class indices into a list of class names in a stable order, and
// written back as the same strings. Not a general CSV reader (every other column must be a number,
// as read_csv needs; no quoted fields) and not a category encoder for features: one label column
// per file, and it never enters the features.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/tensor.h"

namespace diffuse {

// The label column of a table: its name, the class names and each row's class.
struct Labels {
  std::string column;                // the header name of the label column, e.g. "label"
  std::vector<std::string> classes;  // the class names, in class_order(); never empty when read
  std::vector<int32_t> of_row;       // per row, an index into classes
  int num_classes() const { return static_cast<int>(classes.size()); }
  // Rows per class, (num_classes()).
  std::vector<int64_t> counts() const;
  // The index of a class name, or -1.
  int find(std::string_view name) const;
};

// A labelled table: the features (every column but the label, in file order, with their names)
// and the labels of the same rows.
struct LabelledDataset {
  Dataset data;
  Labels labels;
};

// The stable order of class names: numeric order when every name is an integer (optional '-',
// then digits, fitting in 64 bits; equal values such as "3" and "03" in byte order), otherwise
// lexicographic byte order ("10" < "9" < "a" < "b"). The names must be distinct.
std::vector<std::string> class_order(std::vector<std::string> names);

// The default name of the label column: `diffuse data --labels` writes it, and `eval`/`plot` use
// a column of this name when both files (or the one file) have it and no other is named.
inline constexpr const char* kDefaultLabelColumn = "label";

// Reads a CSV with a header naming `label_column`: that column as labels (any text without commas:
// spaces around it trimmed, case kept), the others as numbers exactly as read_csv reads them (same
// comments, blank lines, BOM, CRLF, limits, and the same FILE:LINE messages). Throws Error, one
// line naming the file (and line):
//   a file without a header ("FILE:LINE: no header line, so no label column 'NAME' ...");
//   no such column ("FILE:LINE: no column 'NAME' in the header; its columns are x, y, class");
//   the column named twice in the header; no other column (nothing left for the features);
//   an empty label ("FILE:LINE: field 3 (the label column 'label') is empty, expected a class");
//   a label with a control character or invalid UTF-8 (as read_csv for any field).
LabelledDataset read_labelled_csv(const std::string& path, const std::string& label_column);
// The same from text in memory (tests, fuzzing); `source` takes the path's place in messages.
LabelledDataset parse_labelled_csv(std::string_view text, const std::string& source,
                                   const std::string& label_column);

// read_labelled_csv for a label column a user named with `option` (e.g. "--label-column"): a
// file without that column, or without a header, is a UsageError (exit 2) that names the option,
// the file and the header's columns ("--label-column: f.csv has no column 'kind'; its columns
// are x, y, label"); other defects are read_labelled_csv's Errors.
LabelledDataset read_labelled_csv_checked(const std::string& path, const std::string& label_column,
                                          const std::string& option);
// Labels from each row's class name (tables in memory: the Python module's label arrays), the
// classes in class_order. Throws Error naming `source` and the row for a name that could not be
// written to a CSV and read back (class_name_problem).
Labels labels_from_names(const std::vector<std::string>& names, const std::string& column,
                         const std::string& source);
// A table in memory whose label column holds numbers (the Python module's DataFrames): the column
// `name` taken out of ds (ds keeps the features) as labels, each value's class name its integer
// text ("3" for 3.0), any other number as %.9g. UsageError naming --label-column and `source` when
// ds has no such column or no other column.
Labels take_numeric_label_column(Dataset& ds, const std::string& name, const std::string& source);
// True when the file's header has a column of this name (read_csv_header's errors otherwise).
bool csv_has_column(const std::string& path, const std::string& column);

// The column names of a CSV's header without reading its rows (the first non-blank, non-comment
// line; BOM and quotes handled as read_csv does); empty when that line is a row of numbers.
// Throws Error as read_csv does for a missing, empty or binary file.
std::vector<std::string> read_csv_header(const std::string& path);

// Why a class name cannot be written to a CSV and read back the same (empty, spaces at an end, a
// comma, line break or control character, invalid UTF-8); "" when it can.
std::string class_name_problem(std::string_view name);

// Writes the features and then the label column (its values the class names, as read), atomically
// as write_csv does. columns names the features (empty: "x1", "x2", ...). Throws Error, nothing
// written, on what write_csv refuses, a label count other than x.rows(), an index outside classes,
// a class name that cannot be read back (class_name_problem), or a label column name that is also
// a feature's.
void write_labelled_csv(const std::string& path, const Points& x,
                        const std::vector<std::string>& columns, const Labels& labels);
void write_labelled_csv(const std::string& path, const LabelledDataset& d);

// A built-in shape with its classes (make_shape with classes, so the same points bit for bit):
// features "x", "y" and the label column `column` with classes "0", "1", ... (shape_class_names).
// UsageError naming --labels for a shape without classes (swiss_roll, s_curve).
LabelledDataset make_labelled_shape(Shape s, int n, double noise, uint64_t seed,
                                    const std::string& column = kDefaultLabelColumn);
// "0" .. "K-1" for the K = shape_class_count(s) classes; empty for a shape without classes.
std::vector<std::string> shape_class_names(Shape s);

// split_rows for a labelled table: the same rows in each part as split_rows gives for the same
// row count, share and seed, each with its labels (the class names kept whole in both parts, so
// class indices mean the same in both). Same errors as split_rows.
struct LabelledSplit {
  LabelledDataset train, test;
};
LabelledSplit split_labelled_rows(const LabelledDataset& data, double test_share, uint64_t seed);

// The rows of one class, in table order, (count(class), D).
Points rows_of_class(const Points& x, const Labels& labels, int k);

}  // namespace diffuse
