// The ConditionalModel's layer kernels and whole-network forward/backward, on Eigen maps over
// caller-owned buffers (no allocation per call). Not an autograd: each backward is derived by hand
// and proven by central differences and PyTorch fixtures (tests/model_test.cpp).
#include "diffuse/model.h"

#include <Eigen/Core>
#include <cmath>
#include <string>

#include "diffuse/error.h"

namespace diffuse {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRowMap = Eigen::Map<const RowMatrix>;
using RowMap = Eigen::Map<RowMatrix>;
using ConstColMap = Eigen::Map<const ColMatrix>;
using ColMap = Eigen::Map<ColMatrix>;
using ConstVecMap = Eigen::Map<const Eigen::VectorXf>;
using VecMap = Eigen::Map<Eigen::VectorXf>;

constexpr float kSoftplusThreshold = 20.0f;  // PyTorch's default: linear above it

// Pointers to the 11 tensors inside a flat buffer, in state_dict order.
template <typename F>
struct Tensors {
  F* w[4];  // lin{1,2,3}.lin.weight, lin4.weight
  F* b[4];  // lin{1,2,3}.lin.bias, lin4.bias
  F* e[3];  // lin{1,2,3}.embed.weight
};

template <typename F>
Tensors<F> tensors(const ModelConfig& c, F* p) {
  const size_t D = c.dim, H = c.hidden, T = c.T;
  Tensors<F> v{};
  const size_t in[3] = {D, H, H};
  for (int l = 0; l < 3; ++l) {
    v.w[l] = p;
    p += H * in[l];
    v.b[l] = p;
    p += H;
    v.e[l] = p;
    p += T * H;
  }
  v.w[3] = p;
  p += D * H;
  v.b[3] = p;
  return v;
}

}  // namespace

std::vector<TensorInfo> param_layout(const ModelConfig& c) {
  const int64_t D = c.dim, H = c.hidden, T = c.T;
  std::vector<TensorInfo> layout;
  size_t offset = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    size_t size = 1;
    for (int64_t s : shape) size *= static_cast<size_t>(s);
    layout.push_back({std::move(name), std::move(shape), offset, size});
    offset += size;
  };
  const int64_t in[3] = {D, H, H};
  for (int l = 0; l < 3; ++l) {
    const std::string p = "lin" + std::to_string(l + 1) + ".";
    add(p + "lin.weight", {H, in[l]});
    add(p + "lin.bias", {H});
    add(p + "embed.weight", {T, H});
  }
  add("lin4.weight", {D, H});
  add("lin4.bias", {D});
  return layout;
}

size_t param_count(const ModelConfig& c) {
  const size_t D = c.dim, H = c.hidden, T = c.T;
  return (H * D + H + T * H) + 2 * (H * H + H + T * H) + (D * H + D);
}

void validate(const ModelConfig& c) {
  if (c.dim < 1)
    throw UsageError("data dimension: expected at least 1, got " + std::to_string(c.dim));
  if (c.hidden < 1)
    throw UsageError("--hidden: expected at least 1, got " + std::to_string(c.hidden));
  if (c.T < 2) throw UsageError("--steps: expected at least 2, got " + std::to_string(c.T));
}

Model::Model(const ModelConfig& c) : config(c), params(param_count(c), 0.0f) {}

void Model::init(Rng& rng) {
  const auto layout = param_layout(config);
  for (const auto& ti : layout) {
    float* p = params.data() + ti.offset;
    if (ti.name.find("embed") != std::string::npos) {
      rng.fill_uniform(p, ti.size, 0.0f, 1.0f);  // embed.weight.data.uniform_()
    } else {
      // nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in);
      // the bias uses the same bound.
      const int64_t fan_in = ti.name.find("lin4") == 0   ? config.hidden
                             : ti.name.find("lin1") == 0 ? config.dim
                                                         : config.hidden;
      const auto bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
      rng.fill_uniform(p, ti.size, -bound, bound);
    }
  }
}

