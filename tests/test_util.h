// Shared helpers for the tests: scratch folders, running the diffuse command, reading fixtures.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace diffuse::test {

// A fresh, empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs the built `diffuse` command with these arguments (a shell fragment).
CommandResult run_cli(const std::string& args);
// Expects `diffuse ARGS` to exit with `code` and a short message (at most CLI11's two lines)
// containing `needle` (the option, file or value at fault).
void expect_fails(const std::string& args, int code, const std::string& needle);
// Runs any shell command, capturing stdout and stderr.
CommandResult run_shell(const std::string& command);

std::string fixture_path(const std::string& name);
// A JSON fixture from tests/fixtures/ (throws when it is missing).
nlohmann::json load_fixture(const std::string& name);
bool file_exists(const std::string& path);

// ---- gradient checks and comparisons (the kernels' tests) ----

struct GradCheck {
  double worst = 0;     // max |num - ana| / max(|num|, |ana|, 1e-3) over the checked elements
  double normwise = 0;  // ||num - ana|| / ||ana|| over the checked elements
  size_t checked = 0;
};

// Checks d loss / d p[i] against ana[i] for up to max_checks elements of p (all if fewer), by the
// five-point central difference with step h; the subset is random (seeded), with the first and
// last element always in it.
GradCheck check_grad(float* p, const float* ana, size_t n, const std::function<double()>& loss,
                     float h, size_t max_checks = 256, uint64_t seed = 1);

struct Compare {
  double normwise = 0;     // ||a - b|| / ||b||
  double elementwise = 0;  // max |a - b| / (|b| + 1e-3 max|b|)
};
Compare compare(const float* a, const float* b, size_t n);
std::string slurp(const std::string& path);

}  // namespace diffuse::test
