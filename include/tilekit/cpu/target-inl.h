// Per-target: which Highway target this copy of the code was compiled for. Lets
// tilekit report (and tests verify) the target its dispatch actually reached.
#if defined(TILEKIT_CPU_TARGET_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_CPU_TARGET_INL_H_
#undef TILEKIT_CPU_TARGET_INL_H_
#else
#define TILEKIT_CPU_TARGET_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {

inline int64_t CompiledHwyTarget() { return HWY_TARGET; }

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_CPU_TARGET_INL_H_
