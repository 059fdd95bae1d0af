// Sample-quality metrics, as defined in the peer reference (shared/reference/seed_reference.py):
// sliced Wasserstein-1, unbiased MMD^2 and mode coverage between point sets. The evaluation
// protocol (reference, units, floor) is in evaluate.h. Not a plotting or statistics library.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <optional>

#include "diffuse/dataset.h"
#include "diffuse/rng.h"
#include "diffuse/tensor.h"

namespace diffuse {

// Sliced Wasserstein-1 (Rabin et al. 2011; Bonneel et al. 2015): `directions` random unit
// directions theta (D, K) (normals from rng, each column normalized); for each, the exact W1
// distance between the two projected empirical distributions (for equal sizes, the mean of
// |sorted(a.theta) - sorted(b.theta)|); the mean over directions. Computed in double.
// a is (N, D), b is (M, D); any D >= 1, N and M may differ. Throws Error when the D differ.
double swd(const Points& a, const Points& b, Rng& rng, int directions = 512);

// The same with given directions: theta is (D, K), one direction per column, used as given (not
// normalized here), so results can be compared with another implementation's directions.
double swd_with_directions(const Points& a, const Points& b, const Eigen::MatrixXd& theta);

// Exact 1-D Wasserstein-1 between two empirical distributions with equal weights per point:
// the integral over u in (0, 1) of |F_a^-1(u) - F_b^-1(u)|. Both inputs must be sorted ascending.
double wasserstein1_sorted(const double* a, int64_t n, const double* b, int64_t m);

// Unbiased MMD^2 (Gretton et al. 2012, eq. 3) with a Gaussian kernel averaged over bandwidths
// h in {1/4, 1/2, 1, 2, 4} times the median pairwise distance of ref's first 1,000 points;
// a and b use at most max_points rows each. a is (N, D), b is (M, D), ref is (R, D).
double mmd(const Points& a, const Points& b, const Points& ref, int max_points = 5000);

// The median of the pairwise Euclidean distances (i < j) of x's first max_points rows (x is
// (N, D)); for an even count the lower of the two middle values, as torch.median returns.
double median_pairwise_distance(const Points& x, int max_points = 1000);

// Mode coverage for mixture data: share of modes with at least one sample within 3 std, and share
// of samples within 3 std of some mode.
struct Coverage {
  int modes = 0;
  int modes_hit = 0;
  double mode_share = 0.0;    // modes_hit / modes
  double sample_share = 0.0;  // samples within 3 std of a mode / n
};
// samples is (N, D), modes.centres is (K, D); distances are Euclidean.
Coverage mode_coverage(const Points& samples, const Modes& modes);

// The headline scores of an evaluation (see evaluate.h for the protocol that fills them).
struct EvalResult {
  double swd = 0, swd_floor = 0, swd_ratio = 0;
  double mmd = 0, mmd_floor = 0;
  int64_t n = 0;
  std::optional<Coverage> coverage;
};

}  // namespace diffuse
