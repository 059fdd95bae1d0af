// Figures with cairo: scatter panels, strips on shared axes, schedule and loss curves, PNG or SVG.
// Not a plotting framework: one fixed style, just the figures diffuse draws. GIFs are in gif.cpp.
#include "diffuse/plot.h"

#include <cairo-svg.h>
#if defined(__SANITIZE_ADDRESS__)
#include <dlfcn.h>

#include <mutex>
#endif

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/rng.h"
#include "viz/plot_canvas.h"

namespace diffuse {

// ---------------------------------------------------------------------------------------------
// Pure helpers (public).

ImageFormat image_format_for(const std::string& path) {
  std::string ext;
  const size_t dot = path.find_last_of('.');
  const size_t slash = path.find_last_of('/');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) {
    ext = path.substr(dot);
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  if (ext == ".png") return ImageFormat::kPng;
  if (ext == ".svg") return ImageFormat::kSvg;
  throw UsageError(path + ": unknown image type '" + ext + "'; expected .png or .svg");
}

Limits point_limits(const std::vector<Points>& sets, double pad) {
  double x_lo = INFINITY, x_hi = -INFINITY, y_lo = INFINITY, y_hi = -INFINITY;
  for (size_t k = 0; k < sets.size(); ++k) {
    const Points& x = sets[k];
    if (x.rows() > 0 && x.cols() < 2) {
      throw Error("cannot plot points with " + std::to_string(x.cols()) +
                  " column: a scatter plot needs at least 2");
    }
    for (Eigen::Index i = 0; i < x.rows(); ++i) {
      const double a = x(i, 0), b = x(i, 1);
      if (!std::isfinite(a) || !std::isfinite(b)) {
        throw Error("cannot plot: point " + std::to_string(i) + " of set " + std::to_string(k) +
                    " is not finite (" + std::to_string(a) + ", " + std::to_string(b) + ")");
      }
      x_lo = std::min(x_lo, a), x_hi = std::max(x_hi, a);
      y_lo = std::min(y_lo, b), y_hi = std::max(y_hi, b);
    }
  }
  if (!(x_lo <= x_hi)) throw Error("cannot plot: no points");
  // Equal aspect in a square panel: the same span on both axes, centred on the data.
  double span = std::max(x_hi - x_lo, y_hi - y_lo);
  if (span <= 0.0) span = std::max({std::abs(x_lo), std::abs(y_lo), 1.0});
  const double half = 0.5 * span * (1.0 + 2.0 * pad);
  const double cx = 0.5 * (x_lo + x_hi), cy = 0.5 * (y_lo + y_hi);
  return {cx - half, cx + half, cy - half, cy + half};
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
  target = std::max(target, 2);
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double r = raw / mag;
  const double step = (r < 1.5 ? 1.0 : r < 3.5 ? 2.0 : r < 7.5 ? 5.0 : 10.0) * mag;
  std::vector<double> ticks;
  const double eps = step * 1e-9;
  for (double k = std::ceil((lo - eps) / step); k * step <= hi + eps; k += 1.0) {
    const double v = k * step;
    ticks.push_back(std::abs(v) < eps ? 0.0 : v);
  }
  return ticks;
}

std::vector<int> strip_steps(int T, int panels) {
  std::vector<int> t;
  t.reserve(static_cast<size_t>(std::max(panels, 0)));
  if (panels == 1) return {0};
  for (int i = 0; i < panels; ++i) {
    t.push_back(static_cast<int>(int64_t{i} * (T - 1) / (panels - 1)));
  }
  return t;
}

std::vector<Points> forward_samples(const Points& x0, const Schedule& schedule,
                                    const std::vector<int>& steps, uint64_t seed) {
  const int n = static_cast<int>(x0.rows()), d = static_cast<int>(x0.cols());
  Rng rng(seed);
  std::vector<int> t(n);
  Points eps(n, d);
  std::vector<Points> out;
  for (int step : steps) {
    if (step < 0 || step >= schedule.T()) {
      throw UsageError("forward step " + std::to_string(step) + " is outside [0, " +
                       std::to_string(schedule.T() - 1) + "]");
    }
    std::fill(t.begin(), t.end(), step);
    rng.fill_normal(eps.data(), eps.size());
    Points& xt = out.emplace_back(n, d);
    // Row-major (N, D) memory is the (D, N) column-major layout q_sample takes.
    q_sample(schedule, x0.data(), eps.data(), t.data(), n, d, xt.data());
  }
  return out;
}

std::vector<int> spread_indices(int count, int panels) {
  std::vector<int> idx;
  if (count <= 0 || panels <= 0) return idx;
  if (count <= panels) {
    for (int i = 0; i < count; ++i) idx.push_back(i);
    return idx;
  }
  if (panels == 1) return {count - 1};
  for (int i = 0; i < panels; ++i) {
    idx.push_back(static_cast<int>(std::lround(double(i) * (count - 1) / (panels - 1))));
  }
  return idx;
}

PlotStyle axis_labels(const std::vector<std::string>& columns) {
  PlotStyle style;
  if (columns.size() >= 2) {
    style.x_label = columns[0];
    style.y_label = columns[1];
  }
  return style;
}

void plot_reverse_strip(const std::string& path, const std::vector<Points>& states,
                        const std::vector<int>& t, int panels, const std::string& figure_title,
                        const std::vector<std::string>& columns) {
  if (states.size() != t.size()) {
    throw Error("plot_reverse_strip: " + std::to_string(states.size()) + " states but " +
                std::to_string(t.size()) + " timesteps");
  }
  std::vector<Points> xs;
  std::vector<std::string> titles;
  for (int i : spread_indices(static_cast<int>(states.size()), panels)) {
    xs.push_back(states[i]);
    titles.push_back("t=" + std::to_string(t[i]));
  }
  plot_strip(path, xs, titles, axis_labels(columns), figure_title);
}

// ---------------------------------------------------------------------------------------------
// Figures.

namespace plot_detail {

std::string tick_label(double v, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  if (std::abs(v) < step * 1e-6) v = 0.0;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s[0] == '-') s = "\u2212" + s.substr(1);  // a real minus sign
  return s;
}

Axis linear_axis(double lo, double hi, int target) {
  Axis a;
  a.ticks = nice_ticks(lo, hi, target);
  const double step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : std::max(std::abs(lo), 1.0);
  for (double v : a.ticks) a.labels.push_back(tick_label(v, step));
  return a;
}

void check_points(const Points& x, const std::string& what) {
  if (x.rows() == 0) throw Error(what + ": no points to plot");
  if (x.cols() < 2) {
    throw Error(what + ": points have " + std::to_string(x.cols()) +
                " column; a scatter plot needs at least 2");
  }
}

PointLook point_look(Eigen::Index n, double panel_px, double radius, double alpha) {
  // Dense clouds get smaller, fainter points so that density stays readable as shade.
  const double nn = std::max<double>(static_cast<double>(n), 1.0);
  PointLook look;
  look.radius = radius > 0.0
                    ? radius
                    : std::clamp(panel_px / 320.0 * 1.9 * std::pow(1000.0 / nn, 0.15), 0.7, 4.0);
  look.alpha = alpha > 0.0 ? alpha : std::clamp(0.85 * std::pow(1000.0 / nn, 0.45), 0.12, 0.85);
  return look;
}

// ---------------------------------------------------------------------------------------------
// Canvas.

namespace {

constexpr const char* kFontFace = "DejaVu Sans";

cairo_status_t append_bytes(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void set_colour(cairo_t* cr, Rgb c, double alpha = 1.0) {
  cairo_set_source_rgba(cr, c.r, c.g, c.b, alpha);
}

// Crisp 1-pixel lines: centre them on pixel centres.
double snap(double v) { return std::floor(v) + 0.5; }

// Under AddressSanitizer, free cairo's and fontconfig's process-wide font caches at exit, or the
// leak checker reports them and fails every program that drew text. Normal builds leave them.
// FcFini is looked up at run time: fontconfig comes in through cairo, not our link line.
void release_font_caches_at_exit() {
#if defined(__SANITIZE_ADDRESS__)
  static std::once_flag once;
  std::call_once(once, [] {
    std::atexit([] {
      cairo_debug_reset_static_data();
      if (void* fc_fini = dlsym(RTLD_DEFAULT, "FcFini")) reinterpret_cast<void (*)()>(fc_fini)();
    });
  });
#endif
}

}  // namespace

double max_text_width(const std::vector<std::string>& texts, double size) {
  release_font_caches_at_exit();
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_A8, 1, 1);
  cairo_t* cr = cairo_create(s);
  cairo_select_font_face(cr, kFontFace, CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  double w = 0.0;
  for (const std::string& t : texts) {
    cairo_text_extents_t e;
    cairo_text_extents(cr, t.c_str(), &e);
    w = std::max(w, e.x_advance);
  }
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  return w;
}

Canvas::Canvas(Target target, int width, int height) : target_(target) {
  release_font_caches_at_exit();
  if (target == Target::kSvg) {
    surface_ = cairo_svg_surface_create_for_stream(append_bytes, &svg_, width, height);
    cairo_svg_surface_set_document_unit(surface_, CAIRO_SVG_UNIT_PX);
  } else {
    surface_ = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  }
  cr_ = cairo_create(surface_);
  check("cannot create a drawing surface");
  clear();
}

Canvas::~Canvas() {
  cairo_destroy(cr_);
  cairo_surface_destroy(surface_);
}

void Canvas::check(const char* what) const {
  cairo_status_t st = cairo_surface_status(surface_);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_status(cr_);
  if (st != CAIRO_STATUS_SUCCESS) {
    throw Error(std::string(what) + ": cairo: " + cairo_status_to_string(st));
  }
}

void Canvas::clear() {
  set_colour(cr_, kWhite);
  cairo_paint(cr_);
}

void Canvas::text(double x, double y, const std::string& s, double size, double ax, VAlign v,
                  bool bold, Rgb colour) {
  cairo_select_font_face(cr_, kFontFace, CAIRO_FONT_SLANT_NORMAL,
                         bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr_, size);
  cairo_text_extents_t e;
  cairo_text_extents(cr_, s.c_str(), &e);
  const double cap = 0.73 * size;  // DejaVu Sans cap and digit height
  double baseline = y;
  if (v == VAlign::kMiddle) baseline = y + cap / 2;
  if (v == VAlign::kTop) baseline = y + cap;
  set_colour(cr_, colour);
  cairo_move_to(cr_, std::round(x - ax * e.x_advance), std::round(baseline));
  cairo_show_text(cr_, s.c_str());
  cairo_new_path(cr_);
}

void Canvas::vertical_text(double x, double y_centre, const std::string& s, double size,
                           Rgb colour) {
  cairo_save(cr_);
  cairo_translate(cr_, x, y_centre);
  cairo_rotate(cr_, -M_PI / 2);
  text(0, 0, s, size, 0.5, VAlign::kBaseline, false, colour);
  cairo_restore(cr_);
}

void Canvas::axes_background(const Viewport& vp, const std::vector<double>& x_ticks,
                             const std::vector<double>& y_ticks) {
  cairo_set_line_width(cr_, 1.0);
  set_colour(cr_, kGrid);
  for (double t : x_ticks) {
    cairo_move_to(cr_, snap(vp.px(t)), vp.top);
    cairo_line_to(cr_, snap(vp.px(t)), vp.top + vp.height);
  }
  for (double t : y_ticks) {
    cairo_move_to(cr_, vp.left, snap(vp.py(t)));
    cairo_line_to(cr_, vp.left + vp.width, snap(vp.py(t)));
  }
  cairo_stroke(cr_);
}

void Canvas::axes_frame(const Viewport& vp, const Axis& x, const Axis& y) {
  const double l = snap(vp.left - 1), t = snap(vp.top - 1);
  const double r = snap(vp.left + vp.width), b = snap(vp.top + vp.height);
  cairo_set_line_width(cr_, 1.0);
  set_colour(cr_, kFrame);
  cairo_rectangle(cr_, l, t, r - l, b - t);
  for (double v : x.ticks) {
    cairo_move_to(cr_, snap(vp.px(v)), b);
    cairo_line_to(cr_, snap(vp.px(v)), b + kTickLen);
  }
  for (double v : y.ticks) {
    cairo_move_to(cr_, l, snap(vp.py(v)));
    cairo_line_to(cr_, l - kTickLen, snap(vp.py(v)));
  }
  cairo_stroke(cr_);
  for (size_t i = 0; i < x.labels.size() && i < x.ticks.size(); ++i) {
    text(vp.px(x.ticks[i]), b + kTickLen + kPad - 2, x.labels[i], kTickFont, 0.5, VAlign::kTop);
  }
  for (size_t i = 0; i < y.labels.size() && i < y.ticks.size(); ++i) {
    text(l - kTickLen - kPad + 2, vp.py(y.ticks[i]), y.labels[i], kTickFont, 1.0, VAlign::kMiddle);
  }
}

void Canvas::scatter(const Viewport& vp, const Points& x, const PointLook& look) {
  if (target_ != Target::kSvg) {
    raster_scatter(vp, x, look);
    return;
  }
  cairo_save(cr_);
  cairo_rectangle(cr_, vp.left, vp.top, vp.width, vp.height);
  cairo_clip(cr_);
  set_colour(cr_, look.colour, look.alpha);
  // One fill per point, so that overlapping points add up to darker shades of dense regions.
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    cairo_arc(cr_, vp.px(x(i, 0)), vp.py(x(i, 1)), look.radius, 0.0, 2 * M_PI);
    cairo_fill(cr_);
  }
  cairo_restore(cr_);
}

// On pixels, a point is a stamp: cairo draws the antialiased disc once for each of 8 x 8
// sub-pixel positions, then every point blends the stamp nearest its position into the image
// (OVER, as cairo's fill). Same look as one cairo_arc + cairo_fill per point, at a few percent
// of the cost: the demo draws about 400,000 points.
void Canvas::raster_scatter(const Viewport& vp, const Points& x, const PointLook& look) {
  constexpr int kSub = 8;
  const int reach = static_cast<int>(std::ceil(look.radius)) + 1;  // stamp pixels either side
  const int size = 2 * reach + 2;
  std::vector<unsigned char> stamps(static_cast<size_t>(kSub * kSub * size * size));
  cairo_surface_t* a8 = cairo_image_surface_create(CAIRO_FORMAT_A8, size, size);
  const int a8_stride = cairo_image_surface_get_stride(a8);
  for (int sy = 0; sy < kSub; ++sy) {
    for (int sx = 0; sx < kSub; ++sx) {
      cairo_t* cr = cairo_create(a8);
      cairo_set_operator(cr, CAIRO_OPERATOR_SOURCE);
      cairo_set_source_rgba(cr, 0, 0, 0, 0);
      cairo_paint(cr);
      cairo_set_operator(cr, CAIRO_OPERATOR_OVER);
      cairo_set_source_rgba(cr, 0, 0, 0, 1);
      cairo_arc(cr, reach + (sx + 0.5) / kSub, reach + (sy + 0.5) / kSub, look.radius, 0.0,
                2 * M_PI);
      cairo_fill(cr);
      cairo_destroy(cr);
      cairo_surface_flush(a8);
      const unsigned char* src = cairo_image_surface_get_data(a8);
      unsigned char* dst = stamps.data() + static_cast<size_t>((sy * kSub + sx) * size * size);
      for (int r = 0; r < size; ++r) std::copy_n(src + r * a8_stride, size, dst + r * size);
    }
  }
  cairo_surface_destroy(a8);
  check("cannot draw points");

  cairo_surface_flush(surface_);
  unsigned char* data = cairo_image_surface_get_data(surface_);
  const int stride = cairo_image_surface_get_stride(surface_);
  // Pixels whose centres lie inside the panel.
  const int x_lo = std::max(0, static_cast<int>(std::ceil(vp.left - 0.5)));
  const int y_lo = std::max(0, static_cast<int>(std::ceil(vp.top - 0.5)));
  const int x_hi = std::min(cairo_image_surface_get_width(surface_),
                            static_cast<int>(std::floor(vp.left + vp.width + 0.5)));
  const int y_hi = std::min(cairo_image_surface_get_height(surface_),
                            static_cast<int>(std::floor(vp.top + vp.height + 0.5)));
  const float colour[3] = {static_cast<float>(look.colour.b * 255.0),
                           static_cast<float>(look.colour.g * 255.0),
                           static_cast<float>(look.colour.r * 255.0)};  // byte order of RGB24
  const auto alpha = static_cast<float>(look.alpha / 255.0);
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const double px = vp.px(x(i, 0)), py = vp.py(x(i, 1));
    if (!(px > x_lo - size && px < x_hi + size && py > y_lo - size && py < y_hi + size)) continue;
    const double fx = std::floor(px), fy = std::floor(py);
    const int sx = std::min(kSub - 1, static_cast<int>((px - fx) * kSub));
    const int sy = std::min(kSub - 1, static_cast<int>((py - fy) * kSub));
    const unsigned char* stamp =
        stamps.data() + static_cast<size_t>((sy * kSub + sx) * size * size);
    const int x0 = static_cast<int>(fx) - reach, y0 = static_cast<int>(fy) - reach;
    for (int r = std::max(0, y_lo - y0); r < std::min(size, y_hi - y0); ++r) {
      auto* row = reinterpret_cast<uint32_t*>(data + static_cast<size_t>(y0 + r) * stride);
      for (int c = std::max(0, x_lo - x0); c < std::min(size, x_hi - x0); ++c) {
        const unsigned char cover = stamp[r * size + c];
        if (cover == 0) continue;
        const float a = cover * alpha;
        uint32_t& pixel = row[x0 + c];
        uint32_t out = pixel & 0xff000000u;  // RGB24's unused byte, as it was
        for (int k = 0; k < 3; ++k) {
          const auto d = static_cast<float>((pixel >> (8 * k)) & 0xffu);
          out |= static_cast<uint32_t>(std::nearbyint(d + (colour[k] - d) * a)) << (8 * k);
        }
        pixel = out;
      }
    }
  }
  cairo_surface_mark_dirty(surface_);
}

