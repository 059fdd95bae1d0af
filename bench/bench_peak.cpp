// The FMA-peak kernel: independent fused multiply-add chains on Eigen packets (the widest SIMD
// registers this build targets), so every other figure can be read as a share of this machine's
// peak.
#include <Eigen/Core>
#include <algorithm>
#include <atomic>
#include <thread>

#include "bench_util.h"
#include "core/thread_team.h"

namespace diffuse::bench {
namespace {

using Packet = Eigen::internal::packet_traits<float>::type;
constexpr int kLanes = Eigen::internal::packet_traits<float>::size;
// Enough independent chains to cover FMA latency x FMA pipes (4 x 2 on Zen 4/5, 4 x 2 on Intel).
constexpr int kChains = 16;

}  // namespace

// noinline so the compiler cannot fold the chains across calls.
__attribute__((noinline)) double fma_flops(int64_t iters, bool wall) {
  using Eigen::internal::pmadd;
  using Eigen::internal::pset1;
  Packet acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = pset1<Packet>(1.0f + 1e-3f * c);
  // acc = acc * a + b with a just below 1 and b small stays bounded: no overflow, no denormals.
  Packet a = pset1<Packet>(0.9999999f);
  Packet b = pset1<Packet>(1e-7f);
  auto clock = wall ? wall_s : cpu_s;
  const double t0 = clock();
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int c = 0; c < kChains; ++c) acc[c] = pmadd(acc[c], a, b);
    // Keep a and b opaque so the loop cannot be reduced to a closed form.
    asm volatile("" : "+x"(a), "+x"(b));
  }
  const double seconds = clock() - t0;
  Packet sum = acc[0];
  for (int c = 1; c < kChains; ++c) sum = Eigen::internal::padd(sum, acc[c]);
  benchmark::DoNotOptimize(Eigen::internal::predux(sum));
  return 2.0 * kLanes * kChains * static_cast<double>(iters) / seconds;
}

double fma_peak_flops() {
  static const double peak = [] {
    fma_flops(1 << 20);  // warm up (clock ramp, AVX-512 licence)
    double best = 0;
    for (int r = 0; r < 5; ++r) best = std::max(best, fma_flops(1 << 21));
    return best;
  }();
  return peak;
}

namespace {

void BM_FmaPeak(benchmark::State& state) {
  const int64_t iters = 1 << 16;
  const double t0 = cpu_s();
  for (auto _ : state) benchmark::DoNotOptimize(fma_flops(iters));
  report_flops(state, 2.0 * kLanes * kChains * static_cast<double>(iters), cpu_s() - t0);
  state.counters["lanes"] = kLanes;
}
BENCHMARK(BM_FmaPeak);

// Both cores at once: the sum of two concurrent threads' FMA rates, on wall time (CPU time would
// count two time-sliced threads as concurrent). Where the two vCPUs share one physical core's FMA
// units (SMT siblings) this is about one core's peak, not two; run it on an otherwise idle machine.
void BM_FmaPeakTwoThreads(benchmark::State& state) {
  const int64_t iters = 1 << 18;
  double sum = 0;
  for (auto _ : state) {
    std::atomic<int> ready{0};
    double other = 0;
    std::thread t([&] {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      other = fma_flops(iters, true);
    });
    ready.fetch_add(1);
    while (ready.load() < 2) {
    }
    const double mine = fma_flops(iters, true);
    t.join();
    sum += mine + other;
  }
  const double rate = sum / static_cast<double>(state.iterations());
  state.counters["FLOP/s"] = rate;
  state.counters["peak_pct"] = 100.0 * rate / fma_peak_flops();  // of ONE thread's peak
}
BENCHMARK(BM_FmaPeakTwoThreads)->UseRealTime();

// Core-to-core latency: two threads pass a cache line back and forth; time per round trip. The
// two-thread training step exchanges gradients and weights between the cores every step, so its
// speed-up depends on this (the host places the two vCPUs, and the placement changes over time).
void BM_CoreToCoreRoundTrip(benchmark::State& state) {
  alignas(64) static std::atomic<int64_t> flag{0};
  const int64_t trips = 20000;
  double seconds = 0;
  for (auto _ : state) {
    flag.store(0);
    std::thread t([&] {
      for (int64_t i = 0; i < trips; ++i) {
        while (flag.load(std::memory_order_acquire) != 2 * i + 1) {
        }
        flag.store(2 * i + 2, std::memory_order_release);
      }
    });
    const double t0 = wall_s();
    for (int64_t i = 0; i < trips; ++i) {
      flag.store(2 * i + 1, std::memory_order_release);
      while (flag.load(std::memory_order_acquire) != 2 * i + 2) {
      }
    }
    seconds += wall_s() - t0;
    t.join();
  }
  state.counters["ns_per_trip"] =
      1e9 * seconds / (static_cast<double>(trips) * static_cast<double>(state.iterations()));
}
BENCHMARK(BM_CoreToCoreRoundTrip)->UseRealTime();

// The trainer's barrier (src/core/thread_team.h) between two threads with nothing else to do: the
// floor of what each of a 2-thread step's synchronizations costs.
void BM_TeamBarrier(benchmark::State& state) {
  ThreadTeam team(2);
  const int syncs = 20000;
  auto job = [&](int) {
    for (int i = 0; i < syncs; ++i) team.sync();
  };
  team.run(job);  // warm-up: the worker is awake and spinning
  double seconds = 0;
  for (auto _ : state) {
    const double t0 = wall_s();
    team.run(job);
    seconds += wall_s() - t0;
  }
  state.counters["ns_per_sync"] =
      1e9 * seconds / (static_cast<double>(syncs) * static_cast<double>(state.iterations()));
}
BENCHMARK(BM_TeamBarrier)->UseRealTime();

// The same with libgomp's barrier, side by side (the sampler and the metrics still use OpenMP).
void BM_OmpBarrier(benchmark::State& state) {
  const int syncs = 20000;
  double seconds = 0;
  for (auto _ : state) {
    double t0 = 0;
#pragma omp parallel num_threads(2)
    {
#pragma omp barrier
#pragma omp master
      t0 = wall_s();
      for (int i = 0; i < syncs; ++i) {
#pragma omp barrier
      }
#pragma omp master
      seconds += wall_s() - t0;
    }
  }
  state.counters["ns_per_sync"] =
      1e9 * seconds / (static_cast<double>(syncs) * static_cast<double>(state.iterations()));
}
BENCHMARK(BM_OmpBarrier)->UseRealTime();

}  // namespace
}  // namespace diffuse::bench
