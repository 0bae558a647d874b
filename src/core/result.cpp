#include "core/result.h"

namespace cellguard {

std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument:
      return "invalid_argument";
    case ErrorCode::parse_error:
      return "parse_error";
    case ErrorCode::decode_error:
      return "decode_error";
    case ErrorCode::io_error:
      return "io_error";
    case ErrorCode::not_found:
      return "not_found";
    case ErrorCode::unsupported:
      return "unsupported";
    case ErrorCode::end_of_input:
      return "end_of_input";
  }
  return "unknown";
}

}  // namespace cellguard
