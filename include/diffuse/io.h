// File input and output with the promises of docs/RELIABILITY.md: an output replaces a regular
// file only whole (temporary file + fsync + rename, keeping the old file's mode), is written in
// place when it is a device, FIFO or other special file, and never replaces an input; inputs are
// read only from regular files that fit in memory. Not a general file-system layer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace diffuse {

// While one lives, every AtomicFile this thread opens, writes or commits first asks `stop`; when
// it answers true the file throws Interrupted("interrupted; PATH was not written"), removes its
// temporary file and leaves the file it would have replaced untouched. How a stop is requested is
// the caller's business (the CLI: Ctrl-C / SIGTERM); the library installs no signal handler.
// Scopes nest: the innermost is asked.
class OutputStopScope {
 public:
  explicit OutputStopScope(std::function<bool()> stop);
  ~OutputStopScope();
  OutputStopScope(const OutputStopScope&) = delete;
  OutputStopScope& operator=(const OutputStopScope&) = delete;
  // True when this thread has a scope whose stop() answers true.
  static bool stop_requested();

 private:
  std::function<bool()> stop_;
  OutputStopScope* outer_;
};

class AtomicFile {
 public:
  // Opens a temporary file next to path (its name kept within NAME_MAX); throws Error naming path
  // if the folder is missing or not writable. A symbolic link is followed: the file it names is
  // replaced and the link stays. An existing device, FIFO or socket is opened and written in place
  // (there is nothing to rename over it). Throws Interrupted when an OutputStopScope says stop
  // (here, in write() and in commit(), before the rename).
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);
  std::FILE* stream() { return f_; }
  // Flushes, fsyncs and renames into place, giving the file the mode (and, where allowed, the
  // owner and group) of the file it replaces; throws Error on failure.
  void commit();
  const std::string& path() const { return path_; }
  // The temporary file's path ("" when writing in place); for tests.
  const std::string& temporary_path() const { return tmp_; }

 private:
  std::string path_;    // as given, for messages
  std::string target_;  // path_ with symbolic links followed: what is replaced
  std::string tmp_;
  std::FILE* f_ = nullptr;
  bool in_place_ = false;  // a special file, written directly
  bool committed_ = false;
  void throw_if_stopped() const;
};

void write_file_atomic(const std::string& path, std::string_view bytes);

// The temporary name AtomicFile uses for path: "<name>.tmp-XXXXXX" in the same folder, with the
// name shortened so that the whole stays within the folder's NAME_MAX.
std::string temporary_name_for(const std::string& path);

// Reads a whole regular file; throws Error naming it when it is missing, a folder, a device, FIFO
// or socket, larger than max_bytes (what_limit says why, e.g. "a checkpoint"), larger than the
// memory available, or unreadable.
std::string read_file(const std::string& path, uint64_t max_bytes = UINT64_MAX,
                      const std::string& what_limit = "");

// Throws UsageError naming `option` if the folder that would hold path does not exist or is not
// writable. Lets commands fail before hours of training, not after.
void check_writable(const std::string& path, const std::string& option);

// A file a command reads or writes, and the option (or argument) that names it.
struct NamedPath {
  std::string option;  // "-o", "--data", "the model", ...
  std::string path;
};
// Throws UsageError (exit 2) naming both options when an output is the same file as an input or
// as another output: same device and inode (through hard and symbolic links) for files that
// exist, the same folder and name for those that do not. Call before any work.
void check_distinct_files(const std::vector<NamedPath>& inputs,
                          const std::vector<NamedPath>& outputs);

// Bytes of memory this process can still allocate: the least of the kernel's MemAvailable, the
// address-space limit (ulimit -v) less what is mapped, and the cgroup's memory.max less its use.
uint64_t available_memory_bytes();
// "1.5 GiB", "300 MiB", "12 KiB", "17 bytes".
std::string format_bytes(uint64_t bytes);
// Throws Error(what + ": needs FORMAT(bytes) of memory, more than the FORMAT(available) available")
// when bytes exceeds available_memory_bytes(). A UsageError when usage is true (the request came
// from an option).
void check_memory(uint64_t bytes, const std::string& what, bool usage = false);

}  // namespace diffuse
