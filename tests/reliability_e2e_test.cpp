// End-to-end reliability of the `diffuse` command: every bad CSV, checkpoint, option and output
// path ends in one "diffuse: error:" line with exit 2 (usage) or 1, and leaves no output; Ctrl-C,
// SIGTERM and SIGKILL of a real training process lose nothing, and --resume continues bit for bit;
// a diverging run keeps its last good checkpoint. The parsers' exact messages are in csv_test and
// checkpoint_test; this file checks what a user of the command sees.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "test_util.h"

namespace diffuse {
namespace {

namespace fs = std::filesystem;
using test::run_cli;
using test::TempDir;

void put(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

// Runs the command and checks what the user sees: this exit code and exactly one line,
// "diffuse: error: " + a text that starts with `prefix` and contains `needle`.
void expect_error(const std::string& args, int code, const std::string& prefix,
                  const std::string& needle) {
  const auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, code) << args << "\n" << r.output;
  const std::string head = "diffuse: error: " + prefix;
  EXPECT_EQ(r.output.rfind(head, 0), 0u) << args << "\nexpected to start with: " << head << "\n"
                                         << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << "one line:\n" << r.output;
}

// Files (other than `keep`) in a folder: a failed command must not leave any behind.
std::vector<std::string> files_in(const std::string& dir, const std::vector<std::string>& keep) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (std::find(keep.begin(), keep.end(), name) == keep.end()) out.push_back(name);
  }
  return out;
}

bool bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Rows of a training log (without the header); epochs[i] is the first field of row i.
std::vector<int> log_epochs(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "epoch,mean_loss,last_loss,steps,seconds") << path;
  std::vector<int> epochs;
  while (std::getline(in, line)) epochs.push_back(std::stoi(line));
  return epochs;
}

std::vector<int> one_to(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i + 1;
  return v;
}

// ---- a real child process, for signals ------------------------------------------------------

class Child {
 public:
  // Starts `diffuse ARGS...` with stdout and stderr going to output_path.
  Child(const std::vector<std::string>& args, const std::string& output_path) {
    std::vector<std::string> all = {DIFFUSE_CLI};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0) _exit(126);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  bool started() const { return pid_ > 0; }
  // Exit code, or 128 + signal (as a shell reports it; killed_by_signal() tells them apart).
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    return ended(status);
  }
  bool running() {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
    ended(status);
    return false;
  }
  int code() const { return code_; }
  // True when the child was killed by a signal (its default action) rather than exiting.
  bool killed_by_signal() const { return signaled_; }
  void signal(int sig) { ::kill(pid_, sig); }

 private:
  int ended(int status) {
    exited_ = true;
    signaled_ = WIFSIGNALED(status);
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return code_;
  }

  pid_t pid_ = -1;
  bool exited_ = false;
  bool signaled_ = false;
  int code_ = -1;
};

