// Tests for the residual-MLP denoiser: central-difference gradient checks of its LayerNorm and SiLU
// kernels and of the whole network, agreement with the PyTorch reference
// (scripts/resmlp_reference.py fixtures), layout, batch-split independence, checkpoints; the same
// for the class-conditional network (label embedding with a null class) and the input Fourier
// features.
#include "diffuse/resmlp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "diffuse/checkpoint.h"
#include "diffuse/error.h"
#include "diffuse/model.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

using nlohmann::json;
using test::check_grad;
using test::GradCheck;

std::vector<float> normals(Rng& rng, size_t n, float scale = 1.0f) {
  std::vector<float> v(n);
  rng.fill_normal(v.data(), n);
  for (float& x : v) x = std::round(x * scale * 4096.0f) / 4096.0f;  // exact +- 2^-k steps
  return v;
}

// A checkpoint of a freshly initialized network of config c, its weights drawn from Rng(seed).
Checkpoint initialized_checkpoint(const ModelConfig& c, uint64_t seed) {
  Model m(c);
  Rng rng(seed);
  m.init(rng);
  Checkpoint ck;
  ck.model = c;
  ck.schedule.T = c.T;
  ck.params = m.params;
  return ck;
}

double weighted_sum(const std::vector<float>& r, const float* y) {
  double s = 0;
  for (size_t i = 0; i < r.size(); ++i) s += static_cast<double>(r[i]) * y[i];
  return s;
}

void report(const char* what, const GradCheck& g) {
  std::printf("  %-22s %3zu checked, worst rel err %.2e, norm-wise %.2e\n", what, g.checked,
              g.worst, g.normwise);
}

void check_layer_norm(int n, int B) {
  SCOPED_TRACE("n " + std::to_string(n) + " B " + std::to_string(B));
  Rng rng(3);
  std::vector<float> x = normals(rng, n * B, 2.0f), g = normals(rng, n), b = normals(rng, n);
  const std::vector<float> r = normals(rng, n * B);  // loss = sum r * y
  std::vector<float> y(n * B), mean(B), rstd(B), dx(n * B), dg(n, 1e30f), db(n, 1e30f);
  auto loss = [&] {
    layer_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), g.data(), b.data(), B, n);
    return weighted_sum(r, y.data());
  };
  loss();
  layer_norm_backward(dx.data(), dg.data(), db.data(), r.data(), x.data(), mean.data(), rstd.data(),
                      g.data(), B, n);
  const float h = 1.0f / 32;  // smooth: the stencil's O(h^4) error is below float's noise
  for (auto [name, p, a] : {std::tuple{"x", &x, &dx}, {"gamma", &g, &dg}, {"beta", &b, &db}}) {
    const GradCheck c = check_grad(p->data(), a->data(), p->size(), loss, h);
    report(name, c);
    EXPECT_LT(c.normwise, 1e-4) << name;
    // Element-wise, the float forward's rounding grows with the column (n values summed): an x
    // gradient made small by LayerNorm's cancellations is off by up to 1.1e-2 at n = 72.
    EXPECT_LT(c.worst, n <= 12 ? 1e-2 : 2e-2) << name;
  }
  // Each column comes out with mean beta-weighted 0 and variance 1 before the affine part.
  std::vector<float> ones(n, 1.0f), zeros(n, 0.0f);
  layer_norm_forward(y.data(), mean.data(), rstd.data(), x.data(), ones.data(), zeros.data(), B, n);
  for (int j = 0; j < B; ++j) {
    double s = 0, s2 = 0;
    for (int i = 0; i < n; ++i) s += y[j * n + i], s2 += y[j * n + i] * y[j * n + i];
    EXPECT_NEAR(s / n, 0.0, 1e-6);
    EXPECT_NEAR(s2 / n, 1.0, 1e-3);  // var / (var + 1e-5)
  }
}

// n = 12, B = 5: the scalar tails; 72 x 20: a 16-column block, a tail and more than one chunk of
// rows; 128 x 20: the unrolled path of a usual width (found untested in review).
TEST(ResMlpGradCheck, LayerNorm) {
  check_layer_norm(12, 5);
  check_layer_norm(72, 20);
  check_layer_norm(128, 20);
}