void Canvas::line(const Viewport& vp, const std::vector<double>& x, const std::vector<double>& y,
                  Rgb colour) {
  cairo_save(cr_);
  cairo_rectangle(cr_, vp.left, vp.top, vp.width, vp.height);
  cairo_clip(cr_);
  set_colour(cr_, colour);
  cairo_set_line_width(cr_, 1.8);
  cairo_set_line_join(cr_, CAIRO_LINE_JOIN_ROUND);
  for (size_t i = 0; i < x.size(); ++i) cairo_line_to(cr_, vp.px(x[i]), vp.py(y[i]));
  cairo_stroke(cr_);
  cairo_restore(cr_);
}

void Canvas::marker(double x, double y, double radius, Rgb colour) {
  set_colour(cr_, colour);
  cairo_new_path(cr_);
  cairo_arc(cr_, x, y, radius, 0.0, 2 * M_PI);
  cairo_fill(cr_);
}

std::string Canvas::finish() {
  check("drawing failed");
  std::string bytes;
  if (target_ == Target::kSvg) {
    cairo_surface_finish(surface_);
    check("cannot write SVG");
    bytes.swap(svg_);
  } else {
    cairo_surface_flush(surface_);
    const cairo_status_t st = cairo_surface_write_to_png_stream(surface_, append_bytes, &bytes);
    if (st != CAIRO_STATUS_SUCCESS) {
      throw Error(std::string("cannot encode PNG: cairo: ") + cairo_status_to_string(st));
    }
  }
  return bytes;
}

