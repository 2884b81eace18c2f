#include "thread_pool.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#include <immintrin.h>
#define SPARROW_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define SPARROW_PAUSE() __asm__ __volatile__("yield")
#else
#define SPARROW_PAUSE() ((void)0)
#endif

#if defined(__linux__)
#include <sched.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

namespace sparrow {

namespace {
// How long an idle worker polls for the next job before it sleeps. A forward pass
// starts a new parallel region every few microseconds; between tokens (the JS thread
// samples, the next evaluate is queued) the gap is longer and the workers sleep, so a
// core taken by another thread is not also fought for by a spinning worker.
constexpr int kWorkerSpins = 20000;  // pause instructions: ~0.1-0.5 ms depending on the CPU
// How long the caller polls for the last running tasks before it yields its core.
constexpr int kCallerSpins = 2000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(size_t(n_threads_ - 1));
  for (int t = 1; t < n_threads_; t++) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void ThreadPool::work(uint32_t gen, int thread) {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    if (ticket_gen(t) != (gen & 0xffffff) || ticket_idx(t) >= ticket_count(t)) return;
    if (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
    // The task is ours, so the job cannot end (and fn_/ctx_ cannot change) before we finish it.
    int task = int(ticket_idx(t));
    if (!failed_.load(std::memory_order_relaxed)) {
      try {
        fn_(ctx_, task, thread);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true);
      }
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_main(int thread) {
  uint32_t seen = 0;
  for (;;) {
    // Wait for a job newer than the last one seen: spin a little, then sleep.
    uint32_t gen = ticket_gen(ticket_.load(std::memory_order_acquire));
    for (int i = 0; gen == seen && i < kWorkerSpins && !stop_.load(std::memory_order_relaxed); i++) {
      SPARROW_PAUSE();
      gen = ticket_gen(ticket_.load(std::memory_order_acquire));
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(sleep_mutex_);
      sleepers_.fetch_add(1);  // seq_cst: pairs with the caller's store of the ticket, then load of sleepers_
      wake_.wait(lock, [&] {
        gen = ticket_gen(ticket_.load());
        return gen != seen || stop_.load();
      });
      sleepers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = gen;
    work(gen, thread);
  }
}

void ThreadPool::run_raw(int n_tasks, TaskFn fn, void* ctx) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {  // nothing to share
    for (int i = 0; i < n_tasks; i++) fn(ctx, i, 0);
    return;
  }
  if (uint64_t(n_tasks) > kIdxMask) throw std::length_error("thread pool: too many tasks");
  fn_ = fn;
  ctx_ = ctx;
  done_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  error_ = nullptr;
  gen_ = (gen_ + 1) & 0xffffff;
  if (gen_ == 0) gen_ = 1;  // 0 is the generation workers start from
  ticket_.store(ticket(gen_, uint32_t(n_tasks), 0));  // seq_cst: publishes fn_, ctx_, done_
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    wake_.notify_all();
  }
  work(gen_, 0);
  // Every task is taken; wait for the ones still running on other threads.
  for (int i = 0; done_.load(std::memory_order_acquire) < n_tasks; i++) {
    if (i < kCallerSpins) SPARROW_PAUSE();
    else std::this_thread::yield();  // let a descheduled worker finish on this core
  }
  if (failed_.load()) {
    std::exception_ptr e = std::move(error_);
    error_ = nullptr;
    std::rethrow_exception(e);
  }
}

int ThreadPool::default_threads() {
  int logical = int(std::max(1u, std::thread::hardware_concurrency()));
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return logical;
  std::set<std::pair<int, int>> cores;  // (package, core) of every CPU we may use
  int cpus = 0;
  for (int c = 0; c < CPU_SETSIZE; c++) {
    if (!CPU_ISSET(c, &set)) continue;
    cpus++;
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    std::ifstream core(base + "core_id"), pkg(base + "physical_package_id");
    int core_id = -1, pkg_id = -1;
    if (!(core >> core_id) || !(pkg >> pkg_id)) return cpus > 0 ? std::max(1, CPU_COUNT(&set)) : logical;
    cores.insert({pkg_id, core_id});
  }
  return cores.empty() ? logical : int(cores.size());
#elif defined(__APPLE__)
  int n = 0;
  size_t len = sizeof(n);
  if (sysctlbyname("hw.perflevel0.physicalcpu", &n, &len, nullptr, 0) == 0 && n > 0) return n;  // performance cores
  if (sysctlbyname("hw.physicalcpu", &n, &len, nullptr, 0) == 0 && n > 0) return n;
  return logical;
#else
  return logical;
#endif
}

}  // namespace sparrow
