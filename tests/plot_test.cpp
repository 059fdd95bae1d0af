// Tests for the figures and animations: coordinate transform, ticks, PNG/SVG/GIF output read back
// with cairo and giflib, and clear errors for bad input. Not a visual regression suite.
#include "diffuse/plot.h"

#include <cairo/cairo.h>  // the library links cairo privately: no include path here
#include <gif_lib.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "test_util.h"
#include "viz/plot_canvas.h"

namespace diffuse {
namespace {

using test::TempDir;

// n points N(centre, std^2 I) in 2-D, seeded.
Points cluster(int n, double cx, double cy, double std, unsigned seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  Points x(n, 2);
  for (int i = 0; i < n; ++i) {
    x(i, 0) = static_cast<float>(cx + std * nd(g));
    x(i, 1) = static_cast<float>(cy + std * nd(g));
  }
  return x;
}

// A linear schedule built by hand (independent of make_schedule).
Schedule hand_schedule(int T, double b0, double b1) {
  Schedule s;
  double ab = 1.0;
  for (int t = 0; t < T; ++t) {
    const double b = b0 + (b1 - b0) * t / (T - 1);
    ab *= 1.0 - b;
    s.beta.push_back(b);
    s.alpha.push_back(1.0 - b);
    s.alpha_bar.push_back(ab);
    s.sqrt_alpha_bar.push_back(std::sqrt(ab));
    s.sqrt_one_minus_alpha_bar.push_back(std::sqrt(1.0 - ab));
  }
  return s;
}

// A PNG read back with cairo; pixel(x, y) is 0xRRGGBB.
class Png {
 public:
  explicit Png(const std::string& path) : s_(cairo_image_surface_create_from_png(path.c_str())) {}
  ~Png() { cairo_surface_destroy(s_); }
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

int red(uint32_t p) { return (p >> 16) & 0xff; }
int green(uint32_t p) { return (p >> 8) & 0xff; }
int blue(uint32_t p) { return p & 0xff; }

bool bluish(uint32_t p) { return blue(p) > red(p) + 20; }  // a point, not white or the grey grid

// Bluish pixels within r pixels of (cx, cy); pixel(x, y) gives 0xRRGGBB.
template <class PixelFn>
int bluish_near(const PixelFn& pixel, double cx, double cy, int r) {
  int n = 0;
  for (int y = int(cy) - r; y <= int(cy) + r; ++y) {
    for (int x = int(cx) - r; x <= int(cx) + r; ++x) n += bluish(pixel(x, y));
  }
  return n;
}

// Counts non-overlapping occurrences of needle.
int count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// A structural XML check: every start tag is closed by the matching end tag, in order, and there
// is exactly one root element. Returns "" when well formed, else what is wrong.
std::string xml_problem(const std::string& x) {
  std::vector<std::string> open;
  int roots = 0;
  size_t p = 0;
  while ((p = x.find('<', p)) != std::string::npos) {
    if (x.compare(p, 4, "<!--") == 0) {
      p = x.find("-->", p);
      if (p == std::string::npos) return "unterminated comment";
      continue;
    }
    const size_t end = x.find('>', p);
    if (end == std::string::npos) return "unterminated tag at byte " + std::to_string(p);
    const std::string tag = x.substr(p + 1, end - p - 1);
    p = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) return "unexpected </" + name + ">";
      open.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" \t\n/"));
    if (open.empty()) ++roots;
    if (tag.back() != '/') open.push_back(name);
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

// The only files in a folder, so that tests can see no temporary file was left behind.
std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  return names;
}

TEST(Viewport, MapsDataCornersAndCentreToPixelsWithYUp) {
  const Viewport vp{10, 20, 200, 100, Limits{-1.0, 1.0, 0.0, 5.0}};
  EXPECT_DOUBLE_EQ(vp.px(-1.0), 10.0);
  EXPECT_DOUBLE_EQ(vp.px(1.0), 210.0);
  EXPECT_DOUBLE_EQ(vp.px(0.0), 110.0);
  EXPECT_DOUBLE_EQ(vp.py(5.0), 20.0);  // top edge is y_max
  EXPECT_DOUBLE_EQ(vp.py(0.0), 120.0);
  EXPECT_DOUBLE_EQ(vp.py(2.5), 70.0);
  EXPECT_DOUBLE_EQ(vp.py(1.0), 100.0);  // larger y is higher up: smaller pixel row
}

TEST(PointLimits, AreSquarePaddedAndCoverAllSets) {
  Points a(2, 2), b(1, 3);
  a << 0, 0, 4, 1;
  b << 1, 2, 99;  // third column ignored
  const Limits l = point_limits({a, b}, 0.05);
  // x spans [0, 4], y spans [0, 2]: both get half-span 2 * 1.1 around the centres 2 and 1.
  EXPECT_NEAR(l.x_min, -0.2, 1e-12);
  EXPECT_NEAR(l.x_max, 4.2, 1e-12);
  EXPECT_NEAR(l.y_min, -1.2, 1e-12);
  EXPECT_NEAR(l.y_max, 3.2, 1e-12);
}

TEST(PointLimits, RejectNonFiniteAndEmpty) {
  Points a(2, 2);
  a << 0, 0, NAN, 1;
  EXPECT_THROW(point_limits({a}), Error);
  EXPECT_THROW(point_limits({Points(0, 2)}), Error);
  Points one(3, 2);
  one.setConstant(2.0f);  // a single location still gets a non-empty square
  const Limits l = point_limits({one});
  EXPECT_LT(l.x_min, 2.0);
  EXPECT_GT(l.x_max, 2.0);
  EXPECT_DOUBLE_EQ(l.x_max - l.x_min, l.y_max - l.y_min);
}

TEST(NiceTicks, AreOneTwoFiveTimesAPowerOfTen) {
  EXPECT_EQ(nice_ticks(0.0, 100.0, 5), (std::vector<double>{0, 20, 40, 60, 80, 100}));
  const auto t = nice_ticks(-1.23, 1.57, 5);
  ASSERT_EQ(t.size(), 6u);
  EXPECT_DOUBLE_EQ(t.front(), -1.0);
  EXPECT_DOUBLE_EQ(t[2], 0.0);
  EXPECT_DOUBLE_EQ(t.back(), 1.5);
  const auto small = nice_ticks(0.0, 0.021, 5);
  ASSERT_EQ(small.size(), 5u);
  EXPECT_NEAR(small[1], 0.005, 1e-15);
  EXPECT_NEAR(small.back(), 0.02, 1e-15);
  for (double lo : {-7.3, 0.001, 123.0}) {
    const auto ticks = nice_ticks(lo, lo * 1.5 + 10, 4);
    ASSERT_GE(ticks.size(), 2u);
    const double step = ticks[1] - ticks[0];
    const double m = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    EXPECT_TRUE(std::abs(m - 1) < 1e-9 || std::abs(m - 2) < 1e-9 || std::abs(m - 5) < 1e-9)
        << "step " << step;
    EXPECT_GE(ticks.front(), lo - 1e-9);
  }
}

TEST(StripSteps, RunFromZeroToTheLastStepAndSpreadIndicesIncludeBothEnds) {
  EXPECT_EQ(strip_steps(100, 10), (std::vector<int>{0, 11, 22, 33, 44, 55, 66, 77, 88, 99}));
  EXPECT_EQ(strip_steps(50, 5), (std::vector<int>{0, 12, 24, 36, 49}));
  EXPECT_EQ(strip_steps(100, 1), (std::vector<int>{0}));
  const auto idx = spread_indices(101, 10);
  ASSERT_EQ(idx.size(), 10u);
  EXPECT_EQ(idx.front(), 0);
  EXPECT_EQ(idx.back(), 100);
  for (size_t i = 1; i < idx.size(); ++i) EXPECT_GT(idx[i], idx[i - 1]);
  EXPECT_EQ(spread_indices(4, 10), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(spread_indices(7, 1), (std::vector<int>{6}));
}

TEST(ForwardSamples, HaveTheClosedFormMeanAndVarianceAtEachStep) {
  const Schedule s = hand_schedule(100, 1e-4, 0.02);
  Points x0(20000, 2);
  x0.col(0).setConstant(3.0f);
  x0.col(1).setConstant(-1.0f);
  const std::vector<int> steps = {0, 50, 99};
  const auto xs = forward_samples(x0, s, steps, 7);
  ASSERT_EQ(xs.size(), 3u);
  for (size_t k = 0; k < steps.size(); ++k) {
    const double a = s.sqrt_alpha_bar[steps[k]], sd = s.sqrt_one_minus_alpha_bar[steps[k]];
    ASSERT_EQ(xs[k].rows(), 20000);
    for (int c = 0; c < 2; ++c) {
      const Eigen::ArrayXd v = xs[k].col(c).cast<double>().array();
      const double mean = v.mean(), var = (v - mean).square().mean();
      EXPECT_NEAR(mean, a * x0(0, c), 4 * sd / std::sqrt(20000.0)) << "t=" << steps[k];
      EXPECT_NEAR(var / (sd * sd), 1.0, 0.05) << "t=" << steps[k];
    }
  }
  EXPECT_EQ(forward_samples(x0, s, steps, 7)[2], xs[2]);  // same seed, same noise
  EXPECT_THROW(forward_samples(x0, s, {100}, 7), UsageError);
}

TEST(ImageFormat, FollowsTheExtension) {
  EXPECT_EQ(image_format_for("a/b.png"), ImageFormat::kPng);
  EXPECT_EQ(image_format_for("B.SVG"), ImageFormat::kSvg);
  for (const char* bad : {"out.jpg", "out", "dir.png/out", "out.gif"}) {
    try {
      image_format_for(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const UsageError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(bad), std::string::npos) << msg;
      EXPECT_NE(msg.find(".png"), std::string::npos) << msg;
      EXPECT_NE(msg.find(".svg"), std::string::npos) << msg;
    }
  }
}

TEST(PlotPoints, PngHasLayoutSizeAndDrawsADenseClusterWhereItsDataAre) {
  TempDir dir;
  // A dense cluster at (0.5, 0.5) and a sparse one at (-0.5, -0.5); fixed limits [-1, 1]^2.
  Points x(6000, 2);
  x.topRows(5000) = cluster(5000, 0.5, 0.5, 0.01, 1);
  x.bottomRows(1000) = cluster(1000, -0.5, -0.5, 0.1, 2);
  PlotStyle style;
  style.limits = Limits{-1, 1, -1, 1};
  const std::string path = dir.file("points.png");
  plot_points(path, x, "two clusters", style);

  const FigureLayout layout = strip_layout({x}, style);
  ASSERT_EQ(layout.panels.size(), 1u);
  const Viewport& vp = layout.panels[0];
  EXPECT_EQ(vp.width, 320.0);  // default single panel
  EXPECT_EQ(vp.height, 320.0);
  Png png(path);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png.width(), layout.width);
  EXPECT_EQ(png.height(), layout.height);
  EXPECT_GT(png.width(), 320);
  EXPECT_LT(png.width(), 420);

  // The dense cluster's centre is dark and blue.
  const uint32_t centre = png.pixel(int(vp.px(0.5)), int(vp.py(0.5)));
  EXPECT_LT(red(centre), 80) << std::hex << centre;
  EXPECT_GT(blue(centre), red(centre) + 60) << std::hex << centre;
  const auto pixel = [&](int x, int y) { return png.pixel(x, y); };
  EXPECT_EQ(bluish_near(pixel, vp.px(0.5), vp.py(0.5), 3), 49);
  // An empty quadrant, and the cluster's mirror image across y = 0: y is up, not down.
  EXPECT_EQ(png.pixel(int(vp.px(-0.7)), int(vp.py(0.7))), 0xffffffu);
  EXPECT_EQ(bluish_near(pixel, vp.px(0.5), vp.py(-0.5), 3), 0);

  // Independent of the transform: the dense cluster at (+, +) is in the panel's upper-right
  // quadrant of the image, the sparse one at (-, -) in its lower-left, nothing elsewhere.
  int quadrant[2][2] = {};  // [lower][right]
  for (int py = int(vp.top) + 2; py < int(vp.top + vp.height) - 2; ++py) {
    for (int px = int(vp.left) + 2; px < int(vp.left + vp.width) - 2; ++px) {
      quadrant[py > vp.top + vp.height / 2][px > vp.left + vp.width / 2] += bluish(pixel(px, py));
    }
  }
  EXPECT_GT(quadrant[0][1], 100);
  EXPECT_GT(quadrant[1][0], 1000);
  EXPECT_EQ(quadrant[0][0], 0);
  EXPECT_EQ(quadrant[1][1], 0);

  // Non-white pixels inside the panel: the points cover a real share, but not all of it.
  int ink = 0;
  for (int py = int(vp.top) + 2; py < int(vp.top + vp.height) - 2; ++py) {
    for (int px = int(vp.left) + 2; px < int(vp.left + vp.width) - 2; ++px) {
      ink += bluish(png.pixel(px, py));
    }
  }
  EXPECT_GT(ink, 2000);
  EXPECT_LT(ink, 60000);
}

TEST(PlotPoints, HighDimensionalPointsAreDrawnByTheirFirstTwoColumns) {
  TempDir dir;
  Points x2 = cluster(500, 0.0, 0.0, 1.0, 3);
  Points x4(500, 4);
  x4.leftCols(2) = x2;
  x4.rightCols(2).setConstant(7.0f);
  plot_points(dir.file("x2.png"), x2, "t");
  plot_points(dir.file("x4.png"), x4, "t");
  const FigureLayout l2 = strip_layout({x2}), l4 = strip_layout({x4});
  EXPECT_GT(l4.height, l2.height);  // room for the "dims 1-2 of 4" note
  Png a(dir.file("x2.png")), b(dir.file("x4.png"));
  ASSERT_TRUE(a.ok() && b.ok());
  const Viewport& vp = l2.panels[0];
  int differ = 0;
  for (int y = 0; y < int(vp.top + vp.height); ++y) {
    for (int x = 0; x < a.width(); ++x) differ += a.pixel(x, y) != b.pixel(x, y);
  }
  EXPECT_EQ(differ, 0);
}

// Pixel targets draw each point as a pre-rendered stamp at an eighth-pixel position; it must look
// like cairo's own disc per point (one cairo_arc + cairo_fill each), clipped to the panel.
TEST(Canvas, RasterPointsMatchOneCairoDiscPerPoint) {
  using plot_detail::Canvas;
  const int W = 200, H = 160;
  const Viewport vp{12.0, 9.0, 170.0, 140.0, Limits{-1.0, 1.0, -1.0, 1.0}};
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(-1.15f, 1.15f);  // some outside the panel
  Points pts(400, 2);
  for (Eigen::Index i = 0; i < pts.rows(); ++i) pts(i, 0) = u(gen), pts(i, 1) = u(gen);
  for (double radius : {0.8, 2.0, 3.7}) {
    const plot_detail::PointLook look{radius, 0.45};
    Canvas canvas(Canvas::Target::kRaster, W, H);
    canvas.scatter(vp, pts, look);
    cairo_surface_t* ref = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
    cairo_t* cr = cairo_create(ref);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_rectangle(cr, vp.left, vp.top, vp.width, vp.height);
    cairo_clip(cr);
    const auto c = plot_detail::kPointColor;
    cairo_set_source_rgba(cr, c.r, c.g, c.b, look.alpha);
    for (Eigen::Index i = 0; i < pts.rows(); ++i) {
      cairo_arc(cr, vp.px(pts(i, 0)), vp.py(pts(i, 1)), radius, 0.0, 2 * M_PI);
      cairo_fill(cr);
    }
    cairo_surface_flush(ref);
    const unsigned char* want = cairo_image_surface_get_data(ref);
    const unsigned char* got = canvas.pixels();
    const int stride = canvas.stride();
    ASSERT_EQ(stride, cairo_image_surface_get_stride(ref));
    double sum = 0;
    int worst = 0, inked = 0;
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < 4 * W; ++x) {
        if (x % 4 == 3) continue;  // RGB24's unused byte
        const int d = std::abs(int(got[y * stride + x]) - int(want[y * stride + x]));
        worst = std::max(worst, d);
        sum += d;
        inked += want[y * stride + x] != 255 ? 1 : 0;
      }
    }
    const double mean = sum / inked;
    std::printf("radius %.1f: worst %d of 255, mean %.2f per inked channel (%d)\n", radius, worst,
                mean, inked);
    EXPECT_GT(inked, 1000) << "the reference drew the points";
    // Measured: worst 10-12 (an edge pixel of a disc up to 1/16 pixel off), mean 1.1-1.9.
    EXPECT_LT(worst, 20) << "radius " << radius;
    EXPECT_LT(mean, 2.5) << "radius " << radius;
    cairo_destroy(cr);
    cairo_surface_destroy(ref);
  }
}

