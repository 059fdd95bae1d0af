// Sample-quality metrics, as defined in the peer reference (shared/reference/seed_reference.py):
// sliced Wasserstein-1 and unbiased MMD^2, each against fresh draws of the data, with the noise
// floor measured between fresh draws themselves. Not a plotting or statistics library.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "diffuse/dataset.h"
#include "diffuse/rng.h"
#include "diffuse/tensor.h"

namespace diffuse {

// Sliced Wasserstein-1: `directions` random unit directions (normal, normalized); for each, the
// exact W1 distance between the two projected empirical distributions (for equal sizes, the mean
// of |sorted(a.theta) - sorted(b.theta)|); the mean over directions. Computed in double.
double swd(const Points& a, const Points& b, Rng& rng, int directions = 512);

// Unbiased MMD^2 with a Gaussian kernel averaged over bandwidths {1/4, 1/2, 1, 2, 4} times the
// median pairwise distance of ref's first 1,000 points; a and b use at most max_points rows each.
double mmd(const Points& a, const Points& b, const Points& ref, int max_points = 5000);

// Mode coverage for mixture data: share of modes with at least one sample within 3 std, and share
// of samples within 3 std of some mode.
struct Coverage {
  int modes = 0;
  int modes_hit = 0;
  double mode_share = 0.0;    // modes_hit / modes
  double sample_share = 0.0;  // samples within 3 std of a mode / n
};
Coverage mode_coverage(const Points& samples, const Modes& modes);

struct EvalResult {
  double swd = 0, swd_floor = 0, swd_ratio = 0;
  double mmd = 0, mmd_floor = 0;
  int64_t n = 0;
  std::optional<Coverage> coverage;
};

// A source of fresh reference draws: a built-in shape (new points each call) or the halves of a
// data file (each call a new random half).
using DrawFn = std::function<Points(Rng& rng)>;

// Each metric is the mean over 5 fresh draws; each floor the mean over 5 pairs of fresh draws.
// Deterministic for a seed. Coverage is filled when modes is given and not empty.
EvalResult evaluate(const Points& samples, const DrawFn& fresh, uint64_t seed,
                    const Modes* modes = nullptr);

// Fresh draws for a reference: a shape (n points each) or a file's points (random halves).
DrawFn shape_draws(Shape s, int n, double noise);
DrawFn halves_draws(const Points& data);

}  // namespace diffuse
