// CSV of numbers: a streaming reader (fixed-size chunks, std::from_chars) that names the file and
// line of every defect, optionally with one label column of text beside the numbers, and an
// atomic writer of shortest round-trip numbers (with the label column written back). Not a general
// CSV parser: no quoted fields.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/labels.h"

namespace diffuse {
namespace {

constexpr size_t kChunkBytes = size_t{4} << 20;
constexpr int kCsvMaxColumnsHint = static_cast<int>(kCsvMaxLineBytes / 17);
// Below this the memory check is skipped (it reads /proc; small files need no check).
constexpr uint64_t kCsvMemoryCheckAbove = uint64_t{64} << 20;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Splits a file into lines of text, reading kChunkBytes at a time: memory stays bounded by the
// chunk plus the longest allowed line, whatever the file size.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw Error(path + ": no such file");
    if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a folder, not a file");
    f_.reset(std::fopen(path.c_str(), "rb"));
    if (!f_) throw Error(path + ": cannot open: " + std::strerror(errno));
    std::setvbuf(f_.get(), nullptr, _IONBF, 0);  // we buffer ourselves; avoid a second copy
    buf_.resize(kChunkBytes + kCsvMaxLineBytes + 1);
  }
  // Bytes in memory instead of a file (same lines, same errors); `source` names them in messages.
  // The buffer need not exceed the bytes: one refill then reads them all.
  LineReader(std::string_view bytes, const std::string& source) : path_(source), mem_(bytes) {
    buf_.resize(std::min(kChunkBytes + kCsvMaxLineBytes, bytes.size()) + 1);
  }

  // The next line without its "\n" or "\r\n"; false at the end of the file.
  bool next(std::string_view& line) {
    for (;;) {
      const char* start = buf_.data() + begin_;
      const size_t avail = end_ - begin_;
      const auto* nl =
          static_cast<const char*>(std::memchr(start + scanned_, '\n', avail - scanned_));
      if (nl != nullptr || (eof_ && avail > 0)) {
        const size_t len = nl != nullptr ? static_cast<size_t>(nl - start) : avail;
        ++line_no_;
        if (len > kCsvMaxLineBytes) too_long();
        line = std::string_view(start, len);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        begin_ += nl != nullptr ? len + 1 : len;
        scanned_ = 0;
        return true;
      }
      if (eof_) return false;
      if (avail > kCsvMaxLineBytes) {
        ++line_no_;
        too_long();
      }
      scanned_ = avail;
      // Move the partial line to the front and refill behind it; avail <= kCsvMaxLineBytes, so at
      // least kChunkBytes are read.
      std::memmove(buf_.data(), start, avail);
      begin_ = 0;
      end_ = avail;
      const size_t got = refill(buf_.data() + end_, buf_.size() - end_);
      if (got == 0) {
        if (f_ && std::ferror(f_.get())) {
          throw Error(path_ + ":" + std::to_string(line_no_ + 1) +
                      ": read failed: " + std::strerror(errno));
        }
        eof_ = true;
      }
      end_ += got;
    }
  }

  int64_t line_no() const { return line_no_; }

 private:
  size_t refill(char* dst, size_t n) {
    if (f_) return std::fread(dst, 1, n, f_.get());
    n = std::min(n, mem_.size());
    if (n > 0) std::memcpy(dst, mem_.data(), n);
    mem_.remove_prefix(n);
    return n;
  }

  [[noreturn]] void too_long() const {
    throw Error(path_ + ":" + std::to_string(line_no_) + ": line longer than " +
                std::to_string(kCsvMaxLineBytes >> 20) + " MiB, the most a line may hold (about " +
                std::to_string(kCsvMaxColumnsHint) +
                " columns of 16-character numbers); a binary or one-line file?");
  }

  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::string path_;
  std::unique_ptr<std::FILE, Closer> f_;  // null when reading mem_
  std::string_view mem_;                  // the bytes not yet copied into buf_
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0,
         scanned_ = 0;  // [begin_, end_) unread; [begin_, +scanned_) has no \n
  bool eof_ = false;
  int64_t line_no_ = 0;
};

enum class Parsed { kOk, kNotNumber, kOverflow };

// A header field as a column name: without the double quotes around it, if any.
std::string_view header_name(std::string_view field) {
  if (field.size() >= 2 && field.front() == '"' && field.back() == '"') {
    return trim(field.substr(1, field.size() - 2));
  }
  return field;
}

