#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace diffuse::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "diffuse-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult run_shell(const std::string& command) {
  CommandResult r;
  std::string cmd = command + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CommandResult run_cli(const std::string& args) {
  return run_shell(std::string("'") + DIFFUSE_CLI + "' " + args);
}

void expect_fails(const std::string& args, int code, const std::string& needle) {
  const auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, code) << args << "\n" << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  EXPECT_LT(std::count(r.output.begin(), r.output.end(), '\n'), 3) << "one clear line:\n"
                                                                   << r.output;
}

std::string fixture_path(const std::string& name) {
  return std::string(DIFFUSE_FIXTURES) + "/" + name;
}

nlohmann::json load_fixture(const std::string& name) {
  std::ifstream f(fixture_path(name));
  if (!f) throw std::runtime_error("cannot open fixture " + name);
  return nlohmann::json::parse(f);
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace diffuse::test
