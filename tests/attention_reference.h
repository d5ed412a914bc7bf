// fp64 reference of attention (softmax(mask(scale · Q Kᵀ)) V) and of
// attention_merge, each element with the error bound of the kernels' fp32
// arithmetic (unit roundoff u = 2^-24), derived per row:
//  - a logit s_j = scale · Σ_c q_c k_jc: |δs_j| <= (d + 2) u · scale Σ_c |q_c k_jc|
//    (+ the softcap: Tanh 4 ULP, its division and product, ~7 u |s|);
//  - p_j = exp(s_j − m): relative error δp <= max_j |δs_j| + 2 u |s_j − m| + 1 ULP (Exp) + 1 u;
//    the rescales exp(m_old − m_new) add the same once per tile (a tile is at
//    most tile_keys keys and never crosses a cache block), and the merge of the
//    key chunks (kAttnSplitKeys = 512 keys) once per chunk;
//  - o = Σ p_j v_j / Σ p_j: with n the kept keys, sums of n terms add n u relative
//    to Σ p_j |v_j| and Σ p_j; so |δo_c| <= (δp_tot + (n + 4) u) (Σ p_j |v_jc| / Σ p_j + |o_c|);
//  - lse = m + log Σ p_j: the max logit's error, the sum's relative error (log
//    turns it into an absolute one), Log's ULP and the addition's rounding.
// The bounds hold for any order of the sums, so they cover every kernel path.
// bf16 K/V: the caller passes the rounded K/V the kernel reads (the rounding is
// the storage format's, not the kernel's); a bf16 output adds u_bf16 |o_c|.
// The bf16 kernels of bf16 K/V (AttentionProblem::token_kernel, per query token):
//  - kTiledBf16 (the tiled path on x86 BF16 paths): q · scale rounded to bf16 is
//    what the kernel multiplies, so the reference rounds it the same way (the
//    fp32 product, then to nearest even) and the logit's bound is the fp32
//    one on those values with scale 1 (vdpbf16ps: exact products, one
//    rounding each); P rounded to bf16 for P·V adds 2^-8 Σ p_j |v_jc| / Σ p_j
//    (bf16's unit roundoff: 8 significant bits, so up to 2^-8 relative per p,
//    not 2^-9; the sum l is of the unrounded p);
//  - kSplitBf16 (the decode group with the bf16 dot): q' = fl(q · scale) split
//    into bf16 hi + lo: |q' − hi| <= 2^-8 |q'|, so |q' − hi − lo| <= 2^-16 |q'|
//    and |hi| + |lo| <= (1 + 2^-7) |q'|; 2d exact products summed: a logit's
//    bound is ((d + 2) u' (1 + 2^-7) + 2^-16) scale Σ |q k|,
//    u' the dot's rounding (u; BFDOT rounds to odd: 2u). The (d + 2) holds for
//    any vector length: 4 roundings per 2L columns, log2 L for the lanes' sum,
//    one per column past the last whole 2L.
//  The flushes of denormals (vdpbf16ps, BFDOT) add at most 2^-120 per logit
//  and per output here (|q|, |k|, |v| <= 2 and at most 2^14 terms), counted
//  in an absolute term.
// kMatrixBf16 (the matrix units: bf16 K/V on amx, neon_bf16, sve_bf16;
// attention/tiled_brgemm-inl.h) runs the rows of tiled tasks with
// q̃ = bf16(fl(q · scale)) and p rounded to bf16 before P·V. For those rows:
//  - the reference takes q̃ itself (the same fp32 product and rounding, so the
//    same values) with the scale already in it: the logit bound is the one
//    above over Σ_c |q̃_c k_jc|, the product's rounding gone; plus AMX's flush
//    of bf16 denormal inputs and fp32 denormal results to zero, at most
//    2^-126 (|q̃_c| + |k_jc| + 1) per term;
//  - o = Σ p̃_j v_j / Σ p_j with |p̃_j − p_j| <= u_bf16 p_j (u_bf16 = 2^-8,
//    round to nearest even with 8 significant bits; a p below 2^-126 may be
//    flushed: 2^-126 more), so |δo_c| gains u_bf16 Σ p_j |v_jc| / Σ p_j +
//    n 2^-126 max|v_jc| / Σ p_j; the P·V sums stay fp32 in any order (the
//    (n + 4) u term above).
// Which rows those are follows the driver's split (attention/plan.h:
// AttnTokensPerTask, AttnTiledTask), applied per call: token_kernel, or
// AttentionProblem::matrix where a caller does not pass one.
// Used by tests/attention_test.cc and tests/fuzz/attention_fuzz.cc.
#ifndef TILEKIT_TESTS_ATTENTION_REFERENCE_H_
#define TILEKIT_TESTS_ATTENTION_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "tilekit/attention/plan.h"