// Parses a whole trimmed field as a float. NaN and Inf parse (the caller rejects them by name);
// values too small for float become 0 or a subnormal, as any float rounding does.
Parsed parse_number(std::string_view s, float& v) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+' && e - b > 1 && b[1] != '-' && b[1] != '+') ++b;  // from_chars lacks '+'
  auto r = std::from_chars(b, e, v);
  if (r.ec == std::errc() && r.ptr == e) return Parsed::kOk;
  if (r.ec != std::errc::result_out_of_range || r.ptr != e) return Parsed::kNotNumber;
  // Out of float range: too large (an error) or too small (rounds to 0). Decide in double, and
  // with strtod when double overflows or underflows too.
  double d = 0;
  auto rd = std::from_chars(b, e, d);
  if (rd.ec == std::errc::result_out_of_range) {
    const std::string copy(b, e);
    d = std::strtod(copy.c_str(), nullptr);
  }
  if (std::fabs(d) > std::numeric_limits<float>::max()) return Parsed::kOverflow;
  v = static_cast<float>(d);
  return Parsed::kOk;
}

// Field text for an error message: at most ~20 characters, control characters and invalid UTF-8
// escaped (quote_for_message), in single quotes.
std::string quoted(std::string_view f, size_t max_chars = 20) {
  std::string q = quote_for_message(f, max_chars);
  q.front() = '\'';
  q.back() = '\'';
  return q;
}

// What a CsvParser reads: every column as numbers, one named column as labels beside the numbers,
// or only the header.
struct CsvMode {
  const std::string* label_column = nullptr;  // not null: read this column as labels
  bool header_only = false;
};

class CsvParser {
 public:
  explicit CsvParser(std::string path, CsvMode mode = {}) : path_(std::move(path)), mode_(mode) {}

  // The labels of the rows read, in class_order(); call after read().
  Labels labels() && {
    Labels out;
    out.column = *mode_.label_column;
    std::vector<std::string> seen(class_id_.size());
    for (const auto& [name, id] : class_id_) seen[static_cast<size_t>(id)] = name;
    out.classes = class_order(seen);
    std::vector<int32_t> rank(seen.size());
    for (size_t k = 0; k < out.classes.size(); ++k) {
      rank[static_cast<size_t>(class_id_.find(out.classes[k])->second)] = static_cast<int32_t>(k);
    }
    out.of_row = std::move(labels_);
    for (int32_t& l : out.of_row) l = rank[static_cast<size_t>(l)];
    return out;
  }

  Dataset read(LineReader& in) {
    std::string_view line;
    bool first = true;
    int64_t last_line = 0;
    while (in.next(line)) {
      line_ = in.line_no();
      last_line = line_;
      if (first && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // UTF-8 BOM
      first = false;
      const std::string_view t = trim(line);
      if (t.empty()) continue;
      if (t.front() == '#') {
        check_text(line);  // a binary file's first bytes may happen to be '#'
        continue;
      }
      if (width_ == 0) {
        first_row(line);
        if (mode_.header_only) break;
      } else {
        row(line);
      }
    }
    if (mode_.header_only && width_ > 0) return Dataset{Points(), std::move(columns_)};
    if (rows_ == 0) {
      const int64_t at = std::max<int64_t>(last_line, 1);
      if (width_ > 0)
        fail(at, "no data rows, only a header (line " + std::to_string(width_line_) + ")");
      if (last_line == 0) fail(at, "no data rows: the file is empty");
      fail(at, "no data rows: only blank lines and comments");
    }
    Dataset out;
    out.x.resize(rows_, width_ - (label_ >= 0 ? 1 : 0));
    std::memcpy(out.x.data(), values_.data(), values_.size() * sizeof(float));
    out.columns = std::move(columns_);
    if (label_ >= 0) out.columns.erase(out.columns.begin() + label_);
    return out;
  }

 private:
  [[noreturn]] void fail(int64_t line, const std::string& what) const {
    throw Error(path_ + ":" + std::to_string(line) + ": " + what);
  }

  // Rejects bytes no text CSV has: control characters (NUL above all) and invalid UTF-8.
  void check_text(std::string_view line) const {
    for (size_t i = 0; i < line.size(); ++i) {
      const auto c = static_cast<unsigned char>(line[i]);
      if (c == '\r') {
        fail(line_, "carriage return inside a line at column " + std::to_string(i + 1) +
                        "; expected \\n or \\r\\n line endings");
      }
      if ((c < 0x20 && c != '\t') || c == 0x7F) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02X", c);
        fail(line_, std::string("not a text CSV file (binary byte ") + hex + " at column " +
                        std::to_string(i + 1) + ")");
      }
      if (c >= 0x80) {
        const size_t n = utf8_length(line, i);
        if (n == 0) {
          fail(line_,
               "not a text CSV file (invalid UTF-8 at column " + std::to_string(i + 1) + ")");
        }
        i += n - 1;
      }
    }
  }

