// libFuzzer target for the CSV reader (parse_csv, the in-memory twin of read_csv): any bytes must
// give a consistent Dataset or one diffuse::Error line naming the source. Not a test of values.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "diffuse/dataset.h"
#include "diffuse/error.h"

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
  // Any other exception escapes and libFuzzer reports it as a crash.
  return 0;
}
