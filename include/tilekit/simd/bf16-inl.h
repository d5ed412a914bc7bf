// Per-target bf16 rounding of fp32 vectors, shared by every kernel that stores
// or rounds bf16 (conversion, epilogues, row ops, attention). Highway 1.0.3's
// DemoteTo to bf16 truncates, so rounding is done on the bit pattern.
#if defined(TILEKIT_SIMD_BF16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_SIMD_BF16_INL_H_
#undef TILEKIT_SIMD_BF16_INL_H_
#else
#define TILEKIT_SIMD_BF16_INL_H_
#endif

#include <hwy/highway.h>

#include "tilekit/base/matrix.h"  // kIsBf16

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Round-to-nearest-even on the bit pattern: add 0x7FFF plus the lowest kept
// bit, then keep the upper half. NaN is handled apart so that rounding cannot
// carry it into Inf.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToUnsigned<DF>> RoundToBf16Bits(DF /*df*/, hn::Vec<DF> v) {
  const hn::RebindToUnsigned<DF> du;
  const auto bits = hn::BitCast(du, v);
  const auto lsb = hn::And(hn::ShiftRight<16>(bits), hn::Set(du, 1u));
  const auto rounded = hn::ShiftRight<16>(hn::Add(bits, hn::Add(hn::Set(du, 0x7FFFu), lsb)));
  const auto quiet_nan = hn::Or(hn::ShiftRight<16>(bits), hn::Set(du, 0x40u));
  return hn::IfThenElse(hn::RebindMask(du, hn::IsNaN(v)), quiet_nan, rounded);
}

// Narrows the rounded 32-bit lanes (each <= 0xFFFF) to 16 bits.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> NarrowToU16(DF /*df*/, hn::Vec<hn::RebindToUnsigned<DF>> bits) {
  const hn::RebindToSigned<DF> di;
  return hn::DemoteTo(hn::Rebind<uint16_t, DF>(), hn::BitCast(di, bits));
}

// v rounded to bf16 and widened back: the value a bf16 store would keep.
template <class DF>
HWY_INLINE hn::Vec<DF> RoundTripBf16(DF df, hn::Vec<DF> v) {
  return hn::BitCast(df, hn::ShiftLeft<16>(RoundToBf16Bits(df, v)));
}

// The value a store to T (float or bf16) would keep.
template <typename T, class DF>
HWY_INLINE hn::Vec<DF> AsStored(DF df, hn::Vec<DF> v) {
  if constexpr (kIsBf16<T>) {
    return RoundTripBf16(df, v);
  } else {
    return v;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_SIMD_BF16_INL_H_
