// Seeded, portable random numbers (xoshiro256++ seeded by splitmix64, Box-Muller normals).
// Not std::<random>: its distributions differ between standard libraries, and our state must be
// 32 bytes we can save in a checkpoint so that a resumed run is bit-for-bit the same.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace diffuse {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0);

  uint64_t next_u64();
  // Uniform double in [0, 1) with 53 random bits.
  double uniform();
  // Uniform integer in [0, n), n > 0, without modulo bias (Lemire's method).
  uint32_t below(uint32_t n);
  // One standard normal (Box-Muller; the pair's second value is discarded).
  double normal();
  // n standard normals, generated in pairs.
  void fill_normal(float* x, size_t n);
  // fill_normal in two halves, so that threads can share the costly half: the uniforms that
  // fill_normal(x, n) would draw (two per pair of normals: u holds 2 * ((n + 1) / 2) doubles), then
  // box_muller(u, first, last, x) writes normals first..last-1 of those n to x[0, last - first),
  // the values fill_normal gives them.
  void fill_normal_uniforms(double* u, size_t n);
  static void box_muller(const double* u, size_t first, size_t last, float* x);
  // n uniforms in [lo, hi).
  void fill_uniform(float* x, size_t n, float lo, float hi);

  // A generator for sub-stream k, independent of this one and of every other k.
  Rng fork(uint64_t k) const;

  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

// Moves a generator k draws of next_u64 ahead in O(log k) work, without drawing: the state update
// of xoshiro256++ is linear over GF(2), so k steps are one 256 x 256 bit matrix, M^k, built once by
// repeated squaring (~10 ms) and applied to any number of generators (~256 word operations each).
// Lets a long stream be cut into pieces that are drawn in any order (streamed sampling).
class RngJump {
 public:
  explicit RngJump(uint64_t k);
  void apply(Rng& rng) const;

 private:
  std::array<std::array<uint64_t, 4>, 256> columns_{};  // column b: the image of state bit b
};

}  // namespace diffuse
