// Plain loops, one per tensor op (see eager_ops.h). Compiled with -O3
// -march=native; std::exp stays a scalar libm call (GCC vectorises it only
// with -ffast-math), as it would in a plain loop.
#include "eager_ops.h"

#include <cmath>

namespace tilekit_bench {
namespace eager {

void Square(const float* x, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = x[i] * x[i];
}
void RowMean(const float* x, float* mean, size_t n, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    float s = 0;
    for (size_t j = 0; j < n; ++j) s += x[r * n + j];
    mean[r] = s / static_cast<float>(n);
  }
}
void AddRsqrt(const float* mean, float eps, float* rs, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) rs[r] = 1.0f / std::sqrt(mean[r] + eps);
}
void MulRowScalar(const float* x, const float* s, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r)
    for (size_t j = 0; j < n; ++j) out[r * n + j] = x[r * n + j] * s[r];
}
void MulBroadcast(const float* x, const float* w, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r)
    for (size_t j = 0; j < n; ++j) out[r * n + j] = x[r * n + j] * w[j];
}
void Add(const float* a, const float* b, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = a[i] + b[i];
}
void Mul(const float* a, const float* b, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = a[i] * b[i];
}
void Silu(const float* x, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = x[i] / (1.f + std::exp(-x[i]));
}
void Copy(const float* a, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = a[i];
}
void ToF32(const tilekit::bf16* x, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = tilekit::bf16_to_f32(x[i]);
}
void ToBf16(const float* x, tilekit::bf16* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = tilekit::f32_to_bf16(x[i]);
}
void MulScalar(const float* x, float s, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = x[i] * s;
}
void RowMax(const float* x, float* max, size_t n, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    float m = -INFINITY;
    for (size_t j = 0; j < n; ++j) m = std::fmax(m, x[r * n + j]);
    max[r] = m;
  }
}
void SubRowScalar(const float* x, const float* s, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r)
    for (size_t j = 0; j < n; ++j) out[r * n + j] = x[r * n + j] - s[r];
}
void Exp(const float* x, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t i = r0 * n; i < r1 * n; ++i) out[i] = std::exp(x[i]);
}
void RowSum(const float* x, float* sum, size_t n, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r) {
    float s = 0;
    for (size_t j = 0; j < n; ++j) s += x[r * n + j];
    sum[r] = s;
  }
}
void DivRowScalar(const float* x, const float* s, float* out, size_t n, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r)
    for (size_t j = 0; j < n; ++j) out[r * n + j] = x[r * n + j] / s[r];
}
void Gather(const float* table, const int32_t* positions, float* out, size_t head_dim, size_t t0, size_t t1) {
  for (size_t t = t0; t < t1; ++t)
    for (size_t j = 0; j < head_dim; ++j)
      out[t * head_dim + j] = table[static_cast<size_t>(positions[t]) * head_dim + j];
}
void RotateHalf(const float* x, size_t ld, float* out, size_t heads, size_t head_dim, size_t t0, size_t t1) {
  const size_t half = head_dim / 2;
  for (size_t t = t0; t < t1; ++t)
    for (size_t h = 0; h < heads; ++h) {
      const float* xi = x + t * ld + h * head_dim;
      float* o = out + (t * heads + h) * head_dim;
      for (size_t j = 0; j < half; ++j) o[j] = -xi[half + j];
      for (size_t j = 0; j < half; ++j) o[half + j] = xi[j];
    }
}
void MulHeads(const float* x, size_t ld, const float* c, float* out, size_t heads, size_t head_dim, size_t t0,
              size_t t1) {
  for (size_t t = t0; t < t1; ++t)
    for (size_t h = 0; h < heads; ++h)
      for (size_t j = 0; j < head_dim; ++j)
        out[(t * heads + h) * head_dim + j] = x[t * ld + h * head_dim + j] * c[t * head_dim + j];
}
void AddHeads(const float* a, const float* b, float* out, size_t ld, size_t heads, size_t head_dim, size_t t0,
              size_t t1) {
  for (size_t t = t0; t < t1; ++t)
    for (size_t h = 0; h < heads; ++h)
      for (size_t j = 0; j < head_dim; ++j) {
        const size_t i = (t * heads + h) * head_dim + j;
        out[t * ld + h * head_dim + j] = a[i] + b[i];
      }
}

}  // namespace eager
}  // namespace tilekit_bench
