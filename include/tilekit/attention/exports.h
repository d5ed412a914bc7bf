// The attention module's per-target functions: the static target's pass of its
// per-target code, then the dispatch tables TILEKIT_DISPATCH indexes. Only
// files that compile kernels include it, after cpu/compile_targets.h.
#ifndef TILEKIT_ATTENTION_EXPORTS_H_
#define TILEKIT_ATTENTION_EXPORTS_H_

#ifndef HIGHWAY_HWY_FOREACH_TARGET_H_
#error "tilekit: a module's exports.h needs cpu/compile_targets.h first (include the module's implementation.h)"
#endif

#include "tilekit/convert/exports.h"
#include "tilekit/attention/targets-inl.h"

namespace tilekit {
namespace detail {
HWY_EXPORT(AttendRows);
HWY_EXPORT(AttnStoreRow);
}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_ATTENTION_EXPORTS_H_
