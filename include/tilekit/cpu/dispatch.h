// Runs a Highway-exported kernel on the path tilekit chose.
//
// tilekit does not use HWY_DYNAMIC_DISPATCH: that indexes Highway's process-wide
// chosen target, which a host engine may set for its own code. Instead
// TILEKIT_DISPATCH indexes the same HWY_EXPORT table with the Highway targets
// tilekit's choice allows (cpu::hwy_targets_allowed()), so the portable code and
// the matrix-instruction code always run on the same path, whatever the host
// does with Highway. It is a macro because the table (a module's exports.h) is
// a static of the translation unit that compiled the kernel.
#ifndef TILEKIT_CPU_DISPATCH_H_
#define TILEKIT_CPU_DISPATCH_H_

#include "tilekit/cpu/hwy_targets.h"

// Index into an HWY_EXPORT table: the best target both allowed and compiled
// here. Entry 0 is Highway's lazy-init trampoline; the fallback entry (always
// compiled, always allowed) is last.
#define TILEKIT_HWY_TABLE_INDEX(allowed)                                        \
  hwy::Num0BitsBelowLS1Bit_Nonzero64(static_cast<uint64_t>(                   \
      (HWY_CHOSEN_TARGET_SHIFT(allowed) | HWY_CHOSEN_TARGET_MASK_SCALAR) &      \
      HWY_CHOSEN_TARGET_MASK_TARGETS))

// The kernel of path `isa`. A call that dispatches more than once (the GEMM:
// layout check, tile height, loops, the epilogue inside an arch kernel, on
// every executor thread) reads cpu::active_isa() once and passes it here, so
// a set_max_isa() from another thread cannot make it mix two paths.
#define TILEKIT_DISPATCH_ON(isa, FUNC_NAME) \
  (*(HWY_DISPATCH_TABLE(FUNC_NAME)[TILEKIT_HWY_TABLE_INDEX(::tilekit::cpu::hwy_targets_allowed(isa))]))

// The kernel of the active path: for a call that dispatches once.
#define TILEKIT_DISPATCH(FUNC_NAME) TILEKIT_DISPATCH_ON(::tilekit::cpu::active_isa(), FUNC_NAME)

#endif  // TILEKIT_CPU_DISPATCH_H_
