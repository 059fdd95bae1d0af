// Shared helpers for the tests: scratch folders, running the diffuse command, reading fixtures.
#pragma once

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
std::string slurp(const std::string& path);

}  // namespace diffuse::test
