// Partial SIMD loads and stores for the layer kernels (src/nn/model.cpp, src/nn/resmlp.cpp): the
// last m < kLanes floats of a row, by a masked load or store where the instruction set has one
// (AVX-512), else through an aligned scratch packet. Internal; not installed.
#pragma once

#include <Eigen/Core>
#include <algorithm>

namespace diffuse::packet_io {

namespace ei = Eigen::internal;
using Packet = ei::packet_traits<float>::type;
inline constexpr int kLanes = ei::packet_traits<float>::size;

// m in [1, kLanes] floats from p; lanes past m hold `fill`. Full packets take the plain
// unaligned load.
inline Packet load_n(const float* p, int m, float fill = 0.0f) {
  if (m == kLanes) return ei::ploadu<Packet>(p);
#ifdef EIGEN_VECTORIZE_AVX512
  // (masked-off lanes are not read, so p + m may be the end of an allocation)
  return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << m) - 1), p);
#else
  alignas(64) float t[kLanes];
  for (int i = 0; i < kLanes; ++i) t[i] = i < m ? p[i] : fill;
  return ei::pload<Packet>(t);
#endif
}

// The first m in [1, kLanes] lanes of v to p.
inline void store_n(float* p, const Packet& v, int m) {
  if (m == kLanes) {
    ei::pstoreu(p, v);
    return;
  }
#ifdef EIGEN_VECTORIZE_AVX512
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << m) - 1), v);
#else
  alignas(64) float t[kLanes];
  ei::pstore(t, v);
  std::copy_n(t, m, p);
#endif
}

}  // namespace diffuse::packet_io