TEST(ResMlpGradCheck, Silu) {
  const size_t n = 40;
  Rng rng(4);
  std::vector<float> x = normals(rng, n, 4.0f), y(n), dx(n);
  x[0] = -30.0f, x[1] = 30.0f;  // far tails: slope 0 and 1
  const std::vector<float> r = normals(rng, n);
  auto loss = [&] {
    silu_forward(y.data(), x.data(), n);
    return weighted_sum(r, y.data());
  };
  loss();
  for (size_t i = 0; i < n; ++i)
    EXPECT_NEAR(y[i], x[i] / (1 + std::exp(-x[i])), 1e-5 * (1 + std::abs(x[i])));
  silu_backward(dx.data(), r.data(), x.data(), n);
  const GradCheck c = check_grad(x.data(), dx.data(), n, loss, 1.0f / 32);
  report("x", c);
  EXPECT_LT(c.normwise, 1e-4);
  EXPECT_LT(c.worst, 1e-2);
}

// The training step's pair (the forward saves the slope) gives the same bits as the pair that
// recomputes it, over whole packets and a tail, and in place.
TEST(ResMlp, SiluWithTheSavedSlopeIsBitForBitTheRecomputingPair) {
  const size_t n = 77;
  Rng rng(5);
  std::vector<float> x = normals(rng, n, 6.0f), dy = normals(rng, n);
  x[0] = -100.0f, x[1] = 100.0f, x[2] = 0.0f;
  std::vector<float> y1(n), y2 = x, slope(n), dx1(n), dx2(n);
  silu_forward(y1.data(), x.data(), n);
  silu_train_forward(y2.data(), slope.data(), y2.data(), n);  // in place
  silu_backward(dx1.data(), dy.data(), x.data(), n);
  silu_train_backward(dx2.data(), dy.data(), slope.data(), n);
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(y1[i], y2[i]) << i;
    EXPECT_EQ(dx1[i], dx2[i]) << i;
    const double s = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
    EXPECT_NEAR(slope[i], s * (1 + x[i] * (1 - s)), 1e-6 * (1 + std::abs(x[i]))) << i;
  }
}

// loss = mean (y - target)^2 over the batch, and every parameter's and x's gradient against it.
// A conditional network gets `labels` (B), or the null class for every column when empty.
void check_network(const ModelConfig& cfg, std::vector<float> params, int B, uint64_t seed,
                   const std::vector<int32_t>& labels = {}) {
  Rng rng(seed);
  std::vector<float> x = normals(rng, static_cast<size_t>(cfg.dim) * B);
  const std::vector<float> target = normals(rng, x.size());
  std::vector<int32_t> t(B);
  for (int j = 0; j < B; ++j) t[j] = static_cast<int32_t>(rng.below(cfg.T));
  const int32_t* lab = labels.empty() ? nullptr : labels.data();
  Workspace ws(cfg, B);
  std::vector<float> y(x.size()), dy(x.size()), grads(params.size(), 1e30f);
  auto loss = [&] {
    model_forward(cfg, params.data(), x.data(), t.data(), B, ws, y.data(), lab);
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += (y[i] - target[i]) * (y[i] - target[i]);
    return s / static_cast<double>(y.size());
  };
  loss();
  mse_backward(dy.data(), y.data(), target.data(), y.size());
  model_backward(cfg, params.data(), x.data(), t.data(), B, dy.data(), ws, grads.data(), lab);
  const std::vector<float> dx(ws.dx.data(), ws.dx.data() + x.size());
  for (const TensorInfo& ti : param_layout(cfg)) {
    const GradCheck c = check_grad(params.data() + ti.offset, grads.data() + ti.offset, ti.size,
                                   loss, 1.0f / 256, 64, ti.offset + 1);
    report(ti.name.c_str(), c);
    EXPECT_LT(c.normwise, 2e-3) << ti.name;
    EXPECT_LT(c.worst, 5e-2) << ti.name;
  }
  const GradCheck c = check_grad(x.data(), dx.data(), x.size(), loss, 1.0f / 256);
  report("x", c);
  EXPECT_LT(c.normwise, 2e-3);
  EXPECT_LT(c.worst, 5e-2);
}

TEST(ResMlpGradCheck, InputFourierFeatures) {
  // dx of loss = sum r * f at 6 octaves (2^5 x: the stencil's h must resolve a period of 0.2).
  const int D = 3, K = 6, B = 4;
  const size_t ldf = 2 * K * D + 5;  // a column stride past the features: the rest is untouched
  Rng rng(21);
  std::vector<float> x = normals(rng, static_cast<size_t>(D) * B, 1.5f);
  const std::vector<float> r = normals(rng, ldf * B);
  std::vector<float> f(ldf * B, 0.0f), dx(x.size(), 0.5f);
  auto loss = [&] {
    input_fourier_forward(f.data(), ldf, x.data(), B, D, K);
    return weighted_sum(r, f.data());
  };
  loss();
  input_fourier_backward(dx.data(), r.data(), f.data(), ldf, B, D, K);
  for (float& v : dx) v -= 0.5f;  // the backward adds to dx
  const GradCheck c = check_grad(x.data(), dx.data(), x.size(), loss, 1.0f / 1024);
  report("x", c);
  EXPECT_LT(c.normwise, 1e-4);
  EXPECT_LT(c.worst, 1e-2);
}

