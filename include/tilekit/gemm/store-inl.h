// Per-target: how a finished fp32 tile reaches C, through the segment's
// epilogue (bias, activation or an engine's functor, residual, clamp, SwiGLU,
// bf16 rounding) or straight, and the prefetch of what the epilogue reads.
// A bf16 C is rounded in one instruction where the segment's plan says the
// path has it (SegmentPlan::native_bf16), a run-time flag: every store is
// compiled once.
// Every GEMM kernel stores through here, the matrix-instruction ones via
// GemmEpilogueTile: one epilogue implementation for every path.
#if defined(TILEKIT_GEMM_STORE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_STORE_INL_H_
#undef TILEKIT_GEMM_STORE_INL_H_
#else
#define TILEKIT_GEMM_STORE_INL_H_
#endif

#include <hwy/cache_control.h>
#include <hwy/highway.h>

#include "tilekit/base/bf16.h"
#include "tilekit/epilogue/epilogue-inl.h"
#include "tilekit/gemm/plan.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

struct TileOut {
  const SegmentPlan* seg;
  size_t row;     // first output row of the tile
  size_t col;     // first output column of the tile within the segment
  size_t cols;    // valid output columns from `col` (<= 2N, or <= N for gate/up)
};

// Rows of a finished tile (row stride acc_ld, t.cols valid columns) through
// the epilogue with `op` as its activation step: a built-in activation, or an
// engine's functor (FunctorEpilogueTile). One vector at a time over the
// columns, the functor seeing each vector's row and first column in C.
template <typename TC, class Op>
HWY_INLINE void EpilogueRows(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows,
                             const Op& op) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const SegmentPlan& s = *t.seg;
  const Epilogue& ep = s.epilogue;
  for (size_t r = 0; r < rows; ++r) {
    const size_t row = t.row + r;
    TC* c = static_cast<TC*>(s.c) + row * s.ldc + t.col;
    const float* res = ep.residual ? ep.residual + row * ep.ld_residual + t.col : nullptr;
    const float* bias = ep.bias ? ep.bias + t.col : nullptr;
    for (size_t j = 0; j < t.cols; j += N) {
      const OutputTile<TC> out{c + j, bias ? bias + j : nullptr, res ? res + j : nullptr, HWY_MIN(N, t.cols - j),
                               s.native_bf16};
      StoreWithEpilogue(df, hn::LoadU(df, acc + r * acc_ld + j), ep, out, op, row, s.c_col + t.col + j);
    }
  }
}

// A gate/up tile: each row's two vectors are gate and up of the same columns.
template <typename TC>
HWY_INLINE void SwiGluRows(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const SegmentPlan& s = *t.seg;
  const Epilogue& ep = s.epilogue;
  for (size_t r = 0; r < rows; ++r) {
    const size_t row = t.row + r;
    TC* c = static_cast<TC*>(s.c) + row * s.ldc + t.col;
    const float* res = ep.residual ? ep.residual + row * ep.ld_residual + t.col : nullptr;
    StoreSwiGlu(df, hn::LoadU(df, acc + r * acc_ld), hn::LoadU(df, acc + r * acc_ld + N), ep,
                OutputTile<TC>{c, nullptr, res, t.cols, s.native_bf16});
  }
}

// The epilogue of a finished tile (rows × 2N accumulators, row stride acc_ld), out
// of line: activations expand to a lot of code, and inlining them into every
// micro-kernel shape multiplied build time for no speed. One call per tile, not
// per row: per-row calls cost ~4% of a 256×4096×4096 GEMM, and a loop lets the
// rows' independent Div / Exp chains overlap. The activation is chosen once per
// tile; an engine's functor is its own out-of-line tile store, compiled in the
// engine's file (so tilekit's kernels are compiled once whatever the functors).
template <typename TC>
HWY_NOINLINE void EpilogueTile(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows) {
  const SegmentPlan& s = *t.seg;
  if (s.functor_tile) return s.functor_tile(acc, acc_ld, rows, s, t.row, t.col, t.cols, kIsBf16<TC>);
  if (s.gate_up) return SwiGluRows<TC>(acc, acc_ld, t, rows);
  WithActivation(s.epilogue.activation, [&](const auto& op) { EpilogueRows<TC>(acc, acc_ld, t, rows, op); });
}

