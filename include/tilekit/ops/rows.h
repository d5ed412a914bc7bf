// What the row ops (rms_norm, rope, softmax) share between their -impl.h and
// -inl.h halves: how a kernel sees a strided operand, and how rows are split
// over an Executor. Target-independent; no Highway.
#ifndef TILEKIT_OPS_ROWS_H_
#define TILEKIT_OPS_ROWS_H_

#include <algorithm>
#include <cstddef>

#include "tilekit/base/matrix.h"
#include "tilekit/threading/executor.h"

namespace tilekit {
namespace detail {

// One operand as a kernel sees it: row r (= token t, head h of `heads`) starts
// at data + t·token_stride + h·head_stride elements of float or bf16.
struct StridedRows {
  void* data = nullptr;
  size_t token_stride = 0, head_stride = 0;
  bool bf16 = false;

  template <typename T>
  static StridedRows of(const HeadsView<T>& v) {
    return StridedRows{const_cast<void*>(static_cast<const void*>(v.data)), v.token_stride, v.head_stride, kIsBf16<T>};
  }
  template <typename T>
  T* row(size_t token, size_t head) const {
    return static_cast<T*>(data) + token * token_stride + head * head_stride;
  }
};

// Splitting pays only when every task has this much to move: waking the pool
// costs microseconds, a few µs of memory traffic at ~10 GB/s per core.
constexpr size_t kMinBytesPerTask = size_t{64} << 10;

// Runs body(begin, end) over [0, items) in contiguous chunks, one per task.
// Each item is computed whole by one task with the same code whatever the
// split, so results are bitwise identical for any thread count.
template <typename Body>
void run_chunks(Executor* executor, size_t items, size_t bytes_per_item, const Body& body) {
  size_t tasks = 1;
  if (executor && items > 1) {
    const size_t by_bytes = std::max<size_t>(1, items * bytes_per_item / kMinBytesPerTask);
    tasks = std::min({executor->num_threads(), items, by_bytes});
  }
  if (tasks <= 1) {
    body(size_t{0}, items);
    return;
  }
  struct Context {
    const Body* body;
    size_t items, tasks;
  } context{&body, items, tasks};
  executor->run(
      tasks,
      [](void* c, size_t t) {
        const Context& ctx = *static_cast<const Context*>(c);
        (*ctx.body)(ctx.items * t / ctx.tasks, ctx.items * (t + 1) / ctx.tasks);
      },
      &context);
}

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_OPS_ROWS_H_