const unsigned char* Canvas::pixels() {
  cairo_surface_flush(surface_);
  return cairo_image_surface_get_data(surface_);
}

int Canvas::stride() const { return cairo_image_surface_get_stride(surface_); }

}  // namespace plot_detail

namespace {

using namespace plot_detail;

// Shared layout of a row of square scatter panels, validated.
struct ScatterLayout {
  FigureLayout figure;
  Axis x_axis, y_axis;
  int side = 0;
  Eigen::Index dims = 0;  // columns of the points; > 2 adds a note under the first panel
  // The class legend right of the last panel: its left edge and the entries shown (the last one
  // may be "+K more"); none without classes.
  double legend_left = 0;
  std::vector<std::string> legend;
};

constexpr int kLegendRow = 15;  // pixels between legend entries

// Checks style.classes against the panels (Error naming `what`).
void check_classes(const std::vector<Points>& panels, const PlotStyle& style,
                   const std::string& what) {
  if (style.classes.empty()) return;
  if (style.classes.size() != panels.size()) {
    throw Error(what + ": classes for " + std::to_string(style.classes.size()) + " panels, but " +
                std::to_string(panels.size()) + " panels");
  }
  for (size_t p = 0; p < panels.size(); ++p) {
    const PointClasses& c = style.classes[p];
    if (static_cast<Eigen::Index>(c.of_row.size()) != panels[p].rows()) {
      throw Error(what + ": " + std::to_string(c.of_row.size()) + " classes for " +
                  std::to_string(panels[p].rows()) + " points");
    }
    if (c.names != style.classes[0].names) throw Error(what + ": panels with different classes");
    for (const int32_t k : c.of_row) {
      if (k < 0 || static_cast<size_t>(k) >= c.names.size()) {
        throw Error(what + ": a class index outside the " + std::to_string(c.names.size()) +
                    " class names");
      }
    }
  }
}

ScatterLayout scatter_layout(const std::vector<Points>& panels, const PlotStyle& style,
                             bool figure_title, const std::string& what) {
  if (panels.empty()) throw Error(what + ": no panels to plot");
  for (size_t i = 0; i < panels.size(); ++i) {
    check_points(panels[i], what + (panels.size() > 1 ? " panel " + std::to_string(i) : ""));
  }
  if (style.panel_px < 0 || style.panel_px > 4096) {
    throw UsageError(what + ": panel size " + std::to_string(style.panel_px) +
                     " px; expected 1 to 4096");
  }
  check_classes(panels, style, what);
  const Limits lim = style.limits ? *style.limits : point_limits(panels);
  if (!(lim.x_max > lim.x_min) || !(lim.y_max > lim.y_min)) {
    throw UsageError(what + ": axis limits must have min < max");
  }
  const int n = static_cast<int>(panels.size());
  ScatterLayout l;
  l.side = style.panel_px > 0 ? style.panel_px : n == 1 ? kSinglePanel : kStripPanel;
  l.dims = panels[0].cols();
  const int target = std::max(3, l.side / 70);
  l.x_axis = linear_axis(lim.x_min, lim.x_max, target);
  l.y_axis = linear_axis(lim.y_min, lim.y_max, target);
  const double label_w = max_text_width(l.y_axis.labels, kTickFont);
  const int left = static_cast<int>(std::ceil(label_w)) + kTickLen + 2 * kPad +
                   (style.y_label.empty() ? 0 : kLabelFont + kPad);
  const int top = (figure_title ? kFigureTitleRow : 0) + kTitleRow;
  const int bottom = kTickLen + kPad + kTickFont + kPad + (l.dims > 2 ? kTickFont + kPad : 0) +
                     (style.x_label.empty() ? 0 : kLabelFont + kPad);
  if (n > 1) {  // labels at a panel's edge would run into the neighbour's: leave them out
    const Viewport vp{0, 0, double(l.side), double(l.side), lim};
    for (size_t i = 0; i < l.x_axis.ticks.size(); ++i) {
      const double half = max_text_width({l.x_axis.labels[i]}, kTickFont) / 2;
      const double x = vp.px(l.x_axis.ticks[i]);
      if (x - half < -1 || x + half > l.side + 1) {
        l.x_axis.labels[i].clear();
      }
    }
  }
  l.figure.width = left + n * l.side + (n - 1) * kPanelGap + kRightMargin;
  if (!style.classes.empty()) {
    const std::vector<std::string>& names = style.classes[0].names;
    const size_t fit = static_cast<size_t>(std::max(1, (l.side - 4) / kLegendRow));
    if (names.size() <= fit) {
      l.legend = names;
    } else {
      l.legend.assign(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(fit - 1));
      l.legend.push_back("+" + std::to_string(names.size() - (fit - 1)) + " more");
    }
    l.legend_left = l.figure.width - kRightMargin + kPad;
    l.figure.width += kPad + 12 + static_cast<int>(std::ceil(max_text_width(l.legend, kLabelFont)));
  }
  l.figure.height = top + l.side + bottom;
  for (int i = 0; i < n; ++i) {
    l.figure.panels.push_back({double(left + i * (l.side + kPanelGap)), double(top), double(l.side),
                               double(l.side), lim});
  }
  return l;
}

void draw_scatter_figure(const std::string& path, const std::vector<Points>& panels,
                         const std::vector<std::string>& titles, const PlotStyle& style,
                         const std::string& figure_title) {
  const ImageFormat fmt = image_format_for(path);
  if (titles.size() != panels.size()) {
    throw Error(path + ": " + std::to_string(panels.size()) + " panels but " +
                std::to_string(titles.size()) + " titles");
  }
  const ScatterLayout l = scatter_layout(panels, style, !figure_title.empty(), path);
  const FigureLayout& fig = l.figure;
  AtomicFile out(path);  // fails now, not after drawing, when the folder is missing
  Canvas c(fmt, fig.width, fig.height);
  if (!figure_title.empty()) {
    c.text(fig.panels[0].left, kFigureTitleRow - 9, figure_title, kFigureTitleFont, 0.0,
           VAlign::kBaseline, true);
  }
  for (size_t i = 0; i < panels.size(); ++i) {
    const Viewport& vp = fig.panels[i];
    const PointLook look =
        point_look(panels[i].rows(), l.side, style.point_radius, style.point_alpha);
    c.axes_background(vp, l.x_axis.ticks, l.y_axis.ticks);
    if (style.classes.empty()) {
      c.scatter(vp, panels[i], look);
    } else {  // class by class, in class order (later classes on top)
      const PointClasses& pc = style.classes[i];
      std::vector<std::vector<Eigen::Index>> rows(pc.names.size());
      for (size_t r = 0; r < pc.of_row.size(); ++r) {
        rows[size_t(pc.of_row[r])].push_back(Eigen::Index(r));
      }
      for (size_t k = 0; k < rows.size(); ++k) {
        if (rows[k].empty()) continue;
        Points part(Eigen::Index(rows[k].size()), panels[i].cols());
        for (size_t r = 0; r < rows[k].size(); ++r)
          part.row(Eigen::Index(r)) = panels[i].row(rows[k][r]);
        PointLook class_look = look;
        const ClassColour cc = class_colour(static_cast<int>(k));
        class_look.colour = {cc.r / 255.0, cc.g / 255.0, cc.b / 255.0};
        c.scatter(vp, part, class_look);
      }
    }
    c.axes_frame(vp, l.x_axis, i == 0 ? l.y_axis : Axis{l.y_axis.ticks, {}});
    c.text(vp.left + vp.width / 2, vp.top - kPad - 2, titles[i], kTitleFont, 0.5,
           VAlign::kBaseline);
  }
  // Axis labels below the tick labels (x, under every panel) and left of them (y, first panel).
  const double x_label_y = fig.panels[0].top + fig.panels[0].height + kTickLen + kPad + kTickFont +
                           kPad + kLabelFont - 2;
  if (!style.x_label.empty()) {
    for (const Viewport& vp : fig.panels) {
      c.text(vp.left + vp.width / 2, x_label_y, style.x_label, kLabelFont, 0.5, VAlign::kBaseline,
             false, kMutedInk);
    }
  }
  if (!style.y_label.empty()) {
    c.vertical_text(kPad + kLabelFont - 2, fig.panels[0].top + fig.panels[0].height / 2,
                    style.y_label, kLabelFont, kMutedInk);
  }
  if (l.dims > 2) {
    c.text(fig.panels[0].left, fig.height - kPad, "dims 1\u20132 of " + std::to_string(l.dims),
           kTickFont, 0.0, VAlign::kBaseline, false, kMutedInk);
  }
  for (size_t k = 0; k < l.legend.size(); ++k) {
    const double y = fig.panels[0].top + kLegendRow / 2.0 + double(k) * kLegendRow;
    const bool more = k + 1 == l.legend.size() && l.legend.size() < style.classes[0].names.size();
    if (!more) {
      const ClassColour cc = class_colour(static_cast<int>(k));
      c.marker(l.legend_left + 4, y, 4, {cc.r / 255.0, cc.g / 255.0, cc.b / 255.0});
    }
    c.text(l.legend_left + 12, y, l.legend[k], kLabelFont, 0.0, VAlign::kMiddle, false,
           more ? kMutedInk : kInk);
  }
  out.write(c.finish());
  out.commit();
}

void check_series(const std::string& path, const std::vector<double>& x,
                  const std::vector<double>& y, const char* what) {
  if (x.size() != y.size()) {
    throw Error(path + ": " + std::to_string(x.size()) + " x values but " +
                std::to_string(y.size()) + " " + what + " values");
  }
  if (x.empty()) throw Error(path + ": no " + std::string(what) + " values to plot");
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      throw Error(path + ": " + what + " value " + std::to_string(i) + " is not finite");
    }
  }
}

