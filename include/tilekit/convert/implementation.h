// The convert module's definitions (convert_f32_to_bf16, convert_bf16_to_f32): one
// file of a program compiles them (tilekit/implementation.h, or
// cmake/kernels/convert.cc).
#ifndef TILEKIT_CONVERT_IMPLEMENTATION_H_
#define TILEKIT_CONVERT_IMPLEMENTATION_H_

#ifndef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/convert/targets-inl.h"
#endif
#include "tilekit/cpu/compile_targets.h"  // first: before any Highway header

#include "tilekit/convert/convert-impl.h"

#endif  // TILEKIT_CONVERT_IMPLEMENTATION_H_