TEST(PlotStrip, SvgIsWellFormedWithOnePanelFramePerPanelAndEveryPoint) {
  TempDir dir;
  std::vector<Points> panels;
  std::vector<std::string> titles;
  for (int i = 0; i < 3; ++i) {
    panels.push_back(cluster(40, i, -i, 0.5 + i, 10 + i));
    titles.push_back("t=" + std::to_string(10 * i));
  }
  PlotStyle style;
  style.point_alpha = 0.5;
  const std::string path = dir.file("strip.svg");
  plot_strip(path, panels, titles, style, "forward");
  const std::string svg = test::slurp(path);
  ASSERT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_EQ(xml_problem(svg), "");
  const FigureLayout layout = strip_layout(panels, style, "forward");
  EXPECT_NE(svg.find("width=\"" + std::to_string(layout.width) + "px\""), std::string::npos);
  EXPECT_NE(svg.find("height=\"" + std::to_string(layout.height) + "px\""), std::string::npos);
  // Each panel's frame is one stroked path in the frame grey; each point one filled path.
  EXPECT_EQ(count(svg, "stroke:rgb(30%,30%,30%)"), 3);
  EXPECT_EQ(count(svg, "fill-opacity:0.5;"), 120);
  // Shared axes: the panels are the same size, side by side, on the same limits.
  ASSERT_EQ(layout.panels.size(), 3u);
  EXPECT_EQ(layout.panels[1].width, 180.0);
  EXPECT_GT(layout.panels[1].left, layout.panels[0].left + 180.0);
  EXPECT_EQ(layout.panels[2].top, layout.panels[0].top);
  EXPECT_EQ(layout.panels[2].limits.x_min, layout.panels[0].limits.x_min);
  EXPECT_EQ(layout.panels[2].limits.y_max, layout.panels[0].limits.y_max);
}

