// End-to-end tests of class-conditional models through the `diffuse` command: `train
// --label-column`, `sample --class --guidance`, the label column written back, the errors (exit 2,
// nothing written), guidance W = 0 as the null class, and bits that do not depend on the threads.
// Every run names the network options it depends on (a conditional model is a resmlp).
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/rng.h"
#include "diffuse/run.h"
#include "test_util.h"

namespace diffuse {
namespace {

using test::expect_fails;
using test::run_cli;
using test::TempDir;

// Three well-separated blobs (std 0.3, centres 5+ apart), labelled 10, 20, 30 (not 0..C-1, so the
// class names are the file's values), 300, 200 and 100 rows, in shuffled order.
const std::array<std::array<float, 2>, 3> kCentres = {{{-4.0f, 0.0f}, {4.0f, 0.0f}, {0.0f, 5.0f}}};
const std::array<int, 3> kRows = {300, 200, 100};

std::string write_blobs(const TempDir& dir) {
  Rng rng(21);
  std::vector<int> order;
  for (int k = 0; k < 3; ++k) order.insert(order.end(), kRows[k], k);
  for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  const std::string path = dir.file("blobs.csv");
  FILE* f = std::fopen(path.c_str(), "w");
  std::fprintf(f, "u,label,v\n");  // the label between the features
  for (int k : order) {
    std::fprintf(f, "%.6f,%d,%.6f\n", kCentres[k][0] + 0.3 * rng.normal(), 10 * (k + 1),
                 kCentres[k][1] + 0.3 * rng.normal());
  }
  std::fclose(f);
  return path;
}

// The class (0..2) of the nearest centre.
int nearest(float u, float v) {
  int best = 0;
  float bd = 1e30f;
  for (int k = 0; k < 3; ++k) {
    const float d =
        (u - kCentres[k][0]) * (u - kCentres[k][0]) + (v - kCentres[k][1]) * (v - kCentres[k][1]);
    if (d < bd) bd = d, best = k;
  }
  return best;
}

const char* kNet =
    " --model resmlp --hidden 32 --depth 2 --schedule cosine --steps 100 --predict v"
    " --loss-weighting min-snr --updates 3000 --seed 4 -q";

// One conditional model for the whole file (training is the slow part).
class ConditionalCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    data_ = write_blobs(*dir_);
    model_ = dir_->file("cond.safetensors");
    const auto r =
        run_cli("train --data " + data_ + " --label-column label" + kNet + " -o " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static std::string data_, model_;
};
TempDir* ConditionalCli::dir_ = nullptr;
std::string ConditionalCli::data_, ConditionalCli::model_;

TEST_F(ConditionalCli, TheCheckpointKeepsTheClassesTheirCountsAndTheFeatureColumns) {
  const Checkpoint ck = load_checkpoint(model_);
  EXPECT_EQ(ck.model.classes, 3);
  EXPECT_EQ(ck.classes, (std::vector<std::string>{"10", "20", "30"}));
  EXPECT_EQ(ck.class_counts, (std::vector<int64_t>{300, 200, 100}));
  EXPECT_EQ(ck.columns, (std::vector<std::string>{"u", "v"}));
  EXPECT_EQ(ck.label_column, "label");
  EXPECT_EQ(ck.model.dim, 2);
}

TEST_F(ConditionalCli, SamplesOfAClassLandInThatClassWithEverySampler) {
  for (const std::string sampler :
       {"--sampler ddpm", "--sampler ddim --nfe 20", "--sampler dpmpp2m --nfe 15"}) {
    for (int k = 0; k < 3; ++k) {
      const std::string out = dir_->file("c" + std::to_string(k) + ".csv");
      const auto r = run_cli("sample " + model_ + " -n 300 --seed 2 " + sampler + " --class " +
                             std::to_string(10 * (k + 1)) + " -o " + out);
      ASSERT_EQ(r.exit_code, 0) << r.output;
      const Dataset d = read_csv(out);
      ASSERT_EQ(d.columns, (std::vector<std::string>{"u", "v", "label"}));
      ASSERT_EQ(d.x.rows(), 300);
      int hits = 0;
      for (Eigen::Index i = 0; i < d.x.rows(); ++i) {
        EXPECT_EQ(d.x(i, 2), 10.0f * (k + 1));
        hits += nearest(d.x(i, 0), d.x(i, 1)) == k;
      }
      EXPECT_GE(hits, 291) << sampler << " class " << k;  // >= 97%
    }
  }
}

TEST_F(ConditionalCli, WithoutAClassRowsComeInTrainingProportionsAndCarryTheirLabel) {
  const std::string out = dir_->file("all.csv");
  const auto r =
      run_cli("sample " + model_ + " -n 3000 --seed 5 --sampler ddim --nfe 20 -o " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Dataset d = read_csv(out);
  std::map<int, int> count;
  int agree = 0;
  for (Eigen::Index i = 0; i < d.x.rows(); ++i) {
    const int k = static_cast<int>(d.x(i, 2)) / 10 - 1;
    ++count[k];
    agree += nearest(d.x(i, 0), d.x(i, 1)) == k;
  }
  // 1/2, 1/3, 1/6 of 3000 rows: binomial std <= 27 rows.
  EXPECT_NEAR(count[0], 1500, 100);
  EXPECT_NEAR(count[1], 1000, 100);
  EXPECT_NEAR(count[2], 500, 100);
  EXPECT_GE(agree, 0.97 * 3000);
}

TEST_F(ConditionalCli, GuidanceZeroIsTheNullClassWhateverTheClass) {
  const std::string a = dir_->file("g0a.csv"), b = dir_->file("g0b.csv"), c = dir_->file("g1.csv");
  const std::string common = " -n 400 --seed 8 --sampler ddim --nfe 25 --guidance ";
  ASSERT_EQ(run_cli("sample " + model_ + common + "0 --class 10 -o " + a).exit_code, 0);
  ASSERT_EQ(run_cli("sample " + model_ + common + "0 --class 30 -o " + b).exit_code, 0);
  ASSERT_EQ(run_cli("sample " + model_ + common + "1 --class 10 -o " + c).exit_code, 0);
  const Dataset da = read_csv(a), db = read_csv(b), dc = read_csv(c);
  // The same unconditional points, labelled with the class asked for.
  EXPECT_EQ(da.x.leftCols(2), db.x.leftCols(2));
  EXPECT_NE(da.x.leftCols(2), dc.x.leftCols(2));
  // The null class draws every blob.
  std::array<int, 3> seen{};
  for (Eigen::Index i = 0; i < da.x.rows(); ++i) ++seen[nearest(da.x(i, 0), da.x(i, 1))];
  for (int k = 0; k < 3; ++k) EXPECT_GT(seen[k], 20) << k;
}

TEST_F(ConditionalCli, GuidedSamplesAreTheSameBitsForAnyThreadCount) {
  std::string first;
  for (int threads : {1, 2, 3}) {
    const std::string out = dir_->file("t" + std::to_string(threads) + ".csv");
    // 700 rows: more than two of the model's 256-column blocks.
    ASSERT_EQ(run_cli("sample " + model_ +
                      " -n 700 --seed 3 --sampler dpmpp2m --nfe 12 --class "
                      "20 --guidance 3 --threads " +
                      std::to_string(threads) + " -o " + out)
                  .exit_code,
              0);
    if (threads == 1) {
      first = test::slurp(out);
    } else {
      EXPECT_EQ(test::slurp(out), first) << threads << " threads";
    }
  }
  const std::string all1 = dir_->file("a1.csv"), all3 = dir_->file("a3.csv");
  ASSERT_EQ(run_cli("sample " + model_ + " -n 600 --seed 3 --threads 1 -o " + all1).exit_code, 0);
  ASSERT_EQ(run_cli("sample " + model_ + " -n 600 --seed 3 --threads 3 -o " + all3).exit_code, 0);
  EXPECT_EQ(test::slurp(all1), test::slurp(all3));
}

TEST_F(ConditionalCli, SamplingErrorsExitTwoAndWriteNothing) {
  const std::string out = dir_->file("never.csv");
  expect_fails("sample " + model_ + " --class 40 -o " + out, 2, "10, 20, 30");
  expect_fails("sample " + model_ + " --class 20 --guidance -1 -o " + out, 2, "--guidance");
  expect_fails("sample " + model_ + " --guidance 2 -o " + out, 2, "--class");
  EXPECT_FALSE(test::file_exists(out));
  // --class on an unconditional model.
  const std::string plain = dir_->file("plain.safetensors");
  ASSERT_EQ(run_cli("train --data " + dir_->file("blobs.csv") +
                    " --model resmlp --hidden 8 --depth 1 --steps 20 --updates 20 -q -o " + plain)
                .exit_code,
            0);
  expect_fails("sample " + plain + " --class 10 -o " + out, 2, "--label-column");
  EXPECT_FALSE(test::file_exists(out));
}

TEST_F(ConditionalCli, TrainingErrorsExitTwoAndWriteNothing) {
  const std::string m = dir_->file("bad.safetensors");
  const std::string tiny =
      " --model resmlp --hidden 8 --depth 1 --steps 20 --updates 20 -q -o " + m;
  expect_fails("train --data " + data_ + " --label-column species" + tiny, 2, "species");
  expect_fails("train --data " + data_ + " --label-column label --label-dropout 1.5" + tiny, 2,
               "--label-dropout");
  expect_fails("train --data " + data_ + " --label-column label --model tutorial -q -o " + m, 2,
               "--model resmlp");
  expect_fails("train --data moons --label-column label" + tiny, 2, "--label-column");
  // A class of one row.
  const std::string lonely = dir_->file("lonely.csv");
  FILE* f = std::fopen(lonely.c_str(), "w");
  std::fprintf(f, "x,y,c\n1,2,0\n2,3,0\n3,1,0\n0,0,1\n");
  std::fclose(f);
  expect_fails("train --data " + lonely + " --label-column c" + tiny, 2, "\"1\"");
  EXPECT_FALSE(test::file_exists(m));
  EXPECT_FALSE(test::file_exists(dir_->file("bad.log.csv")));
}

TEST_F(ConditionalCli, ResumeKeepsTheLabelOptionsAndContinuesBitForBit) {
  RunConfig c;
  c.data = data_;
  c.label_column = "label";
  c.model = ModelKind::kResMlp;
  c.hidden = 8;
  c.depth = 1;
  c.schedule.T = 20;
  c.train.epochs = 4;
  c.train.threads = 2;
  c.out = dir_->file("resume.safetensors");
  const RunResult whole = run_training(c);
  // Stopped after epoch 2: a resumable checkpoint.
  RunConfig first = c;
  first.out = dir_->file("part.safetensors");
  int epochs = 0;
  RunCallbacks stop;
  stop.stop_requested = [&epochs] { return ++epochs == 2; };
  ASSERT_FALSE(run_training(first, stop).finished);
  RunConfig again;
  again.resume = first.out;
  again.out = first.out;
  again.train.label_dropout = 0.3;
  again.given = {"--label-dropout"};
  try {
    run_training(again);
    FAIL() << "a resume with another --label-dropout was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--label-dropout"), std::string::npos) << e.what();
  }
  again.given = {"--label-column"};
  again.label_column = "v";
  EXPECT_THROW(run_training(again), UsageError);
  again.given.clear();
  const RunResult resumed = run_training(again);
  EXPECT_EQ(resumed.checkpoint.params, whole.checkpoint.params);
  EXPECT_EQ(resumed.checkpoint.classes, whole.checkpoint.classes);
}

// Label dropout draws from the run's RNG: the same seed and threads give the same weights, a
// different dropout different ones.
TEST_F(ConditionalCli, LabelDropoutIsReproducibleAtASeedAndThreadCount) {
  RunConfig c;
  c.data = data_;
  c.label_column = "label";
  c.model = ModelKind::kResMlp;
  c.hidden = 8;
  c.depth = 1;
  c.schedule.T = 20;
  c.train.updates = 30;
  c.train.threads = 2;
  const RunResult a = run_training(c), b = run_training(c);
  EXPECT_EQ(a.checkpoint.params, b.checkpoint.params);
  c.train.label_dropout = 0.5;
  EXPECT_NE(run_training(c).checkpoint.params, a.checkpoint.params);
  c.train.label_dropout = 0.0;
  EXPECT_NE(run_training(c).checkpoint.params, a.checkpoint.params);
}

}  // namespace
}  // namespace diffuse
