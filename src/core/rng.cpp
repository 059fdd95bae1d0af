// xoshiro256++ (Blackman & Vigna 2019) seeded through splitmix64, with Box-Muller normals.
// Not cryptographic; chosen for speed, a 32-byte saveable state and identical streams everywhere.
#include "diffuse/rng.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace diffuse {
namespace {

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(uint64_t seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = splitmix64(x);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

uint32_t Rng::below(uint32_t n) {
  // Lemire, "Fast random integer generation in an interval" (2019).
  uint64_t m = (next_u64() >> 32) * n;
  auto low = static_cast<uint32_t>(m);
  if (low < n) {
    const uint32_t threshold = static_cast<uint32_t>(-n) % n;
    while (low < threshold) {
      m = (next_u64() >> 32) * n;
      low = static_cast<uint32_t>(m);
    }
  }
  return static_cast<uint32_t>(m >> 32);
}

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

void Rng::fill_normal(float* x, size_t n) {
  // In blocks, through the same two halves as the threads use, so both give the same values.
  constexpr size_t kBlock = 256;  // normals per block (even: blocks start on a pair)
  double u[kBlock];
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = std::min(kBlock, n - i);
    fill_normal_uniforms(u, m);
    box_muller(u, 0, m, x + i);
  }
}

void Rng::fill_normal_uniforms(double* u, size_t n) {
  for (size_t k = 0; k < (n + 1) / 2; ++k) {
    u[2 * k] = 1.0 - uniform();  // (0, 1]: log is finite
    u[2 * k + 1] = uniform();
  }
}

void Rng::box_muller(const double* u, size_t first, size_t last, float* x) {
  // Normal i is the cosine (i even) or sine (i odd) half of pair i / 2.
  for (size_t i = first; i < last;) {
    const size_t k = i / 2;
    const double r = std::sqrt(-2.0 * std::log(u[2 * k]));
    const double a = 2.0 * std::numbers::pi * u[2 * k + 1];
    const double z[2] = {r * std::cos(a), r * std::sin(a)};  // one sincos
    for (size_t h = i % 2; h < 2 && i < last; ++h, ++i) x[i - first] = static_cast<float>(z[h]);
  }
}

void Rng::fill_uniform(float* x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; ++i) {
    // 24 random bits: every value is exactly representable and below hi - lo.
    const float u = static_cast<float>(next_u64() >> 40) * 0x1.0p-24f;
    x[i] = lo + (hi - lo) * u;
  }
}

Rng Rng::fork(uint64_t k) const {
  uint64_t x = s_[0] ^ rotl(s_[1], 13) ^ rotl(s_[2], 29) ^ rotl(s_[3], 47);
  x ^= 0xd1b54a32d192ed03ULL * (k + 1);
  return Rng(splitmix64(x));
}

namespace {

using State = std::array<uint64_t, 4>;
using Matrix = std::array<State, 256>;

State apply_matrix(const Matrix& m, const State& v) {
  State out{};
  for (int b = 0; b < 256; ++b) {
    if ((v[b / 64] >> (b % 64)) & 1) {
      for (int w = 0; w < 4; ++w) out[w] ^= m[b][w];
    }
  }
  return out;
}

// c = a * b (first b, then a): column j of c is a applied to column j of b.
Matrix multiply(const Matrix& a, const Matrix& b) {
  Matrix c;
  for (int j = 0; j < 256; ++j) c[j] = apply_matrix(a, b[j]);
  return c;
}

}  // namespace

RngJump::RngJump(uint64_t k) {
  Matrix step;  // one next_u64 as a matrix: column b is the successor of the state with bit b set
  for (int b = 0; b < 256; ++b) {
    State e{};
    e[b / 64] = uint64_t{1} << (b % 64);
    Rng r;
    r.set_state(e);
    r.next_u64();
    step[b] = r.state();
  }
  Matrix power{};  // identity
  for (int b = 0; b < 256; ++b) power[b][b / 64] = uint64_t{1} << (b % 64);
  for (; k != 0; k >>= 1) {
    if (k & 1) power = multiply(step, power);
    if (k > 1) step = multiply(step, step);
  }
  columns_ = power;
}

void RngJump::apply(Rng& rng) const { rng.set_state(apply_matrix(columns_, rng.state())); }

}  // namespace diffuse
