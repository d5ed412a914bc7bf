// Per-target rotary position embedding (ops/rope.h): half-split and
// interleaved pairings, fp32 and bf16 heads.

#ifndef TILEKIT_OPS_ROPE_JOB_H_
#define TILEKIT_OPS_ROPE_JOB_H_
#include <cstdint>

#include "tilekit/ops/rows.h"
namespace tilekit {
namespace detail {
struct RopeJob {
  StridedRows q, k;
  size_t q_heads = 0, k_heads = 0;  // 0: operand absent
  const int32_t* positions = nullptr;
  const float* cos = nullptr;  // [position][width]
  const float* sin = nullptr;
  size_t width = 0, rotary_dim = 0;
  bool interleaved = false;
  bool native_bf16 = false;  // the path converts to bf16 in one instruction
};
}  // namespace detail
}  // namespace tilekit
#endif  // TILEKIT_OPS_ROPE_JOB_H_

#if defined(TILEKIT_OPS_ROPE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_OPS_ROPE_INL_H_
#undef TILEKIT_OPS_ROPE_INL_H_
#else
#define TILEKIT_OPS_ROPE_INL_H_
#endif

#include <hwy/highway.h>

#include "tilekit/base/bf16.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// x[i], x[i + d/2] → x[i]·cos − x[i + d/2]·sin, x[i + d/2]·cos + x[i]·sin.
template <bool kNativeBf16, class DF, typename T>
HWY_INLINE void RotateHalfSplit(DF df, T* x, const float* cos, const float* sin, size_t half) {
  const size_t N = hn::Lanes(df);
  for (size_t i = 0; i < half; i += N) {
    const size_t m = HWY_MIN(N, half - i);
    const auto x1 = LoadRowF32(df, x + i, m), x2 = LoadRowF32(df, x + half + i, m);
    const auto c = LoadPartial(df, cos + i, m), s = LoadPartial(df, sin + i, m);
    StoreRow<kNativeBf16>(df, hn::NegMulAdd(x2, s, hn::Mul(x1, c)), x + i, m);
    StoreRow<kNativeBf16>(df, hn::MulAdd(x1, s, hn::Mul(x2, c)), x + half + i, m);
  }
}

// Pairs (2i, 2i + 1): y = x·cos + swap(x)·sin, with the table's per-element
// cos and signed sin. Vectors start at even elements and hold an even number
// of lanes, so a pair never straddles two vectors; tails are even too.
template <bool kNativeBf16, class DF, typename T>
HWY_INLINE void RotateInterleaved(DF df, T* x, const float* cos, const float* sin, size_t d) {
#if HWY_TARGET == HWY_SCALAR  // one lane: no pair to swap within a vector
  for (size_t i = 0; i < d; i += 2) {
    const float x0 = hn::GetLane(LoadRowF32(df, x + i, 1)), x1 = hn::GetLane(LoadRowF32(df, x + i + 1, 1));
    StoreRow(df, hn::Set(df, x0 * cos[i] + x1 * sin[i]), x + i, 1);
    StoreRow(df, hn::Set(df, x1 * cos[i + 1] + x0 * sin[i + 1]), x + i + 1, 1);
  }
#else
  const size_t N = hn::Lanes(df);
  for (size_t i = 0; i < d; i += N) {
    const size_t m = HWY_MIN(N, d - i);
    const auto v = LoadRowF32(df, x + i, m);
    const auto c = LoadPartial(df, cos + i, m), s = LoadPartial(df, sin + i, m);
    StoreRow<kNativeBf16>(df, hn::MulAdd(hn::Shuffle2301(v), s, hn::Mul(v, c)), x + i, m);
  }
#endif
}

template <typename T, bool kNativeBf16>
HWY_NOINLINE void RopeTokensT(const RopeJob& job, size_t begin, size_t end) {
  const hn::ScalableTag<float> df;
  for (size_t t = begin; t < end; ++t) {
    const size_t p = static_cast<size_t>(job.positions[t]);
    const float* cos = job.cos + p * job.width;
    const float* sin = job.sin + p * job.width;
    for (const auto& [rows, heads] : {std::make_pair(&job.q, job.q_heads), std::make_pair(&job.k, job.k_heads)}) {
      for (size_t h = 0; h < heads; ++h) {
        T* x = rows->template row<T>(t, h);
        if (job.interleaved) {
          RotateInterleaved<kNativeBf16>(df, x, cos, sin, job.rotary_dim);
        } else {
          RotateHalfSplit<kNativeBf16>(df, x, cos, sin, job.rotary_dim / 2);
        }
      }
    }
  }
}

// Tokens [begin, end) of the job.
inline void RopeTokens(const RopeJob& job, size_t begin, size_t end) {
  if (job.q.bf16) {
    if (job.native_bf16) return RopeTokensT<bf16, true>(job, begin, end);
    return RopeTokensT<bf16, false>(job, begin, end);
  }
  return RopeTokensT<float, false>(job, begin, end);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_OPS_ROPE_INL_H_
