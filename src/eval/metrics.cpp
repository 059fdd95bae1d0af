// Sample-quality metrics (sliced Wasserstein-1, unbiased MMD^2, mode coverage) and the reference's
// evaluation protocol, all in double. Not a general statistics library.
#include "diffuse/metrics.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <string>
#include <vector>

#include "diffuse/error.h"

// GCC 12 reports false "may be used uninitialized" warnings inside Eigen's AVX-512 exp (its
// _mm512_undefined_* placeholders) when inlined into the kernel loop.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace diffuse {
namespace {

// Throws Error unless x has at least min_rows rows and only finite values.
void check_points(const Points& x, const char* fn, const char* name, int64_t min_rows) {
  if (x.rows() < min_rows) {
    throw Error(std::string(fn) + ": " + name + " has only " + std::to_string(x.rows()) +
                " point(s); expected at least " + std::to_string(min_rows));
  }
  if (x.cols() < 1) throw Error(std::string(fn) + ": " + name + " has no columns");
  if (x.allFinite()) return;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    for (Eigen::Index d = 0; d < x.cols(); ++d) {
      if (!std::isfinite(x(i, d))) {
        throw Error(std::string(fn) + ": " + name + " has a non-finite value at row " +
                    std::to_string(i) + ", column " + std::to_string(d));
      }
    }
  }
}

void check_same_dim(const Points& a, const Points& b, const char* fn, const char* name_a,
                    const char* name_b) {
  if (a.cols() != b.cols()) {
    throw Error(std::string(fn) + ": " + name_a + ": " + std::to_string(a.cols()) + " columns, " +
                name_b + ": " + std::to_string(b.cols()) +
                " columns; both must have the same dimension");
  }
}

// The first n rows of x (N, D) as a column-major double matrix (n, D): one contiguous array per
// coordinate, which is what the vectorized distance loops read.
Eigen::MatrixXd head_as_double(const Points& x, Eigen::Index n) {
  return x.topRows(n).cast<double>();
}

// Sorts x[0..n) ascending (finite values). An LSD radix sort on the top 33 bits of the
// order-preserving integer image of the doubles (three 11-bit digits, all histograms from one
// read), then each run of keys with equal top bits sorted on the whole key: values that agree to
// their top 21 significand bits are rare, so the runs are short (insertion sort; std::sort for a
// long one). For the projections of swd this is several times faster than std::sort, which
// would dominate swd's time. keys and tmp are caller-owned scratch, reused across calls.
void sort_doubles(double* x, int64_t n, std::vector<uint64_t>& keys, std::vector<uint64_t>& tmp) {
  if (n < 256 || n > int64_t(UINT32_MAX)) {
    std::sort(x, x + n);
    return;
  }
  constexpr int kBits = 11, kPasses = 3, kBuckets = 1 << kBits;
  constexpr int kLow = 64 - kBits * kPasses;  // bits below the radix-sorted ones
  keys.resize(size_t(n));
  tmp.resize(size_t(n));
  std::array<std::array<uint32_t, kBuckets>, kPasses> count{};
  for (int64_t i = 0; i < n; ++i) {
    uint64_t u = std::bit_cast<uint64_t>(x[i]);
    u = (u >> 63) != 0 ? ~u : (u | (uint64_t(1) << 63));  // negatives reversed, below positives
    keys[size_t(i)] = u;
    for (int p = 0; p < kPasses; ++p) ++count[p][(u >> (kLow + kBits * p)) & (kBuckets - 1)];
  }
  uint64_t* src = keys.data();
  uint64_t* dst = tmp.data();
  for (int p = 0; p < kPasses; ++p) {
    uint32_t offset = 0;
    bool one_bucket = false;  // every key has the same digit: the pass would be a copy
    for (uint32_t& c : count[p]) {
      one_bucket = one_bucket || c == uint32_t(n);
      const uint32_t next = offset + c;
      c = offset;
      offset = next;
    }
    if (one_bucket) continue;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t u = src[i];
      dst[count[p][(u >> (kLow + kBits * p)) & (kBuckets - 1)]++] = u;
    }
    std::swap(src, dst);
  }
  for (int64_t i = 0; i < n;) {  // runs of equal top bits, by the whole key
    int64_t j = i + 1;
    while (j < n && (src[j] >> kLow) == (src[i] >> kLow)) ++j;
    if (j - i > 32) {
      std::sort(src + i, src + j);
    } else {
      for (int64_t k = i + 1; k < j; ++k) {
        const uint64_t u = src[k];
        int64_t m = k;
        for (; m > i && src[m - 1] > u; --m) src[m] = src[m - 1];
        src[m] = u;
      }
    }
    i = j;
  }
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t u = src[i];
    x[i] = std::bit_cast<double>((u >> 63) != 0 ? u & ~(uint64_t(1) << 63) : ~u);
  }
}

