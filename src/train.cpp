// The training loop: epochs of shuffled mini-batches, one fused forward/backward per step over
// preallocated buffers, data-parallel over OpenMP threads with a fixed-order gradient reduction
// (so a seed and thread count give the same weights every time). Not a general trainer.
#include "diffuse/train.h"

#include <omp.h>

#include <Eigen/Core>
#include <chrono>
#include <cmath>
#include <numbers>
#include <sstream>
#include <string>

#include "diffuse/error.h"

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

void validate(const TrainConfig& c, int64_t n_data) {
  if (c.epochs < 1) throw UsageError("--epochs: expected at least 1, got " + num(c.epochs));
  if (c.batch_size < 1) {
    throw UsageError("--batch-size: expected at least 1, got " + num(c.batch_size));
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
}

// Per-step buffers, sized once for the largest batch.
struct Trainer::Scratch {
  ColMatrix x0, xt, eps, y, dy;  // (D, B)
  std::vector<int32_t> t;        // (B)
  std::vector<Workspace> ws;     // one per thread, each for its share of the batch
  std::vector<std::vector<float, Eigen::aligned_allocator<float>>> grads;  // per thread, flat
  std::vector<double> sq;  // per-thread sum of squared errors
  std::vector<TensorInfo> layout;
  std::vector<std::vector<double>> grad_sq;  // per thread: squares of its gradient slice by tensor
  std::vector<std::vector<double>> grad_sq_total;  // per thread: the sums over threads
  PackedWeights packed;  // this step's transposed weights, shared by the threads
};

Trainer::Trainer(Model& model, const Schedule& schedule, const Points& data,
                 const TrainConfig& config)
    : model_(model), schedule_(schedule), data_(data), config_(config), rng_(config.seed) {
  validate(config_, data_.rows());
  validate(model_.config);
  if (data_.cols() != model_.config.dim) {
    throw Error("data have " + num(static_cast<double>(data_.cols())) +
                " columns but the model expects " + num(model_.config.dim));
  }
  if (schedule_.T() != model_.config.T) {
    throw Error("schedule has T=" + num(schedule_.T()) +
                " but the model was built for T=" + num(model_.config.T));
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
  s.t.resize(B);
  const int per_thread = (B + nt - 1) / nt;
  for (int i = 0; i < nt; ++i) {
    s.ws.emplace_back(model_.config, per_thread);
    s.grads.emplace_back(model_.params.size(), 0.0f);
  }
  s.sq.resize(nt);
  s.layout = param_layout(model_.config);
  if (nt > 1) {
    s.grad_sq.assign(nt, std::vector<double>(s.layout.size()));
    s.grad_sq_total = s.grad_sq;
    s.packed = PackedWeights(model_.config);
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

void Trainer::step(int64_t first, int B) {
  auto& s = *scratch_;
  const ModelConfig& c = model_.config;
  const int D = c.dim;
  const int T = c.T;

  // Draw the batch, its timesteps and its noise in one fixed order, whatever the thread count.
  auto draw = [&] {
    for (int j = 0; j < B; ++j) {
      const float* src = data_.data() + static_cast<size_t>(perm_[first + j]) * D;
      std::copy(src, src + D, s.x0.data() + static_cast<size_t>(j) * D);
    }
    for (int j = 0; j < B; ++j) {
      s.t[j] = static_cast<int32_t>(rng_.below(static_cast<uint32_t>(T)));
    }
    rng_.fill_normal(s.eps.data(), static_cast<size_t>(B) * D);
    q_sample(schedule_, s.x0.data(), s.eps.data(), s.t.data(), B, D, s.xt.data());
  };

  // Each thread takes a contiguous share of the columns: forward, dL/dy, backward.
  const int nt = std::min(config_.threads, B);
  const float scale = 2.0f / static_cast<float>(static_cast<size_t>(B) * D);  // d mean / d y
  const float* params = model_.params.data();
  auto share = [&](int p) {
    const int lo = static_cast<int>(static_cast<int64_t>(B) * p / nt);
    const int hi = static_cast<int>(static_cast<int64_t>(B) * (p + 1) / nt);
    const int b = hi - lo;
    const size_t off = static_cast<size_t>(lo) * D;
    float* y = s.y.data() + off;
    float* dy = s.dy.data() + off;
    const float* eps = s.eps.data() + off;
    if (nt == 1) {
      model_forward(c, params, s.xt.data() + off, s.t.data() + lo, b, s.ws[p], y);
    } else {
      model_forward(c, params, s.packed, s.xt.data() + off, s.t.data() + lo, b, s.ws[p], y);
    }
    double sq = 0.0;
    for (size_t i = 0; i < static_cast<size_t>(b) * D; ++i) {
      const float d = y[i] - eps[i];
      sq += static_cast<double>(d) * d;
      dy[i] = scale * d;
    }
    s.sq[p] = sq;
    model_backward(c, params, s.xt.data() + off, s.t.data() + lo, b, dy, s.ws[p],
                   s.grads[p].data());
  };
  auto loss_of = [&] {
    double sq = 0.0;
    for (int p = 0; p < nt; ++p) sq += s.sq[p];
    return sq / (static_cast<double>(B) * D);
  };
  auto loss_error = [&] {
    return Error("training diverged: the loss became " + num(last_loss_) + " at epoch " +
                 num(epoch_ + 1) + ", step " + num(static_cast<double>(adam_.step_count + 1)) +
                 " (try a smaller --lr); the weights from before this step are kept");
  };
  auto norm_error = [&](float norm) {
    return Error("training diverged: the gradient norm became " + num(norm) + " at epoch " +
                 num(epoch_ + 1) + " (try a smaller --lr); the weights from before are kept");
  };
  const size_t n = model_.params.size();
  float* grads = s.grads[0].data();
  float* w = model_.params.data();
  // EMA decay with a warm-up (as in TensorFlow's ExponentialMovingAverage with num_updates) so the
  // average is not dominated by the random initial weights in short runs; after the Adam step.
  auto ema_decay = [&] {
    const double k = static_cast<double>(adam_.step_count);
    return static_cast<float>(std::min(config_.ema_decay, (1.0 + k) / (10.0 + k)));
  };
  auto ema = [&](float d, size_t lo, size_t hi) {
    float* e = ema_.data();
    for (size_t i = lo; i < hi; ++i) e[i] = d * e[i] + (1.0f - d) * w[i];
  };

  if (nt == 1) {  // no parallel region: OpenMP would allocate a team for it every step
    draw();
    share(0);
    last_loss_ = loss_of();
    if (!std::isfinite(last_loss_)) throw loss_error();
    if (config_.grad_clip > 0.0) {
      const float norm = clip_grad_norm(grads, s.layout, static_cast<float>(config_.grad_clip));
      if (!std::isfinite(norm)) throw norm_error(norm);
    }
    adam_.step(w, grads, learning_rate(adam_.step_count));
    if (config_.ema_decay > 0.0) ema(ema_decay(), 0, n);
    return;
  }

  // Several threads, one parallel region, three barriers: one thread draws the batch while another
  // packs the weights; each thread runs its share of the columns; each sums its slice of the
  // gradients over the threads in a fixed order, with its squares; each takes the norm from all the
  // squares (the same sums in the same order) and clips and updates its slice. Deterministic for a
  // given thread count; at one thread the arithmetic is that of the path above.
  bool bad_loss = false, bad_norm = false;
  float norm = 0.0f, decay = 0.0f;
  Adam::StepScalars scalars{};
#pragma omp parallel num_threads(nt)
  {
    const int p = omp_get_thread_num();
    if (p == 0) draw();
    if (p == nt - 1) {
      pack_weights(c, params, s.packed);
      // The step's Adam scalars, ahead of the gradients (undone below if the step fails).
      scalars = adam_.begin_step(learning_rate(adam_.step_count));
      decay = ema_decay();
    }
#pragma omp barrier
    share(p);
    // Slices in whole 64-byte lines, so no two threads write one line.
    auto bound = [&](int q) { return q == nt ? n : n * q / nt / 16 * 16; };
    const size_t lo = bound(p), hi = bound(p + 1);
#pragma omp barrier
    for (int q = 1; q < nt; ++q) {
      const float* gq = s.grads[q].data();
      for (size_t i = lo; i < hi; ++i) grads[i] += gq[i];
    }
    std::fill(s.grad_sq[p].begin(), s.grad_sq[p].end(), 0.0);
    if (config_.grad_clip > 0.0) add_squares(grads, s.layout, lo, hi, s.grad_sq[p].data());
#pragma omp barrier
    // Every thread takes the loss and the norm from the same partial sums in the same order (no
    // single thread, no further barrier); the first thread keeps the loss.
    const double loss = loss_of();
    bool bad = !std::isfinite(loss);
    float coef_p = 1.0f;
    if (!bad && config_.grad_clip > 0.0) {
      std::vector<double>& sq_total = s.grad_sq_total[p];
      sq_total = s.grad_sq[0];  // no allocation: same size
      for (int q = 1; q < nt; ++q) {
        for (size_t k = 0; k < s.layout.size(); ++k) sq_total[k] += s.grad_sq[q][k];
      }
      const float norm_p = norm_from_squares(sq_total.data(), s.layout.size());
      bad = !std::isfinite(norm_p);
      coef_p = static_cast<float>(config_.grad_clip) / (norm_p + 1e-6f);  // as clip_grad_norm
      if (p == 0) {
        norm = norm_p;
        bad_norm = bad;
      }
    }
    if (p == 0) {
      last_loss_ = loss;
      bad_loss = !std::isfinite(loss);
    }
    if (!bad) {
      if (coef_p < 1.0f) {
        for (size_t i = lo; i < hi; ++i) grads[i] *= coef_p;
      }
      adam_.update(scalars, w, grads, lo, hi);
      if (config_.ema_decay > 0.0) ema(decay, lo, hi);
    }
  }
  if (bad_loss || bad_norm) --adam_.step_count;  // begin_step ran ahead: nothing was updated
  if (bad_loss) throw loss_error();
  if (bad_norm) throw norm_error(norm);
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
  for (int64_t first = 0; first < N; first += config_.batch_size) {
    const int B = static_cast<int>(std::min<int64_t>(config_.batch_size, N - first));
    step(first, B);
    loss_sum += last_loss_;
    ++steps;
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

}  // namespace diffuse
