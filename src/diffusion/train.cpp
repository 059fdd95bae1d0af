// The training loop: epochs of shuffled mini-batches, one fused forward/backward per step over
// preallocated buffers, data-parallel over a team of threads with a fixed-order gradient reduction
// (so a seed and thread count give the same weights every time). Not a general trainer.
#include "diffuse/train.h"

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>

#include "core/thread_team.h"
#include "diffuse/error.h"
#include "diffuse/io.h"

namespace diffuse {
namespace {

std::string num(double x) {
  std::ostringstream ss;
  ss << x;
  return ss.str();
}

double now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace

std::string to_string(LrSchedule s) { return s == LrSchedule::kCosine ? "cosine" : "constant"; }

std::optional<LrSchedule> lr_schedule_from_string(std::string_view name) {
  if (name == "constant") return LrSchedule::kConstant;
  if (name == "cosine") return LrSchedule::kCosine;
  return std::nullopt;
}

std::vector<std::string> lr_schedule_names() { return {"constant", "cosine"}; }

LrSchedule parse_lr_schedule(std::string_view name) {
  if (auto k = lr_schedule_from_string(name)) return *k;
  throw unknown_name_error("--lr-schedule", "schedule", name, lr_schedule_names());
}

TrainConfig TrainConfig::tutorial() {
  TrainConfig c;
  c.lr = 1e-3;
  c.lr_schedule = LrSchedule::kConstant;
  c.warmup_steps = 0;
  c.ema_decay = 0.0;
  c.loss_weighting = LossWeighting::kUniform;
  // lr_min keeps its default: a constant rate never reads it, and resumable checkpoints of
  // tutorial runs store the same options as before the preset existed.
  return c;
}

void validate(const TrainConfig& c, int64_t n_data) {
  if (c.epochs < 0) {
    throw UsageError("--epochs: expected at least 1 (or 0 to train for --updates steps), got " +
                     num(c.epochs));
  }
  if (c.epochs == 0 && c.updates < 1) {
    throw UsageError("--updates: expected at least 1 optimizer step, got " +
                     num(static_cast<double>(c.updates)));
  }
  if (c.batch_size < 0) {
    throw UsageError("--batch-size: expected at least 1 (or 0 for min(" + num(kDefaultBatchSize) +
                     ", rows)), got " + num(c.batch_size));
  }
  if (c.batch_size > n_data) {
    throw UsageError("--batch-size: " + num(c.batch_size) + " is larger than the data (" +
                     num(static_cast<double>(n_data)) + " rows)");
  }
  if (!(c.lr > 0.0) || !std::isfinite(c.lr)) {
    throw UsageError("--lr: expected a positive learning rate, got " + num(c.lr));
  }
  if (!std::isfinite(c.grad_clip)) throw UsageError("--grad-clip: expected a finite number");
  if (c.threads < 1 || c.threads > 256) {
    throw UsageError("--threads: expected 1..256, got " + num(c.threads));
  }
  if (!(c.ema_decay >= 0.0 && c.ema_decay < 1.0)) {
    throw UsageError("--ema: expected a decay in [0, 1), got " + num(c.ema_decay));
  }
  if (c.warmup_steps < 0) throw UsageError("--warmup: expected >= 0, got " + num(c.warmup_steps));
  if (!(c.lr_min >= 0.0 && c.lr_min <= c.lr)) {
    throw UsageError("--lr-min: expected a value in [0, lr], got " + num(c.lr_min));
  }
  if (!(c.snr_gamma > 0.0) || !std::isfinite(c.snr_gamma)) {
    throw UsageError("--snr-gamma: expected a positive number, got " + num(c.snr_gamma));
  }
  if (!(c.label_dropout >= 0.0 && c.label_dropout <= 1.0)) {
    throw UsageError("--label-dropout: expected a probability in [0, 1], got " +
                     num(c.label_dropout));
  }
}

TrainConfig resolve_budget(const TrainConfig& c, int64_t n_data) {
  validate(c, n_data);
  TrainConfig r = c;
  if (r.batch_size == 0) {
    r.batch_size =
        static_cast<int>(std::min<int64_t>(kDefaultBatchSize, std::max<int64_t>(n_data, 1)));
  }
  if (r.epochs == 0) {
    const int64_t per_epoch = (n_data + r.batch_size - 1) / r.batch_size;
    const int64_t epochs = (r.updates + per_epoch - 1) / per_epoch;
    if (epochs > std::numeric_limits<int>::max()) {
      throw UsageError("--updates: " + num(static_cast<double>(r.updates)) +
                       " optimizer steps need more than 2^31 epochs");
    }
    r.epochs = static_cast<int>(epochs);
  }
  return r;
}

int64_t planned_updates(const TrainConfig& resolved, int64_t n_data) {
  if (resolved.batch_size < 1) return 0;
  return static_cast<int64_t>(resolved.epochs) *
         ((n_data + resolved.batch_size - 1) / resolved.batch_size);
}

std::optional<std::string> budget_warning(const TrainConfig& resolved, int64_t n_data) {
  const int64_t steps = planned_updates(resolved, n_data);
  if (4 * steps >= kDefaultUpdates) return std::nullopt;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "this run makes only %lld optimizer steps (%d epochs of %lld batches), far fewer "
                "than the default --updates %lld, and may not reproduce the data (--epochs, when "
                "given, sets the budget instead of --updates)",
                static_cast<long long>(steps), resolved.epochs,
                static_cast<long long>((n_data + resolved.batch_size - 1) / resolved.batch_size),
                static_cast<long long>(kDefaultUpdates));
  return std::string(buf);
}

std::optional<std::string> memorization_warning(const TrainConfig& resolved, int64_t n_data) {
  if (resolved.epochs < kCopyWarningEpochs) return std::nullopt;
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%d passes over %lld rows: samples of a run this long on so few rows tend to copy "
                "training rows (check with `diffuse eval --train`; fewer --updates copy less, "
                "docs/DEFAULTS.md)",
                resolved.epochs, static_cast<long long>(n_data));
  return std::string(buf);
}

