// Per-thread scratch memory for kernels (packed A blocks, partial sums,
// attention's score rows): each thread keeps one buffer across calls, and it
// only grows, so after the first call of the largest shape a kernel allocates
// nothing. Implementation side: included by -impl.h and kernel loop headers.
#ifndef TILEKIT_THREADING_WORKSPACE_H_
#define TILEKIT_THREADING_WORKSPACE_H_

#include <cstddef>

#include "tilekit/base/aligned_buffer.h"

namespace tilekit {
namespace detail {

// At least `floats` floats of this thread's workspace (64-byte aligned), or
// null when it cannot grow. The memory is valid until this thread's next call.
inline float* thread_workspace(size_t floats) {
  static thread_local AlignedBuffer buffer;
  return buffer.reserve(floats * sizeof(float)) ? buffer.as<float>() : nullptr;
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_THREADING_WORKSPACE_H_
