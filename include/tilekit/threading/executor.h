// How tilekit runs work on several threads: an Executor runs `tasks` calls of a
// function, each with its task index, and returns when all are done. A host
// engine implements Executor over its own pool; ThreadPool is the built-in one.
// Nothing here is global: a kernel runs on the caller's thread unless it is
// handed an Executor.
#ifndef TILEKIT_THREADING_EXECUTOR_H_
#define TILEKIT_THREADING_EXECUTOR_H_

#include <atomic>
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
  virtual void run(size_t tasks, TaskFn fn, void* context) = 0;
};

// A fixed set of worker threads plus the calling thread. Workers sleep on a
// condition variable between jobs; a job hands out task indices through an
// atomic counter, so uneven tasks balance themselves. One job at a time: run()
// from two threads at once is serialised.
class ThreadPool final : public Executor {
 public:
  explicit ThreadPool(size_t threads) : threads_(threads ? threads : 1) {
    workers_.reserve(threads_ - 1);
    for (size_t i = 1; i < threads_; ++i) workers_.emplace_back([this] { work(); });
  }
  ~ThreadPool() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t num_threads() const override { return threads_; }

  void run(size_t tasks, TaskFn fn, void* context) override {
    if (tasks == 0) return;
    if (threads_ == 1 || tasks == 1) {
      for (size_t t = 0; t < tasks; ++t) fn(context, t);
      return;
    }
    std::lock_guard<std::mutex> one_job(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = fn;
      context_ = context;
      tasks_ = tasks;
      next_.store(0);
      busy_ = workers_.size();
      ++generation_;
    }
    wake_.notify_all();
    drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
  }

 private:
  void drain() {
    for (size_t t; (t = next_.fetch_add(1)) < tasks_;) fn_(context_, t);
  }
  void work() {
    size_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      drain();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }

  const size_t threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  TaskFn fn_ = nullptr;
  void* context_ = nullptr;
  size_t tasks_ = 0, busy_ = 0, generation_ = 0;
  std::atomic<size_t> next_{0};
  bool stop_ = false;
};

}  // namespace tilekit

#endif  // TILEKIT_THREADING_EXECUTOR_H_