TEST(PlotStrip, PngTenPanelsSharedLimitsFromAllPanels) {
  TempDir dir;
  std::vector<Points> panels;
  std::vector<std::string> titles;
  for (int t : strip_steps(100, 10)) {
    panels.push_back(cluster(300, 0.0, 0.0, 0.1 + t / 30.0, 20 + t));
    titles.push_back("t=" + std::to_string(t));
  }
  const std::string path = dir.file("strip.png");
  plot_strip(path, panels, titles);
  const FigureLayout layout = strip_layout(panels);
  Png png(path);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png.width(), layout.width);
  EXPECT_EQ(png.height(), layout.height);
  EXPECT_GT(png.width(), 10 * 180);
  // The widest panel (t=90, std 3.1) sets the shared limits; the first panel's cluster is tiny
  // but drawn at its data: dark at the centre of panel 0.
  EXPECT_GT(layout.panels[0].limits.x_max, 6.0);
  const Viewport& vp = layout.panels[0];
  const uint32_t c = png.pixel(int(vp.px(0.0)), int(vp.py(0.0)));
  EXPECT_GT(blue(c), red(c) + 40) << std::hex << c;
}

TEST(PlotSchedule, DrawsTwoPanelsAndMarksTheTerminalSignal) {
  TempDir dir;
  const Schedule s = hand_schedule(100, 1e-4, 0.02);
  plot_schedule(dir.file("schedule.png"), s, "linear, T=100");
  Png png(dir.file("schedule.png"));
  ASSERT_TRUE(png.ok());
  EXPECT_GT(png.width(), 2 * 300);
  int accent = 0, line = 0;
  for (int y = 0; y < png.height(); ++y) {
    for (int x = 0; x < png.width(); ++x) {
      const uint32_t p = png.pixel(x, y);
      accent += red(p) > 180 && green(p) < 130 && blue(p) < 80;
      line += blue(p) > 120 && red(p) < 60;
    }
  }
  EXPECT_GT(accent, 20);  // the orange marker and its label
  EXPECT_GT(line, 300);   // two blue curves
  plot_schedule(dir.file("schedule.svg"), s);
  const std::string svg = test::slurp(dir.file("schedule.svg"));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(count(svg, "stroke:rgb(30%,30%,30%)"), 2);
}

