// Crash-safe output (temporary file + fsync + rename) and whole-file input with clear errors.
#include "diffuse/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "diffuse/error.h"

namespace diffuse {
namespace fs = std::filesystem;

namespace {

std::string parent_of(const std::string& path) {
  fs::path p(path);
  fs::path dir = p.parent_path();
  return dir.empty() ? std::string(".") : dir.string();
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) throw Error("output path is empty");
  const std::string dir = parent_of(path_);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error(path_ + ": cannot write: '" + dir + "' " +
                (fs::exists(dir, ec) ? "is a file, not a folder" : "does not exist"));
  }
  if (fs::is_directory(path_, ec)) throw Error(path_ + ": cannot write: it is a folder");
  tmp_ = path_ + ".tmp-XXXXXX";
  int fd = mkstemp(tmp_.data());
  if (fd < 0) {
    throw Error(path_ + ": cannot write: " + std::strerror(errno));
  }
  f_ = fdopen(fd, "wb");
  if (f_ == nullptr) {
    ::close(fd);
    ::unlink(tmp_.c_str());
    throw Error(path_ + ": cannot write: " + std::strerror(errno));
  }
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) std::fclose(f_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFile::write(std::string_view bytes) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size()) {
    throw Error(path_ + ": write failed: " + std::strerror(errno));
  }
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0) {
    throw Error(path_ + ": write failed: " + std::strerror(errno));
  }
  // mkstemp creates 0600; give the file the usual permissions (0666 less the umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fileno(f_), 0666 & ~mask);
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) throw Error(path_ + ": write failed: " + std::strerror(errno));
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    throw Error(path_ + ": cannot rename into place: " + std::strerror(errno));
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path + ": no such file");
  if (fs::is_directory(path, ec)) throw Error(path + ": is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read failed");
  return ss.str();
}

void check_writable(const std::string& path, const std::string& option) {
  if (path.empty()) throw UsageError(option + ": an output path is required");
  const std::string dir = parent_of(path);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UsageError(option + " " + path + ": " +
                     (fs::exists(dir, ec) ? "'" + dir + "' is a file, not a folder"
                                          : "folder '" + dir + "' does not exist"));
  }
  if (fs::is_directory(path, ec)) throw UsageError(option + " " + path + ": is a folder");
  // access() says yes to root everywhere, even on read-only file systems: create (and remove) the
  // temporary file AtomicFile would.
  std::string probe = path + ".tmp-XXXXXX";
  const int fd = mkstemp(probe.data());
  if (fd < 0) {
    throw UsageError(option + " " + path + ": cannot write in folder '" + dir +
                     "': " + std::strerror(errno));
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace diffuse
