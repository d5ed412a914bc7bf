// The built-in ThreadPool: every task of every job runs exactly once, whether
// the workers are still polling for work (jobs back to back) or asleep (jobs
// further apart than the poll), from one caller or several, and when a task
// runs a job of its own on the same pool, on another pool, or on a host's
// Executor.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tilekit/threading/executor.h"

namespace tilekit {
namespace {

struct Counts {
  std::vector<std::atomic<int>> hits;
  explicit Counts(size_t n) : hits(n) {}
  static void Hit(void* self, size_t task) { static_cast<Counts*>(self)->hits[task].fetch_add(1); }
};

// Runs `jobs` jobs of `tasks` tasks with `gap` between them and checks that
// each task of each job ran once.
void RunJobs(ThreadPool& pool, size_t jobs, size_t tasks, std::chrono::microseconds gap) {
  for (size_t j = 0; j < jobs; ++j) {
    Counts c(tasks);
    pool.run(tasks, &Counts::Hit, &c);
    for (size_t t = 0; t < tasks; ++t) ASSERT_EQ(c.hits[t].load(), 1) << "job " << j << " task " << t;
    if (gap.count()) std::this_thread::sleep_for(gap);
  }
}

TEST(ThreadPool, BackToBackJobsWhileWorkersPoll) {
  for (size_t threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    RunJobs(pool, 2000, threads, std::chrono::microseconds(0));
    RunJobs(pool, 200, 7 * threads + 1, std::chrono::microseconds(0));  // more tasks than threads
  }
}

TEST(ThreadPool, JobsAfterWorkersSleep) {
  ThreadPool pool(3);
  // Gaps well past the poll (kSpin) put the workers to sleep on the condition variable.
  RunJobs(pool, 20, 5, ThreadPool::kSpin * 20);
  RunJobs(pool, 20, 5, ThreadPool::kSpin / 2);  // around the poll's end
}

TEST(ThreadPool, ZeroAndOneTask) {
  ThreadPool pool(2);
  Counts none(1);
  pool.run(0, &Counts::Hit, &none);
  EXPECT_EQ(none.hits[0].load(), 0);
  RunJobs(pool, 10, 1, std::chrono::microseconds(0));
}

TEST(ThreadPool, SeveralCallersAreSerialised) {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::atomic<int> failures{0};
  for (int i = 0; i < 3; ++i) {
    callers.emplace_back([&] {
      for (int j = 0; j < 300; ++j) {
        Counts c(4);
        pool.run(4, &Counts::Hit, &c);
        for (auto& h : c.hits) failures += h.load() != 1;
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// Destroying a pool whose workers are polling or asleep returns (joins them).
TEST(ThreadPool, DestroyWhilePollingOrAsleep) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(2);
    RunJobs(pool, 1, 2, std::chrono::microseconds(0));
  }
  ThreadPool asleep(2);
  RunJobs(asleep, 1, 2, ThreadPool::kSpin * 20);
}

// Runs `body` on a thread of its own and fails if it has not returned within
// kLimit. A deadlocked body is detached, with everything it owns, rather
// than hanging the test binary, so `body` must capture by value. The limit
// only tells a deadlock (never returns) from a slow run: under qemu on the
// 2-core machine with other builds running, the 60 chains of
// PoolsNestedThroughEachOther once took over 3 s (natively: milliseconds).
void ExpectReturns(const char* what, std::function<void()> body) {
  constexpr std::chrono::seconds kLimit{60};
  std::promise<void> returned;
  std::future<void> done = returned.get_future();
  std::thread runner([body = std::move(body), returned = std::move(returned)]() mutable {
    body();
    returned.set_value();
  });
  if (done.wait_for(kLimit) != std::future_status::ready) {
    runner.detach();
    ADD_FAILURE() << what << ": did not return within " << kLimit.count() << " s (deadlock)";
    return;
  }
  runner.join();
}

// Waits, yielding, until `n` tasks have arrived; false after a second.
bool Meet(std::atomic<size_t>& arrived, size_t n) {
  arrived.fetch_add(1);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (arrived.load() < n) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::yield();
  }
  return true;
}

// A job asked for by a task of the same executor. ThreadPool runs it inline:
// every task on the asking thread, in order.
struct NestedJob {
  explicit NestedJob(size_t tasks) : counts(tasks) {}
  Counts counts;
  const std::thread::id asker = std::this_thread::get_id();
  std::atomic<size_t> calls{0};
  std::atomic<int> off_thread{0}, out_of_order{0};

  static void Run(void* self, size_t task) {
    auto* job = static_cast<NestedJob*>(self);
    Counts::Hit(&job->counts, task);
    job->off_thread += std::this_thread::get_id() != job->asker;
    job->out_of_order += job->calls.fetch_add(1) != task;
  }
};

// The job around it: each task runs a NestedJob of `inner` tasks on `ex`.
// With `meet`, the tasks (one per thread of `ex`) wait for each other before
// asking, so the caller's thread and every worker each ask once.
struct OuterJob {
  Executor* ex;
  size_t inner;
  bool meet;
  Counts counts;
  std::atomic<size_t> arrived{0};
  std::atomic<int> failures{0};
  std::mutex mutex;
  std::set<std::thread::id> askers;

  OuterJob(Executor* e, size_t outer, size_t in, bool m) : ex(e), inner(in), meet(m), counts(outer) {}

  static void Run(void* self, size_t task) {
    auto* job = static_cast<OuterJob*>(self);
    Counts::Hit(&job->counts, task);
    if (job->meet && !Meet(job->arrived, job->ex->num_threads())) ++job->failures;
    NestedJob nested(job->inner);
    job->ex->run(job->inner, &NestedJob::Run, &nested);
    for (auto& h : nested.counts.hits) job->failures += h.load() != 1;
    job->failures += nested.off_thread.load() + nested.out_of_order.load();
    std::lock_guard<std::mutex> lock(job->mutex);
    job->askers.insert(std::this_thread::get_id());
  }
};

void RunNested(Executor& ex, size_t outer, size_t inner, bool meet) {
  OuterJob job(&ex, outer, inner, meet);
  ex.run(outer, &OuterJob::Run, &job);
  for (size_t t = 0; t < outer; ++t) EXPECT_EQ(job.counts.hits[t].load(), 1) << "outer task " << t;
  EXPECT_EQ(job.failures.load(), 0) << "nested tasks not run once each, inline, in order";
  if (meet) {
    EXPECT_EQ(job.askers.size(), ex.num_threads()) << "not every thread asked for a nested job";
  }
}

TEST(ThreadPool, NestedRunFromCallerAndWorkersRunsInline) {
  for (size_t threads : {2, 4}) {
    const std::string what = std::to_string(threads) + " threads";
    ExpectReturns(what.c_str(), [threads] {
      ThreadPool pool(threads);
      RunNested(pool, threads, 5, /*meet=*/true);
      // Unsynchronised outer tasks, more than threads: nested jobs overlap at random.
      for (int j = 0; j < 20; ++j) RunNested(pool, 7 * threads + 1, 3, /*meet=*/false);
      RunJobs(pool, 10, threads, std::chrono::microseconds(0));  // and the pool still works
    });
  }
}

// A job on levels[0] whose every task runs a job on levels[1], and so on; the
// tasks of the last level count their calls, indexed by their path of task
// indices (width^depth of them).
struct Chain {
  std::vector<Executor*> levels;
  size_t width;
  Counts leaves;
  Chain(std::vector<Executor*> l, size_t w) : levels(std::move(l)), width(w), leaves(LeafCount(levels.size(), w)) {}
  static size_t LeafCount(size_t depth, size_t width) {
    size_t n = 1;
    for (size_t d = 0; d < depth; ++d) n *= width;
    return n;
  }
};

struct ChainLevel {
  Chain* chain;
  size_t depth;
  size_t path;

  static void Run(void* self, size_t task) {
    const auto* level = static_cast<const ChainLevel*>(self);
    Chain& chain = *level->chain;
    const size_t path = level->path * chain.width + task;
    if (level->depth + 1 == chain.levels.size()) {
      Counts::Hit(&chain.leaves, path);
      return;
    }
    ChainLevel next{&chain, level->depth + 1, path};
    chain.levels[next.depth]->run(chain.width, &ChainLevel::Run, &next);
  }
};

void RunChain(std::vector<Executor*> levels, size_t width) {
  Chain chain(std::move(levels), width);
  ChainLevel top{&chain, 0, 0};
  chain.levels[0]->run(width, &ChainLevel::Run, &top);
  for (size_t i = 0; i < chain.leaves.hits.size(); ++i) EXPECT_EQ(chain.leaves.hits[i].load(), 1) << "leaf " << i;
}

// A job whose tasks, one per thread of the pool, wait for each other: it only
// completes if it runs in parallel. Each task then runs a job on `then`.
struct MeetingJob {
  size_t tasks;
  ThreadPool* then;
  std::atomic<size_t> arrived{0};
  std::atomic<int> failures{0};

  static void Run(void* self, size_t) {
    auto* job = static_cast<MeetingJob*>(self);
    if (!Meet(job->arrived, job->tasks)) ++job->failures;
    if (!job->then) return;
    Counts c(3);
    job->then->run(3, &Counts::Hit, &c);
    for (auto& h : c.hits) job->failures += h.load() != 1;
  }
};

// A task of pool A that runs a MeetingJob on pool B.
struct AskOtherPool {
  ThreadPool* other;
  ThreadPool* then;
  std::atomic<int> failures{0};

  static void Run(void* self, size_t) {
    auto* ask = static_cast<AskOtherPool*>(self);
    MeetingJob job{ask->other->num_threads(), ask->then};
    ask->other->run(job.tasks, &MeetingJob::Run, &job);
    ask->failures += job.failures.load();
  }
};

TEST(ThreadPool, TaskOfOnePoolRunsAnotherInParallel) {
  ExpectReturns("pool A's tasks running pool B", [] {
    ThreadPool a(2), b(3);
    AskOtherPool ask{&b, nullptr};
    a.run(a.num_threads(), &AskOtherPool::Run, &ask);  // B serialises A's tasks' calls
    EXPECT_EQ(ask.failures.load(), 0) << "pool B ran inline inside pool A's task";
    RunChain({&a, &b}, 5);
  });
}

// A -> B -> A: B's tasks work for A's job, on B's workers too, so A runs their
// jobs inline.
TEST(ThreadPool, PoolsNestedThroughEachOther) {
  ExpectReturns("chains of pools A and B", [] {
    ThreadPool a(2), b(2);
    AskOtherPool ask{&b, &a};  // B's job meets, so B's worker calls A
    a.run(a.num_threads(), &AskOtherPool::Run, &ask);
    EXPECT_EQ(ask.failures.load(), 0);
    for (int j = 0; j < 20; ++j) {
      RunChain({&a, &b, &a}, 3);
      RunChain({&b, &a, &b, &a}, 3);
      RunChain({&a, &a, &b, &b}, 3);
    }
  });
}

// An engine's Executor, as small as the contract in executor.h allows: each
// job starts its own helper threads, so concurrent callers need no lock, and
// run() from inside one of its own tasks runs the tasks inline, as a pool of
// fixed threads must.
class ThreadPerJobExecutor final : public Executor {
 public:
  explicit ThreadPerJobExecutor(size_t threads) : threads_(threads) {}
  size_t num_threads() const override { return threads_; }
  void run(size_t tasks, TaskFn fn, void* context) override {
    if (in_task_of_ == this) {
      for (size_t t = 0; t < tasks; ++t) fn(context, t);
      return;
    }
    std::atomic<size_t> next{0};
    const auto drain = [&] {
      const ThreadPerJobExecutor* const outer = in_task_of_;
      in_task_of_ = this;
      for (size_t t; (t = next.fetch_add(1)) < tasks;) fn(context, t);
      in_task_of_ = outer;
    };
    std::vector<std::thread> helpers;
    for (size_t i = 1; i < threads_; ++i) helpers.emplace_back(drain);
    drain();
    for (std::thread& h : helpers) h.join();
  }

 private:
  static inline thread_local const ThreadPerJobExecutor* in_task_of_ = nullptr;
  const size_t threads_;
};

TEST(HostExecutor, NestedRunsAndPoolsInside) {
  ExpectReturns("nesting with a host executor", [] {
    for (size_t threads : {2, 4}) {
      ThreadPerJobExecutor host(threads);
      RunNested(host, threads, 5, /*meet=*/true);
      RunNested(host, 2 * threads + 1, 3, /*meet=*/false);
    }
    // A kernel on tilekit's pool inside an engine task, whose tasks call back
    // into the engine, or into the same pool (attention calling a GEMM).
    ThreadPerJobExecutor host(2);
    ThreadPool pool(2);
    RunChain({&host, &pool, &host}, 3);
    RunChain({&host, &pool, &pool}, 3);
  });
}

}  // namespace
}  // namespace tilekit
