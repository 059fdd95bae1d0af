// The library's training run (run.h): the defaults are one set, a stop request ends a run after the
// current epoch with a resumable checkpoint, resuming it gives the uninterrupted run's weights bit
// for bit, points in memory train like the same points in a CSV file, warnings reach the caller.
#include "diffuse/run.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/denoiser.h"
#include "diffuse/error.h"
#include "test_util.h"

namespace diffuse {
namespace {

using test::TempDir;

RunConfig small_run(const std::string& out) {
  RunConfig c;
  c.data = "moons";
  c.n = 1024;
  c.hidden = 16;
  c.train.epochs = 6;
  c.train.seed = 3;
  c.out = out;
  return c;
}

TEST(Run, DefaultsAreTheCliDefaultsAndTheTutorialIsAPreset) {
  const RunConfig d;  // docs/DEFAULTS.md: the residual MLP, cosine T=1000, v, uniform weighting
  EXPECT_EQ(d.model, ModelKind::kResMlp);
  EXPECT_EQ(d.hidden, 64);
  EXPECT_EQ(d.depth, 2);
  EXPECT_EQ(d.fourier_features, 6);
  EXPECT_EQ(d.n, kDefaultTrainingPoints);  // 100,000 points of a built-in shape
  EXPECT_EQ(kDefaultTrainingPoints, 100000);
  EXPECT_EQ(d.prediction, Prediction::kV);
  EXPECT_EQ(d.train.loss_weighting, LossWeighting::kUniform);
  EXPECT_EQ(d.schedule.kind, ScheduleKind::kCosine);
  EXPECT_EQ(d.schedule.T, 1000);
  EXPECT_EQ(d.schedule.beta_end, 0.1);  // read by the other schedules
  EXPECT_EQ(d.train.lr, 2e-3);
  EXPECT_EQ(d.train.ema_decay, 0.999);
  EXPECT_EQ(d.train.warmup_steps, 1000);
  EXPECT_EQ(d.train.lr_schedule, LrSchedule::kCosine);
  const RunConfig t = RunConfig::tutorial();
  EXPECT_EQ(t.model, ModelKind::kTutorial);
  EXPECT_EQ(t.hidden, 128);
  EXPECT_EQ(t.prediction, Prediction::kEps);
  EXPECT_EQ(t.fourier_features, 0);
  EXPECT_EQ(t.n, 10000);  // the tutorial's data set, also `diffuse data`'s default
  EXPECT_EQ(t.n, ShapeConfig{}.n);
  EXPECT_EQ(t.train.loss_weighting, LossWeighting::kUniform);
  EXPECT_EQ(t.schedule.kind, ScheduleKind::kSigmoid);
  EXPECT_EQ(t.schedule.T, 100);
  EXPECT_EQ(t.schedule.beta_end, 0.02);
  EXPECT_EQ(t.train.lr, 1e-3);
  EXPECT_EQ(t.train.ema_decay, 0.0);
  EXPECT_EQ(t.train.warmup_steps, 0);
  EXPECT_EQ(t.train.lr_schedule, LrSchedule::kConstant);
  EXPECT_EQ(t.train.epochs, d.train.epochs) << "the preset changes the method, not the budget";
}

TEST(Run, StopRequestSavesAResumableCheckpointAndResumingMatchesBitForBit) {
  TempDir dir;
  const RunResult full = run_training(small_run(dir.file("full.safetensors")));
  ASSERT_TRUE(full.finished);
  ASSERT_EQ(full.epochs.size(), 6u);
  EXPECT_FALSE(full.checkpoint.train_state.has_value());
  EXPECT_EQ(load_checkpoint(dir.file("full.safetensors")).params, full.checkpoint.params);

  const std::string part = dir.file("part.safetensors");
  RunCallbacks stop_after_two;
  int epochs_seen = 0;
  stop_after_two.on_epoch = [&](const EpochStats&, const Trainer&, const Schedule&,
                                const Normalization&) { ++epochs_seen; };
  stop_after_two.stop_requested = [&] { return epochs_seen >= 2; };
  const RunResult stopped = run_training(small_run(part), stop_after_two);
  EXPECT_FALSE(stopped.finished);
  EXPECT_EQ(stopped.epochs.size(), 2u);
  ASSERT_TRUE(stopped.checkpoint.train_state.has_value());
  EXPECT_EQ(stopped.checkpoint.train_state->epoch, 2);
  ASSERT_TRUE(load_checkpoint(part).train_state.has_value());

  RunConfig resume;  // every training option comes from the checkpoint
  resume.resume = part;
  resume.out = part;
  const RunResult resumed = run_training(resume);
  ASSERT_TRUE(resumed.finished);
  EXPECT_EQ(resumed.epochs.size(), 4u);
  EXPECT_EQ(resumed.checkpoint.params, full.checkpoint.params);
  EXPECT_EQ(test::slurp(default_log_path(part)).size(),
            test::slurp(dir.file("full.log.csv")).size());
}

TEST(Run, FourierFeaturesReachOnlyTheResMlpAndRunsSavedWithoutThemResumeWithout) {
  RunConfig c;
  EXPECT_EQ(model_config(c, 2).fourier_features, 6);
  c.model = ModelKind::kTutorial;  // ignored by the tutorial's network, as --depth is
  EXPECT_EQ(model_config(c, 2).fourier_features, 0);
  EXPECT_EQ(model_config(RunConfig::tutorial(), 2).fourier_features, 0);

  // A run stored before the option existed has no "fourier_features": it resumes with none,
  // not with today's default.
  TempDir dir;
  const std::string part = dir.file("part.safetensors");
  RunConfig old = small_run(part);
  old.fourier_features = 0;
  old.train.epochs = 2;
  RunCallbacks stop_after_one;
  stop_after_one.stop_requested = [] { return true; };
  ASSERT_FALSE(run_training(old, stop_after_one).finished);
  Checkpoint ck = load_checkpoint(part);
  nlohmann::json options = nlohmann::json::parse(ck.train_state->train_config_json);
  ASSERT_EQ(options.at("fourier_features"), 0);
  options.erase("fourier_features");
  ck.train_state->train_config_json = options.dump();
  save_checkpoint(part, ck);
  RunConfig resume;
  resume.resume = part;
  resume.out = dir.file("done.safetensors");
  const RunResult resumed = run_training(resume);
  ASSERT_TRUE(resumed.finished);
  EXPECT_EQ(resumed.checkpoint.model.fourier_features, 0);
  // Asking a resumed run for other features is refused by name.
  resume.fourier_features = 6;
  resume.given = {"--fourier-features"};
  try {
    run_training(resume);
    ADD_FAILURE() << "resumed with other features";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--fourier-features"), std::string::npos) << e.what();
  }
}

TEST(Run, TheTutorialsNetworkStoresNoFeaturesAndRefusesResMlpOptionsGivenToIt) {
  TempDir dir;
  const std::string part = dir.file("part.safetensors");
  RunConfig c = small_run(part);
  c.model = ModelKind::kTutorial;  // fourier_features keeps RunConfig's default, 6
  c.train.epochs = 2;
  RunCallbacks stop_after_one;
  stop_after_one.stop_requested = [] { return true; };
  ASSERT_FALSE(run_training(c, stop_after_one).finished);
  const Checkpoint ck = load_checkpoint(part);
  // The saved options say what the network has.
  EXPECT_EQ(nlohmann::json::parse(ck.train_state->train_config_json).at("fourier_features"), 0);
  RunConfig resume;
  resume.resume = part;
  resume.out = dir.file("done.safetensors");
  // Given on resume, the option is refused as for a new run, whatever its value.
  resume.fourier_features = 3;
  resume.given = {"--fourier-features"};
  EXPECT_THROW(run_training(resume), UsageError);
  resume.given.clear();
  EXPECT_TRUE(run_training(resume).finished);

  // A new run given options that only the residual MLP has is refused by name, not run without.
  for (const char* option : {"--depth", "--fourier-features"}) {
    RunConfig fresh = small_run(dir.file("fresh.safetensors"));
    fresh.model = ModelKind::kTutorial;
    fresh.given = {option};
    try {
      run_training(fresh);
      ADD_FAILURE() << option << " was ignored";
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()).rfind(option, 0), 0u) << e.what();
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("fresh.safetensors")));
}