TEST(ResMlpGradCheck, WholeNetworkWithFourierFeatures) {
  ModelConfig cfg{3, 12, 100, ModelKind::kResMlp, 2};
  cfg.fourier_features = 3;
  Model m(cfg);
  Rng rng(19);
  m.init(rng);
  check_network(cfg, m.params, 6, 20);
  cfg.classes = 2;  // with a class embedding too
  Model mc(cfg);
  mc.init(rng);
  check_network(cfg, mc.params, 5, 22, {0, 2, 1, 2, 0});
}

TEST(ResMlpGradCheck, WholeNetworkAtInit) {
  const ModelConfig cfg{3, 8, 50, ModelKind::kResMlp, 2};
  Model m(cfg);
  Rng rng(7);
  m.init(rng);
  check_network(cfg, m.params, 6, 8);
}

TEST(ResMlpGradCheck, WholeNetworkWithTrainedLikeNorms) {
  // LayerNorm gains and biases away from 1 and 0, wider than a packet of lanes.
  const ModelConfig cfg{2, 20, 1000, ModelKind::kResMlp, 3};
  Model m(cfg);
  Rng rng(9);
  m.init(rng);
  for (const TensorInfo& ti : param_layout(cfg)) {
    if (ti.name.find("norm") == std::string::npos) continue;
    const std::vector<float> d = normals(rng, ti.size, 0.3f);
    for (size_t i = 0; i < ti.size; ++i) m.params[ti.offset + i] += d[i];
  }
  check_network(cfg, m.params, 5, 10);
}

TEST(ResMlpGradCheck, ConditionalNetworkWithClassesAndNullClass) {
  // 3 classes + null: labels hit classes 0, 2 and the null row, none hits class 1 (its gradient
  // must be exactly 0, which the check sees as a zero analytic and numeric gradient).
  ModelConfig cfg{3, 12, 100, ModelKind::kResMlp, 2};
  cfg.classes = 3;
  Model m(cfg);
  Rng rng(13);
  m.init(rng);
  check_network(cfg, m.params, 7, 14, {0, 3, 2, 0, 3, 2, 2});
  check_network(cfg, m.params, 5, 15);  // no labels: every column the null class
}

TEST(ResMlpGradCheck, ClassEmbeddingScatterAddsPerLabel) {
  const int n = 5, B = 6, rows = 4;
  Rng rng(16);
  std::vector<float> table = normals(rng, static_cast<size_t>(rows) * n);
  const std::vector<float> h0 = normals(rng, static_cast<size_t>(n) * B);
  const std::vector<float> r = normals(rng, h0.size());  // loss = sum r * h
  const std::vector<int32_t> labels = {1, 3, 1, 0, 3, 1};
  std::vector<float> h(h0.size()), dtable(table.size(), 1e30f);
  auto loss = [&] {
    h = h0;
    class_embedding_forward(h.data(), table.data(), labels.data(), B, n, rows);
    return weighted_sum(r, h.data());
  };
  loss();
  for (int j = 0; j < B; ++j) {
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(h[j * n + i], h0[j * n + i] + table[labels[j] * n + i]);
    }
  }
  class_embedding_backward(dtable.data(), r.data(), labels.data(), B, n, rows);
  const GradCheck c = check_grad(table.data(), dtable.data(), table.size(), loss, 1.0f / 32);
  report("table", c);
  EXPECT_LT(c.normwise, 1e-4);
  for (int i = 0; i < n; ++i) EXPECT_EQ(dtable[2 * n + i], 0.0f);  // class 2 unused
  // Null labels mean the last row; a label past it is an error, not a read out of bounds.
  std::vector<float> a = h0, b = h0;
  class_embedding_forward(a.data(), table.data(), nullptr, B, n, rows);
  const std::vector<int32_t> nulls(B, rows - 1);
  class_embedding_forward(b.data(), table.data(), nulls.data(), B, n, rows);
  EXPECT_EQ(a, b);
  const std::vector<int32_t> bad = {0, 4, 0, 0, 0, 0};
  EXPECT_THROW(class_embedding_forward(a.data(), table.data(), bad.data(), B, n, rows), Error);
}

// ---- against PyTorch ----

std::vector<float> floats(const json& tensor) {
  return tensor.at("data").get<std::vector<float>>();
}

