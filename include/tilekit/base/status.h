// Status codes returned by every tilekit entry point. No exceptions cross the
// API: a call either returns kOk or leaves its outputs untouched and returns an
// error, with a one-line detail in last_error() for the calling thread.
// [[nodiscard]]: a call whose Status is ignored gets a compiler warning.
#ifndef TILEKIT_BASE_STATUS_H_
#define TILEKIT_BASE_STATUS_H_

#include <cstdarg>
#include <cstdio>

namespace tilekit {

enum class [[nodiscard]] Status {
  kOk = 0,
  kInvalidArgument,  // a value is out of its domain (unknown name, negative size)
  kNullPointer,      // a required pointer is null
  kShapeMismatch,    // dimensions disagree (A is M×K, packed B is K'×N, K != K')
  kBadLeadingDim,    // leading dimension smaller than the number of columns
  kAliasing,         // an input overlaps the output where that is not allowed
  kOverflow,         // a size whose byte count does not fit in size_t
  kWrongPacking,     // packed weights made for another path, dtype or layout
  kUnsupported,      // the CPU or the build lacks what the call needs
  kOutOfMemory,
};

inline const char* status_name(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kInvalidArgument: return "invalid argument";
    case Status::kNullPointer: return "null pointer";
    case Status::kShapeMismatch: return "shape mismatch";
    case Status::kBadLeadingDim: return "bad leading dimension";
    case Status::kAliasing: return "aliasing";
    case Status::kOverflow: return "size overflow";
    case Status::kWrongPacking: return "wrong packing";
    case Status::kUnsupported: return "unsupported";
    case Status::kOutOfMemory: return "out of memory";
  }
  return "unknown status";
}

namespace detail {
inline char* last_error_buffer() {
  static thread_local char buffer[256] = "";
  return buffer;
}
}  // namespace detail

// The detail of the last error returned on this thread ("" after a success is
// not guaranteed: read it only right after a call that failed).
inline const char* last_error() { return detail::last_error_buffer(); }

// Records a printf-style detail for last_error() and returns `s`, so that
// validation reads `return fail(Status::kNullPointer, "gemm: A is null");`.
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
inline Status fail(Status s, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(detail::last_error_buffer(), 256, format, args);
  va_end(args);
  return s;
}

}  // namespace tilekit

#endif  // TILEKIT_BASE_STATUS_H_
