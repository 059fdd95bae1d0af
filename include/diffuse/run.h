// A whole training run as `diffuse train` and the Python module perform it: data (a built-in shape,
// a CSV file or points in memory) -> per-column standardization (user data) -> schedule -> model ->
// Trainer, with the per-epoch loss log, periodic resumable checkpoints, resume, and a clean stop
// after the current epoch on request; and sampling a checkpoint in the data's units.
// It installs no signal handler and prints nothing: stopping, progress and warnings are the
// caller's callbacks (the CLI maps Ctrl-C to stop_requested, Python checks its signals there).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/denoiser.h"
#include "diffuse/model.h"
#include "diffuse/sampler.h"
#include "diffuse/schedule.h"
#include "diffuse/train.h"

namespace diffuse {

// Points drawn by `diffuse sample` and Model.sample, and by a recorded reverse process (`diffuse
// animate`, Model.sample_trajectory, training snapshots), which keeps every state and so draws
// fewer. Their thread count and sampler settings default to SampleConfig{}'s.
inline constexpr int kDefaultSamplePoints = 10000;
inline constexpr int kDefaultTrajectoryPoints = 2000;
// Points a run draws from a built-in shape (`diffuse data` draws ShapeConfig{}'s 10,000). The
// budget is counted in optimizer steps, so more points cost no training time; a model of 10,000
// points learns that draw, its sampling noise included (8gaussians' mode weights, the rings of
// circles), which the evaluation against a fresh draw counts against it. Without the input
// features, 100,000 points took 8gaussians from 1.39 to 1.12 and circles from 1.41 to 1.08 (DDPM,
// 3 seeds; with the features every shape scored 1.06-1.22: docs/DEFAULTS.md). The tutorial's run
// keeps 10,000.
inline constexpr int kDefaultTrainingPoints = 100000;

// Every setting of a run. A default-constructed RunConfig is `diffuse train`'s defaults (the
// schedule's and optimizer's come from ScheduleConfig{} and TrainConfig{}; measured in
// docs/DEFAULTS.md); RunConfig::tutorial() is the tutorial's own run (`--as-tutorial`).
struct RunConfig {
  std::string data = "swiss_roll";     // shape name or CSV path (a label when points are given)
  int n = kDefaultTrainingPoints;      // points generated for a shape
  double noise = ShapeConfig{}.noise;  // noise of a generated shape
  ScheduleConfig schedule;
  int hidden = 64;  // hidden width H of the model
  // Train on standardized columns (mean 0, std 1), built-in shapes and points in memory included;
  // the checkpoint stores the normalization and sampling undoes it. The tutorial trains on the
  // raw points (false in tutorial()).
  bool standardize = true;
  ModelKind model = ModelKind::kResMlp;  // the network (model.h)
  int depth = 2;                         // kResMlp: residual blocks
  // kResMlp: octaves K of the input's Fourier features (ModelConfig::fourier_features; 0: none).
  // The tutorial's network has none and ignores it, as it ignores depth.
  int fourier_features = 6;
  Prediction prediction = Prediction::kV;  // what the network predicts (denoiser.h)
  // The data column that holds each row's class: a class-conditional model (kResMlp) with a class
  // embedding, trained with train.label_dropout; the other columns are the features. Empty:
  // unconditional.
  std::string label_column;
  TrainConfig train;
  std::string out;           // checkpoint path; empty: nothing is written (no log either)
  std::string log;           // per-epoch CSV log; empty: default_log_path(out)
  int checkpoint_every = 0;  // epochs between resumable saves to `out`; 0: only at the end
  std::string resume;        // checkpoint to continue from (its saved options replace these)
  // Training snapshots: every snapshot_every epochs (0: never) and after the last one, the reverse
  // process of snapshot_points samples from the current sampling weights (seed: train.seed,
  // threads: train.threads; sampled as sample_checkpoint does) drawn as
  // SNAPSHOT_DIR/reverse_epoch_NNNN.png (plot_reverse_strip), in a folder that must exist. Not
  // stored: a resumed run may change them. A snapshot that cannot be written is a warning and a
  // RunResult::side_output_errors entry; training goes on.
  int snapshot_every = 0;
  std::string snapshot_dir = "snapshots";
  int snapshot_points = kDefaultTrajectoryPoints;
  // The options the caller set explicitly, by their command-line names ("--lr", "-n", ...; see
  // docs/RELIABILITY.md). A new run refuses --beta-start/--beta-end given with the cosine
  // schedule (which would ignore them). On resume each is validated as an option; --epochs (more
  // than are done) and --threads replace the stored values; any other that differs from the
  // stored run's value is a UsageError naming it and the stored value. Empty: the stored options
  // are used as they are.
  std::set<std::string> given;

