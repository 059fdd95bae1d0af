// Class labels: the stable order of class names, what a class name may hold, and per-class row
// selection. Not the reading or writing of the label column (src/data/csv.cpp does both, in the
// same pass as the numbers).
#include "diffuse/labels.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
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
