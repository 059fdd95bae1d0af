// Class labels: the stable order of class names, what a class name may hold, and per-class row
// selection. Not the reading or writing of the label column (src/data/csv.cpp does both, in the
// same pass as the numbers).
#include "diffuse/labels.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "diffuse/error.h"

namespace diffuse {
namespace {

// The value of a name that is an integer: an optional '-', then only digits, within int64.
std::optional<int64_t> integer_value(std::string_view s) {
  if (s.empty() || s == "-") return std::nullopt;
  const size_t digits_from = s.front() == '-' ? 1 : 0;
  for (size_t i = digits_from; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  int64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// 'name' for a message, at most 60 bytes, control characters escaped.
std::string single_quoted(std::string_view name) {
  std::string q = quote_for_message(name, 60);
  q.front() = '\'';
  q.back() = '\'';
  return q;
}

// A numeric class value as a class name: an integer as one ("3"), any other number as %.9g.
std::string class_name_of(float v) {
  char buf[32];
  if (v == std::nearbyint(v) && std::abs(v) < 1e9f) {
    std::snprintf(buf, sizeof buf, "%.0f", static_cast<double>(v));
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  }
  return buf;
}

}  // namespace

std::vector<int64_t> Labels::counts() const {
  std::vector<int64_t> n(classes.size(), 0);
  for (const int32_t l : of_row) {
    if (l >= 0 && static_cast<size_t>(l) < n.size()) ++n[static_cast<size_t>(l)];
  }
  return n;
}

int Labels::find(std::string_view name) const {
  for (size_t k = 0; k < classes.size(); ++k) {
    if (classes[k] == name) return static_cast<int>(k);
  }
  return -1;
}

std::vector<std::string> class_order(std::vector<std::string> names) {
  std::vector<std::pair<int64_t, size_t>> numbered;  // (value, index into names)
  numbered.reserve(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    const auto v = integer_value(names[k]);
    if (!v) {
      // std::string compares with char_traits<char>::compare, which orders bytes as unsigned char.
      std::sort(names.begin(), names.end());
      return names;
    }
    numbered.emplace_back(*v, k);
  }
  // Equal values ("3", "03"): byte order of the names.
  std::sort(numbered.begin(), numbered.end(), [&](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : names[a.second] < names[b.second];
  });
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const auto& [v, k] : numbered) out.push_back(std::move(names[k]));
  return out;
}

std::string class_name_problem(std::string_view name) {
  // A label is a CSV field: the same rules as a header name.
  return column_name_problem(name);
}

Labels labels_from_names(const std::vector<std::string>& names, const std::string& column,
                         const std::string& source) {
  std::map<std::string, int32_t> index;
  size_t bad = names.size();  // the first row whose name cannot be a class
  for (size_t i = 0; i < names.size() && bad == names.size(); ++i) {
    if (index.count(names[i]) != 0) continue;
    if (!class_name_problem(names[i]).empty()) bad = i;
    index.emplace(names[i], 0);
  }
  if (bad < names.size()) {
    throw Error(source + ": row " + std::to_string(bad + 1) + ": class name " +
                single_quoted(names[bad]) +
                " cannot be a class: " + class_name_problem(names[bad]));
  }
  Labels labels;
  labels.column = column;
  std::vector<std::string> distinct;
  distinct.reserve(index.size());
  for (const auto& [name, k] : index) distinct.push_back(name);
  labels.classes = class_order(std::move(distinct));
  for (size_t k = 0; k < labels.classes.size(); ++k) {
    index[labels.classes[k]] = static_cast<int32_t>(k);
  }
  labels.of_row.reserve(names.size());
  for (const std::string& n : names) labels.of_row.push_back(index.at(n));
  return labels;
}

Labels take_numeric_label_column(Dataset& ds, const std::string& name, const std::string& source) {
  const auto it = std::find(ds.columns.begin(), ds.columns.end(), name);
  if (it == ds.columns.end()) {
    std::string known;
    for (const std::string& c : ds.columns) known += (known.empty() ? "" : ", ") + c;
    throw UsageError(
        "--label-column: " + source + " has no column " + quote_for_message(name) +
        (known.empty() ? " (it has no column names)" : " (its columns: " + known + ")"));
  }
  if (ds.x.cols() < 2) {
    throw UsageError("--label-column: " + source + " has no feature column besides " +
                     quote_for_message(name));
  }
  const auto col = static_cast<Eigen::Index>(it - ds.columns.begin());
  std::vector<std::string> names(static_cast<size_t>(ds.x.rows()));
  for (Eigen::Index i = 0; i < ds.x.rows(); ++i) names[size_t(i)] = class_name_of(ds.x(i, col));
  Labels labels = labels_from_names(names, name, source);
  Points features(ds.x.rows(), ds.x.cols() - 1);
  for (Eigen::Index c = 0, f = 0; c < ds.x.cols(); ++c) {
    if (c != col) features.col(f++) = ds.x.col(c);
  }
  ds.x = std::move(features);
  ds.columns.erase(it);
  return labels;
}

bool csv_has_column(const std::string& path, const std::string& column) {
  const std::vector<std::string> header = read_csv_header(path);
  return std::find(header.begin(), header.end(), column) != header.end();
}

LabelledDataset read_labelled_csv_checked(const std::string& path, const std::string& label_column,
                                          const std::string& option) {
  const std::vector<std::string> header = read_csv_header(path);
  if (header.empty()) {
    throw UsageError(option + ": " + path + " has no header line, so no column " +
                     single_quoted(label_column) +
                     " (a labelled file starts with a header naming its columns)");
  }
  if (std::find(header.begin(), header.end(), label_column) == header.end()) {
    std::string list;
    for (size_t k = 0; k < header.size() && list.size() < 200; ++k) {
      if (k > 0) list += ", ";
      list += header[k];
    }
    if (list.size() >= 200) list += ", ...";
    const std::string bare = quote_for_message(list, 240);  // control characters escaped
    throw UsageError(option + ": " + path + " has no column " + single_quoted(label_column) +
                     "; its columns are " + bare.substr(1, bare.size() - 2));
  }
  return read_labelled_csv(path, label_column);
}

std::vector<std::string> shape_class_names(Shape s) {
  std::vector<std::string> names;
  names.reserve(static_cast<size_t>(shape_class_count(s)));
  for (int k = 0; k < shape_class_count(s); ++k) names.push_back(std::to_string(k));
  return names;
}

LabelledDataset make_labelled_shape(Shape s, int n, double noise, uint64_t seed,
                                    const std::string& column) {
  LabelledDataset d;
  d.data.x = make_shape(s, n, noise, seed, &d.labels.of_row);
  d.data.columns = {"x", "y"};
  d.labels.column = column;
  d.labels.classes = shape_class_names(s);
  return d;
}

LabelledSplit split_labelled_rows(const LabelledDataset& data, double test_share, uint64_t seed) {
  const Eigen::Index n = data.data.x.rows();
  if (static_cast<Eigen::Index>(data.labels.of_row.size()) != n) {
    throw Error("split: " + std::to_string(data.labels.of_row.size()) + " labels for " +
                std::to_string(n) + " rows");
  }
  const std::vector<char> is_test = split_test_rows(n, test_share, seed);
  LabelledSplit s;
  for (LabelledDataset* part : {&s.train, &s.test}) {
    part->data.columns = data.data.columns;
    part->labels.column = data.labels.column;
    part->labels.classes = data.labels.classes;
  }
  const auto n_test =
      static_cast<Eigen::Index>(std::count(is_test.begin(), is_test.end(), char{1}));
  s.train.data.x.resize(n - n_test, data.data.x.cols());
  s.test.data.x.resize(n_test, data.data.x.cols());
  Eigen::Index a = 0, b = 0;
  for (Eigen::Index i = 0; i < n; ++i) {
    const int32_t l = data.labels.of_row[size_t(i)];
    if (is_test[size_t(i)] != 0) {
      s.test.data.x.row(b++) = data.data.x.row(i);
      s.test.labels.of_row.push_back(l);
    } else {
      s.train.data.x.row(a++) = data.data.x.row(i);
      s.train.labels.of_row.push_back(l);
    }
  }
  return s;
}

Points rows_of_class(const Points& x, const Labels& labels, int k) {
  if (static_cast<Eigen::Index>(labels.of_row.size()) != x.rows()) {
    throw Error("rows_of_class: " + std::to_string(labels.of_row.size()) + " labels for " +
                std::to_string(x.rows()) + " rows");
  }
  Eigen::Index n = 0;
  for (const int32_t l : labels.of_row) n += l == k ? 1 : 0;
  Points out(n, x.cols());
  Eigen::Index r = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    if (labels.of_row[static_cast<size_t>(i)] == k) out.row(r++) = x.row(i);
  }
  return out;
}

}  // namespace diffuse
