// The scale table: one training epoch and the sampling time for N points of D dimensions, with the
// process's peak memory. Registered only when DIFFUSE_BENCH_SCALE is set (minutes, not seconds):
// bench/scale_table.sh runs each size in its own process, so the peak memory is that size's.
#include <sys/resource.h>

#include <climits>
#include <cstdlib>
#include <string>

#include "bench_util.h"
#include "diffuse/sampler.h"
#include "diffuse/train.h"

namespace diffuse::bench {
namespace {

double max_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

constexpr int kH = 128, kT = 100;

// One epoch over N random points (batch 128, one thread): seconds and steps/s.
void BM_ScaleTrainEpoch(benchmark::State& state) {
  const auto N = static_cast<Eigen::Index>(state.range(0));
  const int D = static_cast<int>(state.range(1));
  const ModelConfig c{D, kH, kT};
  Model m(c);
  Rng rng(3);
  m.init(rng);
  const Schedule schedule = make_schedule(ScheduleConfig::tutorial());
  Points data(N, D);
  rng.fill_normal(data.data(), static_cast<size_t>(data.size()));
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = INT_MAX;
  Trainer trainer(m, schedule, data, tc);
  const double steps = static_cast<double>((N + tc.batch_size - 1) / tc.batch_size);
  const double t0 = cpu_s();
  for (auto _ : state) trainer.run_epoch();
  const double per_epoch = (cpu_s() - t0) / static_cast<double>(state.iterations());
  state.counters["epoch_s"] = per_epoch;
  state.counters["steps/s"] = steps / per_epoch;
  state.counters["us/point"] = 1e6 * per_epoch / static_cast<double>(N);
  state.counters["max_rss_MiB"] = max_rss_mib();
}

// Sampling N points: DDIM with eta = 1 (fresh noise every step, like DDPM) over 2 steps, timed
// per step; sample_s is that times the T = 100 steps of DDPM.
void BM_ScaleSample(benchmark::State& state) {
  const int N = static_cast<int>(state.range(0));
  const int D = static_cast<int>(state.range(1));
  const ModelConfig c{D, kH, kT};
  Model m(c);
  Rng rng(4);
  m.init(rng);
  const Schedule schedule = make_schedule(ScheduleConfig::tutorial());
  const EpsFn eps = model_eps_fn(c, m.params, 1);
  SampleConfig sc;
  sc.sampler = SamplerKind::kDdim;
  sc.nfe = 2;
  sc.eta = 1.0;
  const double t0 = cpu_s();
  for (auto _ : state) benchmark::DoNotOptimize(sample(eps, schedule, N, D, sc).data());
  const double per_step = (cpu_s() - t0) / static_cast<double>(state.iterations()) / sc.nfe;
  state.counters["step_s"] = per_step;
  state.counters["sample_s"] = per_step * kT;
  state.counters["us/point"] = 1e6 * per_step * kT / N;
  state.counters["max_rss_MiB"] = max_rss_mib();
}

// N = 10^4 .. 10^7, D = 2, 16, 64; one iteration each (an epoch at N = 10^7 is ~78,000 steps).
const bool kRegistered = [] {
  if (std::getenv("DIFFUSE_BENCH_SCALE") == nullptr) return false;
  for (int64_t N : {10000, 100000, 1000000, 10000000}) {
    for (int D : {2, 16, 64}) {
      benchmark::RegisterBenchmark("BM_ScaleTrainEpoch", BM_ScaleTrainEpoch)
          ->ArgNames({"N", "D"})
          ->Args({N, D})
          ->Iterations(1)
          ->Unit(benchmark::kSecond);
      benchmark::RegisterBenchmark("BM_ScaleSample", BM_ScaleSample)
          ->ArgNames({"N", "D"})
          ->Args({N, D})
          ->Iterations(1)
          ->Unit(benchmark::kSecond);
    }
  }
  return true;
}();

}  // namespace
}  // namespace diffuse::bench