namespace tilekit {
namespace testing {

// One attention call in plain fp32 arrays: Q [t][hq][d] (token stride q_stride),
// K [s][hkv][d], V [s][hkv][dv], an optional additive mask [t][s] (ld mask_ld).
struct AttentionProblem {
  size_t t = 0, s = 0, hq = 0, hkv = 0, d = 0, dv = 0;
  const float *q = nullptr, *k = nullptr, *v = nullptr;
  size_t q_stride = 0, k_stride = 0, v_stride = 0;
  double scale = 0;  // 0: 1 / sqrt(d)
  bool causal = false;
  size_t window = 0;
  float softcap = 0.f;
  const float* mask = nullptr;
  size_t mask_ld = 0;
  bool out_bf16 = false;
  size_t tile_keys = 64;  // keys per tile: min(kAttnTileKeys, block_tokens) on a cache
  // Nonzero: also the bounds of a run with tiles this long (bound_cache), for
  // the same problem read from a cache of smaller blocks: more tiles, more
  // rescales of the running sum (the sums themselves are computed once).
  size_t cache_tile_keys = 0;
  // Per query token (null: every token kFp32): which arithmetic its scores
  // and P·V ran (see the top of the file), and the bf16 dot's unit roundoff.
  const unsigned char* token_kernel = nullptr;
  double dot_u = 1.0 / (1 << 24);
  // Without token_kernel: the call ran on a path whose tiled tasks use the
  // matrix units with these K/V (detail::AttnMatrixPath(path, kv_bf16)), and
  // no other bf16 kernel: those tasks' tokens are kMatrixBf16.
  bool matrix = false;
};
enum : unsigned char { kFp32 = 0, kTiledBf16 = 1, kSplitBf16 = 2, kMatrixBf16 = 3 };

// fp32 x rounded to bf16 (nearest even) and back.
inline float RoundToBf16(float x) {
  if (x != x) return x;
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  std::memcpy(&x, &u, 4);
  return x;
}

// Per query token: whether its rows ran on the matrix units (a tiled task of
// a call with AttentionProblem::matrix).
inline std::vector<bool> MatrixTokens(const AttentionProblem& c) {
  std::vector<bool> on(c.t, false);
  if (!c.matrix) return on;
  detail::AttnShape sh;
  sh.group = c.hq / c.hkv;
  detail::AttnSeq sq;
  sq.mask = c.mask;
  const size_t per_task = detail::AttnTokensPerTask(sh.group);
  for (size_t t0 = 0; t0 < c.t; t0 += per_task) {
    const size_t t1 = std::min(c.t, t0 + per_task);
    if (!detail::AttnTiledTask(sh, sq, t1 - t0)) continue;
    for (size_t t = t0; t < t1; ++t) on[t] = true;
  }
  return on;
}

// Packed [t][hq][dv] outputs and [t][hq] lse, each with its bound.
struct AttentionReference {
  std::vector<double> o, bound, lse, lse_bound;
  std::vector<double> bound_cache;  // with cache_tile_keys keys per tile (when set)
};

inline AttentionReference AttentionReference64(const AttentionProblem& c) {
  constexpr double kU = 1.0 / (1 << 24), kBf16U = 1.0 / 256;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  AttentionReference ref;
  ref.o.assign(c.t * c.hq * c.dv, 0.0);
  ref.bound.assign(ref.o.size(), 0.0);
  if (c.cache_tile_keys) ref.bound_cache.assign(ref.o.size(), 0.0);
  ref.lse.assign(c.t * c.hq, -INFINITY);
  ref.lse_bound.assign(c.t * c.hq, 0.0);
  const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.d));
  constexpr double kFlush = 0x1p-120;
  const size_t group = c.hq / c.hkv;
  std::vector<double> s(c.s), p_row(c.s), qt(c.d);
  std::vector<bool> kept(c.s);
  const std::vector<bool> matrix = c.token_kernel ? std::vector<bool>(c.t, false) : MatrixTokens(c);
  // The kernel's fp32 scale (attention-impl.h: attn_shape), for q̃.
  const float scale32 = c.scale > 0 ? static_cast<float>(c.scale) : 1.f / std::sqrt(static_cast<float>(c.d));
  constexpr double kTiny = 1.1754943508222875e-38;  // 2^-126: AMX flushes below it
  for (size_t t = 0; t < c.t; ++t) {
    const size_t pos = c.s - c.t + t;
    const unsigned char kernel = c.token_kernel ? c.token_kernel[t] : static_cast<unsigned char>(matrix[t] ? kMatrixBf16 : kFp32);
    const bool q_bf16 = kernel == kTiledBf16 || kernel == kMatrixBf16;  // the kernel multiplies q̃
    for (size_t h = 0; h < c.hq; ++h) {
      const size_t hk = h / group;
      double m = -INFINITY, ds = 0;
      size_t n = 0;
      const float* qrow = c.q + t * c.q_stride + h * c.d;
      for (size_t e = 0; e < c.d; ++e) qt[e] = q_bf16 ? RoundToBf16(qrow[e] * scale32) : qrow[e];
      const double qscale = q_bf16 ? 1.0 : scale;
      for (size_t j = 0; j < c.s; ++j) {
        kept[j] = !((c.causal && j > pos) || (c.window && pos - j >= c.window && pos >= j));
        if (c.window && j > pos && !c.causal) kept[j] = true;
        if (!kept[j]) continue;
        double dot = 0, dabs = 0, flush = 0;
        for (size_t e = 0; e < c.d; ++e) {
          const double a = qt[e], b = c.k[j * c.k_stride + hk * c.d + e];
          dot += a * b;
          dabs += std::fabs(a * b);
          flush += kTiny * (std::fabs(a) + std::fabs(b) + 1);
        }
        double sj = dot * qscale;
        double err = (c.d + 2) * kU * dabs * qscale;
        if (kernel == kMatrixBf16) err = c.d * kU * dabs + flush;
        if (kernel == kTiledBf16) err += kFlush;
        if (kernel == kSplitBf16) err = ((c.d + 2) * c.dot_u * (1 + 2 * kBf16U) + kBf16U * kBf16U) * dabs * scale + kFlush;
        if (c.softcap > 0) {
          sj = c.softcap * std::tanh(sj / c.softcap);
          err += 7 * kU * std::fabs(sj);
        }
        if (c.mask) {
          const float mk = c.mask[t * c.mask_ld + j];
          if (mk == -kInf) {
            kept[j] = false;
            continue;
          }
          sj += mk;
          err += kU * std::fabs(sj);
        }
        s[j] = sj;
        ds = std::max(ds, err);
        m = std::max(m, sj);
        ++n;
      }
      if (n == 0) continue;  // zeros, lse -inf
      // p_j = exp(s_j - m), once per key (not once per output column: under
      // emulation exp is most of the reference's time).
      double l = 0, spread = 0;
      for (size_t j = 0; j < c.s; ++j) {
        if (!kept[j]) continue;
        p_row[j] = std::exp(s[j] - m);
        l += p_row[j];
        spread = std::max(spread, m - s[j]);
      }
      const size_t row = t * c.hq + h;
      ref.lse[row] = m + std::log(l);
      // Each tile rescales the running sum once: the error grows with tiles.
      auto rescale_error = [&](size_t tile_keys) {
        const size_t tiles = c.s / tile_keys + 2 + c.s / 512;
        return (2 * ds + 2 * kU * spread + 3 * kU) * tiles;
      };
      const double dp = rescale_error(c.tile_keys);
      const double dp_cache = c.cache_tile_keys ? rescale_error(c.cache_tile_keys) : 0.0;
      ref.lse_bound[row] = ds + dp + (n + 4) * kU + 2 * kU * (std::fabs(m) + std::fabs(ref.lse[row]));
      for (size_t e = 0; e < c.dv; ++e) {
        double num = 0, abs_num = 0, v_max = 0;
        for (size_t j = 0; j < c.s; ++j) {
          if (!kept[j]) continue;
          const double p = p_row[j], vv = c.v[j * c.v_stride + hk * c.dv + e];
          num += p * vv;
          abs_num += p * std::fabs(vv);
          v_max = std::max(v_max, std::fabs(vv));
        }
        const double o = num / l;
        ref.o[row * c.dv + e] = o;
        double rounding = c.out_bf16 ? std::fabs(o) * kBf16U * (1 + 2 * kU) + 1e-30 : 0.0;
        if (kernel == kTiledBf16) rounding += kBf16U * abs_num / l + kFlush;  // p rounded to bf16
        if (kernel == kMatrixBf16) rounding += kBf16U * abs_num / l + n * kTiny * v_max / l;
        ref.bound[row * c.dv + e] = (dp + (n + 4) * kU) * (abs_num / l + std::fabs(o)) + rounding;
        if (c.cache_tile_keys) {
          ref.bound_cache[row * c.dv + e] = (dp_cache + (n + 4) * kU) * (abs_num / l + std::fabs(o)) + rounding;
        }
      }
    }
  }
  return ref;
}

