// End-to-end tests of labelled data in the `diffuse` command: `data NAME --labels`, `eval
// --label-column` (per-class scores, 5-NN accuracy) and class-coloured `plot data` / `plot
// compare`, with the exit codes and one-line messages for a missing or unknown label column. Not
// the conditional model (train --label-column, sample --class).
#include <cairo.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/labels.h"
#include "test_util.h"

namespace diffuse {
namespace {

using test::expect_fails;
using test::run_cli;
using test::TempDir;

TEST(LabelsCli, DataLabelsAddsTheClassAndKeepsThePointsBitForBit) {
  TempDir dir;
  for (const std::string shape : {"8gaussians", "moons", "checkerboard", "spiral"}) {
    const std::string plain = dir.file(shape + ".csv"), labelled = dir.file(shape + ".l.csv");
    auto r = run_cli("data " + shape + " -n 777 --seed 5 -o " + plain);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    r = run_cli("data " + shape + " -n 777 --seed 5 --labels -o " + labelled);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const Dataset p = read_csv(plain);
    const LabelledDataset l = read_labelled_csv(labelled, "label");
    ASSERT_EQ(l.data.x.rows(), 777);
    EXPECT_EQ(std::memcmp(l.data.x.data(), p.x.data(), sizeof(float) * p.x.size()), 0) << shape;
    EXPECT_EQ(l.data.columns, (std::vector<std::string>{"x", "y"}));
    EXPECT_EQ(l.labels.classes, shape_class_names(*shape_from_string(shape)));
    std::vector<int32_t> want;
    make_shape(*shape_from_string(shape), 777, 0.1, 5, &want);
    EXPECT_EQ(l.labels.of_row, want) << shape;
    const std::string text = test::slurp(labelled);
    EXPECT_EQ(text.substr(0, text.find('\n')), "x,y,label");
  }
}

TEST(LabelsCli, DataLabelsRefusesShapesWithoutClassesAndWritesNothing) {
  TempDir dir;
  for (const std::string shape : {"swiss_roll", "s_curve"}) {
    expect_fails("data " + shape + " --labels -o " + dir.file("r.csv"), 2,
                 "--labels: " + shape + " has no natural classes");
    EXPECT_FALSE(test::file_exists(dir.file("r.csv")));
  }
}

TEST(LabelsCli, DataSplitKeepsAStringLabelColumn) {
  TempDir dir;
  const std::string t = dir.file("t.csv");
  {
    std::ofstream f(t);
    f << "species,a,b\n";
    for (int i = 0; i < 100; ++i) f << (i % 2 ? "cat" : "dog") << "," << i << "," << i % 2 << "\n";
  }
  auto r = run_cli("data split " + t + " --label-column species --test 0.3 --seed 4");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const LabelledDataset train = read_labelled_csv(dir.file("t.train.csv"), "species");
  const LabelledDataset test = read_labelled_csv(dir.file("t.test.csv"), "species");
  EXPECT_EQ(train.data.x.rows(), 70);
  EXPECT_EQ(test.data.x.rows(), 30);
  EXPECT_EQ(train.data.columns, (std::vector<std::string>{"a", "b"}));
  for (const LabelledDataset* part : {&train, &test}) {
    for (Eigen::Index i = 0; i < part->data.x.rows(); ++i) {  // b is 1 exactly for the cats
      const std::string& name = part->labels.classes[size_t(part->labels.of_row[size_t(i)])];
      ASSERT_EQ(name, part->data.x(i, 1) == 1.0f ? "cat" : "dog");
    }
  }
  expect_fails("data split " + t + " --label-column kind --train-out " + dir.file("x.csv") +
                   " --test-out " + dir.file("y.csv"),
               2, "--label-column: " + t + " has no column 'kind'");
  EXPECT_FALSE(test::file_exists(dir.file("x.csv")));
}

TEST(LabelsCli, EvalReportsPerClassScoresAndKnnAccuracy) {
  TempDir dir;
  const std::string s = dir.file("s.csv"), ref = dir.file("ref.csv");
  ASSERT_EQ(run_cli("data 8gaussians --labels -n 2000 --seed 1 -o " + s).exit_code, 0);
  ASSERT_EQ(run_cli("data 8gaussians --labels -n 4000 --seed 2 -o " + ref).exit_code, 0);
  for (const std::string& against : {std::string("8gaussians"), ref}) {
    const auto r =
        run_cli("eval " + s + " --against " + against + " --label-column label --pairs 64 --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const nlohmann::json j = nlohmann::json::parse(r.output);
    EXPECT_GE(j["knn_accuracy"].get<double>(), 0.99) << against;
    ASSERT_EQ(j["classes"].size(), 8u);
    int64_t n = 0;
    for (const auto& c : j["classes"]) {
      n += c["n"].get<int64_t>();
      EXPECT_LT(c["swd_ratio"].get<double>(), 2.0) << against << " class " << c["name"];
    }
    EXPECT_EQ(n, 2000);
    EXPECT_TRUE(j.contains("swd_ratio"));  // the overall scores are still there
  }
  // Text: the knn line and a row per class.
  const auto r = run_cli("eval " + s + " --against " + ref + " --label-column label --pairs 16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("knn_acc    "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n7    "), std::string::npos) << r.output;
  // Without --label-column the integer labels are just a third column, as before.
  expect_fails("eval " + s + " --against 8gaussians", 1, "samples have 3 columns");
}

TEST(LabelsCli, EvalLabelErrorsAreOneLineExitTwo) {
  TempDir dir;
  const std::string s = dir.file("s.csv"), plain = dir.file("p.csv"), ref = dir.file("ref.csv");
  ASSERT_EQ(run_cli("data moons --labels -n 300 --seed 1 -o " + s).exit_code, 0);
  ASSERT_EQ(run_cli("data moons -n 300 --seed 1 -o " + plain).exit_code, 0);
  ASSERT_EQ(run_cli("data circles --labels -n 300 --seed 2 -o " + ref).exit_code, 0);
  expect_fails("eval " + s + " --against " + ref + " --label-column kind", 2,
               "--label-column: " + ref + " has no column 'kind'; its columns are x, y, label");
  expect_fails("eval " + plain + " --against " + ref + " --label-column label", 2,
               "--label-column: " + plain + " has no column 'label'; its columns are x, y");
  expect_fails("eval " + s + " --against swiss_roll --label-column label", 2,
               "--against: swiss_roll has no classes");
  // A class the reference does not have names the samples file.
  const std::string odd = dir.file("odd.csv");
  {
    std::ofstream f(odd);
    f << "x,y,label\n0,1,0\n1,0,1\n0.5,0.5,2\n";
  }
  expect_fails("eval " + odd + " --against " + ref + " --label-column label", 2,
               odd + ": the samples' class \"2\" (1 rows) is not a class of " + ref);
}

// Pixels of a PNG near class 1's orange (255, 127, 14) rather than the one-colour blue.
int orange_pixels(const std::string& path) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  int n = 0;
  if (cairo_surface_status(s) == CAIRO_STATUS_SUCCESS) {
    const unsigned char* d = cairo_image_surface_get_data(s);
    for (int y = 0; y < cairo_image_surface_get_height(s); ++y) {
      const auto* row =
          reinterpret_cast<const uint32_t*>(d + y * cairo_image_surface_get_stride(s));
      for (int x = 0; x < cairo_image_surface_get_width(s); ++x) {
        const int r = (row[x] >> 16) & 0xff, g = (row[x] >> 8) & 0xff, b = row[x] & 0xff;
        n += r > 230 && g > 120 && g < 215 && b < 150 && r - b > 100;
      }
    }
  }
  cairo_surface_destroy(s);
  return n;
}

TEST(LabelsCli, PlotsColourByClassAutomaticallyOrByTheNamedColumn) {
  TempDir dir;
  const std::string l = dir.file("l.csv"), p = dir.file("p.csv");
  ASSERT_EQ(run_cli("data moons --labels -n 2000 --seed 1 -o " + l).exit_code, 0);
  ASSERT_EQ(run_cli("data moons -n 2000 --seed 1 -o " + p).exit_code, 0);
  // A column named `label` colours the points; the unlabelled file stays one blue.
  auto r = run_cli("plot data " + l + " -o " + dir.file("l.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(run_cli("plot data " + p + " -o " + dir.file("p.png")).exit_code, 0);
  EXPECT_GT(orange_pixels(dir.file("l.png")), 500);
  EXPECT_EQ(orange_pixels(dir.file("p.png")), 0);
  // A built-in shape with --labels looks like its labelled file.
  ASSERT_EQ(run_cli("plot data moons -n 2000 --seed 1 --labels -o " + dir.file("s.png")).exit_code,
            0);
  EXPECT_GT(orange_pixels(dir.file("s.png")), 500);
  // A string label column under another name, named explicitly.
  const std::string k = dir.file("k.csv");
  {
    std::ofstream f(k);
    f << "a,kind,b\n";
    for (int i = 0; i < 200; ++i) f << i % 7 << "," << (i % 2 ? "odd" : "even") << "," << i << "\n";
  }
  r = run_cli("plot data " + k + " --label-column kind -o " + dir.file("k.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(orange_pixels(dir.file("k.png")), 50);
  // plot compare: both panels coloured when both files have `label`, and against a shape.
  r = run_cli("plot compare " + l + " --against " + l + " -o " + dir.file("c.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(orange_pixels(dir.file("c.png")), 500);
  r = run_cli("plot compare " + l + " --against moons -o " + dir.file("c2.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GT(orange_pixels(dir.file("c2.png")), 500);
  r = run_cli("plot compare " + p + " --against moons -o " + dir.file("c3.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(orange_pixels(dir.file("c3.png")), 0);  // no labels: both panels one blue
}

TEST(LabelsCli, AnimateColoursAConditionalModelsClasses) {
  TempDir dir;
  const std::string l = dir.file("l.csv"), m = dir.file("m.safetensors"), p = dir.file("p.csv");
  const std::string um = dir.file("u.safetensors");
  ASSERT_EQ(run_cli("data moons --labels -n 512 --seed 1 -o " + l).exit_code, 0);
  ASSERT_EQ(run_cli("data moons -n 512 --seed 1 -o " + p).exit_code, 0);
  const std::string tiny = " --model resmlp --hidden 8 --depth 1 --steps 20 --updates 20 -q -o ";
  ASSERT_EQ(run_cli("train --data " + l + " --label-column label" + tiny + m).exit_code, 0);
  ASSERT_EQ(run_cli("train --data " + p + tiny + um).exit_code, 0);
  auto r = run_cli("animate " + m + " -n 300 -o " + dir.file("c.gif"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("animate " + um + " -n 300 -o " + dir.file("u.gif"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The conditional one has a class legend beside its square; the unconditional one does not.
  const auto width = [](const std::string& gif) {  // the logical screen width, bytes 6-7
    const std::string b = test::slurp(gif);
    return b.size() < 8 ? 0 : int(uint8_t(b[6])) | int(uint8_t(b[7])) << 8;
  };
  EXPECT_GT(width(dir.file("c.gif")), 360);
  EXPECT_EQ(width(dir.file("u.gif")), 360);
}

TEST(LabelsCli, PlotLabelErrorsAreOneLineExitTwoAndWriteNothing) {
  TempDir dir;
  const std::string l = dir.file("l.csv"), png = dir.file("x.png");
  ASSERT_EQ(run_cli("data moons --labels -n 200 --seed 1 -o " + l).exit_code, 0);
  expect_fails("plot data " + l + " --label-column kind -o " + png, 2,
               "--label-column: " + l + " has no column 'kind'; its columns are x, y, label");
  expect_fails("plot data swiss_roll --labels -o " + png, 2, "--labels: swiss_roll");
  expect_fails("plot data moons --label-column label -o " + png, 2, "--label-column: moons");
  expect_fails("plot data " + l + " --labels -o " + png, 2, "--labels: " + l + " is a file");
  expect_fails("plot compare " + l + " --against " + l + " --label-column kind -o " + png, 2,
               "--label-column");
  EXPECT_FALSE(test::file_exists(png));
}

}  // namespace
}  // namespace diffuse
