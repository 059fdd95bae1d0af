// End-to-end tests of `diffuse plot ...` and `diffuse animate`: real files read back with cairo and
// giflib, exit codes and one-line messages for bad input. The drawing itself is tested in
// plot_test.
#include <cairo/cairo.h>  // the library links cairo privately: no include path here
#include <gif_lib.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/io.h"
#include "diffuse/model.h"
#include "diffuse/plot.h"
#include "diffuse/rng.h"
#include "diffuse/schedule.h"
#include "test_util.h"

namespace diffuse {
namespace {

using test::run_cli;
using test::TempDir;

// Width and height of a PNG, or {0, 0} if it does not read.
std::pair<int, int> png_size(const std::string& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  std::pair<int, int> wh{0, 0};
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    wh = {cairo_image_surface_get_width(s), cairo_image_surface_get_height(s)};
  }
  cairo_surface_destroy(s);
  return wh;
}

// An untrained model with T = 50: sampling works, quickly, without a training run.
std::string make_checkpoint(const TempDir& dir) {
  Checkpoint c;
  c.schedule.T = 50;
  c.model = ModelConfig{2, 16, 50};
  Model m(c.model);
  Rng rng(1);
  m.init(rng);
  c.params = m.params;
  c.columns = {"x", "y"};
  const std::string path = dir.file("m.safetensors");
  save_checkpoint(path, c);
  return path;
}

using test::expect_fails;

TEST(PlotCli, DataAndForwardPngsHaveTheLibrarysLayout) {
  TempDir dir;
  auto r = run_cli("plot data moons -n 2000 --seed 4 -o " + dir.file("data.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Points x = make_shape(Shape::kMoons, 2000, 0.1, 4);
  PlotStyle labelled;  // a shape's columns are x and y
  labelled.x_label = "x";
  labelled.y_label = "y";
  const FigureLayout one = strip_layout({x}, labelled);
  EXPECT_EQ(png_size(dir.file("data.png")), std::make_pair(one.width, one.height));

  r = run_cli("plot forward swiss_roll -n 1000 --panels 5 --steps 50 -o " + dir.file("fwd.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ScheduleConfig sc;  // plot forward's schedule is train's default
  sc.T = 50;
  const auto steps = strip_steps(50, 5);
  EXPECT_EQ(steps, (std::vector<int>{0, 12, 24, 36, 49}));
  const auto panels =
      forward_samples(make_shape(Shape::kSwissRoll, 1000, 0.1, 0), make_schedule(sc), steps, 1);
  const FigureLayout five = strip_layout(panels, labelled, "title");
  EXPECT_EQ(png_size(dir.file("fwd.png")), std::make_pair(five.width, five.height));
}

TEST(PlotCli, CsvDataWithThreeColumnsAndSvgSchedule) {
  TempDir dir;
  write_file_atomic(dir.file("d.csv"), "a,b,c\n0,0,5\n1,2,5\n2,1,5\n3,3,5\n");
  auto r = run_cli("plot data " + dir.file("d.csv") + " -o " + dir.file("d.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(png_size(dir.file("d.png")).first, 320);

  r = run_cli("plot schedule --schedule cosine --steps 200 -o " + dir.file("s.svg"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string svg = test::slurp(dir.file("s.svg"));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(PlotCli, ReverseScheduleFromModelLossAndAnimation) {
  TempDir dir;
  const std::string model = make_checkpoint(dir);
  auto r = run_cli("plot reverse " + model + " -n 400 --panels 4 -o " + dir.file("rev.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto [w, h] = png_size(dir.file("rev.png"));
  EXPECT_GT(w, 4 * 180);
  EXPECT_LT(w, 5 * 180);
  EXPECT_GT(h, 180);

  r = run_cli("plot schedule --model " + model + " -o " + dir.file("s.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;

  write_file_atomic(dir.file("log.csv"),
                    "epoch,mean_loss,last_loss,steps,seconds\n1,0.9,0.8,10,0.1\n2,0.6,0.5,20,0.2\n"
                    "3,0.5,0.5,30,0.3\n");
  r = run_cli("plot loss " + dir.file("log.csv") + " --log-y -o " + dir.file("loss.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(png_size(dir.file("loss.png")).first, 420);

  // T = 50 recorded every 5 steps: x_T, t = 45, 40, ..., 5, and x_0.
  const std::string gif = dir.file("rev.gif");
  r = run_cli("animate " + model + " -n 300 --every 5 --size 200 -o " + gif);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  int err = 0;
  GifFileType* g = DGifOpenFileName(gif.c_str(), &err);
  ASSERT_NE(g, nullptr) << GifErrorString(err);
  ASSERT_EQ(DGifSlurp(g), GIF_OK);
  EXPECT_EQ(g->ImageCount, 11);
  EXPECT_EQ(g->SWidth, 200);
  GraphicsControlBlock last{};
  DGifSavedExtensionToGCB(g, g->ImageCount - 1, &last);
  EXPECT_EQ(last.DelayTime, 150);
  DGifCloseFile(g, &err);
}

TEST(PlotCli, TrainWritesReverseSnapshotsEveryNEpochsAndAtTheEnd) {
  TempDir dir;
  const std::string snaps = dir.file("snaps");
  ASSERT_EQ(mkdir(snaps.c_str(), 0755), 0);
  const auto r = run_cli(
      "train --data moons -n 300 --epochs 5 --hidden 8 --steps 20 -q "
      "--snapshot-every 2 --snapshot-points 200 --snapshot-dir " +
      snaps + " -o " + dir.file("m.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* f :
       {"reverse_epoch_0002.png", "reverse_epoch_0004.png", "reverse_epoch_0005.png"}) {
    const auto [w, h] = png_size(snaps + "/" + f);
    EXPECT_GT(w, 1000) << f;  // a strip of 10 panels
    EXPECT_GT(h, 100) << f;
  }
  EXPECT_FALSE(test::file_exists(snaps + "/reverse_epoch_0001.png"));
  EXPECT_FALSE(test::file_exists(snaps + "/reverse_epoch_0003.png"));
  expect_fails("train --epochs 2 --snapshot-every 1 --snapshot-dir " + dir.file("nope") + " -o " +
                   dir.file("m2.safetensors"),
               2, "--snapshot-dir");
}

TEST(PlotCli, BadInputExitsWithOneClearLine) {
  TempDir dir;
  const std::string model = make_checkpoint(dir);
  expect_fails("plot data swiss_roll -o " + dir.file("x.jpg"), 2, "x.jpg");
  expect_fails("plot data swiss_roll -o " + dir.file("missing/x.png"), 2, "does not exist");
  expect_fails("plot data no_such_shape -o " + dir.file("x.png"), 2, "no_such_shape");
  expect_fails("plot forward --panels 0 -o " + dir.file("x.png"), 2, "--panels");
  expect_fails("plot schedule --schedule cubic -o " + dir.file("x.png"), 2, "cubic");
  expect_fails("plot loss " + dir.file("none.csv") + " -o " + dir.file("x.png"), 1, "none.csv");
  expect_fails("plot reverse " + dir.file("none.safetensors") + " -o " + dir.file("x.png"), 1,
               "none.safetensors");
  expect_fails("animate " + model + " -o " + dir.file("a.png"), 2, ".gif");
  expect_fails("animate " + model + " --every -1 -o " + dir.file("a.gif"), 2, "--every");
  expect_fails("animate " + model + " --sampler ddpm --nfe 10 -o " + dir.file("a.gif"), 2, "--nfe");
  EXPECT_EQ(run_cli("plot").exit_code, 2);
  EXPECT_FALSE(test::file_exists(dir.file("x.png")));
  EXPECT_FALSE(test::file_exists(dir.file("a.gif")));
}

}  // namespace
}  // namespace diffuse