TEST(PlotLoss, LinearAndLogPngsAndClearErrors) {
  TempDir dir;
  std::vector<double> epochs, loss;
  for (int e = 1; e <= 200; ++e) {
    epochs.push_back(e);
    loss.push_back(0.3 + std::exp(-e / 20.0));
  }
  plot_loss(dir.file("loss.png"), epochs, loss, false);
  plot_loss(dir.file("loss_log.svg"), epochs, loss, true);
  Png png(dir.file("loss.png"));
  ASSERT_TRUE(png.ok());
  EXPECT_GT(png.width(), 420);
  EXPECT_EQ(xml_problem(test::slurp(dir.file("loss_log.svg"))), "");
  loss[5] = 0.0;
  EXPECT_THROW(plot_loss(dir.file("bad.png"), epochs, loss, true), Error);
  loss.pop_back();
  EXPECT_THROW(plot_loss(dir.file("bad.png"), epochs, loss, false), Error);
  EXPECT_THROW(plot_loss(dir.file("bad.png"), {}, {}, false), Error);
  EXPECT_FALSE(test::file_exists(dir.file("bad.png")));
}

TEST(ReadLossLog, ReadsEpochAndMeanLossByNameAndNamesTheBadLine) {
  TempDir dir;
  const std::string good = dir.file("log.csv");
  write_file_atomic(good, "epoch,mean_loss,last_loss,lr\n1,0.9,0.8,0.001\n\n2,0.5,0.4,0.001\n");
  const LossCurve c = read_loss_log(good);
  EXPECT_EQ(c.epochs, (std::vector<double>{1, 2}));
  EXPECT_EQ(c.mean_loss, (std::vector<double>{0.9, 0.5}));

  const std::string bad = dir.file("bad.csv");
  write_file_atomic(bad, "epoch,mean_loss\n1,0.9\n2,abc\n");
  try {
    read_loss_log(bad);
    ADD_FAILURE() << "bad number accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad + ":3:"), std::string::npos) << e.what();
  }
  write_file_atomic(bad, "epoch,loss\n1,0.9\n");
  EXPECT_THROW(read_loss_log(bad), Error);
  write_file_atomic(bad, "epoch,mean_loss\n");
  EXPECT_THROW(read_loss_log(bad), Error);
  EXPECT_THROW(read_loss_log(dir.file("missing.csv")), Error);
}