// Ticks for a log10 axis whose limits are given in log10 units; labels are the plain values.
Axis log_axis(double log_lo, double log_hi) {
  Axis a;
  for (int k = static_cast<int>(std::ceil(log_lo - 1e-9)); k <= log_hi + 1e-9; ++k) {
    a.ticks.push_back(k);
  }
  if (a.ticks.size() > 8) {  // many decades: every other one
    std::vector<double> every_other;
    for (size_t i = 0; i < a.ticks.size(); i += 2) every_other.push_back(a.ticks[i]);
    a.ticks.swap(every_other);
  }
  // Less than two decades in view: 1, 2, 5 x 10^k, or every m x 10^k when even those are few.
  for (const std::vector<double>& mantissas :
       {std::vector<double>{1, 2, 5}, std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9}}) {
    if (a.ticks.size() >= 3) break;
    a.ticks.clear();
    for (int k = static_cast<int>(std::floor(log_lo)); k <= std::ceil(log_hi); ++k) {
      for (double m : mantissas) {
        const double v = std::log10(m) + k;
        if (v >= log_lo - 1e-9 && v <= log_hi + 1e-9) a.ticks.push_back(v);
      }
    }
  }
  for (double t : a.ticks) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", std::pow(10.0, t));
    a.labels.push_back(buf);
  }
  return a;
}

