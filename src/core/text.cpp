#include "core/text.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

namespace cellguard {

Result<std::string> read_file(const std::string& path) {
  // One sized read: istreambuf_iterator goes character by character and costs more than parsing.
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    return Error(ErrorCode::io_error, path + ": cannot open: " + std::strerror(errno));
  }
  const std::streamoff size = in.tellg();
  if (size < 0) {
    return Error(ErrorCode::io_error, path + ": cannot tell its size");
  }
  std::string contents(static_cast<std::size_t>(size), '\0');
  in.seekg(0);
  in.read(contents.data(), size);
  if (in.gcount() != size) {
    return Error(ErrorCode::io_error, path + ": read failed: " + std::strerror(errno));
  }
  return contents;
}

Result<void> write_file(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return Error(ErrorCode::io_error, path + ": cannot create: " + std::strerror(errno));
  }
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.flush();
  if (!out) {
    return Error(ErrorCode::io_error, path + ": write failed: " + std::strerror(errno));
  }
  return success();
}

namespace {

// The well-formed UTF-8 sequence at text[i]: its length and code point; length 0 if there is none.
struct Utf8Char {
  std::size_t length = 0;
  std::uint32_t cp = 0;
};

Utf8Char decode_utf8_at(std::string_view text, std::size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return {1, c};
  std::size_t extra = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    extra = 1;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    extra = 2;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    extra = 3;
    cp = c & 0x07;
  } else {
    return {};
  }
  if (i + extra >= text.size()) return {};
  for (std::size_t k = 1; k <= extra; ++k) {
    const auto cc = static_cast<unsigned char>(text[i + k]);
    if ((cc & 0xC0) != 0x80) return {};
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Reject overlong forms, surrogates and values beyond Unicode.
  if ((extra == 1 && cp < 0x80) || (extra == 2 && cp < 0x800) || (extra == 3 && cp < 0x10000) ||
      (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
    return {};
  }
  return {extra + 1, cp};
}

// Code points that move the cursor, change a terminal's state or reorder text: written escaped.
bool is_unsafe_code_point(std::uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         (cp >= 0x200E && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

constexpr char kLowerHex[] = "0123456789abcdef";

void append_escape(std::string& out, std::uint32_t cp, bool is_byte) {
  if (!is_byte) {
    switch (cp) {
      case '\n':
        out.append("\\n");
        return;
      case '\r':
        out.append("\\r");
        return;
      case '\t':
        out.append("\\t");
        return;
      default:
        break;
    }
  }
  if (is_byte || cp <= 0x7F) {
    out.append("\\x");
    out.push_back(kLowerHex[(cp >> 4) & 0xF]);
    out.push_back(kLowerHex[cp & 0xF]);
    return;
  }
  out.append("\\u");
  for (int shift = 12; shift >= 0; shift -= 4) out.push_back(kLowerHex[(cp >> shift) & 0xF]);
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char ch = decode_utf8_at(text, i);
    if (ch.length == 0) return false;
    i += ch.length;
  }
  return true;
}

bool is_printable_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char ch = decode_utf8_at(text, i);
    if (ch.length == 0 || is_unsafe_code_point(ch.cp)) return false;
    i += ch.length;
  }
  return true;
}

std::string escape_untrusted(std::string_view bytes, std::size_t max_bytes) {
  max_bytes = std::max<std::size_t>(max_bytes, 32);
  // Room for the longest suffix, "...(18446744073709551615 bytes)", when the text must be cut.
  constexpr std::size_t kSuffixRoom = 31;
  const std::size_t cut_limit = max_bytes - kSuffixRoom;
  std::string out;
  out.reserve(std::min(bytes.size(), max_bytes) + 8);
  std::size_t cut_at = 0;  // the longest escaped prefix, in whole characters, that leaves room for the suffix
  std::size_t i = 0;
  while (i < bytes.size() && out.size() <= max_bytes) {
    const Utf8Char ch = decode_utf8_at(bytes, i);
    if (ch.length == 0) {
      append_escape(out, static_cast<unsigned char>(bytes[i]), true);
      i += 1;
    } else {
      if (is_unsafe_code_point(ch.cp)) {
        append_escape(out, ch.cp, false);
      } else {
        out.append(bytes.substr(i, ch.length));
      }
      i += ch.length;
    }
    if (out.size() <= cut_limit) cut_at = out.size();
  }
  if (i == bytes.size() && out.size() <= max_bytes) return out;
  out.resize(cut_at);
  out += "...(" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

namespace {

// cp1252 0x80..0x9F; 0 marks the five undefined bytes (mapped to U+0080.. like Latin-1).
constexpr std::array<std::uint16_t, 32> kCp1252High = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

std::string cp1252_to_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else if (c < 0xA0) {
      const std::uint16_t mapped = kCp1252High[c - 0x80];
      append_utf8(out, mapped != 0 ? mapped : c);
    } else {
      append_utf8(out, c);
    }
  }
  return out;
}

std::string to_utf8(std::string_view text) {
  if (is_valid_utf8(text)) return std::string(text);
  return cp1252_to_utf8(text);
}

std::string utf8_to_cp1252(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t extra = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
    if (extra == 0 || i + extra >= text.size()) {
      out.push_back('?');
      ++i;
      continue;
    }
    std::uint32_t cp = c & (extra == 1 ? 0x1F : extra == 2 ? 0x0F : 0x07);
    for (std::size_t k = 1; k <= extra; ++k) {
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    i += extra + 1;
    if (cp >= 0xA0 && cp <= 0xFF) {
      out.push_back(static_cast<char>(cp));
      continue;
    }
    char mapped = '?';
    for (std::size_t k = 0; k < kCp1252High.size(); ++k) {
      if ((kCp1252High[k] != 0 && kCp1252High[k] == cp) || (kCp1252High[k] == 0 && cp == 0x80 + k)) {
        mapped = static_cast<char>(0x80 + k);
        break;
      }
    }
    out.push_back(mapped);
  }
  return out;
}

std::size_t format_shortest(double value, char* out, bool keep_point) {
  // The text is returned as (out, length), never NUL-terminated.
  const auto put = [out](std::string_view word) {
    std::copy(word.begin(), word.end(), out);
    return word.size();
  };
  if (std::isnan(value)) return put("NaN");
  if (std::isinf(value)) return put(value < 0 ? "-Infinity" : "Infinity");
  // The shortest digits that read back exactly, laid out as Python's repr does: fixed notation for
  // decimal exponents -4..15, scientific with a two-digit exponent otherwise (1e-05, 1.5e+16).
  char sci[40];
  const auto [sci_end, ec] = std::to_chars(sci, sci + sizeof sci, value, std::chars_format::scientific);
  (void)ec;  // 40 bytes always suffice
  const char* p = sci;
  char* o = out;
  if (*p == '-') *o++ = *p++;
  char digits[24];
  std::size_t n = 0;
  for (; p < sci_end && *p != 'e'; ++p) {
    if (*p != '.') digits[n++] = *p;
  }
  int exponent = 0;
  std::from_chars(p + 1 + (p[1] == '+' ? 1 : 0), sci_end, exponent);
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = -1; i > exponent; --i) *o++ = '0';
      std::memcpy(o, digits, n);
      o += n;
    } else {
      const auto integer_digits = static_cast<std::size_t>(exponent) + 1;
      for (std::size_t i = 0; i < integer_digits; ++i) *o++ = i < n ? digits[i] : '0';
      if (n > integer_digits) {
        *o++ = '.';
        std::memcpy(o, digits + integer_digits, n - integer_digits);
        o += n - integer_digits;
      } else if (keep_point) {
        *o++ = '.';
        *o++ = '0';
      }
    }
  } else {
    *o++ = digits[0];
    if (n > 1) {
      *o++ = '.';
      std::memcpy(o, digits + 1, n - 1);
      o += n - 1;
    }
    *o++ = 'e';
    *o++ = exponent < 0 ? '-' : '+';
    const int magnitude = exponent < 0 ? -exponent : exponent;
    if (magnitude < 10) *o++ = '0';
    o = std::to_chars(o, o + 4, magnitude).ptr;
  }
  return static_cast<std::size_t>(o - out);
}

std::string format_shortest(double value, bool keep_point) {
  char buf[40];
  return std::string(buf, format_shortest(value, buf, keep_point));
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string closest_name(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  if (word.size() > 200) return best;
  std::size_t best_distance = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const auto& c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string c = closest_name(word, candidates);
  return c.empty() ? std::string() : " (did you mean '" + c + "'?)";
}

}  // namespace cellguard