// Reads a GIF with giflib and composites its frames the way a browser does (disposal "do not
// dispose", transparent pixels keep what was there).
struct DecodedGif {
  int width = 0, height = 0, frames = 0;
  bool loops_forever = false;
  std::vector<int> delays_cs;
  std::vector<uint32_t> last;  // the final composited frame, 0xRRGGBB
};

DecodedGif decode_gif(const std::string& path) {
  DecodedGif out;
  int err = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &err);
  if (gif == nullptr) throw Error(path + ": " + GifErrorString(err));
  if (DGifSlurp(gif) != GIF_OK) {
    const std::string msg = GifErrorString(gif->Error);
    DGifCloseFile(gif, &err);
    throw Error(path + ": " + msg);
  }
  out.width = gif->SWidth;
  out.height = gif->SHeight;
  out.frames = gif->ImageCount;
  out.last.assign(size_t(out.width) * out.height, 0);
  for (int i = 0; i < gif->ImageCount; ++i) {
    const SavedImage& im = gif->SavedImages[i];
    for (int k = 0; k + 1 < im.ExtensionBlockCount; ++k) {
      const ExtensionBlock& b = im.ExtensionBlocks[k];
      const ExtensionBlock& next = im.ExtensionBlocks[k + 1];
      if (b.Function == APPLICATION_EXT_FUNC_CODE && b.ByteCount == 11 &&
          std::string(reinterpret_cast<char*>(b.Bytes), 11) == "NETSCAPE2.0" &&
          next.ByteCount == 3 && next.Bytes[0] == 1 && next.Bytes[1] == 0 && next.Bytes[2] == 0) {
        out.loops_forever = true;
      }
    }
    GraphicsControlBlock gcb{};
    DGifSavedExtensionToGCB(gif, i, &gcb);
    out.delays_cs.push_back(gcb.DelayTime);
    const ColorMapObject* map = im.ImageDesc.ColorMap ? im.ImageDesc.ColorMap : gif->SColorMap;
    const GifImageDesc& d = im.ImageDesc;
    for (int y = 0; y < d.Height; ++y) {
      for (int x = 0; x < d.Width; ++x) {
        const int idx = im.RasterBits[size_t(y) * d.Width + x];
        if (idx == gcb.TransparentColor) continue;
        const GifColorType c = map->Colors[idx];
        out.last[size_t(d.Top + y) * out.width + d.Left + x] =
            (uint32_t(c.Red) << 16) | (uint32_t(c.Green) << 8) | c.Blue;
      }
    }
  }
  DGifCloseFile(gif, &err);
  return out;
}

