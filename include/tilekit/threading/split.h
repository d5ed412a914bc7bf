// When a kernel splits its work over an Executor: one rule for every kernel
// (GEMM, the row ops, attention), in one unit.
//
// A call's work is estimated in nanoseconds on one core: its arithmetic at
// kFlopsPerNs or its memory traffic at kBytesPerNs, whichever takes longer.
// It is split over as many tasks as give each at least kMinTaskNs. Waking
// another thread and waiting for it costs microseconds, more in a loaded VM
// where the other vCPU may be busy: split below that and a call runs slower on
// two threads than on one (warm 1 × 256 × 256 and 32 × 128 × 128 GEMMs, ~6 and
// ~13 µs alone, ran 0.53x and 0.49x as fast split over two threads with ~5 µs
// per task).
//
// The rule decides only how many tasks run; what each task computes is fixed
// by the kernel, so results are the same for any thread count.
#ifndef TILEKIT_THREADING_SPLIT_H_
#define TILEKIT_THREADING_SPLIT_H_

#include <algorithm>
#include <cstddef>

#include "tilekit/threading/executor.h"

namespace tilekit {
namespace detail {

// ~100 GFLOP/s of fp32 FMA per core, and ~25 GB/s: a call small enough for
// the split to matter touches data that is warm in L2 or L3 (cold data comes
// in calls large enough to split anyway).
constexpr double kFlopsPerNs = 100.0;
constexpr double kBytesPerNs = 25.0;
constexpr double kMinTaskNs = 10000.0;  // 10 µs

struct Work {
  double flops = 0, bytes = 0;
  double ns() const { return std::max(flops / kFlopsPerNs, bytes / kBytesPerNs); }
};

// How many tasks `work` is worth on `executor` (1: run on the calling thread),
// at most max_tasks.
inline size_t worth_tasks(const Executor* executor, const Work& work, size_t max_tasks) {
  if (!executor || max_tasks <= 1) return 1;
  const double by_work = work.ns() / kMinTaskNs;
  const size_t cap = std::min(executor->num_threads(), max_tasks);
  return by_work >= static_cast<double>(cap) ? cap : std::max<size_t>(1, static_cast<size_t>(by_work));
}

// Runs body(begin, end) over [0, items) in contiguous chunks, as many as
// worth_tasks allows for `per_item` work each. Each item is computed whole by
// one task with the same code whatever the split, so results are bitwise
// identical for any thread count.
template <typename Body>
void run_chunks(Executor* executor, size_t items, const Work& per_item, const Body& body) {
  const Work total{per_item.flops * static_cast<double>(items), per_item.bytes * static_cast<double>(items)};
  const size_t tasks = worth_tasks(executor, total, items);
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

#endif  // TILEKIT_THREADING_SPLIT_H_
