// Figures and animations: point clouds, strips of panels on shared axes, schedule and loss curves
// (PNG or SVG via cairo) and looping GIFs (giflib). Knows nothing of models or samplers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "diffuse/schedule.h"
#include "diffuse/tensor.h"

namespace diffuse {

// Every figure has one style: white background, square scatter panels with equal aspect, light
// grid, ticks at 1, 2, 5 x 10^k, DejaVu Sans text. Points with D > 2 columns are drawn by their
// first two columns, and the figure says so under the first panel ("dims 1-2 of D").
// Every function writes its file atomically and throws UsageError for a path whose extension is not
// allowed, Error for a missing folder, an empty or non-finite point set, or mismatched arguments.
// SVG keeps every point as its own vector path (about 250 bytes a point, so 2.5 MB for 10,000):
// prefer PNG for large clouds, SVG for curves.

enum class ImageFormat { kPng, kSvg };

// From the output's extension (.png or .svg, case-insensitive); throws UsageError naming the path
// and the allowed extensions otherwise.
ImageFormat image_format_for(const std::string& path);

// Data-space rectangle shown by a panel.
struct Limits {
  double x_min = 0.0, x_max = 1.0;
  double y_min = 0.0, y_max = 1.0;
};

// Maps data coordinates into a pixel rectangle (left, top, width, height; pixel y grows downwards,
// data y grows upwards): (x_min, y_max) lands on the top-left corner.
struct Viewport {
  double left = 0.0, top = 0.0, width = 1.0, height = 1.0;
  Limits limits;

