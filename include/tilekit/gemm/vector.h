// The vector kernel's record: the portable register-tile GEMM (Highway, every
// path; gemm/loops-inl.h, microkernel-inl.h, gemv-inl.h), fp32 or bf16
// weights. It takes every fp32 and bf16 weight no earlier record took.
//
// Layout (PanelKind::kVector): panels of nr = 2·lanes columns, K rows each:
//   fp32: float[K][nr]      element (k, c) at panel + k·nr + c
//   bf16: uint32[K][lanes]  lane l holds column l (low half) and column
//                           lanes + l (high half): widening is one shift and
//                           one mask, no shuffles
#ifndef TILEKIT_GEMM_VECTOR_H_
#define TILEKIT_GEMM_VECTOR_H_

#include <algorithm>
#include <cstddef>

#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/cpu/features.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"

namespace tilekit {
namespace detail {

// fp32 lanes of the path's vectors (the Highway target it runs).
inline size_t vector_lanes(Isa isa) { return TILEKIT_DISPATCH_ON(isa, GemmPanelLanes)(); }

inline bool any_path(Isa) { return true; }

inline bool vector_layout(Isa isa, WeightType type, const PackShape&, PanelLayout* l) {
  if (type != WeightType::kF32 && type != WeightType::kBf16) return false;
  l->kind = PanelKind::kVector;
  l->lanes = static_cast<uint32_t>(vector_lanes(isa));
  l->nr = 2 * l->lanes;
  l->type = type;
  return true;
}

inline size_t vector_offset(const PanelLayout& l, size_t k, size_t c) {
  // bf16: 32-bit lane (c mod lanes) holds column c in its low half when
  // c < lanes, in its high half otherwise.
  return l.type == WeightType::kF32 ? k * l.nr + c : k * l.nr + 2 * (c % l.lanes) + (c >= l.lanes);
}

inline size_t vector_mr(Isa isa) { return TILEKIT_DISPATCH_ON(isa, GemmMR)(); }

// A is copied (and widened from bf16) into mr-row panels before use, except
// for a single row tile (M <= mr: M = 1 is a GEMV; up to mr rows fit in L1's
// ways) and with fewer panels than kPackAMinPanels (N = 10: each A element meets
// so few weights that copying it first costs more than the strided
// broadcasts). Read in place, the rows of two or more tiles lie a large lda
// apart, map to the same L1 sets and evict each other: fp32 M = 16 and 32
// went from 1.25-1.38x to 1.53-1.76x oneDNN's once packed, for a copy of
// M × K floats that costs ~0.3% of streaming the weights. bf16 A is always
// packed (widened).
constexpr size_t kPackAMinPanels = 4;

inline size_t plan_panels(const GemmPlan& p) {
  size_t panels = 0;
  for (size_t s = 0; s < p.num_segments; ++s) panels += p.segments[s].panels;
  return panels;
}

// Cache blocking from cpuinfo's cache sizes (with fallbacks: qemu reports
// none), for the vector kernel and kernels that adapt it (BFMMLA):
//   kc: the kc × nr slice of a weight panel fills half of L1, leaving the rest
//       for the A panel and C tile streaming past it; K is split into equal
//       blocks so the last is not a sliver.
//   mc: the mc × kc A slice the tiles stream fills a quarter of L2 (A is
//       packed once per row block, all of K: mc × K floats of workspace).
//   nc: the partial sums of a panel group (mc × nc fp32) fill another quarter;
//       with a single K block there are no partial sums and one group is all.
// Returns whether the packed A block fits in half of L2.
inline bool vector_blocking(GemmPlan& p, const PanelLayout& l, size_t mr) {
  const cpu::Features& f = cpu::features();
  const size_t l1 = f.l1d ? f.l1d : (size_t{32} << 10);
  const size_t l2 = f.l2 ? f.l2 : (size_t{1} << 20);
  const size_t panels = plan_panels(p), nr = l.nr;
  p.pack_a = p.a_bf16 || (p.m > mr && panels >= kPackAMinPanels);
  // At most one row tile (M <= mr, M = 1 above all) nothing reuses a B slice:
  // one K block streams each panel front to back with no partial sums.
  const size_t kc_max = p.m <= mr ? std::max<size_t>(p.k, 1)
                                  : std::max<size_t>(16, std::min<size_t>(1024, l1 / 2 / (nr * l.element_bytes())));
  const size_t k_blocks = std::max<size_t>(1, div_ceil(p.k, kc_max));
  p.kc = div_ceil(p.k, k_blocks);
  if (p.pack_a) {
    p.mc = std::max(mr, l2 / 4 / (std::max<size_t>(p.kc, 1) * sizeof(float)) / mr * mr);
    p.mc = std::min(p.mc, round_up(p.m, mr));
  } else {
    p.mc = p.m;
  }
  const size_t mc_rounded = round_up(p.mc, mr);
  p.nc_panels = k_blocks == 1 ? panels : std::max<size_t>(1, l2 / 4 / (mc_rounded * nr * sizeof(float)));
  return p.pack_a && mc_rounded * p.k * sizeof(float) <= l2 / 2;
}

inline void vector_block(GemmPlan& p, const PanelLayout& l, size_t mr) {
  // When every panel can re-read the packed A block from L2, one panel per
  // group makes B one stream read front to back, which the vector loops
  // prefetch best (SlicePrefetch in prefetch-inl.h): fp32 M = 16 and 32 went
  // from 1.25-1.38x to 1.53-1.76x oneDNN's. With A larger than that (32 ×
  // 11008) groups stay: one panel per group was slower there, 1.14-1.21x
  // against 1.44-1.50x.
  if (vector_blocking(p, l, mr)) p.nc_panels = 1;
}

// The packed A block (mc × K floats, whole mr panels) and, with several K
// blocks, the partial sums of one panel group (see GemmRange).
inline size_t vector_workspace_floats(const GemmPlan& p, const PanelLayout& l, size_t mr) {
  const size_t mc_rounded = round_up(p.mc, mr);
  const size_t a = p.pack_a ? mc_rounded * p.k : 0;
  const size_t c = p.kc < p.k ? mc_rounded * p.nc_panels * l.nr : 0;
  return a + c;
}

inline GemmRangeFn vector_range(Isa isa, const GemmPlan&) { return &TILEKIT_DISPATCH_ON(isa, GemmRange); }

inline constexpr GemmKernel kVectorGemm{"vector",      &any_path,     &vector_layout,
                                        &vector_offset, &vector_mr,    &vector_block,
                                        &vector_workspace_floats, &vector_range, /*rows_first=*/false};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_VECTOR_H_
