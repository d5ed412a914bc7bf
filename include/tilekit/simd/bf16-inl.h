// Per-target bf16 rounding of fp32 vectors, shared by every kernel that stores
// or rounds bf16 (conversion, epilogues, row ops, attention). Highway 1.0.3's
// DemoteTo to bf16 truncates, so rounding is done on the bit pattern; on the
// paths whose CPU has BF16 (cpu::isa_converts_bf16) ToBf16Bits<true> uses the
// one-instruction conversion instead, with the same result bit for bit.
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

// The one-instruction conversions (vcvtneps2bf16 on AVX-512 BF16, BFCVTN on
// NEON, BFCVT on SVE) round to nearest even and quieten NaN as above, but
// differ on classes of input:
//  - vcvtneps2bf16 reads fp32 denormals as zero (Intel SDM: DAZ, whatever
//    MXCSR says), where the bit rounding gives a bf16 denormal or a signed 0;
//  - BFCVT(N) follow FPCR: FZ (or AH) flushes denormals, DN turns NaN into the
//    default NaN. Linux starts a process with both off, but a host engine may
//    set FZ for its own code.
// So a vector holding any of those lanes takes the bit rounding (a branch
// that real activations never take), and the result is the same whatever the
// CPU's modes. The instructions are written as inline assembly: an intrinsic
// needs its target attribute on the calling kernel, which Highway's AVX3 and
// NEON / SVE targets (shared with the paths without BF16) do not carry; the
// assembler accepts the instruction whatever the compiler's target.
#undef TILEKIT_SIMD_NATIVE_BF16  // this header is read once per target
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define TILEKIT_SIMD_NATIVE_BF16 1
// Whether v holds an fp32 denormal (exponent 0, mantissa not 0): |bits| - 1 <
// 2^23 - 1 as unsigned, one signed compare once offset by 2^31 (|bits| = 0
// lands on INT32_MAX, the denormals on [INT32_MIN, INT32_MIN + 2^23 - 2]).
template <class DF>
HWY_INLINE bool NeedsBitRounding(DF df, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const auto mag = hn::And(hn::BitCast(di, v), hn::Set(di, 0x7FFFFFFF));
  const auto offset = hn::Add(mag, hn::Set(di, static_cast<int32_t>(0x7FFFFFFF)));  // |bits| - 1 + 2^31
  return !hn::AllFalse(di, hn::Lt(offset, hn::Set(di, static_cast<int32_t>(0x807FFFFFu))));
}
#elif HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64 || HWY_TARGET == HWY_SVE
#define TILEKIT_SIMD_NATIVE_BF16 1
// Whether v holds an fp32 denormal (as above) or a NaN: the lanes whose BFCVT
// result depends on FPCR.
template <class DF>
HWY_INLINE bool NeedsBitRounding(DF df, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const auto mag = hn::And(hn::BitCast(di, v), hn::Set(di, 0x7FFFFFFF));
  const auto offset = hn::Add(mag, hn::Set(di, static_cast<int32_t>(0x7FFFFFFF)));  // |bits| - 1 + 2^31
  const auto denormal = hn::Lt(offset, hn::Set(di, static_cast<int32_t>(0x807FFFFFu)));
  const auto nan = hn::Gt(mag, hn::Set(di, 0x7F800000));
  return !hn::AllFalse(di, hn::Or(denormal, nan));
}
#else
#define TILEKIT_SIMD_NATIVE_BF16 0
#endif

// Whether this Highway target has the conversion instruction at all (false:
// the kNative variants below are the bit rounding).
constexpr bool kTargetConvertsBf16 = TILEKIT_SIMD_NATIVE_BF16 != 0;

#if TILEKIT_SIMD_NATIVE_BF16
// The conversion instruction on one full vector, or false when the vector is
// not a full one of this target (the bit rounding then runs).
template <class DF>
HWY_INLINE bool NativeBf16Bits(DF df, hn::Vec<DF> v, hn::Vec<hn::Rebind<uint16_t, DF>>* out) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (hn::MaxLanes(df) == 16) {
    __m256i r;
    asm("vcvtneps2bf16 %1, %0" : "=v"(r) : "v"(v.raw));
    out->raw = r;
    return true;
  }
