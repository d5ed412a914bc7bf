// The ops as the eager sequence of passes a framework runs (PyTorch eager,
// HF modelling code): one plain loop per tensor op, each materialising its
// result, compiled with -O3 -march=native (eager_ops.cc). The `eager` peer of
// bench_tilekit_ops. Each pass runs over a range of rows, so the caller can
// split every pass over threads as a framework's intra-op pool does.
#ifndef TILEKIT_BENCH_OPS_EAGER_OPS_H_
#define TILEKIT_BENCH_OPS_EAGER_OPS_H_

#include <cstddef>
#include <cstdint>

#include "tilekit/base/bf16.h"

namespace tilekit_bench {
namespace eager {

// Rows [r0, r1) of an M × n fp32 matrix, contiguous.
void Square(const float* x, float* out, size_t n, size_t r0, size_t r1);
void RowMean(const float* x, float* mean, size_t n, size_t r0, size_t r1);
void AddRsqrt(const float* mean, float eps, float* rs, size_t r0, size_t r1);
void MulRowScalar(const float* x, const float* s, float* out, size_t n, size_t r0, size_t r1);
void MulBroadcast(const float* x, const float* w, float* out, size_t n, size_t r0, size_t r1);
void Add(const float* a, const float* b, float* out, size_t n, size_t r0, size_t r1);
void Copy(const float* a, float* out, size_t n, size_t r0, size_t r1);
void Mul(const float* a, const float* b, float* out, size_t n, size_t r0, size_t r1);
void Silu(const float* x, float* out, size_t n, size_t r0, size_t r1);  // x / (1 + exp(-x))
void ToF32(const tilekit::bf16* x, float* out, size_t n, size_t r0, size_t r1);
void ToBf16(const float* x, tilekit::bf16* out, size_t n, size_t r0, size_t r1);
// Softmax's passes.
void MulScalar(const float* x, float s, float* out, size_t n, size_t r0, size_t r1);
void RowMax(const float* x, float* max, size_t n, size_t r0, size_t r1);
void SubRowScalar(const float* x, const float* s, float* out, size_t n, size_t r0, size_t r1);
void Exp(const float* x, float* out, size_t n, size_t r0, size_t r1);
void RowSum(const float* x, float* sum, size_t n, size_t r0, size_t r1);
void DivRowScalar(const float* x, const float* s, float* out, size_t n, size_t r0, size_t r1);
// RoPE's: cos/sin rows gathered by position ([tokens][head_dim] from a
// [max_positions][head_dim] table), rotate_half of every head, and the
// products broadcast over heads (x: [tokens][heads][head_dim] at token stride ld).
void Gather(const float* table, const int32_t* positions, float* out, size_t head_dim, size_t t0, size_t t1);
void RotateHalf(const float* x, size_t ld, float* out, size_t heads, size_t head_dim, size_t t0, size_t t1);
void MulHeads(const float* x, size_t ld, const float* c, float* out, size_t heads, size_t head_dim, size_t t0,
              size_t t1);
void AddHeads(const float* a, const float* b, float* out, size_t ld, size_t heads, size_t head_dim, size_t t0,
              size_t t1);

}  // namespace eager
}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_OPS_EAGER_OPS_H_
