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

// out[i] = q · k_i for n keys ks elements apart. Four keys at a time: four
// independent FMA chains, and the Q vector loaded once for all four.
template <class DF, typename KT>
HWY_INLINE void AttnScores(DF df, const float* HWY_RESTRICT q, size_t d, const KT* HWY_RESTRICT k, size_t ks,
                           size_t n, float* HWY_RESTRICT out) {
  const size_t L = hn::Lanes(df);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
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

// The rows of tokens [t0, t1) against keys [a, b) of one tile: K rows ks, V
// rows vs elements apart from key a (fp32 or bf16).
template <class DF, typename T>
HWY_INLINE void AttendTile(DF df, const AttnShape& sh, const AttnSeq& sq, size_t t0, size_t t1, size_t a, size_t b,
                           const T* HWY_RESTRICT ktile, size_t ks, const T* HWY_RESTRICT vtile, size_t vs,
                           const float* HWY_RESTRICT qs, float* HWY_RESTRICT acc, float* HWY_RESTRICT m,
                           float* HWY_RESTRICT l, float* HWY_RESTRICT sc) {
  const size_t L = hn::Lanes(df);
  const size_t G = sh.group, d = sh.d, dv = sh.dv;
  const float kNegInf = -std::numeric_limits<float>::infinity();
  size_t keep[kAttnTileKeys];
  float p[kAttnTileKeys];
  for (size_t t = t0; t < t1; ++t) {
    size_t lo, hi;
    AttnKeyRange(sh, sq, t, &lo, &hi);
    lo = std::max(lo, a);
    hi = std::min(hi, b);
    if (lo >= hi) continue;
    const size_t n = hi - lo, n_padded = (n + L - 1) / L * L;
    const float* mask = sq.mask ? sq.mask + t * sq.mask_ld + lo : nullptr;
    for (size_t g = 0; g < G; ++g) {
      const size_t r = (t - t0) * G + g;
      AttnScores(df, qs + r * d, d, ktile + (lo - a) * ks, ks, n, sc);
      for (size_t i = n; i < n_padded; ++i) sc[i] = 0.f;
      if (sh.softcap > 0.f) {
        const auto cap = hn::Set(df, sh.softcap);
        for (size_t i = 0; i < n_padded; i += L) {
          hn::StoreU(hn::Mul(cap, hn::Tanh(df, hn::Div(hn::LoadU(df, sc + i), cap))), df, sc + i);
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
      if (nan) {
        l[r] = std::numeric_limits<float>::quiet_NaN();
        continue;
      }
      const float m_new = std::max(m[r], mx);
      if (kept == 0 || m_new == kNegInf) continue;
      const float alpha = m[r] == kNegInf ? 0.f : hn::GetLane(hn::Exp(df, hn::Set(df, m[r] - m_new)));
      const auto vm = hn::Set(df, m_new);
      for (size_t i = n; i < n_padded; ++i) sc[i] = kNegInf;
      for (size_t i = 0; i < n_padded; i += L) {
        hn::StoreU(hn::Exp(df, hn::Sub(hn::LoadU(df, sc + i), vm)), df, sc + i);
      }
      float sum = 0.f;
      for (size_t i = 0; i < kept; ++i) {
        p[i] = sc[keep[i]];
        sum += p[i];
      }
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
      AttnAccumulate(df, arow, dv, alpha, p, keep, kept, vtile + (lo - a) * vs, vs);
    }
  }
}

template <typename KT>
void AttendRowsT(const AttnShape& sh, const AttnSeq& sq, size_t kv_head, size_t t0, size_t t1, size_t j0, size_t j1,
                 float* HWY_RESTRICT acc, float* HWY_RESTRICT m, float* HWY_RESTRICT l, float* HWY_RESTRICT ws) {
  const hn::ScalableTag<float> df;
  const size_t L = hn::Lanes(df);
  const size_t G = sh.group, d = sh.d, dv = sh.dv;
  const size_t rows = (t1 - t0) * G;
  const float kNegInf = -std::numeric_limits<float>::infinity();
  float* HWY_RESTRICT qs = ws;               // rows × d, scaled
  float* HWY_RESTRICT sc = ws + rows * d;    // one row of scores, padded to whole vectors
  float* HWY_RESTRICT kpack = sc + kAttnTileKeys + kAttnMaxLanes;  // a packed fp32 tile
  float* HWY_RESTRICT vpack = kpack + kAttnTileKeys * d;
  const bool pack = rows >= kAttnPackRows;

  const auto vscale = hn::Set(df, sh.scale);
  for (size_t t = t0; t < t1; ++t) {
    for (size_t g = 0; g < G; ++g) {
      const float* src = sq.q + t * sq.q_stride + (kv_head * G + g) * d;
      float* dst = qs + ((t - t0) * G + g) * d;
      size_t c = 0;
      for (; c + L <= d; c += L) hn::StoreU(hn::Mul(hn::LoadU(df, src + c), vscale), df, dst + c);
      for (; c < d; ++c) dst[c] = src[c] * sh.scale;
    }
  }
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
  for (size_t a = lo_all, b; a < hi_all; a = b) {
    b = std::min(a + kAttnTileKeys, hi_all);
    const unsigned char *kb, *vb;
    if (kv.blocks) {
      b = std::min(b, (a / kv.block_tokens + 1) * kv.block_tokens);
      const size_t block = kv.blocks[a / kv.block_tokens], slot = a % kv.block_tokens;
      kb = kv.k + block * kv.block_stride + slot * kv.k_stride;
      vb = kv.v + block * kv.block_stride + slot * kv.v_stride;
    } else {
      kb = kv.k + a * kv.k_stride;
      vb = kv.v + a * kv.v_stride;
    }
    const KT* ktile = reinterpret_cast<const KT*>(kb) + kv_head * d;  // key a of this head
    const KT* vtile = reinterpret_cast<const KT*>(vb) + kv_head * dv;
    const size_t ks = kv.k_stride / sizeof(KT), vs = kv.v_stride / sizeof(KT);

    if (pack) {
      // Many rows share the tile: widen it once into contiguous fp32 rows (a
      // cache or fused-QKV token stride of 2-4 KiB puts every K row of a
      // tile in the same L1 sets; packed, they stream).
      for (size_t j = 0; j < b - a; ++j) {
        WidenRow(df, ktile + j * ks, d, kpack + j * d);
        WidenRow(df, vtile + j * vs, dv, vpack + j * dv);
      }
      AttendTile(df, sh, sq, t0, t1, a, b, kpack, d, vpack, dv, qs, acc, m, l, sc);
    } else {
      AttendTile(df, sh, sq, t0, t1, a, b, ktile, ks, vtile, vs, qs, acc, m, l, sc);
    }
  }
}

inline void AttendRows(const AttnShape& sh, const AttnSeq& sq, size_t kv_head, size_t t0, size_t t1, size_t j0,
                       size_t j1, float* acc, float* m, float* l, float* ws) {
  if (sq.kv.bf16) {
    AttendRowsT<uint16_t>(sh, sq, kv_head, t0, t1, j0, j1, acc, m, l, ws);
  } else {
    AttendRowsT<float>(sh, sq, kv_head, t0, t1, j0, j1, acc, m, l, ws);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_ATTENTION_ATTENTION_INL_H_