  static std::vector<std::string_view> split(std::string_view line) {
    std::vector<std::string_view> fields;
    size_t pos = 0;
    for (;;) {
      const size_t comma = line.find(',', pos);
      fields.push_back(
          trim(line.substr(pos, comma == std::string_view::npos ? comma : comma - pos)));
      if (comma == std::string_view::npos) return fields;
      pos = comma + 1;
    }
  }

  // The first non-blank, non-comment line: a header unless every field is a number.
  void first_row(std::string_view line) {
    check_text(line);
    const auto fields = split(line);
    bool all_numbers = true;
    int64_t empty = -1;  // the first empty field
    for (size_t k = 0; k < fields.size(); ++k) {
      float v;
      if (fields[k].empty()) {
        if (empty < 0) empty = static_cast<int64_t>(k);
      } else if (parse_number(fields[k], v) == Parsed::kNotNumber) {
        all_numbers = false;
      }
    }
    width_ = static_cast<int64_t>(fields.size());
    width_line_ = line_;
    if (all_numbers && empty >= 0) {
      // "1,2," is a row of numbers with a stray comma, not a header with an unnamed column.
      fail(line_, "field " + std::to_string(empty + 1) + " is empty in a row of numbers" +
                      (empty + 1 == width_ ? " (a comma at the end of the line?)" : ""));
    }
    if (all_numbers) {
      if (mode_.label_column != nullptr) {
        fail(line_, "no header line, so no label column " + quoted(*mode_.label_column, 60) +
                        " (the first line is a row of numbers; a labelled file starts with a "
                        "header naming its columns)");
      }
      row(line);
      return;
    }
    header_ = true;
    for (size_t k = 0; k < fields.size(); ++k) {
      columns_.emplace_back(header_name(fields[k]));
      if (columns_.back().empty()) {
        fail(line_, "header field " + std::to_string(k + 1) + " is empty");
      }
    }
    if (mode_.label_column != nullptr) find_label_column();
  }

  // Sets label_ to the header field named by the label column, or fails naming the columns.
  void find_label_column() {
    const std::string& name = *mode_.label_column;
    for (size_t k = 0; k < columns_.size(); ++k) {
      if (columns_[k] != name) continue;
      if (label_ >= 0) {
        fail(line_, "the label column " + quoted(name, 60) +
                        " appears twice in the header (fields " + std::to_string(label_ + 1) +
                        " and " + std::to_string(k + 1) + ")");
      }
      label_ = static_cast<int64_t>(k);
    }
    if (label_ < 0) {
      std::string list;
      for (size_t k = 0; k < columns_.size() && list.size() < 200; ++k) {
        list += (k > 0 ? ", " : "") + quote_for_message(columns_[k], 40).substr(1);
        list.pop_back();  // the closing quote (names are listed bare)
      }
      if (list.size() >= 200) list += ", ...";
      fail(line_, "no column " + quoted(name, 60) + " in the header; its columns are " + list);
    }
    if (width_ == 1) {
      fail(line_, "the label column " + quoted(name, 60) +
                      " is the only column; no numeric columns are left for the features");
    }
  }

  // The class id of a label (first-seen order; labels() sorts them), adding a new class.
  int32_t class_id(std::string_view name, std::string_view line) {
    if (const auto it = class_id_.find(name); it != class_id_.end()) return it->second;
    check_text(line);  // a new name: no control characters, valid UTF-8
    if (class_id_.size() >= size_t{INT32_MAX}) fail(line_, "more than 2^31 - 1 classes");
    const auto id = static_cast<int32_t>(class_id_.size());
    class_id_.emplace(std::string(name), id);
    return id;
  }

