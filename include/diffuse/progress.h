// Training progress on stderr: a redrawn bar on a terminal (epoch, loss, steps/s, ETA), plain
// periodic lines when stderr is a file or pipe. Not a logger.
#pragma once

#include <cstdio>
#include <string>

#include "diffuse/train.h"

namespace diffuse {

class ProgressBar {
 public:
  // tty: draw a bar in place; otherwise one line every `line_every_s` seconds and at the end.
  explicit ProgressBar(std::FILE* out = stderr, double line_every_s = 2.0);
  ProgressBar(std::FILE* out, bool tty, double line_every_s);
  void update(const EpochStats& s);
  void finish();

  // The bar for these stats at this width (for tests).
  static std::string render(const EpochStats& s, int width);

 private:
  std::FILE* out_;
  bool tty_;
  double line_every_s_;
  double last_line_s_ = -1e9;
  bool drawn_ = false;
  EpochStats last_{};
};

}  // namespace diffuse
