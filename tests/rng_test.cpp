// Rng: standard normals in Box-Muller pairs, and the split of fill_normal that lets the threads
// share the Box-Muller transform without changing a value.
#include "diffuse/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace diffuse {
namespace {

TEST(Rng, NormalsInTwoHalvesEqualFillNormalForAnySplit) {
  for (size_t n : {1u, 2u, 7u, 256u, 257u, 1001u}) {
    Rng a(5), b(5);
    std::vector<float> want(n), got(n, NAN);
    a.fill_normal(want.data(), n);
    std::vector<double> u(n + 1);
    b.fill_normal_uniforms(u.data(), n);
    // Cuts at odd and even places: a pair may straddle two threads' ranges.
    const size_t cut1 = n / 3, cut2 = (2 * n) / 3 + 1 > n ? n : (2 * n) / 3 + 1;
    Rng::box_muller(u.data(), cut2, n, got.data() + cut2);
    Rng::box_muller(u.data(), 0, cut1, got.data());
    Rng::box_muller(u.data(), cut1, cut2, got.data() + cut1);
    EXPECT_EQ(want, got) << "n=" << n;
    EXPECT_EQ(a.next_u64(), b.next_u64()) << "both consumed the same stream, n=" << n;
  }
}

TEST(Rng, FillNormalDrawsStandardNormalsInPairs) {
  // Mean 0 and variance 1 over 200,000 draws; and each pair shares the radius of Box-Muller.
  Rng r(0);
  std::vector<float> x(200000);
  r.fill_normal(x.data(), x.size());
  double mean = 0, sq = 0;
  for (float v : x) mean += v, sq += double(v) * v;
  mean /= double(x.size());
  sq /= double(x.size());
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sq, 1.0, 0.01);
  // Pair k is (r cos a, r sin a) of the same radius: x[2k]^2 + x[2k+1]^2 = -2 log u1.
  Rng s(0);
  const double u1 = 1.0 - s.uniform();
  const double r2 = double(x[0]) * x[0] + double(x[1]) * x[1];
  EXPECT_NEAR(r2, -2.0 * std::log(u1), 1e-5 * (1.0 + r2));
}

TEST(RngJump, EqualsDrawingThatManyValues) {
  // The jump is a matrix power of the state update; it must land exactly where k draws land,
  // for k of every bit pattern (0, odd, powers of two, large), from any state.
  for (uint64_t seed : {0ull, 7ull, 123456789ull}) {
    for (uint64_t k : {0ull, 1ull, 2ull, 3ull, 64ull, 255ull, 1000ull, 65536ull, 100003ull}) {
      Rng drawn(seed);
      for (uint64_t i = 0; i < k; ++i) drawn.next_u64();
      Rng jumped(seed);
      RngJump(k).apply(jumped);
      EXPECT_EQ(jumped.state(), drawn.state()) << "seed " << seed << ", k " << k;
      EXPECT_EQ(jumped.next_u64(), drawn.next_u64());
    }
  }
  // One jump object applied twice is two jumps.
  Rng twice(5), drawn(5);
  const RngJump j(777);
  j.apply(twice);
  j.apply(twice);
  for (int i = 0; i < 1554; ++i) drawn.next_u64();
  EXPECT_EQ(twice.state(), drawn.state());
}

}  // namespace
}  // namespace diffuse
