// Per-target fp32 <-> bf16 array conversion. Compiled once per Highway target.
#if defined(TILEKIT_CONVERT_CONVERT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_CONVERT_CONVERT_INL_H_
#undef TILEKIT_CONVERT_CONVERT_INL_H_
#else
#define TILEKIT_CONVERT_CONVERT_INL_H_
#endif

#include <hwy/highway.h>

#include "tilekit/base/bf16.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Round-to-nearest-even on the bit pattern (Highway 1.0.3's DemoteTo to bf16
// truncates): add 0x7FFF plus the lowest kept bit, then keep the upper half.
// NaN is handled apart so that rounding cannot carry it into Inf.
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

inline void ConvertF32ToBf16(const float* HWY_RESTRICT in, uint16_t* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    hn::StoreU(NarrowToU16(df, RoundToBf16Bits(df, hn::LoadU(df, in + i))), du16, out + i);
  }
  for (; i < n; ++i) out[i] = f32_to_bf16(in[i]).bits;  // fewer than one vector
}

inline void ConvertBf16ToF32(const uint16_t* HWY_RESTRICT in, float* HWY_RESTRICT out, size_t n) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du32;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const size_t lanes = hn::Lanes(df);
  size_t i = 0;
  for (; i + lanes <= n; i += lanes) {
    const auto wide = hn::PromoteTo(du32, hn::LoadU(du16, in + i));
    hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(wide)), df, out + i);
  }
  for (; i < n; ++i) out[i] = bf16_to_f32(bf16{in[i]});
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_CONVERT_CONVERT_INL_H_