Limits padded(double x_lo, double x_hi, double y_lo, double y_hi, double pad_x, double pad_y) {
  auto widen = [](double& lo, double& hi, double pad) {
    if (!(hi > lo)) {  // a flat series: open up around the value
      const double h = std::max(std::abs(lo) * 0.1, 1e-12);
      lo -= h, hi += h;
    }
    const double p = pad * (hi - lo);
    lo -= p, hi += p;
  };
  widen(x_lo, x_hi, pad_x);
  widen(y_lo, y_hi, pad_y);
  return {x_lo, x_hi, y_lo, y_hi};
}

}  // namespace

ClassColour class_colour(int k) {
  static constexpr ClassColour kTab10[kClassPaletteSize] = {
      {0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28},
      {0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x7f, 0x7f, 0x7f},
      {0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf}};
  const int m = k % kClassPaletteSize;
  return kTab10[m < 0 ? m + kClassPaletteSize : m];
}

FigureLayout strip_layout(const std::vector<Points>& panels, const PlotStyle& style,
                          const std::string& figure_title) {
  return scatter_layout(panels, style, !figure_title.empty(), "plot").figure;
}

void plot_points(const std::string& path, const Points& x, const std::string& title,
                 const PlotStyle& style) {
  draw_scatter_figure(path, {x}, {title}, style, "");
}

