// The chosen path, the Highway target its portable code runs on, and why.
#ifndef TILEKIT_CPU_REPORT_H_
#define TILEKIT_CPU_REPORT_H_

#include <string>

#include "tilekit/cpu/dispatch.h"
#include "tilekit/detail/kernels.h"

namespace tilekit {
namespace cpu {

// The Highway target TILEKIT_DISPATCH reaches now (HWY_AVX3, HWY_NEON, ...).
inline int64_t dispatched_hwy_target() { return TILEKIT_DISPATCH(::tilekit::detail::CompiledHwyTarget)(); }

// One line: "amx (Highway AVX3): best path this CPU allows".
inline std::string path_report() {
  const Choice c = choice();
  const std::string reason = c.reason.substr(c.reason.find(':'));
  return std::string(isa_name(c.isa)) + " (Highway " + hwy::TargetName(dispatched_hwy_target()) + ")" + reason;
}

}  // namespace cpu
}  // namespace tilekit

#endif  // TILEKIT_CPU_REPORT_H_