Workspace::Workspace(const ModelConfig& c, int max_batch_)
    : max_batch(max_batch_),
      a1(c.hidden, max_batch_),
      a2(c.hidden, max_batch_),
      a3(c.hidden, max_batch_),
      z1(c.hidden, max_batch_),
      z2(c.hidden, max_batch_),
      z3(c.hidden, max_batch_),
      h1(c.hidden, max_batch_),
      h2(c.hidden, max_batch_),
      h3(c.hidden, max_batch_),
      dh(c.hidden, max_batch_),
      dz(c.hidden, max_batch_),
      dx(c.dim, max_batch_),
      t(max_batch_, 0) {}

// ---- layer kernels ----

void cond_linear_forward(float* z, float* a, const float* x, const float* W, const float* b,
                         const float* E, const int32_t* t, int B, int in, int out) {
  // x is (in, B); W is (out, in) row-major; b is (out); E is (T, out) row-major; a, z are (out, B)
  ConstColMap xm(x, in, B);
  ConstRowMap Wm(W, out, in);
  ColMap am(a, out, B);
  am.noalias() = Wm * xm;
  ConstVecMap bm(b, out);
  for (int j = 0; j < B; ++j) {
    const float* g = E + static_cast<size_t>(t[j]) * out;  // gamma = E[t_j], contiguous row
    float* aj = a + static_cast<size_t>(j) * out;
    float* zj = z + static_cast<size_t>(j) * out;
    for (int i = 0; i < out; ++i) {
      aj[i] += bm[i];
      zj[i] = aj[i] * g[i];
    }
  }
}

void cond_linear_backward(float* dx, float* dW, float* db, float* dE, float* dz, const float* x,
                          const float* a, const float* W, const float* E, const int32_t* t, int B,
                          int in, int out, int T) {
  // dz, a are (out, B); x, dx are (in, B); W, dW are (out, in) row-major; dE is (T, out) row-major
  VecMap(dE, static_cast<Eigen::Index>(T) * out).setZero();
  for (int j = 0; j < B; ++j) {
    const size_t row = static_cast<size_t>(t[j]) * out;
    const float* g = E + row;
    float* dg = dE + row;
    float* dzj = dz + static_cast<size_t>(j) * out;
    const float* aj = a + static_cast<size_t>(j) * out;
    for (int i = 0; i < out; ++i) {
      dg[i] += dzj[i] * aj[i];  // z = a * gamma: d gamma = dz * a, summed over samples with this t
      dzj[i] *= g[i];           // da = dz * gamma
    }
  }
  linear_backward(dx, dW, db, dz, x, W, B, in, out);
}

void linear_forward(float* y, const float* x, const float* W, const float* b, int B, int in,
                    int out) {
  // x is (in, B); W is (out, in) row-major; b is (out); y is (out, B)
  ColMap ym(y, out, B);
  ym.noalias() = ConstRowMap(W, out, in) * ConstColMap(x, in, B);
  ym.colwise() += ConstVecMap(b, out);
}

void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x,
                     const float* W, int B, int in, int out) {
  // dy is (out, B); x, dx are (in, B); W, dW are (out, in) row-major; db is (out)
  ConstColMap dym(dy, out, B);
  RowMap(dW, out, in).noalias() = dym * ConstColMap(x, in, B).transpose();
  VecMap(db, out) = dym.rowwise().sum();
  if (dx != nullptr) ColMap(dx, in, B).noalias() = ConstRowMap(W, out, in).transpose() * dym;
}

void softplus_forward(float* h, const float* z, size_t n) {
  // log1p(exp(z)) = max(z, 0) + log1p(exp(-|z|)) without overflow; identity above the threshold.
  // Eigen's float log1p is scalar; log1p(u) = log(w) * u / (w - 1) with w = 1 + u (Goldberg 1991,
  // "What every computer scientist should know about floating-point", Thm. 4) vectorizes and is
  // accurate to a few ulp; where w rounds to 1, log1p(u) = u.
  for (size_t i0 = 0; i0 < n; i0 += 1024) {
    const auto len = static_cast<Eigen::Index>(std::min<size_t>(1024, n - i0));
    Eigen::Map<const Eigen::ArrayXf> zb(z + i0, len);
    Eigen::Map<Eigen::ArrayXf> hb(h + i0, len);
    hb = (-zb.abs()).exp();  // u in (0, 1]
    hb = ((hb + 1.0f) == 1.0f).select(hb, (hb + 1.0f).log() * hb / ((hb + 1.0f) - 1.0f));
    hb = (zb > kSoftplusThreshold).select(zb, zb.max(0.0f) + hb);
  }
}