ino_t inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Waits (up to a minute, for sanitizer builds) until the child has renamed a new file into place
// at path (its inode differs from `before`; 0: until it exists) or has ended.
bool wait_for_file(Child& child, const std::string& path, ino_t before = 0) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    const ino_t now = inode(path);
    if (now != 0 && now != before) return true;
    if (!child.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::vector<std::string> split_args(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// ---- bad CSV input ---------------------------------------------------------------------------

// The memory-limit checks run the CLI under `ulimit -v`; AddressSanitizer reserves terabytes of
// shadow address space at start-up and aborts there, so those tests run in the release suite only.
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN() GTEST_SKIP() << "ulimit -v cannot be applied under AddressSanitizer"
#else
#define SKIP_UNDER_ASAN() (void)0
#endif

TEST(BadCsv, EachDefectIsOneLineNamingFileAndLineAndNothingIsWritten) {
  TempDir dir;
  const std::string out = " -q -o " + dir.file("m.safetensors");
  struct Case {
    const char* name;
    std::string bytes;
    std::string where;  // after the path
    const char* needle;
  };
  const std::vector<Case> cases = {
      {"empty.csv", "", ":1: ", "the file is empty"},
      {"header.csv", "x,y\n", ":1: ", "only a header"},
      {"comments.csv", "# nothing\n\n", ":2: ", "only blank lines and comments"},
      {"ragged.csv", "x,y\n1,2\n3\n", ":3: ", "expected 2 fields, found 1"},
      {"text.csv", "x,y\n1,2\n3,abc\n", ":3: ", "'abc' is not a number"},
      {"nan.csv", "x,y\nnan,2\n", ":2: ", "is NaN, expected a finite number"},
      {"inf.csv", "x,y\n1,2\n1,-inf\n", ":3: ", "is infinite, expected a finite number"},
      {"huge.csv", "x,y\n1e400,2\n", ":2: ", "'1e400' is too large for a float"},
      {"binary.csv", std::string("x,y\n1,\0\x02\n", 9), ":2: ", "not a text CSV file"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.file(c.name);
    put(path, c.bytes);
    expect_error("train --data " + path + out, 1, path + c.where, c.needle);
    // The same reader behind `eval`.
    expect_error("eval " + path + " --against moons", 1, path + c.where, c.needle);
  }
  expect_error("train --data " + dir.file("missing.csv") + out, 1, dir.file("missing.csv") + ": ",
               "no such file");
  expect_error("eval " + dir.file("missing.csv") + " --against moons", 1,
               dir.file("missing.csv") + ": ", "no such file");
  // A folder given as data.
  expect_error("train --data " + dir.path() + "/" + out, 1, dir.path(), "is a folder");
  std::vector<std::string> inputs;
  for (const Case& c : cases) inputs.push_back(c.name);
  EXPECT_EQ(files_in(dir.path(), inputs), std::vector<std::string>{}) << "no output after errors";
}

TEST(BadCsv, AGigabyteLineStopsAtTheLimitAndACheckpointIsNotCsv) {
  TempDir dir;
  // 1 GiB with no newline after the header: sparse, so it costs no disk; the reader must stop
  // after 1 MiB instead of reading (or allocating) the whole line.
  const std::string big = dir.file("one_line.csv");
  put(big, "x,y\n1");
  ASSERT_EQ(::truncate(big.c_str(), off_t{1} << 30), 0);
  expect_error("train --data " + big + " -q -o " + dir.file("m.safetensors"), 1,
               big + ":2: ", "line longer than 1 MiB");

  // A checkpoint passed where a CSV belongs: binary bytes on line 1.
  ASSERT_EQ(run_cli("train --data moons -n 64 --batch-size 64 --epochs 1 --hidden 2 --steps 2 -q "
                    "-o " +
                    dir.file("m.safetensors"))
                .exit_code,
            0);
  expect_error("train --data " + dir.file("m.safetensors") + " -q -o " + dir.file("n.safetensors"),
               1, dir.file("m.safetensors") + ":1: ", "not a text CSV file");
  EXPECT_FALSE(test::file_exists(dir.file("n.safetensors")));
}

TEST(BadCsv, ColumnsThatDoNotMatch) {
  TempDir dir;
  put(dir.file("two.csv"), "a,b\n1,2\n3,4\n5,6\n7,8\n9,1\n");
  put(dir.file("three.csv"), "a,b,c\n1,2,3\n3,4,5\n5,6,7\n7,8,9\n9,1,2\n");
  expect_error("eval " + dir.file("two.csv") + " --against " + dir.file("three.csv"), 1,
               dir.file("three.csv") + ": ", "has 3 columns but the samples have 2");
  expect_error("eval " + dir.file("three.csv") + " --against moons", 1, "samples have 3 columns",
               "'moons' is 2-D");
  // Fewer rows than a batch: a usage error naming the option and the data size.
  // (The default batch is min(128, rows); a batch size given explicitly is checked.)
  expect_error("train --data " + dir.file("two.csv") + " --batch-size 128 -q -o " +
                   dir.file("m.safetensors"),
               2, "--batch-size: ", "larger than the data");
}

// ---- bad checkpoints -------------------------------------------------------------------------

class BadCheckpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    good_ = dir_->file("good.safetensors");
    const auto r = run_cli(
        "train --data moons -n 64 --batch-size 64 --epochs 2 --model tutorial --hidden 2 "
        "--steps 3 -q -o " +
        good_);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    bytes_ = test::slurp(good_);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  // Writes bytes to NAME and checks `diffuse sample` on it: exit 1, one line naming the file.
  static void expect_rejected(const std::string& name, const std::string& bytes,
                              const std::string& needle) {
    const std::string path = dir_->file(name);
    put(path, bytes);
    const std::string out = dir_->file("samples.csv");
    expect_error("sample " + path + " -n 5 -o " + out, 1, path + ": ", needle);
    EXPECT_FALSE(test::file_exists(out)) << name;
  }
  static std::string with(void (*edit)(SafeTensors&)) {
    SafeTensors st = parse_safetensors(bytes_, good_);
    edit(st);
    return serialize_safetensors(st);
  }
  static uint64_t header_length() {
    uint64_t n = 0;
    std::memcpy(&n, bytes_.data(), 8);
    return n;
  }
  static TempDir* dir_;
  static std::string good_, bytes_;
};
TempDir* BadCheckpoint::dir_ = nullptr;
std::string BadCheckpoint::good_, BadCheckpoint::bytes_;

TEST_F(BadCheckpoint, NotSafetensorsOrCut) {
  expect_rejected("empty.safetensors", "", "too short for safetensors");
  expect_error("sample " + dir_->file("none.safetensors") + " -o " + dir_->file("s.csv"), 1,
               dir_->file("none.safetensors") + ": ", "no such file");
  expect_rejected("csv.safetensors", "x,y\n1,2\n3,4\n5,6\n", "is larger than the file");
  expect_rejected("png.safetensors", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16),
                  "is larger than the file");
  std::string longer = bytes_;
  const uint64_t too_long = bytes_.size();
  std::memcpy(longer.data(), &too_long, 8);
  expect_rejected("length.safetensors", longer, "is larger than the file");
  // Cut inside the length, inside the header, at the data, inside the data, one byte short.
  const uint64_t h = header_length();
  for (size_t cut : {size_t{5}, size_t{8}, size_t{40}, size_t(8 + h - 1), size_t(8 + h),
                     size_t(8 + h + 13), bytes_.size() - 1}) {
    expect_rejected("cut" + std::to_string(cut) + ".safetensors", bytes_.substr(0, cut), "");
  }
}

TEST_F(BadCheckpoint, MalformedHeader) {
  std::string bad = bytes_;
  bad[9] = '!';  // the opening quote of the first key
  expect_rejected("json.safetensors", bad, "header is not valid JSON at file offset 9");
  bad = bytes_;
  const size_t f32 = bad.find("\"F32\"");
  ASSERT_NE(f32, std::string::npos);
  bad.replace(f32, 5, "\"F16\"");
  expect_rejected("dtype.safetensors", bad, "only F32 and F64 can be read");
}

TEST_F(BadCheckpoint, TensorsMissingExtraOrMisshapen) {
  expect_rejected("missing_tensor.safetensors",
                  with([](SafeTensors& st) { st.tensors.erase("lin4.bias"); }),
                  "missing model tensor(s): lin4.bias");
  expect_rejected("extra_tensor.safetensors", with([](SafeTensors& st) {
                    st.tensors["lin5.weight"] = {"F32", {1}, {0.5f}};
                  }),
                  "unexpected tensor(s): \"lin5.weight\"");
  expect_rejected("shape.safetensors", with([](SafeTensors& st) {
                    st.tensors["lin2.lin.bias"].shape = {1, 2};
                  }),
                  "tensor lin2.lin.bias has shape [1, 2], expected [2]");
  expect_rejected("nan.safetensors",
                  with([](SafeTensors& st) { st.tensors["lin3.lin.weight"].data[1] = NAN; }),
                  "non-finite value (nan) at index 1");
}

TEST_F(BadCheckpoint, MetadataNewerOrContradictory) {
  static const std::string newer = std::to_string(kCheckpointFormatVersion + 1);
  expect_rejected("version.safetensors",
                  with([](SafeTensors& st) { st.metadata["format_version"] = newer; }),
                  "written by a newer diffuse: version " + newer);
  expect_rejected("hidden.safetensors", with([](SafeTensors& st) { st.metadata["hidden"] = "3"; }),
                  "metadata says hidden=3 but tensor lin1.lin.weight is 2 wide");
  expect_rejected("steps.safetensors", with([](SafeTensors& st) { st.metadata["T"] = "4"; }),
                  "metadata says T=4 but tensor lin1.embed.weight has 3 rows");
  expect_rejected("format.safetensors", with([](SafeTensors& st) { st.metadata.erase("format"); }),
                  "not a diffuse checkpoint");
  expect_rejected("norm.safetensors", with([](SafeTensors& st) {
                    st.metadata["normalization"] = R"({"mean": [0, 0], "std": [1, -1]})";
                  }),
                  "std[1] is -1, must be > 0");
}

TEST_F(BadCheckpoint, EveryCommandThatLoadsOneSaysTheSame) {
  const std::string cut = dir_->file("cut.safetensors");
  put(cut, bytes_.substr(0, bytes_.size() / 2));
  const std::string d = dir_->path() + "/";
  expect_error("plot reverse " + cut + " -o " + d + "r.png", 1, cut + ": ", "");
  expect_error("animate " + cut + " -o " + d + "a.gif", 1, cut + ": ", "");
  expect_error("train --resume " + cut + " -q -o " + d + "m.safetensors", 1, cut + ": ", "");
  expect_error("plot schedule --model " + cut + " -o " + d + "s.png", 1, cut + ": ", "");
  // A finished model has no training state to continue.
  expect_error("train --resume " + good_ + " -q -o " + d + "m.safetensors", 1, good_ + ": ",
               "has no training state to resume");
  for (const char* f : {"r.png", "a.gif", "m.safetensors", "s.png"}) {
    EXPECT_FALSE(test::file_exists(d + f)) << f;
  }
}

// ---- bad options and output paths ------------------------------------------------------------

TEST(BadOptions, EachNamesTheOptionAndExitsTwo) {
  TempDir dir;
  const std::string m = " -q -o " + dir.file("m.safetensors");
  // Not already in cli_e2e_test's UsageErrorsExitTwoNamingTheOption.
  expect_error("train --steps 0" + m, 2, "--steps: ", "at least 2");
  expect_error("train --steps -3" + m, 2, "--steps: ", "at least 2");
  expect_error("train --beta-start 1" + m, 2, "--beta-start: ", "(0, 1)");
  expect_error("train --beta-end 0" + m, 2, "--beta-end: ", "(0, 1)");
  expect_error("train --beta-start nan" + m, 2, "--beta-start: ", "(0, 1)");
  expect_error("train --lr inf" + m, 2, "--lr: ", "positive learning rate");
  expect_error("train --batch-size -1" + m, 2, "--batch-size: ", "at least 1");
  expect_error("train --hidden 0" + m, 2, "--hidden: ", "at least 1");
  expect_error("train --checkpoint-every -1" + m, 2, "--checkpoint-every: ", "got -1");
  expect_error("train --lr-schedule step" + m, 2, "--lr-schedule: ", "\"step\"");
  expect_error("train --ema 1" + m, 2, "--ema: ", "[0, 1)");
  expect_error("train --threads 0" + m, 2, "--threads: ", "got 0");
  expect_error("train -n 0" + m, 2, "-n: ", "got 0");
  expect_error("train --noise -1" + m, 2, "--noise: ", ">= 0");
  put(dir.file("x.csv"), "x,y\n1,2\n3,4\n5,6\n7,8\n");
  expect_error("eval " + dir.file("x.csv") + " --against heart", 2, "unknown data 'heart'",
               "moons");
  expect_error("plot schedule --steps 1 -o " + dir.file("s.png"), 2, "--steps: ", "at least 2");

  ASSERT_EQ(run_cli("train --data moons -n 64 --batch-size 64 --epochs 1 --hidden 2 --steps 3" + m)
                .exit_code,
            0);
  const std::string s = "sample " + dir.file("m.safetensors") + " -o " + dir.file("s.csv");
  expect_error(s + " -n 0", 2, "-n: ", "at least 1 sample, got 0");
  expect_error(s + " --sampler euler", 2, "--sampler: ", "\"euler\", expected one of ddpm");
  expect_error(s + " --variance wide", 2, "--variance: ", "\"wide\"");
  expect_error(s + " --threads 0", 2, "--threads: ", "got 0");
  expect_error(s + " --sampler ddim --nfe 4", 2, "--nfe: ", "got 4");
  expect_error(s + " --sampler ddim --eta 2", 2, "--eta: ", "[0, 1]");
  EXPECT_EQ(files_in(dir.path(), {"m.safetensors", "m.log.csv", "x.csv"}),
            std::vector<std::string>{});
}

// True when a file can be created in dir (root can write almost anywhere).
bool can_create_in(const std::string& dir) {
  std::string probe = dir + "/probe-XXXXXX";
  const int fd = mkstemp(probe.data());
  if (fd < 0) return false;
  ::close(fd);
  ::unlink(probe.c_str());
  return true;
}

TEST(BadOptions, OutputPathsAreCheckedBeforeAnyWork) {
  TempDir dir;
  const std::string file = dir.file("plain.txt");
  put(file, "not a folder\n");
  const std::string train = "train --data moons -n 64 --batch-size 64 --epochs 1 --hidden 2 -q ";
  expect_error(train + "-o " + dir.file("missing/m.safetensors"), 2, "-o ", "does not exist");
  expect_error(train + "-o " + file + "/m.safetensors", 2,
               "-o " + file + "/m.safetensors: ", "'" + file + "' is a file, not a folder");
  expect_error(train + "-o " + dir.path(), 2, "-o " + dir.path() + ": ", "is a folder");
  expect_error(train + "-o " + dir.file("m.safetensors") + " --log " + file + "/log.csv", 2,
               "--log ", "is a file, not a folder");
  expect_error("data moons -o " + file + "/d.csv", 2, "-o ", "is a file, not a folder");
  expect_error("plot data moons -o " + file + "/d.png", 2, "-o ", "is a file, not a folder");

  // A folder that exists but cannot be written: as root (permissions do not stop root) use /sys,
  // where nobody can create files; otherwise a folder without write permission.
  std::string locked = dir.file("locked");
  if (::geteuid() == 0) {
    locked = "/sys";
  } else {
    ASSERT_EQ(::mkdir(locked.c_str(), 0500), 0);
  }
  if (can_create_in(locked)) GTEST_SKIP() << locked << " is writable here";
  expect_error(train + "-o " + locked + "/m.safetensors", 2,
               "-o " + locked + "/m.safetensors: ", "cannot write in folder '" + locked + "'");
  // The log is checked too, before training: no checkpoint appears next to it.
  expect_error(train + "-o " + dir.file("m.safetensors") + " --log " + locked + "/log.csv", 2,
               "--log " + locked + "/log.csv: ", "cannot write");
  expect_error("data moons -o " + locked + "/d.csv", 2, "-o ", "cannot write");
  expect_error("plot data moons -o " + locked + "/d.png", 2, "-o ", "cannot write");
  EXPECT_EQ(files_in(dir.path(), {"plain.txt", "locked"}), std::vector<std::string>{});
  if (::geteuid() != 0) ::chmod(locked.c_str(), 0700);
}

// ---- outputs never destroy what exists (docs/RELIABILITY.md) --------------------------------

// A small trained model, made once for the tests below.
class Outputs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    model_ = dir_->file("m.safetensors");
    const auto r = run_cli(
        "train --data moons -n 64 --batch-size 64 --epochs 1 --model tutorial --hidden 2 --steps 3 "
        "-q -o " +
        model_);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static std::string model_;
};
TempDir* Outputs::dir_ = nullptr;
std::string Outputs::model_;

