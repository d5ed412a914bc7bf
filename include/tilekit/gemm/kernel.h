// What packing, planning and dispatch know about one GEMM kernel: its record.
// One record per kernel (XNNPACK's gemm config, gemma.cpp's kernel choice):
// the layout it packs weights in, which paths may run it, its tile height,
// blocking, workspace and the loop over one thread's share. gemm/kernels.h
// registers the records in order of preference; pack_weights takes the first
// that accepts the weights and records it in their layout, and gemm runs that
// record's loops. Target-independent (no Highway); implementation side.
#ifndef TILEKIT_GEMM_KERNEL_H_
#define TILEKIT_GEMM_KERNEL_H_

#include <cstddef>

#include "tilekit/cpu/isa.h"
#include "tilekit/gemm/packed_weights.h"
#include "tilekit/gemm/plan.h"

namespace tilekit {
namespace detail {

// The weights a kernel is asked to take: output columns of all segments, how
// many segments, separate or a gate/up pair.
struct PackShape {
  size_t n = 0;  // 0: unknown (active_panel_layout): never narrow
  size_t segments = 1;
  PackKind kind = PackKind::kSeparate;
};

// Computes rows [r0, r1) × panels [p0, p1) of the plan, all of K, through the
// epilogue into C. `ws` holds workspace_floats(plan) floats of this thread.
// Results must not depend on the share (1 vs N threads are bitwise equal).
using GemmRangeFn = void (*)(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws);

struct GemmKernel {
  const char* name;
  // Paths that may run it (its instructions exist there).
  bool (*runs_on)(Isa isa);
  // Its layout for these weights on path `isa`; false when it does not take
  // them (another weight type, a shape it is not for). Sets every field of
  // *out but `kernel`, which the registry fills.
  bool (*layout)(Isa isa, WeightType type, const PackShape& shape, PanelLayout* out);
  size_t (*offset)(const PanelLayout& l, size_t k, size_t c);  // see packed_offset()
  // Rows of its register (or tile) block: thread shares of rows are multiples
  // of it, so each row is computed by the same tile shape at any thread count.
  size_t (*mr)(Isa isa);
  // Fills the plan's blocking (mc, kc, nc_panels, pack_a) for this shape.
  void (*block)(GemmPlan& p, const PanelLayout& l, size_t mr);
  size_t (*workspace_floats)(const GemmPlan& p, const PanelLayout& l, size_t mr);
  GemmRangeFn (*range)(Isa isa);
  // Split rows before panels across threads, when there are rows enough: for
  // kernels whose panels are few (narrow weights), where a column split would
  // have every thread read all of A.
  bool rows_first;
};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_KERNEL_H_
