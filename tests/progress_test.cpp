// Tests of the progress display: the bar's content, and plain lines when not on a terminal.
#include "diffuse/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace diffuse {
namespace {

EpochStats stats(int epoch, int epochs) {
  EpochStats s;
  s.epoch = epoch;
  s.epochs = epochs;
  s.mean_loss = 0.43125;
  s.steps_per_s = 3712.4;
  s.seconds = 10.0 * epoch / epochs;
  return s;
}

TEST(Progress, BarShowsEpochLossSpeedAndEta) {
  const std::string bar = ProgressBar::render(stats(250, 1000), 100);
  EXPECT_NE(bar.find(" 25% |"), std::string::npos) << bar;
  EXPECT_NE(bar.find("epoch 250/1000"), std::string::npos) << bar;
  EXPECT_NE(bar.find("loss 0.4313"), std::string::npos) << bar;
  EXPECT_NE(bar.find("3712 steps/s"), std::string::npos) << bar;
  EXPECT_NE(bar.find("ETA 0:08"), std::string::npos) << bar;  // 2.5 s in, 7.5 s to go
  EXPECT_LE(bar.size(), 100u);
  const std::string done = ProgressBar::render(stats(1000, 1000), 100);
  EXPECT_NE(done.find("100% |"), std::string::npos) << done;
  EXPECT_NE(done.find("took 0:10"), std::string::npos) << done;
}

TEST(Progress, PlainLinesWhenNotATerminal) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  {
    ProgressBar p(f, false, 1e9);  // one line at first, then only the last
    for (int e = 1; e <= 5; ++e) p.update(stats(e, 5));
    p.finish();
  }
  std::fclose(f);
  const std::string out(buf, len);
  free(buf);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;
  EXPECT_NE(out.find("epoch 1/5"), std::string::npos);
  EXPECT_NE(out.find("epoch 5/5"), std::string::npos);
}

}  // namespace
}  // namespace diffuse