// True when the tile's rows go straight to C: no epilogue op, all 2N columns.
HWY_INLINE bool PlainStore(const TileOut& t, size_t N) {
  return !t.seg->gate_up && !t.seg->functor_tile && t.seg->epilogue.is_identity() && t.cols == 2 * N;
}

// Finished fp32 rows (row stride acc_ld) to C, through the epilogue if any.
template <typename TC>
HWY_INLINE void StoreTile(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  if (!PlainStore(t, N)) return EpilogueTile<TC>(acc, acc_ld, t, rows);
  const bool native = t.seg->native_bf16;
  for (size_t r = 0; r < rows; ++r) {
    TC* c = static_cast<TC*>(t.seg->c) + (t.row + r) * t.seg->ldc + t.col;
    StoreRow(df, hn::LoadU(df, acc + r * acc_ld), c, N, native);
    StoreRow(df, hn::LoadU(df, acc + r * acc_ld + N), c + N, N, native);
  }
}

// The epilogue reads the residual (and C when beta != 0) once, row by row at a
// large stride, straight from memory: without a hint each row's load stalls
// the store of the finished tile (it cost ~8% of a 256×4096×4096 GEMM with a
// residual). Asked for before the tile's last K block, they arrive while it
// runs.
template <typename TC>
HWY_INLINE void PrefetchEpilogueInputs(const TileOut& t, size_t rows) {
  const SegmentPlan& s = *t.seg;
  const Epilogue& ep = s.epilogue;
  const size_t row_bytes = t.cols * sizeof(float);
  if (ep.residual) {
    for (size_t r = 0; r < rows; ++r) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(ep.residual + (t.row + r) * ep.ld_residual + t.col);
      for (size_t b = 0; b < row_bytes; b += 64) hwy::Prefetch(p + b);
    }
  }
  if (ep.beta != 0.f) {
    for (size_t r = 0; r < rows; ++r) {
      const unsigned char* p = reinterpret_cast<const unsigned char*>(static_cast<const TC*>(s.c) + (t.row + r) * s.ldc + t.col);
      for (size_t b = 0; b < t.cols * sizeof(TC); b += 64) hwy::Prefetch(p + b);
    }
  }
}

// An engine's functor F as the tile store of this target (TileEpilogueFn):
// the built-in epilogue with F{params} in place of the activation.
template <class F, class Params>
HWY_NOINLINE void FunctorEpilogueTile(const float* acc, size_t acc_ld, size_t rows, const SegmentPlan& seg,
                                      size_t row0, size_t col0, size_t cols, bool c_bf16) {
  const F op{*static_cast<const Params*>(seg.functor_params)};
  const TileOut t{&seg, row0, col0, cols};
  return c_bf16 ? EpilogueRows<bf16>(acc, acc_ld, t, rows, op) : EpilogueRows<float>(acc, acc_ld, t, rows, op);
}

// For the matrix-instruction kernels under arch/: runs a segment's epilogue on
// an fp32 tile they computed (rows × nr floats, row stride acc_ld, nr = two
// vectors of this target), storing into C. One epilogue implementation for
// every path.
inline void GemmEpilogueTile(const float* acc, size_t acc_ld, size_t rows, const SegmentPlan& seg, size_t row0,
                             size_t col0, size_t cols, bool c_bf16) {
  const TileOut out{&seg, row0, col0, cols};
  return c_bf16 ? StoreTile<bf16>(acc, acc_ld, out, rows) : StoreTile<float>(acc, acc_ld, out, rows);
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_STORE_INL_H_
