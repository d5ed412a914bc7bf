// fp32 <-> bf16 conversion of arrays, on the chosen path. fp32 -> bf16 rounds to
// nearest even; NaN stays NaN; ±Inf and denormals convert exactly as the scalar
// f32_to_bf16 in base/bf16.h, which is the reference. `in` and `out` must not
// overlap.
#ifndef TILEKIT_CONVERT_CONVERT_H_
#define TILEKIT_CONVERT_CONVERT_H_

#include <cstddef>

#include "tilekit/base/api.h"
#include "tilekit/base/bf16.h"
#include "tilekit/base/status.h"

namespace tilekit {

TILEKIT_API Status convert_f32_to_bf16(const float* in, bf16* out, size_t n);
TILEKIT_API Status convert_bf16_to_f32(const bf16* in, float* out, size_t n);

}  // namespace tilekit

#endif  // TILEKIT_CONVERT_CONVERT_H_