TEST(Run, PointsInMemoryTrainLikeTheSameCsvAndWarningsReachTheCaller) {
  TempDir dir;
  Dataset d;
  d.x = make_shape(Shape::kMoons, 512, 0.1, 4);
  d.x = (d.x.array() * 5.0f + 2.0f).matrix();
  d.columns = {"a", "b"};
  write_csv(dir.file("d.csv"), d.x, d.columns);
  RunConfig c = small_run("");
  c.train.epochs = 2;
  c.train.batch_size = 64;
  c.data = dir.file("d.csv");
  const RunResult from_file = run_training(c);
  std::vector<std::string> warnings;
  RunCallbacks cb;
  cb.on_warning = [&](const std::string& w) { warnings.push_back(w); };
  c.data = "in memory";
  c.schedule = ScheduleConfig::tutorial();  // leaves signal in x_T: a warning
  run_training(c, d, cb);
  c.schedule = ScheduleConfig{};
  const RunResult from_memory = run_training(c, d, cb);
  EXPECT_EQ(from_memory.checkpoint.params, from_file.checkpoint.params);
  EXPECT_EQ(from_memory.checkpoint.normalization.mean, from_file.checkpoint.normalization.mean);
  EXPECT_EQ(from_memory.checkpoint.columns, d.columns);
  // Each run is also told that 2 epochs of 8 batches are far below the default budget.
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_NE(warnings[0].find("signal"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("only 16 optimizer steps"), std::string::npos) << warnings[1];
  EXPECT_EQ(warnings[2], warnings[1]);
  EXPECT_FALSE(test::file_exists(default_log_path("")));
}

// The README's stage-by-stage example is the run the library (and `diffuse train`) performs.
TEST(Run, TheReadmesStagesGiveTheRunsWeightsAndSamples) {
  RunConfig c;
  c.data = "moons";
  c.n = 1000;
  c.hidden = 32;
  c.train.epochs = 3;
  const RunResult run = run_training(c);

  Points data = make_shape(Shape::kMoons, 1000, 0.1, /*seed=*/1);
  const Normalization norm = fit_normalization(data);
  norm.apply(data);
  RunConfig defaults;
  defaults.hidden = 32;
  defaults.train.epochs = 3;
  const Schedule s = make_schedule(defaults.schedule);
  Model model(model_config(defaults, 2));
  Rng rng = Rng(0).fork(0);
  model.init(rng);
  Trainer trainer(model, s, data, defaults.train);
  train(trainer);
  EXPECT_EQ(trainer.sampling_params(), run.checkpoint.params);
  Points x = sample(denoiser_eps_fn(model.config, trainer.sampling_params(), s, 1), s, 500, 2,
                    SampleConfig{});
  norm.undo(x);
  SampleConfig unclamped;  // sample_checkpoint also keeps x0 inside the data's range by default
  unclamped.x0_clamp = X0Clamp::kOff;
  EXPECT_EQ(x, sample_checkpoint(run.checkpoint, unclamped, 500, 1));
}

TEST(Run, CheckpointEveryNeedsAPathToSaveTo) {
  RunConfig c = small_run("");
  c.checkpoint_every = 2;
  try {
    run_training(c);
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--checkpoint-every"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace diffuse
