// Benchmarks of training: one optimizer step (B=128, H=128, D=2, T=100) through Trainer, at one and
// two threads, with its heap allocations per step (must be 0). Not a test of what is learned.
#include <climits>

#include "bench_util.h"
#include "diffuse/train.h"

namespace diffuse::bench {
namespace {

// A trainer over `steps` batches of random normal data; each benchmark iteration is one epoch.
struct TrainSetup {
  ModelConfig c;
  Model model;
  Schedule schedule;
  Points data;
  TrainSetup(int D, int H, int B, int steps)
      : c{D, H, 100}, model(c), schedule(make_schedule(ScheduleConfig::tutorial())) {
    Rng rng(9);
    model.init(rng);
    data.resize(static_cast<Eigen::Index>(B) * steps, D);
    rng.fill_normal(data.data(), static_cast<size_t>(data.size()));
  }
};

void BM_TrainStep(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const int D = 2, H = 128, B = 128, steps = 32;
  TrainSetup s(D, H, B, steps);
  TrainConfig tc = TrainConfig::tutorial();
  tc.epochs = INT_MAX;
  tc.batch_size = B;
  tc.threads = threads;
  Trainer trainer(s.model, s.schedule, s.data, tc);
  trainer.run_epoch();  // warm-up: thread pool, page faults
  // Heap allocations made inside run_epoch itself (not by the benchmark library's loop).
  int64_t allocs = 0;
  // One thread: its own CPU time (robust to other people's load). Two: wall time, necessarily.
  auto clock = threads == 1 ? cpu_s : wall_s;
  const double t0 = clock();
  for (auto _ : state) {
    const int64_t before = allocation_count();
    trainer.run_epoch();
    allocs += allocation_count() - before;
  }
  const double seconds = clock() - t0;
  // An iteration is one epoch of `steps` steps.
  report_flops(state, train_step_flops(D, H, B) * steps, seconds);
  state.counters["steps/s"] =
      benchmark::Counter(steps, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["allocs/step"] =
      static_cast<double>(allocs) / (static_cast<double>(state.iterations()) * steps);
}
// peak_pct is the share of ONE core's peak, also at two threads (so 2 threads can reach 200%).
// The first line is on CPU time; the wall-time pair gives the two-thread speed-up (when the machine
// is otherwise idle: check the load average printed in the header).
BENCHMARK(BM_TrainStep)->ArgName("threads")->Arg(1);
BENCHMARK(BM_TrainStep)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace
}  // namespace diffuse::bench
