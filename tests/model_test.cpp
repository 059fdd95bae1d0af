// Tests for the model kernels: central-difference gradient checks of every layer and of the whole
// network, agreement with PyTorch's forward/backward (fixtures), init distribution and layout.
#include "diffuse/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

using nlohmann::json;

using test::check_grad;
using test::compare;
using test::Compare;
using test::GradCheck;
using test::load_fixture;

std::vector<float> floats(const json& tensor) {
  return tensor.at("data").get<std::vector<float>>();
}

// A PyTorch fixture from scripts/make_fixtures.py. Arrays are row-major as PyTorch stores them, so
// x (B, D) is already the (D, B) column-major batch the model takes.
struct Fixture {
  ModelConfig cfg;
  int B = 0;
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<float> params, grads, x, eps, y, dx;
  std::vector<int32_t> t;
  double loss = 0;

  explicit Fixture(const std::string& file) {
    json j = load_fixture(file);
    cfg.dim = j.at("config").at("dim");
    cfg.hidden = j.at("config").at("hidden");
    cfg.T = j.at("config").at("T");
    B = j.at("config").at("B");
    for (const json& p : j.at("params")) {
      names.push_back(p.at("name"));
      shapes.push_back(p.at("shape").get<std::vector<int64_t>>());
      std::vector<float> v = floats(p);
      params.insert(params.end(), v.begin(), v.end());
    }
    for (const json& g : j.at("grads")) {
      std::vector<float> v = floats(g);
      grads.insert(grads.end(), v.begin(), v.end());
    }
    x = floats(j.at("x"));
    eps = floats(j.at("eps"));
    y = floats(j.at("y"));
    dx = floats(j.at("dx"));
    t = j.at("t").get<std::vector<int32_t>>();
    loss = j.at("loss");
  }
};

const char* const kFixtures[] = {"model_d2_h32.json", "model_d3_h16.json"};

// ---------------------------------------------------------------------------------------------
// (a) Central-difference gradient checks, after ggml's test-backend-ops: perturb one element at a
// time, take the five-point derivative of a loss accumulated in double, compare with the kernel's
// backward. Inputs lie on a 2^-12 grid and h is a power of two, so x +- h and x +- 2h are exact in
// float. Kernels linear in each single element (linear, cond_linear, and mse, quadratic) use h = 1:
// the stencil is then exact and float rounding of the loss is divided by a large step.

// Rounds to multiples of 2^-12, so that adding a step of 2^-k (k <= 12) is exact for |v| < 4096.
void quantize(std::vector<float>& v) {
  for (float& x : v) x = std::round(x * 4096.0f) / 4096.0f;
}

std::vector<float> normals(Rng& rng, size_t n) {
  std::vector<float> v(n);
  rng.fill_normal(v.data(), n);
  quantize(v);
  return v;
}

std::vector<float> uniforms(Rng& rng, size_t n) {
  std::vector<float> v(n);
  rng.fill_uniform(v.data(), n, 0.0f, 1.0f);
  quantize(v);
  return v;
}

double dot(const std::vector<float>& r, const std::vector<float>& y) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(r[i]) * y[i];
  return s;
}

constexpr float kGarbage = 1e30f;  // backward must overwrite, never accumulate into, its outputs