// Per-step buffers, sized once for the largest batch.
struct Trainer::Scratch {
  ColMatrix x0, xt, eps, y, dy;  // (D, B)
  ColMatrix target;              // (D, B) when the model does not predict eps
  std::vector<float> weight;     // (B) per-column loss weights, unless uniform
  std::vector<int32_t> t;        // (B)
  std::vector<int32_t> label;    // (B) conditional models: the batch's labels after dropout
  std::vector<Workspace> ws;     // one per thread, each for its share of the batch
  std::vector<std::vector<float, Eigen::aligned_allocator<float>>> grads;  // per thread, flat
  std::vector<double> sq;  // per-thread sum of squared errors
  std::vector<TensorInfo> layout;
  std::vector<std::vector<double>> grad_sq;  // per thread: squares of its gradient slice by tensor
  std::vector<std::vector<double>> grad_sq_total;  // per thread: the sums over threads
  PackedWeights packed;   // this step's transposed weights, shared by the threads
  std::vector<double> u;  // the uniforms of the batch's noise (Rng::fill_normal_uniforms)
  std::unique_ptr<ThreadTeam> team;  // when threads > 1
};

Trainer::Trainer(Model& model, const Schedule& schedule, const Points& data,
                 const TrainConfig& config, const std::vector<int32_t>* labels)
    : model_(model),
      schedule_(schedule),
      data_(data),
      labels_(model.config.classes > 0 ? labels : nullptr),
      config_(resolve_budget(config, data.rows())),
      rng_(config.seed) {
  validate(model_.config);
  if (data_.cols() != model_.config.dim) {
    throw Error("data have " + num(static_cast<double>(data_.cols())) +
                " columns but the model expects " + num(model_.config.dim));
  }
  if (schedule_.T() != model_.config.T) {
    throw Error("schedule has T=" + num(schedule_.T()) +
                " but the model was built for T=" + num(model_.config.T));
  }
  if (model_.config.classes > 0) {
    if (labels_ == nullptr || labels_->size() != static_cast<size_t>(data_.rows())) {
      throw Error("a conditional model needs one class label per data row (" +
                  num(static_cast<double>(data_.rows())) + "), got " +
                  num(labels_ == nullptr ? 0.0 : static_cast<double>(labels_->size())));
    }
    for (int32_t k : *labels_) {
      if (k < 0 || k >= model_.config.classes) {
        throw Error("class label " + num(k) + " is outside the model's 0.." +
                    num(model_.config.classes - 1));
      }
    }
  }
  adam_ = Adam(model_.params.size(), AdamConfig{config_.lr});
  ema_ = model_.params;
  perm_.resize(static_cast<size_t>(data_.rows()));

  const int D = model_.config.dim;
  const int B = config_.batch_size;
  const int nt = config_.threads;
  scratch_ = std::make_unique<Scratch>();
  auto& s = *scratch_;
  s.x0.resize(D, B);
  s.xt.resize(D, B);
  s.eps.resize(D, B);
  s.y.resize(D, B);
  s.dy.resize(D, B);
  if (model_.config.prediction != Prediction::kEps) s.target.resize(D, B);
  if (config_.loss_weighting != LossWeighting::kUniform) s.weight.resize(B);
  s.t.resize(B);
  if (labels_ != nullptr) s.label.resize(B);
  const int per_thread = (B + nt - 1) / nt;
  for (int i = 0; i < nt; ++i) {
    s.ws.emplace_back(model_.config, per_thread);
    s.ws.back().input_grad = false;  // x is data: its gradient is never read
    s.grads.emplace_back(model_.params.size(), 0.0f);
  }
  s.sq.resize(nt);
  s.layout = param_layout(model_.config);
  if (nt > 1) {
    s.grad_sq.assign(nt, std::vector<double>(s.layout.size()));
    s.grad_sq_total = s.grad_sq;
    s.packed = PackedWeights(model_.config);
    s.u.resize(static_cast<size_t>(B) * D + 1);
    s.team = std::make_unique<ThreadTeam>(nt);
  }
}

