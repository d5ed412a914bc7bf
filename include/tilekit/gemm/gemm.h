// GEMM with prepacked weights and fused epilogues:
//   C[M][N] = epilogue(A[M][K] · B[K][N])
// A: float or bf16, row-major with any leading dimension. B: PackedWeights
// (fp32 or bf16, packed once). C: float or bf16. Accumulation is fp32.
// On the amx path, bf16 weights run on AMX tiles, which multiply bf16 only: an
// fp32 A is rounded to bf16 (to nearest even) as it is packed
// (PanelLayout::rounds_a_to_bf16). Products of bf16 values are exact in fp32,
// and the sums are fp32 as on every path.
//
// This header declares the entry points; gemm/gemm-impl.h defines them
// (validation, blocking, threading) in the kernels translation unit, and the
// loops and micro-kernels are per target (gemm-inl.h) or matrix-instruction
// kernels of arch/ for their own panel kinds.
#ifndef TILEKIT_GEMM_GEMM_H_
#define TILEKIT_GEMM_GEMM_H_

#include <cstddef>

#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/matrix.h"
#include "tilekit/base/status.h"
#include "tilekit/epilogue/epilogue.h"
#include "tilekit/gemm/packed_weights.h"
#include "tilekit/threading/executor.h"

namespace tilekit {

struct GemmOptions {
  // null: run on the calling thread. With an executor, a call splits its work
  // only when every thread gets enough of it to pay for waking the others
  // (small GEMMs run on the calling thread), so an engine can always pass its
  // pool. The executor may be the one whose task is making this call.
  Executor* executor = nullptr;
};

// One output of a horizontally fused GEMM: segment s of the packed weights
// writes outputs[s].c with its own epilogue.
template <typename TC>
struct FusedOutput {
  MatrixView<TC> c;
  Epilogue epilogue;
};

// C = epilogue(A · B), A: M × K, C: M × N (N = b.n()). Weights with several
// segments (pack_weights with several sources) write their outputs side by
// side in C, with one epilogue whose bias and residual span all of N. The
// residual may be C itself (same data and ld, fp32 C): an in-place residual
// add, each element read before it is written. Any other overlap of an input
// with C is rejected (Status::kAliasing). A and C are float or bf16; a
// MatrixView<float> converts to MatrixView<const float> for A.
TILEKIT_API Status gemm(MatrixView<const float> a, const PackedWeights& b, MatrixView<float> c,
                        const Epilogue& epilogue = {}, const GemmOptions& options = {});
TILEKIT_API Status gemm(MatrixView<const float> a, const PackedWeights& b, MatrixView<bf16> c,
                        const Epilogue& epilogue = {}, const GemmOptions& options = {});
TILEKIT_API Status gemm(MatrixView<const bf16> a, const PackedWeights& b, MatrixView<float> c,
                        const Epilogue& epilogue = {}, const GemmOptions& options = {});
TILEKIT_API Status gemm(MatrixView<const bf16> a, const PackedWeights& b, MatrixView<bf16> c,
                        const Epilogue& epilogue = {}, const GemmOptions& options = {});

// Horizontal fusion: one pass over A for every segment of the packed weights
// (Q, K, V; or gate/up), each segment writing its own output with its own
// epilogue. num_outputs must equal b.segments().size().
TILEKIT_API Status gemm_fused(MatrixView<const float> a, const PackedWeights& b, const FusedOutput<float>* outputs,
                              size_t num_outputs, const GemmOptions& options = {});
TILEKIT_API Status gemm_fused(MatrixView<const float> a, const PackedWeights& b, const FusedOutput<bf16>* outputs,
                              size_t num_outputs, const GemmOptions& options = {});
TILEKIT_API Status gemm_fused(MatrixView<const bf16> a, const PackedWeights& b, const FusedOutput<float>* outputs,
                              size_t num_outputs, const GemmOptions& options = {});
TILEKIT_API Status gemm_fused(MatrixView<const bf16> a, const PackedWeights& b, const FusedOutput<bf16>* outputs,
                              size_t num_outputs, const GemmOptions& options = {});

}  // namespace tilekit

#endif  // TILEKIT_GEMM_GEMM_H_
