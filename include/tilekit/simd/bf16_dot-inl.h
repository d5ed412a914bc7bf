// Per-target bf16 pair dot products: per 32-bit lane i,
//   acc[i] + a[2i] · b[2i] + a[2i+1] · b[2i+1]
// with a and b vectors of bf16 pairs (u32 lanes, the even element in the low
// half, as two consecutive bf16 of memory load), or b one pair broadcast to
// every lane. The attention kernels score bf16 K with it in place, where
// widening K to fp32 cost two ops per vector and a second FMA chain per pair.
//
// kNative: the path's CPU has the dot instruction (every path with
// cpu::isa_converts_bf16 does: AVX512-BF16 and FEAT_BF16 bring the conversion
// and the dot together). The instructions are inline assembly for the reason
// simd/bf16-inl.h gives (Highway's AVX3 / NEON / SVE targets are shared with
// the paths without BF16). Their exact semantics, which the callers' error
// bounds state:
//  - vdpbf16ps (Intel SDM): two FMAs per lane, acc += a_odd · b_odd, then
//    acc += a_even · b_even, each rounded to nearest even; bf16 denormal
//    inputs read as zero and denormal results flushed to zero (DAZ / FTZ
//    whatever MXCSR says, which it neither reads nor writes). The products of
//    two bf16 are exact in fp32 (8 + 8 significant bits), so on normal values
//    it gives the bits of the fallback below.
//  - BFDOT (NEON vector and indexed by element, SVE; Arm ARM BFDotAdd):
//    without FEAT_EBF16, or with FPCR.EBF = 0 (Linux's default), the two
//    exact products are added, that sum is added to acc, and both additions
//    round to odd (|error| < 1 ulp, twice the round-to-nearest bound), with
//    denormal inputs and outputs flushed and the default NaN, FPCR ignored.
//    With FEAT_EBF16 and FPCR.EBF = 1 the dot is fused (one rounding per
//    FPCR.RMode) and FPCR.FZ / DN apply: inside the bound of the first.
// So for n pairs summed into one lane (n steps: 2n products, 2n roundings, each
// term rounded at most 2n times), with S = Σ |a_i b_i| over the 2n products:
//   |error| <= 2n · u' · S + Σ_{a_i or b_i denormal} |a_i b_i| + 2n · 2^-126
// to first order, u' = u = 2^-24 for vdpbf16ps and the fallback, 2u for BFDOT
// (round to odd); the last two terms are the flushes of the native forms. A
// NaN, or an Inf times 0, in any pair makes the lane NaN on every path.
//
// The fallback (every path, and the reference of the native forms) widens the
// odd and even elements to fp32 and runs the two FMAs in vdpbf16ps's order.
#if defined(TILEKIT_SIMD_BF16_DOT_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_SIMD_BF16_DOT_INL_H_
#undef TILEKIT_SIMD_BF16_DOT_INL_H_
#else
#define TILEKIT_SIMD_BF16_DOT_INL_H_
#endif

#include <cstdint>
#include <cstring>

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#undef TILEKIT_SIMD_NATIVE_BF16_DOT  // this header is read once per target
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64 || \
    HWY_TARGET == HWY_SVE
#define TILEKIT_SIMD_NATIVE_BF16_DOT 1
#else
#define TILEKIT_SIMD_NATIVE_BF16_DOT 0
#endif

// A pair of bf16 (two consecutive elements of memory) as one 32-bit lane.
HWY_INLINE uint32_t LoadBf16Pair(const uint16_t* HWY_RESTRICT p) {
  uint32_t pair;
  std::memcpy(&pair, p, sizeof(pair));
  return pair;
}

// A vector of bf16 pairs from 2 · Lanes(du) consecutive bf16 (any alignment).
template <class DU>
HWY_INLINE hn::Vec<DU> LoadBf16Pairs(DU du, const uint16_t* HWY_RESTRICT p) {
#if HWY_TARGET == HWY_SCALAR
  return hn::Set(du, LoadBf16Pair(p));  // one lane: no u16 vector of two
#else
  return hn::BitCast(du, hn::LoadU(hn::Repartition<uint16_t, DU>(), p));
#endif
}

// Stores a vector of bf16 pairs as 2 · Lanes(du) consecutive bf16.
template <class DU>
HWY_INLINE void StoreBf16Pairs(DU du, hn::Vec<DU> pairs, uint16_t* HWY_RESTRICT p) {
#if HWY_TARGET == HWY_SCALAR
  const uint32_t pair = hn::GetLane(pairs);
  std::memcpy(p, &pair, sizeof(pair));
  (void)du;
#else
  const hn::Repartition<uint16_t, DU> du16;
  hn::StoreU(hn::BitCast(du16, pairs), du16, p);
#endif
}