Trainer::~Trainer() = default;

const std::vector<float>& Trainer::sampling_params() const {
  return config_.ema_decay > 0.0 ? ema_ : model_.params;
}

void Trainer::restore(int epoch, const Adam& adam, const Rng& rng, const std::vector<float>& ema) {
  if (adam.m.size() != model_.params.size() || adam.v.size() != model_.params.size()) {
    throw Error("resume: optimizer state does not match the model's parameter count");
  }
  epoch_ = epoch;
  adam_ = adam;
  adam_.config.lr = config_.lr;
  rng_ = rng;
  if (!ema.empty()) {
    if (ema.size() != model_.params.size()) throw Error("resume: EMA weights have the wrong size");
    ema_ = ema;
  }
}

double Trainer::learning_rate(int64_t step) const {
  const int64_t steps_per_epoch = (data_.rows() + config_.batch_size - 1) / config_.batch_size;
  const int64_t total = steps_per_epoch * config_.epochs;
  double lr = config_.lr;
  if (config_.lr_schedule == LrSchedule::kCosine && total > 1) {
    // Loshchilov & Hutter 2017 (SGDR), one cycle without restarts.
    const double progress = static_cast<double>(step) / static_cast<double>(total - 1);
    lr = config_.lr_min +
         0.5 * (config_.lr - config_.lr_min) * (1.0 + std::cos(std::numbers::pi * progress));
  }
  // Warm-up is capped at a tenth of the run, so a short run still trains at the full rate.
  const int64_t warmup = std::min<int64_t>(config_.warmup_steps, total / 10);
  if (warmup > 0 && step < warmup) {
    lr *= static_cast<double>(step + 1) / static_cast<double>(warmup);
  }
  return lr;
}

namespace {

Error loss_error(double loss, int epoch, int64_t step) {
  return Error("training diverged: the loss became " + num(loss) + " at epoch " + num(epoch) +
               ", step " + num(static_cast<double>(step)) +
               " (try a smaller --lr); the weights from before this step are kept");
}

Error norm_error(float norm, int epoch) {
  return Error("training diverged: the gradient norm became " + num(norm) + " at epoch " +
               num(epoch) + " (try a smaller --lr); the weights from before are kept");
}

}  // namespace