TEST(ResMlpPyTorch, ForwardLossAndGradientsMatch) {
  for (const char* file :
       {"resmlp_d2_h32_l2.json", "resmlp_d5_h24_l3.json", "resmlp_d3_h20_l2_c4.json",
        "resmlp_d2_h32_l2_f6.json", "resmlp_d4_h20_l2_c3_f3.json"}) {
    SCOPED_TRACE(file);
    std::printf("%s\n", file);
    const json j = test::load_fixture(file);
    const json& c = j.at("config");
    ModelConfig cfg{c.at("dim"), c.at("hidden"), c.at("T"), ModelKind::kResMlp, c.at("depth")};
    cfg.classes = c.value("classes", 0);
    cfg.fourier_features = c.value("fourier_features", 0);
    const int B = c.at("B");
    const std::vector<int32_t> labels = j.value("labels", std::vector<int32_t>{});
    ASSERT_EQ(labels.empty(), cfg.classes == 0);
    const int32_t* lab = labels.empty() ? nullptr : labels.data();
    const std::vector<TensorInfo> layout = param_layout(cfg);
    ASSERT_EQ(layout.size(), j.at("params").size());
    std::vector<float> params, expected_grads;
    for (size_t i = 0; i < layout.size(); ++i) {
      EXPECT_EQ(layout[i].name, j.at("params")[i].at("name").get<std::string>());
      EXPECT_EQ(layout[i].shape, j.at("params")[i].at("shape").get<std::vector<int64_t>>());
      const auto p = floats(j.at("params")[i]), g = floats(j.at("grads")[i]);
      params.insert(params.end(), p.begin(), p.end());
      expected_grads.insert(expected_grads.end(), g.begin(), g.end());
    }
    ASSERT_EQ(params.size(), param_count(cfg));
    const std::vector<float> x = floats(j.at("x")), target = floats(j.at("target"));
    const std::vector<int32_t> t = j.at("t").get<std::vector<int32_t>>();
    const size_t n = x.size();
    Workspace ws(cfg, B + 3);  // larger than the batch: must not matter
    std::vector<float> y(n), dy(n), grads(params.size(), 1e30f);
    model_forward(cfg, params.data(), x.data(), t.data(), B, ws, y.data(), lab);
    auto expect_close = [](const std::string& what, const float* a, const float* b, size_t m,
                           double tol) {
      const test::Compare cmp = test::compare(a, b, m);
      std::printf("  %-22s norm-wise %.2e  element-wise %.2e\n", what.c_str(), cmp.normwise,
                  cmp.elementwise);
      EXPECT_LT(cmp.normwise, tol) << what;
      EXPECT_LT(cmp.elementwise, 20 * tol) << what;
    };
    expect_close("y", y.data(), floats(j.at("y")).data(), n, 1e-5);
    const float loss = mse_forward(y.data(), target.data(), n);
    EXPECT_NEAR(loss, j.at("loss").get<double>(), 1e-5 * j.at("loss").get<double>());
    mse_backward(dy.data(), y.data(), target.data(), n);
    model_backward(cfg, params.data(), x.data(), t.data(), B, dy.data(), ws, grads.data(), lab);
    for (const TensorInfo& ti : layout) {
      expect_close(ti.name, grads.data() + ti.offset, expected_grads.data() + ti.offset, ti.size,
                   1e-5);
    }
    expect_close("x", ws.dx.data(), floats(j.at("dx")).data(), n, 1e-5);
  }
}

// ---- the network through model.h ----

TEST(ResMlp, EachColumnDependsOnlyOnItselfAndPredictEqualsForward) {
  const ModelConfig cfg{4, 40, 1000, ModelKind::kResMlp, 2};
  Model m(cfg);
  Rng rng(11);
  m.init(rng);
  const int n = 37;
  const std::vector<float> x = normals(rng, static_cast<size_t>(cfg.dim) * n);
  std::vector<float> all(x.size()), part(x.size()), pred(x.size());
  std::vector<int32_t> t(n, 321);
  Workspace ws(cfg, n);
  model_forward(cfg, m.params.data(), x.data(), t.data(), n, ws, all.data());
  for (int j = 0; j < n; j += 5) {  // in batches of 5 columns
    const int b = std::min(5, n - j);
    model_forward(cfg, m.params.data(), x.data() + j * cfg.dim, t.data() + j, b, ws,
                  part.data() + j * cfg.dim);
  }
  EXPECT_EQ(all, part);
  Workspace small(cfg, 8);  // predict in chunks of 8
  model_predict(cfg, m.params.data(), x.data(), 321, n, small, pred.data());
  EXPECT_EQ(all, pred);
}

