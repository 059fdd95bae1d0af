// Tests of class-coloured figures (PlotStyle::classes, GifOptions::classes): the fixed palette,
// each class's points drawn in its colour where they are (read back from the PNG or the decoded
// GIF), the legend's room and the errors for mismatched classes. Not the unlabelled figures
// (plot_test.cpp).
#include <cairo.h>
#include <gif_lib.h>
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

// The last composited frame of a GIF (0xRRGGBB per pixel, transparent pixels keep what was there)
// and its width.
std::vector<uint32_t> last_gif_frame(const std::string& path, int* width) {
  int err = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &err);
  if (gif == nullptr || DGifSlurp(gif) != GIF_OK) throw Error(path + ": not a readable GIF");
  *width = gif->SWidth;
  std::vector<uint32_t> out(size_t(gif->SWidth) * gif->SHeight, 0);
  for (int i = 0; i < gif->ImageCount; ++i) {
    const SavedImage& im = gif->SavedImages[i];
    GraphicsControlBlock gcb{};
    DGifSavedExtensionToGCB(gif, i, &gcb);
    const ColorMapObject* map = im.ImageDesc.ColorMap ? im.ImageDesc.ColorMap : gif->SColorMap;
    const GifImageDesc& d = im.ImageDesc;
    for (int y = 0; y < d.Height; ++y) {
      for (int x = 0; x < d.Width; ++x) {
        const int idx = im.RasterBits[size_t(y) * d.Width + x];
        if (idx == gcb.TransparentColor) continue;
        const GifColorType c = map->Colors[idx];
        out[size_t(d.Top + y) * gif->SWidth + d.Left + x] =
            (uint32_t(c.Red) << 16) | (uint32_t(c.Green) << 8) | c.Blue;
      }
    }
  }
  DGifCloseFile(gif, &err);
  return out;
}

TEST(AnimateClasses, EachClassMovesInItsColourWithALegend) {
  test::TempDir dir;
  // Two classes of 40 points: class 0 travels from (-1.5, -1.5) to (-1.5, 0.5), class 1 stays at
  // (1.5, -0.5) (off the grid lines, which are at whole numbers).
  const std::vector<int32_t> of_row = [] {
    std::vector<int32_t> v;
    for (int i = 0; i < 40; ++i) v.push_back(i % 2);
    return v;
  }();
  std::vector<Points> frames;
  for (int f = 0; f < 3; ++f) {
    Points x(40, 2);
    for (int i = 0; i < 40; ++i) {
      x(i, 0) = of_row[size_t(i)] == 0 ? -1.5f : 1.5f;
      x(i, 1) = of_row[size_t(i)] == 0 ? -1.5f + float(f) : -0.5f;
    }
    frames.push_back(x);
  }
  GifOptions o;
  o.limits = Limits{-2, 2, -2, 2};
  o.point_radius = 5;
  o.point_alpha = 1.0;
  o.classes = PointClasses{of_row, {"walker", "sitter"}};
  const std::string path = dir.file("a.gif");
  animate_gif(path, frames, {"t=2", "t=1", "t=0"}, o);
  int width = 0;
  const std::vector<uint32_t> last = last_gif_frame(path, &width);
  const FigureLayout fig = animation_layout(frames, o);
  EXPECT_EQ(width, fig.width);
  EXPECT_GT(width, 360 + 30);  // the legend's room
  const Viewport& vp = fig.panels[0];
  const auto at = [&](double u, double v) {
    return last[size_t(vp.py(v)) * width + size_t(vp.px(u))];
  };
  EXPECT_EQ(at(-1.5, 0.5), rgb(class_colour(0)));                      // where class 0 ended
  EXPECT_EQ(at(1.5, -0.5), rgb(class_colour(1)));                      // class 1 never moved
  EXPECT_EQ(at(-1.5, -1.5), 0xffffffu) << std::hex << at(-1.5, -1.5);  // class 0 left its start
  const int swatch_x = 360 - 14 + 5 + 4, swatch_y = int(vp.top + 7.5);
  EXPECT_EQ(last[size_t(swatch_y) * width + swatch_x], rgb(class_colour(0)));
  EXPECT_EQ(last[size_t(swatch_y + 15) * width + swatch_x], rgb(class_colour(1)));
  // Without classes the GIF is the square it always was.
  GifOptions plain = o;
  plain.classes = {};
  EXPECT_EQ(animation_layout(frames, plain).width, 360);
  // Classes that do not match the rows are refused, and nothing is written.
  o.classes.of_row.pop_back();
  EXPECT_THROW(animate_gif(dir.file("b.gif"), frames, {"1", "2", "3"}, o), Error);
  EXPECT_FALSE(test::file_exists(dir.file("b.gif")));
}

}  // namespace
}  // namespace diffuse