TEST(GradCheck, CondLinear) {
  const int in = 3, out = 5, B = 7, T = 4;
  Rng rng(11);
  std::vector<float> x = normals(rng, in * B), W = normals(rng, out * in), b = normals(rng, out);
  std::vector<float> E = uniforms(rng, T * out);
  std::vector<int32_t> t = {2, 0, 2, 2, 1, 0, 2};  // repeats; row 3 unused
  std::vector<float> r = normals(rng, out * B);    // L = sum r . z, so dz = r
  std::vector<float> z(out * B), a(out * B);
  auto loss = [&] {
    cond_linear_forward(z.data(), a.data(), x.data(), W.data(), b.data(), E.data(), t.data(), B, in,
                        out);
    return dot(r, z);
  };
  loss();
  // a = W x + b and z = a * E[t], column by column.
  for (int j = 0; j < B; ++j) {
    for (int o = 0; o < out; ++o) {
      double s = b[o];
      for (int k = 0; k < in; ++k) s += static_cast<double>(W[o * in + k]) * x[j * in + k];
      EXPECT_NEAR(a[j * out + o], s, 1e-5);
      EXPECT_NEAR(z[j * out + o], s * E[t[j] * out + o], 1e-5);
    }
  }
  std::vector<float> dx(in * B, kGarbage), dW(out * in, kGarbage), db(out, kGarbage),
      dE(T * out, kGarbage), dz = r;
  cond_linear_backward(dx.data(), dW.data(), db.data(), dE.data(), dz.data(), x.data(), a.data(),
                       W.data(), E.data(), t.data(), B, in, out, T);
  for (int o = 0; o < out; ++o) EXPECT_EQ(dE[3 * out + o], 0.0f) << "unused embedding row";
  for (int j = 0; j < B; ++j) {  // dz is overwritten with da = dz * E[t]
    for (int o = 0; o < out; ++o) {
      EXPECT_FLOAT_EQ(dz[j * out + o], r[j * out + o] * E[t[j] * out + o]);
    }
  }
  const float h = 1.0f;
  GradCheck gx = check_grad(x.data(), dx.data(), x.size(), loss, h);
  GradCheck gW = check_grad(W.data(), dW.data(), W.size(), loss, h);
  GradCheck gb = check_grad(b.data(), db.data(), b.size(), loss, h);
  GradCheck gE = check_grad(E.data(), dE.data(), E.size(), loss, h);
  EXPECT_LT(gx.worst, 1e-4);
  EXPECT_LT(gW.worst, 1e-4);
  EXPECT_LT(gb.worst, 1e-4);
  EXPECT_LT(gE.worst, 1e-4);
  std::printf("cond_linear worst rel err: x %.2e W %.2e b %.2e E %.2e\n", gx.worst, gW.worst,
              gb.worst, gE.worst);

  // dx may be skipped (the first layer) without changing the parameter gradients.
  std::vector<float> dW2(out * in, kGarbage), db2(out, kGarbage), dE2(T * out, kGarbage), dz2 = r;
  cond_linear_backward(nullptr, dW2.data(), db2.data(), dE2.data(), dz2.data(), x.data(), a.data(),
                       W.data(), E.data(), t.data(), B, in, out, T);
  EXPECT_EQ(dW2, dW);
  EXPECT_EQ(db2, db);
  EXPECT_EQ(dE2, dE);
}

TEST(GradCheck, Linear) {
  const int in = 6, out = 3, B = 5;
  Rng rng(12);
  std::vector<float> x = normals(rng, in * B), W = normals(rng, out * in), b = normals(rng, out);
  std::vector<float> r = normals(rng, out * B), y(out * B);
  auto loss = [&] {
    linear_forward(y.data(), x.data(), W.data(), b.data(), B, in, out);
    return dot(r, y);
  };
  loss();
  for (int j = 0; j < B; ++j) {
    for (int o = 0; o < out; ++o) {
      double s = b[o];
      for (int k = 0; k < in; ++k) s += static_cast<double>(W[o * in + k]) * x[j * in + k];
      EXPECT_NEAR(y[j * out + o], s, 1e-5);
    }
  }
  std::vector<float> dx(in * B, kGarbage), dW(out * in, kGarbage), db(out, kGarbage);
  linear_backward(dx.data(), dW.data(), db.data(), r.data(), x.data(), W.data(), B, in, out);
  const float h = 1.0f;
  GradCheck gx = check_grad(x.data(), dx.data(), x.size(), loss, h);
  GradCheck gW = check_grad(W.data(), dW.data(), W.size(), loss, h);
  GradCheck gb = check_grad(b.data(), db.data(), b.size(), loss, h);
  EXPECT_LT(gx.worst, 1e-4);
  EXPECT_LT(gW.worst, 1e-4);
  EXPECT_LT(gb.worst, 1e-4);
  std::printf("linear worst rel err: x %.2e W %.2e b %.2e\n", gx.worst, gW.worst, gb.worst);

  std::vector<float> dW2(out * in, kGarbage), db2(out, kGarbage);
  linear_backward(nullptr, dW2.data(), db2.data(), r.data(), x.data(), W.data(), B, in, out);
  EXPECT_EQ(dW2, dW);
  EXPECT_EQ(db2, db);
}