#elif HWY_TARGET == HWY_NEON
  if constexpr (hn::MaxLanes(df) == 4) {
    uint16x4_t r;
    asm(".arch_extension bf16\n\tbfcvtn %0.4h, %1.4s" : "=w"(r) : "w"(v.raw));
    out->raw = r;
    return true;
  }
#elif HWY_TARGET == HWY_SVE
  if constexpr (hn::detail::IsFull(df)) {
    // BFCVT writes each result to the low half of its 32-bit lane (zeroing
    // the high half); UZP1 packs them into the low half of the vector, where
    // Highway's demoted vectors hold their lanes.
    svuint16_t r;
    asm(".arch_extension bf16\n\tbfcvt %0.h, %2/m, %1.s" : "=&w"(r) : "w"(v), "Upl"(svptrue_b32()));
    *out = svuzp1_u16(r, r);
    return true;
  }
#endif
  (void)df, (void)v, (void)out;
  return false;
}
#endif  // TILEKIT_SIMD_NATIVE_BF16

// v rounded to bf16 (round to nearest even, NaN quietened), as 16-bit lanes:
// what every bf16 store writes. kNative: the path's CPU has the conversion
// instruction (cpu::isa_converts_bf16); same bits, one instruction.
template <bool kNative = false, class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> ToBf16Bits(DF df, hn::Vec<DF> v) {
#if TILEKIT_SIMD_NATIVE_BF16
  if constexpr (kNative) {
    hn::Vec<hn::Rebind<uint16_t, DF>> bits;
    if (HWY_LIKELY(!NeedsBitRounding(df, v)) && NativeBf16Bits(df, v, &bits)) return bits;
  }
#endif
  return NarrowToU16(df, RoundToBf16Bits(df, v));
}

// bf16 bits (as from ToBf16Bits) widened to the fp32 values they hold.
template <class DF>
HWY_INLINE hn::Vec<DF> Bf16BitsToF32(DF df, hn::Vec<hn::Rebind<uint16_t, DF>> bits) {
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(hn::RebindToUnsigned<DF>(), bits)));
}

// ToBf16Bits with the choice made at run time (a kernel's plan says whether
// its path has the instruction): one copy of the code where a template flag
// would compile the store twice, for a predictable branch per vector.
template <class DF>
HWY_INLINE hn::Vec<hn::Rebind<uint16_t, DF>> ToBf16Bits(DF df, hn::Vec<DF> v, bool native) {
#if TILEKIT_SIMD_NATIVE_BF16
  hn::Vec<hn::Rebind<uint16_t, DF>> bits;
  if (native && HWY_LIKELY(!NeedsBitRounding(df, v)) && NativeBf16Bits(df, v, &bits)) return bits;
#endif
  (void)native;
  return NarrowToU16(df, RoundToBf16Bits(df, v));
}

// v rounded to bf16 and widened back: the value a bf16 store would keep.
// kNative (see ToBf16Bits): by the conversion instruction and a widening,
// fewer operations than the bit rounding; same values.
template <bool kNative = false, class DF>
HWY_INLINE hn::Vec<DF> RoundTripBf16(DF df, hn::Vec<DF> v) {
  if constexpr (kNative && kTargetConvertsBf16) return Bf16BitsToF32(df, ToBf16Bits<true>(df, v));
  return hn::BitCast(df, hn::ShiftLeft<16>(RoundToBf16Bits(df, v)));
}

// The value a store to T (float or bf16) would keep.
template <typename T, bool kNative = false, class DF>
HWY_INLINE hn::Vec<DF> AsStored(DF df, hn::Vec<DF> v) {
  if constexpr (kIsBf16<T>) {
    return RoundTripBf16<kNative>(df, v);
  } else {
    return v;
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_SIMD_BF16_INL_H_
