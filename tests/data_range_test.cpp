// Tests for the data's range (fit, model units, output clipping and rounding) and the x0 clamp
// itself (clip and dynamic thresholding) on hand-made predictions. The samplers' use of the clamp
// is tested in sampler_test.cpp.
#include "diffuse/data_range.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "diffuse/error.h"

namespace diffuse {
namespace {

Points rows(std::initializer_list<std::initializer_list<float>> r) {
  Points x(static_cast<Eigen::Index>(r.size()), static_cast<Eigen::Index>(r.begin()->size()));
  Eigen::Index i = 0;
  for (const auto& row : r) {
    Eigen::Index j = 0;
    for (float v : row) x(i, j++) = v;
    ++i;
  }
  return x;
}

TEST(DataRange, FitsMinMaxAndIntegerColumns) {
  const Points x = rows({{1, 0.5f, -3}, {4, 2, 16}, {2, -1, 0}});
  const DataRange r = fit_data_range(x);
  EXPECT_EQ(r.min, (std::vector<double>{1, -1, -3}));
  EXPECT_EQ(r.max, (std::vector<double>{4, 2, 16}));
  EXPECT_EQ(r.integer, (std::vector<bool>{true, false, true}));
  EXPECT_THROW(fit_data_range(Points(0, 2)), Error);
  Points bad = x;
  bad(1, 1) = std::nanf("");
  EXPECT_THROW(fit_data_range(bad), Error);
}

TEST(DataRange, ModelUnitsFollowTheNormalization) {
  DataRange r;
  r.min = {0, 10};
  r.max = {16, 30};
  r.integer = {true, false};
  Normalization norm;
  norm.mean = {8, 20};
  norm.std = {4, 5};
  const X0Range m = x0_range(r, norm);
  EXPECT_EQ(m.lo, (std::vector<float>{-2, -2}));
  EXPECT_EQ(m.hi, (std::vector<float>{2, 2}));
  const X0Range id = x0_range(r, Normalization{});
  EXPECT_EQ(id.lo, (std::vector<float>{0, 10}));
  EXPECT_TRUE(x0_range(DataRange{}, norm).empty());
  norm.mean.pop_back();
  norm.std.pop_back();
  EXPECT_THROW(x0_range(r, norm), Error);
}

TEST(X0ClampStep, NamesRoundTrip) {
  for (X0Clamp k : {X0Clamp::kOff, X0Clamp::kClip, X0Clamp::kThreshold}) {
    EXPECT_EQ(x0_clamp_from_string(to_string(k)), k);
  }
  EXPECT_FALSE(x0_clamp_from_string("clamp").has_value());
}

// (D, n) = (2, 3) column-major: sample i is x0[2i], x0[2i+1].
TEST(X0ClampStep, ClipMovesOnlyWhatIsOutside) {
  const X0Range r = {{-1, 0}, {1, 2}};
  std::vector<float> x0 = {0.5f, 3.0f, -4.0f, 1.0f, 1.0f, -0.5f};
  std::vector<float> scratch(2);
  EXPECT_EQ(clamp_x0(X0Clamp::kClip, r, x0.data(), 3, scratch.data()), 3u);
  EXPECT_EQ(x0, (std::vector<float>{0.5f, 2.0f, -1.0f, 1.0f, 1.0f, 0.0f}));
  std::vector<float> y = {5, 5};
  EXPECT_EQ(clamp_x0(X0Clamp::kOff, r, y.data(), 1, scratch.data()), 0u);
  EXPECT_EQ(clamp_x0(X0Clamp::kClip, X0Range{}, y.data(), 1, scratch.data()), 0u);
  EXPECT_EQ(y, (std::vector<float>{5, 5}));
}

// Imagen's dynamic thresholding in each column's [-1, 1] coordinates: s = the 99.5% quantile of
// |u| over the sample's D coordinates (linear interpolation); s > 1 divides the whole sample by s
// after clipping to [-s, s]; s <= 1 leaves what is inside alone.
TEST(X0ClampStep, ThresholdScalesTheWholeSampleBySItsQuantile) {
  const int D = 5;
  const X0Range r = {std::vector<float>(D, -1.0f), std::vector<float>(D, 1.0f)};
  std::vector<float> scratch(D);
  // |u| sorted: 0.1, 0.2, 0.3, 2, 4; the quantile at 0.995 * 4 = 3.98: 2 + 0.98 (4 - 2) = 3.96.
  std::vector<float> x0 = {0.2f, -4.0f, 0.1f, 2.0f, -0.3f};
  EXPECT_EQ(clamp_x0(X0Clamp::kThreshold, r, x0.data(), 1, scratch.data()), 5u);
  const float s = 3.96f;
  const std::vector<float> want = {0.2f / s, -1.0f, 0.1f / s, 2.0f / s, -0.3f / s};
  for (int d = 0; d < D; ++d) EXPECT_NEAR(x0[d], want[d], 1e-6f) << d;
  // Inside the range: nothing moves.
  std::vector<float> in = {0.2f, -0.9f, 0.1f, 1.0f, -0.3f};
  const std::vector<float> in0 = in;
  EXPECT_EQ(clamp_x0(X0Clamp::kThreshold, r, in.data(), 1, scratch.data()), 0u);
  EXPECT_EQ(in, in0);
  // A shifted, scaled column range maps through its centre and half-width: [10, 14] has centre 12,
  // half-width 2; D = 1, so s = |u| = (20 - 12) / 2 = 4 and the value goes to 12 + 2 * 4 / 4 = 14.
  const X0Range r1 = {{10.0f}, {14.0f}};
  float v = 20.0f;
  EXPECT_EQ(clamp_x0(X0Clamp::kThreshold, r1, &v, 1, scratch.data()), 1u);
  EXPECT_FLOAT_EQ(v, 14.0f);
}

TEST(DataRange, OutputClippingAndIntegerRounding) {
  DataRange r;
  r.min = {0, -1};
  r.max = {16, 1};
  r.integer = {true, false};
  Points x = rows({{-0.0001f, 1.2f}, {7.4f, 0.26f}, {16.5f, -3}});
  clip_to_range(r, x);
  EXPECT_EQ(x, rows({{0, 1}, {7.4f, 0.26f}, {16, -1}}));
  round_integer_columns(r, x);
  EXPECT_EQ(x, rows({{0, 1}, {7, 0.26f}, {16, -1}}));
  Points untouched = x;
  clip_to_range(DataRange{}, untouched);
  round_integer_columns(DataRange{}, untouched);
  EXPECT_EQ(untouched, x);
  Points wide(1, 3);
  EXPECT_THROW(clip_to_range(r, wide), Error);
}

}  // namespace
}  // namespace diffuse
