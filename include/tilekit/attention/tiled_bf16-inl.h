// Per-target tiled path for bf16 K/V on the x86 paths with the bf16 dot
// instruction (AttnBf16::tiled: avx512_bf16, and amx while it has no
// tile-unit attention kernel; off unless TILEKIT_ATTN_BF16_DOT=1, see
// attention/plan.h for the measurement): both products by vdpbf16ps, reading
// K in place from the cache rows.
//
// The flow of AttendTiled (attention-inl.h), with bf16 operands:
//  - Qᵀ · scale rounded to bf16 once per task, in pairs of head-dim columns:
//    qt2[c / 2][R][2] (R = rows rounded up to whole vectors);
//  - scores st[j][R] = Σ over column pairs of broadcast(K pair k[j][2c, 2c + 1],
//    one 32-bit word of the cache row: no packing, no widening) · the qt2 row
//    vector; an odd head dim's last pair is (k[d − 1], 0), built apart so that
//    nothing past the row is read;
//  - the online softmax as the fp32 path (SoftmaxTile, fp32: max, exp, sum);
//  - P rounded to bf16 in key pairs p2[j / 2][R][2] (an odd tile's last pair
//    padded with 0), the V tile packed once per tile into pairs of keys
//    v2[j / 2][dv][2] (the head-dim columns of whole vectors; the rest run in
//    fp32 from the cache), and acc[i][c-vector] += broadcast(p pair of row
//    i) · v2 pair vector, kMR rows × kNV vectors per register tile.
// A masked key has p = −0 (SoftmaxTile's mark) and adds ±0, as long as its V
// is finite: a tile whose V holds an Inf or NaN (the packing checks) runs P·V
// row by row over each row's kept keys in fp32 instead, so a masked NaN V
// never meets a zero probability.
//
// Error (the test's reference, tests/attention_reference.h): q · scale rounded
// to bf16 is part of what is computed (the reference rounds it the same way);
// the scores' sums are the fp32 bound's (vdpbf16ps: exact products, one
// rounding per product, DAZ / FTZ); P rounded to bf16 adds 2^-8 Σ p |v| / l
// to an output (bf16's unit roundoff; l sums the unrounded p).
#if defined(TILEKIT_ATTENTION_TILED_BF16_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_ATTENTION_TILED_BF16_INL_H_
#undef TILEKIT_ATTENTION_TILED_BF16_INL_H_
#else
#define TILEKIT_ATTENTION_TILED_BF16_INL_H_
#endif

#include <cmath>
#include <limits>

#include <hwy/highway.h>

#include "tilekit/attention/attention-inl.h"
#include "tilekit/attention/plan.h"
#include "tilekit/base/bf16.h"
#include "tilekit/simd/bf16-inl.h"
#include "tilekit/simd/bf16_dot-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
#if TILEKIT_ATTN_TILED_BF16  // the targets of the paths that take it (attention-inl.h)

#define TILEKIT_ATTN_BF16_KEY(I)                                                         \
  if constexpr (kKeys > I) {                                                             \
    s##I##0 = Bf16DotBroadcast<kNative>(df, s##I##0, q0, kp[I]);                          \
    if constexpr (kRV > 1) s##I##1 = Bf16DotBroadcast<kNative>(df, s##I##1, q1, kp[I]);  \
  }
