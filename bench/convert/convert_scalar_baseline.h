// The conversion loop a user writes without tilekit: one scalar
// tilekit::f32_to_bf16 / bf16_to_f32 per element. Its translation unit is
// compiled with -fno-tree-vectorize (bench/CMakeLists.txt), so it stays the
// scalar loop it reads as rather than whatever GCC's vectoriser makes of it.
#ifndef TILEKIT_BENCH_CONVERT_SCALAR_BASELINE_H_
#define TILEKIT_BENCH_CONVERT_SCALAR_BASELINE_H_

#include <cstddef>

#include "tilekit/base/bf16.h"

namespace tilekit_bench {

void ScalarF32ToBf16(const float* in, tilekit::bf16* out, size_t n);
void ScalarBf16ToF32(const tilekit::bf16* in, float* out, size_t n);

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_CONVERT_SCALAR_BASELINE_H_
