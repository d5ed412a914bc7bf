// What an attention call hands from the target-independent driver
// (attention-impl.h) to the per-target kernel (attention-inl.h): plain data,
// validated already. Included by per-target code: must not include kernels.h.
#ifndef TILEKIT_ATTENTION_PLAN_H_
#define TILEKIT_ATTENTION_PLAN_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

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

// Floats of kernel workspace for `rows` query rows. Row-by-row path: the
// scaled Q rows and one row of scores. Tiled path, with R = rows rounded up to
// whole vectors (at most kAttnMaxLanes more): Qᵀ (d × R), the scores of a tile
// (kAttnTileKeys × R), five per-row arrays (R each) and the packed K/V tile.
inline size_t AttnWorkspaceFloats(size_t rows, size_t d, size_t dv) {
  const size_t R = (rows + kAttnMaxLanes - 1) / kAttnMaxLanes * kAttnMaxLanes;
  const size_t by_row = rows * d + kAttnTileKeys + kAttnMaxLanes;
  const size_t tiled = R * (d + kAttnTileKeys + 5) + kAttnTileKeys * (d + dv);
  return std::max(by_row, tiled);
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_PLAN_H_