TEST(ResMlp, ConditionalColumnsDependOnTheirOwnLabelAndPredictEqualsForward) {
  ModelConfig cfg{2, 24, 1000, ModelKind::kResMlp, 2};
  cfg.classes = 3;
  Model m(cfg);
  Rng rng(17);
  m.init(rng);
  const int n = 21;
  const std::vector<float> x = normals(rng, static_cast<size_t>(cfg.dim) * n);
  std::vector<int32_t> t(n, 500), labels(n), nulls(n, null_label(cfg));
  for (int j = 0; j < n; ++j) labels[j] = j % 4;  // 3 is the null class
  std::vector<float> all(x.size()), part(x.size()), pred(x.size()), none(x.size()), null(x.size());
  Workspace ws(cfg, n);
  model_forward(cfg, m.params.data(), x.data(), t.data(), n, ws, all.data(), labels.data());
  for (int j = 0; j < n; j += 4) {
    const int b = std::min(4, n - j);
    model_forward(cfg, m.params.data(), x.data() + j * cfg.dim, t.data() + j, b, ws,
                  part.data() + j * cfg.dim, labels.data() + j);
  }
  EXPECT_EQ(all, part);
  Workspace small(cfg, 8);
  model_predict(cfg, m.params.data(), x.data(), 500, n, small, pred.data(), labels.data());
  EXPECT_EQ(all, pred);
  // No labels is the null class; the class changes the output.
  model_predict(cfg, m.params.data(), x.data(), 500, n, small, none.data());
  model_predict(cfg, m.params.data(), x.data(), 500, n, small, null.data(), nulls.data());
  EXPECT_EQ(none, null);
  for (int j = 0; j < n; ++j) {
    if (labels[j] == 3) {
      EXPECT_EQ(all[2 * j], null[2 * j]);
    } else {
      EXPECT_NE(all[2 * j], null[2 * j]);
    }
  }
  // The embedding is N(0, 1) (torch.nn.Embedding's init) and follows out.bias.
  const std::vector<TensorInfo> layout = param_layout(cfg);
  EXPECT_EQ(layout.back().name, "label_emb.weight");
  EXPECT_EQ(layout.back().shape, (std::vector<int64_t>{4, 24}));
  double s = 0, s2 = 0;
  for (size_t i = 0; i < layout.back().size; ++i) {
    const double v = m.params[layout.back().offset + i];
    s += v, s2 += v * v;
  }
  EXPECT_NEAR(s / 96, 0.0, 0.35);
  EXPECT_NEAR(s2 / 96, 1.0, 0.4);
  // The tutorial's network has no class embedding.
  ModelConfig tut{2, 8, 10};
  tut.classes = 2;
  EXPECT_THROW(validate(tut), UsageError);
}

TEST(ResMlp, InitIsTorchDefaultAndLayoutCountsEveryTensor) {
  const ModelConfig cfg{2, 64, 100, ModelKind::kResMlp, 3};
  EXPECT_EQ(param_layout(cfg).size(), 2u + 6u * 3u + 4u);
  const size_t H = 64, D = 2, E = kTimeFeatures;
  EXPECT_EQ(param_count(cfg), H * (D + E) + H + 3 * (4 * H + 2 * H * H) + 2 * H + D * H + D);
  Model m(cfg);
  Rng rng(1);
  m.init(rng);
  for (const TensorInfo& ti : param_layout(cfg)) {
    const float* p = m.params.data() + ti.offset;
    if (ti.name.find("norm.weight") != std::string::npos) {
      for (size_t i = 0; i < ti.size; ++i) ASSERT_EQ(p[i], 1.0f) << ti.name;
    } else if (ti.name.find("norm.bias") != std::string::npos) {
      for (size_t i = 0; i < ti.size; ++i) ASSERT_EQ(p[i], 0.0f) << ti.name;
    } else {
      const double bound = 1.0 / std::sqrt(ti.name.rfind("inp.", 0) == 0 ? D + E : H);
      double mx = 0;
      for (size_t i = 0; i < ti.size; ++i) mx = std::max(mx, std::abs(static_cast<double>(p[i])));
      EXPECT_LE(mx, bound) << ti.name;
      if (ti.size > 100) {
        EXPECT_GT(mx, 0.9 * bound) << ti.name;  // uses the whole range
      }
    }
  }
  EXPECT_THROW(validate(ModelConfig{2, 64, 100, ModelKind::kResMlp, 0}), UsageError);
}

