// The ops module's per-target functions: the static target's pass of its
// per-target code, then the dispatch tables TILEKIT_DISPATCH indexes. Only
// files that compile kernels include it, after cpu/compile_targets.h.
#ifndef TILEKIT_OPS_EXPORTS_H_
#define TILEKIT_OPS_EXPORTS_H_

#ifndef HIGHWAY_HWY_FOREACH_TARGET_H_
#error "tilekit: a module's exports.h needs cpu/compile_targets.h first (include the module's implementation.h)"
#endif

#include "tilekit/ops/targets-inl.h"

namespace tilekit {
namespace detail {
HWY_EXPORT(ElementwiseRows);
HWY_EXPORT(RmsNormRows);
HWY_EXPORT(RopeTokens);
HWY_EXPORT(SoftmaxRows);
}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_OPS_EXPORTS_H_
