// Errors a user can cause: each carries one line naming the file (and line or byte), option or
// value. Not a logging facility; the CLI maps UsageError to exit 2 and any other Error to exit 1.
#pragma once

#include <stdexcept>
#include <string>

namespace diffuse {

// Bad input data, unreadable or unwritable files, corrupt checkpoints, numeric failure: exit 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad option or argument value (names the option and what was expected): exit 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// A run stopped by SIGINT or SIGTERM after saving its state: exit 130.
class Interrupted : public Error {
 public:
  using Error::Error;
};

}  // namespace diffuse
