// The convert module's per-target functions: the static target's pass of its
// per-target code, then the dispatch tables TILEKIT_DISPATCH indexes. Only
// files that compile kernels include it, after cpu/compile_targets.h.
#ifndef TILEKIT_CONVERT_EXPORTS_H_
#define TILEKIT_CONVERT_EXPORTS_H_

#ifndef HIGHWAY_HWY_FOREACH_TARGET_H_
#error "tilekit: a module's exports.h needs cpu/compile_targets.h first (include the module's implementation.h)"
#endif

#include "tilekit/convert/targets-inl.h"

namespace tilekit {
namespace detail {
HWY_EXPORT(ConvertF32ToBf16);
HWY_EXPORT(ConvertBf16ToF32);
}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_CONVERT_EXPORTS_H_