  // The tutorial's settings: ScheduleConfig::tutorial(), TrainConfig::tutorial(), its network
  // with H = 128 predicting eps.
  static RunConfig tutorial();
};

// The network a run of `c` trains on `dim` columns: c's hidden width, depth, Fourier features
// (resmlp only), kind and prediction target over c.schedule.T steps (what run_training builds; the
// README's stage-by-stage example uses it to get the CLI's network).
ModelConfig model_config(const RunConfig& c, int dim);

// What a caller hears from a run; every member may be empty.
struct RunCallbacks {
  // After each epoch, before the snapshot and the periodic checkpoint (progress bars).
  std::function<void(const EpochStats&, const Trainer&, const Schedule&, const Normalization&)>
      on_epoch;
  // Asked after each epoch (after the periodic checkpoint); true stops the run there.
  std::function<bool()> stop_requested;
  // One-line warnings (a schedule that leaves signal in x_T, a constant column). Empty: written
  // to stderr as "diffuse: warning: ...".
  std::function<void(const std::string&)> on_warning;
};

struct RunResult {
  // The model (sampling weights, schedule, normalization, columns). When the run stopped early it
  // also holds the training state, so that saving it gives a resumable checkpoint.
  Checkpoint checkpoint;
  std::vector<EpochStats> epochs;  // the epochs run in this call
  bool finished = false;           // false: stopped on request before the last epoch
  // Side outputs that failed ("--log PATH could not be written: ...", "a snapshot could not be
  // written: ..."), at most one of each: the model exists; the caller reports these (the CLI
  // exits 3).
  std::vector<std::string> side_output_errors;
};

// The fewest training rows a class may have: a class with one row is one memorized point (and far
// more often a typo in the label column than a real class).
inline constexpr int64_t kMinClassRows = 2;

// Runs config: loads the data (or the run to resume), trains, and when config.out is set writes
// the checkpoint and then the log (resumable when stopped early, also every checkpoint_every
// epochs). Throws UsageError naming the option for a bad setting (including an output that is the
// data or the resumed checkpoint, or sizes that do not fit in memory), Error for bad data, an
// unusable resume checkpoint (a bad stored option is the file's error) or a numeric failure
// (naming the last good checkpoint, if any). A log that cannot be written does not throw: see
// RunResult::side_output_errors.
RunResult run_training(const RunConfig& config, const RunCallbacks& callbacks = {});
// The same on points in memory: data.x is (N, D) and standardized per column like a CSV file;
// config.data, n and noise only label the run.
RunResult run_training(const RunConfig& config, const Dataset& data,
                       const RunCallbacks& callbacks = {});
// The same, standardizing `data` in place instead of in a copy (the Python module's array).
RunResult run_training(const RunConfig& config, Dataset&& data, const RunCallbacks& callbacks = {});

// The default log path for a checkpoint path: "model.safetensors" -> "model.log.csv".
std::string default_log_path(const std::string& checkpoint);

// Samples n points from a checkpoint with `threads` threads, in the data's units (the
// standardization undone). sc.x0_clamp keeps every step's x0 prediction inside the checkpoint's
// data range (none stored: no clamp; sc.x0_range is ignored) and the output is clipped to it;
// sc.round_integers rounds its integer columns. Throws UsageError for n < 1 or a bad sampler
// configuration.
// A conditional checkpoint samples sc.label (with guidance sc.guidance) or, with kEveryClass,
// each row's class from sample_labels; UsageError for a class on an unconditional model, a label
// outside its classes, or guidance without a class.
Points sample_checkpoint(const Checkpoint& ckpt, const SampleConfig& sc, int n, int threads,
                         Trajectory* trajectory = nullptr);

// The class labels of rows [first, first + m) that sample_checkpoint draws from a conditional
// checkpoint (empty for an unconditional one): sc.label for every row, or with kEveryClass each
// row's class drawn in the proportions of ckpt.class_counts from its own uniform of a stream
// seeded by sc.seed (one draw a row), so a row's class depends on the seed and its index only,
// never on n, the chunking or the threads.
std::vector<int32_t> sample_labels(const Checkpoint& ckpt, const SampleConfig& sc, int64_t first,
                                   int m);
// The label of class `name` in ckpt.classes; UsageError naming --class when the model has no
// classes or does not know the name (listing the ones it knows).
int class_label(const Checkpoint& ckpt, std::string_view name);

// sample_checkpoint's n points in chunks of chunk_rows (a positive multiple of 256), each handed
// to sink(first_row, points) in the data's units, so that memory does not grow with n. The points
// are sample_checkpoint's, bit for bit, for the same seed and threads (sample_chunked). stop() is
// asked after every sampler step; true throws Interrupted.
void sample_checkpoint_chunked(const Checkpoint& ckpt, const SampleConfig& sc, int64_t n,
                               int threads, int chunk_rows,
                               const std::function<void(int64_t first, const Points& x)>& sink,
                               const std::function<bool()>& stop = {});

}  // namespace diffuse