// The trainer turns the input gradient off (Workspace::input_grad): the parameters' gradients are
// the same bits, and dx is left alone, for both networks.
TEST(ResMlp, SkippingTheInputGradientLeavesTheParameterGradientsAsTheyWere) {
  ModelConfig res{3, 20, 100, ModelKind::kResMlp, 2};
  res.fourier_features = 6;
  for (const ModelConfig& cfg : {res, ModelConfig{3, 20, 100}}) {
    Model m(cfg);
    Rng rng(23);
    m.init(rng);
    const int B = 9;
    const std::vector<float> x = normals(rng, static_cast<size_t>(cfg.dim) * B);
    const std::vector<float> dy = normals(rng, x.size());
    std::vector<int32_t> t(B);
    for (int j = 0; j < B; ++j) t[j] = static_cast<int32_t>(rng.below(cfg.T));
    std::vector<float> y(x.size()), with(m.params.size()), without(m.params.size());
    Workspace ws(cfg, B);
    model_forward(cfg, m.params.data(), x.data(), t.data(), B, ws, y.data());
    model_backward(cfg, m.params.data(), x.data(), t.data(), B, dy.data(), ws, with.data());
    EXPECT_NE(ws.dx.norm(), 0.0f);
    ws.dx.setConstant(7.0f);
    ws.input_grad = false;
    model_backward(cfg, m.params.data(), x.data(), t.data(), B, dy.data(), ws, without.data());
    EXPECT_EQ(with, without) << to_string(cfg.kind);
    EXPECT_TRUE((ws.dx.array() == 7.0f).all()) << to_string(cfg.kind);
  }
}

TEST(ResMlp, FourierFeaturesWidenOnlyTheFirstLayer) {
  ModelConfig cfg{2, 128, 1000, ModelKind::kResMlp, 2};
  const size_t plain = param_count(cfg);
  cfg.fourier_features = 6;
  const std::vector<TensorInfo> layout = param_layout(cfg);
  EXPECT_EQ(layout[0].name, "inp.weight");
  EXPECT_EQ(layout[0].shape, (std::vector<int64_t>{128, 2 + 32 + 24}));  // D + E + 2 K D
  EXPECT_EQ(resmlp_inputs(cfg), 58);
  EXPECT_EQ(param_count(cfg), plain + 128 * 24);
  // fan_in D + E + 2 K D: the bound is 1 / sqrt(58), reached, not 1 / sqrt(34).
  Model m(cfg);
  Rng rng(1);
  m.init(rng);
  double mx = 0;
  for (size_t i = 0; i < layout[0].size; ++i) mx = std::max(mx, std::abs(double{m.params[i]}));
  EXPECT_LE(mx, 1.0 / std::sqrt(58.0));
  EXPECT_GT(mx, 0.99 / std::sqrt(58.0));
  // 0..kMaxFourierFeatures octaves, on the residual MLP only.
  cfg.fourier_features = kMaxFourierFeatures;
  EXPECT_NO_THROW(validate(cfg));
  for (int bad : {-1, kMaxFourierFeatures + 1}) {
    cfg.fourier_features = bad;
    try {
      validate(cfg);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--fourier-features: expected 0..10"), std::string::npos)
          << e.what();
    }
  }
  ModelConfig tut{2, 8, 10};
  tut.fourier_features = 1;
  EXPECT_THROW(validate(tut), UsageError);
}

TEST(ResMlp, InputFourierFeaturesAreSinAndCosOfEachOctaveInOrder) {
  const int D = 3, K = 6, B = 7;
  const size_t ldf = 2 * K * D + 3;
  std::vector<float> x = {0.0f,  1.0f,  -1.0f, 0.3f,  -4.2f, 3.9f,    1e-20f,
                          -0.7f, 2.5f,  0.05f, -2.0f, 1.25f, -3.141f, 0.6f,
                          0.11f, -0.4f, 1.7f,  -2.9f, 0.9f,  -1.1f,   0.0625f};
  ASSERT_EQ(x.size(), static_cast<size_t>(D) * B);
  std::vector<float> f(ldf * B, -9.0f);
  input_fourier_forward(f.data(), ldf, x.data(), B, D, K);
  double worst = 0, worst_libm = 0;
  for (int j = 0; j < B; ++j) {
    for (int d = 0; d < D; ++d) {
      for (int k = 0; k < K; ++k) {
        const float a = x[j * D + d] * static_cast<float>(1 << k);
        const size_t i = j * ldf + 2 * (d * K + k);
        worst = std::max({worst, std::abs(f[i] - std::sin(double{a})),
                          std::abs(f[i + 1] - std::cos(double{a}))});
        worst_libm = std::max({worst_libm, double{std::abs(f[i] - std::sin(a))},
                               double{std::abs(f[i + 1] - std::cos(a))}});
      }
    }
    for (size_t i = 2 * K * D; i < ldf; ++i) EXPECT_EQ(f[j * ldf + i], -9.0f);  // past the features
  }
  std::printf("  worst |f - sin, cos| %.2e against double, %.2e against std:: in float\n", worst,
              worst_libm);
  EXPECT_LT(worst, 2.5e-7);  // within 2 float ulps of 1
  EXPECT_EQ(f[0], 0.0f);     // sin(0), cos(0) exactly
  EXPECT_EQ(f[1], 1.0f);
  // A column's features do not depend on the batch around it.
  std::vector<float> one(ldf, -9.0f);
  for (int j = 0; j < B; ++j) {
    input_fourier_forward(one.data(), ldf, x.data() + j * D, 1, D, K);
    for (size_t i = 0; i < ldf; ++i) ASSERT_EQ(one[i], f[j * ldf + i]) << j << " " << i;
  }
}