struct stat lstat_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

TEST_F(Outputs, ADeviceNodeIsWrittenInPlaceNotReplaced) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs root (CI runs as root)";
  TempDir dir;
  const std::string null = dir.file("null");
  ASSERT_EQ(::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << std::strerror(errno);
  const auto r = run_cli("sample " + model_ + " -n 5 -o " + null);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const struct stat st = lstat_of(null);
  EXPECT_TRUE(S_ISCHR(st.st_mode)) << "the device node was replaced by a regular file";
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  EXPECT_EQ(files_in(dir.path(), {"null"}), std::vector<std::string>{}) << "no temporary file";
  // The checkpoint writer goes through the same path.
  const auto t = run_cli(
      "train --data moons -n 64 --batch-size 64 --epochs 1 --hidden 2 "
      "--steps 3 -q --log " +
      dir.file("log.csv") + " -o " + null);
  EXPECT_EQ(t.exit_code, 0) << t.output;
  EXPECT_TRUE(S_ISCHR(lstat_of(null).st_mode));
}

TEST_F(Outputs, AFifoIsWrittenInPlace) {
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] { got = test::slurp(fifo); });  // opens (and blocks) until the writer
  const auto r = run_cli("sample " + model_ + " -n 5 -o " + fifo);
  reader.join();
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(S_ISFIFO(lstat_of(fifo).st_mode));
  EXPECT_EQ(got.rfind("x,y\n", 0), 0u) << got;
  EXPECT_EQ(std::count(got.begin(), got.end(), '\n'), 6) << got;
}

