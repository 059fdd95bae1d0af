// Benchmarks of the model's kernels: each layer's forward and backward, softplus, the whole network
// at the training batch (B=128) and at sampling sizes (10,000 rows). Not a correctness test.
#include <algorithm>
#include <vector>

#include "bench_util.h"
#include "diffuse/model.h"
#include "diffuse/rng.h"

namespace diffuse::bench {
namespace {

constexpr int kT = 100;

struct Setup {
  ModelConfig c;
  Model model;
  std::vector<float> x, dy, grads;
  std::vector<int32_t> t;
  explicit Setup(int D, int H, int B) : c{D, H, kT}, model(c) {
    Rng rng(42);
    model.init(rng);
    x.resize(static_cast<size_t>(std::max(D, H)) * B);
    dy.resize(x.size());
    rng.fill_normal(x.data(), x.size());
    rng.fill_normal(dy.data(), dy.size());
    grads.resize(model.params.size());
    t.resize(B);
    for (auto& ti : t) ti = static_cast<int32_t>(rng.below(kT));
  }
};

// One ConditionalLinear layer (in -> out) forward at batch B.
void BM_CondLinearForward(benchmark::State& state) {
  const int in = static_cast<int>(state.range(0)), out = static_cast<int>(state.range(1));
  const int B = static_cast<int>(state.range(2));
  Setup s(in, out, B);
  Rng rng(1);
  std::vector<float> W(static_cast<size_t>(out) * in), b(out), E(static_cast<size_t>(kT) * out);
  rng.fill_uniform(W.data(), W.size(), -0.1f, 0.1f);
  rng.fill_uniform(b.data(), b.size(), -0.1f, 0.1f);
  rng.fill_uniform(E.data(), E.size(), 0.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(out) * B), z(a.size());
  const double t0 = cpu_s();
  for (auto _ : state) {
    cond_linear_forward(z.data(), a.data(), s.x.data(), W.data(), b.data(), E.data(), s.t.data(), B,
                        in, out);
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * B * in * out, cpu_s() - t0);
}
BENCHMARK(BM_CondLinearForward)
    ->ArgNames({"in", "out", "B"})
    ->Args({2, 128, 128})
    ->Args({128, 128, 128});

// Its backward: dW, db, dE and (with_dx) dx.
void BM_CondLinearBackward(benchmark::State& state) {
  const int in = static_cast<int>(state.range(0)), out = static_cast<int>(state.range(1));
  const int B = static_cast<int>(state.range(2));
  Setup s(in, out, B);
  Rng rng(1);
  std::vector<float> W(static_cast<size_t>(out) * in), E(static_cast<size_t>(kT) * out);
  rng.fill_uniform(W.data(), W.size(), -0.1f, 0.1f);
  rng.fill_uniform(E.data(), E.size(), 0.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(out) * B), dz(a.size()), dz0(a.size());
  rng.fill_normal(a.data(), a.size());
  rng.fill_normal(dz0.data(), dz0.size());
  std::vector<float> dx(static_cast<size_t>(in) * B), dW(W.size()), db(out), dE(E.size());
  const double t0 = cpu_s();
  for (auto _ : state) {
    state.PauseTiming();  // dz is overwritten: restore it (outside the timed part)
    std::copy(dz0.begin(), dz0.end(), dz.begin());
    state.ResumeTiming();
    cond_linear_backward(dx.data(), dW.data(), db.data(), dE.data(), dz.data(), s.x.data(),
                         a.data(), W.data(), E.data(), s.t.data(), B, in, out, kT);
    benchmark::ClobberMemory();
  }
  report_flops(state, 4.0 * B * in * out, cpu_s() - t0);
}
BENCHMARK(BM_CondLinearBackward)
    ->ArgNames({"in", "out", "B"})
    ->Args({2, 128, 128})
    ->Args({128, 128, 128});

// A Linear layer forward and backward: the output layer (H -> D) and the residual MLP's hidden
// layers (H -> H) at the default width H=64 and at 128.
void BM_LinearForward(benchmark::State& state) {
  const int in = static_cast<int>(state.range(0)), out = static_cast<int>(state.range(1));
  const int B = static_cast<int>(state.range(2));
  Setup s(in, out, B);
  Rng rng(1);
  std::vector<float> W(static_cast<size_t>(out) * in), b(out), y(static_cast<size_t>(out) * B);
  rng.fill_uniform(W.data(), W.size(), -0.1f, 0.1f);
  const double t0 = cpu_s();
  for (auto _ : state) {
    linear_forward(y.data(), s.x.data(), W.data(), b.data(), B, in, out);
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * B * in * out, cpu_s() - t0);
}
BENCHMARK(BM_LinearForward)
    ->ArgNames({"in", "out", "B"})
    ->Args({128, 2, 128})
    ->Args({64, 64, 128})
    ->Args({128, 128, 128});

void BM_LinearBackward(benchmark::State& state) {
  const int in = static_cast<int>(state.range(0)), out = static_cast<int>(state.range(1));
  const int B = static_cast<int>(state.range(2));
  Setup s(in, out, B);
  Rng rng(1);
  std::vector<float> W(static_cast<size_t>(out) * in), dW(W.size()), db(out);
  std::vector<float> dx(static_cast<size_t>(in) * B);
  rng.fill_uniform(W.data(), W.size(), -0.1f, 0.1f);
  const double t0 = cpu_s();
  for (auto _ : state) {
    linear_backward(dx.data(), dW.data(), db.data(), s.dy.data(), s.x.data(), W.data(), B, in, out);
    benchmark::ClobberMemory();
  }
  report_flops(state, 4.0 * B * in * out, cpu_s() - t0);
}
BENCHMARK(BM_LinearBackward)
    ->ArgNames({"in", "out", "B"})
    ->Args({128, 2, 128})
    ->Args({64, 64, 128})
    ->Args({128, 128, 128});

// Softplus over one (H, B) = (128, 128) activation: forward and backward, per element.
void BM_Softplus(benchmark::State& state) {
  const size_t n = 128 * 128;
  Rng rng(3);
  std::vector<float> z(n), h(n), dh(n), dz(n);
  rng.fill_normal(z.data(), n);
  for (auto& v : z) v *= 4.0f;
  rng.fill_normal(dh.data(), n);
  const bool backward = state.range(0) != 0;
  const double t0 = cpu_s();
  for (auto _ : state) {
    if (backward) {
      softplus_backward(dz.data(), dh.data(), z.data(), n);
    } else {
      softplus_forward(h.data(), z.data(), n);
    }
    benchmark::ClobberMemory();
  }
  state.counters["ns_per_elem"] =
      1e9 * (cpu_s() - t0) / (static_cast<double>(n) * static_cast<double>(state.iterations()));
}
BENCHMARK(BM_Softplus)->ArgName("backward")->Arg(0)->Arg(1);

// Transposing the weights for the forward (pack_weights), once per step or sampling call.
void BM_PackWeights(benchmark::State& state) {
  Setup s(2, 128, 1);
  PackedWeights packed(s.c);
  for (auto _ : state) {
    pack_weights(s.c, s.model.params.data(), packed);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_PackWeights);

// The whole network at the training batch: forward, and backward after a forward.
void BM_ModelForward(benchmark::State& state) {
  const int D = static_cast<int>(state.range(0)), H = static_cast<int>(state.range(1));
  const int B = static_cast<int>(state.range(2));
  Setup s(D, H, B);
  Workspace ws(s.c, B);
  std::vector<float> y(static_cast<size_t>(D) * B);
  const double t0 = cpu_s();
  for (auto _ : state) {
    model_forward(s.c, s.model.params.data(), s.x.data(), s.t.data(), B, ws, y.data());
    benchmark::ClobberMemory();
  }
  report_flops(state, forward_flops(D, H, B), cpu_s() - t0);
}
BENCHMARK(BM_ModelForward)->ArgNames({"D", "H", "B"})->Args({2, 128, 128});

void BM_ModelBackward(benchmark::State& state) {
  const int D = static_cast<int>(state.range(0)), H = static_cast<int>(state.range(1));
  const int B = static_cast<int>(state.range(2));
  Setup s(D, H, B);
  Workspace ws(s.c, B);
  std::vector<float> y(static_cast<size_t>(D) * B);
  model_forward(s.c, s.model.params.data(), s.x.data(), s.t.data(), B, ws, y.data());
  const double t0 = cpu_s();
  for (auto _ : state) {
    model_backward(s.c, s.model.params.data(), s.x.data(), s.t.data(), B, s.dy.data(), ws,
                   s.grads.data());
    benchmark::ClobberMemory();
  }
  report_flops(state, 2.0 * forward_flops(D, H, B), cpu_s() - t0);
}
BENCHMARK(BM_ModelBackward)->ArgNames({"D", "H", "B"})->Args({2, 128, 128});

// One sampling step's network evaluation: eps_theta over n rows at one t, in the sampler's blocks
// of 256 columns (model_predict), one thread. Also counts heap allocations per call (must be 0).
void BM_Predict(benchmark::State& state) {
  const int D = static_cast<int>(state.range(0)), H = static_cast<int>(state.range(1));
  const int n = static_cast<int>(state.range(2)), block = 256;
  ModelConfig c{D, H, kT};
  Model m(c);
  Rng rng(5);
  m.init(rng);
  std::vector<float> x(static_cast<size_t>(D) * n), y(x.size());
  rng.fill_normal(x.data(), x.size());
  Workspace ws(c, block);
  model_predict(c, m.params.data(), x.data(), 50, n, ws, y.data());  // warm-up
  int64_t allocs = 0;                                                // made inside model_predict
  int step = 0;
  const double t0 = cpu_s();
  for (auto _ : state) {
    const int64_t before = allocation_count();
    model_predict(c, m.params.data(), x.data(), step++ % kT, n, ws, y.data());
    allocs += allocation_count() - before;
    benchmark::ClobberMemory();
  }
  report_flops(state, forward_flops(D, H, n), cpu_s() - t0);
  state.counters["allocs/iter"] =
      static_cast<double>(allocs) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_Predict)
    ->ArgNames({"D", "H", "n"})
    ->Args({2, 128, 10000})
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace diffuse::bench
