// The training loop (Ho et al. 2020, Algorithm 1): shuffled epochs of mini-batches, t uniform in
// {0..T-1}, eps ~ N(0, I), MSE between the model's output and its prediction target (eps, x0 or v;
// denoiser.h), optionally weighted per noise level, Adam with gradient clipping. A conditional
// model sees each row's class label, dropped to the null class with probability label_dropout.
// Gradients are this step's alone (the tutorial forgets optimizer.zero_grad()).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/denoiser.h"
#include "diffuse/model.h"
#include "diffuse/optim.h"
#include "diffuse/rng.h"
#include "diffuse/schedule.h"
#include "diffuse/tensor.h"

namespace diffuse {

enum class LrSchedule { kConstant, kCosine };
std::string to_string(LrSchedule s);  // "constant", "cosine"
std::optional<LrSchedule> lr_schedule_from_string(std::string_view name);
std::vector<std::string> lr_schedule_names();
// The learning-rate schedule of that name, or unknown_name_error naming --lr-schedule.
LrSchedule parse_lr_schedule(std::string_view name);

// The default training budget, in optimizer steps: the tutorial's 1000 epochs of 10,000 points in
// batches of 128 (79 steps an epoch), so that 150 rows get as many updates as 10,000.
inline constexpr int64_t kDefaultUpdates = 79000;
inline constexpr int kDefaultBatchSize = 128;  // the batch size when the data have more rows

// The defaults are `diffuse train`'s, measured in docs/DEFAULTS.md (scripts/defaults_study.py):
// lr 2e-3 with 1000 warm-up steps and cosine decay to 1e-5, EMA weights, kDefaultUpdates steps,
// the plain MSE on v (uniform weighting).
// tutorial() is the tutorial's own optimizer (lr 1e-3 constant, no EMA, no warm-up, the plain MSE)
// with the same budget.
struct TrainConfig {
  int epochs = 0;                     // passes over the data; 0: as many as `updates` needs
  int64_t updates = kDefaultUpdates;  // the budget in optimizer steps, used when epochs is 0
  int batch_size = 0;                 // points per step; 0: min(kDefaultBatchSize, rows)
  double lr = 2e-3;
  double grad_clip = 1.0;  // max global gradient norm; <= 0 disables clipping
  uint64_t seed = 0;
  int threads = 1;           // results are identical for a given seed and thread count
  double ema_decay = 0.999;  // 0: no EMA; else ema = decay * ema + (1 - decay) * params
  int warmup_steps = 1000;   // linear learning-rate warm-up from 0, capped at a tenth of the run
  LrSchedule lr_schedule = LrSchedule::kCosine;  // kCosine: decay to lr_min at the last step
  double lr_min = 1e-5;
  // Uniform on v (the default target) is (SNR + 1) times the x0 error: it weights the nearly clean
  // levels that shape sharp features far more than min-SNR does, which the 2026-12-02 study found
  // better on every built-in shape (docs/DEFAULTS.md).
  LossWeighting loss_weighting = LossWeighting::kUniform;
  double snr_gamma = 5.0;  // kMinSnr's gamma (Hang et al. 2023's choice)
  // A conditional model: the probability that a row's label is replaced by the null class in a
  // training step (Ho & Salimans 2022's p_uncond; 0.1 is diffusers' and their paper's common
  // choice), so that the one network also learns the unconditional prediction that guidance needs.
  double label_dropout = 0.1;