TEST_F(Outputs, AnOutputThatIsAnInputIsRefusedBeforeAnyWork) {
  TempDir dir;
  const std::string m = dir.file("m.safetensors");
  fs::copy_file(model_, m);
  const std::string before = test::slurp(m);
  fs::create_hard_link(m, dir.file("hard.safetensors"));
  fs::create_symlink(m, dir.file("soft.safetensors"));
  for (const char* out : {"m.safetensors", "hard.safetensors", "soft.safetensors"}) {
    expect_error("sample " + m + " -n 5 -o " + dir.file(out), 2, "-o " + dir.file(out) + " ",
                 "is the same file as the model " + m);
  }
  // Figures and GIFs go through the same check (a model saved under an image's name).
  const std::string png = dir.file("m.png"), gif = dir.file("m.gif");
  fs::copy_file(model_, png);
  fs::copy_file(model_, gif);
  expect_error("plot reverse " + png + " -o " + png, 2, "-o " + png + " ", "the model " + png);
  expect_error("animate " + gif + " -o " + gif, 2, "-o " + gif + " ", "the model " + gif);
  EXPECT_EQ(test::slurp(png), before);
  EXPECT_EQ(test::slurp(gif), before);
  EXPECT_EQ(test::slurp(m), before);
}

TEST_F(Outputs, ExistingFilesKeepTheirModeOwnerAndSymlinks) {
  TempDir dir;
  const std::string out = dir.file("s.csv");
  put(out, "old\n");
  ASSERT_EQ(::chmod(out.c_str(), 0640), 0);
  const bool root = ::geteuid() == 0;
  if (root) {
    ASSERT_EQ(::chown(out.c_str(), 1234, 4321), 0);
  }
  ASSERT_EQ(run_cli("sample " + model_ + " -n 5 -o " + out).exit_code, 0);
  struct stat st = lstat_of(out);
  EXPECT_EQ(st.st_mode & 07777, 0640u) << "the mode was changed";
  if (root) {
    EXPECT_EQ(st.st_uid, 1234u);
    EXPECT_EQ(st.st_gid, 4321u);
  }
  EXPECT_EQ(test::slurp(out).rfind("x,y\n", 0), 0u);

  // A symbolic link stays a link; the file it names gets the new content.
  const std::string target = dir.file("target.csv");
  put(target, "old\n");
  ASSERT_EQ(::chmod(target.c_str(), 0600), 0);
  fs::create_symlink(target, dir.file("link.csv"));
  ASSERT_EQ(run_cli("sample " + model_ + " -n 5 -o " + dir.file("link.csv")).exit_code, 0);
  EXPECT_TRUE(S_ISLNK(lstat_of(dir.file("link.csv")).st_mode));
  EXPECT_EQ(test::slurp(target).rfind("x,y\n", 0), 0u);
  EXPECT_EQ(lstat_of(target).st_mode & 07777, 0600u);

  // A hard link is split (documented): the other name keeps the old content.
  const std::string a = dir.file("a.csv"), b = dir.file("b.csv");
  put(a, "old\n");
  fs::create_hard_link(a, b);
  ASSERT_EQ(run_cli("sample " + model_ + " -n 5 -o " + a).exit_code, 0);
  EXPECT_EQ(test::slurp(b), "old\n");
  EXPECT_EQ(test::slurp(a).rfind("x,y\n", 0), 0u);
  // A new file gets 0666 less the umask.
  ASSERT_EQ(test::run_shell(std::string("umask 027; '") + DIFFUSE_CLI + "' sample " + model_ +
                            " -n 5 -o " + dir.file("new.csv"))
                .exit_code,
            0);
  EXPECT_EQ(lstat_of(dir.file("new.csv")).st_mode & 07777, 0640u);
}

TEST_F(Outputs, ALongestValidNameIsWritable) {
  TempDir dir;
  // 255 bytes, NAME_MAX on Linux: the temporary name must be shortened, not refused.
  const std::string name = std::string(251, 'a') + ".csv";
  const auto r = run_cli("sample " + model_ + " -n 5 -o " + dir.file(name));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(files_in(dir.path(), {}), std::vector<std::string>{name});
  // Multi-byte names are cut between characters.
  std::string wide;
  while (wide.size() + 2 + 4 <= 255) wide += "\xC3\xA9";  // é
  wide += ".csv";
  const auto w = run_cli("sample " + model_ + " -n 5 -o '" + dir.file(wide) + "'");
  EXPECT_EQ(w.exit_code, 0) << w.output;
  EXPECT_TRUE(test::file_exists(dir.file(wide)));
}

// ---- limits that fail cleanly ----------------------------------------------------------------

// Runs `diffuse ARGS` and returns its exit code and peak resident memory in KiB (wait4).
std::pair<int, long> run_measuring_memory(const std::string& args, const std::string& output) {
  std::vector<std::string> all = split_args(args);
  all.insert(all.begin(), DIFFUSE_CLI);
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  ::wait4(pid, &status, 0, &ru);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), ru.ru_maxrss};
}

TEST_F(Outputs, SampleStreamsSoMemoryDoesNotGrowWithN) {
  SKIP_UNDER_ASAN();
  TempDir dir;
  const auto small = run_measuring_memory(
      "sample " + model_ + " -n 1000 -o " + dir.file("small.csv"), dir.file("out.txt"));
  ASSERT_EQ(small.first, 0) << test::slurp(dir.file("out.txt"));
  // 2 million points: drawn whole, x, eps and z alone would take 48 MiB.
  const auto big = run_measuring_memory(
      "sample " + model_ + " -n 2000000 -o " + dir.file("big.csv"), dir.file("out.txt"));
  ASSERT_EQ(big.first, 0) << test::slurp(dir.file("out.txt"));
  std::printf("[ info ] peak memory of sample: -n 1000 %ld KiB, -n 2000000 %ld KiB\n", small.second,
              big.second);
  EXPECT_LT(big.second - small.second, 24 * 1024) << "memory grew with -n";
  // Every row is there (that they are sample()'s bits is SampleChunked.GivesTheBitsOfOneWholeRun).
  int64_t lines = 0;
  std::ifstream c(dir.file("big.csv"));
  for (std::string line; std::getline(c, line);) ++lines;
  EXPECT_EQ(lines, 2000001);
}

