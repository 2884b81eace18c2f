// A small fork-join thread pool for the forward pass. run(n, fn) calls fn(task, thread)
// for every task in [0, n) and returns when all are done. The calling thread works too,
// and tasks are handed out one at a time from a shared counter, so a thread that the OS
// has descheduled (a core briefly taken by the JS thread, say) simply takes fewer tasks
// instead of holding everyone up. Idle workers spin for a short while (the next parallel
// region of a forward pass usually starts within microseconds), then sleep on a condition
// variable, so a pool between tokens costs no CPU.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sparrow {

class ThreadPool {
 public:
  // A pool of n_threads threads in all: the caller of run() plus n_threads - 1 workers.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, thread) for task in [0, n_tasks), thread in [0, size()) (0 = the
  // caller). Not reentrant, and one caller at a time (the model serializes its users).
  // An exception thrown by fn is rethrown here after every task has ended.
  template <class F>
  void run(int n_tasks, F&& fn) {
    struct Thunk {
      static void call(void* ctx, int task, int thread) { (*static_cast<F*>(ctx))(task, thread); }
    };
    run_raw(n_tasks, &Thunk::call, &fn);
  }

  // Threads to use by default: the number of physical cores this process may run on.
  static int default_threads();

 private:
  using TaskFn = void (*)(void* ctx, int task, int thread);
  void run_raw(int n_tasks, TaskFn fn, void* ctx);
  void worker_main(int thread);
  // Takes and runs tasks of job `gen` until none is left.
  void work(uint32_t gen, int thread);

  // The job ticket packs (generation, task count, next task index) into one word, so a
  // worker waking late can never take a task of a newer job with an older job's count.
  static constexpr int kIdxBits = 20, kCountBits = 20;
  static constexpr uint64_t kIdxMask = (uint64_t(1) << kIdxBits) - 1;
  static uint64_t ticket(uint32_t gen, uint32_t count, uint32_t idx) {
    return (uint64_t(gen) << (kIdxBits + kCountBits)) | (uint64_t(count) << kIdxBits) | idx;
  }
  static uint32_t ticket_gen(uint64_t t) { return uint32_t(t >> (kIdxBits + kCountBits)); }
  static uint32_t ticket_count(uint64_t t) { return uint32_t((t >> kIdxBits) & kIdxMask); }
  static uint32_t ticket_idx(uint64_t t) { return uint32_t(t & kIdxMask); }

  int n_threads_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> done_{0};          // tasks finished in the current job
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  uint32_t gen_ = 0;                  // written by the caller only

  std::atomic<bool> failed_{false};
  std::exception_ptr error_;          // the first exception of the current job
  std::mutex error_mutex_;

  std::mutex sleep_mutex_;
  std::condition_variable wake_;
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace sparrow
