// Pieces the subcommands share: the training options (train and demo take the same ones), the
// training run itself, and small output helpers. Orchestration only; the work is in the library.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/metrics.h"
#include "diffuse/sampler.h"
#include "diffuse/schedule.h"
#include "diffuse/train.h"

namespace diffuse::cli {

struct TrainOptions {
  std::string data = "swiss_roll";  // shape name or CSV path
  int n = 10000;                    // points generated for a shape
  double noise = 0.1;               // noise of a generated shape
  std::string schedule = "sigmoid";
  ScheduleConfig schedule_config;
  int hidden = 128;
  TrainConfig train;
  std::string out;           // checkpoint path
  std::string log;           // per-epoch CSV log; default: next to the checkpoint
  int checkpoint_every = 0;  // epochs between resumable saves; 0: only at the end
  std::string resume;        // checkpoint to continue from
  bool quiet = false;
};

// The tutorial's own training settings: sigmoid schedule, T=100, beta 1e-4..0.02, lr 1e-3
// constant, no EMA (our defaults differ where measurement said so; see docs/DEFAULTS.md).
void apply_tutorial_settings(TrainOptions& o);

// Registers every training option on cmd (defaults shown in --help).
void add_train_options(CLI::App* cmd, TrainOptions& o);

// The per-epoch hook a caller may add (snapshots); return false to stop.
using ExtraEpochHook =
    std::function<void(const EpochStats&, const Trainer&, const Schedule&, const Normalization&)>;

// Trains as the options say, saves the checkpoint (and the log), returns it. Ctrl-C / SIGTERM stop
// after the current epoch and save a resumable checkpoint.
Checkpoint run_training(const TrainOptions& o, const ExtraEpochHook& hook = {});

// The default log path for a checkpoint path: "model.safetensors" -> "model.log.csv".
std::string default_log_path(const std::string& checkpoint);

// Samples n points from a checkpoint, in the data's units.
Points sample_checkpoint(const Checkpoint& ckpt, const SampleConfig& sc, int n, int threads,
                         Trajectory* trajectory = nullptr);

// Evaluates samples against a reference: a shape name or a CSV path.
EvalResult evaluate_against(const Points& samples, const std::string& against, double noise,
                            uint64_t seed);
std::string eval_json(const EvalResult& r);
std::string eval_text(const EvalResult& r);

// Parses a --schedule / --sampler / --variance name or throws UsageError listing the choices.
ScheduleKind parse_schedule(const std::string& name);
SamplerKind parse_sampler(const std::string& name);
VarianceKind parse_variance(const std::string& name);

}  // namespace diffuse::cli