// Waits (up to a minute) until a temporary file ("*.tmp-*") shows in `folder` while the child runs.
bool wait_for_temporary_file(Child& child, const std::string& folder) {
  for (int i = 0; i < 60000 && child.running(); ++i) {
    for (const auto& e : fs::directory_iterator(folder)) {
      if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

TEST_F(Outputs, CtrlCDuringSampleExits130AndLeavesNoFile) {
  TempDir dir;
  const std::string out = dir.file("s.csv");
  Child child(split_args("sample " + model_ + " -n 200000000 -o " + out), dir.file("child.txt"));
  ASSERT_TRUE(child.started());
  // Wait until a temporary file exists: check_writable's probe or the output's own. The command
  // installs its Ctrl-C handler before it touches any file, so from the first one on, Ctrl-C must
  // give the clean line and exit 130, whether it lands in the probe's lifetime, while the model
  // loads or while sampling (the usual case: the probe lives for microseconds). The handler was
  // once installed after the probe: under load the test saw the probe, the signal's default action
  // killed the child (130 too, but no line), sometimes leaving the probe behind.
  const bool started = wait_for_temporary_file(child, dir.path());
  ASSERT_TRUE(started) << test::slurp(dir.file("child.txt"));
  child.signal(SIGINT);
  EXPECT_EQ(child.wait(), 130) << test::slurp(dir.file("child.txt"));
  EXPECT_FALSE(child.killed_by_signal()) << "SIGINT's default action: no handler was installed";
  const std::string said = test::slurp(dir.file("child.txt"));
  EXPECT_EQ(said, "diffuse: sample: interrupted; " + out + " was not written\n");
  EXPECT_EQ(files_in(dir.path(), {"child.txt"}), std::vector<std::string>{});
}

// Runs `diffuse ARGS -o DIR/NAME` over an existing DIR/NAME, sends `sig` once a temporary file
// shows (check_writable's probe or the output's own: every command that writes files takes Ctrl-C
// before it touches one), and checks the one clean line "diffuse: COMMAND: interrupted; OUT was
// not written", exit 130 (not death by the signal), the old file untouched and no temporary file.
void expect_clean_interrupt(const std::string& args, const std::string& name,
                            const std::string& command, int sig) {
  TempDir dir;
  const std::string out = dir.file(name);
  put(out, "the old file\n");
  Child child(split_args(args + " -o " + out), dir.file("child.txt"));
  ASSERT_TRUE(child.started());
  const bool started = wait_for_temporary_file(child, dir.path());
  ASSERT_TRUE(started) << "finished before it was interrupted? "
                       << test::slurp(dir.file("child.txt"));
  child.signal(sig);
  EXPECT_EQ(child.wait(), 130) << test::slurp(dir.file("child.txt"));
  EXPECT_FALSE(child.killed_by_signal()) << "the signal's default action: no handler was installed";
  EXPECT_EQ(test::slurp(dir.file("child.txt")),
            "diffuse: " + command + ": interrupted; " + out + " was not written\n");
  EXPECT_EQ(test::slurp(out), "the old file\n");
  EXPECT_EQ(files_in(dir.path(), {"child.txt", name}), std::vector<std::string>{});
}

TEST_F(Outputs, CtrlCDuringDataExits130AndLeavesTheOldFile) {
  // 10 million rows: seconds of writing, during which the temporary file exists.
  expect_clean_interrupt("data moons -n 10000000", "d.csv", "data", SIGINT);
  expect_clean_interrupt("data 8gaussians --labels -n 10000000", "d.csv", "data", SIGTERM);
}

TEST_F(Outputs, CtrlCDuringAFigureExits130AndLeavesTheOldFile) {
  // A figure's file is opened before it is drawn: millions of points take seconds to draw.
  expect_clean_interrupt("plot data moons -n 8000000", "p.png", "plot data", SIGINT);
  expect_clean_interrupt("animate " + model_ + " -n 2000000 --every 1", "a.gif", "animate",
                         SIGTERM);
}

TEST_F(Outputs, InputsThatAreNotRegularFilesOrTooLargeAreRefused) {
  SKIP_UNDER_ASAN();
  TempDir dir;
  // /dev/zero would be read forever; a FIFO would block.
  expect_error("sample /dev/zero -n 5 -o " + dir.file("s.csv"), 1,
               "/dev/zero: ", "not a regular file (a device)");
  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_error("sample " + fifo + " -n 5 -o " + dir.file("s.csv"), 1, fifo + ": ",
               "not a regular file (a FIFO)");
  // A model larger than the memory the process may use (ulimit -v: 1 GiB of address space).
  const std::string big = dir.file("big.safetensors");
  put(big, test::slurp(model_));
  ASSERT_EQ(::truncate(big.c_str(), off_t{4} << 30), 0);  // sparse: costs no disk
  const auto r = test::run_shell("ulimit -v 1048576; '" + std::string(DIFFUSE_CLI) + "' sample " +
                                 big + " -n 5 -o " + dir.file("s.csv"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(
      r.output.rfind("diffuse: error: " + big + ": needs 4.0 GiB of memory, more than the ", 0), 0u)
      << r.output;
  EXPECT_EQ(files_in(dir.path(), {"fifo", "big.safetensors"}), std::vector<std::string>{});
}

TEST_F(Outputs, GifDelaysAndSeedsOutOfRangeAreRefused) {
  TempDir dir;
  const std::string a = "animate " + model_ + " -n 20 -o " + dir.file("a.gif");
  expect_error(a + " --frame-ms 655360", 2, "--frame-ms: ", "20 to 655350");
  expect_error(a + " --hold-ms 700000", 2, "--hold-ms: ", "0 to 655350");
  ASSERT_EQ(run_cli(a + " --frame-ms 655350 --hold-ms 655350").exit_code, 0);
  // A seed is 0 .. 2^64 - 1; CLI11 alone turned -1 and 2^70 into 2^64 - 1.
  const std::string s = "sample " + model_ + " -n 5 -o " + dir.file("s.csv");
  expect_error(s + " --seed -1", 2, "--seed: ", "got \"-1\"");
  expect_error(s + " --seed 1180591620717411303424", 2, "--seed: ", "2^64 - 1");
  expect_error(s + " --seed 12abc", 2, "--seed: ", "got \"12abc\"");
  expect_error("data moons --seed -5 -o " + dir.file("d.csv"), 2, "--seed: ", "\"-5\"");
  expect_error("train --seed 99999999999999999999 -q -o " + dir.file("m.safetensors"), 2,
               "--seed: ", "");
  ASSERT_EQ(run_cli(s + " --seed 18446744073709551615").exit_code, 0);
  EXPECT_EQ(files_in(dir.path(), {"a.gif", "s.csv"}), std::vector<std::string>{});
}

// ---- messages name their file, line or option, on one line ----------------------------------

TEST_F(Outputs, EveryMessageNamesItsFileLineOrOption) {
  TempDir dir;
  const std::string d = dir.path() + "/";
  // A model whose output overflows: the sampler's NaN is the model's fault, so it names the file.
  SafeTensors st = read_safetensors(model_);
  for (float& w : st.tensors["lin4.weight"].data) w = 3e38f;
  put(d + "huge.safetensors", serialize_safetensors(st));
  // (--x0-clamp off: the clamp would hold the overflowing x0 prediction inside the data's range.)
  expect_error("sample " + d + "huge.safetensors -n 5 --x0-clamp off -o " + d + "s.csv", 1,
               d + "huge.safetensors: ", "NaN or infinity");
  // Column names no CSV can hold: the checkpoint's fault (not the output's), on one line.
  st = read_safetensors(model_);
  st.metadata["columns"] = R"(["a\nb", "c"])";
  put(d + "names.safetensors", serialize_safetensors(st));
  expect_error("sample " + d + "names.safetensors -n 5 -o " + d + "s.csv", 1,
               d + "names.safetensors: ",
               "stored column 1 name \"a\\nb\" cannot be written to a CSV header");
  // CSV: a stray comma in a first row of numbers is not a header; a tab is escaped.
  put(d + "comma.csv", "1,2,\n3,4,\n");
  expect_error("train --data " + d + "comma.csv -q -o " + d + "m.safetensors", 1,
               d + "comma.csv:1: ", "field 3 is empty in a row of numbers");
  put(d + "tab.csv", "x,y\n1,2\n3,a\tb\n");
  expect_error("train --data " + d + "tab.csv -q -o " + d + "m.safetensors", 1,
               d + "tab.csv:3: ", "field 2 'a\\tb' is not a number");
  // eval: too few samples, and a reference whose rows are all equal.
  put(d + "one.csv", "x,y\n1,2\n");
  expect_error("eval " + d + "one.csv --against moons", 1, d + "one.csv: ", "at least 2 samples");
  std::string same = "x,y\n";
  for (int i = 0; i < 50; ++i) same += "1,2\n";
  put(d + "same.csv", same);
  put(d + "ten.csv", "x,y\n1,2\n3,4\n5,6\n7,8\n9,1\n2,3\n4,5\n6,7\n8,9\n1,1\n");
  expect_error("eval " + d + "ten.csv --against " + d + "same.csv", 1, d + "same.csv: ", "");
  // Options: a file given as the snapshot folder; noise that hides any shape.
  put(d + "file", "x");
  const std::string tiny = "train --data moons -n 64 --batch-size 64 --epochs 1 --hidden 2 -q ";
  expect_error(tiny + "--snapshot-every 1 --snapshot-dir " + d + "file -o " + d + "m.safetensors",
               2, "--snapshot-dir " + d + "file: ", "is a file, not a folder");
  expect_error(tiny + "--noise 1e30 -o " + d + "m.safetensors", 2, "--noise: ", "got 1e+30");
  EXPECT_FALSE(test::file_exists(d + "m.safetensors"));
  EXPECT_FALSE(test::file_exists(d + "s.csv"));
}

// A model that trains but cannot sample is warned about when it is trained, not found out later.
TEST(Schedules, ATrainingRunWhoseModelCannotSampleIsWarned) {
  TempDir dir;
  const std::string t =
      "train --data moons -n 64 --batch-size 64 --epochs 1 --hidden 2 --schedule sigmoid -o " +
      dir.file("m.safetensors");
  const auto r = run_cli(t + " --steps 1200");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(
      r.output.find("diffuse: warning: schedule sigmoid with T=1200 leaves sqrt(alpha_bar_T)"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("the model will not sample"), std::string::npos) << r.output;
  const auto ok = run_cli(t + " --steps 1000");
  EXPECT_EQ(ok.output.find("warning: schedule"), std::string::npos) << ok.output;
}

// ---- interrupts and resume -------------------------------------------------------------------

// Trains uninterrupted, then again with --checkpoint-every 1 in a child process that gets `sig`
// after its first checkpoint; resumes it and checks the weights are the same bit for bit.
void interrupt_and_resume(const std::string& options, int epochs, int sig, TempDir& dir) {
  const std::string run = options + " --epochs " + std::to_string(epochs) + " -q";
  const auto full = run_cli("train " + run + " -o " + dir.file("full.safetensors"));
  ASSERT_EQ(full.exit_code, 0) << full.output;

  const std::string part = dir.file("part.safetensors");
  {
    Child child(split_args("train " + run + " --checkpoint-every 1 -o " + part),
                dir.file("child.txt"));
    ASSERT_TRUE(child.started());
    ASSERT_TRUE(wait_for_file(child, part)) << test::slurp(dir.file("child.txt"));
    child.signal(sig);
    EXPECT_EQ(child.wait(), 130) << "the run finished before the signal? "
                                 << test::slurp(dir.file("child.txt"));
  }
  const std::string said = test::slurp(dir.file("child.txt"));
  EXPECT_NE(said.find("diffuse: train: interrupted at epoch "), std::string::npos) << said;
  EXPECT_NE(said.find("--resume " + part), std::string::npos) << said;

  const Checkpoint stopped = load_checkpoint(part);
  ASSERT_TRUE(stopped.train_state.has_value());
  const int at = stopped.train_state->epoch;
  EXPECT_GE(at, 1);
  EXPECT_LT(at, epochs);
  EXPECT_EQ(log_epochs(dir.file("part.log.csv")), one_to(at));

  const auto resumed = run_cli("train --resume " + part + " -q -o " + part);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const Checkpoint a = load_checkpoint(dir.file("full.safetensors"));
  const Checkpoint b = load_checkpoint(part);
  EXPECT_FALSE(b.train_state.has_value()) << "a finished run saves the plain model";
  EXPECT_TRUE(bits_equal(a.params, b.params)) << "stopped at epoch " << at;
  EXPECT_EQ(b.info.at("epochs"), std::to_string(epochs));
  // The resumed log has every epoch once: the rows before the interrupt are kept.
  EXPECT_EQ(log_epochs(dir.file("part.log.csv")), one_to(epochs));
}

TEST(Interrupt, SigintThenResumeGivesTheSameWeightsBitForBit) {
  TempDir dir;
  interrupt_and_resume("--data moons -n 20000 --hidden 16 --seed 5", 40, SIGINT, dir);
}

TEST(Interrupt, SigtermWithTwoThreadsEmaAndCsvDataThenResume) {
  TempDir dir;
  const std::string csv = dir.file("points.csv");
  Points x = make_shape(Shape::kEightGaussians, 6000, 0.1, 9);
  x = (x.array() * 3.0f + 1.0f).matrix();  // not standardized: the run must standardize
  write_csv(csv, x, {"u", "v"});
  interrupt_and_resume("--data " + csv + " --hidden 16 --seed 7 --threads 2 --ema 0.99", 30,
                       SIGTERM, dir);
}

TEST(Interrupt, ResumeRefusesDataThatChanged) {
  TempDir dir;
  const std::string csv = dir.file("points.csv");
  const Points x = make_shape(Shape::kMoons, 20000, 0.1, 9);
  write_csv(csv, x, {"u", "v"});
  const std::string part = dir.file("part.safetensors");
  {
    Child child(split_args("train --data " + csv +
                           " --hidden 16 --epochs 40 -q "
                           "--checkpoint-every 1 -o " +
                           part),
                dir.file("child.txt"));
    ASSERT_TRUE(wait_for_file(child, part)) << test::slurp(dir.file("child.txt"));
    child.signal(SIGINT);
    ASSERT_EQ(child.wait(), 130) << test::slurp(dir.file("child.txt"));
  }
  const std::string before = test::slurp(part);
  Points wider(x.rows(), 3);
  wider << x, x.col(0);
  write_csv(csv, wider, {"u", "v", "w"});
  expect_error("train --resume " + part + " -q -o " + part, 1, part + ": ",
               "the run trained on 2 columns but " + csv + " now has 3");
  Points moved = x;
  moved(0, 0) += 1.0f;
  write_csv(csv, moved, {"u", "v"});
  expect_error("train --resume " + part + " -q -o " + part, 1, part + ": ",
               csv + " has changed since the run started");
  EXPECT_EQ(test::slurp(part), before) << "a refused resume leaves the checkpoint alone";
}

// SIGKILL cannot be caught: the checkpoint under its final name must still always be whole.
// Large checkpoints (T = 30000: ~46 MB a save, most of each epoch) and a kill shortly after a save
// has landed make the kills land inside the next save.
TEST(Interrupt, SigkillDuringSavesNeverLeavesAHalfWrittenCheckpoint) {
  TempDir dir;
  const std::string run =
      "--data moons -n 256 --batch-size 256 --hidden 32 --steps 30000 --epochs 12 --seed 3 -q";
  const std::string part = dir.file("part.safetensors");
  int kills = 0, unfinished = 0;
  std::vector<std::string> args = split_args("train " + run + " --checkpoint-every 1 -o " + part);
  bool finished = false;
  for (int round = 0; round < 5 && !finished; ++round) {
    const ino_t before = inode(part);
    Child child(args, dir.file("child.txt"));
    if (!wait_for_file(child, part, before)) break;  // finished without another save
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + 10 * round));
    child.signal(SIGKILL);
    const int code = child.wait();
    if (code == 128 + SIGKILL) ++kills;
    Checkpoint c;
    ASSERT_NO_THROW(c = load_checkpoint(part)) << "after kill " << kills;
    finished = !c.train_state.has_value();
    if (!finished && code == 128 + SIGKILL) ++unfinished;
    args = split_args("train --resume " + part + " -q --checkpoint-every 1 -o " + part);
  }
  EXPECT_GE(unfinished, 1) << "no kill landed before the end of the run";
  if (!finished) {
    const auto r = run_cli("train --resume " + part + " -q -o " + part);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // Killed and resumed any number of times, the result is the uninterrupted run's.
  ASSERT_EQ(run_cli("train " + run + " -o " + dir.file("full.safetensors")).exit_code, 0);
  EXPECT_TRUE(bits_equal(load_checkpoint(part).params,
                         load_checkpoint(dir.file("full.safetensors")).params));
  int temporaries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    temporaries += e.path().filename().string().find(".tmp-") != std::string::npos;
  }
  std::printf("[ info ] %d kills, %d before the end, %d left a temporary file behind\n", kills,
              unfinished, temporaries);
}

// ---- training: outputs that are inputs, side outputs, resume options -------------------------

// The default schedule (T = 100): no warning to get in the way of the one-line messages.
const char* kTinyRun = "train --data moons -n 64 --batch-size 64 --epochs 2 --hidden 2 -q";

TEST(TrainOutputs, AnOutputThatIsAnInputIsRefusedBeforeTraining) {
  TempDir dir;
  const std::string d = dir.path() + "/";
  put(d + "d.csv", "x,y\n1,2\n3,4\n5,6\n7,8\n");
  const std::string data = test::slurp(d + "d.csv");
  const std::string t = "train --data " + d + "d.csv --batch-size 4 --epochs 1 --hidden 2 -q ";
  expect_error(t + "-o " + d + "d.csv", 2, "-o " + d + "d.csv ", "the same file as --data " + d);
  expect_error(t + "-o " + d + "m.safetensors --log " + d + "d.csv", 2, "--log " + d + "d.csv ",
               "the same file as --data");
  fs::create_symlink(d + "d.csv", d + "link.csv");
  expect_error(t + "-o " + d + "link.csv", 2, "-o " + d + "link.csv ", "the same file as --data");
  expect_error(t + "-o " + d + "x.safetensors --log " + d + "x.safetensors", 2,
               "--log " + d + "x.safetensors ", "the same file as -o " + d + "x.safetensors");
  EXPECT_EQ(test::slurp(d + "d.csv"), data);
  // A snapshot that would land on the checkpoint.
  fs::create_directory(d + "snaps");
  expect_error(t + "--snapshot-every 1 --snapshot-dir " + d + "snaps -o " + d +
                   "snaps/reverse_epoch_0001.png",
               2, "-o " + d + "snaps/reverse_epoch_0001.png ", "snapshot");
  EXPECT_EQ(files_in(dir.path(), {"d.csv", "link.csv", "snaps"}), std::vector<std::string>{});
}

TEST(TrainOutputs, AFailedLogOrSnapshotNeverLosesTheModel) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  TempDir dir;
  const std::string d = dir.path() + "/";
  // The log on a full disk (/dev/full: every write fails with ENOSPC): the model is saved first,
  // and the exit code (3) says it exists.
  auto r = run_cli(std::string(kTinyRun) + " --log /dev/full -o " + d + "m.safetensors");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  // The tiny run's under-training warning comes first; the error is the one other line.
  const std::string warning = "diffuse: warning: this run makes only";
  if (r.output.rfind(warning, 0) == 0) r.output.erase(0, r.output.find('\n') + 1);
  EXPECT_EQ(
      r.output.rfind("diffuse: error: " + d + "m.safetensors was saved, but --log /dev/full", 0),
      0u)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NO_THROW(load_checkpoint(d + "m.safetensors"));
  EXPECT_TRUE(S_ISCHR(lstat_of("/dev/full").st_mode));
  // A snapshot that cannot be written: a warning, training goes on, the model is saved, exit 3.
  fs::create_directory(d + "snaps");
  fs::create_symlink("/dev/full", d + "snaps/reverse_epoch_0001.png");
  r = run_cli(std::string(kTinyRun) + " --snapshot-every 1 --snapshot-dir " + d + "snaps -o " + d +
              "n.safetensors");
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("diffuse: warning: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(d + "n.safetensors was saved, but"), std::string::npos) << r.output;
  EXPECT_TRUE(test::file_exists(d + "snaps/reverse_epoch_0002.png")) << "training went on";
  EXPECT_NO_THROW(load_checkpoint(d + "n.safetensors"));
}

TEST(TrainOutputs, AnInterruptedRunKeepsItsCheckpointWhenTheLogFails) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  TempDir dir;
  const std::string part = dir.file("part.safetensors");
  Child child(split_args("train --data moons -n 20000 --hidden 16 --epochs 40 -q "
                         "--checkpoint-every 1 --log /dev/full -o " +
                         part),
              dir.file("child.txt"));
  ASSERT_TRUE(wait_for_file(child, part)) << test::slurp(dir.file("child.txt"));
  child.signal(SIGINT);
  EXPECT_EQ(child.wait(), 130) << test::slurp(dir.file("child.txt"));
  EXPECT_FALSE(child.killed_by_signal()) << "SIGINT's default action: no handler was installed";
  const Checkpoint c = load_checkpoint(part);
  ASSERT_TRUE(c.train_state.has_value()) << "no resumable checkpoint";
  const std::string said = test::slurp(dir.file("child.txt"));
  EXPECT_NE(said.find("--resume " + part), std::string::npos) << said;
}

// Sizes that would grow until the OOM killer came are refused up front, naming the options. An
// 8 GiB address-space limit makes the outcome the same on any machine.
TEST(TrainOutputs, SizesThatCannotFitAreRefusedBeforeAllocating) {
  SKIP_UNDER_ASAN();
  TempDir dir;
  const std::string limit = "ulimit -v 8388608; '" + std::string(DIFFUSE_CLI) + "' ";
  const std::string t =
      "train --data moons --batch-size 64 --epochs 1 --model tutorial --schedule sigmoid -q -o " +
      dir.file("m.safetensors");
  struct Case {
    std::string options, prefix, needle;
  };
  for (const Case& c : std::vector<Case>{
           {" -n 64 --hidden 60000 --steps 100", "--hidden 60000, --steps 100, --batch-size 64 (",
            "weights): needs "},
           {" -n 64 --steps 1000000000", "--steps 1000000000: the schedule: needs ", "available"},
           {" -n 2000000000", "-n 2000000000 points: needs ", "available"}}) {
    const auto r = test::run_shell(limit + t + c.options);
    EXPECT_EQ(r.exit_code, 2) << c.options << "\n" << r.output;
    EXPECT_EQ(r.output.rfind("diffuse: error: " + c.prefix, 0), 0u) << r.output;
    EXPECT_NE(r.output.find(c.needle), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  }
  EXPECT_EQ(files_in(dir.path(), {}), std::vector<std::string>{});
}

// A resumable checkpoint (a 40-epoch run stopped by SIGINT after its first periodic save) and
// copies of it with edited stored options.
class Resume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    ckpt_ = dir_->file("stopped.safetensors");
    Child child(split_args("train --data moons -n 20000 --hidden 16 --epochs 40 --lr 0.003 -q "
                           "--checkpoint-every 1 -o " +
                           ckpt_),
                dir_->file("child.txt"));
    ASSERT_TRUE(wait_for_file(child, ckpt_)) << test::slurp(dir_->file("child.txt"));
    child.signal(SIGINT);
    ASSERT_EQ(child.wait(), 130) << test::slurp(dir_->file("child.txt"));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string with_stored(const std::function<void(nlohmann::json&)>& edit) {
    SafeTensors st = read_safetensors(ckpt_);
    nlohmann::json j = nlohmann::json::parse(st.metadata.at("train.config"));
    edit(j);
    st.metadata["train.config"] = j.dump();
    const std::string path = dir_->file("edited.safetensors");
    put(path, serialize_safetensors(st));
    return path;
  }
  static std::string resumable() { return ckpt_; }
  static TempDir* dir_;
  static std::string ckpt_;
  TempDir out_;
};
TempDir* Resume::dir_ = nullptr;
std::string Resume::ckpt_;

TEST_F(Resume, InvalidOptionsAreRefusedAsOptions) {
  const std::string r = "train --resume " + resumable() + " -q -o " + out_.file("out.safetensors");
  expect_error(r + " --lr nan", 2, "--lr: ", "positive learning rate");
  expect_error(r + " --threads 0", 2, "--threads: ", "got 0");
  expect_error(r + " --batch-size -1", 2, "--batch-size: ", "at least 1");
  EXPECT_FALSE(test::file_exists(out_.file("out.safetensors")));
}

TEST_F(Resume, OptionsThatConflictWithTheStoredRunAreRefused) {
  const std::string ck = resumable();
  const std::string r = "train --resume " + ck + " -q -o " + out_.file("out.safetensors");
  expect_error(r + " --hidden 8", 2, "--hidden: ", "started with --hidden 16");
  expect_error(r + " --lr 0.01", 2, "--lr: ", "started with --lr 0.003");
  expect_error(r + " --data circles", 2, "--data: ", "started with --data moons");
  expect_error(r + " --steps 20", 2, "--steps: ", ck);
  const int done = load_checkpoint(ck).train_state->epoch;
  expect_error(r + " --epochs " + std::to_string(done), 2,
               "--epochs: ", std::to_string(done) + " epochs are already done");
  // The same value as stored is fine, and so are the options a resumed run may change.
  const auto ok = run_cli(r + " --hidden 16 --lr 0.003 --epochs 41 --threads 2");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  const Checkpoint c = load_checkpoint(out_.file("out.safetensors"));
  EXPECT_EQ(c.info.at("epochs"), "41");
}

TEST_F(Resume, BadStoredOptionsAreTheFilesFault) {
  SKIP_UNDER_ASAN();
  struct Case {
    std::function<void(nlohmann::json&)> edit;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[](nlohmann::json& j) { j["batch_size"] = -1; }, "--batch-size: expected at least 1"},
      {[](nlohmann::json& j) { j["lr_schedule"] = "weird"; }, "\"lr_schedule\" is \"weird\""},
      {[](nlohmann::json& j) { j["seed"] = -1; }, "\"seed\" is -1"},
      {[](nlohmann::json& j) { j["n"] = 2000000000; }, "-n 2000000000 points: needs"},
      {[](nlohmann::json& j) { j["lr"] = -1.0; }, "--lr: expected a positive learning rate"},
      {[](nlohmann::json& j) { j["T"] = "100"; }, "\"T\" is \"100\", expected a 32-bit integer"},
  };
  for (const Case& c : cases) {
    const std::string path = with_stored(c.edit);
    // At most 8 GiB of address space: 2e9 stored points (64 GiB with training's copies) must not
    // fit, whatever the machine.
    const auto res =
        test::run_shell("ulimit -v 8388608; '" + std::string(DIFFUSE_CLI) + "' train --resume " +
                        path + " -q -o " + out_.file("out.safetensors"));
    EXPECT_EQ(res.exit_code, 1) << c.needle << "\n" << res.output;
    EXPECT_EQ(res.output.rfind("diffuse: error: " + path + ": ", 0), 0u) << res.output;
    EXPECT_NE(res.output.find(c.needle), std::string::npos) << res.output;
    EXPECT_EQ(std::count(res.output.begin(), res.output.end(), '\n'), 1) << res.output;
  }
  EXPECT_FALSE(test::file_exists(out_.file("out.safetensors")));
}

TEST_F(Resume, TheLogCannotOverwriteTheCheckpointBeingResumed) {
  const std::string ck = resumable();
  const std::string before = test::slurp(ck);
  expect_error("train --resume " + ck + " -q -o " + out_.file("out.safetensors") + " --log " + ck,
               2, "--log " + ck + " ", "the same file as --resume " + ck);
  EXPECT_EQ(test::slurp(ck), before);
}

// ---- divergence ------------------------------------------------------------------------------

// A learning rate that warms up by 10 per step (to 3000 over 300 steps) makes the weights overflow
// after ~50 steps; one step per epoch and a checkpoint every 5 epochs. The budget (20,000 steps)
// is large enough that no under-training warning precedes the error line.
const char* kDiverging =
    "train --data moons -n 64 --batch-size 64 --model tutorial --hidden 8 --updates 20000 --lr 3000"
    " --warmup 300"
    " --lr-schedule constant -q";

TEST(Divergence, NanLossStopsAndKeepsTheLastGoodCheckpoint) {
  TempDir dir;
  const std::string out = dir.file("m.safetensors");
  const auto r = run_cli(std::string(kDiverging) + " --checkpoint-every 5 -o " + out);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_EQ(r.output.rfind("diffuse: error: training diverged: ", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  int failed_at = 0, kept = 0;
  const size_t e = r.output.find("at epoch ");
  ASSERT_NE(e, std::string::npos) << r.output;
  failed_at = std::stoi(r.output.substr(e + 9));
  const size_t k = r.output.find("the last good checkpoint (epoch ");
  ASSERT_NE(k, std::string::npos) << r.output;
  kept = std::stoi(r.output.substr(k + 32));
  EXPECT_NE(r.output.find(") is " + out), std::string::npos) << r.output;
  EXPECT_GT(failed_at, 5) << "diverged before the first checkpoint: " << r.output;
  EXPECT_EQ(kept, (failed_at - 1) / 5 * 5);

  const Checkpoint c = load_checkpoint(out);  // whole, finite (load_checkpoint checks)
  ASSERT_TRUE(c.train_state.has_value());
  EXPECT_EQ(c.train_state->epoch, kept);
  // The log has every finished epoch, up to the one before the failure.
  EXPECT_EQ(log_epochs(dir.file("m.log.csv")), one_to(failed_at - 1));
}

TEST(Divergence, WithoutCheckpointsNothingIsSavedAndTheMessageSaysSo) {
  TempDir dir;
  const std::string out = dir.file("m.safetensors");
  expect_error(std::string(kDiverging) + " -o " + out, 1,
               "training diverged: ", "no checkpoint was saved (--checkpoint-every N keeps one)");
  EXPECT_FALSE(test::file_exists(out));
}

}  // namespace
}  // namespace diffuse
