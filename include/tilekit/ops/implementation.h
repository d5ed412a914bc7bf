// The ops module's definitions (add, mul, scale, softcap, rms_norm, add_rms_norm, rope, softmax): one file
// of a program compiles them (tilekit/implementation.h, or cmake/kernels/ops.cc).
#ifndef TILEKIT_OPS_IMPLEMENTATION_H_
#define TILEKIT_OPS_IMPLEMENTATION_H_

#ifndef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/ops/targets-inl.h"
#endif
#include "tilekit/cpu/compile_targets.h"  // first: before any Highway header

#include "tilekit/ops/elementwise-impl.h"
#include "tilekit/ops/rms_norm-impl.h"
#include "tilekit/ops/rope-impl.h"
#include "tilekit/ops/softmax-impl.h"

#endif  // TILEKIT_OPS_IMPLEMENTATION_H_
