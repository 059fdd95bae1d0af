// Progress display for training: an in-place bar on a terminal, plain lines otherwise (logs, CI).
// Writes to the stream it is given and nothing else.
#include "diffuse/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

namespace diffuse {
namespace {

double now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto total = static_cast<long>(std::lround(s));
  char buf[32];
  if (total >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", total / 3600, (total / 60) % 60, total % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", total / 60, total % 60);
  }
  return buf;
}

// "epoch 120/1000  loss 0.4312  3712 steps/s  ETA 0:21"
std::string stats_text(const EpochStats& s) {
  const double per_epoch = s.epoch > 0 ? s.seconds / s.epoch : 0.0;
  const double eta = per_epoch * (s.epochs - s.epoch);
  char buf[160];
  std::snprintf(buf, sizeof buf, "epoch %d/%d  loss %.4f  %.0f steps/s  %s %s", s.epoch, s.epochs,
                s.mean_loss, s.steps_per_s, s.epoch >= s.epochs ? "took" : "ETA",
                format_duration(s.epoch >= s.epochs ? s.seconds : eta).c_str());
  return buf;
}

}  // namespace

ProgressBar::ProgressBar(std::FILE* out, double line_every_s)
    : ProgressBar(out, ::isatty(fileno(out)) != 0, line_every_s) {}

ProgressBar::ProgressBar(std::FILE* out, bool tty, double line_every_s)
    : out_(out), tty_(tty), line_every_s_(line_every_s) {}

std::string ProgressBar::render(const EpochStats& s, int width) {
  const std::string text = stats_text(s);
  const int bar = std::max(10, width - static_cast<int>(text.size()) - 9);
  const double frac =
      s.epochs > 0 ? std::clamp(static_cast<double>(s.epoch) / s.epochs, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(frac * bar);
  std::string line = std::to_string(static_cast<int>(frac * 100.0));
  line.insert(0, 3 - std::min<size_t>(3, line.size()), ' ');
  line += "% |";
  line.append(filled, '#');
  line.append(bar - filled, ' ');
  line += "| " + text;
  return line;
}

void ProgressBar::update(const EpochStats& s) {
  last_ = s;
  const double t = now_s();
  if (tty_) {
    if (t - last_line_s_ < 0.1 && s.epoch < s.epochs) return;  // at most 10 redraws a second
    last_line_s_ = t;
    std::fprintf(out_, "\r%s\033[K", render(s, 100).c_str());
    drawn_ = true;
  } else {
    if (t - last_line_s_ < line_every_s_ && s.epoch < s.epochs) return;
    last_line_s_ = t;
    std::fprintf(out_, "%s\n", stats_text(s).c_str());
  }
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (tty_ && drawn_) {
    std::fprintf(out_, "\r%s\033[K\n", render(last_, 100).c_str());
    std::fflush(out_);
    drawn_ = false;
  }
}

}  // namespace diffuse