  // A data row: the fast path parses width_ numbers in one pass; anything unusual is diagnosed
  // by the slow path, which always throws.
  void row(std::string_view line) {
    const size_t start = values_.size();
    const char* p = line.data();
    const char* e = p + line.size();
    int32_t label = -1;
    for (int64_t k = 0; k < width_; ++k) {
      if (k == label_) {
        const char* fe = static_cast<const char*>(std::memchr(p, ',', e - p));
        if (fe == nullptr) fe = e;
        const std::string_view f = trim(std::string_view(p, fe));
        if (f.empty()) return diagnose(line, start);
        label = class_id(f, line);
        p = fe;
        if (k + 1 < width_) {
          if (p == e) return diagnose(line, start);
          ++p;
        } else if (p != e) {
          return diagnose(line, start);
        }
        continue;
      }
      while (p != e && is_blank(*p)) ++p;
      if (p != e && *p == '+' && e - p > 1 && p[1] != '-' && p[1] != '+') ++p;
      float v;
      const auto r = std::from_chars(p, e, v);
      if (r.ec == std::errc::result_out_of_range) {
        // Rare: too large (an error) or too small for float; parse_number decides.
        const char* fe = static_cast<const char*>(std::memchr(p, ',', e - p));
        const std::string_view f = trim(std::string_view(p, fe != nullptr ? fe : e));
        if (parse_number(f, v) != Parsed::kOk) return diagnose(line, start);
        p = f.data() + f.size();
      } else if (r.ec != std::errc()) {
        return diagnose(line, start);
      } else {
        p = r.ptr;
      }
      if (!std::isfinite(v)) return diagnose(line, start);
      while (p != e && is_blank(*p)) ++p;
      if (k + 1 < width_) {
        if (p == e || *p != ',') return diagnose(line, start);
        ++p;
      } else if (p != e) {
        return diagnose(line, start);
      }
      if (values_.size() == values_.capacity()) grow();
      values_.push_back(v);
    }
    if (label_ >= 0) labels_.push_back(label);
    ++rows_;
  }

  // Doubles the values' room after checking that the memory is there: the data, the room and the
  // matrix they are copied into at the end.
  void grow() {
    const size_t room = std::max<size_t>(1024, values_.capacity() * 2);
    const uint64_t need = (uint64_t{room} + values_.size()) * sizeof(float);
    if (need > kCsvMemoryCheckAbove) {
      try {
        check_memory(need, "the data");
      } catch (const Error& e) {
        fail(line_, std::string(e.what()) + " (" + std::to_string(rows_) + " rows of " +
                        std::to_string(width_) + " columns so far)");
      }
    }
    values_.reserve(room);
  }

  [[noreturn]] void diagnose(std::string_view line, size_t start) {
    values_.resize(start);
    check_text(line);
    const auto fields = split(line);
    if (static_cast<int64_t>(fields.size()) != width_) {
      fail(line_, "expected " + std::to_string(width_) + " fields, found " +
                      std::to_string(fields.size()) + " (" +
                      (header_ ? "the header" : "the first row") + " on line " +
                      std::to_string(width_line_) + " has " + std::to_string(width_) + ")");
    }
    for (size_t k = 0; k < fields.size(); ++k) {
      const std::string field = "field " + std::to_string(k + 1);
      const std::string_view f = fields[k];
      if (static_cast<int64_t>(k) == label_) {
        if (f.empty()) {
          fail(line_, field + " (the label column " + quoted(*mode_.label_column, 60) +
                          ") is empty, expected a class name");
        }
        continue;
      }
      if (f.empty()) fail(line_, field + " is empty, expected a number");
      float v = 0;
      switch (parse_number(f, v)) {
        case Parsed::kNotNumber:
          fail(line_, field + " " + quoted(f) + " is not a number");
        case Parsed::kOverflow:
          fail(line_, field + " " + quoted(f) + " is too large for a float (max 3.4e38)");
        case Parsed::kOk:
          break;
      }
      if (std::isnan(v)) fail(line_, field + " " + quoted(f) + " is NaN, expected a finite number");
      if (std::isinf(v)) {
        fail(line_, field + " " + quoted(f) + " is infinite, expected a finite number");
      }
    }
    fail(line_, "cannot parse this row");  // unreachable if the fast path and this one agree
  }

