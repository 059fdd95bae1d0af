// Tests for Adam and global-norm gradient clipping: 20 training steps reproduce PyTorch's
// (fixtures from scripts/make_fixtures.py), and each rule holds on hand-made gradients.
#include "diffuse/optim.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffuse/model.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

using nlohmann::json;

json load_fixture(const std::string& name) {
  std::ifstream f(test::fixture_path(name));
  if (!f) throw std::runtime_error("cannot open fixture " + name);
  return json::parse(f);
}

std::vector<float> concat_params(const json& list) {
  std::vector<float> out;
  for (const json& p : list) {
    std::vector<float> v = p.at("data").get<std::vector<float>>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// ||a - b|| / ||b|| in double.
double normwise(const float* a, const float* b, size_t n) {
  double d2 = 0, b2 = 0;
  for (size_t i = 0; i < n; ++i) {
    d2 += (static_cast<double>(a[i]) - b[i]) * (a[i] - b[i]);
    b2 += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(d2 / b2);
}

// zero_grad, MSE loss, backward, clip_grad_norm_(1.0), Adam.step: PyTorch's 20 steps.
TEST(Optim, TwentyAdamStepsMatchPyTorch) {
  for (const char* file : {"model_d2_h32.json", "model_d3_h16.json"}) {
    SCOPED_TRACE(file);
    std::printf("%s\n", file);
    json fx = load_fixture(file);
    const json& c = fx.at("config");
    ModelConfig cfg{c.at("dim").get<int>(), c.at("hidden").get<int>(), c.at("T").get<int>()};
    const int B = c.at("B");
    const size_t n = static_cast<size_t>(cfg.dim) * B;
    const json& tr = fx.at("train");
    std::vector<float> params = concat_params(tr.at("initial_params"));
    std::vector<float> want = concat_params(tr.at("final_params"));
    ASSERT_EQ(params.size(), param_count(cfg));
    ASSERT_EQ(want.size(), params.size());
    std::vector<TensorInfo> layout = param_layout(cfg);

    AdamConfig ac;
    ac.lr = tr.at("lr");
    ac.beta1 = tr.at("beta1");
    ac.beta2 = tr.at("beta2");
    ac.eps = tr.at("eps");
    const float max_norm = tr.at("max_norm");
    Adam adam(params.size(), ac);
    Workspace ws(cfg, B);
    std::vector<float> y(n), dy(n), grads(params.size());
    int binding = 0;
    double worst_loss = 0, worst_norm = 0;
    for (const json& step : tr.at("steps")) {
      std::vector<float> x = step.at("x").get<std::vector<float>>();
      std::vector<float> eps = step.at("eps").get<std::vector<float>>();
      std::vector<int32_t> t = step.at("t").get<std::vector<int32_t>>();
      model_forward(cfg, params.data(), x.data(), t.data(), B, ws, y.data());
      float loss = mse_forward(y.data(), eps.data(), n);
      mse_backward(dy.data(), y.data(), eps.data(), n);
      model_backward(cfg, params.data(), x.data(), t.data(), B, dy.data(), ws, grads.data());
      float norm = clip_grad_norm(grads.data(), layout, max_norm);
      adam.step(params.data(), grads.data(), ac.lr);

      const double want_loss = step.at("loss"), want_norm = step.at("grad_norm");
      worst_loss = std::max(worst_loss, std::abs(loss - want_loss) / want_loss);
      worst_norm = std::max(worst_norm, std::abs(norm - want_norm) / want_norm);
      EXPECT_NEAR(loss, want_loss, 1e-5 * want_loss);
      EXPECT_NEAR(norm, want_norm, 1e-5 * want_norm);
      binding += want_norm > max_norm;
    }
    EXPECT_EQ(adam.step_count, 20);
    EXPECT_EQ(binding, 10) << "the fixture should clip on half of the steps";
    std::printf("  losses worst rel err %.2e, pre-clip norms worst rel err %.2e\n", worst_loss,
                worst_norm);
    for (const TensorInfo& ti : layout) {
      double e = normwise(params.data() + ti.offset, want.data() + ti.offset, ti.size);
      EXPECT_LT(e, 1e-5) << ti.name;
      double worst = 0, scale = 0;
      for (size_t i = 0; i < ti.size; ++i)
        scale = std::max(scale, std::abs(1.0 * want[ti.offset + i]));
      for (size_t i = ti.offset; i < ti.offset + ti.size; ++i) {
        double err = std::abs(1.0 * params[i] - want[i]) / (std::abs(want[i]) + 1e-3 * scale);
        worst = std::max(worst, err);
      }
      EXPECT_LT(worst, 1e-4) << ti.name;
      std::printf("  %-18s norm-wise %.2e  element-wise %.2e\n", ti.name.c_str(), e, worst);
    }
  }
}

// A small layout and random gradients with a chosen global norm.
struct Grads {
  ModelConfig cfg{2, 8, 5};
  std::vector<TensorInfo> layout = param_layout(cfg);
  std::vector<float> g;

  explicit Grads(double norm, uint64_t seed = 3) : g(param_count(cfg)) {
    Rng rng(seed);
    rng.fill_normal(g.data(), g.size());
    double s = std::sqrt(sum_squares());
    for (float& v : g) v = static_cast<float>(v * norm / s);
  }
  double sum_squares() const {
    double s = 0;
    for (float v : g) s += static_cast<double>(v) * v;
    return s;
  }
};

TEST(Clip, BindingScalesByMaxNormOverNormPlusEpsilon) {
  Grads gr(5.0);
  const std::vector<float> before = gr.g;
  const double norm = std::sqrt(gr.sum_squares());
  float got = clip_grad_norm(gr.g.data(), gr.layout, 1.0f);
  EXPECT_NEAR(got, norm, 1e-6 * norm);
  const double coef = 1.0 / (norm + 1e-6);
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_NEAR(gr.g[i], before[i] * coef, 1e-6 * std::abs(before[i] * coef)) << i;
  }
  EXPECT_NEAR(std::sqrt(gr.sum_squares()), 1.0, 1e-5);

  // Another max_norm: the same rule.
  Grads g2(3.0, 4);
  const std::vector<float> b2 = g2.g;
  const double n2 = std::sqrt(g2.sum_squares());
  clip_grad_norm(g2.g.data(), g2.layout, 0.25f);
  for (size_t i = 0; i < b2.size(); ++i) {
    EXPECT_NEAR(g2.g[i], b2[i] * 0.25 / (n2 + 1e-6), 1e-6 * std::abs(b2[i])) << i;
  }
}

TEST(Clip, NotBindingLeavesGradientsBitForBit) {
  for (double norm : {0.5, 0.999}) {
    Grads gr(norm);
    const std::vector<float> before = gr.g;
    float got = clip_grad_norm(gr.g.data(), gr.layout, 1.0f);
    EXPECT_NEAR(got, norm, 1e-6);
    EXPECT_EQ(std::memcmp(gr.g.data(), before.data(), before.size() * sizeof(float)), 0);
  }
  Grads zero(1.0);
  std::fill(zero.g.begin(), zero.g.end(), 0.0f);
  EXPECT_EQ(clip_grad_norm(zero.g.data(), zero.layout, 1.0f), 0.0f);
  for (float v : zero.g) ASSERT_EQ(v, 0.0f);
}

TEST(Adam, FirstStepMovesEachParameterByLrTimesSign) {
  const size_t n = 1000;
  Rng rng(5);
  std::vector<float> p(n), g(n);
  rng.fill_uniform(p.data(), n, -1.0f, 1.0f);
  rng.fill_normal(g.data(), n);
  for (size_t i = 0; i < n; i += 10) g[i] = 0.0f;
  for (size_t i = 5; i < n; i += 10) g[i] *= 1e-3f;  // tiny gradients move just as far
  const std::vector<float> p0 = p;
  double worst_m = 0, worst_v = 0;
  AdamConfig ac;
  Adam adam(n, ac);
  ASSERT_EQ(adam.m.size(), n);
  ASSERT_EQ(adam.v.size(), n);
  const double lr = 1e-3;
  adam.step(p.data(), g.data(), lr);
  EXPECT_EQ(adam.step_count, 1);
  for (size_t i = 0; i < n; ++i) {
    if (g[i] == 0.0f) {
      EXPECT_EQ(p[i], p0[i]) << i;
    } else {
      // m/bc1 = g and sqrt(v/bc2) = |g|: the step is lr g / (|g| + eps), lr sign(g) but for eps.
      double moved = static_cast<double>(p[i]) - p0[i];
      EXPECT_NEAR(moved, -lr * g[i] / (std::abs(g[i]) + ac.eps), 2e-7) << i << " g=" << g[i];
      EXPECT_NEAR(std::abs(moved), lr, 0.01 * lr) << i << " g=" << g[i];
    }
    if (g[i] != 0.0f) {
      worst_m = std::max(worst_m, std::abs(adam.m[i] / (0.1 * g[i]) - 1));
      worst_v = std::max(worst_v, std::abs(adam.v[i] / (0.001 * g[i] * g[i]) - 1));
    }
  }
  // PyTorch multiplies by the float of (1 - beta) computed in double: 0.1f and 0.001f exactly, not
  // 1.0f - 0.999f = 0.00099998713 (1.3e-5 off, which moves every step's size by 6e-6).
  EXPECT_LT(worst_m, 1e-6) << "m after one step is not (1 - beta1) g";
  EXPECT_LT(worst_v, 1e-6) << "v after one step is not (1 - beta2) g^2";
}

// PyTorch's Adam written out in double, for steps with a varying learning rate.
TEST(Adam, LaterStepsFollowPyTorchsFormula) {
  const size_t n = 257;
  Rng rng(6);
  std::vector<float> p(n);
  rng.fill_uniform(p.data(), n, -1.0f, 1.0f);
  std::vector<double> ref(p.begin(), p.end()), m(n, 0.0), v(n, 0.0);
  AdamConfig ac;
  ac.beta1 = 0.8;
  ac.beta2 = 0.99;
  ac.eps = 1e-6;
  Adam adam(n, ac);
  std::vector<float> g(n);
  const double lrs[] = {1e-2, 5e-3, 2e-2, 1e-3, 1e-2, 3e-3, 7e-3};
  int k = 0;
  for (double lr : lrs) {
    ++k;
    rng.fill_normal(g.data(), n);
    for (size_t i = 0; i < n; ++i) g[i] *= static_cast<float>(0.01 + 0.1 * (i % 7));
    adam.step(p.data(), g.data(), lr);
    const double bc1 = 1 - std::pow(ac.beta1, k), bc2 = 1 - std::pow(ac.beta2, k);
    for (size_t i = 0; i < n; ++i) {
      m[i] = ac.beta1 * m[i] + (1 - ac.beta1) * g[i];
      v[i] = ac.beta2 * v[i] + (1 - ac.beta2) * g[i] * g[i];
      ref[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + ac.eps);
    }
  }
  EXPECT_EQ(adam.step_count, static_cast<int64_t>(std::size(lrs)));
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_NEAR(p[i], ref[i], 1e-6) << i;
    worst = std::max(worst, std::abs(p[i] - ref[i]));
  }
  std::printf("adam vs double reference: worst abs err %.2e\n", worst);
}

}  // namespace
}  // namespace diffuse
