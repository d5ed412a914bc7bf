// Compiles per-target code: Highway's foreach_target.h over HWY_TARGET_INCLUDE,
// with tilekit's target list. Included first by every module's
// implementation.h (the files that compile kernels), never by an API header.
//
// Highway allows one foreach_target.h per translation unit and it must come
// before any <hwy/highway.h>. A kernels translation unit sets
// HWY_TARGET_INCLUDE to the per-target code it compiles (one module's
// targets-inl.h, or tilekit/implementation-inl.h for every module) and then
// includes implementation headers; the first of them runs this header, the
// rest find it done. Each module's exports.h then compiles the static target's
// pass of its per-target code and exports its functions.
//
// Highway's target list is set here unless the file sets it first:
// HWY_COMPILE_ALL_ATTAINABLE (every target the compiler can emit, so the
// kernels run on CPUs newer than the build machine) minus the targets tilekit
// does not dispatch to (TILEKIT_HWY_DISABLED_TARGETS in CMake).
#ifndef TILEKIT_CPU_COMPILE_TARGETS_H_
#define TILEKIT_CPU_COMPILE_TARGETS_H_

#if defined(HWY_HIGHWAY_INCLUDED)
#error "tilekit: include tilekit/implementation.h (or a module's implementation.h) before <hwy/highway.h> in the kernels file (Highway allows one foreach_target per translation unit)"
#endif
#ifndef HWY_TARGET_INCLUDE
#error "tilekit: define HWY_TARGET_INCLUDE (the per-target code to compile) before cpu/compile_targets.h"
#endif

#if !defined(HWY_COMPILE_ONLY_STATIC) && !defined(HWY_COMPILE_ALL_ATTAINABLE) && \
    !defined(HWY_COMPILE_ONLY_EMU128) && !defined(HWY_COMPILE_ONLY_SCALAR)
#define HWY_COMPILE_ALL_ATTAINABLE
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#endif

#include <stddef.h>
#include <stdint.h>

#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#endif  // TILEKIT_CPU_COMPILE_TARGETS_H_