// attention_merge of one row: out = (e^la · a + e^lb · b) / (e^la + e^lb),
// lse = log(e^la + e^lb), zeros and −inf when both are −inf. fp32 arithmetic:
// the weights exp(l − max) (2 u |l − max| from the subtraction's rounding
// amplified by exp, + 1 ULP), a sum of two, a product, a reciprocal and a
// product per element.
struct MergeRow {
  std::vector<double> o, bound;
  double lse = -INFINITY, lse_bound = 0;
};

inline MergeRow MergeReference64(const float* a, float la, const float* b, float lb, size_t dv) {
  constexpr double kU = 1.0 / (1 << 24);
  MergeRow r;
  r.o.assign(dv, 0.0);
  r.bound.assign(dv, 0.0);
  const double mx = std::max<double>(la, lb);
  if (mx == -INFINITY) return r;
  const double wa = la == -INFINITY ? 0 : std::exp(la - mx), wb = lb == -INFINITY ? 0 : std::exp(lb - mx);
  const double sum = wa + wb;
  const double spread = std::max(wa ? mx - la : 0.0, wb ? mx - lb : 0.0);
  const double dw = 2 * kU * spread + 3 * kU;
  r.lse = mx + std::log(sum);
  r.lse_bound = dw + 2 * kU + 2 * kU * (std::fabs(mx) + std::fabs(r.lse));
  for (size_t c = 0; c < dv; ++c) {
    const double o = (wa * a[c] + wb * b[c]) / sum;
    r.o[c] = o;
    r.bound[c] = (2 * dw + 6 * kU) * ((wa * std::fabs(a[c]) + wb * std::fabs(b[c])) / sum + std::fabs(o));
  }
  return r;
}

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_ATTENTION_REFERENCE_H_
