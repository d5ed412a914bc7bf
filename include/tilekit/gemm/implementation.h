// The gemm module's definitions (pack_weights and its queries, gemm,
// gemm_fused): one file of a program compiles them (tilekit/implementation.h,
// or cmake/kernels/gemm.cc).
#ifndef TILEKIT_GEMM_IMPLEMENTATION_H_
#define TILEKIT_GEMM_IMPLEMENTATION_H_

#ifndef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/gemm/targets-inl.h"
#endif
#include "tilekit/cpu/compile_targets.h"  // first: before any Highway header

#include "tilekit/gemm/gemm-impl.h"
#include "tilekit/gemm/packed_weights-impl.h"

#endif  // TILEKIT_GEMM_IMPLEMENTATION_H_
