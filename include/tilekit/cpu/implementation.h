// The cpu module's definitions (path_report, path_compiled): one file of a
// program compiles them (tilekit/implementation.h, or cmake/kernels/cpu.cc).
#ifndef TILEKIT_CPU_IMPLEMENTATION_H_
#define TILEKIT_CPU_IMPLEMENTATION_H_

#ifndef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/cpu/targets-inl.h"
#endif
#include "tilekit/cpu/compile_targets.h"  // first: before any Highway header

#include "tilekit/cpu/report-impl.h"

#endif  // TILEKIT_CPU_IMPLEMENTATION_H_