// The even (low-half) and odd (high-half) bf16 of each pair, as fp32.
template <class DF>
HWY_INLINE hn::Vec<DF> Bf16PairEven(DF df, hn::Vec<hn::RebindToUnsigned<DF>> pairs) {
  return hn::BitCast(df, hn::ShiftLeft<16>(pairs));
}
template <class DF>
HWY_INLINE hn::Vec<DF> Bf16PairOdd(DF df, hn::Vec<hn::RebindToUnsigned<DF>> pairs) {
  const hn::RebindToUnsigned<DF> du;
  return hn::BitCast(df, hn::And(pairs, hn::Set(du, 0xFFFF0000u)));
}

// The instruction on one vector, or false when this target has none for a
// vector of this size (the fallback then runs).
template <class DF>
HWY_INLINE bool NativeBf16Dot(DF df, hn::Vec<DF>* acc, hn::Vec<hn::RebindToUnsigned<DF>> a,
                              hn::Vec<hn::RebindToUnsigned<DF>> b) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
  if constexpr (hn::MaxLanes(df) == 16) {
    asm("vdpbf16ps %2, %1, %0" : "+v"(acc->raw) : "v"(a.raw), "v"(b.raw));
    return true;
  }
#elif HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64
  if constexpr (hn::MaxLanes(df) == 4) {
    asm(".arch_extension bf16\n\tbfdot %0.4s, %1.8h, %2.8h" : "+w"(acc->raw) : "w"(a.raw), "w"(b.raw));
    return true;
  }
#elif HWY_TARGET == HWY_SVE
  // Unpredicated: lanes past a partial vector's are computed and ignored.
  asm(".arch_extension bf16\n\tbfdot %0.s, %1.h, %2.h" : "+w"(*acc) : "w"(a), "w"(b));
  return true;
#endif
  (void)df, (void)acc, (void)a, (void)b;
  return false;
}

// acc + a.even · b.even + a.odd · b.odd per lane (see the top of the file).
template <bool kNative, class DF>
HWY_INLINE hn::Vec<DF> Bf16Dot(DF df, hn::Vec<DF> acc, hn::Vec<hn::RebindToUnsigned<DF>> a,
                               hn::Vec<hn::RebindToUnsigned<DF>> b) {
#if TILEKIT_SIMD_NATIVE_BF16_DOT
  if constexpr (kNative) {
    if (NativeBf16Dot(df, &acc, a, b)) return acc;
  }
#endif
  acc = hn::MulAdd(Bf16PairOdd(df, a), Bf16PairOdd(df, b), acc);
  return hn::MulAdd(Bf16PairEven(df, a), Bf16PairEven(df, b), acc);
}

// acc + a.even · b[0] + a.odd · b[1] per lane: b one pair (two consecutive
// bf16, any alignment) broadcast. vdpbf16ps reads it as an embedded
// broadcast ({1to16}: no register, no shuffle); NEON as the indexed form
// (BFDOT by element) on the pair loaded into lane 0.
template <bool kNative, class DF>
HWY_INLINE hn::Vec<DF> Bf16DotBroadcast(DF df, hn::Vec<DF> acc, hn::Vec<hn::RebindToUnsigned<DF>> a,
                                        const uint16_t* HWY_RESTRICT b) {
#if TILEKIT_SIMD_NATIVE_BF16_DOT
  if constexpr (kNative) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
    if constexpr (hn::MaxLanes(df) == 16) {
      typedef uint32_t __attribute__((may_alias, aligned(2))) PairAlias;
      asm("vdpbf16ps %2%{1to16%}, %1, %0"
          : "+v"(acc.raw)
          : "v"(a.raw), "m"(*reinterpret_cast<const PairAlias*>(b)));
      return acc;
    }
#elif HWY_TARGET == HWY_NEON && HWY_ARCH_ARM_A64
    if constexpr (hn::MaxLanes(df) == 4) {
      const uint32x2_t pair = vdup_n_u32(LoadBf16Pair(b));
      asm(".arch_extension bf16\n\tbfdot %0.4s, %1.8h, %2.2h[0]" : "+w"(acc.raw) : "w"(a.raw), "w"(pair));
      return acc;
    }
#endif
    const hn::RebindToUnsigned<DF> du;
    if (NativeBf16Dot(df, &acc, a, hn::Set(du, LoadBf16Pair(b)))) return acc;
  }
#endif
  const uint32_t pair = LoadBf16Pair(b), even_bits = pair << 16, odd_bits = pair & 0xFFFF0000u;
  float even, odd;
  std::memcpy(&even, &even_bits, sizeof(even));
  std::memcpy(&odd, &odd_bits, sizeof(odd));
  acc = hn::MulAdd(Bf16PairOdd(df, a), hn::Set(df, odd), acc);
  return hn::MulAdd(Bf16PairEven(df, a), hn::Set(df, even), acc);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_SIMD_BF16_DOT_INL_H_