  std::string path_;
  CsvMode mode_;
  int64_t label_ = -1;  // the label column's field index, -1 without one
  std::map<std::string, int32_t, std::less<>> class_id_;  // label -> first-seen id
  std::vector<int32_t> labels_;                           // per row, a first-seen id
  int64_t line_ = 0;                                      // current line, 1-based
  int64_t width_ = 0;                                     // D; 0 until the first row or header
  int64_t width_line_ = 0;                                // the line that fixed D
  bool header_ = false;
  int64_t rows_ = 0;
  std::vector<float> values_;  // (rows_, width_) row-major
  std::vector<std::string> columns_;
};

}  // namespace

Dataset read_csv(const std::string& path) {
  LineReader in(path);
  return CsvParser(path).read(in);
}

Dataset parse_csv(std::string_view text, const std::string& source) {
  LineReader in(text, source);
  return CsvParser(source).read(in);
}

LabelledDataset read_labelled_csv(const std::string& path, const std::string& label_column) {
  LineReader in(path);
  CsvParser p(path, CsvMode{&label_column});
  LabelledDataset out;
  out.data = p.read(in);
  out.labels = std::move(p).labels();
  return out;
}

LabelledDataset parse_labelled_csv(std::string_view text, const std::string& source,
                                   const std::string& label_column) {
  LineReader in(text, source);
  CsvParser p(source, CsvMode{&label_column});
  LabelledDataset out;
  out.data = p.read(in);
  out.labels = std::move(p).labels();
  return out;
}

std::vector<std::string> read_csv_header(const std::string& path) {
  LineReader in(path);
  return CsvParser(path, CsvMode{nullptr, /*header_only=*/true}).read(in).columns;
}

std::string column_name_problem(std::string_view name) {
  if (name.empty()) return "it is empty";
  if (trim(name) != name) return "it has spaces at an end, which a reader trims";
  if (name.find_first_of(",\r\n") != std::string_view::npos) {
    return "it has a comma or a line break";
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7F) return "it has a control character";
    if (c >= 0x80) {
      const size_t n = utf8_length(name, i);
      if (n == 0) return "it is not valid UTF-8";
      i += n - 1;
    }
  }
  return "";
}

namespace {

// The header line for these names, read back by read_csv as the same names: a name is put in
// double quotes when it would otherwise lose its own quotes, turn the line into a comment (or lose
// a byte-order mark), or when every name reads as a number (the line would be a data row).
std::string header_line(const std::string& path, const std::vector<std::string>& columns) {
  bool all_numbers = true;
  for (size_t k = 0; k < columns.size(); ++k) {
    if (const std::string why = column_name_problem(columns[k]); !why.empty()) {
      throw Error(path + ": column " + std::to_string(k + 1) + " name " +
                  quote_for_message(columns[k]) + " cannot be written to a CSV header: " + why);
    }
    float v;
    if (parse_number(columns[k], v) == Parsed::kNotNumber) all_numbers = false;
  }
  std::string out;
  for (size_t k = 0; k < columns.size(); ++k) {
    const std::string& c = columns[k];
    const bool quote = all_numbers || (c.size() >= 2 && c.front() == '"' && c.back() == '"') ||
                       (k == 0 && (c.front() == '#' || c.starts_with("\xEF\xBB\xBF")));
    if (k > 0) out += ',';
    out += quote ? "\"" + c + "\"" : c;
  }
  return columns.empty() ? out : out + "\n";
}

}  // namespace

CsvWriter::CsvWriter(const std::string& path, Eigen::Index cols,
                     const std::vector<std::string>& columns)
    : CsvWriter(path, cols, columns, "", {}) {}

CsvWriter::CsvWriter(const std::string& path, Eigen::Index cols,
                     const std::vector<std::string>& columns, const std::string& label_column,
                     std::vector<std::string> classes)
    : path_(path), cols_(cols), label_column_(label_column), classes_(std::move(classes)) {
  if (cols < 1) throw Error(path + ": cannot write points with no columns");
  if (!columns.empty() && static_cast<Eigen::Index>(columns.size()) != cols) {
    throw Error(path + ": " + std::to_string(columns.size()) + " column names for " +
                std::to_string(cols) + " columns");
  }
  std::vector<std::string> names = columns;
  if (!label_column_.empty()) {
    if (names.empty()) {
      // Appended, not "x" + to_string(): GCC 12 warns falsely (-Wrestrict) on the latter.
      for (Eigen::Index j = 0; j < cols; ++j)
        names.push_back(std::string("x").append(std::to_string(j + 1)));
    }
    if (std::find(names.begin(), names.end(), label_column_) != names.end()) {
      throw Error(path + ": the label column " + quote_for_message(label_column_) +
                  " has the name of a feature column");
    }
    for (size_t k = 0; k < classes_.size(); ++k) {
      if (const std::string why = class_name_problem(classes_[k]); !why.empty()) {
        throw Error(path + ": class " + std::to_string(k) + " name " +
                    quote_for_message(classes_[k]) + " cannot be written to a CSV: " + why);
      }
    }
    names.push_back(label_column_);
  }
  const std::string header = header_line(path, names);
  file_ = std::make_unique<AtomicFile>(path);
  file_->write(header);
}

