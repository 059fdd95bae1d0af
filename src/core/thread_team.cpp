// ThreadTeam: a centralized generation barrier that spins briefly and then sleeps on a futex
// (std::atomic::wait); jobs are dispatched through the same barrier. See thread_team.h for why.
#include "core/thread_team.h"

#include <chrono>
#if defined(__linux__)
#include <sched.h>
#endif

namespace diffuse {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// CPUs this process may run on (its affinity mask: a container's or taskset's share).
int available_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

}  // namespace

ThreadTeam::ThreadTeam(int n) : n_(n < 1 ? 1 : n) {
  if (n_ > available_cpus()) spin_ = idle_spin_ = kOversubscribedSpinSeconds;
  threads_.reserve(static_cast<size_t>(n_ - 1));
  try {
    for (int p = 1; p < n_; ++p) threads_.emplace_back([this, p] { worker(p); });
  } catch (...) {
    // Out of threads: the ones started leave before touching the barrier, and the error goes to
    // the caller (instead of std::terminate for joinable threads).
    gate_.store(-1);
    gate_.notify_all();
    for (auto& t : threads_) t.join();
    throw;
  }
  gate_.store(1);
  gate_.notify_all();
}

ThreadTeam::~ThreadTeam() {
  if (threads_.empty()) return;
  stop_ = true;  // published by the barrier below
  sync_spinning(idle_spin_);
  for (auto& t : threads_) t.join();
}

void ThreadTeam::run_job() {
  if (n_ == 1) {
    call_(job_, 0);
    return;
  }
  sync_spinning(idle_spin_);  // start: job_ and call_ are published to the workers
  call_(job_, 0);
  sync();  // end: every worker is done with the job
}

void ThreadTeam::worker(int p) {
  gate_.wait(0);  // until the constructor has started every thread, or given up
  if (gate_.load() < 0) return;
  for (;;) {
    sync_spinning(idle_spin_);  // wait for a job (or the stop)
    if (stop_) return;
    call_(job_, p);
    sync();
  }
}

void ThreadTeam::sync_spinning(double spin_seconds) {
  if (n_ == 1) return;
  const uint32_t seen = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    // Last to arrive: reset for the next barrier, then release this one. Everything the others
    // wrote before arriving is visible here (acq_rel chain on arrived_), and everything written
    // here is visible to them once they see the new generation.
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(seen + 1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0) generation_.notify_all();
    return;
  }
  wait_for_generation_change(seen, spin_seconds);
}

void ThreadTeam::wait_for_generation_change(uint32_t seen, double spin_seconds) {
  using clock = std::chrono::steady_clock;
  const auto give_up = clock::now() + std::chrono::duration<double>(spin_seconds);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (generation_.load(std::memory_order_acquire) != seen) return;
      cpu_relax();
    }
    if (clock::now() > give_up) break;
  }
  // Sleep. The count goes up before the generation is checked again (both sequentially
  // consistent), so the releasing thread either sees a sleeper and wakes it, or stored the new
  // generation before this check, which then does not sleep.
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  while (generation_.load(std::memory_order_seq_cst) == seen) {
    generation_.wait(seen, std::memory_order_seq_cst);
  }
  sleepers_.fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace diffuse
