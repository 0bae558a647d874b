// Small text and file helpers shared by the parsers of external input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace cellguard {

// Reads a whole file. Errors name the path and the operating system's reason.
Result<std::string> read_file(const std::string& path);

// Writes a whole file (replacing it). Errors name the path and the reason.
Result<void> write_file(const std::string& path, std::string_view contents);

// True if `text` is well-formed UTF-8.
bool is_valid_utf8(std::string_view text);

// THE boundary for bytes from outside (CAN peers, socketcand, the board, Modbus, files) on their way
// to JSON, logs or the recording: returns valid, printable UTF-8 of at most `max_bytes` bytes.
// Valid printable UTF-8 is kept as it is; everything else is written as an escape:
//   \n \r \t                    newline, carriage return, tab
//   \xNN                        any other C0 control byte, DEL, and every byte of an invalid or
//                               truncated UTF-8 sequence (overlong, surrogate, beyond U+10FFFF)
//   \uNNNN                      C1 controls (U+0080..U+009F, e.g. the 8-bit CSI of terminals), line and
//                               paragraph separators and the bidirectional overrides
// A backslash is kept as it is, so the function is idempotent (escaping escaped text changes
// nothing) and may be applied at every layer; "\x41" in the input and an escaped byte then read
// alike, which is fine for texts meant for people. Longer results are cut at a character boundary and
// end in "...(N bytes)" naming the input's length; the result never exceeds max_bytes (at least 32).
inline constexpr std::size_t kMaxUntrustedTextBytes = 512;
std::string escape_untrusted(std::string_view bytes, std::size_t max_bytes = kMaxUntrustedTextBytes);

// True if `text` is what escape_untrusted() returns for it: valid UTF-8 without control characters.
bool is_printable_utf8(std::string_view text);

// Converts Windows-1252 text (a superset of Latin-1 in practice) to UTF-8. Bytes undefined in
// cp1252 (0x81 0x8D 0x8F 0x90 0x9D) map to the Latin-1 control characters of the same value.
std::string cp1252_to_utf8(std::string_view text);

// Returns UTF-8 text unchanged and converts anything else from cp1252: real DBC files come in both.
std::string to_utf8(std::string_view text);

// Converts UTF-8 text to cp1252 where every character has a cp1252 byte; characters without one
// are written as '?'. Used to write files in the encoding the tools of the field expect.
std::string utf8_to_cp1252(std::string_view text);

// Writes the shortest decimal text that reads back to exactly `value`, laid out as Python's repr
// (which the field's reference decoder and its vectors use): 0.1, 12.5, 1700000000.00025, 1e-05,
// 1.5e+16. Non-finite values as "NaN", "Infinity", "-Infinity". Integral values keep a ".0" suffix
// only if `keep_point` is set. Returns the length; `out` needs room for 32 bytes.
std::size_t format_shortest(double value, char* out, bool keep_point = false);
std::string format_shortest(double value, bool keep_point = false);

// For "did you mean" in errors about names: the closest of `candidates` to `word` by edit distance,
// if it is close enough to be a likely typo (at most a third of the word, at least 2 edits); empty
// otherwise, and for words over 200 bytes (the comparison is quadratic).
std::string closest_name(std::string_view word, const std::vector<std::string>& candidates);
// " (did you mean 'NAME'?)" with closest_name's answer, or empty.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace cellguard
