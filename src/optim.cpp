// Adam (Kingma & Ba 2015) and clip_grad_norm_, arithmetic ordered as PyTorch 1.13's single-tensor
// implementations so that 20 steps agree with torch within 1e-5 (tests/optim_test.cpp).
#include "diffuse/optim.h"

#include <Eigen/Core>
#include <cmath>

namespace diffuse {

Adam::Adam(size_t n, const AdamConfig& c) : config(c), m(n, 0.0f), v(n, 0.0f) {}

void Adam::step(float* params, const float* grads, double lr) {
  ++step_count;
  const auto b1 = static_cast<float>(config.beta1);
  const auto b2 = static_cast<float>(config.beta2);
  const double bias_correction1 = 1.0 - std::pow(config.beta1, static_cast<double>(step_count));
  const double bias_correction2 = 1.0 - std::pow(config.beta2, static_cast<double>(step_count));
  const auto step_size = static_cast<float>(lr / bias_correction1);
  const auto bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const auto eps = static_cast<float>(config.eps);
  // As torch: 1 - beta is formed in double, then rounded (1.0f - 0.999f is 1.3e-5 off 0.001).
  const auto one_minus_b1 = static_cast<float>(1.0 - config.beta1);
  const auto one_minus_b2 = static_cast<float>(1.0 - config.beta2);
  const size_t n = m.size();
  float* __restrict mp = m.data();
  float* __restrict vp = v.data();
  // The same arithmetic on packets (sqrt and division are correctly rounded there too); the plain
  // loop did not vectorize (std::sqrt may set errno).
  namespace ei = Eigen::internal;
  using Packet = ei::packet_traits<float>::type;
  constexpr size_t kLanes = ei::packet_traits<float>::size;
  const Packet pb1 = ei::pset1<Packet>(b1), pb2 = ei::pset1<Packet>(b2);
  const Packet p1b1 = ei::pset1<Packet>(one_minus_b1), p1b2 = ei::pset1<Packet>(one_minus_b2);
  const Packet pbc2 = ei::pset1<Packet>(bc2_sqrt), peps = ei::pset1<Packet>(eps);
  const Packet pstep = ei::pset1<Packet>(step_size);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Packet g = ei::ploadu<Packet>(grads + i);
    const Packet mi = ei::pmadd(ei::ploadu<Packet>(mp + i), pb1, ei::pmul(p1b1, g));
    const Packet vi = ei::pmadd(ei::ploadu<Packet>(vp + i), pb2, ei::pmul(ei::pmul(p1b2, g), g));
    ei::pstoreu(mp + i, mi);
    ei::pstoreu(vp + i, vi);
    const Packet denom = ei::padd(ei::pdiv(ei::psqrt(vi), pbc2), peps);
    ei::pstoreu(params + i,
                ei::psub(ei::ploadu<Packet>(params + i), ei::pmul(pstep, ei::pdiv(mi, denom))));
  }
  for (; i < n; ++i) {
    const float g = grads[i];
    mp[i] = mp[i] * b1 + one_minus_b1 * g;
    vp[i] = vp[i] * b2 + one_minus_b2 * g * g;
    const float denom = std::sqrt(vp[i]) / bc2_sqrt + eps;
    params[i] -= step_size * (mp[i] / denom);
  }
}

float clip_grad_norm(float* grads, const std::vector<TensorInfo>& layout, float max_norm) {
  // torch: total = ||(||g_1||, ..., ||g_k||)||; coef = max_norm / (total + 1e-6), clamped at 1.
  double total_sq = 0.0;
  for (const auto& ti : layout) {
    // 32 partial sums in a fixed order: vectorizes, and is deterministic.
    constexpr size_t kParts = 32;
    double part[kParts] = {};
    const float* g = grads + ti.offset;
    size_t i = 0;
    for (; i + kParts <= ti.size; i += kParts) {
      for (size_t k = 0; k < kParts; ++k) part[k] += static_cast<double>(g[i + k]) * g[i + k];
    }
    for (; i < ti.size; ++i) part[0] += static_cast<double>(g[i]) * g[i];
    double sq = 0.0;
    for (double s : part) sq += s;
    const auto norm = static_cast<float>(std::sqrt(sq));
    total_sq += static_cast<double>(norm) * norm;
  }
  const auto total = static_cast<float>(std::sqrt(total_sq));
  const float coef = max_norm / (total + 1e-6f);
  if (coef < 1.0f) {
    const size_t n = layout.empty() ? 0 : layout.back().offset + layout.back().size;
    for (size_t i = 0; i < n; ++i) grads[i] *= coef;
  }
  return total;
}

}  // namespace diffuse
