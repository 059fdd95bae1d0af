// Animated GIFs of point clouds: frames drawn with the figure canvas, mapped to a 16-colour
// palette (64 with class colours) and written with giflib. Not a general GIF encoder: giflib does
// the LZW and the format.
#include <gif_lib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/plot.h"
#include "viz/plot_canvas.h"

namespace diffuse {

using namespace plot_detail;

namespace {

// A palette's last entry is the transparent slot: "unchanged since the previous frame".
using Palette = std::vector<Rgb>;
int transparent_index(const Palette& p) { return static_cast<int>(p.size()) - 1; }

// 16 colours: white, 8 shades from white to the point colour (point density and antialiasing), 6
// greys (grid, frame, text), and the transparent slot. With `classes` > 0 classes, 64: white, 4
// shades of each class colour (at most kClassPaletteSize), the greys, white padding, transparent.
Palette gif_palette(int classes = 0) {
  const double greys[6] = {kGrid.r, 0.75, 0.56, kMutedInk.r, kFrame.r, kInk.r};
  const auto shade = [](Rgb c, double f) -> Rgb {
    return {1 + f * (c.r - 1), 1 + f * (c.g - 1), 1 + f * (c.b - 1)};
  };
  Palette p;
  p.push_back(kWhite);
  if (classes == 0) {
    for (int k = 1; k <= 8; ++k) p.push_back(shade(kPointColor, k / 8.0));
  } else {
    for (int c = 0; c < std::min(classes, kClassPaletteSize); ++c) {
      const ClassColour cc = class_colour(c);
      for (int k = 1; k <= 4; ++k)
        p.push_back(shade({cc.r / 255.0, cc.g / 255.0, cc.b / 255.0}, k / 4.0));
    }
  }
  for (const double g : greys) p.push_back({g, g, g});
  const size_t size = classes == 0 ? 16 : 64;
  while (p.size() < size) p.push_back(kWhite);  // padding (and the transparent slot)
  return p;
}

// Nearest palette entry (squared RGB distance) of every pixel of an RGB24 raster.
void quantize(const unsigned char* pixels, int stride, int w, int h, const Palette& palette,
              std::vector<uint8_t>& out) {
  const int colours = static_cast<int>(palette.size());
  std::vector<std::array<int, 3>> pal(static_cast<size_t>(colours - 1));
  for (int k = 0; k < colours - 1; ++k) {
    pal[k] = {static_cast<int>(std::lround(palette[k].r * 255)),
              static_cast<int>(std::lround(palette[k].g * 255)),
              static_cast<int>(std::lround(palette[k].b * 255))};
  }
  uint32_t last_px = 0xffffffff;
  uint8_t last_idx = 0;
  for (int y = 0; y < h; ++y) {
    const auto* row = reinterpret_cast<const uint32_t*>(pixels + size_t(y) * stride);
    for (int x = 0; x < w; ++x) {
      const uint32_t px = row[x] & 0xffffff;
      if (px != last_px) {
        const int r = (px >> 16) & 0xff, g = (px >> 8) & 0xff, b = px & 0xff;
        int best = 0, best_d = 1 << 30;
        for (int k = 0; k < colours - 1; ++k) {
          const int dr = r - pal[k][0], dg = g - pal[k][1], db = b - pal[k][2];
          const int d = dr * dr + dg * dg + db * db;
          if (d < best_d) best_d = d, best = k;
        }
        last_px = px, last_idx = static_cast<uint8_t>(best);
      }
      out[size_t(y) * w + x] = last_idx;
    }
  }
}

int append_gif_bytes(GifFileType* gif, const GifByteType* data, int length) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), length);
  return length;
}

