// Definitions of cpu/report.h's queries: they read Highway's dispatch tables
// and HWY_TARGETS, which only a kernels translation unit has.
#ifndef TILEKIT_CPU_REPORT_IMPL_H_
#define TILEKIT_CPU_REPORT_IMPL_H_

#include "tilekit/cpu/dispatch.h"
#include "tilekit/cpu/exports.h"
#include "tilekit/cpu/report.h"

namespace tilekit {
namespace cpu {

TILEKIT_API int64_t dispatched_hwy_target() { return TILEKIT_DISPATCH(::tilekit::detail::CompiledHwyTarget)(); }

TILEKIT_API bool path_compiled(Isa isa) {
  const int64_t target = isa == Isa::kScalar ? (HWY_SCALAR | HWY_EMU128) : hwy_target_of(isa);
  return (HWY_TARGETS & target) != 0;
}

TILEKIT_API std::string path_report() {
  const Choice c = choice();
  const std::string reason = c.reason.substr(c.reason.find(':'));
  return std::string(isa_name(c.isa)) + " (Highway " + hwy::TargetName(dispatched_hwy_target()) + ")" + reason;
}

}  // namespace cpu
}  // namespace tilekit

#endif  // TILEKIT_CPU_REPORT_IMPL_H_