// Columns [lo, hi) of a batch of B whose x_t, eps and t are drawn: y = eps_theta(x_t, t), the MSE's
// squared errors and dL/dy, and the backward, in thread p's workspace and gradient buffer. packed
// is null at one thread (model_forward packs the weights itself).
void Trainer::columns(int lo, int hi, int B, int p, const PackedWeights* packed) {
  auto& s = *scratch_;
  const ModelConfig& c = model_.config;
  const int D = c.dim;
  const int b = hi - lo;
  const size_t off = static_cast<size_t>(lo) * D;
  const float* params = model_.params.data();
  float* y = s.y.data() + off;
  float* dy = s.dy.data() + off;
  // The regression target: the noise itself, or what noise_columns made of it.
  const float* target = (s.target.size() > 0 ? s.target.data() : s.eps.data()) + off;
  const int32_t* labels = s.label.empty() ? nullptr : s.label.data() + lo;
  if (packed == nullptr) {
    model_forward(c, params, s.xt.data() + off, s.t.data() + lo, b, s.ws[p], y, labels);
  } else {
    model_forward(c, params, *packed, s.xt.data() + off, s.t.data() + lo, b, s.ws[p], y, labels);
  }
  const float scale = 2.0f / static_cast<float>(static_cast<size_t>(B) * D);  // d mean / d y
  double sq = 0.0;
  if (s.weight.empty()) {
    for (size_t i = 0; i < static_cast<size_t>(b) * D; ++i) {
      const float d = y[i] - target[i];
      sq += static_cast<double>(d) * d;
      dy[i] = scale * d;
    }
  } else {  // sum_j w_j |y_j - target_j|^2 / (B D)
    for (int j = 0; j < b; ++j) {
      const float w = s.weight[lo + j];
      for (size_t i = static_cast<size_t>(j) * D; i < static_cast<size_t>(j + 1) * D; ++i) {
        const float d = y[i] - target[i];
        sq += static_cast<double>(w) * d * d;
        dy[i] = scale * w * d;
      }
    }
  }
  s.sq[p] = sq;
  model_backward(c, params, s.xt.data() + off, s.t.data() + lo, b, dy, s.ws[p], s.grads[p].data(),
                 labels);
}

// x_0 for columns [lo, hi) of the batch starting at perm_[first], and x_t from x_0, eps and t.
void Trainer::noise_columns(int64_t first, int lo, int hi) {
  auto& s = *scratch_;
  const int D = model_.config.dim;
  for (int j = lo; j < hi; ++j) {
    const float* src = data_.data() + static_cast<size_t>(perm_[first + j]) * D;
    std::copy(src, src + D, s.x0.data() + static_cast<size_t>(j) * D);
  }
  const size_t off = static_cast<size_t>(lo) * D;
  q_sample(schedule_, s.x0.data() + off, s.eps.data() + off, s.t.data() + lo, hi - lo, D,
           s.xt.data() + off);
  const Prediction pred = model_.config.prediction;
  for (int j = lo; j < hi; ++j) {
    const size_t o = static_cast<size_t>(j) * D;
    if (pred != Prediction::kEps) {
      prediction_target(pred, schedule_, s.t[j], s.x0.data() + o, s.eps.data() + o, D,
                        s.target.data() + o);
    }
    if (!s.weight.empty()) {
      s.weight[j] = static_cast<float>(
          loss_weight(config_.loss_weighting, config_.snr_gamma, pred, schedule_, s.t[j]));
    }
  }
}

// The labels of the batch starting at perm_[first], each replaced by the null class with
// probability label_dropout: one uniform per row from the trainer's RNG, in column order.
void Trainer::draw_labels(int64_t first, int B) {
  if (labels_ == nullptr) return;
  auto& s = *scratch_;
  const double p = config_.label_dropout;
  for (int j = 0; j < B; ++j) {
    s.label[j] = (*labels_)[perm_[first + j]];
    if (p > 0.0 && rng_.uniform() < p) s.label[j] = null_label(model_.config);
  }
}

float Trainer::ema_decay_next() const {
  // EMA decay with a warm-up (as in TensorFlow's ExponentialMovingAverage with num_updates) so the
  // average is not dominated by the random initial weights in short runs. For the coming step:
  // num_updates is the step count after its Adam step.
  const double k = static_cast<double>(adam_.step_count + 1);
  return static_cast<float>(std::min(config_.ema_decay, (1.0 + k) / (10.0 + k)));
}

// One thread: draw the batch (its timesteps and noise in one fixed order, whatever the thread
// count), forward, backward, clip, Adam, EMA.
void Trainer::step(int64_t first, int B) {
  auto& s = *scratch_;
  const int D = model_.config.dim;
  for (int j = 0; j < B; ++j) {
    s.t[j] = static_cast<int32_t>(rng_.below(static_cast<uint32_t>(model_.config.T)));
  }
  draw_labels(first, B);
  rng_.fill_normal(s.eps.data(), static_cast<size_t>(B) * D);
  noise_columns(first, 0, B);
  columns(0, B, B, 0, nullptr);
  last_loss_ = s.sq[0] / (static_cast<double>(B) * D);
  if (!std::isfinite(last_loss_)) throw loss_error(last_loss_, epoch_ + 1, adam_.step_count + 1);
  const float* grads = s.grads[0].data();
  float coef = 1.0f;  // clipping, applied inside the update
  if (config_.grad_clip > 0.0) {
    const float norm = grad_norm(grads, s.layout);
    if (!std::isfinite(norm)) throw norm_error(norm, epoch_ + 1);
    coef = clip_coefficient(norm, static_cast<float>(config_.grad_clip));
  }
  const float decay = ema_decay_next();
  const auto scalars = adam_.begin_step(learning_rate(adam_.step_count));
  adam_.update(scalars, model_.params.data(), grads, 0, model_.params.size(), coef,
               config_.ema_decay > 0.0 ? ema_.data() : nullptr, decay);
}

