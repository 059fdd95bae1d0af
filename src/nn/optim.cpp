// Adam (Kingma & Ba 2015) and clip_grad_norm_, arithmetic ordered as PyTorch 1.13's single-tensor
// implementations so that 20 steps agree with torch within 1e-5 (tests/optim_test.cpp).
#include "diffuse/optim.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

namespace diffuse {

Adam::Adam(size_t n, const AdamConfig& c) : config(c), m(n, 0.0f), v(n, 0.0f) {}

Adam::StepScalars Adam::begin_step(double lr) {
  ++step_count;
  const double bias_correction1 = 1.0 - std::pow(config.beta1, static_cast<double>(step_count));
  const double bias_correction2 = 1.0 - std::pow(config.beta2, static_cast<double>(step_count));
  StepScalars s{};
  s.b1 = static_cast<float>(config.beta1);
  s.b2 = static_cast<float>(config.beta2);
  // As torch: 1 - beta is formed in double, then rounded (1.0f - 0.999f is 1.3e-5 off 0.001).
  s.one_minus_b1 = static_cast<float>(1.0 - config.beta1);
  s.one_minus_b2 = static_cast<float>(1.0 - config.beta2);
  s.step_size = static_cast<float>(lr / bias_correction1);
  s.bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  s.eps = static_cast<float>(config.eps);
  return s;
}

void Adam::update(const StepScalars& s, float* params, const float* grads, size_t lo, size_t hi,
                  float grad_scale, float* ema, float ema_decay) {
  // On packets (sqrt and division are correctly rounded there too): the plain loop does not
  // vectorize, as std::sqrt may set errno. The last partial packet goes through a zero-padded copy,
  // so every element gets the same operations wherever a range starts or ends. Clipping and the
  // EMA ride along in the same pass over the parameters (g * 1 is g: no clipping is exact).
  namespace ei = Eigen::internal;
  using Packet = ei::packet_traits<float>::type;
  constexpr size_t kLanes = ei::packet_traits<float>::size;
  const Packet pb1 = ei::pset1<Packet>(s.b1), pb2 = ei::pset1<Packet>(s.b2);
  const Packet p1b1 = ei::pset1<Packet>(s.one_minus_b1), p1b2 = ei::pset1<Packet>(s.one_minus_b2);
  const Packet pbc2 = ei::pset1<Packet>(s.bc2_sqrt), peps = ei::pset1<Packet>(s.eps);
  const Packet pstep = ei::pset1<Packet>(s.step_size), pscale = ei::pset1<Packet>(grad_scale);
  const Packet pd = ei::pset1<Packet>(ema_decay), p1d = ei::pset1<Packet>(1.0f - ema_decay);
  auto packet = [&](float* p, const float* g, float* mp, float* vp, float* ep) {
    const Packet gv = ei::pmul(ei::ploadu<Packet>(g), pscale);
    const Packet mi = ei::pmadd(ei::ploadu<Packet>(mp), pb1, ei::pmul(p1b1, gv));
    const Packet vi = ei::pmadd(ei::ploadu<Packet>(vp), pb2, ei::pmul(ei::pmul(p1b2, gv), gv));
    ei::pstoreu(mp, mi);
    ei::pstoreu(vp, vi);
    const Packet denom = ei::padd(ei::pdiv(ei::psqrt(vi), pbc2), peps);
    const Packet pv = ei::psub(ei::ploadu<Packet>(p), ei::pmul(pstep, ei::pdiv(mi, denom)));
    ei::pstoreu(p, pv);
    // ema = decay ema + (1 - decay) p, with one rounding for the first product and the sum.
    if (ep != nullptr) ei::pstoreu(ep, ei::pmadd(ei::ploadu<Packet>(ep), pd, ei::pmul(p1d, pv)));
  };
  size_t i = lo;
  for (; i + kLanes <= hi; i += kLanes) {
    packet(params + i, grads + i, m.data() + i, v.data() + i, ema != nullptr ? ema + i : nullptr);
  }
  if (i < hi) {
    const size_t r = hi - i;
    alignas(64) float tp[kLanes] = {}, tg[kLanes] = {}, tm[kLanes] = {}, tv[kLanes] = {},
                      te[kLanes] = {};
    std::copy_n(params + i, r, tp);
    std::copy_n(grads + i, r, tg);
    std::copy_n(m.data() + i, r, tm);
    std::copy_n(v.data() + i, r, tv);
    if (ema != nullptr) std::copy_n(ema + i, r, te);
    packet(tp, tg, tm, tv, ema != nullptr ? te : nullptr);
    std::copy_n(tp, r, params + i);
    std::copy_n(tm, r, m.data() + i);
    std::copy_n(tv, r, v.data() + i);
    if (ema != nullptr) std::copy_n(te, r, ema + i);
  }
}

void Adam::step(float* params, const float* grads, double lr) {
  update(begin_step(lr), params, grads, 0, m.size());
}

namespace {

// Sum of squares of n floats in double: 64 partial sums in a fixed order (vectorizes into 8
// independent chains of 8 doubles, and is deterministic).
double sum_of_squares(const float* g, size_t n) {
  constexpr size_t kParts = 64;
  double part[kParts] = {};
  size_t i = 0;
  for (; i + kParts <= n; i += kParts) {
    for (size_t k = 0; k < kParts; ++k) part[k] += static_cast<double>(g[i + k]) * g[i + k];
  }
  for (; i < n; ++i) part[0] += static_cast<double>(g[i]) * g[i];
  double sq = 0.0;
  for (double p : part) sq += p;
  return sq;
}

}  // namespace

void add_squares(const float* grads, const std::vector<TensorInfo>& layout, size_t lo, size_t hi,
                 double* sq) {
  for (size_t k = 0; k < layout.size(); ++k) {
    const size_t a = std::max(lo, layout[k].offset);
    const size_t b = std::min(hi, layout[k].offset + layout[k].size);
    if (a < b) sq[k] += sum_of_squares(grads + a, b - a);
  }
}

float norm_from_squares(const double* sq, size_t tensors) {
  // torch: total = ||(||g_1||, ..., ||g_k||)||, each tensor's norm rounded to float.
  double total_sq = 0.0;
  for (size_t k = 0; k < tensors; ++k) {
    const auto norm = static_cast<float>(std::sqrt(sq[k]));
    total_sq += static_cast<double>(norm) * norm;
  }
  return static_cast<float>(std::sqrt(total_sq));
}

float grad_norm(const float* grads, const std::vector<TensorInfo>& layout) {
  double sq[64];  // one per tensor (the model has 11)
  std::vector<double> heap;
  double* s = sq;
  if (layout.size() > 64) {
    heap.assign(layout.size(), 0.0);
    s = heap.data();
  } else {
    std::fill(sq, sq + layout.size(), 0.0);
  }
  for (size_t k = 0; k < layout.size(); ++k) {
    s[k] = sum_of_squares(grads + layout[k].offset, layout[k].size);
  }
  return norm_from_squares(s, layout.size());
}

float clip_coefficient(float norm, float max_norm) {
  // torch: coef = max_norm / (total + 1e-6), clamped at 1.
  return std::min(1.0f, max_norm / (norm + 1e-6f));
}

float clip_grad_norm(float* grads, const std::vector<TensorInfo>& layout, float max_norm) {
  const float total = grad_norm(grads, layout);
  const float coef = clip_coefficient(total, max_norm);
  if (coef < 1.0f) {
    const size_t n = layout.empty() ? 0 : layout.back().offset + layout.back().size;
    for (size_t i = 0; i < n; ++i) grads[i] *= coef;
  }
  return total;
}

}  // namespace diffuse
