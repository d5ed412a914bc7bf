// Per-target: what the per-target part of an engine's epilogue-functor file
// needs for TILEKIT_GEMM_EPILOGUE_TARGET (gemm/epilogue_functor.h): the GEMM's
// tile store. In the all-inline mode (TILEKIT_ALL_INLINE) the file compiles
// every kernel too, so it also brings every module's per-target code: the
// file's foreach_target is the only one of its translation unit.
#if defined(TILEKIT_EPILOGUE_FUNCTOR_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_EPILOGUE_FUNCTOR_INL_H_
#undef TILEKIT_EPILOGUE_FUNCTOR_INL_H_
#else
#define TILEKIT_EPILOGUE_FUNCTOR_INL_H_
#endif

#ifdef TILEKIT_ALL_INLINE
#include "tilekit/implementation-inl.h"
#endif
#include "tilekit/gemm/store-inl.h"
#include "tilekit/simd/load_store-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace HWY_NAMESPACE {
// For a functor's per-column data: n values from p, zeros past them.
using ::tilekit::detail::HWY_NAMESPACE::LoadPartial;
}  // namespace HWY_NAMESPACE
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_EPILOGUE_FUNCTOR_INL_H_
