// Helpers for error messages: untrusted text shown safely on one line.
#include "diffuse/error.h"

#include <cstdint>
#include <cstdio>

namespace diffuse {
// Length of the UTF-8 sequence at s[i], or 0 when it is not valid UTF-8 (overlong, surrogate,
// beyond U+10FFFF, cut short).
size_t utf8_length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

std::string quote_for_message(std::string_view text, std::size_t max_chars) {
  // Characters are appended one at a time: GCC 12 at -O3 warns falsely (-Wrestrict) on
  // appending short literals to a std::string in this loop.
  std::string out(1, '"');
  size_t i = 0;
  for (; i < text.size() && i < max_chars; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out.push_back('\\');
      out.push_back('n');
    } else if (c == '\t') {
      out.push_back('\\');
      out.push_back('t');
    } else if (c == '\r') {
      out.push_back('\\');
      out.push_back('r');
    } else if (c < 0x20 || c == 0x7F) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    } else if (c >= 0x80) {
      const size_t n = utf8_length(text, i);
      if (n == 0) {
        char hex[8];
        std::snprintf(hex, sizeof hex, "\\x%02X", c);
        out += hex;
      } else {
        out.append(text.substr(i, n));
        i += n - 1;
      }
    } else {
      out += static_cast<char>(c);
    }
  }
  out += i < text.size() ? "...\"" : "\"";
  return out;
}

UsageError unknown_name_error(std::string_view option, std::string_view what,
                              std::string_view value, const std::vector<std::string>& names) {
  std::string list;
  for (const std::string& n : names) {
    if (!list.empty()) {  // one character at a time: see quote_for_message
      list.push_back(',');
      list.push_back(' ');
    }
    list += n;
  }
  std::string message(option);
  message.append(": unknown ").append(what);
  message.push_back(' ');
  message.append(quote_for_message(value, 40)).append(", expected one of ").append(list);
  return UsageError(message);
}

}  // namespace diffuse