// Columns per block of the kernel loops: the scratch arrays (3 x 4 KiB) stay in L1.
constexpr Eigen::Index kBlock = 512;
// Below this a kernel term is set to 0 before squaring twice: its 4th power would underflow
// anyway, and clearing it keeps the squarings out of slow subnormal arithmetic.
constexpr double kTiny = 1e-100;

// Sum over pairs of the bandwidth-averaged Gaussian kernel (Gretton et al. 2012, the kernel of the
// unbiased MMD^2 estimate)
//   k(x, y) = 1/5 sum over h in {4, 2, 1, 1/2, 1/4} x med of exp(-|x - y|^2 / (2 h^2)).
// With u = exp(-|x - y|^2 / (2 (4 med)^2)) the five terms are u, u^4, u^16, u^64, u^256: one exp
// and repeated squaring per pair. x is (n, D), y is (m, D); symmetric (x == y): pairs i < j only.
// Rows run in parallel; each row's sum lands in its own slot and the slots are added in order, so
// the result does not depend on the thread count.
double kernel_sum(const Eigen::MatrixXd& x, const Eigen::MatrixXd& y, bool symmetric, double med) {
  const Eigen::Index n = x.rows(), m = y.rows(), dim = x.cols();
  const double c = 1.0 / (2.0 * (4.0 * med) * (4.0 * med));
  std::vector<double> row_sum(n, 0.0);
  namespace ei = Eigen::internal;
  using DPacket = ei::packet_traits<double>::type;
  constexpr Eigen::Index kPacket = ei::packet_traits<double>::size;
  const DPacket tiny = ei::pset1<DPacket>(kTiny), zero = ei::pset1<DPacket>(0.0);
  const double pairs = symmetric ? 0.5 * double(n) * double(n - 1) : double(n) * double(m);
#pragma omp parallel if (pairs > 1e5)
  {
    Eigen::ArrayXd d2(kBlock), k(kBlock);
#pragma omp for schedule(dynamic, 8)
    for (Eigen::Index i = 0; i < n; ++i) {
      double s = 0.0;
      for (Eigen::Index j0 = symmetric ? i + 1 : 0; j0 < m; j0 += kBlock) {
        const Eigen::Index len = std::min(kBlock, m - j0);
        auto dd = d2.head(len);
        dd = (y.col(0).segment(j0, len).array() - x(i, 0)).square();
        for (Eigen::Index d = 1; d < dim; ++d) {
          dd += (y.col(d).segment(j0, len).array() - x(i, d)).square();
        }
        auto kk = k.head(len);
        kk = (dd * -c).exp();
        double* kp = kk.data();
        Eigen::Index j = 0;
        // On packets (as GCC's own vectorization of the scalar loop below, without its mask
        // shuffling): the same operations per element, so the same sums.
        for (; j + kPacket <= len; j += kPacket) {
          DPacket t = ei::ploadu<DPacket>(kp + j);
          t = ei::pselect(ei::pcmp_lt(t, tiny), zero, t);  // u
          DPacket sum = t;
          for (int stage = 0; stage < 4; ++stage) {  // u^4, u^16, u^64, u^256
            t = ei::pmul(t, t);
            t = ei::pmul(t, t);
            t = ei::pselect(ei::pcmp_lt(t, tiny), zero, t);
            sum = ei::padd(sum, t);
          }
          ei::pstoreu(kp + j, sum);
        }
        for (; j < len; ++j) {
          double t = kp[j] < kTiny ? 0.0 : kp[j];
          double sum = t;
          for (int stage = 0; stage < 4; ++stage) {
            t *= t;
            t *= t;
            t = t < kTiny ? 0.0 : t;
            sum += t;
          }
          kp[j] = sum;
        }
        s += kk.sum();
      }
      row_sum[i] = s;
    }
  }
  double total = 0.0;
  for (double s : row_sum) total += s;
  return total / 5.0;
}

}  // namespace

