// What one GEMM call hands from the target-independent driver (gemm.h) to the
// per-target tile loops (gemm-inl.h): plain data, validated and offset already.
// Included by per-target code, so it must not include kernels.h (directly or not).
#ifndef TILEKIT_GEMM_PLAN_H_
#define TILEKIT_GEMM_PLAN_H_

#include <algorithm>
#include <cstddef>

#include "tilekit/cpu/isa.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/gemm/epilogue_functor.h"
#include "tilekit/gemm/packed_weights.h"

namespace tilekit {
namespace detail {

// Packed weights hold at most this many segments (Q, K, V is 3; gate/up is 1):
// a fixed bound keeps the per-call plan off the heap.
constexpr size_t kMaxSegments = 8;

struct SegmentPlan {
  size_t panel_begin = 0, panels = 0;
  size_t n = 0;          // output columns
  bool gate_up = false;
  void* c = nullptr;     // first element of this segment's output (float or bf16)
  size_t ldc = 0;
  Epilogue epilogue;     // bias / residual already offset to this segment's columns
  size_t c_col = 0;      // C's column of this segment's first output (segments side by side in one C)
  // With an engine's functor: its tile store (the activation step) and its
  // parameters; null for the built-in epilogue.
  TileEpilogueFn functor_tile = nullptr;
  const void* functor_params = nullptr;
  // C is bf16 and the path rounds fp32 to bf16 in one instruction
  // (cpu::isa_converts_bf16): the tile stores take it (ToBf16Bits), same bits.
  // A run-time flag, not a template parameter of the kernels, so no kernel or
  // store is compiled twice; the stores test it per vector (predictable).
  bool native_bf16 = false;
};

struct GemmPlan {
  Isa isa = Isa::kScalar;  // the path the call runs on, read once when it started
  size_t m = 0, k = 0;
  const void* a = nullptr;  // float or bf16, row-major, lda
  size_t lda = 0;
  bool a_bf16 = false;
  const unsigned char* b = nullptr;  // packed panels
  size_t panel_bytes = 0;
  bool b_bf16 = false;
  WeightType b_type = WeightType::kF32;
  size_t group = 0;  // quantized weights: K values per scale
  size_t nr = 0;     // columns per panel
  bool c_bf16 = false;
  SegmentPlan segments[kMaxSegments];
  size_t num_segments = 0;
  size_t mc = 0;         // rows of A per block (a multiple of mr)
  size_t kc = 0;         // K per block (> 0 unless K = 0)
  size_t nc_panels = 0;  // panels per column group
  bool pack_a = false;   // copy (and widen) A blocks into mr-row panels first
};

// The segment that owns panel pb (segments are few: Q, K, V at most a handful).
inline const SegmentPlan& segment_of(const GemmPlan& p, size_t pb) {
  size_t s = 0;
  while (pb >= p.segments[s].panel_begin + p.segments[s].panels) ++s;
  return p.segments[s];
}

// Where panel pb's results go: its segment, its first column within the
// segment, and how many of its columns are real. A panel of nr columns holds
// nr outputs, or nr / 2 for a gate/up pair (gate and up side by side).
struct PanelColumns {
  const SegmentPlan* seg;
  size_t col, cols;
};
inline PanelColumns panel_columns(const GemmPlan& p, size_t pb, size_t nr) {
  const SegmentPlan& seg = segment_of(p, pb);
  const size_t per_panel = seg.gate_up ? nr / 2 : nr;
  const size_t col = (pb - seg.panel_begin) * per_panel;
  return {&seg, col, std::min(per_panel, seg.n - col)};
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_PLAN_H_