// Several threads: one team region for the whole epoch, four barriers a step.
//   A  thread 0 draws the timesteps and the uniforms of the noise (one sequential stream, as
//      above); the threads pack the transposed weights, a layer each; the last one computes the
//      step's Adam scalars.
//   B  each thread turns its columns' uniforms into normals, draws x_t and runs forward and
//      backward on its columns.
//   C  each sums its slice of the gradients over the threads in thread order, with its squares.
//   D  each takes the loss and the norm from all the partial sums (the same sums in the same
//      order, so every thread takes the same decisions), then clips and updates its slice.
// Deterministic for a given thread count. Returns the steps run; on divergence, stops with the
// weights from before the failing step and throws.
int Trainer::parallel_epoch(double& loss_sum) {
  auto& s = *scratch_;
  ThreadTeam& team = *s.team;
  const ModelConfig& c = model_.config;
  const int D = c.dim;
  const int nt = team.size();
  const int64_t N = data_.rows();
  const size_t n = model_.params.size();
  float* w = model_.params.data();
  Adam::StepScalars scalars{};
  float decay = 0.0f, bad_norm = 0.0f;
  double bad_loss = 0.0;
  bool failed_loss = false, failed_norm = false;
  int steps = 0;
  // Parameter slices in whole 64-byte lines, so no two threads write one line.
  auto bound = [&](int q) { return q == nt ? n : n * q / nt / 16 * 16; };

  auto body = [&](int p) {
    const size_t lo = bound(p), hi = bound(p + 1);
    float* gp = s.grads[p].data();
    for (int64_t first = 0; first < N; first += config_.batch_size) {
      const int B = static_cast<int>(std::min<int64_t>(config_.batch_size, N - first));
      const int active = std::min(nt, B);  // threads with columns in this batch
      // A
      if (p == 0) {
        for (int j = 0; j < B; ++j) {
          s.t[j] = static_cast<int32_t>(rng_.below(static_cast<uint32_t>(c.T)));
        }
        draw_labels(first, B);
        rng_.fill_normal_uniforms(s.u.data(), static_cast<size_t>(B) * D);
      }
      if (p == nt - 1) {
        decay = ema_decay_next();
        scalars = adam_.begin_step(learning_rate(adam_.step_count));
      }
      pack_weights(c, w, s.packed, p, nt);
      team.sync();
      // B
      if (p < active) {
        const int c0 = static_cast<int>(static_cast<int64_t>(B) * p / active);
        const int c1 = static_cast<int>(static_cast<int64_t>(B) * (p + 1) / active);
        const size_t v0 = static_cast<size_t>(c0) * D, v1 = static_cast<size_t>(c1) * D;
        Rng::box_muller(s.u.data(), v0, v1, s.eps.data() + v0);
        noise_columns(first, c0, c1);
        columns(c0, c1, B, p, &s.packed);
      }
      team.sync();
      // C: the sum lands in this thread's own buffer (its lines stay here for Adam), in chunks so
      // that each pass vectorizes.
      for (size_t i0 = lo; i0 < hi; i0 += 256) {
        const size_t m = std::min<size_t>(256, hi - i0);
        alignas(64) float sum[256];
        std::copy_n(s.grads[0].data() + i0, m, sum);
        for (int q = 1; q < active; ++q) {
          const float* gq = s.grads[q].data() + i0;
          for (size_t i = 0; i < m; ++i) sum[i] += gq[i];
        }
        std::copy_n(sum, m, gp + i0);
      }
      std::fill(s.grad_sq[p].begin(), s.grad_sq[p].end(), 0.0);
      if (config_.grad_clip > 0.0) add_squares(gp, s.layout, lo, hi, s.grad_sq[p].data());
      team.sync();
      // D
      double sq = 0.0;
      for (int q = 0; q < active; ++q) sq += s.sq[q];
      const double loss = sq / (static_cast<double>(B) * D);
      if (!std::isfinite(loss)) {
        if (p == 0) failed_loss = true, bad_loss = loss;
        break;
      }
      float coef = 1.0f;
      if (config_.grad_clip > 0.0) {
        std::vector<double>& total = s.grad_sq_total[p];
        total = s.grad_sq[0];  // no allocation: same size
        for (int q = 1; q < nt; ++q) {
          for (size_t k = 0; k < s.layout.size(); ++k) total[k] += s.grad_sq[q][k];
        }
        const float norm = norm_from_squares(total.data(), s.layout.size());
        if (!std::isfinite(norm)) {
          if (p == 0) failed_norm = true, bad_norm = norm;
          break;
        }
        coef = clip_coefficient(norm, static_cast<float>(config_.grad_clip));
      }
      adam_.update(scalars, w, gp, lo, hi, coef, config_.ema_decay > 0.0 ? ema_.data() : nullptr,
                   decay);
      if (p == 0) {
        last_loss_ = loss;
        loss_sum += loss;
        ++steps;
      }
      team.sync();  // every slice is updated before the next step packs the weights
    }
  };
  team.run(body);
  if (failed_loss || failed_norm) {
    --adam_.step_count;  // begin_step ran ahead: nothing was updated
    last_loss_ = bad_loss;
    if (failed_loss) throw loss_error(bad_loss, epoch_ + 1, adam_.step_count + 1);
    throw norm_error(bad_norm, epoch_ + 1);
  }
  return steps;
}

