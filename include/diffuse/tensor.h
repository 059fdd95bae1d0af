// The matrix types shared by every stage, and how data flows between them.
// Points are (N, D) row-major: one point per row, contiguous, so the same memory is a (D, N)
// column-major matrix, which is how the model sees a batch (one sample per column).
#pragma once

#include <Eigen/Core>

namespace diffuse {

using Points = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;  // (N, D)
using ColMatrix = Eigen::MatrixXf;  // (features, samples), column-major

// A (D, N) column-major view of points (N, D), no copy.
inline Eigen::Map<const ColMatrix> as_columns(const Points& x) {
  return {x.data(), x.cols(), x.rows()};
}
inline Eigen::Map<ColMatrix> as_columns(Points& x) { return {x.data(), x.cols(), x.rows()}; }

}  // namespace diffuse