TEST(GradCheck, SoftplusIncludingTheThresholdBranch) {
  // Values on both sides of PyTorch's threshold 20 (kept 2h away from it) and far negative.
  std::vector<float> z = {-40.0f, -25.0f, -19.5f, -3.0f, -0.5f, 0.0f,  0.25f, 1.0f,
                          4.0f,   10.0f,  15.0f,  19.5f, 20.5f, 25.0f, 33.0f, 88.0f};
  const size_t n = z.size();
  Rng rng(13);
  std::vector<float> r = normals(rng, n), h(n), dz(n, kGarbage);
  softplus_forward(h.data(), z.data(), n);
  for (size_t i = 0; i < n; ++i) {
    double want = z[i] > 20 ? z[i] : std::log1p(std::exp(static_cast<double>(z[i])));
    EXPECT_NEAR(h[i], want, 1e-6 * std::max(1.0, std::abs(want))) << "z=" << z[i];
    EXPECT_TRUE(std::isfinite(h[i])) << "z=" << z[i];
  }
  EXPECT_EQ(h[12], 20.5f);  // the threshold branch returns z itself
  EXPECT_EQ(h[15], 88.0f);  // where exp(z) would overflow float
  softplus_backward(dz.data(), r.data(), z.data(), n);
  for (size_t i = 0; i < n; ++i) {
    double sig = z[i] > 20 ? 1.0 : 1.0 / (1.0 + std::exp(-static_cast<double>(z[i])));
    EXPECT_NEAR(dz[i], r[i] * sig, 1e-6 * std::abs(r[i])) << "z=" << z[i];
  }
  auto loss = [&] {
    softplus_forward(h.data(), z.data(), n);
    return dot(r, h);
  };
  GradCheck g = check_grad(z.data(), dz.data(), n, loss, 1.0f / 128);
  EXPECT_LT(g.worst, 2e-4);
  std::printf("softplus worst rel err: %.2e\n", g.worst);
}

