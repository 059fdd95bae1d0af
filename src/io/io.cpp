// Crash-safe output (temporary file + fsync + rename; special files written in place), whole-file
// input of regular files only, same-file and memory checks. Promises: docs/RELIABILITY.md.
#include "diffuse/io.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <tuple>

#include "diffuse/error.h"

namespace diffuse {
namespace fs = std::filesystem;

namespace {

std::string parent_of(const std::string& path) {
  fs::path p(path);
  fs::path dir = p.parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

// path with symbolic links followed when it is one that resolves; otherwise path itself (a
// dangling link is then replaced by a regular file, as rename does).
std::string follow_link(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  char* real = ::realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string out = real;
  std::free(real);
  return out;
}

}  // namespace

std::string temporary_name_for(const std::string& path) {
  const std::string dir = parent_of(path);
  std::string name = fs::path(path).filename().string();
  long name_max = ::pathconf(dir.c_str(), _PC_NAME_MAX);
  if (name_max <= 0) name_max = NAME_MAX;
  const std::string suffix = ".tmp-XXXXXX";
  const size_t room = static_cast<size_t>(name_max) > suffix.size()
                          ? static_cast<size_t>(name_max) - suffix.size()
                          : 1;
  if (name.size() > room) {
    name.resize(room);
    // Do not end inside a UTF-8 sequence: drop continuation bytes and the lead byte they follow.
    size_t cut = name.size();
    while (cut > 1 && (static_cast<unsigned char>(name[cut - 1]) & 0xC0) == 0x80) --cut;
    if (cut < name.size() && (static_cast<unsigned char>(name[cut - 1]) & 0x80) != 0) --cut;
    name.resize(std::max<size_t>(cut, 1));
  }
  const std::string prefix = fs::path(path).parent_path().string();
  return (prefix.empty() ? std::string() : prefix + "/") + name + suffix;
}

namespace {
thread_local OutputStopScope* t_output_stop = nullptr;
}  // namespace

OutputStopScope::OutputStopScope(std::function<bool()> stop)
    : stop_(std::move(stop)), outer_(t_output_stop) {
  t_output_stop = this;
}

OutputStopScope::~OutputStopScope() { t_output_stop = outer_; }

bool OutputStopScope::stop_requested() {
  return t_output_stop != nullptr && t_output_stop->stop_ && t_output_stop->stop_();
}

void AtomicFile::throw_if_stopped() const {
  if (!OutputStopScope::stop_requested()) return;
  // A device or FIFO may already hold part of the output: it was not finished.
  throw Interrupted("interrupted; " + path_ +
                    (in_place_ && f_ != nullptr ? " was not finished" : " was not written"));
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw Error("output path is empty");
  throw_if_stopped();
  target_ = follow_link(path_);
  struct stat st {};
  if (::stat(target_.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) throw Error(path_ + ": cannot write: it is a folder");
    if (!S_ISREG(st.st_mode)) {
      // A device, FIFO or socket: renaming a regular file over it would replace the node itself
      // (as root, /dev/null). Write into it instead, as a shell redirection would.
      const int fd = ::open(target_.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
      if (fd < 0) throw Error(path_ + ": cannot write: " + std::strerror(errno));
      f_ = fdopen(fd, "wb");
      if (f_ == nullptr) {
        ::close(fd);
        throw Error(path_ + ": cannot write: " + std::strerror(errno));
      }
      in_place_ = true;
      return;
    }
  }
  const std::string dir = parent_of(target_);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(path_ + ": cannot write: '" + dir + "' " +
                (fs::exists(dir, ec) ? "is a file, not a folder" : "does not exist"));
  }
  tmp_ = temporary_name_for(target_);
  int fd = mkstemp(tmp_.data());
  if (fd < 0) {
    tmp_.clear();
    throw Error(path_ + ": cannot write: " + std::strerror(errno));
  }
  f_ = fdopen(fd, "wb");
  if (f_ == nullptr) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp_.c_str());
    tmp_.clear();
    throw Error(path_ + ": cannot write: " + std::strerror(err));
  }
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) std::fclose(f_);
  if (!committed_ && !tmp_.empty()) ::unlink(tmp_.c_str());
}