void softplus_backward(float* dz, const float* dh, const float* z, size_t n) {
  Eigen::Map<const Eigen::ArrayXf> zm(z, static_cast<Eigen::Index>(n));
  Eigen::Map<const Eigen::ArrayXf> dhm(dh, static_cast<Eigen::Index>(n));
  Eigen::Map<Eigen::ArrayXf> dzm(dz, static_cast<Eigen::Index>(n));
  dzm = (zm > kSoftplusThreshold).select(dhm, dhm / (1.0f + (-zm).exp()));
}

float mse_forward(const float* y, const float* target, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(y[i]) - target[i];
    sum += d * d;
  }
  return static_cast<float>(sum / static_cast<double>(n));
}

void mse_backward(float* dy, const float* y, const float* target, size_t n) {
  const float scale = 2.0f / static_cast<float>(n);
  for (size_t i = 0; i < n; ++i) dy[i] = scale * (y[i] - target[i]);
}

// ---- the whole network ----

void model_forward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                   int B, Workspace& ws, float* y) {
  // x is (D, B); t is (B); y is (D, B)
  const int D = c.dim, H = c.hidden;
  const auto p = tensors(c, params);
  const size_t n = static_cast<size_t>(H) * B;
  cond_linear_forward(ws.z1.data(), ws.a1.data(), x, p.w[0], p.b[0], p.e[0], t, B, D, H);
  softplus_forward(ws.h1.data(), ws.z1.data(), n);
  cond_linear_forward(ws.z2.data(), ws.a2.data(), ws.h1.data(), p.w[1], p.b[1], p.e[1], t, B, H, H);
  softplus_forward(ws.h2.data(), ws.z2.data(), n);
  cond_linear_forward(ws.z3.data(), ws.a3.data(), ws.h2.data(), p.w[2], p.b[2], p.e[2], t, B, H, H);
  softplus_forward(ws.h3.data(), ws.z3.data(), n);
  linear_forward(y, ws.h3.data(), p.w[3], p.b[3], B, H, D);
}

void model_backward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                    int B, const float* dy, Workspace& ws, float* grads) {
  // dy is (D, B); grads has the flat layout of params; ws.dx gets d loss / d x, (D, B)
  const int D = c.dim, H = c.hidden, T = c.T;
  const auto p = tensors(c, params);
  const auto g = tensors(c, grads);
  const size_t n = static_cast<size_t>(H) * B;
  float* dh = ws.dh.data();
  float* dz = ws.dz.data();
  linear_backward(dh, g.w[3], g.b[3], dy, ws.h3.data(), p.w[3], B, H, D);
  softplus_backward(dz, dh, ws.z3.data(), n);
  cond_linear_backward(dh, g.w[2], g.b[2], g.e[2], dz, ws.h2.data(), ws.a3.data(), p.w[2], p.e[2],
                       t, B, H, H, T);
  softplus_backward(dz, dh, ws.z2.data(), n);
  cond_linear_backward(dh, g.w[1], g.b[1], g.e[1], dz, ws.h1.data(), ws.a2.data(), p.w[1], p.e[1],
                       t, B, H, H, T);
  softplus_backward(dz, dh, ws.z1.data(), n);
  cond_linear_backward(ws.dx.data(), g.w[0], g.b[0], g.e[0], dz, x, ws.a1.data(), p.w[0], p.e[0], t,
                       B, D, H, T);
}

void model_predict(const ModelConfig& c, const float* params, const float* x, int t, int n,
                   Workspace& ws, float* y) {
  // x, y are (D, n); one timestep t for every column
  std::fill(ws.t.begin(), ws.t.end(), t);
  const int D = c.dim;
  for (int j = 0; j < n; j += ws.max_batch) {
    const int B = std::min(ws.max_batch, n - j);
    model_forward(c, params, x + static_cast<size_t>(j) * D, ws.t.data(), B, ws,
                  y + static_cast<size_t>(j) * D);
  }
}

}  // namespace diffuse