  double px(double x) const {
    return left + (x - limits.x_min) / (limits.x_max - limits.x_min) * width;
  }
  double py(double y) const {
    return top + (limits.y_max - y) / (limits.y_max - limits.y_min) * height;
  }
};

// Square limits (equal span in x and y) around the first two columns of every set, padded by
// `pad` times the span on each side. Throws Error if there are no points or a value is not finite.
Limits point_limits(const std::vector<Points>& sets, double pad = 0.05);

// Tick values in [lo, hi] spaced 1, 2 or 5 x 10^k, about `target` (>= 2) of them; {lo} if hi <= lo.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);

// Points coloured by class (a labelled file): point i in class_colour(of_row[i]).
struct PointClasses {
  std::vector<int32_t> of_row;     // per point, an index into names
  std::vector<std::string> names;  // the class names, in their order (labels.h)
};

// The fixed class palette: kClassPaletteSize distinct colours (matplotlib's tab10: blue, orange,
// green, red, purple, brown, pink, grey, olive, cyan); class k gets entry k mod kClassPaletteSize,
// so classes 10 apart share a colour.
inline constexpr int kClassPaletteSize = 10;
struct ClassColour {
  uint8_t r = 0, g = 0, b = 0;
};
ClassColour class_colour(int k);

struct PlotStyle {
  int panel_px = 0;              // side of each square plot area; 0: 320 alone, 180 each in a strip
  double point_radius = 0.0;     // pixels; 0: chosen from the number of points and the panel size
  double point_alpha = 0.0;      // opacity of one point; 0: chosen from the number of points
  std::optional<Limits> limits;  // fixed axes; default point_limits() of everything drawn
  // Axis labels (e.g. a CSV's column names): x under every panel, y beside the first; empty: none.
  std::string x_label, y_label;
  // Per panel, its points' classes (empty: one colour for every point). The panels share the
  // class names; a legend right of the last panel lists them (as many as fit its height, then
  // "+K more"). Error for a count other than the panels' or points', or an index outside names.
  std::vector<PointClasses> classes;
};

// One scatter panel of x (N, D).
void plot_points(const std::string& path, const Points& x, const std::string& title,
                 const PlotStyle& style = {});

// A row of scatter panels on shared axes, panels[i] titled titles[i] (e.g. "t=10"); y tick labels
// on the first panel only. figure_title, when not empty, goes above the row.
void plot_strip(const std::string& path, const std::vector<Points>& panels,
                const std::vector<std::string>& titles, const PlotStyle& style = {},
                const std::string& figure_title = "");

// Axis labels from the first two column names (none when there are fewer).
PlotStyle axis_labels(const std::vector<std::string>& columns);

// A reverse process's strip: `panels` of the recorded states (states[i] at timestep t[i]) spread
// over them, the first (x_T) and the last (x_0) kept, titled "t=..", axes labelled by the first
// two of columns (when given).
void plot_reverse_strip(const std::string& path, const std::vector<Points>& states,
                        const std::vector<int>& t, int panels, const std::string& figure_title,
                        const std::vector<std::string>& columns = {});

// Where plot_points / plot_strip draw: the image size and each panel's viewport (validates as they
// do, so it throws the same errors).
struct FigureLayout {
  int width = 0, height = 0;
  std::vector<Viewport> panels;
};
FigureLayout strip_layout(const std::vector<Points>& panels, const PlotStyle& style = {},
                          const std::string& figure_title = "");

// Data against samples on a few columns (1 to 6): a k x k grid; on the diagonal the histograms of
// column cols[i] of both (densities on shared bins: data blue, samples orange), off it the scatter
// of columns (cols[j], cols[i]), data in blue over the samples in orange (at most 3,000 random
// rows of each). names are all the columns' names. Throws Error for mismatched columns, an empty
// or non-finite set, or a column index out of range.
void plot_compare_grid(const std::string& path, const Points& data, const Points& samples,
                       const std::vector<int>& cols, const std::vector<std::string>& names,
                       const std::string& figure_title);

// beta_t over t, and sqrt(alpha_bar_t) over t beside it on [0, 1] with its terminal value marked,
// so that a schedule that leaves signal in x_T is visible at a glance.
void plot_schedule(const std::string& path, const Schedule& schedule,
                   const std::string& figure_title = "");

// Loss against epoch as a line; log_y draws the loss on a log10 axis (all values must be > 0).
void plot_loss(const std::string& path, const std::vector<double>& epochs,
               const std::vector<double>& loss, bool log_y, const std::string& title = "");

// The epoch and mean_loss columns of a training log CSV (header required, other columns ignored).
struct LossCurve {
  std::vector<double> epochs, mean_loss;
};
// Throws Error "PATH:LINE: ..." on a missing column, a non-number or an empty log.
LossCurve read_loss_log(const std::string& path);

// Steps for a forward strip: t = floor(i (T-1) / (panels-1)) for i in [0, panels), so that the
// strip runs from x_0's first noising (t = 0) to x_T (t = T-1): 0, 11, 22, ..., 99 for T = 100.
std::vector<int> strip_steps(int T, int panels = 10);
// Samples x_t ~ q(x_t | x0) = N(sqrt(alpha_bar_t) x0, (1 - alpha_bar_t) I) at each step (Ho et al.
// 2020, Eq. 4), fresh noise per step from Rng(seed): the panels of a forward strip. x0 is (N, D).
// Throws UsageError for a step outside [0, T).
std::vector<Points> forward_samples(const Points& x0, const Schedule& schedule,
                                    const std::vector<int>& steps, uint64_t seed);
// `panels` indices spread evenly over [0, count), first and last included (count >= 1); picks
// the panels of a reverse strip from a recorded trajectory. Fewer when count < panels.
std::vector<int> spread_indices(int count, int panels = 10);

// The longest delay a GIF frame can hold: 65535 centiseconds.
inline constexpr int kGifMaxDelayMs = 655350;

struct GifOptions {
  int size_px = 360;  // the square image's side
  // GIF stores each delay in 16-bit centiseconds: 20 .. kGifMaxDelayMs, else UsageError.
  int frame_ms = 40;             // delay of each frame but the last (GIF stores centiseconds)
  int hold_last_ms = 1500;       // delay of the last frame before the loop restarts
  double point_radius = 0.0;     // 0: as PlotStyle
  double point_alpha = 0.0;      // 0: as PlotStyle
  std::optional<Limits> limits;  // default: point_limits() of all frames
  // The points' classes, the same rows in every frame (a trajectory of labelled samples): each
  // class in class_colour(), a legend right of the square (the image grows wider by its width),
  // and a 64-colour palette instead of 16. Empty of_row: one colour.
  PointClasses classes;
};

// Where animate_gif draws: a size_px square image with one panel (throws as animate_gif does).
FigureLayout animation_layout(const std::vector<Points>& frames, const GifOptions& options = {});

// An animated GIF that loops forever: frame i shows frames[i] titled labels[i]. 16 colours (64
// with classes); each frame stores only the rectangle that changed. path must end in .gif (else
// UsageError); Error for classes whose count is not every frame's rows or an index out of range.
void animate_gif(const std::string& path, const std::vector<Points>& frames,
                 const std::vector<std::string>& labels, const GifOptions& options = {});

}  // namespace diffuse