TEST(GradCheck, Mse) {
  const size_t n = 12;
  Rng rng(14);
  std::vector<float> y = normals(rng, n), target = normals(rng, n), dy(n, kGarbage);
  double want = 0;
  for (size_t i = 0; i < n; ++i)
    want += (static_cast<double>(y[i]) - target[i]) * (y[i] - target[i]);
  want /= n;
  EXPECT_NEAR(mse_forward(y.data(), target.data(), n), want, 1e-6 * want);
  mse_backward(dy.data(), y.data(), target.data(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(dy[i], 2.0 * (y[i] - target[i]) / n, 1e-7);
  auto loss = [&] { return static_cast<double>(mse_forward(y.data(), target.data(), n)); };
  GradCheck g = check_grad(y.data(), dy.data(), n, loss, 1.0f);  // quadratic: exact stencil
  EXPECT_LT(g.worst, 1e-4);
  std::printf("mse worst rel err: %.2e\n", g.worst);
}

// The whole network: L = sum((eps_theta(x, t) - eps)^2) = n * MSE, in double from float outputs
// (the sum, not the mean, keeps gradients O(1) next to the loss's rounding). Params and x are
// quantized copies. Returns the number of softplus inputs beyond +-20 in the unperturbed forward.
int check_model_gradients(const ModelConfig& cfg, std::vector<float> params, std::vector<float> x,
                          const std::vector<int32_t>& t, const std::vector<float>& eps) {
  // Float forward passes carry ~1e-7 relative noise while many of these gradients are ~1e-3, so
  // the step is large (h^4 truncation stays small on this smooth network) and the element-wise
  // bound loose; the norm-wise bound is the sharp one (measured: 9e-4 at worst).
  const float h = 1.0f / 8;
  const double tol_norm = 2e-3, tol_element = 5e-2;
  quantize(params);
  quantize(x);
  const int B = static_cast<int>(t.size());
  const size_t n = static_cast<size_t>(cfg.dim) * B;
  Workspace ws(cfg, B);
  std::vector<float> y(n), dy(n), grads(params.size(), kGarbage);
  auto loss = [&] {
    model_forward(cfg, params.data(), x.data(), t.data(), B, ws, y.data());
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += (static_cast<double>(y[i]) - eps[i]) * (y[i] - eps[i]);
    return s;
  };
  loss();
  int saturated = 0;
  // |z| > 20: softplus is z itself above (h > 20), and its slope sigmoid(z) < 2.1e-9 below.
  for (int l = 0; l < 3; ++l) {
    const ColMatrix& h = l == 0 ? ws.h1 : l == 1 ? ws.h2 : ws.h3;
    const ColMatrix& s = l == 0 ? ws.s1 : l == 1 ? ws.s2 : ws.s3;
    saturated += static_cast<int>((h.leftCols(B).array() > 20.0f).count());
    saturated += static_cast<int>((s.leftCols(B).array() < 2.0611537e-9f).count());
  }
  mse_backward(dy.data(), y.data(), eps.data(), n);
  for (float& v : dy) v *= static_cast<float>(n);
  model_backward(cfg, params.data(), x.data(), t.data(), B, dy.data(), ws, grads.data());
  std::vector<float> dx(ws.dx.data(), ws.dx.data() + n);
  for (const TensorInfo& ti : param_layout(cfg)) {
    GradCheck g = check_grad(params.data() + ti.offset, grads.data() + ti.offset, ti.size, loss, h,
                             128, ti.offset + 1);
    EXPECT_LT(g.normwise, tol_norm) << ti.name;
    EXPECT_LT(g.worst, tol_element) << ti.name;
    std::printf("  %-18s %3zu checked, worst rel err %.2e, norm-wise %.2e\n", ti.name.c_str(),
                g.checked, g.worst, g.normwise);
  }
  GradCheck gx = check_grad(x.data(), dx.data(), n, loss, h);
  EXPECT_LT(gx.normwise, tol_norm) << "x";
  EXPECT_LT(gx.worst, tol_element) << "x";
  std::printf("  %-18s %3zu checked, worst rel err %.2e, norm-wise %.2e\n", "x", gx.checked,
              gx.worst, gx.normwise);
  return saturated;
}

TEST(GradCheck, WholeModelAtPyTorchInit) {
  ModelConfig cfg{3, 8, 5};
  Model m(cfg);
  Rng rng(15);
  m.init(rng);
  const int B = 7;
  std::vector<float> x = normals(rng, cfg.dim * B), eps = normals(rng, cfg.dim * B);
  std::vector<int32_t> t = {4, 0, 4, 1, 4, 2, 0};
  EXPECT_EQ(check_model_gradients(cfg, m.params, x, t, eps), 0);
}

TEST(GradCheck, WholeModelWithSaturatedUnits) {
  // Units of the last conditional layer pushed past softplus's threshold: z3[0] = 30 E3[t][0]
  // straddles 20, z3[1] < -20 always (sigmoid ~ 1e-11), z3[2] > 20 always (identity branch). Their
  // large outputs only meet lin4, which is linear, so the stencil stays accurate.
  ModelConfig cfg{2, 8, 6};
  Model m(cfg);
  Rng rng(17);
  m.init(rng);
  std::vector<TensorInfo> L = param_layout(cfg);
  float* p = m.params.data();
  const int H = cfg.hidden;
  float* b3 = p + L[7].offset;  // lin3.lin.bias
  b3[0] = 30.0f;
  b3[1] = -30.0f;
  b3[2] = 30.0f;
  for (int t = 0; t < cfg.T; ++t) {
    float* e3 = p + L[8].offset + t * H;  // lin3.embed.weight[t]
    e3[0] = 0.5f + 0.5f * e3[0];
    e3[1] = 0.8f + 0.2f * e3[1];
    e3[2] = 0.8f + 0.2f * e3[2];
  }
  for (int d = 0; d < cfg.dim; ++d) {  // lin4.weight[:, 0..2] small, to keep y moderate
    for (int k = 0; k < 3; ++k) p[L[9].offset + d * H + k] *= 0.1f;
  }
  const int B = 9;
  std::vector<float> x = normals(rng, cfg.dim * B), eps = normals(rng, cfg.dim * B);
  std::vector<int32_t> t = {0, 1, 2, 3, 4, 5, 2, 2, 5};
  EXPECT_GE(check_model_gradients(cfg, m.params, x, t, eps), 2 * B + 1);
}

// ---------------------------------------------------------------------------------------------
// (b) Against PyTorch: output, loss, the 11 parameter gradients and d/dx.

void expect_close(const std::string& what, const float* a, const float* b, size_t n, double tol) {
  Compare c = compare(a, b, n);
  EXPECT_LT(c.normwise, tol) << what << " norm-wise";
  EXPECT_LT(c.elementwise, 20 * tol) << what << " element-wise";
  std::printf("  %-18s norm-wise %.2e  element-wise %.2e\n", what.c_str(), c.normwise,
              c.elementwise);
}

TEST(PyTorch, ForwardLossAndGradientsMatch) {
  for (const char* file : kFixtures) {
    SCOPED_TRACE(file);
    std::printf("%s\n", file);
    Fixture fx(file);
    const size_t n = static_cast<size_t>(fx.cfg.dim) * fx.B;
    ASSERT_EQ(fx.params.size(), param_count(fx.cfg));
    Workspace ws(fx.cfg, fx.B);
    std::vector<float> y(n), dy(n), grads(fx.params.size(), kGarbage);
    model_forward(fx.cfg, fx.params.data(), fx.x.data(), fx.t.data(), fx.B, ws, y.data());
    expect_close("y", y.data(), fx.y.data(), n, 1e-5);
    float loss = mse_forward(y.data(), fx.eps.data(), n);
    EXPECT_NEAR(loss, fx.loss, 1e-5 * fx.loss);
    std::printf("  %-18s rel err %.2e\n", "loss", std::abs(loss - fx.loss) / fx.loss);
    mse_backward(dy.data(), y.data(), fx.eps.data(), n);
    model_backward(fx.cfg, fx.params.data(), fx.x.data(), fx.t.data(), fx.B, dy.data(), ws,
                   grads.data());
    for (const TensorInfo& ti : param_layout(fx.cfg)) {
      expect_close(ti.name, grads.data() + ti.offset, fx.grads.data() + ti.offset, ti.size, 1e-5);
    }
    expect_close("x", ws.dx.data(), fx.dx.data(), n, 1e-5);
  }
}

TEST(PyTorch, BatchesOfDifferentSizesShareOneWorkspace) {
  // A workspace sized for more columns than used must give the same result as an exact one.
  Fixture fx("model_d2_h32.json");
  const size_t n = static_cast<size_t>(fx.cfg.dim) * fx.B;
  Workspace big(fx.cfg, 3 * fx.B), exact(fx.cfg, fx.B);
  std::vector<float> y1(n), y2(n), g1(fx.params.size()), g2(fx.params.size()), dy(n);
  model_forward(fx.cfg, fx.params.data(), fx.x.data(), fx.t.data(), fx.B, big, y1.data());
  model_forward(fx.cfg, fx.params.data(), fx.x.data(), fx.t.data(), fx.B, exact, y2.data());
  mse_backward(dy.data(), y1.data(), fx.eps.data(), n);
  model_backward(fx.cfg, fx.params.data(), fx.x.data(), fx.t.data(), fx.B, dy.data(), big,
                 g1.data());
  model_backward(fx.cfg, fx.params.data(), fx.x.data(), fx.t.data(), fx.B, dy.data(), exact,
                 g2.data());
  EXPECT_LT(compare(y1.data(), y2.data(), n).normwise, 1e-6);
  EXPECT_LT(compare(g1.data(), g2.data(), g1.size()).normwise, 1e-6);
  EXPECT_LT(compare(y1.data(), fx.y.data(), n).normwise, 1e-5);
}

// ---------------------------------------------------------------------------------------------
// (c) Model::init draws PyTorch's default distribution.

TEST(Init, MatchesPyTorchDefaults) {
  ModelConfig cfg{2, 128, 100};
  Model zero(cfg);
  ASSERT_EQ(zero.params.size(), param_count(cfg));
  for (float p : zero.params) ASSERT_EQ(p, 0.0f);

  Model m(cfg);
  Rng rng(123);
  m.init(rng);
  std::vector<TensorInfo> layout = param_layout(cfg);
  for (size_t k = 0; k < layout.size(); ++k) {
    const TensorInfo& ti = layout[k];
    SCOPED_TRACE(ti.name);
    const float* p = m.params.data() + ti.offset;
    const size_t n = ti.size;
    double lo, hi;
    bool embed = ti.name.find("embed") != std::string::npos;
    if (embed) {
      lo = 0, hi = 1;  // embed.weight.data.uniform_()
    } else {
      // Linear: kaiming_uniform(a=sqrt(5)) for the weight and U(+-1/sqrt(fan_in)) for the bias,
      // both U(-1/sqrt(fan_in), 1/sqrt(fan_in)); fan_in is the weight's column count.
      const TensorInfo& w = ti.shape.size() == 2 ? ti : layout[k - 1];
      double bound = 1.0 / std::sqrt(static_cast<double>(w.shape[1]));
      lo = -bound, hi = bound;
    }
    double sum = 0, sum2 = 0, mx = -1e9, mn = 1e9;
    for (size_t i = 0; i < n; ++i) {
      ASSERT_GE(p[i], lo);
      if (embed) {
        ASSERT_LT(p[i], hi);
      } else {
        ASSERT_LE(p[i], hi);
      }
      sum += p[i];
      mx = std::max(mx, static_cast<double>(p[i]));
      mn = std::min(mn, static_cast<double>(p[i]));
    }
    const double mean = sum / n, want_mean = (lo + hi) / 2, width = hi - lo;
    for (size_t i = 0; i < n; ++i) sum2 += (p[i] - want_mean) * (p[i] - want_mean);
    const double var = sum2 / n, want_var = width * width / 12;
    // Standard errors of a uniform's sample mean and of its mean squared deviation.
    const double se_mean = width / std::sqrt(12.0 * n);
    const double se_var = width * width * std::sqrt(1.0 / 80 - 1.0 / 144) / std::sqrt(1.0 * n);
    EXPECT_NEAR(mean, want_mean, 5 * se_mean);
    if (n >= 100) {
      EXPECT_NEAR(var, want_var, 5 * se_var);
    }
    if (n >= 1000) {  // the whole range is used, not a narrower one
      EXPECT_GT(mx, hi - 0.01 * width);
      EXPECT_LT(mn, lo + 0.01 * width);
    }
  }

  // Deterministic in the seed; another seed gives other values.
  Model again(cfg), other(cfg);
  Rng r1(123), r2(124);
  again.init(r1);
  other.init(r2);
  EXPECT_EQ(again.params, m.params);
  EXPECT_NE(other.params, m.params);
}

// ---------------------------------------------------------------------------------------------
// (d) model_predict (one t, chunked by the workspace) equals model_forward.

TEST(Predict, EqualsForwardWithAllTimestepsEqual) {
  ModelConfig cfg{2, 16, 10};
  Model m(cfg);
  Rng rng(16);
  m.init(rng);
  const int n = 21, chunk = 8;  // chunks of 8, 8, 5
  std::vector<float> x = normals(rng, cfg.dim * n);
  Workspace small(cfg, chunk), whole(cfg, n);
  for (int t : {0, 4, cfg.T - 1}) {
    std::vector<float> y1(cfg.dim * n, kGarbage), y2(cfg.dim * n);
    model_predict(cfg, m.params.data(), x.data(), t, n, small, y1.data());
    std::vector<int32_t> tv(n, t);
    model_forward(cfg, m.params.data(), x.data(), tv.data(), n, whole, y2.data());
    for (size_t i = 0; i < y1.size(); ++i) {
      EXPECT_NEAR(y1[i], y2[i], 1e-6 * std::abs(y2[i]) + 1e-7) << "t=" << t << " i=" << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// (e) The flat buffer follows PyTorch's state_dict order and shapes.

TEST(Layout, IsTheStateDictOrder) {
  for (const char* file : kFixtures) {
    SCOPED_TRACE(file);
    Fixture fx(file);
    std::vector<TensorInfo> layout = param_layout(fx.cfg);
    ASSERT_EQ(layout.size(), 11u);
    ASSERT_EQ(layout.size(), fx.names.size());
    size_t offset = 0;
    for (size_t k = 0; k < layout.size(); ++k) {
      EXPECT_EQ(layout[k].name, fx.names[k]);
      EXPECT_EQ(layout[k].shape, fx.shapes[k]) << layout[k].name;
      EXPECT_EQ(layout[k].offset, offset) << layout[k].name;
      size_t size = 1;
      for (int64_t d : fx.shapes[k]) size *= static_cast<size_t>(d);
      EXPECT_EQ(layout[k].size, size) << layout[k].name;
      offset += size;
    }
    EXPECT_EQ(param_count(fx.cfg), offset);
    EXPECT_EQ(fx.params.size(), offset);
  }
  const int D = 2, H = 128, T = 100;
  EXPECT_EQ(param_count(ModelConfig{D, H, T}),
            static_cast<size_t>((D * H + H + T * H) + 2 * (H * H + H + T * H) + (H * D + D)));
}

TEST(Layout, ValidateRejectsBadConfigs) {
  EXPECT_NO_THROW(validate(ModelConfig{1, 1, 2}));
  EXPECT_THROW(validate(ModelConfig{0, 8, 10}), UsageError);
  EXPECT_THROW(validate(ModelConfig{2, 0, 10}), UsageError);
  EXPECT_THROW(validate(ModelConfig{2, 8, 1}), UsageError);
}

}  // namespace
}  // namespace diffuse
