// What an attention call hands from the target-independent driver
// (attention-impl.h) to the per-target kernel (attention-inl.h): plain data,
// validated already. Included by per-target code: must not include kernels.h.
#ifndef TILEKIT_ATTENTION_PLAN_H_
#define TILEKIT_ATTENTION_PLAN_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "tilekit/cpu/isa.h"

namespace tilekit {
namespace detail {

// Keys per tile: 64 keys × d = 128 of fp32 K and V is 64 KiB, the tile every
// row of a task re-reads, held in L1/L2 while the rows pass over it.
constexpr size_t kAttnTileKeys = 64;
// The widest vector a target has (SVE 2048 bits): padding of the score row.
constexpr size_t kAttnMaxLanes = 64;

// The K/V rows of one sequence. Token j, KV head h:
//   plain: k + j * k_stride                                      + h * d elements
//   paged: k + blocks[j / block_tokens] * block_stride + (j % block_tokens) * k_stride + h * d
// (strides in bytes; v likewise with dv). A tile never crosses a block.
struct AttnKv {
  const unsigned char* k = nullptr;
  const unsigned char* v = nullptr;
  size_t k_stride = 0, v_stride = 0;
  const uint32_t* blocks = nullptr;  // null: plain
  size_t block_tokens = 0;
  size_t block_stride = 0;
  bool bf16 = false;
};

// One sequence: its queries (fp32, token stride in elements), key count, K/V
// and optional additive mask [t][s].
struct AttnSeq {
  const float* q = nullptr;
  size_t q_stride = 0;
  size_t t = 0, s = 0;
  AttnKv kv;
  const float* mask = nullptr;
  size_t mask_ld = 0;
};

struct AttnShape {
  size_t hq = 0, hkv = 0, group = 0, d = 0, dv = 0;
  float scale = 1.f, softcap = 0.f;
  bool causal = false;
  size_t window = 0;
  Isa isa = Isa::kScalar;  // the path of the call (the driver reads it once)
};

// The keys query token t of a sequence sees, [*lo, *hi) within [0, s): its
// position is s − t_count + t (bottom-right aligned).
inline void AttnKeyRange(const AttnShape& sh, const AttnSeq& sq, size_t t, size_t* lo, size_t* hi) {
  const size_t pos = sq.s - sq.t + t;  // callers ensure t_count <= s when a mask needs positions
  *lo = 0;
  *hi = sq.s;
  if (sh.causal) *hi = std::min(sq.s, pos + 1);
  if (sh.window && pos + 1 > sh.window) *lo = pos + 1 - sh.window;
}

// From this many rows per task the tiled path runs (rows along the vector
// lanes, the K/V tile widened once into contiguous fp32 rows); fewer rows
// (decode) take the row-by-row path, reading the tile in place.
constexpr size_t kAttnPackRows = 8;

// Groups of up to this many query heads per KV head: one query token without
// an additive mask (decode) takes the row-by-row path whatever its group, with
// the group scored as one register tile and every KV head in one task. Taking
// the tiled path instead (groups of 8: Llama 3, TinyLlama), a task walked one
// KV head over its keys, 256-512 bytes of each token's Hkv · d row, and the
// other heads' tasks read the same cache lines again later.
constexpr size_t kAttnGroupMax = 16;
inline bool AttnDecodeGroup(const AttnShape& sh, const AttnSeq& sq, size_t tokens) {
  return tokens == 1 && !sq.mask && sh.group <= kAttnGroupMax;
}
// Whether the tiled path runs on the matrix units (tiled_brgemm-inl.h): bf16
// K/V on the paths with bf16 tile products (AMX, BFMMLA). Q is rounded to bf16
// there, and the probabilities before P·V.
inline bool AttnMatrixPath(Isa isa, bool kv_bf16) {
  return kv_bf16 && (isa == Isa::kAmx || isa == Isa::kNeonBf16 || isa == Isa::kSveBf16);
}

// The matrix flow's workspace (tiled_brgemm-inl.h) for `rows` query rows,
// given its panel width nr (query rows per panel of Qᵀ, value columns per
// panel of V) and the k granularity of its product: offsets in floats, each
// part 64-byte aligned.
struct AttnMatrixWs {
  size_t R = 0, dp = 0, dvp = 0;  // rows to nr, d to k_align, dv to nr
  size_t qpanels = 0;  // bf16 Qᵀ panels, R × dp
  size_t st = 0;       // fp32 scores of a tile, kAttnTileKeys × R (key-major)
  size_t m = 0, l = 0, alpha = 0, lo = 0, hi = 0;  // fp32, R each
  size_t kop = 0;      // bf16 K as the product's A operand, kAttnTileKeys × dp
  size_t pt = 0;       // bf16 P key-major (as st), kAttnTileKeys × R
  size_t p = 0;        // bf16 P rows, R × kAttnTileKeys
  size_t pop = 0;      // bf16 P as the product's A operand (BFMMLA row pairs)
  size_t vpanels = 0;  // bf16 V panels, kAttnTileKeys × dvp
  size_t o = 0;        // fp32 output rows, R × dvp
  size_t special = 0;  // uint32 keys whose V row is not finite, kAttnTileKeys
  size_t total = 0;
};
inline AttnMatrixWs AttnMatrixLayout(size_t rows, size_t d, size_t dv, size_t nr, size_t k_align) {
  const auto up = [](size_t x, size_t m) { return (x + m - 1) / m * m; };
  AttnMatrixWs w;
  w.R = up(rows, nr);
  w.dp = up(d, k_align);
  w.dvp = up(dv, nr);
  size_t at = 0;
  const auto take = [&](size_t floats) {
    const size_t here = at;
    at += up(floats, 16);
    return here;
  };
  w.qpanels = take(w.R * w.dp / 2);
  w.st = take(kAttnTileKeys * w.R);
  w.m = take(w.R);
  w.l = take(w.R);
  w.alpha = take(w.R);
  w.lo = take(w.R);
  w.hi = take(w.R);
  w.kop = take(kAttnTileKeys * w.dp / 2);
  w.pt = take(w.R * kAttnTileKeys / 2);
  w.p = take(w.R * kAttnTileKeys / 2);
  w.pop = take(w.R * kAttnTileKeys / 2);
  w.vpanels = take(kAttnTileKeys * w.dvp / 2);
  w.o = take(w.R * w.dvp);
  w.special = take(kAttnTileKeys);
  w.total = at;
  return w;
}
// The widest panel (BFMMLA on 2048-bit SVE: 128 columns) and coarsest k (AMX: 32).
constexpr size_t kAttnMatrixMaxNr = 2 * kAttnMaxLanes, kAttnMatrixMaxKAlign = 32;

// Whether a task of `tokens` query tokens (× the group's q-heads) takes the
// tiled path; otherwise the row-by-row one.
inline bool AttnTiledTask(const AttnShape& sh, const AttnSeq& sq, size_t tokens) {
  return tokens * sh.group >= kAttnPackRows && !AttnDecodeGroup(sh, sq, tokens);
}

// Query rows per task: a block of tokens × the q-heads of one KV head. Each
// task widens every K/V tile it reads once (from L3 or memory when the head's
// K/V exceed L2: 1 MiB at S = 1024, d = 128, fp32), so the rows per task are
// what that read is amortised over: at 32 rows the tile copy took a third of
// an L = 1024 prefill; 128 rows keep Qᵀ (64 KiB at d = 128) and the scores of
// a tile (32 KiB) in L2. The tasks of a sequence start at multiples of
// AttnTokensPerTask tokens.
constexpr size_t kAttnRowsPerTask = 128;
inline size_t AttnTokensPerTask(size_t group) { return std::max<size_t>(1, kAttnRowsPerTask / group); }

// What a path's CPU lets the kernel do with bf16 K/V (the driver picks it
// once per call from the path):
//  - dot: score bf16 K in place with the bf16 pair dot product
//    (simd/bf16_dot-inl.h: vdpbf16ps, BFDOT), the decode group's Q split into
//    bf16 hi + lo parts (attention-inl.h, GroupScoresBlockDot);
//  - tiled: the tiled path in bf16 (attention/tiled_bf16-inl.h): Q · scale
//    and P rounded to bf16, both products by vdpbf16ps. x86 only: on Arm the
//    BF16 paths' prefill is the BFMMLA kernel's to take.
// TILEKIT_ATTN_BF16_DOT (read once) = 1 switches both on, 0 off; unset, x86
// has them off and Arm the decode dot on. On
// XEON-NOAMX a vdpbf16ps retired at ~0.45 the rate of an FMA (0.9 of its
// multiply-adds), and against main's fp32-widening kernels the bf16 tiled
// prefill ran 0.5-0.63x and the split decode (two dot products per K pair)
// 0.75x (docs/performance-history.md, "Attention: bf16 dot products"). The
// Arm BF16 paths score decode groups with BFDOT by default: unmeasured (no
// Arm hardware here), tested under qemu.
// -1: unset, 0: off, 1: on.
inline int AttnBf16DotSwitch() {
  static const int on = [] {
    const char* env = std::getenv("TILEKIT_ATTN_BF16_DOT");
    if (!env || !*env) return -1;
    return std::strcmp(env, "1") == 0 ? 1 : 0;
  }();
  return on;
}
struct AttnBf16 {
  bool dot = false;
  bool tiled = false;
};
inline AttnBf16 AttnBf16Of(Isa isa) {
  AttnBf16 b;
  const bool x86 = isa == Isa::kAvx512Bf16 || isa == Isa::kAmx;
  // FEAT_BF16 and AVX512-BF16 bring the dot with the conversion.
  const int on = AttnBf16DotSwitch();
  b.dot = cpu::isa_converts_bf16(isa) && (on == 1 || (on == -1 && !x86));
  b.tiled = x86 && on == 1;
  return b;
}

// Floats of kernel workspace for `rows` query rows. Row-by-row path: the
// scaled Q rows and one row of scores. Tiled path, with R = rows rounded up to
// whole vectors (at most kAttnMaxLanes more): Qᵀ (d × R), the scores of a tile
// (kAttnTileKeys × R), five per-row arrays (R each) and the packed K/V tile.
// The bf16 tiled path: Qᵀ in bf16 pairs ((d + 1) / 2 × R floats' worth), the
// scores, the five arrays, P in bf16 pairs (kAttnTileKeys / 2 × R) and the V
// tile in bf16 pairs (kAttnTileKeys / 2 × dv); the matrix flow's
// (AttnMatrixLayout) at the widest panel. The row-by-row path with the
// bf16 dot: Q split into bf16 hi + lo parts, d floats' worth per row more.
inline size_t AttnWorkspaceFloats(size_t rows, size_t d, size_t dv) {
  const size_t R = (rows + kAttnMaxLanes - 1) / kAttnMaxLanes * kAttnMaxLanes;
  const size_t by_row = rows * 2 * (d + 1) + kAttnTileKeys + kAttnMaxLanes;
  const size_t tiled = R * (d + kAttnTileKeys + 5) + kAttnTileKeys * (d + dv);
  const size_t tiled_bf16 = R * ((d + 1) / 2 + kAttnTileKeys + 5 + kAttnTileKeys / 2) + kAttnTileKeys / 2 * dv;
  const size_t matrix = AttnMatrixLayout(rows, d, dv, kAttnMatrixMaxNr, kAttnMatrixMaxKAlign).total;
  return std::max({by_row, tiled, tiled_bf16, matrix});
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_PLAN_H_