EpochStats Trainer::run_epoch() {
  if (done()) throw Error("training is already complete");
  if (start_s_ < 0) start_s_ = now_s();
  const int64_t N = data_.rows();
  // Fisher-Yates shuffle of the row order.
  for (int64_t i = 0; i < N; ++i) perm_[i] = static_cast<uint32_t>(i);
  for (int64_t i = N - 1; i > 0; --i) {
    const uint32_t j = rng_.below(static_cast<uint32_t>(i + 1));
    std::swap(perm_[i], perm_[j]);
  }
  double loss_sum = 0.0;
  int steps = 0;
  if (scratch_->team) {
    steps = parallel_epoch(loss_sum);
  } else {
    for (int64_t first = 0; first < N; first += config_.batch_size) {
      const int B = static_cast<int>(std::min<int64_t>(config_.batch_size, N - first));
      step(first, B);
      loss_sum += last_loss_;
      ++steps;
    }
  }
  ++epoch_;
  steps_this_run_ += steps;
  EpochStats st;
  st.epoch = epoch_;
  st.epochs = config_.epochs;
  st.mean_loss = loss_sum / steps;
  st.last_loss = last_loss_;
  st.steps = adam_.step_count;
  st.seconds = now_s() - start_s_;
  st.steps_per_s = st.seconds > 0 ? static_cast<double>(steps_this_run_) / st.seconds : 0.0;
  return st;
}

std::vector<EpochStats> train(Trainer& trainer, const EpochCallback& on_epoch) {
  std::vector<EpochStats> stats;
  while (!trainer.done()) {
    stats.push_back(trainer.run_epoch());
    if (on_epoch && !on_epoch(stats.back(), trainer)) break;
  }
  return stats;
}

void check_training_memory(const ModelConfig& mc, int64_t rows, const TrainConfig& c) {
  // In double: --hidden 1000000 has 2e12 weights, and the byte counts must not wrap.
  const double weights = static_cast<double>(param_count(mc));
  const int64_t batch_size = c.batch_size > 0 ? c.batch_size : kDefaultBatchSize;  // 0: default
  const double batch =
      static_cast<double>(std::max<int64_t>(std::min<int64_t>(batch_size, rows), 1));
  const double bytes = 4.0 * (12.0 * weights + 16.0 * batch * mc.hidden * std::max(c.threads, 1) +
                              3.0 * static_cast<double>(rows) * mc.dim);
  const double capped = std::min(bytes, 1.8e19);
  char what[160];
  std::snprintf(what, sizeof what, "--hidden %d, --steps %d, --batch-size %d (%.3g weights)",
                mc.hidden, mc.T, c.batch_size, weights);
  check_memory(static_cast<uint64_t>(capped), what, /*usage=*/true);
}

}  // namespace diffuse
