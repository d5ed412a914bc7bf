// Per-target exp that lets NaN through: softmax and attention share it.
#if defined(TILEKIT_SIMD_EXP_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_SIMD_EXP_INL_H_
#undef TILEKIT_SIMD_EXP_INL_H_
#else
#define TILEKIT_SIMD_EXP_INL_H_
#endif

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

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

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_SIMD_EXP_INL_H_
