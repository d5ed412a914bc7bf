#include "convert_scalar_baseline.h"

namespace tilekit_bench {

void ScalarF32ToBf16(const float* in, tilekit::bf16* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = tilekit::f32_to_bf16(in[i]);
}

void ScalarBf16ToF32(const tilekit::bf16* in, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = tilekit::bf16_to_f32(in[i]);
}

}  // namespace tilekit_bench