// giflib's sequential writer into a string; frees the handle on every path.
class GifWriter {
 public:
  GifWriter(const std::string& path, int w, int h, const Palette& palette)
      : path_(path), transparent_(transparent_index(palette)) {
    int err = 0;
    gif_ = EGifOpen(&bytes_, append_gif_bytes, &err);
    if (gif_ == nullptr) fail("EGifOpen", err);
    EGifSetGifVersion(gif_, true);
    const int n = static_cast<int>(palette.size());
    std::vector<GifColorType> colours(static_cast<size_t>(n));
    for (int k = 0; k < n; ++k) {
      colours[k] = {static_cast<GifByteType>(std::lround(palette[k].r * 255)),
                    static_cast<GifByteType>(std::lround(palette[k].g * 255)),
                    static_cast<GifByteType>(std::lround(palette[k].b * 255))};
    }
    ColorMapObject* map = GifMakeMapObject(n, colours.data());
    if (map == nullptr) throw Error(path_ + ": cannot write GIF: out of memory");
    const int rc = EGifPutScreenDesc(gif_, w, h, 8, 0, map);
    GifFreeMapObject(map);  // giflib keeps its own copy
    if (rc != GIF_OK) fail("screen descriptor");
    // NETSCAPE2.0 application extension: loop count 0 = loop forever.
    static const GifByteType kLoop[3] = {1, 0, 0};
    if (EGifPutExtensionLeader(gif_, APPLICATION_EXT_FUNC_CODE) != GIF_OK ||
        EGifPutExtensionBlock(gif_, 11, "NETSCAPE2.0") != GIF_OK ||
        EGifPutExtensionBlock(gif_, 3, kLoop) != GIF_OK ||
        EGifPutExtensionTrailer(gif_) != GIF_OK) {
      fail("loop extension");
    }
  }
  ~GifWriter() {
    if (gif_ != nullptr) EGifCloseFile(gif_, nullptr);
  }
  GifWriter(const GifWriter&) = delete;
  GifWriter& operator=(const GifWriter&) = delete;

  // idx is (h, w) row-major palette indices of the rectangle at (x, y).
  void frame(int x, int y, int w, int h, std::vector<uint8_t>& idx, int delay_cs,
             bool transparent) {
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSE_DO_NOT;  // each frame paints over the previous one
    gcb.UserInputFlag = false;
    gcb.DelayTime = delay_cs;
    gcb.TransparentColor = transparent ? transparent_ : NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    const size_t n = EGifGCBToExtension(&gcb, ext);
    if (EGifPutExtension(gif_, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(n), ext) != GIF_OK ||
        EGifPutImageDesc(gif_, x, y, w, h, false, nullptr) != GIF_OK) {
      fail("frame header");
    }
    for (int r = 0; r < h; ++r) {
      if (EGifPutLine(gif_, idx.data() + size_t(r) * w, w) != GIF_OK) fail("frame pixels");
    }
  }

  std::string finish() {
    int err = 0;
    const int rc = EGifCloseFile(gif_, &err);
    gif_ = nullptr;
    if (rc != GIF_OK) fail("close", err);
    return std::move(bytes_);
  }

 private:
  [[noreturn]] void fail(const char* what, int err = 0) {
    if (err == 0 && gif_ != nullptr) err = gif_->Error;
    const char* msg = GifErrorString(err);
    throw Error(path_ + ": cannot write GIF (" + what + "): " + (msg ? msg : "unknown error"));
  }

  std::string path_;
  int transparent_;
  std::string bytes_;
  GifFileType* gif_ = nullptr;
};

bool ends_with_gif(const std::string& path) {
  if (path.size() < 4) return false;
  std::string ext = path.substr(path.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".gif";
}

}  // namespace