// W1 between 1-D empirical measures as the L1 distance of their quantile functions (Villani 2003,
// ch. 2: in 1-D the optimal plan is the monotone one). Equal sizes: the mean gap of sorted values.
double wasserstein1_sorted(const double* a, int64_t n, const double* b, int64_t m) {
  if (n < 1 || m < 1) throw Error("wasserstein1_sorted: both sets need at least one value");
  if (n == m) {  // the quantile functions share their breakpoints
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += std::abs(a[i] - b[i]);
    return s / double(n);
  }
  // F_a^-1 is a[i] on (i/n, (i+1)/n], F_b^-1 is b[j] on (j/m, (j+1)/m]. On the common scale
  // u * n * m the breakpoints are integers (i+1)*m and (j+1)*n: walk them in merged order.
  double s = 0.0;
  int64_t i = 0, j = 0, prev = 0;
  while (i < n && j < m) {
    const int64_t ea = (i + 1) * m, eb = (j + 1) * n;
    const int64_t next = std::min(ea, eb);
    s += double(next - prev) * std::abs(a[i] - b[j]);
    prev = next;
    if (ea == next) ++i;
    if (eb == next) ++j;
  }
  return s / (double(n) * double(m));
}

double swd_with_directions(const Points& a, const Points& b, const Eigen::MatrixXd& theta) {
  check_points(a, "swd", "a", 1);
  check_points(b, "swd", "b", 1);
  check_same_dim(a, b, "swd", "a", "b");
  if (theta.rows() != a.cols() || theta.cols() < 1) {
    throw Error("swd: theta is (" + std::to_string(theta.rows()) + ", " +
                std::to_string(theta.cols()) + "); expected (" + std::to_string(a.cols()) +
                ", K >= 1), one direction per column");
  }
  const Eigen::MatrixXd ad = head_as_double(a, a.rows());  // (N, D)
  const Eigen::MatrixXd bd = head_as_double(b, b.rows());  // (M, D)
  const Eigen::Index k_dirs = theta.cols();
  std::vector<double> w1(k_dirs);
#pragma omp parallel if (double(a.rows() + b.rows()) * double(k_dirs) > 1e5)
  {
    Eigen::VectorXd pa(ad.rows()), pb(bd.rows());  // projections a.theta_k, b.theta_k
    std::vector<uint64_t> keys, tmp;               // sort scratch
#pragma omp for schedule(static)
    for (Eigen::Index k = 0; k < k_dirs; ++k) {
      pa.noalias() = ad * theta.col(k);
      pb.noalias() = bd * theta.col(k);
      sort_doubles(pa.data(), pa.size(), keys, tmp);
      sort_doubles(pb.data(), pb.size(), keys, tmp);
      w1[k] = wasserstein1_sorted(pa.data(), pa.size(), pb.data(), pb.size());
    }
  }
  double s = 0.0;
  for (double v : w1) s += v;
  return s / double(k_dirs);
}

double swd(const Points& a, const Points& b, Rng& rng, int directions) {
  if (directions < 1) {
    throw UsageError("swd: directions is " + std::to_string(directions) + "; expected >= 1");
  }
  check_same_dim(a, b, "swd", "a", "b");
  if (a.cols() < 1) throw Error("swd: the point sets have no columns");
  // theta ~ N(0, 1) of shape (D, K), filled row by row as torch.randn(D, K) is, then each column
  // normalized to a unit direction.
  Eigen::MatrixXd theta(a.cols(), directions);
  for (Eigen::Index d = 0; d < theta.rows(); ++d) {
    for (Eigen::Index k = 0; k < theta.cols(); ++k) theta(d, k) = rng.normal();
  }
  for (Eigen::Index k = 0; k < theta.cols(); ++k) {
    const double norm = theta.col(k).norm();
    if (norm == 0.0) throw Error("swd: drew a zero direction (the rng is broken)");
    theta.col(k) /= norm;
  }
  return swd_with_directions(a, b, theta);
}