void plot_strip(const std::string& path, const std::vector<Points>& panels,
                const std::vector<std::string>& titles, const PlotStyle& style,
                const std::string& figure_title) {
  draw_scatter_figure(path, panels, titles, style, figure_title);
}

namespace {

// At most `cap` rows of x, a random subset (fixed seed) when there are more: a file sorted by
// class must not show only its first classes.
Points subsample_rows(const Points& x, Eigen::Index cap, uint64_t seed) {
  if (x.rows() <= cap) return x;
  Rng rng(seed);
  std::vector<Eigen::Index> idx(static_cast<size_t>(x.rows()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<Eigen::Index>(i);
  for (Eigen::Index i = 0; i < cap; ++i) {
    std::swap(idx[size_t(i)], idx[size_t(i) + rng.below(static_cast<uint32_t>(x.rows() - i))]);
  }
  idx.resize(static_cast<size_t>(cap));
  return x(idx, Eigen::all);
}

// The 0.5% and 99.5% quantiles of a column of both sets, padded by 5%: one outlier does not
// squeeze the rest into a corner.
std::pair<double, double> column_range(const Points& a, const Points& b, Eigen::Index c) {
  std::vector<double> v;
  v.reserve(static_cast<size_t>(a.rows() + b.rows()));
  for (Eigen::Index i = 0; i < a.rows(); ++i) v.push_back(a(i, c));
  for (Eigen::Index i = 0; i < b.rows(); ++i) v.push_back(b(i, c));
  std::sort(v.begin(), v.end());
  double lo = v[static_cast<size_t>(0.005 * double(v.size() - 1))];
  double hi = v[static_cast<size_t>(0.995 * double(v.size() - 1))];
  if (!(hi > lo)) {
    lo = v.front();
    hi = v.back();
  }
  if (!(hi > lo)) {
    const double h = std::max(std::abs(lo) * 0.1, 0.5);
    lo -= h, hi += h;
  }
  const double p = 0.05 * (hi - lo);
  return {lo - p, hi + p};
}

// A density histogram of column c of x on `bins` bins over [lo, hi], as the corners of a step line.
void histogram_steps(const Points& x, Eigen::Index c, double lo, double hi, int bins,
                     std::vector<double>& sx, std::vector<double>& sy, double& peak) {
  std::vector<double> count(static_cast<size_t>(bins), 0.0);
  const double w = (hi - lo) / bins;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const int k = static_cast<int>(std::floor((x(i, c) - lo) / w));
    if (k >= 0 && k < bins) count[static_cast<size_t>(k)] += 1.0;
  }
  sx.clear();
  sy.clear();
  sx.push_back(lo);
  sy.push_back(0.0);
  for (int k = 0; k < bins; ++k) {
    const double d = count[static_cast<size_t>(k)] / (double(x.rows()) * w);
    peak = std::max(peak, d);
    sx.push_back(lo + k * w);
    sy.push_back(d);
    sx.push_back(lo + (k + 1) * w);
    sy.push_back(d);
  }
  sx.push_back(hi);
  sy.push_back(0.0);
}

}  // namespace

void plot_compare_grid(const std::string& path, const Points& data, const Points& samples,
                       const std::vector<int>& cols, const std::vector<std::string>& names,
                       const std::string& figure_title) {
  const ImageFormat fmt = image_format_for(path);
  if (data.rows() == 0 || samples.rows() == 0) throw Error(path + ": no points to plot");
  if (data.cols() != samples.cols()) {
    throw Error(path + ": the data has " + std::to_string(data.cols()) +
                " columns but the samples have " + std::to_string(samples.cols()));
  }
  if (!data.allFinite() || !samples.allFinite()) throw Error(path + ": a value is not finite");
  if (cols.empty() || cols.size() > 6) {
    throw UsageError("--columns: got " + std::to_string(cols.size()) + " columns; expected 1 to 6");
  }
  for (int c : cols) {
    if (c < 0 || c >= data.cols()) {
      throw UsageError("--columns: column " + std::to_string(c) +
                       " is out of range (the data has " + std::to_string(data.cols()) + ")");
    }
  }
  constexpr Rgb kSampleColour{0.90, 0.45, 0.10};
  constexpr int kCell = 150, kGap = 10, kLeft = 64, kBottom = 44, kBins = 30;
  const int k = static_cast<int>(cols.size());
  const int top = kFigureTitleRow + 20;
  const int width = kLeft + k * kCell + (k - 1) * kGap + kRightMargin;
  const int height = top + k * kCell + (k - 1) * kGap + kBottom;
  const Points d = subsample_rows(data, 3000, 1), s = subsample_rows(samples, 3000, 2);
  std::vector<std::pair<double, double>> range;
  for (int c : cols) range.push_back(column_range(data, samples, c));

  AtomicFile out(path);
  Canvas cv(fmt, width, height);
  cv.text(kLeft, kFigureTitleRow - 9, figure_title, kFigureTitleFont, 0.0, VAlign::kBaseline, true);
  const std::string legend_d = "data (" + std::to_string(data.rows()) + ")";
  cv.marker(kLeft + 4, kFigureTitleRow + 6, 4, kPointColor);
  cv.text(kLeft + 12, kFigureTitleRow + 6, legend_d, kLabelFont, 0.0, VAlign::kMiddle);
  const double legend_s = kLeft + 24 + max_text_width({legend_d}, kLabelFont);
  cv.marker(legend_s, kFigureTitleRow + 6, 4, kSampleColour);
  cv.text(legend_s + 8, kFigureTitleRow + 6, "samples (" + std::to_string(samples.rows()) + ")",
          kLabelFont, 0.0, VAlign::kMiddle);
  for (int r = 0; r < k; ++r) {
    for (int c = 0; c < k; ++c) {
      Viewport vp;
      vp.left = kLeft + c * (kCell + kGap);
      vp.top = top + r * (kCell + kGap);
      vp.width = vp.height = kCell;
      const auto [x_lo, x_hi] = range[size_t(c)];
      const Axis x_axis = linear_axis(x_lo, x_hi, 3);
      if (r == c) {
        std::vector<double> dx, dy, sx, sy;
        double peak = 0.0;
        histogram_steps(data, cols[size_t(c)], x_lo, x_hi, kBins, dx, dy, peak);
        histogram_steps(samples, cols[size_t(c)], x_lo, x_hi, kBins, sx, sy, peak);
        vp.limits = {x_lo, x_hi, 0.0, std::max(peak, 1e-12) * 1.1};
        cv.axes_background(vp, x_axis.ticks, {});
        cv.line(vp, dx, dy, kPointColor);
        cv.line(vp, sx, sy, kSampleColour);
        cv.axes_frame(vp, r == k - 1 ? x_axis : Axis{x_axis.ticks, {}}, Axis{});
      } else {
        const auto [y_lo, y_hi] = range[size_t(r)];
        const Axis y_axis = linear_axis(y_lo, y_hi, 3);
        vp.limits = {x_lo, x_hi, y_lo, y_hi};
        Points dp(d.rows(), 2), sp(s.rows(), 2);
        dp << d.col(cols[size_t(c)]), d.col(cols[size_t(r)]);
        sp << s.col(cols[size_t(c)]), s.col(cols[size_t(r)]);
        cv.axes_background(vp, x_axis.ticks, y_axis.ticks);
        // The samples first, the data on top, each sized for its own count: 36 held-out rows
        // must stay visible over 3,000 samples.
        PointLook sample_look = point_look(sp.rows(), kCell, 0.0, 0.0);
        sample_look.colour = kSampleColour;
        cv.scatter(vp, sp, sample_look);
        cv.scatter(vp, dp, point_look(dp.rows(), kCell, 0.0, 0.0));
        cv.axes_frame(vp, r == k - 1 ? x_axis : Axis{x_axis.ticks, {}},
                      c == 0 ? y_axis : Axis{y_axis.ticks, {}});
      }
      const std::string& name = names.at(size_t(cols[size_t(c)]));
      if (r == k - 1) {
        cv.text(vp.left + kCell / 2.0, height - 8, name, kLabelFont, 0.5, VAlign::kBaseline, false,
                kMutedInk);
      }
      if (c == 0) {
        cv.vertical_text(
            14, vp.top + kCell / 2.0,
            r == 0 ? names.at(size_t(cols[0])) + " (density)" : names.at(size_t(cols[size_t(r)])),
            kLabelFont, kMutedInk);
      }
    }
  }
  out.write(cv.finish());
  out.commit();
}

void plot_schedule(const std::string& path, const Schedule& s, const std::string& figure_title) {
  const ImageFormat fmt = image_format_for(path);
  const int T = s.T();
  if (T < 1 || s.sqrt_alpha_bar.size() != s.beta.size()) {
    throw Error(path + ": schedule has " + std::to_string(s.beta.size()) + " betas and " +
                std::to_string(s.sqrt_alpha_bar.size()) + " sqrt(alpha_bar) values");
  }
  std::vector<double> t(T);
  for (int i = 0; i < T; ++i) t[i] = i;
  check_series(path, t, s.beta, "beta");
  check_series(path, t, s.sqrt_alpha_bar, "sqrt(alpha_bar)");
  AtomicFile out(path);

  const double beta_max = *std::max_element(s.beta.begin(), s.beta.end());
  const Limits beta_lim = padded(0, T - 1, 0.0, std::max(beta_max, 1e-12), 0.02, 0.05);
  const Limits sab_lim{beta_lim.x_min, beta_lim.x_max, -0.03, 1.05};
  const Axis x_axis = linear_axis(beta_lim.x_min, beta_lim.x_max, 5);
  const Axis beta_axis = linear_axis(0.0, beta_lim.y_max, 5);
  const Axis sab_axis = linear_axis(0.0, 1.0, 5);

  const int w = kLinePanelW, h = kLinePanelH;
  const int left1 = static_cast<int>(std::ceil(max_text_width(beta_axis.labels, kTickFont))) +
                    kTickLen + 2 * kPad;
  const int left2 =
      static_cast<int>(std::ceil(max_text_width(sab_axis.labels, kTickFont))) + kTickLen + 2 * kPad;
  const int top = (figure_title.empty() ? 0 : kFigureTitleRow) + kTitleRow;
  const int bottom = kTickLen + kPad + kTickFont + kPad + kLabelFont + kPad;
  const int width = left1 + w + kPanelGap + left2 + w + kRightMargin;
  const int height = top + h + bottom;
  const Viewport vb{double(left1), double(top), double(w), double(h), beta_lim};
  const Viewport vs{double(left1 + w + kPanelGap + left2), double(top), double(w), double(h),
                    sab_lim};

  Canvas c(fmt, width, height);
  if (!figure_title.empty()) {
    c.text(vb.left, kFigureTitleRow - 9, figure_title, kFigureTitleFont, 0.0, VAlign::kBaseline,
           true);
  }
  const double terminal = s.sqrt_alpha_bar.back();
  const struct {
    const Viewport& vp;
    const Axis& y;
    const std::vector<double>& v;
    std::string title;
  } panels[2] = {
      {vb, beta_axis, s.beta, "\u03b2\u209c  (noise variance of step t)"},
      {vs, sab_axis, s.sqrt_alpha_bar, "\u221a\u1fb1\u209c  (signal left in x\u209c)"},
  };
  for (const auto& p : panels) {
    c.axes_background(p.vp, x_axis.ticks, p.y.ticks);
    c.line(p.vp, t, p.v);
    c.axes_frame(p.vp, x_axis, p.y);
    c.text(p.vp.left + p.vp.width / 2, p.vp.top - kPad - 2, p.title, kTitleFont, 0.5,
           VAlign::kBaseline);
    c.text(p.vp.left + p.vp.width / 2, height - kPad, "t", kLabelFont, 0.5, VAlign::kBaseline,
           false, kMutedInk);
  }
  // Mark sqrt(alpha_bar) at the last step: far from 0 means x_T still holds data, not noise. The
  // label goes in a corner the decreasing curve leaves free.
  c.marker(vs.px(T - 1), vs.py(terminal), 3.5, kAccent);
  char buf[64];
  std::snprintf(buf, sizeof buf, "\u221a\u1fb1 = %.3g at t=%d", terminal, T - 1);
  const double label_y = terminal < 0.5 ? vs.top + kPad + kTickFont : vs.top + h - kPad - 9;
  c.text(vs.left + w - kPad - 2, label_y, buf, kTickFont + 1, 1.0, VAlign::kBaseline, false,
         kAccent);
  out.write(c.finish());
  out.commit();
}

void plot_loss(const std::string& path, const std::vector<double>& epochs,
               const std::vector<double>& loss, bool log_y, const std::string& title) {
  const ImageFormat fmt = image_format_for(path);
  check_series(path, epochs, loss, "loss");
  std::vector<double> y = loss;
  if (log_y) {
    for (size_t i = 0; i < y.size(); ++i) {
      if (y[i] <= 0.0) {
        throw Error(path + ": loss " + std::to_string(y[i]) + " at epoch " +
                    tick_label(epochs[i], 1.0) + " cannot be drawn on a log scale");
      }
      y[i] = std::log10(y[i]);
    }
  }
  AtomicFile out(path);
  const auto [x_lo, x_hi] = std::minmax_element(epochs.begin(), epochs.end());
  const auto [y_lo, y_hi] = std::minmax_element(y.begin(), y.end());
  const Limits lim = padded(*x_lo, *x_hi, *y_lo, *y_hi, 0.02, 0.06);
  const Axis x_axis = linear_axis(lim.x_min, lim.x_max, 5);
  const Axis y_axis = log_y ? log_axis(lim.y_min, lim.y_max) : linear_axis(lim.y_min, lim.y_max, 5);

  const int w = kLossPanelW, h = kLossPanelH;
  const int left = static_cast<int>(std::ceil(max_text_width(y_axis.labels, kTickFont))) +
                   kTickLen + 2 * kPad + kLabelFont + kPad;
  const int top = kTitleRow;
  const int bottom = kTickLen + kPad + kTickFont + kPad + kLabelFont + kPad;
  const int width = left + w + kRightMargin, height = top + h + bottom;
  const Viewport vp{double(left), double(top), double(w), double(h), lim};

  Canvas c(fmt, width, height);
  c.axes_background(vp, x_axis.ticks, y_axis.ticks);
  c.line(vp, epochs, y);
  if (epochs.size() == 1) c.marker(vp.px(epochs[0]), vp.py(y[0]), 3.0, kPointColor);
  c.axes_frame(vp, x_axis, y_axis);
  c.text(vp.left + w / 2.0, vp.top - kPad - 2, title.empty() ? "training loss" : title, kTitleFont,
         0.5, VAlign::kBaseline);
  c.text(vp.left + w / 2.0, height - kPad, "epoch", kLabelFont, 0.5, VAlign::kBaseline, false,
         kMutedInk);
  c.vertical_text(kPad + kLabelFont - 2, vp.top + h / 2.0,
                  log_y ? "mean loss (log scale)" : "mean loss", kLabelFont, kMutedInk);
  out.write(c.finish());
  out.commit();
}

// ---------------------------------------------------------------------------------------------
// Training log.

namespace {

std::vector<std::string_view> split_csv(std::string_view line) {
  std::vector<std::string_view> cells;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    std::string_view cell =
        line.substr(start, comma == std::string_view::npos ? comma : comma - start);
    while (!cell.empty() && (cell.front() == ' ' || cell.front() == '\t')) cell.remove_prefix(1);
    while (!cell.empty() && (cell.back() == ' ' || cell.back() == '\t' || cell.back() == '\r')) {
      cell.remove_suffix(1);
    }
    cells.push_back(cell);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return cells;
}

}  // namespace

LossCurve read_loss_log(const std::string& path) {
  const std::string text = read_file(path);
  LossCurve curve;
  int epoch_col = -1, loss_col = -1;
  size_t n_cols = 0;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    const auto cells = split_csv(line);
    if ((cells.size() == 1 && cells[0].empty()) ||
        (!cells.empty() && !cells[0].empty() && cells[0].front() == '#')) {
      continue;
    }
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (epoch_col < 0) {
      for (size_t i = 0; i < cells.size(); ++i) {
        if (cells[i] == "epoch") epoch_col = static_cast<int>(i);
        if (cells[i] == "mean_loss") loss_col = static_cast<int>(i);
      }
      if (epoch_col < 0 || loss_col < 0) {
        throw Error(where + "expected a header with columns 'epoch' and 'mean_loss'");
      }
      n_cols = cells.size();
      continue;
    }
    if (cells.size() != n_cols) {
      throw Error(where + std::to_string(cells.size()) + " fields; the header has " +
                  std::to_string(n_cols));
    }
    double v[2];
    const int cols[2] = {epoch_col, loss_col};
    for (int k = 0; k < 2; ++k) {
      const std::string_view cell = cells[cols[k]];
      const auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v[k]);
      if (ec != std::errc() || p != cell.data() + cell.size() || !std::isfinite(v[k])) {
        throw Error(where + (k == 0 ? "epoch" : "mean_loss") + " '" + std::string(cell) +
                    "' is not a finite number");
      }
    }
    curve.epochs.push_back(v[0]);
    curve.mean_loss.push_back(v[1]);
  }
  if (epoch_col < 0) throw Error(path + ": empty training log; expected a header and rows");
  if (curve.epochs.empty()) throw Error(path + ": training log has a header but no rows");
  return curve;
}

}  // namespace diffuse
