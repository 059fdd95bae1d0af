// Benchmarks of sampling: 10,000 points over T=100 DDPM steps through the sampler and
// model_eps_fn, at one and two threads, with the heap allocations per step. Not a quality test.
#include <vector>

#include "bench_util.h"
#include "diffuse/sampler.h"

namespace diffuse::bench {
namespace {

void BM_Sample(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  const int T = static_cast<int>(state.range(2));
  const ModelConfig c{2, 128, T};
  Model m(c);
  Rng rng(11);
  m.init(rng);
  ScheduleConfig sc = ScheduleConfig::tutorial();
  sc.T = T;
  const Schedule schedule = make_schedule(sc);
  const EpsFn eps = model_eps_fn(c, m.params, threads);
  SampleConfig cfg;  // DDPM, every one of the T steps
  cfg.threads = threads;
  benchmark::DoNotOptimize(sample(eps, schedule, n, c.dim, cfg));  // warm-up
  int64_t allocs = 0;
  auto clock = threads == 1 ? cpu_s : wall_s;
  const double t0 = clock();
  for (auto _ : state) {
    const int64_t before = allocation_count();
    Points x = sample(eps, schedule, n, c.dim, cfg);
    allocs += allocation_count() - before;
    benchmark::DoNotOptimize(x.data());
  }
  // FLOP of the T forward passes; the sampler's own updates and noise are in the time too.
  report_flops(state, T * forward_flops(c.dim, c.hidden, n), clock() - t0);
  state.counters["allocs/call"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}
// Allocations that do not grow with T are the result and the sampler's buffers; any that grow
// with T are made inside the sampling loop (compare T=100 with T=20).
BENCHMARK(BM_Sample)
    ->ArgNames({"threads", "n", "T"})
    ->Args({1, 10000, 100})
    ->Args({1, 10000, 20})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sample)
    ->ArgNames({"threads", "n", "T"})
    ->Args({1, 10000, 100})
    ->Args({2, 10000, 100})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
}  // namespace diffuse::bench