namespace {

struct AnimationLayout {
  FigureLayout figure;
  Axis x_axis, y_axis;
  std::vector<std::string> legend;  // class names shown right of the square ("+K more" last)
  double legend_left = 0;
};

constexpr int kGifLegendRow = 15;

AnimationLayout layout_animation(const std::vector<Points>& frames, const GifOptions& o,
                                 const std::string& what) {
  if (o.size_px < 120 || o.size_px > 2048) {
    throw UsageError(what + ": GIF size " + std::to_string(o.size_px) +
                     " px; expected 120 to 2048");
  }
  if (o.frame_ms < 20 || o.hold_last_ms < 0 || o.frame_ms > kGifMaxDelayMs ||
      o.hold_last_ms > kGifMaxDelayMs) {
    throw UsageError(what + ": GIF frame delay " + std::to_string(o.frame_ms) + " ms and hold " +
                     std::to_string(o.hold_last_ms) + " ms; expected a delay of 20 to " +
                     std::to_string(kGifMaxDelayMs) + " ms and a hold of 0 to " +
                     std::to_string(kGifMaxDelayMs) + " (a GIF stores 16-bit centiseconds)");
  }
  if (frames.empty()) throw Error(what + ": no frames to animate");
  for (size_t i = 0; i < frames.size(); ++i) {
    check_points(frames[i], what + " frame " + std::to_string(i));
  }
  const PointClasses& pc = o.classes;
  if (!pc.of_row.empty() || !pc.names.empty()) {
    for (size_t i = 0; i < frames.size(); ++i) {
      if (static_cast<Eigen::Index>(pc.of_row.size()) != frames[i].rows()) {
        throw Error(what + ": " + std::to_string(pc.of_row.size()) + " classes for frame " +
                    std::to_string(i) + "'s " + std::to_string(frames[i].rows()) + " points");
      }
    }
    for (const int32_t k : pc.of_row) {
      if (k < 0 || static_cast<size_t>(k) >= pc.names.size()) {
        throw Error(what + ": a class index outside the " + std::to_string(pc.names.size()) +
                    " class names");
      }
    }
  }
  const Limits lim = o.limits ? *o.limits : point_limits(frames);
  if (!(lim.x_max > lim.x_min) || !(lim.y_max > lim.y_min)) {
    throw UsageError(what + ": axis limits must have min < max");
  }
  // One square panel filling the image; every frame shares axes, so only points and title change.
  AnimationLayout l;
  const int size = o.size_px;
  const int target = std::max(3, size / 80);
  l.x_axis = linear_axis(lim.x_min, lim.x_max, target);
  l.y_axis = linear_axis(lim.y_min, lim.y_max, target);
  const int left =
      static_cast<int>(std::ceil(max_text_width(l.y_axis.labels, kTickFont))) + kTickLen + 2 * kPad;
  const int top = kTitleRow, bottom = kTickLen + kPad + kTickFont + kPad;
  const int side = std::min(size - left - kRightMargin, size - top - bottom);
  const int x0 = left + (size - left - kRightMargin - side) / 2;
  l.figure.width = l.figure.height = size;
  l.figure.panels.push_back({double(x0), double(top), double(side), double(side), lim});
  if (!pc.of_row.empty()) {
    const size_t fit = static_cast<size_t>(std::max(1, (side - 4) / kGifLegendRow));
    if (pc.names.size() <= fit) {
      l.legend = pc.names;
    } else {
      l.legend.assign(pc.names.begin(), pc.names.begin() + static_cast<std::ptrdiff_t>(fit - 1));
      l.legend.push_back("+" + std::to_string(pc.names.size() - (fit - 1)) + " more");
    }
    l.legend_left = size - kRightMargin + kPad;
    l.figure.width += kPad + 12 + static_cast<int>(std::ceil(max_text_width(l.legend, kTickFont)));
  }
  return l;
}

}  // namespace

FigureLayout animation_layout(const std::vector<Points>& frames, const GifOptions& options) {
  return layout_animation(frames, options, "animation").figure;
}

