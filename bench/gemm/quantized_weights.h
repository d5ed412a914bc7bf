// Quantized weights for the GEMM cases: the values a library multiplies when it
// quantizes the shared fp32 operands, so CheckSample can compare against them
// (gemm_cases.h). Symmetric, round to nearest: per column and group of `group`
// K values (0: all of K), scale = max|w| / qmax, q = round(w / scale).
#ifndef TILEKIT_BENCH_QUANTIZED_WEIGHTS_H_
#define TILEKIT_BENCH_QUANTIZED_WEIGHTS_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tilekit_bench {

// b: K×N row-major fp32. Returns q · scale as fp32, K×N; *q and *scales (if
// given) receive the int8 values (K×N) and the scales (groups × N).
inline std::vector<float> QuantizeColumns(const float* b, size_t k, size_t n, int qmax, size_t group,
                                          std::vector<int8_t>* q = nullptr, std::vector<float>* scales = nullptr) {
  const size_t g = group ? group : k;
  std::vector<float> seen(k * n);
  if (q) q->assign(k * n, 0);
  if (scales) scales->assign((k + g - 1) / g * n, 0.f);
  for (size_t k0 = 0; k0 < k; k0 += g) {
    const size_t k1 = std::min(k, k0 + g);
    for (size_t j = 0; j < n; ++j) {
      float amax = 0.f;
      for (size_t p = k0; p < k1; ++p) amax = std::max(amax, std::fabs(b[p * n + j]));
      const float s = amax / static_cast<float>(qmax), lim = static_cast<float>(qmax);
      if (scales) (*scales)[k0 / g * n + j] = s;
      for (size_t p = k0; p < k1; ++p) {
        const float v = s == 0.f ? 0.f : std::nearbyint(std::max(-lim, std::min(lim, b[p * n + j] / s)));
        seen[p * n + j] = v * s;
        if (q) (*q)[p * n + j] = static_cast<int8_t>(v);
      }
    }
  }
  return seen;
}

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_QUANTIZED_WEIGHTS_H_