TEST(ResMlp, TimeEmbeddingIsSinusoidalInTOverT) {
  std::vector<float> e(2 * kTimeFeatures);
  const std::vector<int32_t> t = {0, 250};
  time_embedding_forward(e.data(), t.data(), 2, kTimeFeatures, 1000);
  const int half = kTimeFeatures / 2;
  for (int k = 0; k < half; ++k) {
    EXPECT_EQ(e[k], 0.0f);  // sin(0)
    EXPECT_EQ(e[half + k], 1.0f);
    const double f = std::pow(10000.0, -static_cast<double>(k) / half);
    EXPECT_NEAR(e[kTimeFeatures + k], std::sin(250.0 * f), 1e-6);
    EXPECT_NEAR(e[kTimeFeatures + half + k], std::cos(250.0 * f), 1e-6);
  }
}

TEST(ResMlpCheckpoint, RoundTripsKindDepthAndPrediction) {
  test::TempDir dir;
  const ModelConfig cfg{3, 16, 1000, ModelKind::kResMlp, 2, Prediction::kX0};
  Checkpoint ck = initialized_checkpoint(cfg, 2);
  save_checkpoint(dir.file("m.safetensors"), ck);
  const Checkpoint back = load_checkpoint(dir.file("m.safetensors"));
  EXPECT_EQ(back.model.kind, ModelKind::kResMlp);
  EXPECT_EQ(back.model.depth, 2);
  EXPECT_EQ(back.model.prediction, Prediction::kX0);
  EXPECT_EQ(back.params, ck.params);
  const SafeTensors st = read_safetensors(dir.file("m.safetensors"));
  EXPECT_EQ(st.metadata.at("format_version"), "2");
  EXPECT_EQ(st.metadata.at("model"), "resmlp");
}

