// Shared helpers of the benchmarks: FLOP counts of the model's matrix work, the measured FMA peak
// of this processor, and the counters every benchmark reports. Not a timing framework.
#pragma once

#include <benchmark/benchmark.h>
#include <time.h>

#include <cstdint>

#include "diffuse/resmlp.h"

namespace diffuse::bench {

// Matrix work only (2 FLOP per multiply-add), no element-wise work: one forward of B columns is
// 2 B (D H + H H + H H + H D). The backward is twice that (dW and dx of every layer) less the
// first layer's dx, which the trainer skips (Workspace::input_grad), so a training step is 3
// forwards less 2 B D H: 25.49 MFLOP at D=2, H=128, B=128 (25.56 before the skip); a forward over
// 10,000 rows is 665.6 MFLOP.
inline double forward_flops(int D, int H, int64_t B) {
  return 2.0 * static_cast<double>(B) * (2.0 * D * H + 2.0 * H * H);
}
inline double train_step_flops(int D, int H, int64_t B) {
  return 3.0 * forward_flops(D, H, B) - 2.0 * static_cast<double>(B) * D * H;
}
// The residual MLP (resmlp.h) of config c: its first layer takes I = D + E + 2 K D inputs (E time
// features, K octaves of Fourier features), then L blocks: 2 B (H I + 2 L H H + H D). At B=128,
// D=2, H=128: 18.7 MFLOP a forward at L=2, K=6 (the default network; 2.2x the tutorial's model),
// 17.9 at K=0.
inline double resmlp_forward_flops(const ModelConfig& c, int64_t B) {
  const double D = c.dim, H = c.hidden, L = c.depth, I = resmlp_inputs(c);
  return 2.0 * static_cast<double>(B) * (H * I + 2.0 * L * H * H + H * D);
}
// A training step: forward, then dW and dx of every layer but the first's dx (the trainer skips
// it): 3 forwards less 2 B H I. 54.3 MFLOP at B=128, D=2, H=128, L=2, K=6; 113.3 at D=64; 14.6 at
// the default width H=64 (D=2, K=6), where the rest of the step (LayerNorm, SiLU, Adam and the EMA,
// the RNG) weighs most (docs/PERFORMANCE.md).
inline double resmlp_train_step_flops(const ModelConfig& c, int64_t B) {
  return 3.0 * resmlp_forward_flops(c, B) -
         2.0 * static_cast<double>(B) * c.hidden * resmlp_inputs(c);
}

// Peak single-thread FLOP/s of fused multiply-adds on this processor's widest SIMD registers
// (Eigen's packet, e.g. 16 floats with AVX-512), measured once (best of a few short runs) and
// cached.
double fma_peak_flops();
// FLOP/s of independent FMA chains over `iters` iterations on the calling thread, timed on its CPU
// time or on the wall clock.
double fma_flops(int64_t iters, bool wall = false);

// CPU time of the calling thread. The machine is shared (other people compile on its 2 cores), so
// single-thread figures are taken on the thread's own CPU time, as Google Benchmark's "CPU" column
// and rate counters are; wall time would count the time other processes had the core.
inline double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Wall time, for the multi-threaded figures.
inline double wall_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Sets FLOP/s (`flops` per iteration, on the CPU time Google Benchmark measures) and peak_pct: that
// rate as a share of fma_peak_flops(), from the `seconds` of thread CPU time the loop took.
inline void report_flops(benchmark::State& state, double flops, double seconds) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  const double rate = flops * static_cast<double>(state.iterations()) / seconds;
  state.counters["peak_pct"] = 100.0 * rate / fma_peak_flops();
}

// Heap allocations (malloc, calloc, realloc, aligned allocations, operator new) made by this
// process so far, counted by bench/alloc_counter.cpp.
int64_t allocation_count();

}  // namespace diffuse::bench
