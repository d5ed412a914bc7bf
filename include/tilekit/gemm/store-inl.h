// Per-target: how a finished fp32 tile reaches C, through the segment's
// epilogue (bias, activation, residual, clamp, SwiGLU, bf16 rounding) or
// straight, and the prefetch of what the epilogue reads. Every GEMM kernel
// stores through here, the matrix-instruction ones via GemmEpilogueTile:
// one epilogue implementation for every path.
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

template <typename TC>
HWY_INLINE void EpilogueRow(const float* HWY_RESTRICT acc, const TileOut& t, size_t r) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  const SegmentPlan& s = *t.seg;
  const Epilogue& ep = s.epilogue;
  const size_t row = t.row + r;
  TC* c = static_cast<TC*>(s.c) + row * s.ldc + t.col;
  const float* res = ep.residual ? ep.residual + row * ep.ld_residual + t.col : nullptr;
  const float* bias = ep.bias ? ep.bias + t.col : nullptr;
  const auto c0 = hn::LoadU(df, acc), c1 = hn::LoadU(df, acc + N);
  if (s.gate_up) {
    StoreSwiGlu(df, c0, c1, ep, OutputTile<TC>{c, nullptr, res, t.cols});
    return;
  }
  StoreWithEpilogue(df, c0, ep, OutputTile<TC>{c, bias, res, HWY_MIN(N, t.cols)});
  if (t.cols > N) {
    StoreWithEpilogue(df, c1, ep, OutputTile<TC>{c + N, bias ? bias + N : nullptr, res ? res + N : nullptr,
                                                  t.cols - N});
  }
}

// The epilogue of a finished tile (rows × 2N accumulators, row stride acc_ld), out
// of line: activations expand to a lot of code, and inlining them into every
// micro-kernel shape multiplied build time for no speed. One call per tile, not
// per row: per-row calls cost ~4% of a 256×4096×4096 GEMM, and a loop lets the
// rows' independent Div / Exp chains overlap.
template <typename TC>
HWY_NOINLINE void EpilogueTile(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows) {
  for (size_t r = 0; r < rows; ++r) EpilogueRow<TC>(acc + r * acc_ld, t, r);
}

// True when the tile's rows go straight to C: no epilogue op, all 2N columns.
HWY_INLINE bool PlainStore(const TileOut& t, size_t N) {
  return !t.seg->gate_up && t.seg->epilogue.is_identity() && t.cols == 2 * N;
}

// Finished fp32 rows (row stride acc_ld) to C, through the epilogue if any.
template <typename TC>
HWY_INLINE void StoreTile(const float* HWY_RESTRICT acc, size_t acc_ld, const TileOut& t, size_t rows) {
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  if (!PlainStore(t, N)) return EpilogueTile<TC>(acc, acc_ld, t, rows);
  for (size_t r = 0; r < rows; ++r) {
    TC* c = static_cast<TC*>(t.seg->c) + (t.row + r) * t.seg->ldc + t.col;
    StoreRow(df, hn::LoadU(df, acc + r * acc_ld), c, N);
    StoreRow(df, hn::LoadU(df, acc + r * acc_ld + N), c + N, N);
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
