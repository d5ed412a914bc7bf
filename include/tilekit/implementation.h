// tilekit's kernels: include this header in exactly one .cc file of a program
// (or link tilekit::kernels, a static library of one such file), before any
// Highway header in that file. It compiles every kernel once per Highway
// target (Highway's foreach_target.h, which allows one pass per translation
// unit) and defines every entry point tilekit.h declares. A second file that
// includes it fails to link with "multiple definition of tilekit::..."; none
// fails with "undefined reference".
//
// Engines that want their own epilogue functor or kernel instantiated can
// include the module headers it needs here too: this is the one file where
// per-target code is compiled.
//
// Highway's target list is set here unless the file sets it first:
// HWY_COMPILE_ALL_ATTAINABLE (every target the compiler can emit, so the
// kernels run on CPUs newer than the build machine) minus the targets tilekit
// does not dispatch to (TILEKIT_HWY_DISABLED_TARGETS in CMake).
#ifndef TILEKIT_IMPLEMENTATION_H_
#define TILEKIT_IMPLEMENTATION_H_

#if !defined(HWY_COMPILE_ONLY_STATIC) && !defined(HWY_COMPILE_ALL_ATTAINABLE) && \
    !defined(HWY_COMPILE_ONLY_EMU128) && !defined(HWY_COMPILE_ONLY_SCALAR)
#define HWY_COMPILE_ALL_ATTAINABLE
#endif
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#endif

// First: Highway's foreach_target.h must precede any other Highway header.
#include "tilekit/detail/kernels.h"  // IWYU pragma: keep

#include "tilekit/tilekit.h"

#include "tilekit/attention/attention-impl.h"
#include "tilekit/attention/kv_cache-impl.h"
#include "tilekit/convert/convert-impl.h"
#include "tilekit/cpu/report-impl.h"
#include "tilekit/epilogue/apply-impl.h"
#include "tilekit/gemm/gemm-impl.h"
#include "tilekit/gemm/packed_weights-impl.h"
#include "tilekit/ops/rms_norm-impl.h"
#include "tilekit/ops/rope-impl.h"
#include "tilekit/ops/softmax-impl.h"

#endif  // TILEKIT_IMPLEMENTATION_H_