TEST(AnimateGif, DecodesWithTheFrameCountLoopsAndHoldsTheLastFrame) {
  TempDir dir;
  // A cluster travelling from (-0.5, -0.5) to (0.5, 0.5), on fixed limits [-1, 1]^2.
  std::vector<Points> frames;
  std::vector<std::string> labels;
  const int n = 12;
  for (int i = 0; i < n; ++i) {
    const double c = -0.5 + double(i) / (n - 1);
    frames.push_back(cluster(2000, c, c, 0.02, 40 + i));
    labels.push_back("t=" + std::to_string(n - 1 - i));
  }
  GifOptions o;
  o.limits = Limits{-1, 1, -1, 1};
  const std::string path = dir.file("reverse.gif");
  animate_gif(path, frames, labels, o);
  const DecodedGif g = decode_gif(path);
  EXPECT_EQ(g.width, 360);
  EXPECT_EQ(g.height, 360);
  EXPECT_EQ(g.frames, n);
  EXPECT_TRUE(g.loops_forever);
  ASSERT_EQ(g.delays_cs.size(), size_t(n));
  EXPECT_EQ(g.delays_cs.front(), 4);
  EXPECT_EQ(g.delays_cs.back(), 150);

  // After all frames, the cluster is at (0.5, 0.5) and has left (-0.5, -0.5).
  const FigureLayout layout = animation_layout(frames, o);
  const Viewport& vp = layout.panels[0];
  const uint32_t here = g.last[size_t(vp.py(0.5)) * g.width + size_t(vp.px(0.5))];
  const auto pixel = [&](int x, int y) { return g.last[size_t(y) * g.width + x]; };
  EXPECT_LT(red(here), 80) << std::hex << here;
  EXPECT_GT(blue(here), red(here) + 60) << std::hex << here;
  EXPECT_EQ(bluish_near(pixel, vp.px(0.5), vp.py(0.5), 3), 49);
  EXPECT_EQ(bluish_near(pixel, vp.px(-0.5), vp.py(-0.5), 6), 0);
  // The first frame had it at (-0.5, -0.5): the GIF must really show it moving.
  const std::string first = dir.file("first.gif");
  animate_gif(first, {frames.front()}, {labels.front()}, o);
  const DecodedGif g0 = decode_gif(first);
  const auto pixel0 = [&](int x, int y) { return g0.last[size_t(y) * g0.width + x]; };
  EXPECT_EQ(bluish_near(pixel0, vp.px(-0.5), vp.py(-0.5), 3), 49);
  EXPECT_EQ(g0.frames, 1);
}

