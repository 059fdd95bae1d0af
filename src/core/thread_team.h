// A fixed team of threads for the trainer's data-parallel steps: run(f) calls f(p) for p = 0..n-1
// (p = 0 on the caller's thread) and sync() is a barrier among them. Not a general task pool.
//
// Why not OpenMP: a training step is about 100 us, with four synchronizations in it. libgomp
// spins up to a few hundred thousand iterations at each wait, so when the machine is busy a waiting
// thread burns the CPU its partner needs and training gets ~10x slower. Here a wait spins for at
// most kSpinSeconds, then sleeps on a futex (std::atomic::wait), and a region spans a whole epoch.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace diffuse {

class ThreadTeam {
 public:
  // How long a waiting thread spins before it sleeps: longer than the waits inside a step on an
  // idle machine (a few microseconds), far shorter than a scheduler time slice.
  static constexpr double kSpinSeconds = 50e-6;
  // Between jobs (a trainer's epochs: shuffling, logging, progress) the workers spin longer, so
  // that the next job does not start with a futex wake-up (tens of microseconds in a VM).
  static constexpr double kIdleSpinSeconds = 1e-3;
  // With more threads than CPUs a spinning thread holds the CPU a descheduled one needs: sleep
  // almost at once (libgomp does the same; spinning made 3 threads on 2 CPUs 1.6x slower).
  static constexpr double kOversubscribedSpinSeconds = 1e-6;

  // n >= 1 threads in all, the caller's included. Throws std::system_error when the system cannot
  // start them (and leaves none running).
  explicit ThreadTeam(int n);
  ~ThreadTeam();
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  int size() const { return n_; }

  // Calls f(p) on every thread of the team and returns when all have returned. f must not throw
  // (a worker has no one to throw to). Allocates nothing.
  template <typename F>
  void run(F& f) {
    static_assert(std::is_invocable_v<F&, int>);
    job_ = &f;
    call_ = [](void* job, int p) { (*static_cast<F*>(job))(p); };
    run_job();
  }

  // Barrier: returns once all n threads of the team have called it. Only inside run().
  void sync() { sync_spinning(spin_); }

 private:
  void sync_spinning(double spin_seconds);
  void run_job();
  void worker(int p);
  void wait_for_generation_change(uint32_t seen, double spin_seconds);

  int n_;
  double spin_ = kSpinSeconds, idle_spin_ = kIdleSpinSeconds;
  void* job_ = nullptr;
  void (*call_)(void*, int) = nullptr;
  bool stop_ = false;
  // The barrier: arrivals in this generation, and the generation, bumped by the last arrival. One
  // cache line for both: the last arrival then owns the line it releases the others with, which
  // saves a transfer between cores (0.4 to 1.4 us each on the machine of docs/PERFORMANCE.md).
  alignas(64) std::atomic<int> arrived_{0};
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> sleepers_{0};  // threads asleep in wait(): only then is a wake-up needed
  alignas(64) char pad_ = 0;      // nothing else on the barrier's line
  std::atomic<int> gate_{0};      // 1 once all threads run, -1 if one could not be started
  std::vector<std::thread> threads_;
};

}  // namespace diffuse
