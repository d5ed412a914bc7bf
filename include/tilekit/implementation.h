// tilekit's kernels, all modules in one file: include this header in exactly
// one .cc file of a program, before any Highway header in that file. It
// compiles every kernel once per Highway target and defines every entry point
// tilekit.h declares. A second file that includes it fails to link with
// "multiple definition of tilekit::..."; none fails with "undefined reference".
//
// The CMake target tilekit::kernels compiles the same modules as one file each
// (cmake/kernels/*.cc, each including one module's implementation.h), so a
// change rebuilds one module and several cores build modules at once. A
// program uses one way or the other, not both.
//
// Engines that want their own epilogue functor or kernel instantiated can
// include the module headers it needs here too: this is a file where
// per-target code is compiled. Highway's target list is set by
// cpu/compile_targets.h unless the file sets it first.
#ifndef TILEKIT_IMPLEMENTATION_H_
#define TILEKIT_IMPLEMENTATION_H_

#ifndef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tilekit/implementation-inl.h"
#endif
#include "tilekit/cpu/compile_targets.h"  // first: before any Highway header

#include "tilekit/tilekit.h"

#include "tilekit/attention/implementation.h"
#include "tilekit/convert/implementation.h"
#include "tilekit/cpu/implementation.h"
#include "tilekit/epilogue/implementation.h"
#include "tilekit/gemm/implementation.h"
#include "tilekit/ops/implementation.h"

#endif  // TILEKIT_IMPLEMENTATION_H_
