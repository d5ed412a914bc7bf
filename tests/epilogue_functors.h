// The engine-side declarations of epilogue_functor_test's functors (their
// per-target code: epilogue_functors.cc). Highway-free, as an engine's header
// of its own entry points would be.
#ifndef TILEKIT_TESTS_EPILOGUE_FUNCTORS_H_
#define TILEKIT_TESTS_EPILOGUE_FUNCTORS_H_

#include <cstddef>

#include "tilekit/tilekit.h"

namespace functors {

// C[i][j] = i · row_stride + j, whatever the product: what the functor was
// told about each lane's row and column, exact in fp32 (values < 2^24).
struct IndexParams {
  size_t row_stride;
};
TILEKIT_DECLARE_GEMM_EPILOGUE(gemm_index, IndexParams)

// v = min(max(v, lo), hi) · scale[j] + shift[i]: per-column and per-row data.
struct ClampScaleParams {
  float lo, hi;
  const float* scale;  // [columns of C]
  const float* shift;  // [rows of C]
};
TILEKIT_DECLARE_GEMM_EPILOGUE(gemm_clamp_scale, ClampScaleParams)

}  // namespace functors

#endif  // TILEKIT_TESTS_EPILOGUE_FUNCTORS_H_
