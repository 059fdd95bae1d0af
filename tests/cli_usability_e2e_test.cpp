// The first hour with the `diffuse` command (issue 14): usage without a command, flags shown as
// flags, one schedule default for `train` and `plot`, options that a sampler would ignore refused,
// warnings that -q does not hide, shape names, axis labels and column choice on figures.
#include <gtest/gtest.h>

#include <string>

#include "diffuse/dataset.h"
#include "diffuse/plot.h"
#include "test_util.h"

namespace diffuse {
namespace {

using test::expect_fails;
using test::run_cli;
using test::TempDir;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(Usability, BareCommandPrintsTheUsage) {
  const auto r = run_cli("");
  EXPECT_EQ(r.exit_code, 2);
  for (const char* command : {"train", "sample", "eval", "demo", "plot", "animate"}) {
    EXPECT_TRUE(contains(r.output, command)) << r.output;
  }
  EXPECT_FALSE(contains(r.output, "error")) << r.output;
}

TEST(Usability, DemoHelpShowsFlagsWithoutValues) {
  const auto r = run_cli("demo --help");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "--no-figures")) << r.output;
  EXPECT_FALSE(contains(r.output, "{false}")) << r.output;
  EXPECT_FALSE(contains(r.output, "{true}")) << r.output;
}

// The value CLI11 shows for an option in --help, e.g. "0.1" from "  --beta-end FLOAT=0.1  ...".
std::string shown_default(const std::string& help, const std::string& option) {
  const size_t at = help.find("  " + option + " ");
  if (at == std::string::npos) return "";
  const size_t eq = help.find('=', at), end = help.find(' ', eq);
  if (eq == std::string::npos || eq > help.find('\n', at)) return "";
  return help.substr(eq + 1, end - eq - 1);
}

TEST(Usability, PlotScheduleAndForwardDefaultToTheTrainingSchedule) {
  const std::string train = run_cli("train --help").output;
  for (const char* plot : {"plot schedule --help", "plot forward --help"}) {
    const std::string help = run_cli(plot).output;
    for (const char* option : {"--beta-end", "--beta-start", "--steps", "--schedule"}) {
      EXPECT_EQ(shown_default(help, option), shown_default(train, option)) << plot << " " << option;
      EXPECT_FALSE(shown_default(help, option).empty()) << plot << " " << option;
    }
  }
  EXPECT_EQ(shown_default(train, "--beta-end"), "0.1");
}

TEST(Usability, VarianceWithAnotherSamplerIsRefusedNamingIt) {
  TempDir dir;
  const std::string model = dir.file("m.safetensors");
  ASSERT_EQ(run_cli("train --data moons -n 500 --epochs 1 --hidden 8 -q -o " + model).exit_code, 0);
  expect_fails(
      "sample " + model + " --sampler ddim --nfe 10 --variance beta -o " + dir.file("s.csv"), 2,
      "--variance");
  expect_fails(
      "sample " + model + " --sampler dpmpp2m --nfe 10 --variance beta -o " + dir.file("s.csv"), 2,
      "--variance");
  EXPECT_EQ(run_cli("sample " + model + " --variance beta -n 50 -o " + dir.file("s.csv")).exit_code,
            0);
  // A spacing power outside 1..4 (0: the sampler's own) is refused by name, by sample and by
  // plot reverse.
  expect_fails(
      "sample " + model + " --sampler dpmpp2m --nfe 10 --spacing 0.5 -o " + dir.file("s.csv"), 2,
      "--spacing: expected logsnr, 0 (the sampler's own) or a power from 1 to 4, got 0.5");
  expect_fails(
      "plot reverse " + model + " --sampler ddim --nfe 10 --spacing 5 -o " + dir.file("r.png"), 2,
      "--spacing: expected logsnr, 0 (the sampler's own) or a power from 1 to 4, got 5");
  expect_fails(
      "sample " + model + " --sampler ddim --nfe 10 --spacing even -o " + dir.file("s.csv"), 2,
      "--spacing: expected logsnr, 0 (the sampler's own) or a power from 1 to 4, got "
      "\"even\"");
  EXPECT_EQ(run_cli("plot reverse " + model + " --sampler dpmpp2m --nfe 10 --spacing logsnr -o " +
                    dir.file("r.png"))
                .exit_code,
            0);
  EXPECT_EQ(run_cli("sample " + model + " --sampler ddim --nfe 10 --spacing logsnr -n 50 -o " +
                    dir.file("s.csv"))
                .exit_code,
            0);
  // DDPM evaluates every step: a spacing given to it would change nothing, so it is refused as
  // --eta and --variance are with the wrong sampler.
  expect_fails("sample " + model + " --spacing 2 -o " + dir.file("s.csv"), 2,
               "--spacing: --sampler ddpm evaluates every step");
}

TEST(Usability, QuietHidesProgressButNotWarnings) {
  TempDir dir;
  // The tutorial's schedule leaves 60% of the signal in x_T: a warning, also with -q.
  const auto r = run_cli(
      "train --data moons -n 500 --epochs 1 --hidden 8 --schedule sigmoid --steps 100 --beta-end "
      "0.02 -q -o " +
      dir.file("m.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "warning")) << r.output;
  // The progress line ("epoch 1/1  loss ...") and the summary are gone (the budget warning stays).
  EXPECT_FALSE(contains(r.output, "loss")) << r.output;
  EXPECT_FALSE(contains(r.output, "saved")) << r.output;
}

TEST(Usability, AnUnknownShapeNamesTheShapesNotFiles) {
  TempDir dir;
  const auto r = run_cli("data nosuch -o " + dir.file("d.csv"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.output, "unknown shape 'nosuch'")) << r.output;
  EXPECT_TRUE(contains(r.output, "swiss_roll")) << r.output;
  EXPECT_FALSE(contains(r.output, "csv")) << r.output;
}

TEST(Usability, PlotDataPicksColumnsByNameOrNumber) {
  TempDir dir;
  const std::string csv = dir.file("d.csv");
  Points x(50, 3);
  for (int i = 0; i < 50; ++i) x.row(i) << float(i), float(i % 7), float(-i);
  write_csv(csv, x, {"alpha", "beta", "gamma"});
  EXPECT_EQ(run_cli("plot data " + csv + " --x gamma --y alpha -o " + dir.file("a.png")).exit_code,
            0);
  EXPECT_EQ(run_cli("plot data " + csv + " --x 3 --y 2 -o " + dir.file("b.png")).exit_code, 0);
  expect_fails("plot data " + csv + " --x delta -o " + dir.file("c.png"), 2, "--x");
  expect_fails("plot data " + csv + " --y 4 -o " + dir.file("c.png"), 2, "--y");
  EXPECT_FALSE(test::file_exists(dir.file("c.png")));
}

TEST(Usability, AxisLabelsTakeTheirRowAndColumn) {
  const Points x = make_shape(Shape::kMoons, 100, 0.1, 1);
  PlotStyle labelled;
  labelled.x_label = "income";
  labelled.y_label = "age";
  const FigureLayout plain = strip_layout({x, x}), with = strip_layout({x, x}, labelled);
  EXPECT_GT(with.height, plain.height);
  EXPECT_GT(with.panels[0].left, plain.panels[0].left);
  EXPECT_EQ(with.panels[0].width, plain.panels[0].width);
}

}  // namespace
}  // namespace diffuse
