#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "diffuse/rng.h"

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

GradCheck check_grad(float* p, const float* ana, size_t n, const std::function<double()>& loss,
                     float h, size_t max_checks, uint64_t seed) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  if (n > max_checks) {  // a random subset, always with the first and last element
    Rng rng(seed);
    for (size_t i = n - 1; i > 0; --i)
      std::swap(idx[i], idx[rng.below(static_cast<uint32_t>(i + 1))]);
    idx.resize(max_checks);
    idx[0] = 0;
    idx[1] = n - 1;
  }
  GradCheck r;
  double d2 = 0, a2 = 0;
  for (size_t i : idx) {
    const float p0 = p[i];
    auto at = [&](float delta) {
      p[i] = p0 + delta;
      return loss();
    };
    double num = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12.0 * h);
    p[i] = p0;
    double a = ana[i];
    double err = std::abs(num - a) / std::max({std::abs(num), std::abs(a), 1e-3});
    r.worst = std::max(r.worst, err);
    d2 += (num - a) * (num - a);
    a2 += a * a;
    ++r.checked;
  }
  r.normwise = a2 > 0 ? std::sqrt(d2 / a2) : std::sqrt(d2);
  return r;
}

Compare compare(const float* a, const float* b, size_t n) {
  double d2 = 0, b2 = 0, bmax = 0;
  for (size_t i = 0; i < n; ++i) {
    d2 += (static_cast<double>(a[i]) - b[i]) * (a[i] - b[i]);
    b2 += static_cast<double>(b[i]) * b[i];
    bmax = std::max(bmax, std::abs(static_cast<double>(b[i])));
  }
  Compare c;
  c.normwise = b2 > 0 ? std::sqrt(d2 / b2) : std::sqrt(d2);
  for (size_t i = 0; i < n; ++i) {
    double floor = std::max(1e-3 * bmax, 1e-30);
    c.elementwise = std::max(c.elementwise, std::abs(static_cast<double>(a[i]) - b[i]) /
                                                (std::abs(static_cast<double>(b[i])) + floor));
  }
  return c;
}

}  // namespace diffuse::test