void AtomicFile::write(std::string_view bytes) {
  throw_if_stopped();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size()) {
    throw Error(path_ + ": write failed: " + std::strerror(errno));
  }
}

void AtomicFile::commit() {
  throw_if_stopped();
  if (std::fflush(f_) != 0) throw Error(path_ + ": write failed: " + std::strerror(errno));
  if (in_place_) {
    // Devices and FIFOs may not support fsync (EINVAL); their data are already handed over.
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) throw Error(path_ + ": write failed: " + std::strerror(errno));
    committed_ = true;
    return;
  }
  if (::fsync(fileno(f_)) != 0) throw Error(path_ + ": write failed: " + std::strerror(errno));
  // mkstemp creates 0600. An existing file keeps its mode, and its owner and group where the
  // process may set them (root; otherwise the group if we belong to it); a new file gets the usual
  // 0666 less the umask. Owner first: chown clears set-user-ID bits that chmod then restores.
  struct stat old {};
  if (::stat(target_.c_str(), &old) == 0 && S_ISREG(old.st_mode)) {
    if (::fchown(fileno(f_), old.st_uid, old.st_gid) != 0) {
      (void)::fchown(fileno(f_), static_cast<uid_t>(-1), old.st_gid);
    }
    ::fchmod(fileno(f_), old.st_mode & 07777);
  } else {
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fileno(f_), 0666 & ~mask);
  }
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) throw Error(path_ + ": write failed: " + std::strerror(errno));
  throw_if_stopped();  // the last moment: fsync may have taken long
  if (std::rename(tmp_.c_str(), target_.c_str()) != 0) {
    throw Error(path_ + ": cannot rename into place: " + std::strerror(errno));
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

std::string read_file(const std::string& path, uint64_t max_bytes, const std::string& what_limit) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file");
  if (fs::is_directory(path, ec)) throw Error(path + ": is a folder, not a file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) {
    throw Error(path + ": not a regular file (" +
                (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? std::string("a device")
                 : S_ISFIFO(st.st_mode)                     ? std::string("a FIFO")
                                                            : std::string("a socket")) +
                "); only regular files can be read whole");
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    throw Error(path + ": is " + format_bytes(size) + ", more than the " + format_bytes(max_bytes) +
                " " + what_limit + " can be");
  }
  check_memory(size, path);
  std::string out(size, '\0');
  size_t got = 0;
  while (got < size) {
    const ssize_t r = ::read(fd, out.data() + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(path + ": read failed: " + std::strerror(errno));
    if (r == 0) break;  // shrank while we read: what is there is checked by the parser
    got += static_cast<size_t>(r);
  }
  out.resize(got);
  return out;
}

void check_writable(const std::string& path, const std::string& option) {
  if (path.empty()) throw UsageError(option + ": an output path is required");
  const std::string target = follow_link(path);
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    if (::access(target.c_str(), W_OK) != 0) {
      throw UsageError(option + " " + path + ": cannot write: " + std::strerror(errno));
    }
    return;  // written in place
  }
  const std::string dir = parent_of(target);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UsageError(option + " " + path + ": " +
                     (fs::exists(dir, ec) ? "'" + dir + "' is a file, not a folder"
                                          : "folder '" + dir + "' does not exist"));
  }
  if (fs::is_directory(target, ec)) throw UsageError(option + " " + path + ": is a folder");
  // access() says yes to root everywhere, even on read-only file systems: create (and remove) the
  // temporary file AtomicFile would.
  std::string probe = temporary_name_for(target);
  const int fd = mkstemp(probe.data());
  if (fd < 0) {
    throw UsageError(option + " " + path + ": cannot write in folder '" + dir +
                     "': " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

namespace {

// What a path names, for comparing: the file's device and inode when it exists, else the folder's
// device and inode and the name in it.
struct FileIdentity {
  dev_t dev = 0;
  ino_t ino = 0;
  std::string name;  // empty when the file exists
  bool known = false;
  bool operator==(const FileIdentity& o) const {
    return known && o.known && std::tie(dev, ino, name) == std::tie(o.dev, o.ino, o.name);
  }
};

// existing_only: a path that names no file gives an identity equal to nothing (an input that does
// not exist, e.g. a shape name, cannot be destroyed).
FileIdentity identity(const std::string& path, bool existing_only) {
  FileIdentity id;
  if (path.empty()) return id;
  struct stat st {};
  const std::string target = follow_link(path);
  if (::stat(target.c_str(), &st) == 0) {
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.known = true;
    // Devices and FIFOs are written in place and are not destroyed: /dev/null may be every output.
    if (!S_ISREG(st.st_mode)) id.known = false;
    return id;
  }
  if (existing_only) return id;
  if (::stat(parent_of(target).c_str(), &st) == 0) {
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.name = fs::path(target).filename().string();
    id.known = !id.name.empty();
  }
  return id;
}

}  // namespace

void check_distinct_files(const std::vector<NamedPath>& inputs,
                          const std::vector<NamedPath>& outputs) {
  std::vector<FileIdentity> in_ids, out_ids;
  for (const NamedPath& p : inputs) in_ids.push_back(identity(p.path, true));
  for (const NamedPath& p : outputs) out_ids.push_back(identity(p.path, false));
  for (size_t o = 0; o < outputs.size(); ++o) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (out_ids[o] == in_ids[i]) {
        throw UsageError(outputs[o].option + " " + outputs[o].path + " is the same file as " +
                         inputs[i].option + " " + inputs[i].path +
                         "; writing it would destroy the input");
      }
    }
    for (size_t k = 0; k < o; ++k) {
      if (out_ids[o] == out_ids[k]) {
        throw UsageError(outputs[o].option + " " + outputs[o].path + " is the same file as " +
                         outputs[k].option + " " + outputs[k].path +
                         "; one output would overwrite the other");
      }
    }
  }
}

