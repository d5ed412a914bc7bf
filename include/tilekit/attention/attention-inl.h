// Per-target flash attention: for one KV head, a block of query tokens (the
// group's q-heads stacked as rows, so each K/V tile is read once per group)
// and a range of keys, the unnormalised output rows with their running max and
// sum (online softmax). The driver (attention-impl.h) normalises them, or
// merges the partial results of several key ranges first.
//
// Per KV tile (kAttnTileKeys keys, never across a cache block) and row:
// scores q·k over the keys the row's mask range keeps (scale folded into the
// copied Q rows), softcap, additive mask, new max m', p = exp(s − m'), the old
// sum and accumulator rescaled by exp(m − m') as they are read, and p·V added.
// Keys with a −inf logit are dropped before V is read, so a masked NaN V never
// meets a zero probability. fp32 throughout; Exp and Tanh from Highway's
// contrib math (max 1 and 4 ULP).
#if defined(TILEKIT_ATTENTION_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_ATTENTION_ATTENTION_INL_H_
#undef TILEKIT_ATTENTION_ATTENTION_INL_H_
#else
#define TILEKIT_ATTENTION_ATTENTION_INL_H_
#endif

#include <cmath>
#include <limits>

#include <hwy/contrib/math/math-inl.h>
#include <hwy/highway.h>

#include "tilekit/attention/plan.h"
#include "tilekit/base/bf16.h"
#include "tilekit/simd/bf16_dot-inl.h"
#include "tilekit/simd/exp-inl.h"
#include "tilekit/simd/tanh-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class DF>
HWY_INLINE hn::Vec<DF> LoadKvRow(DF df, const float* HWY_RESTRICT p) {
  return hn::LoadU(df, p);
}
// bf16 widens to fp32 by moving its bits to the top of the lane.
template <class DF>
HWY_INLINE hn::Vec<DF> LoadKvRow(DF df, const uint16_t* HWY_RESTRICT p) {
  const hn::RebindToUnsigned<DF> du32;
  const hn::Rebind<uint16_t, DF> du16;
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
}
HWY_INLINE float KvToF32(float x) { return x; }
HWY_INLINE float KvToF32(uint16_t x) { return bf16_to_f32(bf16{x}); }

// Keys [a, *b) of one tile (*b clipped to a's cache block): K and V of key a,
// KV head kv_head.
template <typename KT>
HWY_INLINE void TileAt(const AttnKv& kv, size_t kv_head, size_t d, size_t dv, size_t a, size_t* b,
                       const KT** ktile, const KT** vtile) {
  const unsigned char *kb, *vb;
  if (kv.blocks) {
    *b = std::min(*b, (a / kv.block_tokens + 1) * kv.block_tokens);
    const size_t block = kv.blocks[a / kv.block_tokens], slot = a % kv.block_tokens;
    kb = kv.k + block * kv.block_stride + slot * kv.k_stride;
    vb = kv.v + block * kv.block_stride + slot * kv.v_stride;
  } else {
    kb = kv.k + a * kv.k_stride;
    vb = kv.v + a * kv.v_stride;
  }
  *ktile = reinterpret_cast<const KT*>(kb) + kv_head * d;
  *vtile = reinterpret_cast<const KT*>(vb) + kv_head * dv;
}

// The K/V rows of the tile after the current one, pulled into L2 a key at a
// time while the current tile computes: each key's row of one head is 256-512
// bytes in its own 4 KiB page (token stride Hkv · d), where the hardware
// prefetchers do not follow.
struct NextTile {
  const unsigned char* k = nullptr;
  const unsigned char* v = nullptr;
  size_t k_stride = 0, v_stride = 0, k_bytes = 0, v_bytes = 0, n = 0;
  HWY_INLINE void Fetch(size_t j) const {
    FetchK(j);
    FetchV(j);
  }
  HWY_INLINE void FetchK(size_t j) const {
    if (j >= n) return;
    const unsigned char* kr = k + j * k_stride;
    for (size_t b = 0; b < k_bytes; b += 64) __builtin_prefetch(kr + b, 0, 2);
  }
  HWY_INLINE void FetchV(size_t j) const {
    if (j >= n) return;
    const unsigned char* vr = v + j * v_stride;
    for (size_t b = 0; b < v_bytes; b += 64) __builtin_prefetch(vr + b, 0, 2);
  }
};

// The tile after [.., b) within [.., hi): its keys' rows, or none past hi.
template <typename KT>
HWY_INLINE NextTile NextTileAt(const AttnKv& kv, size_t kv_head, size_t d, size_t dv, size_t b, size_t hi) {
  NextTile nt;
  if (b >= hi) return nt;
  size_t e = std::min(b + kAttnTileKeys, hi);
  const KT *kt, *vt;
  TileAt(kv, kv_head, d, dv, b, &e, &kt, &vt);
  nt.k = reinterpret_cast<const unsigned char*>(kt);
  nt.v = reinterpret_cast<const unsigned char*>(vt);
  nt.k_stride = kv.k_stride;
  nt.v_stride = kv.v_stride;
  nt.k_bytes = d * sizeof(KT);
  nt.v_bytes = dv * sizeof(KT);
  nt.n = e - b;
  return nt;
}

// out[i] = q · k_i for n keys ks elements apart. Four keys at a time: four
// independent FMA chains, and the Q vector loaded once for all four.
template <class DF, typename KT>
HWY_INLINE void AttnScores(DF df, const float* HWY_RESTRICT q, size_t d, const KT* HWY_RESTRICT k, size_t ks,
                           size_t n, float* HWY_RESTRICT out, const NextTile* next) {
  const size_t L = hn::Lanes(df);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    if (next) {
      for (size_t j = i; j < i + 4; ++j) next->Fetch(j);
    }
    const KT* k0 = k + i * ks;
    const KT* k1 = k0 + ks;
    const KT* k2 = k1 + ks;
    const KT* k3 = k2 + ks;
    auto a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
    size_t c = 0;
    for (; c + L <= d; c += L) {
      const auto qv = hn::LoadU(df, q + c);
      a0 = hn::MulAdd(qv, LoadKvRow(df, k0 + c), a0);
      a1 = hn::MulAdd(qv, LoadKvRow(df, k1 + c), a1);
      a2 = hn::MulAdd(qv, LoadKvRow(df, k2 + c), a2);
      a3 = hn::MulAdd(qv, LoadKvRow(df, k3 + c), a3);
    }
    float s0 = hn::GetLane(hn::SumOfLanes(df, a0)), s1 = hn::GetLane(hn::SumOfLanes(df, a1));
    float s2 = hn::GetLane(hn::SumOfLanes(df, a2)), s3 = hn::GetLane(hn::SumOfLanes(df, a3));
    for (; c < d; ++c) {  // head dims that are not a multiple of the vector
      s0 += q[c] * KvToF32(k0[c]);
      s1 += q[c] * KvToF32(k1[c]);
      s2 += q[c] * KvToF32(k2[c]);
      s3 += q[c] * KvToF32(k3[c]);
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
  }
  if (next) {
    for (size_t j = i; j < kAttnTileKeys; ++j) next->Fetch(j);
  }
  for (; i < n; ++i) {
    const KT* k0 = k + i * ks;
    auto a0 = hn::Zero(df);
    size_t c = 0;
    for (; c + L <= d; c += L) a0 = hn::MulAdd(hn::LoadU(df, q + c), LoadKvRow(df, k0 + c), a0);
    float s0 = hn::GetLane(hn::SumOfLanes(df, a0));
    for (; c < d; ++c) s0 += q[c] * KvToF32(k0[c]);
    out[i] = s0;
  }
}