#define TILEKIT_ATTN_BF16_KEY_STORE(I)                              \
  if constexpr (kKeys > I) {                                        \
    hn::StoreU(s##I##0, df, st + I * R);                            \
    if constexpr (kRV > 1) hn::StoreU(s##I##1, df, st + I * R + L); \
  }

// st[i][0, kRV · L) = Σ_c k[i][c] · qt[c][0, kRV · L) for kKeys keys (bf16
// rows ks apart) and kRV row vectors (qt2 rows of R pairs).
template <size_t kKeys, size_t kRV, bool kNative, class DF>
HWY_INLINE void ScoresBf16Block(DF df, const uint16_t* HWY_RESTRICT qt2, size_t R, size_t d,
                                const uint16_t* HWY_RESTRICT k, size_t ks, float* HWY_RESTRICT st) {
  const hn::RebindToUnsigned<DF> du;
  const size_t L = hn::Lanes(df);
  auto s00 = hn::Zero(df), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
  auto s40 = s00, s41 = s00, s50 = s00, s51 = s00, s60 = s00, s61 = s00, s70 = s00, s71 = s00;
  const uint16_t* kp[8];
  for (size_t i = 0; i < kKeys; ++i) kp[i] = k + i * ks;
  const size_t pairs = d / 2;
  for (size_t c = 0; c < pairs; ++c) {
    const auto q0 = LoadBf16Pairs(du, qt2 + 2 * c * R);
    const auto q1 = kRV > 1 ? LoadBf16Pairs(du, qt2 + 2 * (c * R + L)) : q0;
    TILEKIT_ATTN_BF16_KEY(0) TILEKIT_ATTN_BF16_KEY(1) TILEKIT_ATTN_BF16_KEY(2) TILEKIT_ATTN_BF16_KEY(3)
    TILEKIT_ATTN_BF16_KEY(4) TILEKIT_ATTN_BF16_KEY(5) TILEKIT_ATTN_BF16_KEY(6) TILEKIT_ATTN_BF16_KEY(7)
    for (size_t i = 0; i < kKeys; ++i) kp[i] += 2;
  }
  if (d % 2) {  // the last column: the pair (k[d − 1], 0), not the element after the row
    uint16_t last[8][2];
    for (size_t i = 0; i < kKeys; ++i) {
      last[i][0] = kp[i][0];
      last[i][1] = 0;
      kp[i] = last[i];
    }
    const auto q0 = LoadBf16Pairs(du, qt2 + 2 * pairs * R);
    const auto q1 = kRV > 1 ? LoadBf16Pairs(du, qt2 + 2 * (pairs * R + L)) : q0;
    TILEKIT_ATTN_BF16_KEY(0) TILEKIT_ATTN_BF16_KEY(1) TILEKIT_ATTN_BF16_KEY(2) TILEKIT_ATTN_BF16_KEY(3)
    TILEKIT_ATTN_BF16_KEY(4) TILEKIT_ATTN_BF16_KEY(5) TILEKIT_ATTN_BF16_KEY(6) TILEKIT_ATTN_BF16_KEY(7)
  }
  TILEKIT_ATTN_BF16_KEY_STORE(0) TILEKIT_ATTN_BF16_KEY_STORE(1) TILEKIT_ATTN_BF16_KEY_STORE(2)
  TILEKIT_ATTN_BF16_KEY_STORE(3) TILEKIT_ATTN_BF16_KEY_STORE(4) TILEKIT_ATTN_BF16_KEY_STORE(5)
  TILEKIT_ATTN_BF16_KEY_STORE(6) TILEKIT_ATTN_BF16_KEY_STORE(7)
}
#undef TILEKIT_ATTN_BF16_KEY
#undef TILEKIT_ATTN_BF16_KEY_STORE

// st[j][0, R) for the n keys of a tile (bf16 rows ks apart, in place).
template <bool kNative, class DF>
HWY_INLINE void ScoresBf16Tile(DF df, const uint16_t* HWY_RESTRICT qt2, size_t R, size_t d,
                               const uint16_t* HWY_RESTRICT k, size_t ks, size_t n, float* HWY_RESTRICT st,
                               const NextTile& next) {
  const size_t L = hn::Lanes(df);
  size_t j = 0;
  for (; j + kAttnKeys <= n; j += kAttnKeys) {
    for (size_t i = 0; i < kAttnKeys; ++i) next.Fetch(j + i);
    size_t r = 0;
    for (; r + 2 * L <= R; r += 2 * L) {
      ScoresBf16Block<kAttnKeys, 2, kNative>(df, qt2 + 2 * r, R, d, k + j * ks, ks, st + j * R + r);
    }
    if (r < R) ScoresBf16Block<kAttnKeys, 1, kNative>(df, qt2 + 2 * r, R, d, k + j * ks, ks, st + j * R + r);
  }
  for (size_t i = j; i < kAttnTileKeys; ++i) next.Fetch(i);
  for (; j < n; ++j) {
    size_t r = 0;
    for (; r + 2 * L <= R; r += 2 * L) {
      ScoresBf16Block<1, 2, kNative>(df, qt2 + 2 * r, R, d, k + j * ks, ks, st + j * R + r);
    }
    if (r < R) ScoresBf16Block<1, 1, kNative>(df, qt2 + 2 * r, R, d, k + j * ks, ks, st + j * R + r);
  }
}

// p2[j / 2][0, R)[2] = P (st: the kept keys' p, −0 for the masked) rounded to
// bf16 in key pairs; an odd n's last pair padded with 0.
template <bool kNative, class DF>
HWY_INLINE void PackPBf16(DF df, const float* HWY_RESTRICT st, size_t R, size_t n, uint16_t* HWY_RESTRICT p2) {
  const hn::RebindToUnsigned<DF> du;
  const size_t L = hn::Lanes(df);
  for (size_t j = 0; j < n; j += 2) {
    for (size_t r = 0; r < R; r += L) {
      const auto even = hn::PromoteTo(du, ToBf16Bits<kNative>(df, hn::LoadU(df, st + j * R + r)));
      const auto odd_f = j + 1 < n ? hn::LoadU(df, st + (j + 1) * R + r) : hn::Zero(df);
      const auto odd = hn::PromoteTo(du, ToBf16Bits<kNative>(df, odd_f));
      StoreBf16Pairs(du, hn::Or(even, hn::ShiftLeft<16>(odd)), p2 + j * R + 2 * r);
    }
  }
}

// v2[j / 2][0, dvv)[2] = the V rows of keys j, j + 1 (bf16 rows vs apart)
// interleaved, dvv = the head-dim columns of whole vectors; an odd n's last
// pair padded with 0. Returns whether every value packed is finite.
template <class DF>
HWY_INLINE bool PackVBf16(DF df, const uint16_t* HWY_RESTRICT v, size_t vs, size_t n, size_t dvv,
                          uint16_t* HWY_RESTRICT v2) {
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint16_t, DF> du16;
  const size_t L = hn::Lanes(df);
  const auto exp_mask = hn::Set(du16, 0x7F80);
  auto bad = hn::FirstN(du16, 0);  // an all-ones exponent: Inf or NaN
  for (size_t j = 0; j < n; j += 2) {
    const uint16_t* even_row = v + j * vs;
    const uint16_t* odd_row = j + 1 < n ? even_row + vs : nullptr;
    for (size_t c = 0; c < dvv; c += L) {
      const auto e = hn::LoadU(du16, even_row + c);
      const auto o = odd_row ? hn::LoadU(du16, odd_row + c) : hn::Zero(du16);
      bad = hn::Or(bad, hn::Or(hn::Eq(hn::And(e, exp_mask), exp_mask), hn::Eq(hn::And(o, exp_mask), exp_mask)));
      const auto pairs = hn::Or(hn::PromoteTo(du, e), hn::ShiftLeft<16>(hn::PromoteTo(du, o)));
      StoreBf16Pairs(du, pairs, v2 + j * dvv + 2 * c);
    }
  }
  return hn::AllFalse(du16, bad);
}

#define TILEKIT_ATTN_BF16_PV_LOAD(I)                                                    \
  if constexpr (kMR > I) {                                                              \
    const auto va = hn::Set(df, alpha[I]);                                              \
    o##I##0 = hn::Mul(hn::LoadU(df, acc + I * dv), va);                                 \
    if constexpr (kNV > 1) o##I##1 = hn::Mul(hn::LoadU(df, acc + I * dv + L), va);     \
    if constexpr (kNV > 2) o##I##2 = hn::Mul(hn::LoadU(df, acc + I * dv + 2 * L), va); \
    if constexpr (kNV > 3) o##I##3 = hn::Mul(hn::LoadU(df, acc + I * dv + 3 * L), va); \
  }
#define TILEKIT_ATTN_BF16_PV_DOT(I)                                                      \
  if constexpr (kMR > I) {                                                               \
    const uint16_t* pp = p2 + 2 * (jp * R + I);                                          \
    o##I##0 = Bf16DotBroadcast<kNative>(df, o##I##0, v0, pp);                            \
    if constexpr (kNV > 1) o##I##1 = Bf16DotBroadcast<kNative>(df, o##I##1, v1, pp);     \
    if constexpr (kNV > 2) o##I##2 = Bf16DotBroadcast<kNative>(df, o##I##2, v2v, pp);    \
    if constexpr (kNV > 3) o##I##3 = Bf16DotBroadcast<kNative>(df, o##I##3, v3, pp);     \
  }
#define TILEKIT_ATTN_BF16_PV_STORE(I)                                     \
  if constexpr (kMR > I) {                                                \
    hn::StoreU(o##I##0, df, acc + I * dv);                                \
    if constexpr (kNV > 1) hn::StoreU(o##I##1, df, acc + I * dv + L);     \
    if constexpr (kNV > 2) hn::StoreU(o##I##2, df, acc + I * dv + 2 * L); \
    if constexpr (kNV > 3) hn::StoreU(o##I##3, df, acc + I * dv + 3 * L); \
  }

// acc[i][0, kNV · L) = acc[i] · alpha[i] + Σ_{key pairs jp < np} p2[jp][i] ·
// v2[jp] for kMR rows (acc rows dv apart; p2 at the block's first row, rows of
// R pairs; v2 at the block's first column, rows of dvv pairs).
template <size_t kMR, size_t kNV, bool kNative, class DF>
HWY_INLINE void PvBf16Block(DF df, float* HWY_RESTRICT acc, size_t dv, const float* HWY_RESTRICT alpha,
                            const uint16_t* HWY_RESTRICT p2, size_t R, const uint16_t* HWY_RESTRICT v2, size_t dvv,
                            size_t np) {
  const hn::RebindToUnsigned<DF> du;
  const size_t L = hn::Lanes(df);
  auto o00 = hn::Zero(df), o01 = o00, o02 = o00, o03 = o00, o10 = o00, o11 = o00, o12 = o00, o13 = o00;
  auto o20 = o00, o21 = o00, o22 = o00, o23 = o00, o30 = o00, o31 = o00, o32 = o00, o33 = o00;
  TILEKIT_ATTN_BF16_PV_LOAD(0) TILEKIT_ATTN_BF16_PV_LOAD(1) TILEKIT_ATTN_BF16_PV_LOAD(2) TILEKIT_ATTN_BF16_PV_LOAD(3)
  for (size_t jp = 0; jp < np; ++jp) {
    const uint16_t* row = v2 + 2 * jp * dvv;
    const auto v0 = LoadBf16Pairs(du, row);
    const auto v1 = kNV > 1 ? LoadBf16Pairs(du, row + 2 * L) : v0;
    const auto v2v = kNV > 2 ? LoadBf16Pairs(du, row + 4 * L) : v0;
    const auto v3 = kNV > 3 ? LoadBf16Pairs(du, row + 6 * L) : v0;
    TILEKIT_ATTN_BF16_PV_DOT(0) TILEKIT_ATTN_BF16_PV_DOT(1) TILEKIT_ATTN_BF16_PV_DOT(2) TILEKIT_ATTN_BF16_PV_DOT(3)
  }
  TILEKIT_ATTN_BF16_PV_STORE(0) TILEKIT_ATTN_BF16_PV_STORE(1) TILEKIT_ATTN_BF16_PV_STORE(2)
  TILEKIT_ATTN_BF16_PV_STORE(3)
}
#undef TILEKIT_ATTN_BF16_PV_LOAD
#undef TILEKIT_ATTN_BF16_PV_DOT
#undef TILEKIT_ATTN_BF16_PV_STORE

// P·V of kMR rows over the n keys of a tile: whole register tiles across the
// packed columns [0, dvv), single vectors, then the columns past them in fp32
// (p from st, V from the cache rows).
template <size_t kMR, bool kNative, class DF>
HWY_INLINE void PvBf16Rows(DF df, float* HWY_RESTRICT acc, size_t dv, const float* HWY_RESTRICT alpha,
                           const uint16_t* HWY_RESTRICT p2, const float* HWY_RESTRICT st, size_t R,
                           const uint16_t* HWY_RESTRICT v2, size_t dvv, const uint16_t* HWY_RESTRICT v, size_t vs,
                           size_t n) {
  const size_t L = hn::Lanes(df), np = (n + 1) / 2;
  size_t c = 0;
  for (; c + kAttnNV * L <= dvv; c += kAttnNV * L) {
    PvBf16Block<kMR, kAttnNV, kNative>(df, acc + c, dv, alpha, p2, R, v2 + 2 * c, dvv, np);
  }
  for (; c < dvv; c += L) PvBf16Block<kMR, 1, kNative>(df, acc + c, dv, alpha, p2, R, v2 + 2 * c, dvv, np);
  for (; c < dv; ++c) {
    for (size_t i = 0; i < kMR; ++i) {
      float x = acc[i * dv + c] * alpha[i];
      for (size_t j = 0; j < n; ++j) {
        const float p = st[j * R + i];
        if (!std::signbit(p)) x += p * KvToF32(v[j * vs + c]);  // −0: a masked key, its V unchecked here
      }
      acc[i * dv + c] = x;
    }
  }
}

// The bf16 tiled path over keys [j0, j1) for rows [t0, t1) × group (the
// contract of AttendTiled). ws holds qt2 ((d + 1) / 2 × R pairs), st
// (kAttnTileKeys × R), m, l, alpha, lo, hi (R each), p2 (kAttnTileKeys / 2 × R
// pairs) and v2 (kAttnTileKeys / 2 × dv pairs): AttnWorkspaceFloats.
template <bool kNative, class DF>
HWY_NOINLINE void AttendTiledBf16(DF df, const AttnShape& sh, const AttnSeq& sq, size_t kv_head, size_t t0,
                                  size_t t1, size_t j0, size_t j1, float* HWY_RESTRICT acc, float* HWY_RESTRICT m_out,
                                  float* HWY_RESTRICT l_out, float* HWY_RESTRICT ws) {
  const size_t L = hn::Lanes(df);
  const size_t G = sh.group, d = sh.d, dv = sh.dv, dvv = dv / L * L, d2 = (d + 1) / 2;
  const size_t rows = (t1 - t0) * G, R = (rows + L - 1) / L * L;
  uint16_t* HWY_RESTRICT qt2 = reinterpret_cast<uint16_t*>(ws);
  float* HWY_RESTRICT st = ws + d2 * R;
  float* HWY_RESTRICT m = st + kAttnTileKeys * R;
  float* HWY_RESTRICT l = m + R;
  float* HWY_RESTRICT alpha = l + R;
  float* HWY_RESTRICT lo = alpha + R;
  float* HWY_RESTRICT hi = lo + R;
  uint16_t* HWY_RESTRICT p2 = reinterpret_cast<uint16_t*>(hi + R);
  uint16_t* HWY_RESTRICT v2 = p2 + kAttnTileKeys * R;

  for (size_t r = 0; r < R; ++r) {
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.f;
    lo[r] = hi[r] = 0.f;  // padding rows keep no key
  }
  std::fill(qt2, qt2 + 2 * d2 * R, uint16_t{0});  // padding rows, and an odd d's last column's partner
  size_t lo_all = j1, hi_all = j0;
  for (size_t r = 0; r < rows; ++r) {
    const size_t t = t0 + r / G;
    const float* src = sq.q + t * sq.q_stride + (kv_head * G + r % G) * d;
    for (size_t c = 0; c < d; ++c) qt2[2 * (c / 2 * R + r) + c % 2] = f32_to_bf16(src[c] * sh.scale).bits;
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
  std::fill(acc, acc + rows * dv, 0.f);

  const AttnKv& kv = sq.kv;
  const size_t ks = kv.k_stride / sizeof(uint16_t), vs = kv.v_stride / sizeof(uint16_t);
  for (size_t a = lo_all, b; a < hi_all; a = b) {
    b = std::min(a + kAttnTileKeys, hi_all);
    const uint16_t *ktile, *vtile;
    TileAt(kv, kv_head, d, dv, a, &b, &ktile, &vtile);
    const size_t n = b - a;
    ScoresBf16Tile<kNative>(df, qt2, R, d, ktile, ks, n, st, NextTileAt<uint16_t>(kv, kv_head, d, dv, b, hi_all));
    SoftmaxTile(df, sh, sq, t0, rows, R, a, n, lo, hi, st, m, l, alpha);
    if (PackVBf16(df, vtile, vs, n, dvv, v2)) {
      PackPBf16<kNative>(df, st, R, n, p2);
      size_t r = 0;
      for (; r + kAttnMR <= rows; r += kAttnMR) {
        PvBf16Rows<kAttnMR, kNative>(df, acc + r * dv, dv, alpha + r, p2 + 2 * r, st + r, R, v2, dvv, vtile, vs, n);
      }
      for (; r < rows; ++r) {
        PvBf16Rows<1, kNative>(df, acc + r * dv, dv, alpha + r, p2 + 2 * r, st + r, R, v2, dvv, vtile, vs, n);
      }
    } else {  // an Inf or NaN in V: each row over its kept keys only, in fp32
      for (size_t r = 0; r < rows; ++r) {
        PvRows<1>(df, acc + r * dv, dv, alpha + r, st + r, R, vtile, vs, 0, 0);  // the rescale
        const size_t rl = std::max(a, static_cast<size_t>(lo[r])), rh = std::min(b, static_cast<size_t>(hi[r]));
        if (rl < rh) PvKept(df, acc + r * dv, dv, st + r, R, vtile, vs, rl - a, rh - a);
      }
    }
  }
  for (size_t r = 0; r < rows; ++r) {
    m_out[r] = m[r];
    l_out[r] = l[r];
  }
}

#endif  // TILEKIT_ATTN_TILED_BF16
}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_ATTENTION_TILED_BF16_INL_H_
