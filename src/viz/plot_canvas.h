// Private to plot.cpp and gif.cpp: the one figure style (sizes, colours, fonts) and a thin cairo
// canvas that draws axes, points, lines and text onto PNG, SVG or raw raster surfaces.
#pragma once

#include <cairo.h>

#include <string>
#include <vector>

#include "diffuse/plot.h"

namespace diffuse::plot_detail {

// Layout, in pixels.
inline constexpr int kTickFont = 10, kLabelFont = 11, kTitleFont = 13, kFigureTitleFont = 14;
inline constexpr int kTickLen = 4, kPad = 5, kTitleRow = 24, kFigureTitleRow = 28;
inline constexpr int kPanelGap = 18, kRightMargin = 14;
inline constexpr int kSinglePanel = 320, kStripPanel = 180;
inline constexpr int kLinePanelW = 300, kLinePanelH = 210, kLossPanelW = 420, kLossPanelH = 260;

struct Rgb {
  double r, g, b;
};
inline constexpr Rgb kWhite{1.0, 1.0, 1.0};
inline constexpr Rgb kInk{0.13, 0.13, 0.13};       // titles, tick labels
inline constexpr Rgb kMutedInk{0.38, 0.38, 0.38};  // axis labels, notes
inline constexpr Rgb kFrame{0.30, 0.30, 0.30};     // panel frame, ticks
inline constexpr Rgb kGrid{0.91, 0.91, 0.91};
inline constexpr Rgb kPointColor{0.10, 0.33, 0.62};  // points and lines
inline constexpr Rgb kAccent{0.85, 0.33, 0.08};      // highlighted values

struct Axis {
  std::vector<double> ticks;
  std::vector<std::string> labels;  // empty: ticks without labels
};
Axis linear_axis(double lo, double hi, int target);
std::string tick_label(double v, double step);

struct PointLook {
  double radius = 1.0, alpha = 1.0;
  Rgb colour = kPointColor;
};
PointLook point_look(Eigen::Index n, double panel_px, double radius, double alpha);
// Throws Error naming `what` for an empty set or fewer than 2 columns.
void check_points(const Points& x, const std::string& what);

enum class VAlign { kBaseline, kMiddle, kTop };

double max_text_width(const std::vector<std::string>& texts, double size);

class Canvas {
 public:
  enum class Target { kPng, kSvg, kRaster };
  Canvas(Target target, int width, int height);
  Canvas(ImageFormat format, int width, int height)
      : Canvas(format == ImageFormat::kPng ? Target::kPng : Target::kSvg, width, height) {}
  ~Canvas();
  Canvas(const Canvas&) = delete;
  Canvas& operator=(const Canvas&) = delete;

  void clear();  // white
  // ax: 0 left, 0.5 centre, 1 right of the text at x.
  void text(double x, double y, const std::string& s, double size, double ax, VAlign v,
            bool bold = false, Rgb colour = kInk);
  void vertical_text(double x, double y_centre, const std::string& s, double size, Rgb colour);
  void axes_background(const Viewport& vp, const std::vector<double>& x_ticks,
                       const std::vector<double>& y_ticks);
  void axes_frame(const Viewport& vp, const Axis& x, const Axis& y);
  // The first two columns of x (N, D), clipped to the panel.
  void scatter(const Viewport& vp, const Points& x, const PointLook& look);
  void line(const Viewport& vp, const std::vector<double>& x, const std::vector<double>& y,
            Rgb colour = kPointColor);
  void marker(double x, double y, double radius, Rgb colour);

  // PNG bytes or SVG text; the canvas is finished afterwards. Throws Error on a cairo failure.
  std::string finish();
  // kRaster: pixels as cairo RGB24 (0x00RRGGBB per uint32, rows `stride` bytes apart).
  const unsigned char* pixels();
  int stride() const;

 private:
  void check(const char* what) const;
  void raster_scatter(const Viewport& vp, const Points& x, const PointLook& look);

  Target target_;
  cairo_surface_t* surface_ = nullptr;
  cairo_t* cr_ = nullptr;
  std::string svg_;
};

}  // namespace diffuse::plot_detail
