// How tilekit runs work on several threads: an Executor runs `tasks` calls of a
// function, each with its task index, and returns when all are done. A host
// engine implements Executor over its own pool; ThreadPool is the built-in one.
// Nothing here is global: a kernel runs on the caller's thread unless it is
// handed an Executor.
#ifndef TILEKIT_THREADING_EXECUTOR_H_
#define TILEKIT_THREADING_EXECUTOR_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace tilekit {

class Executor {
 public:
  using TaskFn = void (*)(void* context, size_t task);
  virtual ~Executor() = default;
  // How many tasks can make progress at once (tilekit splits work this many ways).
  virtual size_t num_threads() const = 0;
  // Runs fn(context, t) for t in [0, tasks), in any order and on any threads, and
  // returns after every call has returned. Must not throw.
  //
  // An implementation must also complete when run() is
  //  - called from inside one of its own tasks: tilekit kernels are called from
  //    an engine's tasks, and tilekit's attention and graph code call kernels
  //    with the executor they were handed. Waiting there for the running job
  //    deadlocks, since that job waits for the calling task; running the nested
  //    tasks inline on the calling thread is enough (ThreadPool does).
  //  - called from several host threads at once (serialising them is fine).
  virtual void run(size_t tasks, TaskFn fn, void* context) = 0;
};

// A fixed set of worker threads plus the calling thread. A job hands out task
// indices through an atomic counter, so uneven tasks balance themselves. One
// job at a time: run() from two threads at once is serialised, and run() from
// a task that the current job waits for (a task of this pool, or of another
// ThreadPool's job that such a task asked for) runs its tasks inline, in order,
// on the calling thread. Two cases still deadlock, as locks taken in opposite
// orders do: a host Executor's thread, working for this pool's task, calling
// this pool (the link between the jobs is lost on that thread), and two threads
// at once running pool A's job into pool B and B's into A.
//
// Between jobs a worker polls for the next one for kSpin (and the caller
// polls for the workers' end of a job as long) before sleeping on a condition
// variable: a model runs its layers back to back, and waking a sleeping thread
// took tens of microseconds, as long as a whole small GEMM (10 × 10 × 11008
// ran slower on 2 threads than on 1). The poll is short so that a pool left
// idle gives its cores back almost at once (GNU OpenMP's workers spin ~20 ms).
class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(size_t threads) : threads_(threads ? threads : 1) {
    workers_.reserve(threads_ - 1);
    for (size_t i = 1; i < threads_; ++i) workers_.emplace_back([this] { work(); });
  }
  ~ThreadPool() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_flag_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t num_threads() const override { return threads_; }

  static constexpr std::chrono::microseconds kSpin{100};

  void run(size_t tasks, TaskFn fn, void* context) override {
    if (tasks == 0) return;
    // Working for this pool's job: that job holds run_mutex_ and waits for the
    // calling task, so waiting for it in turn would deadlock.
    if (threads_ == 1 || tasks == 1 || working_for_own_job()) {
      for (size_t t = 0; t < tasks; ++t) fn(context, t);
      return;
    }
    std::lock_guard<std::mutex> one_job(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = fn;
      context_ = context;
      tasks_ = tasks;
      asker_ = innermost_;
      next_.store(0);
      busy_.store(workers_.size());
      generation_.fetch_add(1, std::memory_order_release);  // publishes the job to polling workers
    }
    wake_.notify_all();
    drain();
    if (poll([this] { return busy_.load(std::memory_order_acquire) == 0; })) return;
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_.load(std::memory_order_acquire) == 0; });
  }

 private:
  // The jobs a thread is working for, innermost first: a chain of frames on
  // the stacks of the threads running them. A worker links its frame to the
  // asker's chain, since a job asked for by a task of pool A is work that A's
  // job waits for. The asker's frames outlive the job: it returns after it.
  struct JobFrame {
    const ThreadPool* pool;
    const JobFrame* outer;
  };
  static inline thread_local const JobFrame* innermost_ = nullptr;

  bool working_for_own_job() const {
    for (const JobFrame* f = innermost_; f; f = f->outer) {
      if (f->pool == this) return true;
    }
    return false;
  }

  void drain() {
    const JobFrame* const outer = innermost_;
    const JobFrame frame{this, asker_};
    innermost_ = &frame;
    for (size_t t; (t = next_.fetch_add(1)) < tasks_;) fn_(context_, t);
    innermost_ = outer;
  }
  // Polls `ready` for up to kSpin; true once it holds.
  template <typename Ready>
  static bool poll(Ready ready) {
    const auto until = std::chrono::steady_clock::now() + kSpin;
    for (unsigned i = 1;; ++i) {
      if (ready()) return true;
      if (i % 16 == 0 && std::chrono::steady_clock::now() > until) return false;
      // Not a pause loop: a pool with more threads than free cores must let
      // the thread that has the work run (threading_test, up to 4 threads on
      // 2 cores: 1.1 s with pause instructions, 0.08 s yielding).
      std::this_thread::yield();
    }
  }

  void work() {
    size_t seen = 0;
    for (;;) {
      const auto next_job = [&] {
        return stop_flag_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
      };
      if (!poll(next_job)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, next_job);
      }
      if (stop_flag_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      drain();
      if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Under the mutex, so a caller between its check and its wait cannot
        // miss the notification.
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  const size_t threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  TaskFn fn_ = nullptr;
  void* context_ = nullptr;
  size_t tasks_ = 0;
  const JobFrame* asker_ = nullptr;  // the chain of the thread that called run()
  std::atomic<size_t> next_{0}, busy_{0}, generation_{0};
  std::atomic<bool> stop_flag_{false};
};

}  // namespace tilekit

#endif  // TILEKIT_THREADING_EXECUTOR_H_