double median_pairwise_distance(const Points& x, int max_points) {
  if (max_points < 2) {
    throw UsageError("median_pairwise_distance: max_points is " + std::to_string(max_points) +
                     "; expected >= 2");
  }
  check_points(x, "median_pairwise_distance", "the reference", 2);
  const Eigen::Index r = std::min<Eigen::Index>(x.rows(), max_points);
  const Eigen::MatrixXd xd = head_as_double(x, r);  // (r, D)
  std::vector<double> dist(size_t(r) * size_t(r - 1) / 2);
  size_t at = 0;
  // Row i against rows i+1..r-1, one coordinate at a time (vectorized over the rows).
  for (Eigen::Index i = 0; i + 1 < r; ++i) {
    const Eigen::Index len = r - i - 1;
    Eigen::Map<Eigen::ArrayXd> d(dist.data() + at, len);
    d = (xd.col(0).tail(len).array() - xd(i, 0)).square();
    for (Eigen::Index c = 1; c < xd.cols(); ++c) {
      d += (xd.col(c).tail(len).array() - xd(i, c)).square();
    }
    d = d.sqrt();
    at += size_t(len);
  }
  // torch.median: the lower middle value for an even count.
  const auto mid = dist.begin() + std::ptrdiff_t((dist.size() - 1) / 2);
  std::nth_element(dist.begin(), mid, dist.end());
  return *mid;
}

namespace {

// mmd with the median distance med of the reference already known (evaluate reuses one).
double mmd_with_median(const Points& a, const Points& b, double med, int max_points) {
  if (max_points < 2) {
    throw UsageError("mmd: max_points is " + std::to_string(max_points) + "; expected >= 2");
  }
  check_points(a, "mmd", "a", 2);
  check_points(b, "mmd", "b", 2);
  check_same_dim(a, b, "mmd", "a", "b");
  if (!(med > 0.0)) {
    throw Error(
        "mmd: the median pairwise distance of the reference is 0 (more than half its pairs"
        " coincide); the kernel bandwidth would be 0");
  }
  const Eigen::MatrixXd ad = head_as_double(a, std::min<Eigen::Index>(a.rows(), max_points));
  const Eigen::MatrixXd bd = head_as_double(b, std::min<Eigen::Index>(b.rows(), max_points));
  const double m = double(ad.rows()), p = double(bd.rows());
  // Off-diagonal sums of K(a, a) and K(b, b) are twice their upper triangles.
  const double kaa = 2.0 * kernel_sum(ad, ad, true, med) / (m * (m - 1.0));
  const double kbb = 2.0 * kernel_sum(bd, bd, true, med) / (p * (p - 1.0));
  const double kab = kernel_sum(ad, bd, false, med) / (m * p);
  return kaa + kbb - 2.0 * kab;
}

}  // namespace

double mmd(const Points& a, const Points& b, const Points& ref, int max_points) {
  check_same_dim(a, ref, "mmd", "a", "ref");
  return mmd_with_median(a, b, median_pairwise_distance(ref, 1000), max_points);
}

Coverage mode_coverage(const Points& samples, const Modes& modes) {
  check_points(samples, "mode_coverage", "the samples", 1);
  Coverage c;
  c.modes = int(modes.centres.rows());
  if (c.modes == 0) return c;
  check_same_dim(samples, modes.centres, "mode_coverage", "the samples", "the mode centres");
  if (!(modes.std >= 0.0) || !std::isfinite(modes.std)) {
    throw Error("mode_coverage: the mode std is " + std::to_string(modes.std) +
                "; expected a finite value >= 0");
  }
  const double r2 = 9.0 * modes.std * modes.std;  // (3 std)^2
  std::vector<char> hit(c.modes, 0);
  int64_t near = 0;
  for (Eigen::Index i = 0; i < samples.rows(); ++i) {
    bool any = false;
    for (int k = 0; k < c.modes; ++k) {
      const double d2 =
          (samples.row(i).cast<double>() - modes.centres.row(k).cast<double>()).squaredNorm();
      if (d2 <= r2) {
        hit[k] = 1;
        any = true;
      }
    }
    near += any ? 1 : 0;
  }
  c.modes_hit = int(std::count(hit.begin(), hit.end(), 1));
  c.mode_share = double(c.modes_hit) / double(c.modes);
  c.sample_share = double(near) / double(samples.rows());
  return c;
}

}  // namespace diffuse
