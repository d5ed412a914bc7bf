// The gemm module's per-target functions every kernel shares (the vector and
// dot kernels, the epilogue store, packing's stream copy, the int8 activation
// quantizer of the integer kernels): the static target's
// pass of its per-target code, then the dispatch tables TILEKIT_DISPATCH
// indexes. A kernel record with per-target code of its own exports it in its
// record header. Only files that compile kernels include it, after
// cpu/compile_targets.h.
#ifndef TILEKIT_GEMM_EXPORTS_H_
#define TILEKIT_GEMM_EXPORTS_H_

#ifndef HIGHWAY_HWY_FOREACH_TARGET_H_
#error "tilekit: a module's exports.h needs cpu/compile_targets.h first (include the module's implementation.h)"
#endif

#include "tilekit/gemm/targets-inl.h"

namespace tilekit {
namespace detail {
HWY_EXPORT(GemmPanelLanes);
HWY_EXPORT(GemmMR);
HWY_EXPORT(GemmRange);
HWY_EXPORT(GemmDotMR);
HWY_EXPORT(GemmDotRange);
HWY_EXPORT(GemmEpilogueTile);
HWY_EXPORT(StreamCopy);
HWY_EXPORT(QuantizeActInt8);
}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_GEMM_EXPORTS_H_
