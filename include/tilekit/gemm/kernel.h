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
// many segments, separate or a gate/up pair, K, and the quantization group.
struct PackShape {
  size_t n = 0;  // 0: unknown (active_panel_layout): never narrow
  size_t segments = 1;
  PackKind kind = PackKind::kSeparate;
  size_t k = 0;
  size_t group = 0;  // quantized weights: K per scale, 0 = all of K
};

// Source column for column c (0 <= c < nr = 2·half) of panel `pl` within a
// segment: a gate/up panel holds `half` gate columns, then the same up columns.
struct ColumnSource {
  const WeightSource* src;
  size_t col;
};
inline ColumnSource column_source(const WeightSource* parts, size_t s, const PackedSegment& seg, size_t nr,
                                  size_t pl, size_t c) {
  const size_t half = nr / 2;
  if (seg.gate_up) return {&parts[c < half ? 0 : 1], pl * half + c % half};
  return {&parts[s], pl * nr + c};
}

// What a kernel's packing function writes: panels [p0, p1) of the buffer.
struct PackJob {
  const PanelLayout* layout;
  const PackedSegment* segments;
  size_t num_segments;
  size_t k;
  const WeightSource* parts;
  unsigned char* buffer;
  size_t panel_bytes;
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
  // The loops for this call (the record may pick by the plan: M, types).
  GemmRangeFn (*range)(Isa isa, const GemmPlan& p);
  // Split rows before panels across threads, when there are rows enough: for
  // kernels whose panels are few (narrow weights), where a column split would
  // have every thread read all of A.
  bool rows_first;
  // Writes panels [p0, p1) from the sources; false when a value cannot be
  // packed (a non-finite weight to quantize). Null: the generic element copy of
  // packed_weights-impl.h (fp32 and bf16 layouts, through `offset`).
  bool (*pack)(const PackJob& job, size_t p0, size_t p1) = nullptr;
};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_KERNEL_H_