TEST(AnimateGif, RejectsBadPathsAndInput) {
  TempDir dir;
  const std::vector<Points> frames = {cluster(10, 0, 0, 1, 1)};
  EXPECT_THROW(animate_gif(dir.file("a.png"), frames, {"t=0"}), UsageError);
  EXPECT_THROW(animate_gif(dir.file("a.gif"), {}, {}), Error);
  EXPECT_THROW(animate_gif(dir.file("a.gif"), frames, {}), Error);
  GifOptions o;
  o.frame_ms = 5;
  EXPECT_THROW(animate_gif(dir.file("a.gif"), frames, {"t=0"}, o), UsageError);
  EXPECT_THROW(animate_gif(dir.file("no/such/folder/a.gif"), frames, {"t=0"}), Error);
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(PlotErrors, NameThePathAndLeaveNoFileBehind) {
  TempDir dir;
  const Points x = cluster(10, 0, 0, 1, 1);
  try {
    plot_points(dir.file("out.jpeg"), x, "t");
    ADD_FAILURE() << "jpeg accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("out.jpeg"), std::string::npos) << e.what();
  }
  const std::string missing = dir.file("no_such_folder/out.png");
  try {
    plot_points(missing, x, "t");
    ADD_FAILURE() << "missing folder accepted";
  } catch (const UsageError&) {
    ADD_FAILURE() << "a missing folder is an Error, not a UsageError";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  try {
    plot_points(dir.file("empty.png"), Points(0, 2), "t");
    ADD_FAILURE() << "empty set accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no points"), std::string::npos) << e.what();
  }
  EXPECT_THROW(plot_points(dir.file("one.png"), Points::Zero(5, 1), "t"), Error);
  Points nan = x;
  nan(3, 1) = NAN;
  EXPECT_THROW(plot_points(dir.file("nan.png"), nan, "t"), Error);
  EXPECT_THROW(plot_strip(dir.file("s.png"), {x, x}, {"only one title"}), Error);
  EXPECT_THROW(plot_strip(dir.file("s.png"), {}, {}), Error);
  EXPECT_TRUE(files_in(dir.path()).empty());
}

}  // namespace
}  // namespace diffuse
