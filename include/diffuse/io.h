// Crash-safe file output: write to a temporary file in the target's folder, then rename over the
// target, so an interrupted run never leaves a half-written file under the final name.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace diffuse {

class AtomicFile {
 public:
  // Opens "<path>.tmp-XXXXXX" next to path; throws Error naming path if the folder is missing or
  // not writable.
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless commit() succeeded
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::string_view bytes);
  std::FILE* stream() { return f_; }
  // Flushes, fsyncs and renames into place; throws Error on failure.
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, std::string_view bytes);
// Reads a whole file; throws Error naming it when it is missing or unreadable.
std::string read_file(const std::string& path);
// Throws UsageError naming `option` if the folder that would hold path does not exist or is not
// writable. Lets commands fail before hours of training, not after.
void check_writable(const std::string& path, const std::string& option);

}  // namespace diffuse
