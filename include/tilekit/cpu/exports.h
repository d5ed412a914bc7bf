// The cpu module's per-target functions (the static target's pass, then the
// dispatch tables). Only files that compile kernels include it, after
// cpu/compile_targets.h.
#ifndef TILEKIT_CPU_EXPORTS_H_
#define TILEKIT_CPU_EXPORTS_H_

#ifndef HIGHWAY_HWY_FOREACH_TARGET_H_
#error "tilekit: a module's exports.h needs cpu/compile_targets.h first (include the module's implementation.h)"
#endif

#include "tilekit/cpu/targets-inl.h"

namespace tilekit {
namespace detail {
HWY_EXPORT(CompiledHwyTarget);
}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_CPU_EXPORTS_H_
