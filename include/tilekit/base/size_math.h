// Size arithmetic every layer shares: ceiling division, rounding up to a
// multiple, and multiplication that reports overflow instead of wrapping.
#ifndef TILEKIT_BASE_SIZE_MATH_H_
#define TILEKIT_BASE_SIZE_MATH_H_

#include <cstddef>
#include <cstdint>

namespace tilekit {

// ⌈x / d⌉ for d > 0. x + d - 1 must not overflow (callers validate sizes first).
constexpr size_t div_ceil(size_t x, size_t d) { return (x + d - 1) / d; }

// The smallest multiple of d that is >= x, for d > 0.
constexpr size_t round_up(size_t x, size_t d) { return div_ceil(x, d) * d; }

namespace detail {

// a * b, false on overflow.
inline bool mul_fits(size_t a, size_t b, size_t* out) {
  if (a && b > SIZE_MAX / a) return false;
  *out = a * b;
  return true;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_BASE_SIZE_MATH_H_