void animate_gif(const std::string& path, const std::vector<Points>& frames,
                 const std::vector<std::string>& labels, const GifOptions& o) {
  if (!ends_with_gif(path)) {
    throw UsageError(path + ": unknown animation type; expected a .gif file");
  }
  if (labels.size() != frames.size()) {
    throw Error(path + ": " + std::to_string(frames.size()) + " frames but " +
                std::to_string(labels.size()) + " labels");
  }
  const AnimationLayout l = layout_animation(frames, o, path);
  const Viewport& vp = l.figure.panels[0];
  const int size = o.size_px;
  const int width = l.figure.width;  // size, plus the legend with classes
  const int side = static_cast<int>(vp.width);
  const Axis& x_axis = l.x_axis;
  const Axis& y_axis = l.y_axis;
  const bool note = frames[0].cols() > 2;
  const bool coloured = !o.classes.of_row.empty();
  AtomicFile out(path);  // fails now, not after drawing, when the folder is missing

  const Palette palette = gif_palette(coloured ? static_cast<int>(o.classes.names.size()) : 0);
  const int transparent = transparent_index(palette);
  GifWriter gif(path, width, size, palette);
  Canvas c(Canvas::Target::kRaster, width, size);
  std::vector<uint8_t> shown(size_t(width) * size), cur(shown.size()), rect;
  // With classes: each class's rows, drawn class by class in its colour.
  std::vector<std::vector<Eigen::Index>> class_rows(coloured ? o.classes.names.size() : 0);
  for (size_t r = 0; coloured && r < o.classes.of_row.size(); ++r) {
    class_rows[size_t(o.classes.of_row[r])].push_back(Eigen::Index(r));
  }
  const int delay = std::max(2, static_cast<int>(std::lround(o.frame_ms / 10.0)));
  const int hold = std::max(delay, static_cast<int>(std::lround(o.hold_last_ms / 10.0)));
  for (size_t f = 0; f < frames.size(); ++f) {
    const PointLook look = point_look(frames[f].rows(), side, o.point_radius, o.point_alpha);
    c.clear();
    c.axes_background(vp, x_axis.ticks, y_axis.ticks);
    if (!coloured) {
      c.scatter(vp, frames[f], look);
    } else {
      for (size_t k = 0; k < class_rows.size(); ++k) {
        if (class_rows[k].empty()) continue;
        Points part(Eigen::Index(class_rows[k].size()), frames[f].cols());
        for (size_t r = 0; r < class_rows[k].size(); ++r) {
          part.row(Eigen::Index(r)) = frames[f].row(class_rows[k][r]);
        }
        PointLook class_look = look;
        const ClassColour cc = class_colour(static_cast<int>(k));
        class_look.colour = {cc.r / 255.0, cc.g / 255.0, cc.b / 255.0};
        c.scatter(vp, part, class_look);
      }
      for (size_t k = 0; k < l.legend.size(); ++k) {
        const double y = vp.top + kGifLegendRow / 2.0 + double(k) * kGifLegendRow;
        const bool more = k + 1 == l.legend.size() && l.legend.size() < o.classes.names.size();
        if (!more) {
          const ClassColour cc = class_colour(static_cast<int>(k));
          c.marker(l.legend_left + 4, y, 4, {cc.r / 255.0, cc.g / 255.0, cc.b / 255.0});
        }
        c.text(l.legend_left + 12, y, l.legend[k], kTickFont, 0.0, VAlign::kMiddle, false,
               more ? kMutedInk : kInk);
      }
    }
    c.axes_frame(vp, x_axis, y_axis);
    c.text(vp.left + side / 2.0, vp.top - kPad - 2, labels[f], kTitleFont, 0.5, VAlign::kBaseline);
    if (note) {
      c.text(size - kPad, size - kPad, "dims 1\u20132 of " + std::to_string(frames[f].cols()),
             kTickFont, 1.0, VAlign::kBaseline, false, kMutedInk);
    }
    quantize(c.pixels(), c.stride(), width, size, palette, cur);
    const int d = f + 1 == frames.size() ? hold : delay;
    if (f == 0) {
      gif.frame(0, 0, width, size, cur, d, false);
    } else {
      // Store only the bounding box of changed pixels; unchanged ones inside it are transparent,
      // which leaves long runs for LZW.
      int bx0 = width, by0 = size, bx1 = -1, by1 = -1;
      for (int y = 0; y < size; ++y) {
        for (int x = 0; x < width; ++x) {
          if (cur[size_t(y) * width + x] != shown[size_t(y) * width + x]) {
            bx0 = std::min(bx0, x), bx1 = std::max(bx1, x);
            by0 = std::min(by0, y), by1 = std::max(by1, y);
          }
        }
      }
      if (bx1 < 0) bx0 = bx1 = by0 = by1 = 0;  // nothing changed: a 1-pixel transparent frame
      const int w = bx1 - bx0 + 1, h = by1 - by0 + 1;
      rect.resize(size_t(w) * h);
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          const size_t i = size_t(by0 + y) * width + (bx0 + x);
          rect[size_t(y) * w + x] = cur[i] == shown[i] ? transparent : cur[i];
        }
      }
      gif.frame(bx0, by0, w, h, rect, d, true);
    }
    shown.swap(cur);
  }
  out.write(gif.finish());
  out.commit();
}

}  // namespace diffuse
