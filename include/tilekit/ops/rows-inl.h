// Per-target pieces the row ops share (rms_norm, softmax, attention): a row
// reduction over several independent accumulators, bf16 rounding of values
// kept in fp32 registers, and an exp that lets NaN through.
#if defined(TILEKIT_OPS_ROWS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_OPS_ROWS_INL_H_
#undef TILEKIT_OPS_ROWS_INL_H_
#else
#define TILEKIT_OPS_ROWS_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "tilekit/base/matrix.h"
#include "tilekit/convert/convert-inl.h"  // RoundToBf16Bits

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// v rounded to bf16 and widened back: the value a bf16 store would keep.
template <class DF>
HWY_INLINE hn::Vec<DF> RoundTripBf16(DF df, hn::Vec<DF> v) {
  return hn::BitCast(df, hn::ShiftLeft<16>(RoundToBf16Bits(df, v)));
}
// The value a store to T would keep.
template <typename T, class DF>
HWY_INLINE hn::Vec<DF> AsStored(DF df, hn::Vec<DF> v) {
  if constexpr (kIsBf16<T>) {
    return RoundTripBf16(df, v);
  } else {
    return v;
  }
}

// exp(x), NaN for a NaN x (a NaN input, or +Inf - +Inf: an infinite logit).
// Highway's Exp converts x to int on the way, and on the emulated targets
// (EMU128, the scalar path) a NaN's conversion is undefined behaviour (UBSan:
// ops_fuzz, and llama2c_fuzz with an infinite weight); SIMD targets gave 0.
// Softmax and attention let the NaN reach the row instead.
template <class DF, class V>
HWY_INLINE V ExpKeepNaN(DF df, V x) {
  const auto nan = hn::IsNaN(x);
  return hn::IfThenElse(nan, x, hn::Exp(df, hn::IfThenZeroElse(nan, x)));
}

// Folds acc = step(acc, i, m) over a row of n elements, m = Lanes(df) except
// for a last partial vector (the step must keep its unused lanes neutral),
// into four accumulators merged at the end with `merge`. Four independent
// chains hide the latency of the step's last operation (4 cycles for an FMA or
// an add on current cores), so a row streams at load speed. The order is fixed
// for a given n and path: results do not depend on how rows are split.
template <class DF, class Step, class Merge>
HWY_INLINE hn::Vec<DF> FoldRow(DF df, size_t n, hn::Vec<DF> init, const Step& step, const Merge& merge) {
  const size_t N = hn::Lanes(df);
  auto a0 = init, a1 = init, a2 = init, a3 = init;
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = step(a0, i, N);
    a1 = step(a1, i + N, N);
    a2 = step(a2, i + 2 * N, N);
    a3 = step(a3, i + 3 * N, N);
  }
  for (; i < n; i += N) a0 = step(a0, i, HWY_MIN(N, n - i));
  return merge(merge(a0, a1), merge(a2, a3));
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_OPS_ROWS_INL_H_