CsvWriter::~CsvWriter() = default;

void CsvWriter::check_finite(const std::string& path, const Points& x, int64_t first_row) {
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      if (!std::isfinite(x(i, j))) {
        throw Error(path + ": not written: row " + std::to_string(first_row + i + 1) + ", column " +
                    std::to_string(j + 1) + " is " + (std::isnan(x(i, j)) ? "NaN" : "infinite"));
      }
    }
  }
}

void CsvWriter::write(const Points& x) {
  if (!label_column_.empty()) {
    throw Error(path_ + ": rows without labels for a CSV with the label column " +
                quote_for_message(label_column_));
  }
  write_rows(x, {});
}

void CsvWriter::write(const Points& x, std::span<const int32_t> labels) {
  if (label_column_.empty()) throw Error(path_ + ": labels for a CSV without a label column");
  if (static_cast<Eigen::Index>(labels.size()) != x.rows()) {
    throw Error(path_ + ": " + std::to_string(labels.size()) + " labels for " +
                std::to_string(x.rows()) + " rows");
  }
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || static_cast<size_t>(labels[i]) >= classes_.size()) {
      throw Error(path_ + ": not written: row " + std::to_string(rows_ + int64_t(i) + 1) +
                  " has class index " + std::to_string(labels[i]) + ", expected 0 to " +
                  std::to_string(int64_t(classes_.size()) - 1));
    }
  }
  write_rows(x, labels);
}

namespace {

// The shortest text that reads back as the same float (the reader's from_chars is exact), so a
// value read as "5.1" is written as "5.1", not as printf("%.9g")'s 5.0999999. Plain digits from
// 1e-4 to 1e9 (counts and pixel values stay integers: 100000, not 1e+05), %g style outside.
char* format_float(char* first, char* last, float v) {
  const float a = std::fabs(v);
  const bool plain = a == 0.0f || (a >= 1e-4f && a < 1e9f);
  return std::to_chars(first, last, v,
                       plain ? std::chars_format::fixed : std::chars_format::general)
      .ptr;
}

}  // namespace

void CsvWriter::write_rows(const Points& x, std::span<const int32_t> labels) {
  if (x.cols() != cols_) {
    throw Error(path_ + ": rows of " + std::to_string(x.cols()) + " values for a CSV of " +
                std::to_string(cols_) + " columns");
  }
  check_finite(path_, x, rows_);
  std::string out;
  out.reserve(size_t{1} << 20);
  char num[32];
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
      if (j > 0) out += ',';
      out.append(num, format_float(num, num + sizeof num, x(i, j)));
    }
    if (!labels.empty()) {
      out += ',';
      out += classes_[static_cast<size_t>(labels[static_cast<size_t>(i)])];
    }
    out += '\n';
    if (out.size() >= (size_t{1} << 20)) {
      file_->write(out);
      out.clear();
    }
  }
  file_->write(out);
  rows_ += x.rows();
}

void CsvWriter::commit() { file_->commit(); }

void write_csv(const std::string& path, const Points& x, const std::vector<std::string>& columns) {
  if (x.cols() >= 1) CsvWriter::check_finite(path, x, 0);  // before the file is touched
  CsvWriter w(path, x.cols(), columns);
  w.write(x);
  w.commit();
}

void write_labelled_csv(const std::string& path, const Points& x,
                        const std::vector<std::string>& columns, const Labels& labels) {
  if (x.cols() >= 1) CsvWriter::check_finite(path, x, 0);  // before the file is touched
  if (labels.column.empty()) throw Error(path + ": the label column has no name");
  CsvWriter w(path, x.cols(), columns, labels.column, labels.classes);
  w.write(x, labels.of_row);
  w.commit();
}

void write_labelled_csv(const std::string& path, const LabelledDataset& d) {
  write_labelled_csv(path, d.data.x, d.data.columns, d.labels);
}

}  // namespace diffuse
