// The chosen path, the Highway target its portable code runs on, and why.
#ifndef TILEKIT_CPU_REPORT_H_
#define TILEKIT_CPU_REPORT_H_

#include <cstdint>
#include <string>

#include "tilekit/base/api.h"
#include "tilekit/cpu/isa.h"

namespace tilekit {
namespace cpu {

// The Highway target (HWY_AVX3, HWY_NEON, ... bits) tilekit's kernels reach now.
TILEKIT_API int64_t dispatched_hwy_target();

// Whether the kernels were compiled for the Highway target that carries this
// path (a build with TILEKIT_ONLY_STATIC_TARGET has one target, so forcing
// another path would run the wrong code). Scalar: the fallback, always.
TILEKIT_API bool path_compiled(Isa isa);

// One line: "amx (Highway AVX3): best path this CPU allows".
TILEKIT_API std::string path_report();

}  // namespace cpu
}  // namespace tilekit

#endif  // TILEKIT_CPU_REPORT_H_
