// Quantized weights as a reference sees them (quant_test, graph_test): the
// documented rule of pack_weights for fp32 / bf16 sources
// (gemm/packed_weights.h, gemm/quant.h), applied independently of the
// library: per column and group of g K values, s = max|w| / qmax and
// q = round-to-nearest(w / s), qmax = 127 (int8) or 7 (int4); g = 0 is one
// group of all of K (rounded up to 8, as the layout stores it).
//
// The kernels store q with a zero point z (128 or 8) and sum a·(q + z), then
// subtract z·Σa once per group, so each product's roundings scale with
// |a| · (|q| + 2z) · s, not with |a · w|: Dequantized::mag holds that
// magnitude per weight, and a product of K terms takes K + K/g + 4 roundings
// (the group sums, their scaling and the dequantization), QuantSumTerms.
//
// Kernels that multiply in integers quantize A too, for calls of enough rows
// (PanelLayout::a_int8_min_rows): ActivationsSeen. GGUF Q8_0 / Q4_0 blocks
// are read back by the layout the header documents
// (GgufBlockValue), their half scales by arithmetic (HalfValue).
#ifndef TILEKIT_TESTS_QUANT_REFERENCE_H_
#define TILEKIT_TESTS_QUANT_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tilekit/tilekit.h"

namespace tilekit {
namespace testing {

inline int QMax(WeightType t) { return t == WeightType::kInt8 ? 127 : 7; }
inline int Zero(WeightType t) { return t == WeightType::kInt8 ? 128 : 8; }
inline size_t GroupOf(size_t group, size_t k) { return group ? group : std::max<size_t>(8, (k + 7) / 8 * 8); }
inline size_t QuantSumTerms(size_t k, size_t group) {
  const size_t g = GroupOf(group, k);
  return k + (k + g - 1) / g + 4;
}

// One quantized weight matrix, laid out as its source: q · s (rounded to
// fp32), and the magnitude (|q| + 2z) · s its products' roundings scale with.
struct Dequantized {
  std::vector<float> w, mag;
  // The quantization against the fp32 source: the largest |w - q·s|, the
  // largest scale (the error is at most half of it), and Σ(w - q·s)², Σw².
  double max_error = 0, max_scale = 0, sum_sq_error = 0, sum_sq = 0;
};

// src: K values per column, n columns, packed rows: [K][N] (kKN) or [N][K]
// (kNK, PyTorch's Linear weight).
inline Dequantized Quantize(const float* src, size_t k, size_t n, SourceLayout layout, WeightType t, size_t group) {
  const size_t g = GroupOf(group, k);
  const float qmax = static_cast<float>(QMax(t));
  const double z = Zero(t);
  const auto at = [&](size_t kk, size_t c) { return layout == SourceLayout::kKN ? kk * n + c : c * k + kk; };
  Dequantized d;
  d.w.assign(k * n, 0.f);
  d.mag.assign(k * n, 0.f);
  for (size_t c = 0; c < n; ++c) {
    for (size_t k0 = 0; k0 < k; k0 += g) {
      const size_t k1 = std::min(k, k0 + g);
      float amax = 0.f;
      for (size_t kk = k0; kk < k1; ++kk) amax = std::max(amax, std::fabs(src[at(kk, c)]));
      const float s = amax / qmax;
      for (size_t kk = k0; kk < k1; ++kk) {
        const float v = src[at(kk, c)];
        const float q = s == 0.f ? 0.f : std::nearbyint(std::max(-qmax, std::min(qmax, v / s)));
        d.w[at(kk, c)] = q * s;
        d.mag[at(kk, c)] = static_cast<float>((std::fabs(q) + 2 * z) * s);
        const double e = static_cast<double>(v) - static_cast<double>(q) * s;
        d.max_error = std::max(d.max_error, std::fabs(e));
        d.max_scale = std::max<double>(d.max_scale, s);
        d.sum_sq_error += e * e;
        d.sum_sq += static_cast<double>(v) * v;
      }
    }
  }
  return d;
}

// The activations a kernel multiplies (A: m rows of k, stride lda): A itself,
// or where the layout says the kernel quantizes A for this many rows
// (PanelLayout::a_int8_min_rows), A quantized by that rule: per row and group
// of a_group values, s = max|a| / 127, q = round(a / s), seen as q · s.
inline std::vector<float> ActivationsSeen(const std::vector<float>& a, size_t m, size_t k, size_t lda, const PanelLayout& l) {
  if (!l.a_int8_min_rows || m < l.a_int8_min_rows) return a;
  std::vector<float> seen = a;
  for (size_t i = 0; i < m; ++i) {
    for (size_t k0 = 0; k0 < k; k0 += l.a_group) {
      const size_t k1 = std::min(k, k0 + l.a_group);
      float amax = 0.f;
      for (size_t kk = k0; kk < k1; ++kk) amax = std::max(amax, std::fabs(a[i * lda + kk]));
      const float s = amax / 127.f;
      for (size_t kk = k0; kk < k1; ++kk) {
        const float q = s == 0.f ? 0.f : std::nearbyint(std::max(-127.f, std::min(127.f, a[i * lda + kk] / s)));
        seen[i * lda + kk] = q * s;
      }
    }
  }
  return seen;
}

// An IEEE half's value, every class (subnormals, infinities, NaN),
// computed arithmetically: independent of the library's bit conversion.
inline double HalfValue(uint16_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double v = e == 0x1F ? (m ? std::nan("") : HUGE_VAL)
                   : e == 0  ? std::ldexp(m, -24)
                             : std::ldexp(1024 + m, e - 25);
  return h & 0x8000 ? -v : v;
}

// Value k of row r of a GGUF Q8_0 / Q4_0 tensor (rows `row_bytes` apart), as
// gemm/packed_weights.h documents the blocks: its block's half scale d and
// its quantized value q (w = d · q).
inline void GgufBlockValue(const unsigned char* bytes, SourceType type, size_t row_bytes, size_t r, size_t k,
                           uint16_t* d, int* q) {
  const unsigned char* block = bytes + r * row_bytes + k / 32 * (type == SourceType::kGgufQ8_0 ? 34 : 18);
  *d = static_cast<uint16_t>(block[0] | block[1] << 8);
  const size_t j = k % 32;
  if (type == SourceType::kGgufQ8_0) {
    *q = static_cast<int8_t>(block[2 + j]);
  } else {
    *q = (j < 16 ? block[2 + j] & 0xF : block[2 + j - 16] >> 4) - 8;
  }
}

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_QUANT_REFERENCE_H_