TEST(ResMlpCheckpoint, ConditionalRoundTripsClassesAsVersion3) {
  test::TempDir dir;
  ModelConfig cfg{2, 16, 100, ModelKind::kResMlp, 2, Prediction::kV};
  cfg.classes = 3;
  Checkpoint ck = initialized_checkpoint(cfg, 3);
  ck.classes = {"setosa", "7", "a, b"};
  ck.class_counts = {50, 2, 9};
  save_checkpoint(dir.file("m.safetensors"), ck);
  const Checkpoint back = load_checkpoint(dir.file("m.safetensors"));
  EXPECT_EQ(back.model.classes, 3);
  EXPECT_EQ(back.classes, ck.classes);
  EXPECT_EQ(back.class_counts, ck.class_counts);
  EXPECT_EQ(back.params, ck.params);
  const SafeTensors st = read_safetensors(dir.file("m.safetensors"));
  EXPECT_EQ(st.metadata.at("format_version"), "3");
  // Bad class metadata is one clear error each.
  auto error_of = [&](const std::string& key, const std::string& value,
                      const std::string& counts = "") {
    SafeTensors bad = st;
    bad.metadata[key] = value;
    if (!counts.empty()) bad.metadata["class_counts"] = counts;
    try {
      parse_checkpoint(serialize_safetensors(bad), "bad.safetensors");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(error_of("class_counts", "[50, 2]").find("\"class_counts\""), std::string::npos);
  EXPECT_NE(error_of("class_counts", "[50, 0, 9]").find(">= 1"), std::string::npos);
  EXPECT_NE(error_of("classes", "[\"a\", \"a\", \"b\"]").find("twice"), std::string::npos);
  // Two classes in the metadata and a 4-row embedding: the tensor's shape is named.
  const std::string two = error_of("classes", "[\"a\", \"b\"]", "[3, 4]");
  EXPECT_NE(two.find("label_emb.weight"), std::string::npos) << two;
  // A mismatch on saving writes nothing.
  ck.class_counts.pop_back();
  EXPECT_THROW(save_checkpoint(dir.file("n.safetensors"), ck), Error);
  EXPECT_FALSE(test::file_exists(dir.file("n.safetensors")));
}

TEST(ResMlpCheckpoint, FourierFeaturesRoundTripAsVersion4AndFilesWithoutThemLoadAsNone) {
  test::TempDir dir;
  ModelConfig cfg{2, 16, 100, ModelKind::kResMlp, 2, Prediction::kV};
  cfg.fourier_features = 6;
  Checkpoint ck = initialized_checkpoint(cfg, 4);
  save_checkpoint(dir.file("f.safetensors"), ck);
  const Checkpoint back = load_checkpoint(dir.file("f.safetensors"));
  EXPECT_EQ(back.model.fourier_features, 6);
  EXPECT_EQ(back.params, ck.params);
  const SafeTensors st = read_safetensors(dir.file("f.safetensors"));
  EXPECT_EQ(st.metadata.at("format_version"), "4");
  EXPECT_EQ(st.metadata.at("fourier_features"), "6");
  EXPECT_EQ(st.tensors.at("inp.weight").shape, (std::vector<int64_t>{16, 2 + 32 + 24}));
  // K = 0 writes no key and stays version 2: what every earlier build wrote, and reads.
  ModelConfig plain = cfg;
  plain.fourier_features = 0;
  ck = initialized_checkpoint(plain, 5);
  save_checkpoint(dir.file("p.safetensors"), ck);
  const SafeTensors sp = read_safetensors(dir.file("p.safetensors"));
  EXPECT_EQ(sp.metadata.count("fourier_features"), 0u);
  EXPECT_EQ(sp.metadata.at("format_version"), "2");
  EXPECT_EQ(load_checkpoint(dir.file("p.safetensors")).model.fourier_features, 0);
  // Bad values are one clear error naming the key; a K that does not match inp.weight names it.
  auto error_of = [&](const SafeTensors& base, const char* key, const std::string& value) {
    SafeTensors bad = base;
    if (value.empty()) {
      bad.metadata.erase(key);
    } else {
      bad.metadata[key] = value;
    }
    try {
      parse_checkpoint(serialize_safetensors(bad), "bad.safetensors");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  for (const char* v : {"11", "-1", "six", "2.5"}) {
    const std::string e = error_of(st, "fourier_features", v);
    EXPECT_EQ(e.rfind("bad.safetensors: metadata \"fourier_features\" is ", 0), 0u) << e;
  }
  EXPECT_NE(error_of(st, "fourier_features", "11").find("expected 0 to 10"), std::string::npos);
  const std::string five = error_of(st, "fourier_features", "5");
  EXPECT_NE(five.find("fourier_features=5 but tensor inp.weight takes 58 inputs, not 54"),
            std::string::npos)
      << five;
  const std::string none = error_of(st, "fourier_features", "");  // dropped: read as K = 0
  EXPECT_NE(none.find("dim=2 but tensor inp.weight takes 58 inputs, not 34"), std::string::npos)
      << none;
  const std::string added = error_of(sp, "fourier_features", "6");
  EXPECT_NE(added.find("inp.weight takes 34 inputs, not 58"), std::string::npos) << added;
  // The tutorial's network has no input features.
  SafeTensors tut = sp;
  tut.metadata["model"] = "tutorial";
  EXPECT_NE(error_of(tut, "fourier_features", "2").find("invalid model"), std::string::npos);
}

TEST(ResMlpCheckpoint, TutorialEpsCheckpointsStayVersion1AndOldFilesLoadAsTutorial) {
  test::TempDir dir;
  const ModelConfig cfg{2, 8, 10};
  Checkpoint ck = initialized_checkpoint(cfg, 2);
  save_checkpoint(dir.file("m.safetensors"), ck);
  const SafeTensors st = read_safetensors(dir.file("m.safetensors"));
  EXPECT_EQ(st.metadata.at("format_version"), "1");  // what earlier builds wrote and read
  EXPECT_EQ(st.metadata.count("model"), 0u);
  const Checkpoint back = load_checkpoint(dir.file("m.safetensors"));
  EXPECT_EQ(back.model.kind, ModelKind::kTutorial);
  EXPECT_EQ(back.model.prediction, Prediction::kEps);
  // An unknown model name is one clear error.
  SafeTensors bad = st;
  bad.metadata["format_version"] = "2";
  bad.metadata["model"] = "transformer";
  try {
    parse_checkpoint(serialize_safetensors(bad), "bad.safetensors");
    FAIL() << "accepted an unknown model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"model\" is \"transformer\""), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace diffuse
