// Tests of class-coloured scatter figures (PlotStyle::classes): the fixed palette, each class's
// points drawn in its colour where they are (read back from the PNG), the legend's room and the
// errors for mismatched classes. Not the unlabelled figures (plot_test.cpp).
#include <cairo.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/plot.h"
#include "test_util.h"

namespace diffuse {
namespace {

// A PNG read back with cairo; pixel(x, y) is 0xRRGGBB.
class Png {
 public:
  explicit Png(const std::string& path) : s_(cairo_image_surface_create_from_png(path.c_str())) {}
  ~Png() { cairo_surface_destroy(s_); }
  Png(const Png&) = delete;
  Png& operator=(const Png&) = delete;
  bool ok() const { return cairo_surface_status(s_) == CAIRO_STATUS_SUCCESS; }
  int width() const { return cairo_image_surface_get_width(s_); }
  int height() const { return cairo_image_surface_get_height(s_); }
  uint32_t pixel(int x, int y) const {
    const unsigned char* d = cairo_image_surface_get_data(s_);
    return reinterpret_cast<const uint32_t*>(d + y * cairo_image_surface_get_stride(s_))[x] &
           0xffffff;
  }

 private:
  cairo_surface_t* s_;
};

uint32_t rgb(ClassColour c) { return uint32_t(c.r) << 16 | uint32_t(c.g) << 8 | c.b; }

TEST(ClassColour, TenDistinctFixedColoursThatCycle) {
  std::set<uint32_t> seen;
  for (int k = 0; k < kClassPaletteSize; ++k) {
    const ClassColour c = class_colour(k);
    seen.insert(rgb(c));
    EXPECT_EQ(rgb(class_colour(k + kClassPaletteSize)), rgb(c)) << k;
    EXPECT_EQ(rgb(class_colour(k + 7 * kClassPaletteSize)), rgb(c)) << k;
    // Every colour is visible on white: no channel triple close to white.
    EXPECT_LT(int(c.r) + c.g + c.b, 3 * 230) << k;
    for (int j = 0; j < k; ++j) {  // distinct: channels at least 100 apart in all (tab10's least)
      const ClassColour d = class_colour(j);
      const int diff = std::abs(c.r - d.r) + std::abs(c.g - d.g) + std::abs(c.b - d.b);
      EXPECT_GE(diff, 100) << j << " vs " << k;
    }
  }
  EXPECT_EQ(seen.size(), size_t(kClassPaletteSize));
  EXPECT_EQ(rgb(class_colour(0)), 0x1f77b4u);  // matplotlib's tab10, in its order
  EXPECT_EQ(rgb(class_colour(1)), 0xff7f0eu);
  EXPECT_EQ(rgb(class_colour(9)), 0x17becfu);
  EXPECT_EQ(rgb(class_colour(-1)), 0x17becfu);
}

TEST(PlotClasses, EachClassIsDrawnInItsColourWhereItsPointsAre) {
  test::TempDir dir;
  const std::string path = dir.file("c.png");
  // Three tight clusters at (-1, -1), (1, 1) and (1, -1): classes 0, 1 and 11 (11 = 1 + 10 shares
  // class 1's colour). Opaque points so the centre pixel is exactly the class colour.
  Points x(90, 2);
  PointClasses pc;
  pc.names.resize(12);
  for (int k = 0; k < 12; ++k) pc.names[size_t(k)] = "c" + std::to_string(k);
  for (int i = 0; i < 90; ++i) {
    const int g = i % 3;
    x(i, 0) = g == 0 ? -1.0f : 1.0f;
    x(i, 1) = g == 1 ? 1.0f : -1.0f;
    pc.of_row.push_back(g == 0 ? 0 : g == 1 ? 1 : 2);
  }
  PlotStyle style;
  style.point_radius = 5;
  style.point_alpha = 1.0;
  style.limits = Limits{-2, 2, -2, 2};
  style.classes = {pc};
  plot_points(path, x, "classes", style);
  const FigureLayout fig = strip_layout({x}, style);
  const Png png(path);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png.width(), fig.width);
  const Viewport& vp = fig.panels[0];
  const auto at = [&](double u, double v) { return png.pixel(int(vp.px(u)), int(vp.py(v))); };
  EXPECT_EQ(at(-1, -1), rgb(class_colour(0)));
  EXPECT_EQ(at(1, 1), rgb(class_colour(1)));
  EXPECT_EQ(at(1, -1), rgb(class_colour(2)));
  EXPECT_EQ(at(-1.5, 1.5), 0xffffffu);  // no points there (and off the grid lines)

  // The legend needs room: the figure is wider than without classes, and its first swatch (right
  // of the panel, in the top entry's row) is class 0's colour.
  PlotStyle plain = style;
  plain.classes.clear();
  const FigureLayout plain_fig = strip_layout({x}, plain);
  EXPECT_GT(fig.width, plain_fig.width + 20);
  const int swatch_x = int(vp.left + vp.width) + 5 + 4;  // kPad, then the swatch radius
  const int swatch_y = int(vp.top + 7.5);
  EXPECT_EQ(png.pixel(swatch_x, swatch_y), rgb(class_colour(0)));
  EXPECT_EQ(png.pixel(swatch_x, swatch_y + 15), rgb(class_colour(1)));
}

TEST(PlotClasses, ClassesMustMatchThePanelsAndPoints) {
  test::TempDir dir;
  Points x(3, 2);
  x << 0, 0, 1, 1, 2, 2;
  PlotStyle style;
  style.classes = {PointClasses{{0, 1}, {"a", "b"}}};
  EXPECT_THROW(plot_points(dir.file("a.png"), x, "t", style), Error);  // 2 classes, 3 points
  style.classes = {PointClasses{{0, 1, 2}, {"a", "b"}}};
  EXPECT_THROW(plot_points(dir.file("a.png"), x, "t", style), Error);  // index 2 of 2 names
  style.classes = {PointClasses{{0, 1, 1}, {"a", "b"}}};
  EXPECT_THROW(plot_strip(dir.file("a.png"), {x, x}, {"1", "2"}, style), Error);  // 1 of 2 panels
  EXPECT_FALSE(test::file_exists(dir.file("a.png")));
  plot_points(dir.file("a.png"), x, "t", style);
  EXPECT_TRUE(test::file_exists(dir.file("a.png")));
}

}  // namespace
}  // namespace diffuse
