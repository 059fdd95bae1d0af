// Tests of the properties the fast kernels promise beyond matching PyTorch: a column's result does
// not depend on its position, the batch size or alignment; shared packed weights and the split
// optimizer give the same bits; softplus is accurate over its whole range. Not speed tests.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "diffuse/model.h"
#include "diffuse/optim.h"

namespace diffuse {
namespace {

struct Net {
  ModelConfig c;
  Model m;
  explicit Net(ModelConfig cfg) : c(cfg), m(cfg) {
    Rng rng(21);
    m.init(rng);
  }
};

std::vector<float> normals(Rng& rng, size_t n) {
  std::vector<float> v(n);
  rng.fill_normal(v.data(), n);
  return v;
}

// y for column j alone, from a batch of one.
std::vector<float> forward_one(const Net& net, const float* x, int32_t t) {
  Workspace ws(net.c, 1);
  std::vector<float> y(net.c.dim);
  model_forward(net.c, net.m.params.data(), x, &t, 1, ws, y.data());
  return y;
}

TEST(Kernels, ColumnResultsDoNotDependOnPositionBatchOrAlignment) {
  // Sizes with whole packets, tails, and small and large D.
  for (ModelConfig cfg :
       {ModelConfig{2, 128, 100}, ModelConfig{3, 20, 7}, ModelConfig{17, 40, 9}}) {
    SCOPED_TRACE(cfg.dim * 1000 + cfg.hidden);
    Net net(cfg);
    const int B = 37, D = cfg.dim;
    Rng rng(22);
    std::vector<float> x = normals(rng, static_cast<size_t>(D) * B);
    std::vector<int32_t> t(B);
    for (auto& v : t) v = static_cast<int32_t>(rng.below(cfg.T));
    // The batch, from a buffer shifted by one float (unaligned), and each column alone.
    std::vector<float> shifted(x.size() + 1);
    std::memcpy(shifted.data() + 1, x.data(), x.size() * sizeof(float));
    Workspace ws(cfg, B + 5);
    std::vector<float> y(x.size()), y_shifted(x.size() + 1);
    model_forward(cfg, net.m.params.data(), x.data(), t.data(), B, ws, y.data());
    model_forward(cfg, net.m.params.data(), shifted.data() + 1, t.data(), B, ws,
                  y_shifted.data() + 1);
    for (int j = 0; j < B; ++j) {
      const std::vector<float> one = forward_one(net, x.data() + static_cast<size_t>(j) * D, t[j]);
      for (int d = 0; d < D; ++d) {
        ASSERT_EQ(y[static_cast<size_t>(j) * D + d], one[d]) << "column " << j;
        ASSERT_EQ(y_shifted[1 + static_cast<size_t>(j) * D + d], one[d]) << "column " << j;
      }
    }
  }
}

TEST(Kernels, PackedWeightsGiveTheSameForward) {
  for (ModelConfig cfg : {ModelConfig{2, 128, 100}, ModelConfig{17, 40, 9}}) {
    Net net(cfg);
    const int B = 29;
    Rng rng(23);
    std::vector<float> x = normals(rng, static_cast<size_t>(cfg.dim) * B);
    std::vector<int32_t> t(B);
    for (auto& v : t) v = static_cast<int32_t>(rng.below(cfg.T));
    Workspace a(cfg, B), b(cfg, B);
    std::vector<float> ya(x.size()), yb(x.size());
    PackedWeights packed(cfg);
    pack_weights(cfg, net.m.params.data(), packed);
    model_forward(cfg, net.m.params.data(), x.data(), t.data(), B, a, ya.data());
    model_forward(cfg, net.m.params.data(), packed, x.data(), t.data(), B, b, yb.data());
    EXPECT_EQ(ya, yb);
    const size_t n = static_cast<size_t>(cfg.hidden) * B;
    EXPECT_EQ(0, std::memcmp(a.s3.data(), b.s3.data(), n * sizeof(float)));
    EXPECT_EQ(0, std::memcmp(a.a2.data(), b.a2.data(), n * sizeof(float)));
  }
}

TEST(Kernels, PackingInPartsEqualsPackingAtOnce) {
  // D = 17 >= one packet of floats everywhere, so the output layer is packed too (4 layers).
  for (ModelConfig cfg : {ModelConfig{2, 128, 100}, ModelConfig{17, 40, 9}}) {
    Net net(cfg);
    PackedWeights whole(cfg);
    pack_weights(cfg, net.m.params.data(), whole);
    for (int parts : {2, 3, 5}) {
      PackedWeights split(cfg);
      for (int part = parts - 1; part >= 0; --part) {
        pack_weights(cfg, net.m.params.data(), split, part, parts);
      }
      EXPECT_EQ(whole.data, split.data) << "parts=" << parts;
    }
  }
}

TEST(Kernels, SoftplusAndItsSlopeAreAccurateEverywhere) {
  // Every 2^-10 from -100 to 30, against double: relative error of h and of sigmoid, absolute
  // where h itself underflows.
  std::vector<float> z;
  for (double v = -100; v < 30; v += 1.0 / 1024) z.push_back(static_cast<float>(v));
  const size_t n = z.size();
  std::vector<float> h(n), ones(n, 1.0f), s(n);
  softplus_forward(h.data(), z.data(), n);
  softplus_backward(s.data(), ones.data(), z.data(), n);
  double worst_h = 0, worst_s = 0;
  for (size_t i = 0; i < n; ++i) {
    const double zi = z[i];
    const double want_h = zi > 20 ? zi : std::log1p(std::exp(zi));
    const double want_s = zi > 20 ? 1.0 : 1.0 / (1.0 + std::exp(-zi));
    if (want_h > 1e-30) worst_h = std::max(worst_h, std::abs(h[i] - want_h) / want_h);
    if (want_s > 1e-30) worst_s = std::max(worst_s, std::abs(s[i] - want_s) / want_s);
    ASSERT_LE(std::abs(h[i] - want_h), 1e-30 + 1e-6 * want_h) << "z=" << zi;
  }
  EXPECT_LT(worst_h, 1e-6);
  EXPECT_LT(worst_s, 1e-6);
  std::printf("softplus worst rel err %.2e, sigmoid %.2e over %zu points\n", worst_h, worst_s, n);
}

TEST(Optim, SplitAdamUpdateEqualsStep) {
  const size_t n = 1001;  // not a whole number of packets
  Rng rng(24);
  std::vector<float> p0 = normals(rng, n);
  Adam one(n, AdamConfig{}), split(n, AdamConfig{});
  std::vector<float> p1 = p0, p2 = p0;
  for (int step = 0; step < 5; ++step) {
    const std::vector<float> g = normals(rng, n);
    one.step(p1.data(), g.data(), 1e-3);
    const Adam::StepScalars s = split.begin_step(1e-3);
    split.update(s, p2.data(), g.data(), 500, n);  // any order, any cut
    split.update(s, p2.data(), g.data(), 0, 500);
  }
  EXPECT_EQ(one.step_count, split.step_count);
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(one.m, split.m);
  EXPECT_EQ(one.v, split.v);
}

// The trainer's fused update: clipping and the EMA in Adam's pass give the bits of the separate
// passes (scale the gradients, step, then ema = d ema + (1 - d) p with the product fused).
TEST(Optim, FusedClipAndEmaEqualSeparatePasses) {
  const size_t n = 1001;
  Rng rng(26);
  std::vector<float> p0 = normals(rng, n);
  Adam one(n, AdamConfig{}), fused(n, AdamConfig{});
  std::vector<float> p1 = p0, p2 = p0, e1 = p0, e2 = p0;
  const float coef = 0.37f, d = 0.9f;
  for (int step = 0; step < 5; ++step) {
    std::vector<float> g = normals(rng, n);
    const Adam::StepScalars s = fused.begin_step(1e-3);
    fused.update(s, p2.data(), g.data(), 0, 600, coef, e2.data(), d);
    fused.update(s, p2.data(), g.data(), 600, n, coef, e2.data(), d);
    for (float& v : g) v *= coef;
    one.step(p1.data(), g.data(), 1e-3);
    for (size_t i = 0; i < n; ++i) {
#if defined(__FMA__)
      e1[i] = std::fma(e1[i], d, (1.0f - d) * p1[i]);
#else  // Eigen's pmadd is a product and a sum without FMA hardware (and nothing to contract here)
      e1[i] = e1[i] * d + (1.0f - d) * p1[i];
#endif
    }
  }
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(e1, e2);
  EXPECT_EQ(one.m, fused.m);
  EXPECT_EQ(one.v, fused.v);
}

TEST(Optim, NormFromSlicesOfSquares) {
  const ModelConfig cfg{2, 16, 10};
  const std::vector<TensorInfo> layout = param_layout(cfg);
  const size_t n = param_count(cfg);
  Rng rng(25);
  const std::vector<float> g = normals(rng, n);
  std::vector<double> whole(layout.size()), sliced(layout.size());
  add_squares(g.data(), layout, 0, n, whole.data());
  EXPECT_EQ(norm_from_squares(whole.data(), layout.size()), grad_norm(g.data(), layout));
  // Three slices cutting through tensors: the same norm to rounding.
  for (auto [lo, hi] : {std::pair<size_t, size_t>{0, 100}, {100, 1000}, {1000, n}}) {
    add_squares(g.data(), layout, lo, hi, sliced.data());
  }
  double sum = 0;
  for (float v : g) sum += static_cast<double>(v) * v;
  const float norm = norm_from_squares(sliced.data(), layout.size());
  EXPECT_NEAR(norm, std::sqrt(sum), 1e-6 * std::sqrt(sum));
  EXPECT_NEAR(norm, grad_norm(g.data(), layout), 1e-6 * norm);
}

}  // namespace
}  // namespace diffuse
