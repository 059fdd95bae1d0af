// Errors a user can cause: each carries one line naming the file (and line or byte), option or
// value. Not a logging facility; the CLI maps UsageError to exit 2 and any other Error to exit 1.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

// The main output (the model) was written, but a side output (the log, a snapshot) was not: exit 3,
// so that a script can tell that the model exists.
class SideOutputError : public Error {
 public:
  using Error::Error;
};

// A run stopped by SIGINT or SIGTERM after saving its state: exit 130.
class Interrupted : public Error {
 public:
  using Error::Error;
};

// Untrusted text (a field, a column name, a key) for a one-line message: in double quotes, at most
// max_chars bytes of it ("..." after), with control characters written as \n, \t, \r or \xNN
// and bytes that are not valid UTF-8 as \xNN, so a message never spans two lines or garbles the
// terminal.
std::string quote_for_message(std::string_view text, std::size_t max_chars = 60);

// Length of the UTF-8 sequence at s[i], or 0 when it is not valid UTF-8 (overlong, surrogate,
// beyond U+10FFFF, cut short). Shared by the CSV reader and quote_for_message.
size_t utf8_length(std::string_view s, size_t i);

// The one line for a name an enum option does not know, the same from the CLI and the Python
// module: "OPTION: unknown WHAT "VALUE", expected one of A, B, C" (VALUE as quote_for_message).
// Each enum's parse_* helper (parse_schedule, parse_sampler, ...) throws it.
UsageError unknown_name_error(std::string_view option, std::string_view what,
                              std::string_view value, const std::vector<std::string>& names);

}  // namespace diffuse
