// The first include of an engine's epilogue-functor file (gemm/epilogue_functor.h),
// which sets HWY_TARGET_INCLUDE to itself first: runs Highway's foreach_target
// over the file, then brings what TILEKIT_DEFINE_GEMM_EPILOGUE expands to (the
// dispatch on the path of the call, the entry points it calls).
//
// The API header comes first: in the all-inline mode (TILEKIT_ALL_INLINE) it
// compiles the kernels itself, and its foreach_target must be the file's, over
// the engine's file (whose per-target part then brings every module's code
// through epilogue_functor-inl.h), before the kernels are exported.
#ifndef TILEKIT_EPILOGUE_FUNCTOR_IMPL_H_
#define TILEKIT_EPILOGUE_FUNCTOR_IMPL_H_

#ifndef HWY_TARGET_INCLUDE
#error "tilekit: an epilogue-functor file defines HWY_TARGET_INCLUDE as itself before tilekit/epilogue_functor-impl.h"
#endif
#include "tilekit/tilekit.h"

#include "tilekit/cpu/compile_targets.h"  // before any Highway header (done already in the all-inline mode)

#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/epilogue_functor.h"

#endif  // TILEKIT_EPILOGUE_FUNCTOR_IMPL_H_