uint64_t available_memory_bytes() {
  uint64_t avail = UINT64_MAX;
  if (std::ifstream meminfo("/proc/meminfo"); meminfo) {
    std::string key;
    uint64_t kib = 0;
    std::string unit;
    while (meminfo >> key >> kib >> unit) {
      if (key == "MemAvailable:") {
        avail = kib * 1024;
        break;
      }
    }
  }
  if (avail == UINT64_MAX) {
    const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) avail = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  }
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    uint64_t mapped = 0;
    if (std::ifstream statm("/proc/self/statm"); statm) {
      uint64_t pages = 0;
      statm >> pages;
      mapped = pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    }
    const uint64_t lim = static_cast<uint64_t>(rl.rlim_cur);
    avail = std::min(avail, lim > mapped ? lim - mapped : 0);
  }
  // cgroup v2: the container's limit, when there is one.
  std::ifstream max_f("/sys/fs/cgroup/memory.max"), cur_f("/sys/fs/cgroup/memory.current");
  std::string max_s;
  uint64_t cur = 0;
  if (max_f >> max_s && max_s != "max" && cur_f >> cur) {
    const uint64_t lim = std::strtoull(max_s.c_str(), nullptr, 10);
    if (lim > 0) avail = std::min(avail, lim > cur ? lim - cur : 0);
  }
  return avail;
}

std::string format_bytes(uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.1f %s" : "%.0f %s", v, units[u]);
  }
  return buf;
}

void check_memory(uint64_t bytes, const std::string& what, bool usage) {
  const uint64_t avail = available_memory_bytes();
  if (bytes <= avail) return;
  const std::string msg = what + ": needs " + format_bytes(bytes) + " of memory, more than the " +
                          format_bytes(avail) + " available";
  if (usage) throw UsageError(msg);
  throw Error(msg);
}

}  // namespace diffuse
