// libFuzzer target for the CSV reader (parse_csv, the in-memory twin of read_csv, and
// parse_labelled_csv with the label column "label"): any bytes must give a consistent Dataset (and
// labels) or one diffuse::Error line naming the source. Not a test of values.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/labels.h"

namespace {

// A broken promise is a crash: libFuzzer saves the input that caused it.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "csv_fuzz: broken invariant: %s\n", what);
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz.csv";
  try {
    const diffuse::Dataset d = diffuse::parse_csv(bytes, source);
    require(d.x.rows() >= 1 && d.x.cols() >= 1, "a parsed file has at least one row and column");
    require(d.columns.empty() || static_cast<Eigen::Index>(d.columns.size()) == d.x.cols(),
            "a header names every column");
    for (Eigen::Index i = 0; i < d.x.size(); ++i) {
      require(std::isfinite(d.x.data()[i]), "every value is finite");
    }
    for (const std::string& c : d.columns) require(!c.empty(), "header names are not empty");
  } catch (const diffuse::UsageError&) {
    require(false, "bad file contents are an Error, not a UsageError");
  } catch (const diffuse::Error& e) {
    const std::string_view what = e.what();
    require(what.rfind(source + ":", 0) == 0, "the message starts with the source name");
    require(what.find('\n') == std::string_view::npos, "the message is one line");
  }
  try {
    const diffuse::LabelledDataset d = diffuse::parse_labelled_csv(bytes, source, "label");
    const diffuse::Labels& l = d.labels;
    require(d.data.x.rows() >= 1 && d.data.x.cols() >= 1, "a labelled file has a feature");
    require(static_cast<Eigen::Index>(d.data.columns.size()) == d.data.x.cols(),
            "a labelled file's header names every feature");
    require(static_cast<Eigen::Index>(l.of_row.size()) == d.data.x.rows(), "a label per row");
    std::vector<int64_t> used(l.classes.size(), 0);
    for (const int32_t k : l.of_row) {
      require(k >= 0 && static_cast<size_t>(k) < l.classes.size(), "labels index the classes");
      ++used[static_cast<size_t>(k)];
    }
    for (size_t k = 0; k < l.classes.size(); ++k) {
      require(used[k] > 0, "every class has a row");
      require(diffuse::class_name_problem(l.classes[k]).empty(), "class names can be written");
      require(k == 0 || l.classes[k - 1] != l.classes[k], "class names are distinct");
    }
    require(diffuse::class_order(l.classes) == l.classes, "classes are in class_order");
  } catch (const diffuse::UsageError&) {
    require(false, "bad file contents are an Error, not a UsageError");
  } catch (const diffuse::Error& e) {
    const std::string_view what = e.what();
    require(what.rfind(source + ":", 0) == 0, "the labelled message starts with the source name");
    require(what.find('\n') == std::string_view::npos, "the labelled message is one line");
  }
  // Any other exception escapes and libFuzzer reports it as a crash.
  return 0;
}
