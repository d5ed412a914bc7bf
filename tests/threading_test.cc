// The built-in ThreadPool: every task of every job runs exactly once, whether
// the workers are still polling for work (jobs back to back) or asleep (jobs
// further apart than the poll), from one caller or several.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
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

}  // namespace
}  // namespace tilekit