  static TrainConfig tutorial();
};

// Throws UsageError naming the option (--epochs, --updates, --batch-size, --lr, ...) for an invalid
// value, including a batch size larger than the data.
void validate(const TrainConfig& c, int64_t n_data);

// c with the budget fixed for n_data rows: batch_size 0 becomes min(kDefaultBatchSize, n_data),
// epochs 0 the fewest whole epochs that make at least c.updates optimizer steps. The Trainer
// trains with this. Throws UsageError as validate() does.
TrainConfig resolve_budget(const TrainConfig& c, int64_t n_data);
// Optimizer steps a resolved config makes on n_data rows: epochs * ceil(n_data / batch_size).
int64_t planned_updates(const TrainConfig& resolved, int64_t n_data);
// A one-line warning when a resolved config makes far fewer optimizer steps (under a quarter)
// than kDefaultUpdates, which undertrains (iris at 2,000 steps loses the gap between its species).
std::optional<std::string> budget_warning(const TrainConfig& resolved, int64_t n_data);
// Passes over the data from which memorization_warning speaks.
inline constexpr int kCopyWarningEpochs = 25000;
// A one-line warning when a resolved config makes at least kCopyWarningEpochs passes over the
// rows: samples from so long a run on few rows tend to copy training rows. Measured at the default
// budget (docs/DEFAULTS.md): iris (120 rows, 79,000 epochs) and wine (142 rows, 39,500) gave
// copy_share 0.96 and 0.97, and --updates 5000 the same held-out score with 0.34 and 0.28; breast
// cancer (455 rows, 19,750 epochs) 0.10 and digits (1,437 rows, 6,584) 0.00 are not warned about.
std::optional<std::string> memorization_warning(const TrainConfig& resolved, int64_t n_data);
// Throws UsageError naming --hidden, --steps and --batch-size (and the weight count) when training
// this model on `rows` points would need more memory than is available (available_memory_bytes):
// the weights, their gradients, Adam's two moments, the EMA and raw copies and a checkpoint's
// serialized copies (~12 floats per weight), a batch's activations per thread, and the data.
// Call before allocating the model.
void check_training_memory(const ModelConfig& mc, int64_t rows, const TrainConfig& c);

struct EpochStats {
  int epoch = 0;           // 1-based number of epochs finished
  int epochs = 0;          // total planned
  double mean_loss = 0.0;  // mean of this epoch's step losses
  double last_loss = 0.0;
  int64_t steps = 0;     // optimizer steps so far
  double seconds = 0.0;  // wall time so far in this process
  double steps_per_s = 0.0;
};

// Holds all training state, so that a run can be stepped, snapshotted and resumed.
class Trainer {
 public:
  // data are (N, D) points, already normalized; model must match D. model is owned by the caller
  // and updated in place. config() is config with its budget resolved (resolve_budget). A
  // conditional model (model.config.classes = C > 0) needs labels: N labels in 0..C-1, one per
  // row, which must outlive the Trainer; each step draws, after the batch's timesteps, one uniform
  // per row from the trainer's RNG for the label dropout (none when label_dropout is 0).
  Trainer(Model& model, const Schedule& schedule, const Points& data, const TrainConfig& config,
          const std::vector<int32_t>* labels = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs one epoch; returns its stats. Throws Error if the loss becomes NaN or Inf (the model then
  // holds the weights from before the failing step).
  EpochStats run_epoch();
  int epoch() const { return epoch_; }
  bool done() const { return epoch_ >= config_.epochs; }

  const Model& model() const { return model_; }
  // EMA weights when ema_decay > 0, else the raw weights.
  const std::vector<float>& sampling_params() const;
  const std::vector<float>& ema_params() const { return ema_; }
  const Adam& adam() const { return adam_; }
  const Rng& rng() const { return rng_; }
  const TrainConfig& config() const { return config_; }

  // Restores state saved from an earlier run (resume).
  void restore(int epoch, const Adam& adam, const Rng& rng, const std::vector<float>& ema);

  double learning_rate(int64_t step) const;

 private:
  void step(int64_t first, int B);
  int parallel_epoch(double& loss_sum);
  void columns(int lo, int hi, int B, int p, const PackedWeights* packed);
  void noise_columns(int64_t first, int lo, int hi);
  void draw_labels(int64_t first, int B);
  float ema_decay_next() const;

  Model& model_;
  const Schedule& schedule_;
  const Points& data_;
  const std::vector<int32_t>* labels_;  // conditional models: one per row of data_
  TrainConfig config_;
  Adam adam_;
  Rng rng_;
  int epoch_ = 0;
  double last_loss_ = 0.0;
  double start_s_ = -1.0;
  int64_t steps_this_run_ = 0;
  std::vector<float> ema_;
  std::vector<uint32_t> perm_;
  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
};

// Called after each epoch; return false to stop early (e.g. on Ctrl-C).
using EpochCallback = std::function<bool(const EpochStats&, const Trainer&)>;

// Runs the trainer to its last epoch, calling back after every epoch. Returns per-epoch stats.
std::vector<EpochStats> train(Trainer& trainer, const EpochCallback& on_epoch = {});

}  // namespace diffuse