// Rows of a query group scored together (decode): kDecodeRows rows × 4 keys
// of accumulators, each K vector loaded (and widened from bf16) once for all
// of them, where scoring row by row (AttnScores) loaded it once per row. The
// budget: 16 accumulators + 4 K vectors + a Q vector of the 32 registers of
// AVX-512, NEON and SVE; 8 + 4 + 1 of AVX2's 16.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr size_t kDecodeRows = 2;
#else
constexpr size_t kDecodeRows = 4;
#endif

#define TILEKIT_ATTN_GROUP_FMA(R)                                        \
  if constexpr (kR > R) {                                                \
    const auto qv = hn::LoadU(df, q + R * d + c);                        \
    a##R##0 = hn::MulAdd(qv, k0v, a##R##0);                              \
    if constexpr (kK > 1) a##R##1 = hn::MulAdd(qv, k1v, a##R##1);        \
    if constexpr (kK > 2) a##R##2 = hn::MulAdd(qv, k2v, a##R##2);        \
    if constexpr (kK > 3) a##R##3 = hn::MulAdd(qv, k3v, a##R##3);        \
  }
#define TILEKIT_ATTN_GROUP_SUM(R)                                                   \
  if constexpr (kR > R) {                                                           \
    out[R * os] = hn::GetLane(hn::SumOfLanes(df, a##R##0));                         \
    if constexpr (kK > 1) out[R * os + 1] = hn::GetLane(hn::SumOfLanes(df, a##R##1)); \
    if constexpr (kK > 2) out[R * os + 2] = hn::GetLane(hn::SumOfLanes(df, a##R##2)); \
    if constexpr (kK > 3) out[R * os + 3] = hn::GetLane(hn::SumOfLanes(df, a##R##3)); \
  }

// out[r][i] += q[r][c] · k_i[c] over the head-dim columns [c0, d) the vector
// loop left, column by column in the same order for every row (scalar).
template <size_t kR, size_t kK, typename KT>
HWY_INLINE void GroupScoresTail(const float* HWY_RESTRICT q, size_t d, const KT* HWY_RESTRICT k, size_t ks, size_t c0,
                                float* HWY_RESTRICT out, size_t os) {
  for (size_t c = c0; c < d; ++c) {
    for (size_t r = 0; r < kR; ++r) {
      for (size_t i = 0; i < kK; ++i) out[r * os + i] += q[r * d + c] * KvToF32(k[i * ks + c]);
    }
  }
}

// out[r][i] = q[r] · k_i for kR rows (q rows d apart, out rows os apart) and
// kK keys (k rows ks elements apart); the head-dim columns past the last whole
// vector in the same order for every row (scalar, after the vector sum).
template <size_t kR, size_t kK, class DF, typename KT>
HWY_INLINE void GroupScoresBlock(DF df, const float* HWY_RESTRICT q, size_t d, const KT* HWY_RESTRICT k, size_t ks,
                                 float* HWY_RESTRICT out, size_t os) {
  const size_t L = hn::Lanes(df);
  auto a00 = hn::Zero(df), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  auto a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  size_t c = 0;
  for (; c + L <= d; c += L) {
    const auto k0v = LoadKvRow(df, k + c);
    const auto k1v = kK > 1 ? LoadKvRow(df, k + ks + c) : k0v;
    const auto k2v = kK > 2 ? LoadKvRow(df, k + 2 * ks + c) : k0v;
    const auto k3v = kK > 3 ? LoadKvRow(df, k + 3 * ks + c) : k0v;
    TILEKIT_ATTN_GROUP_FMA(0) TILEKIT_ATTN_GROUP_FMA(1) TILEKIT_ATTN_GROUP_FMA(2) TILEKIT_ATTN_GROUP_FMA(3)
  }
  TILEKIT_ATTN_GROUP_SUM(0) TILEKIT_ATTN_GROUP_SUM(1) TILEKIT_ATTN_GROUP_SUM(2) TILEKIT_ATTN_GROUP_SUM(3)
  GroupScoresTail<kR, kK>(q, d, k, ks, c, out, os);  // head dims that are not a multiple of the vector
}
#undef TILEKIT_ATTN_GROUP_FMA
static_assert(kDecodeRows <= 4, "GroupScoresBlock declares 4 x 4 accumulators");

#if TILEKIT_SIMD_NATIVE_BF16_DOT
// GroupScoresBlock on bf16 K with the bf16 dot (AttnBf16::dot), K read in
// place as pairs: each row's q' = q · scale split into bf16 hi + lo parts
// (qhl rows of 2d: hi, then lo; SplitQBf16), so that q' − hi − lo is at most
// 2^-16 |q'| and a score stays near the fp32 bound (the derivation:
// tests/attention_reference.h, kSplitBf16). Per 2L head-dim columns, kK K
// loads and 2 · kR Q loads feed 2 · kR · kK dot products, where the fp32 tile
// loaded and widened 2 · kK K vectors (2 ops each) for as many FMAs: it pays
// only where a dot product retires at the FMA's rate (not on XEON-NOAMX, see
// plan.h, AttnBf16Of). The columns past the
// last whole 2L run in fp32 (q, widened K) as in GroupScoresBlock. An
// infinite K makes the score NaN (Inf · lo = Inf · 0 when lo is 0) where the
// fp32 tile gave ±Inf: the row's output is NaN, or with −Inf the key is
// dropped, so such a K is garbage either way.
#define TILEKIT_ATTN_GROUP_DOT(R)                                                             \
  if constexpr (kR > R) {                                                                     \
    const auto qh = LoadBf16Pairs(du, qhl + R * 2 * d + c);                                   \
    const auto ql = LoadBf16Pairs(du, qhl + R * 2 * d + d + c);                               \
    a##R##0 = Bf16Dot<true>(df, Bf16Dot<true>(df, a##R##0, qh, k0v), ql, k0v);                \
    if constexpr (kK > 1) a##R##1 = Bf16Dot<true>(df, Bf16Dot<true>(df, a##R##1, qh, k1v), ql, k1v); \
    if constexpr (kK > 2) a##R##2 = Bf16Dot<true>(df, Bf16Dot<true>(df, a##R##2, qh, k2v), ql, k2v); \
    if constexpr (kK > 3) a##R##3 = Bf16Dot<true>(df, Bf16Dot<true>(df, a##R##3, qh, k3v), ql, k3v); \
  }
template <size_t kR, size_t kK, class DF>
HWY_INLINE void GroupScoresBlockDot(DF df, const float* HWY_RESTRICT q, const uint16_t* HWY_RESTRICT qhl, size_t d,
                                    const uint16_t* HWY_RESTRICT k, size_t ks, float* HWY_RESTRICT out, size_t os) {
  const hn::RebindToUnsigned<DF> du;
  const size_t L2 = 2 * hn::Lanes(df);
  auto a00 = hn::Zero(df), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  auto a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
  size_t c = 0;
  for (; c + L2 <= d; c += L2) {
    const auto k0v = LoadBf16Pairs(du, k + c);
    const auto k1v = kK > 1 ? LoadBf16Pairs(du, k + ks + c) : k0v;
    const auto k2v = kK > 2 ? LoadBf16Pairs(du, k + 2 * ks + c) : k0v;
    const auto k3v = kK > 3 ? LoadBf16Pairs(du, k + 3 * ks + c) : k0v;
    TILEKIT_ATTN_GROUP_DOT(0) TILEKIT_ATTN_GROUP_DOT(1) TILEKIT_ATTN_GROUP_DOT(2) TILEKIT_ATTN_GROUP_DOT(3)
  }
  TILEKIT_ATTN_GROUP_SUM(0) TILEKIT_ATTN_GROUP_SUM(1) TILEKIT_ATTN_GROUP_SUM(2) TILEKIT_ATTN_GROUP_SUM(3)
  GroupScoresTail<kR, kK>(q, d, k, ks, c, out, os);  // head dims past the last whole 2L
}
#undef TILEKIT_ATTN_GROUP_DOT

// qhl[r] = the bf16 hi and lo parts of q rows [0, rows) (d apart): hi =
// bf16(q), lo = bf16(q − hi) (q − hi is exact in fp32), rows of 2d.
inline void SplitQBf16(const float* HWY_RESTRICT q, size_t rows, size_t d, uint16_t* HWY_RESTRICT qhl) {
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < d; ++c) {
      const float x = q[r * d + c];
      const bf16 hi = f32_to_bf16(x);
      qhl[r * 2 * d + c] = hi.bits;
      qhl[r * 2 * d + d + c] = f32_to_bf16(x - bf16_to_f32(hi)).bits;
    }
  }
}
#endif  // TILEKIT_SIMD_NATIVE_BF16_DOT
#undef TILEKIT_ATTN_GROUP_SUM

// out[r][0, kK) for kR rows: the bf16 dot with Q split (qhl rows, see
// GroupScoresBlockDot) when there is one, the fp32 tile otherwise.
template <size_t kR, size_t kK, class DF, typename KT>
HWY_INLINE void GroupScoresKeys(DF df, const float* HWY_RESTRICT q, const uint16_t* HWY_RESTRICT qhl, size_t d,
                                const KT* HWY_RESTRICT k, size_t ks, float* HWY_RESTRICT out, size_t os) {
#if TILEKIT_SIMD_NATIVE_BF16_DOT
  if constexpr (std::is_same<KT, uint16_t>::value) {
    if (qhl) return GroupScoresBlockDot<kR, kK>(df, q, qhl, d, k, ks, out, os);
  }
#endif
  (void)qhl;
  GroupScoresBlock<kR, kK>(df, q, d, k, ks, out, os);
}

// out[r][i] = q[r] · k_i for kR rows and n keys, four keys at a time; the
// first block pulls in the next tile (NextTile) a key at a time.
template <size_t kR, class DF, typename KT>
HWY_INLINE void GroupScoresRows(DF df, const float* HWY_RESTRICT q, const uint16_t* HWY_RESTRICT qhl, size_t d,
                                const KT* HWY_RESTRICT k, size_t ks, size_t n, float* HWY_RESTRICT out, size_t os,
                                const NextTile* next) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    if (next) {
      for (size_t j = i; j < i + 4; ++j) next->FetchK(j);
    }
    GroupScoresKeys<kR, 4>(df, q, qhl, d, k + i * ks, ks, out + i, os);
  }
  if (next) {
    for (size_t j = i; j < kAttnTileKeys; ++j) next->FetchK(j);
  }
  for (; i < n; ++i) GroupScoresKeys<kR, 1>(df, q, qhl, d, k + i * ks, ks, out + i, os);
}

// The scores of G rows (q rows d apart; qhl: their bf16 hi + lo rows of 2d,
// or null) against n keys, out rows os apart: kDecodeRows rows at a time,
// then what is left of the group.
template <class DF, typename KT>
HWY_INLINE void GroupScores(DF df, const float* HWY_RESTRICT q, const uint16_t* HWY_RESTRICT qhl, size_t G, size_t d,
                            const KT* HWY_RESTRICT k, size_t ks, size_t n, float* HWY_RESTRICT out, size_t os,
                            const NextTile& next) {
  size_t g = 0;
  const NextTile* fetch = &next;  // the first block of rows pulls in the next tile
  const auto split = [&](size_t row) { return qhl ? qhl + row * 2 * d : nullptr; };
  for (; g + kDecodeRows <= G; g += kDecodeRows, fetch = nullptr) {
    GroupScoresRows<kDecodeRows>(df, q + g * d, split(g), d, k, ks, n, out + g * os, os, fetch);
  }
  const size_t left = G - g;
  if (left >= 3 && kDecodeRows > 3) {
    GroupScoresRows<3>(df, q + g * d, split(g), d, k, ks, n, out + g * os, os, fetch);
  } else if (left >= 2) {
    GroupScoresRows<2>(df, q + g * d, split(g), d, k, ks, n, out + g * os, os, fetch);
    if (left == 3) {
      GroupScoresRows<1>(df, q + (g + 2) * d, split(g + 2), d, k, ks, n, out + (g + 2) * os, os, nullptr);
    }
  } else if (left == 1) {
    GroupScoresRows<1>(df, q + g * d, split(g), d, k, ks, n, out + g * os, os, fetch);
  }
}

// acc = acc · alpha + Σ_i p[i] · V[key[i]], V rows vs elements apart. Up to
// four vectors of the row in registers while the keys stream past.
template <class DF, typename VT>
HWY_INLINE void AttnAccumulate(DF df, float* HWY_RESTRICT acc, size_t dv, float alpha, const float* HWY_RESTRICT p,
                               const size_t* HWY_RESTRICT key, size_t n, const VT* HWY_RESTRICT v, size_t vs) {
  const size_t L = hn::Lanes(df);
  const auto va = hn::Set(df, alpha);
  size_t c = 0;
  for (; c + 4 * L <= dv; c += 4 * L) {
    auto a0 = hn::Mul(hn::LoadU(df, acc + c), va), a1 = hn::Mul(hn::LoadU(df, acc + c + L), va);
    auto a2 = hn::Mul(hn::LoadU(df, acc + c + 2 * L), va), a3 = hn::Mul(hn::LoadU(df, acc + c + 3 * L), va);
    for (size_t i = 0; i < n; ++i) {
      const auto pv = hn::Set(df, p[i]);
      const VT* row = v + key[i] * vs + c;
      a0 = hn::MulAdd(pv, LoadKvRow(df, row), a0);
      a1 = hn::MulAdd(pv, LoadKvRow(df, row + L), a1);
      a2 = hn::MulAdd(pv, LoadKvRow(df, row + 2 * L), a2);
      a3 = hn::MulAdd(pv, LoadKvRow(df, row + 3 * L), a3);
    }
    hn::StoreU(a0, df, acc + c);
    hn::StoreU(a1, df, acc + c + L);
    hn::StoreU(a2, df, acc + c + 2 * L);
    hn::StoreU(a3, df, acc + c + 3 * L);
  }
  for (; c + L <= dv; c += L) {
    auto a0 = hn::Mul(hn::LoadU(df, acc + c), va);
    for (size_t i = 0; i < n; ++i) a0 = hn::MulAdd(hn::Set(df, p[i]), LoadKvRow(df, v + key[i] * vs + c), a0);
    hn::StoreU(a0, df, acc + c);
  }
  for (; c < dv; ++c) {
    float x = acc[c] * alpha;
    for (size_t i = 0; i < n; ++i) x += p[i] * KvToF32(v[key[i] * vs + c]);
    acc[c] = x;
  }
}

// dst[0, n) = src[0, n) as fp32.
template <class DF, typename T>
HWY_INLINE void WidenRow(DF df, const T* HWY_RESTRICT src, size_t n, float* HWY_RESTRICT dst) {
  const size_t L = hn::Lanes(df);
  size_t c = 0;
  for (; c + L <= n; c += L) hn::StoreU(LoadKvRow(df, src + c), df, dst + c);
  for (; c < n; ++c) dst[c] = KvToF32(src[c]);
}

// Register budget (32 vector registers on AVX-512, NEON, SVE; 16 on AVX2 and
// below): scores kAttnKeys × 2 accumulators + 2 Q vectors + a broadcast; P·V
// kAttnMR × kAttnNV accumulators + kAttnNV V vectors + a broadcast.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr size_t kAttnKeys = 4, kAttnNV = 2;
#else
constexpr size_t kAttnKeys = 8, kAttnNV = 4;
#endif
constexpr size_t kAttnMR = 4;

#define TILEKIT_ATTN_PV_LOAD(I)                                             \
  if constexpr (kMR > I) {                                                  \
    const auto va = hn::Set(df, alpha[I]);                                  \
    o##I##0 = hn::Mul(hn::LoadU(df, acc + I * dv), va);                     \
    if constexpr (kNV > 1) o##I##1 = hn::Mul(hn::LoadU(df, acc + I * dv + L), va);     \
    if constexpr (kNV > 2) o##I##2 = hn::Mul(hn::LoadU(df, acc + I * dv + 2 * L), va); \
    if constexpr (kNV > 3) o##I##3 = hn::Mul(hn::LoadU(df, acc + I * dv + 3 * L), va); \
  }
#define TILEKIT_ATTN_PV_FMA(I)                                          \
  if constexpr (kMR > I) {                                              \
    const auto pb = hn::Set(df, p[j * R + I]);                          \
    o##I##0 = hn::MulAdd(pb, v0, o##I##0);                              \
    if constexpr (kNV > 1) o##I##1 = hn::MulAdd(pb, v1, o##I##1);       \
    if constexpr (kNV > 2) o##I##2 = hn::MulAdd(pb, v2, o##I##2);       \
    if constexpr (kNV > 3) o##I##3 = hn::MulAdd(pb, v3, o##I##3);       \
  }
#define TILEKIT_ATTN_PV_STORE(I)                                         \
  if constexpr (kMR > I) {                                               \
    hn::StoreU(o##I##0, df, acc + I * dv);                               \
    if constexpr (kNV > 1) hn::StoreU(o##I##1, df, acc + I * dv + L);     \
    if constexpr (kNV > 2) hn::StoreU(o##I##2, df, acc + I * dv + 2 * L); \
    if constexpr (kNV > 3) hn::StoreU(o##I##3, df, acc + I * dv + 3 * L); \
  }

// acc[i][0, kNV · L) = acc[i] · alpha[i] + Σ_{j in [j0, j1)} p[j][i] · v[j]
// for kMR rows (acc rows dv floats apart, p rows R apart, v rows vs apart).
template <size_t kMR, size_t kNV, class DF, typename VT>
HWY_INLINE void PvBlock(DF df, float* HWY_RESTRICT acc, size_t dv, const float* HWY_RESTRICT alpha,
                        const float* HWY_RESTRICT p, size_t R, const VT* HWY_RESTRICT v, size_t vs, size_t j0,
                        size_t j1) {
  const size_t L = hn::Lanes(df);
  auto o00 = hn::Zero(df), o01 = o00, o02 = o00, o03 = o00, o10 = o00, o11 = o00, o12 = o00, o13 = o00;
  auto o20 = o00, o21 = o00, o22 = o00, o23 = o00, o30 = o00, o31 = o00, o32 = o00, o33 = o00;
  TILEKIT_ATTN_PV_LOAD(0) TILEKIT_ATTN_PV_LOAD(1) TILEKIT_ATTN_PV_LOAD(2) TILEKIT_ATTN_PV_LOAD(3)
  for (size_t j = j0; j < j1; ++j) {
    const VT* row = v + j * vs;
    const auto v0 = LoadKvRow(df, row);
    const auto v1 = kNV > 1 ? LoadKvRow(df, row + L) : v0;
    const auto v2 = kNV > 2 ? LoadKvRow(df, row + 2 * L) : v0;
    const auto v3 = kNV > 3 ? LoadKvRow(df, row + 3 * L) : v0;
    TILEKIT_ATTN_PV_FMA(0) TILEKIT_ATTN_PV_FMA(1) TILEKIT_ATTN_PV_FMA(2) TILEKIT_ATTN_PV_FMA(3)
  }
  TILEKIT_ATTN_PV_STORE(0) TILEKIT_ATTN_PV_STORE(1) TILEKIT_ATTN_PV_STORE(2) TILEKIT_ATTN_PV_STORE(3)
}
#undef TILEKIT_ATTN_PV_LOAD
#undef TILEKIT_ATTN_PV_FMA
#undef TILEKIT_ATTN_PV_STORE
static_assert(kAttnMR <= 4 && kAttnNV <= 4, "PvBlock declares 4 x 4 accumulators");

// acc[i][0, dv) = acc[i] · alpha[i] + Σ_{j in [j0, j1)} p[j][i] · v[j] for
// kMR rows: whole register tiles across dv, then single vectors, then the
// columns past the last whole vector.
template <size_t kMR, class DF, typename VT>
HWY_INLINE void PvRows(DF df, float* HWY_RESTRICT acc, size_t dv, const float* HWY_RESTRICT alpha,
                       const float* HWY_RESTRICT p, size_t R, const VT* HWY_RESTRICT v, size_t vs, size_t j0,
                       size_t j1) {
  const size_t L = hn::Lanes(df);
  size_t c = 0;
  for (; c + kAttnNV * L <= dv; c += kAttnNV * L) PvBlock<kMR, kAttnNV>(df, acc + c, dv, alpha, p, R, v + c, vs, j0, j1);
  for (; c + L <= dv; c += L) PvBlock<kMR, 1>(df, acc + c, dv, alpha, p, R, v + c, vs, j0, j1);
  for (; c < dv; ++c) {
    for (size_t i = 0; i < kMR; ++i) {
      float x = acc[i * dv + c] * alpha[i];
      for (size_t j = j0; j < j1; ++j) x += p[j * R + i] * KvToF32(v[j * vs + c]);
      acc[i * dv + c] = x;
    }
  }
}

// The rows of tokens [t0, t1) against keys [a, b) of one tile: K rows ks, V
// rows vs elements apart from key a (fp32 or bf16).
template <class DF, typename T>
HWY_INLINE void AttendTile(DF df, const AttnShape& sh, const AttnSeq& sq, size_t t0, size_t t1, size_t a, size_t b,
                           const T* HWY_RESTRICT ktile, size_t ks, const T* HWY_RESTRICT vtile, size_t vs,
                           const float* HWY_RESTRICT qs, const uint16_t* HWY_RESTRICT qhl,
                           float* HWY_RESTRICT acc, float* HWY_RESTRICT m,
                           float* HWY_RESTRICT l, float* HWY_RESTRICT row_sc, const NextTile& next) {
  const size_t L = hn::Lanes(df);
  const size_t G = sh.group, d = sh.d, dv = sh.dv;
  const float kNegInf = -std::numeric_limits<float>::infinity();
  size_t keep[kAttnTileKeys];
  float p[kAttnTileKeys];
  // One token (decode) without an additive mask: its G rows keep the same
  // keys, so P·V runs as register tiles of kAttnMR rows over the group's p
  // (pg[key][g]), each V row read once per tile instead of once per row.
  const bool grouped = AttnDecodeGroup(sh, sq, t1 - t0);
  float pg[kAttnTileKeys * kAttnGroupMax], alpha_g[kAttnGroupMax];
  // Grouped: the scores of all G rows first (GroupScores, K read once for the
  // group), one row of kScoreRow floats each.
  constexpr size_t kScoreRow = kAttnTileKeys + kAttnMaxLanes;
  float sg[kScoreRow * kAttnGroupMax];
  bool fetched = false;
  for (size_t t = t0; t < t1; ++t) {
    size_t lo, hi;
    AttnKeyRange(sh, sq, t, &lo, &hi);
    lo = std::max(lo, a);
    hi = std::min(hi, b);
    if (lo >= hi) continue;
    const size_t n = hi - lo, n_padded = (n + L - 1) / L * L;
    const float* mask = sq.mask ? sq.mask + t * sq.mask_ld + lo : nullptr;
    if (grouped) {
      GroupScores(df, qs + (t - t0) * G * d, qhl ? qhl + (t - t0) * G * 2 * d : nullptr, G, d, ktile + (lo - a) * ks,
                  ks, n, sg, kScoreRow, next);
    }
    for (size_t g = 0; g < G; ++g) {
      const size_t r = (t - t0) * G + g;
      float* HWY_RESTRICT sc = row_sc;
      if (grouped) {
        sc = sg + g * kScoreRow;
        // The next tile's V rows, a share per row while the softmax runs
        // (its K rows came with the scores): a burst of them all at once
        // stalled on the fill buffers.
        for (size_t j = g * kAttnTileKeys / G, e = (g + 1) * kAttnTileKeys / G; j < e; ++j) next.FetchV(j);
      } else {
        AttnScores(df, qs + r * d, d, ktile + (lo - a) * ks, ks, n, sc, fetched ? nullptr : &next);
        fetched = true;  // the first row's pass over the tile pulls in the next
      }
      for (size_t i = n; i < n_padded; ++i) sc[i] = 0.f;
      if (sh.softcap > 0.f) {
        const auto cap = hn::Set(df, sh.softcap);
        for (size_t i = 0; i < n_padded; i += L) {
          hn::StoreU(Softcap(df, hn::LoadU(df, sc + i), cap), df, sc + i);
        }
      }
      if (mask) {
        for (size_t i = 0; i < n; ++i) sc[i] += mask[i];
      }
      // Max over the kept keys; a NaN logit makes the whole row NaN.
      float mx = kNegInf;
      size_t kept = 0;
      bool nan = false;
      for (size_t i = 0; i < n; ++i) {
        const float s = sc[i];
        if (s != s) nan = true;
        if (s == kNegInf) continue;
        keep[kept++] = i;
        mx = s > mx ? s : mx;
      }
      float* arow = acc + r * dv;
      if (grouped) {  // a row that adds nothing: p = 0, acc kept (alpha 1)
        alpha_g[g] = 1.f;
        for (size_t i = 0; i < n; ++i) pg[i * G + g] = 0.f;
      }
      if (nan) {
        l[r] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      const float m_new = std::max(m[r], mx);
      if (kept == 0 || m_new == kNegInf) continue;
      const float alpha = m[r] == kNegInf ? 0.f : hn::GetLane(ExpKeepNaN(df, hn::Set(df, m[r] - m_new)));
      const auto vm = hn::Set(df, m_new);
      for (size_t i = n; i < n_padded; ++i) sc[i] = kNegInf;
      for (size_t i = 0; i < n_padded; i += L) {
        hn::StoreU(ExpKeepNaN(df, hn::Sub(hn::LoadU(df, sc + i), vm)), df, sc + i);
      }
      float sum = 0.f;
      for (size_t i = 0; i < kept; ++i) {
        p[i] = sc[keep[i]];
        sum += p[i];
      }
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
      if (grouped) {
        alpha_g[g] = alpha;
        for (size_t i = 0; i < kept; ++i) pg[keep[i] * G + g] = p[i];
      } else {
        AttnAccumulate(df, arow, dv, alpha, p, keep, kept, vtile + (lo - a) * vs, vs);
      }
    }
    if (grouped) {
      const size_t r0 = (t - t0) * G;
      const T* v0 = vtile + (lo - a) * vs;
      size_t g = 0;
      for (; g + kAttnMR <= G; g += kAttnMR) {
        PvRows<kAttnMR>(df, acc + (r0 + g) * dv, dv, alpha_g + g, pg + g, G, v0, vs, 0, n);
      }
      for (; g < G; ++g) PvRows<1>(df, acc + (r0 + g) * dv, dv, alpha_g + g, pg + g, G, v0, vs, 0, n);
    }
  }
}

// ---- The tiled path (tasks of kAttnPackRows rows or more) ---------------------
// Rows along the vector lanes, like a GEMM with the rows as its N: Q is
// transposed once per task into qt[c][R] (R = rows rounded up to whole
// vectors), and a tile's scores are st[j][R] = Σ_c K[j][c] · qt[c][·], each
// step a broadcast of one K element times the row vectors: no horizontal
// sums, and K stays in its packed [key][d] rows. The online softmax then runs
// down the keys with one lane per row (max, exp, sum in key order), and P·V
// is a kMR rows × kNV vectors register tile over each key's V row, every V
// row read once per kMR rows instead of once per row (PvRows, above).

#define TILEKIT_ATTN_KEY(I)                                     \
  if constexpr (kKeys > I) {                                    \
    const auto kb = hn::Set(df, k[I * d + c]);                  \
    s##I##0 = hn::MulAdd(kb, q0, s##I##0);                      \
    if constexpr (kRV > 1) s##I##1 = hn::MulAdd(kb, q1, s##I##1); \
  }
#define TILEKIT_ATTN_KEY_STORE(I)                              \
  if constexpr (kKeys > I) {                                   \
    hn::StoreU(s##I##0, df, st + I * R);                       \
    if constexpr (kRV > 1) hn::StoreU(s##I##1, df, st + I * R + L); \
  }

// st[i][0, kRV · L) = Σ_c k[i][c] · qt[c][0, kRV · L) for kKeys keys (rows of
// d floats) and kRV row vectors (qt rows R floats apart).
template <size_t kKeys, size_t kRV, class DF>
HWY_INLINE void ScoresBlock(DF df, const float* HWY_RESTRICT qt, size_t R, size_t d, const float* HWY_RESTRICT k,
                            float* HWY_RESTRICT st) {
  const size_t L = hn::Lanes(df);
  auto s00 = hn::Zero(df), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
  auto s40 = s00, s41 = s00, s50 = s00, s51 = s00, s60 = s00, s61 = s00, s70 = s00, s71 = s00;
  for (size_t c = 0; c < d; ++c) {
    const auto q0 = hn::LoadU(df, qt + c * R);
    const auto q1 = kRV > 1 ? hn::LoadU(df, qt + c * R + L) : q0;
    TILEKIT_ATTN_KEY(0) TILEKIT_ATTN_KEY(1) TILEKIT_ATTN_KEY(2) TILEKIT_ATTN_KEY(3)
    TILEKIT_ATTN_KEY(4) TILEKIT_ATTN_KEY(5) TILEKIT_ATTN_KEY(6) TILEKIT_ATTN_KEY(7)
  }
  TILEKIT_ATTN_KEY_STORE(0) TILEKIT_ATTN_KEY_STORE(1) TILEKIT_ATTN_KEY_STORE(2) TILEKIT_ATTN_KEY_STORE(3)
  TILEKIT_ATTN_KEY_STORE(4) TILEKIT_ATTN_KEY_STORE(5) TILEKIT_ATTN_KEY_STORE(6) TILEKIT_ATTN_KEY_STORE(7)
}
#undef TILEKIT_ATTN_KEY
#undef TILEKIT_ATTN_KEY_STORE
static_assert(kAttnKeys <= 8, "ScoresBlock declares 8 key accumulators");

// st[j][0, R) for the n keys of a packed tile (k rows of d floats).
template <class DF>
HWY_INLINE void ScoresTile(DF df, const float* HWY_RESTRICT qt, size_t R, size_t d, const float* HWY_RESTRICT k,
                           size_t n, float* HWY_RESTRICT st, const NextTile& next) {
  const size_t L = hn::Lanes(df);
  size_t j = 0;
  for (; j + kAttnKeys <= n; j += kAttnKeys) {
    for (size_t i = 0; i < kAttnKeys; ++i) next.Fetch(j + i);
    size_t r = 0;
    for (; r + 2 * L <= R; r += 2 * L) ScoresBlock<kAttnKeys, 2>(df, qt + r, R, d, k + j * d, st + j * R + r);
    if (r < R) ScoresBlock<kAttnKeys, 1>(df, qt + r, R, d, k + j * d, st + j * R + r);
  }
  for (size_t i = j; i < kAttnTileKeys; ++i) next.Fetch(i);
  for (; j < n; ++j) {
    size_t r = 0;
    for (; r + 2 * L <= R; r += 2 * L) ScoresBlock<1, 2>(df, qt + r, R, d, k + j * d, st + j * R + r);
    if (r < R) ScoresBlock<1, 1>(df, qt + r, R, d, k + j * d, st + j * R + r);
  }
}

// One row, the keys of [j0, j1) whose p is not −0 (the mark of a masked key,
// see SoftmaxTile), acc not rescaled.
template <class DF, typename VT>
HWY_INLINE void PvKept(DF df, float* HWY_RESTRICT acc, size_t dv, const float* HWY_RESTRICT p, size_t R,
                       const VT* HWY_RESTRICT v, size_t vs, size_t j0, size_t j1) {
  const float one = 1.f;
  for (size_t j = j0; j < j1; ++j) {
    if (std::signbit(p[j * R])) continue;
    PvRows<1>(df, acc, dv, &one, p + j * R, R, v + j * vs, vs, 0, 1);
  }
}

// The online-softmax step of one tile over st[j][0, R) (keys a + j, j < n):
// softcap, additive mask, the rows' key ranges [lo, hi), new max m, p = exp(s
// − m) in place (−0 where the key is masked: it never reaches V), l and the
// rescale alpha = exp(m_old − m) per row.
template <class DF>
HWY_INLINE void SoftmaxTile(DF df, const AttnShape& sh, const AttnSeq& sq, size_t t0, size_t rows, size_t R,
                            size_t a, size_t n, const float* HWY_RESTRICT lo, const float* HWY_RESTRICT hi,
                            float* HWY_RESTRICT st, float* HWY_RESTRICT m, float* HWY_RESTRICT l,
                            float* HWY_RESTRICT alpha) {
  const size_t L = hn::Lanes(df);
  const auto neg_inf = hn::Set(df, -std::numeric_limits<float>::infinity());
  if (sh.softcap > 0.f) {
    const auto cap = hn::Set(df, sh.softcap);
    for (size_t i = 0; i < n * R; i += L) {
      hn::StoreU(Softcap(df, hn::LoadU(df, st + i), cap), df, st + i);
    }
  }
  if (sq.mask) {
    for (size_t r = 0; r < rows; ++r) {
      const float* mrow = sq.mask + (t0 + r / sh.group) * sq.mask_ld + a;
      for (size_t j = 0; j < n; ++j) st[j * R + r] += mrow[j];
    }
  }
  for (size_t r = 0; r < R; r += L) {
    const auto vlo = hn::LoadU(df, lo + r), vhi = hn::LoadU(df, hi + r);
    auto mx = neg_inf;
    auto nan = hn::Zero(df);  // lanes that met a NaN logit: Max and Exp would drop it
    for (size_t j = 0; j < n; ++j) {
      const auto key = hn::Set(df, static_cast<float>(a + j));  // exact below 2^24 keys
      const auto keep = hn::And(hn::Ge(key, vlo), hn::Lt(key, vhi));
      const auto s = hn::IfThenElse(keep, hn::LoadU(df, st + j * R + r), neg_inf);
      hn::StoreU(s, df, st + j * R + r);
      nan = hn::IfThenElse(hn::IsNaN(s), s, nan);
      mx = hn::Max(mx, s);
    }
    const auto m_old = hn::LoadU(df, m + r);
    const auto m_new = hn::Max(m_old, mx);
    const auto none = hn::Eq(m_new, neg_inf);  // nothing kept so far: nothing to subtract
    const auto base = hn::IfThenElse(none, hn::Zero(df), m_new);
    auto sum = hn::Zero(df);
    for (size_t j = 0; j < n; ++j) {
      const auto s = hn::LoadU(df, st + j * R + r);
      const auto p = hn::IfThenElse(hn::Eq(s, neg_inf), hn::Set(df, -0.f), ExpKeepNaN(df, hn::Sub(s, base)));
      hn::StoreU(p, df, st + j * R + r);
      sum = hn::Add(sum, p);
    }
    const auto al = hn::IfThenZeroElse(hn::Eq(m_old, neg_inf), ExpKeepNaN(df, hn::Sub(m_old, base)));
    hn::StoreU(al, df, alpha + r);
    // A NaN logit makes the row's sum NaN, and so its output and lse.
    hn::StoreU(hn::Add(hn::MulAdd(hn::LoadU(df, l + r), al, sum), nan), df, l + r);
    hn::StoreU(m_new, df, m + r);
  }
}

// The tiled path over keys [j0, j1) for rows [t0, t1) × group: ws holds
// qt (d × R), st (kAttnTileKeys × R), m, l, alpha, lo, hi (R each) and the
// packed K/V tile.
template <class DF, typename KT>
HWY_INLINE void AttendTiled(DF df, const AttnShape& sh, const AttnSeq& sq, size_t kv_head, size_t t0, size_t t1,
                            size_t j0, size_t j1, float* HWY_RESTRICT acc, float* HWY_RESTRICT m_out,
                            float* HWY_RESTRICT l_out, float* HWY_RESTRICT ws) {
  const size_t L = hn::Lanes(df);
  const size_t G = sh.group, d = sh.d, dv = sh.dv;
  const size_t rows = (t1 - t0) * G, R = (rows + L - 1) / L * L;
  float* HWY_RESTRICT qt = ws;
  float* HWY_RESTRICT st = qt + d * R;
  float* HWY_RESTRICT m = st + kAttnTileKeys * R;
  float* HWY_RESTRICT l = m + R;
  float* HWY_RESTRICT alpha = l + R;
  float* HWY_RESTRICT lo = alpha + R;
  float* HWY_RESTRICT hi = lo + R;
  float* HWY_RESTRICT kpack = hi + R;
  float* HWY_RESTRICT vpack = kpack + kAttnTileKeys * d;

  for (size_t r = 0; r < R; ++r) {
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.f;
    lo[r] = hi[r] = 0.f;  // padding rows keep no key
  }
  // Qᵀ, scaled, 16 rows at a time, so that each c writes 16 adjacent floats
  // of qt (a cache line on AVX-512): row by row, each of a row's d stores went
  // to another line, R floats apart, through a qt of 64 KiB at d = R = 128
  // that L1 does not hold, and the transpose took 7% of the kernel's time in
  // a T = 1024 fp32 prefill (perf, docs/performance-history.md).
  constexpr size_t kQtRows = 16;
  for (size_t r0 = 0; r0 < rows; r0 += kQtRows) {
    const size_t nr = std::min(kQtRows, rows - r0);
    const float* src[kQtRows];
    for (size_t i = 0; i < nr; ++i) {
      const size_t r = r0 + i;
      src[i] = sq.q + (t0 + r / G) * sq.q_stride + (kv_head * G + r % G) * d;
    }
    for (size_t c = 0; c < d; ++c) {
      for (size_t i = 0; i < nr; ++i) qt[c * R + r0 + i] = src[i][c] * sh.scale;
    }
  }
  size_t lo_all = j1, hi_all = j0;
  for (size_t r = 0; r < rows; ++r) {
    const size_t t = t0 + r / G;
    size_t a, b;
    AttnKeyRange(sh, sq, t, &a, &b);
    a = std::max(a, j0);
    b = std::min(b, j1);
    if (a >= b) a = b = 0;
    lo[r] = static_cast<float>(a);
    hi[r] = static_cast<float>(b);
    if (a < b) {
      lo_all = std::min(lo_all, a);
      hi_all = std::max(hi_all, b);
    }
  }
  for (size_t c = 0; c < d; ++c) {
    for (size_t r = rows; r < R; ++r) qt[c * R + r] = 0.f;
  }
  std::fill(acc, acc + rows * dv, 0.f);

  const AttnKv& kv = sq.kv;
  for (size_t a = lo_all, b; a < hi_all; a = b) {
    b = std::min(a + kAttnTileKeys, hi_all);
    const KT *ktile, *vtile;
    TileAt(kv, kv_head, d, dv, a, &b, &ktile, &vtile);
    // Widened once into contiguous fp32 rows: a cache or fused-QKV token
    // stride of 2-4 KiB puts every K row of a tile in the same L1 sets.
    const size_t ks = kv.k_stride / sizeof(KT), vs = kv.v_stride / sizeof(KT), n = b - a;
    for (size_t j = 0; j < n; ++j) {
      WidenRow(df, ktile + j * ks, d, kpack + j * d);
      WidenRow(df, vtile + j * vs, dv, vpack + j * dv);
    }
    ScoresTile(df, qt, R, d, kpack, n, st, NextTileAt<KT>(kv, kv_head, d, dv, b, hi_all));
    SoftmaxTile(df, sh, sq, t0, rows, R, a, n, lo, hi, st, m, l, alpha);
    // P·V: kMR rows at a time over the keys all of them keep; each row alone
    // over the keys only it keeps (the causal diagonal); with an additive
    // mask, each row alone over its unmasked keys.
    size_t r = 0;
    for (; !sq.mask && r + kAttnMR <= rows; r += kAttnMR) {
      size_t cl = a, ch = b;  // [cl, ch): the keys every row of the block keeps
      for (size_t i = 0; i < kAttnMR; ++i) {
        cl = std::max(cl, static_cast<size_t>(lo[r + i]));
        ch = std::min(ch, static_cast<size_t>(hi[r + i]));
      }
      if (cl >= ch) cl = ch = a;
      PvRows<kAttnMR>(df, acc + r * dv, dv, alpha + r, st + r, R, vpack, dv, cl - a, ch - a);
      for (size_t i = 0; i < kAttnMR; ++i) {
        const size_t rl = std::max(a, static_cast<size_t>(lo[r + i])), rh = std::min(b, static_cast<size_t>(hi[r + i]));
        if (rl >= rh) continue;
        if (rl < cl) PvKept(df, acc + (r + i) * dv, dv, st + r + i, R, vpack, dv, rl - a, std::min(cl, rh) - a);
        if (rh > ch) PvKept(df, acc + (r + i) * dv, dv, st + r + i, R, vpack, dv, std::max(ch, rl) - a, rh - a);
      }
    }
    for (; r < rows; ++r) {
      PvRows<1>(df, acc + r * dv, dv, alpha + r, st + r, R, vpack, dv, 0, 0);  // the rescale
      const size_t rl = std::max(a, static_cast<size_t>(lo[r])), rh = std::min(b, static_cast<size_t>(hi[r]));
      if (rl < rh) PvKept(df, acc + r * dv, dv, st + r, R, vpack, dv, rl - a, rh - a);
    }
  }
  for (size_t r = 0; r < rows; ++r) {
    m_out[r] = m[r];
    l_out[r] = l[r];
  }
}

// The tiled path in bf16 on the x86 paths with the bf16 dot (AttnBf16::tiled):
// attention/tiled_bf16-inl.h, which the module's targets-inl.h reads after
// this file.
#undef TILEKIT_ATTN_TILED_BF16  // this header is read once per target
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define TILEKIT_ATTN_TILED_BF16 1
template <bool kNative, class DF>
HWY_NOINLINE void AttendTiledBf16(DF df, const AttnShape& sh, const AttnSeq& sq, size_t kv_head, size_t t0,
                                  size_t t1, size_t j0, size_t j1, float* HWY_RESTRICT acc, float* HWY_RESTRICT m_out,
                                  float* HWY_RESTRICT l_out, float* HWY_RESTRICT ws);
#else
#define TILEKIT_ATTN_TILED_BF16 0
#endif
// The tiled path on the matrix units (tiled_brgemm-inl.h): true when it ran
// (bf16 K/V on a path with bf16 tile products), false to run AttendTiled.
inline bool AttendTiledMatrix(const AttnShape& sh, const AttnSeq& sq, size_t h0, size_t h1, size_t t0, size_t t1,
                              size_t j0, size_t j1, float* acc, float* m, float* l, float* ws);

// KV heads [h0, h1), each with its rows [t0, t1) × group (head-major: the
// rows of head h0 first). Tiled path: head by head. Row by row (decode): tile
// by tile, every head within a tile, so the K/V rows of a token's heads (one
// contiguous run of the cache; a head alone is 256-512 bytes of each 4 KiB
// page) are read, and prefetched a tile ahead, close together in time.
template <typename KT>
void AttendRowsT(const AttnShape& sh, const AttnSeq& sq, size_t h0, size_t h1, size_t t0, size_t t1, size_t j0,
                 size_t j1, float* HWY_RESTRICT acc, float* HWY_RESTRICT m, float* HWY_RESTRICT l,
                 float* HWY_RESTRICT ws, AttnBf16 bf16) {
  (void)bf16;  // read only on the targets with the bf16 dot or the bf16 tiled path
  const hn::ScalableTag<float> df;
  const size_t L = hn::Lanes(df);
  const size_t G = sh.group, d = sh.d, dv = sh.dv;
  const size_t rh = (t1 - t0) * G, rows = rh * (h1 - h0);
  if (AttnTiledTask(sh, sq, t1 - t0)) {
    if (AttendTiledMatrix(sh, sq, h0, h1, t0, t1, j0, j1, acc, m, l, ws)) return;
#if TILEKIT_ATTN_TILED_BF16
    if (std::is_same<KT, uint16_t>::value && bf16.tiled) {
      for (size_t h = h0; h < h1; ++h) {
        const size_t r0 = (h - h0) * rh;
        AttendTiledBf16<true>(df, sh, sq, h, t0, t1, j0, j1, acc + r0 * dv, m + r0, l + r0, ws);
      }
      return;
    }
#endif
    for (size_t h = h0; h < h1; ++h) {
      const size_t r0 = (h - h0) * rh;
      AttendTiled<decltype(df), KT>(df, sh, sq, h, t0, t1, j0, j1, acc + r0 * dv, m + r0, l + r0, ws);
    }
    return;
  }
  const float kNegInf = -std::numeric_limits<float>::infinity();
  float* HWY_RESTRICT qs = ws;             // rows × d, scaled
  float* HWY_RESTRICT sc = ws + rows * d;  // one row of scores, padded to whole vectors
  // A decode group on bf16 K with the bf16 dot: Q split into bf16 hi + lo
  // rows (GroupScoresBlockDot), after the scores' row.
  uint16_t* HWY_RESTRICT qhl = nullptr;
#if TILEKIT_SIMD_NATIVE_BF16_DOT
  if (std::is_same<KT, uint16_t>::value && bf16.dot && AttnDecodeGroup(sh, sq, t1 - t0)) {
    qhl = reinterpret_cast<uint16_t*>(sc + kAttnTileKeys + kAttnMaxLanes);
  }
#endif

  const auto vscale = hn::Set(df, sh.scale);
  for (size_t h = h0; h < h1; ++h) {
    for (size_t t = t0; t < t1; ++t) {
      for (size_t g = 0; g < G; ++g) {
        const float* src = sq.q + t * sq.q_stride + (h * G + g) * d;
        float* dst = qs + ((h - h0) * rh + (t - t0) * G + g) * d;
        size_t c = 0;
        for (; c + L <= d; c += L) hn::StoreU(hn::Mul(hn::LoadU(df, src + c), vscale), df, dst + c);
        for (; c < d; ++c) dst[c] = src[c] * sh.scale;
      }
    }
  }
#if TILEKIT_SIMD_NATIVE_BF16_DOT
  if (qhl) SplitQBf16(qs, rows, d, qhl);
#endif
  for (size_t r = 0; r < rows; ++r) {
    m[r] = kNegInf;
    l[r] = 0.f;
  }
  std::fill(acc, acc + rows * dv, 0.f);

  // The keys any row of the block sees: tiles outside are never read.
  size_t lo_all = j1, hi_all = j0;
  for (size_t t = t0; t < t1; ++t) {
    size_t lo, hi;
    AttnKeyRange(sh, sq, t, &lo, &hi);
    lo = std::max(lo, j0);
    hi = std::min(hi, j1);
    if (lo < hi) {
      lo_all = std::min(lo_all, lo);
      hi_all = std::max(hi_all, hi);
    }
  }

  const AttnKv& kv = sq.kv;
  const size_t ks = kv.k_stride / sizeof(KT), vs = kv.v_stride / sizeof(KT);
  for (size_t a = lo_all, b; a < hi_all; a = b) {
    b = std::min(a + kAttnTileKeys, hi_all);
    for (size_t h = h0; h < h1; ++h) {
      const KT *ktile, *vtile;
      TileAt(kv, h, d, dv, a, &b, &ktile, &vtile);
      const size_t r0 = (h - h0) * rh;
      AttendTile(df, sh, sq, t0, t1, a, b, ktile, ks, vtile, vs, qs + r0 * d, qhl ? qhl + r0 * 2 * d : nullptr,
                 acc + r0 * dv, m + r0, l + r0, sc,
                 NextTileAt<KT>(kv, h, d, dv, b, hi_all));
    }
  }
}

inline void AttendRows(const AttnShape& sh, const AttnSeq& sq, size_t h0, size_t h1, size_t t0, size_t t1, size_t j0,
                       size_t j1, float* acc, float* m, float* l, float* ws, AttnBf16 bf16) {
  if (sq.kv.bf16) {
    AttendRowsT<uint16_t>(sh, sq, h0, h1, t0, t1, j0, j1, acc, m, l, ws, bf16);
  } else {
    AttendRowsT<float>(sh, sq, h0, h1, t0, t1, j0, j1, acc, m, l, ws, bf16);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_ATTENTION_ATTENTION_INL_H_
