// The dot-product kernel's record: narrow weights (one matrix of N <=
// kDotMaxN columns, where the vector kernel's panels would be at least a
// quarter padding: the seed MLP's [11008 -> 10] layer, classifier heads) on
// every path (gemm/dot-inl.h), fp32 or bf16.
//
// Layout (PanelKind::kDot): one "panel" per column (nr = 1), its K values
// contiguous, so the kernel's vectors run along K and no multiply is spent on
// padding columns. K is zero-padded to a multiple of 2·lanes (one kernel
// step); a bf16 step is one vector of uint32 whose lane l holds k0 + l (low
// half) and k0 + lanes + l (high half), as in the vector panels:
//   fp32: float[N][Kp]    element (k, c) at column c + k
//   bf16: uint16[N][Kp]   element (k, c) at column c + k0 + 2·(r % lanes)
//                         + (r >= lanes), k0 = k - r, r = k mod 2·lanes
#ifndef TILEKIT_GEMM_DOT_H_
#define TILEKIT_GEMM_DOT_H_

#include <cstddef>

#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/vector.h"

namespace tilekit {
namespace detail {

// One matrix whose columns would leave panels of nr at least a quarter padding.
inline bool is_narrow(const PackShape& shape, size_t nr) {
  const size_t padded = round_up(shape.n, nr);
  return shape.segments == 1 && shape.kind == PackKind::kSeparate && shape.n > 0 && shape.n <= kDotMaxN &&
         4 * (padded - shape.n) >= padded;
}

inline bool dot_layout(Isa isa, WeightType type, const PackShape& shape, PanelLayout* l) {
  const size_t lanes = vector_lanes(isa);
  if ((type != WeightType::kF32 && type != WeightType::kBf16) || !is_narrow(shape, 2 * lanes)) return false;
  l->kind = PanelKind::kDot;
  l->lanes = static_cast<uint32_t>(lanes);
  l->nr = 1;
  l->k_align = static_cast<uint32_t>(2 * lanes);
  l->type = type;
  return true;
}

inline size_t dot_offset(const PanelLayout& l, size_t k, size_t) {
  const size_t r = k % (2 * l.lanes);
  return l.type == WeightType::kF32 ? k : k - r + 2 * (r % l.lanes) + (r >= l.lanes);
}

inline size_t dot_mr(Isa isa) { return TILEKIT_DISPATCH_ON(isa, GemmDotMR)(); }

// No blocking: A rows stream once, the narrow weights stay in cache.
inline void dot_block(GemmPlan& p, const PanelLayout&, size_t) {
  p.pack_a = false;
  p.mc = p.m;
  p.kc = p.k;
  p.nc_panels = plan_panels(p);
}
inline size_t no_workspace(const GemmPlan&, const PanelLayout&, size_t) { return 0; }

inline GemmRangeFn dot_range(Isa isa, const GemmPlan&) { return &TILEKIT_DISPATCH_ON(isa, GemmDotRange); }

inline constexpr GemmKernel kDotGemm{"dot",     &any_path,      &dot_layout, &dot_offset, &dot_mr,
                                     &dot_block, &no_workspace, &dot_range,  /*rows_first=*/true};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_DOT_H_
