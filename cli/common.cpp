// Shared orchestration for the subcommands: training options, the training run with progress,
// logs, periodic and interrupt-safe checkpoints, sampling and evaluation helpers.
#include "common.h"

#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/progress.h"

namespace diffuse::cli {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
// The first Ctrl-C / SIGTERM asks for a clean stop; a second one kills at once (the default
// action), which loses nothing either: every output is renamed into place whole.
extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  std::signal(sig, SIG_DFL);
}

std::string choices(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

nlohmann::json options_json(const TrainOptions& o) {
  return {{"data", o.data},
          {"n", o.n},
          {"noise", o.noise},
          {"schedule", o.schedule},
          {"T", o.schedule_config.T},
          {"beta_start", o.schedule_config.beta_start},
          {"beta_end", o.schedule_config.beta_end},
          {"hidden", o.hidden},
          {"epochs", o.train.epochs},
          {"batch_size", o.train.batch_size},
          {"lr", o.train.lr},
          {"grad_clip", o.train.grad_clip},
          {"seed", o.train.seed},
          {"threads", o.train.threads},
          {"ema", o.train.ema_decay},
          {"warmup", o.train.warmup_steps},
          {"lr_schedule", o.train.lr_schedule == LrSchedule::kCosine ? "cosine" : "constant"},
          {"lr_min", o.train.lr_min}};
}

void options_from_json(const nlohmann::json& j, TrainOptions& o) {
  o.data = j.at("data").get<std::string>();
  o.n = j.at("n").get<int>();
  o.noise = j.at("noise").get<double>();
  o.schedule = j.at("schedule").get<std::string>();
  o.schedule_config.T = j.at("T").get<int>();
  o.schedule_config.beta_start = j.at("beta_start").get<double>();
  o.schedule_config.beta_end = j.at("beta_end").get<double>();
  o.hidden = j.at("hidden").get<int>();
  o.train.epochs = j.at("epochs").get<int>();
  o.train.batch_size = j.at("batch_size").get<int>();
  o.train.lr = j.at("lr").get<double>();
  o.train.grad_clip = j.at("grad_clip").get<double>();
  o.train.seed = j.at("seed").get<uint64_t>();
  o.train.threads = j.at("threads").get<int>();
  o.train.ema_decay = j.at("ema").get<double>();
  o.train.warmup_steps = j.at("warmup").get<int>();
  o.train.lr_schedule = j.at("lr_schedule").get<std::string>() == "cosine" ? LrSchedule::kCosine
                                                                           : LrSchedule::kConstant;
  o.train.lr_min = j.at("lr_min").get<double>();
}

constexpr const char* kLogHeader = "epoch,mean_loss,last_loss,steps,seconds\n";

// The rows of an existing log for epochs up to `epoch` (the run being resumed), header first;
// a missing or foreign log gives just the header.
std::string log_rows_until(const std::string& path, int epoch) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error&) {
    return kLogHeader;
  }
  if (text.rfind(kLogHeader, 0) != 0) return kLogHeader;
  std::string kept = kLogHeader;
  std::istringstream in(text.substr(std::string_view(kLogHeader).size()));
  for (std::string line; std::getline(in, line);) {
    int e = 0;
    if (std::sscanf(line.c_str(), "%d,", &e) == 1 && e >= 1 && e <= epoch) kept += line + "\n";
  }
  return kept;
}

// earlier: the log of the run being resumed (header and rows), or empty for the header alone.
std::string log_csv(const std::string& earlier, const std::vector<EpochStats>& rows) {
  std::string s = earlier.empty() ? std::string(kLogHeader) : earlier;
  char buf[160];
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, "%d,%.9g,%.9g,%lld,%.4f\n", r.epoch, r.mean_loss, r.last_loss,
                  static_cast<long long>(r.steps), r.seconds);
    s += buf;
  }
  return s;
}

}  // namespace

ScheduleKind parse_schedule(const std::string& name) {
  if (auto k = schedule_from_string(name)) return *k;
  throw UsageError("--schedule: unknown schedule '" + name + "', expected one of " +
                   choices(schedule_names()));
}

SamplerKind parse_sampler(const std::string& name) {
  if (auto k = sampler_from_string(name)) return *k;
  throw UsageError("--sampler: unknown sampler '" + name +
                   "', expected one of ddpm, ddim, dpmpp2m");
}

VarianceKind parse_variance(const std::string& name) {
  if (auto k = variance_from_string(name)) return *k;
  throw UsageError("--variance: unknown variance '" + name + "', expected posterior or beta");
}

void apply_tutorial_settings(TrainOptions& o) {
  o.schedule = "sigmoid";
  o.schedule_config.T = 100;
  o.schedule_config.beta_start = 1e-4;
  o.schedule_config.beta_end = 0.02;
  o.train.lr = 1e-3;
  o.train.lr_schedule = LrSchedule::kConstant;
  o.train.warmup_steps = 0;
  o.train.ema_decay = 0.0;
  o.train.batch_size = 128;
  o.train.grad_clip = 1.0;
  o.hidden = 128;
}

void add_train_options(CLI::App* cmd, TrainOptions& o) {
  cmd->add_option("--data", o.data, "built-in shape (see `diffuse data --list`) or a CSV file")
      ->capture_default_str();
  cmd->add_option("-n,--points", o.n, "points to generate for a built-in shape")
      ->capture_default_str();
  cmd->add_option("--noise", o.noise, "noise of a built-in shape")->capture_default_str();
  cmd->add_option("--epochs", o.train.epochs, "passes over the data")->capture_default_str();
  cmd->add_option("--batch-size", o.train.batch_size, "points per optimizer step")
      ->capture_default_str();
  cmd->add_option("--lr", o.train.lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--steps", o.schedule_config.T, "T, the number of diffusion steps")
      ->capture_default_str();
  cmd->add_option("--schedule", o.schedule, "beta schedule: linear, sigmoid, quadratic, cosine")
      ->capture_default_str();
  cmd->add_option("--beta-start", o.schedule_config.beta_start, "first beta")
      ->capture_default_str();
  cmd->add_option("--beta-end", o.schedule_config.beta_end, "last beta")->capture_default_str();
  cmd->add_option("--hidden", o.hidden, "hidden width H of the model")->capture_default_str();
  cmd->add_option("--seed", o.train.seed, "seed for the data (seed+1), weights and training")
      ->capture_default_str();
  cmd->add_option("--threads", o.train.threads, "threads (results depend on seed and threads)")
      ->capture_default_str();
  cmd->add_option("--grad-clip", o.train.grad_clip, "max global gradient norm (0: off)")
      ->capture_default_str();
  cmd->add_option("--ema", o.train.ema_decay, "EMA decay of the sampled weights (0: off)")
      ->capture_default_str();
  cmd->add_option("--warmup", o.train.warmup_steps,
                  "learning-rate warm-up steps (at most a tenth of the run)")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--lr-schedule",
         [&o](const std::string& v) {
           if (v == "constant") {
             o.train.lr_schedule = LrSchedule::kConstant;
           } else if (v == "cosine") {
             o.train.lr_schedule = LrSchedule::kCosine;
           } else {
             throw UsageError("--lr-schedule: expected constant or cosine, got '" + v + "'");
           }
         },
         "constant or cosine (decay to --lr-min)")
      ->default_str(o.train.lr_schedule == LrSchedule::kCosine ? "cosine" : "constant");
  cmd->add_option("--lr-min", o.train.lr_min, "final learning rate of the cosine decay")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", o.checkpoint_every,
                  "save a resumable checkpoint every N epochs (0: only at the end)")
      ->capture_default_str();
  cmd->add_option("--resume", o.resume, "continue the run saved in this checkpoint");
  cmd->add_option("--log", o.log, "per-epoch loss log (CSV); default: MODEL.log.csv");
  cmd->add_flag("-q,--quiet", o.quiet, "no progress output");
}

std::string default_log_path(const std::string& checkpoint) {
  std::string base = checkpoint;
  const std::string ext = ".safetensors";
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0) {
    base.resize(base.size() - ext.size());
  }
  return base + ".log.csv";
}

Checkpoint run_training(const TrainOptions& opts, const ExtraEpochHook& hook) {
  TrainOptions o = opts;
  std::optional<Checkpoint> resumed;
  if (!o.resume.empty()) {
    resumed = load_checkpoint(o.resume);
    if (!resumed->train_state) {
      throw Error(o.resume +
                  ": has no training state to resume (it is a finished model; only "
                  "checkpoints saved with --checkpoint-every or on interrupt resume)");
    }
    try {
      options_from_json(nlohmann::json::parse(resumed->train_state->train_config_json), o);
    } catch (const nlohmann::json::exception& e) {
      throw Error(o.resume + ": unreadable training options: " + e.what());
    }
  }
  if (o.checkpoint_every < 0) {
    throw UsageError("--checkpoint-every: expected >= 0, got " +
                     std::to_string(o.checkpoint_every));
  }
  check_writable(o.out, "-o");
  const std::string log_path = o.log.empty() ? default_log_path(o.out) : o.log;
  check_writable(log_path, "--log");

  o.schedule_config.kind = parse_schedule(o.schedule);
  const Schedule schedule = make_schedule(o.schedule_config);
  if (auto w = schedule_warning(schedule); w && !o.quiet) {
    std::fprintf(stderr, "diffuse: warning: %s\n", w->c_str());
  }

  Dataset ds = load_data(o.data, o.n, o.noise, o.train.seed + 1);
  Normalization norm;
  if (!is_shape_name(o.data)) {  // user data: train on standardized columns
    std::vector<int> constant;
    norm = fit_normalization(ds.x, &constant);
    for (int c : constant) {
      std::fprintf(stderr, "diffuse: warning: %s: column %d%s is constant; it is not scaled\n",
                   o.data.c_str(), c + 1,
                   ds.columns.empty() ? "" : (" (" + ds.columns[c] + ")").c_str());
    }
    norm.apply(ds.x);
  } else if (ds.columns.empty()) {
    ds.columns = {"x", "y"};
  }

  const ModelConfig mc{static_cast<int>(ds.x.cols()), o.hidden, schedule.T()};
  if (resumed) {  // the same data, or the continued run would silently differ
    if (mc.dim != resumed->model.dim) {
      throw Error(o.resume + ": the run trained on " + std::to_string(resumed->model.dim) +
                  " columns but " + o.data + " now has " + std::to_string(mc.dim));
    }
    if (norm.mean != resumed->normalization.mean || norm.std != resumed->normalization.std) {
      throw Error(o.resume + ": " + o.data +
                  " has changed since the run started (its column means or stds differ)");
    }
  }
  validate(mc);
  Model model(mc);
  Rng init_rng = Rng(o.train.seed).fork(0);
  model.init(init_rng);
  Trainer trainer(model, schedule, ds.x, o.train);
  if (resumed) {
    const TrainState& ts = *resumed->train_state;
    if (ts.raw_params.size() != model.params.size()) {
      throw Error(o.resume + ": model size does not match its training options");
    }
    model.params = ts.raw_params;
    Rng rng;
    rng.set_state(ts.rng);
    trainer.restore(ts.epoch, ts.adam, rng, resumed->params);
  }

  auto make_checkpoint = [&](bool with_state) {
    Checkpoint c;
    c.model = mc;
    c.schedule = schedule.config;
    c.normalization = norm;
    c.columns = ds.columns;
    c.params = trainer.sampling_params();
    c.info["data"] = o.data;
    c.info["epochs"] = std::to_string(trainer.epoch());
    if (with_state) {
      TrainState ts;
      ts.epoch = trainer.epoch();
      ts.adam = trainer.adam();
      ts.rng = trainer.rng().state();
      ts.raw_params = model.params;
      ts.train_config_json = options_json(o).dump();
      c.train_state = std::move(ts);
    }
    return c;
  };

  std::vector<EpochStats> rows;
  // The log keeps the rows of the run being resumed; the epoch of the newest resumable checkpoint
  // under o.out (0: none) is named if training fails.
  const std::string earlier_log =
      resumed ? log_rows_until(log_path, resumed->train_state->epoch) : std::string();
  int saved_epoch = resumed && o.resume == o.out ? resumed->train_state->epoch : 0;
  ProgressBar progress(stderr);
  g_stop_signal = 0;
  auto old_int = std::signal(SIGINT, on_stop_signal);
  auto old_term = std::signal(SIGTERM, on_stop_signal);
  struct Restore {
    decltype(old_int) i, t;
    ~Restore() {
      std::signal(SIGINT, i);
      std::signal(SIGTERM, t);
    }
  } restore{old_int, old_term};

  try {
    train(trainer, [&](const EpochStats& s, const Trainer& tr) {
      rows.push_back(s);
      if (!o.quiet) progress.update(s);
      if (hook) hook(s, tr, schedule, norm);
      if (o.checkpoint_every > 0 && s.epoch % o.checkpoint_every == 0 && s.epoch < s.epochs) {
        save_checkpoint(o.out, make_checkpoint(true));
        saved_epoch = s.epoch;
        write_file_atomic(log_path, log_csv(earlier_log, rows));
      }
      return g_stop_signal == 0;
    });
  } catch (const Error& e) {  // e.g. the loss became NaN: keep the log and say what is left
    if (!o.quiet) progress.finish();
    try {
      write_file_atomic(log_path, log_csv(earlier_log, rows));
    } catch (const Error&) {
      // the training error matters more
    }
    throw Error(std::string(e.what()) +
                (saved_epoch > 0 ? "; the last good checkpoint (epoch " +
                                       std::to_string(saved_epoch) + ") is " + o.out
                                 : "; no checkpoint was saved (--checkpoint-every N keeps one)"));
  }
  if (!o.quiet) progress.finish();
  write_file_atomic(log_path, log_csv(earlier_log, rows));

  if (!trainer.done()) {
    save_checkpoint(o.out, make_checkpoint(true));
    throw Interrupted("interrupted at epoch " + std::to_string(trainer.epoch()) + "/" +
                      std::to_string(o.train.epochs) + "; saved a resumable checkpoint: continue " +
                      "with `diffuse train --resume " + o.out + " -o " + o.out + "`");
  }
  Checkpoint ckpt = make_checkpoint(false);
  if (!rows.empty()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", rows.back().mean_loss);
    ckpt.info["final_loss"] = buf;
    std::snprintf(buf, sizeof buf, "%.3f", rows.back().seconds);
    ckpt.info["train_seconds"] = buf;
    std::snprintf(buf, sizeof buf, "%.1f", rows.back().steps_per_s);
    ckpt.info["steps_per_s"] = buf;
  }
  save_checkpoint(o.out, ckpt);
  return ckpt;
}

Points sample_checkpoint(const Checkpoint& ckpt, const SampleConfig& sc, int n, int threads,
                         Trajectory* trajectory) {
  if (n < 1) throw UsageError("-n: expected at least 1 sample, got " + std::to_string(n));
  const Schedule schedule = make_schedule(ckpt.schedule);
  SampleConfig config = sc;
  config.threads = threads;
  validate(config, schedule.T());
  Points x = sample(model_eps_fn(ckpt.model, ckpt.params, threads), schedule, n, ckpt.model.dim,
                    config, trajectory);
  ckpt.normalization.undo(x);
  if (trajectory != nullptr) {
    for (Points& p : trajectory->x) ckpt.normalization.undo(p);
  }
  return x;
}

EvalResult evaluate_against(const Points& samples, const std::string& against, double noise,
                            uint64_t seed) {
  if (auto shape = shape_from_string(against)) {
    if (samples.cols() != 2) {
      throw Error("samples have " + std::to_string(samples.cols()) + " columns but '" + against +
                  "' is 2-D");
    }
    const Modes modes = shape_modes(*shape, noise);
    return evaluate(samples, shape_draws(*shape, static_cast<int>(samples.rows()), noise), seed,
                    modes.centres.rows() > 0 ? &modes : nullptr);
  }
  if (!is_shape_name(against) && against.find('/') == std::string::npos &&
      against.find(".csv") == std::string::npos) {
    load_data(against, 1, noise, seed);  // throws the unknown-name error listing the shapes
  }
  const Dataset ref = read_csv(against);
  if (ref.x.cols() != samples.cols()) {
    throw Error(against + ": has " + std::to_string(ref.x.cols()) +
                " columns but the samples have " + std::to_string(samples.cols()));
  }
  if (ref.x.rows() < 4) throw Error(against + ": needs at least 4 rows to split into halves");
  return evaluate(samples, halves_draws(ref.x), seed);
}

std::string eval_json(const EvalResult& r) {
  nlohmann::ordered_json j = {
      {"swd", r.swd}, {"swd_floor", r.swd_floor}, {"swd_ratio", r.swd_ratio},
      {"mmd", r.mmd}, {"mmd_floor", r.mmd_floor}, {"n", r.n}};
  if (r.coverage) {
    j["modes"] = r.coverage->modes;
    j["modes_hit"] = r.coverage->modes_hit;
    j["mode_coverage"] = r.coverage->mode_share;
    j["in_mode_share"] = r.coverage->sample_share;
  }
  return j.dump();
}

std::string eval_text(const EvalResult& r) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "n          %lld\nswd        %.6g  (floor %.6g, ratio %.3f)\nmmd        %.6g  "
                "(floor %.6g)\n",
                static_cast<long long>(r.n), r.swd, r.swd_floor, r.swd_ratio, r.mmd, r.mmd_floor);
  std::string s = buf;
  if (r.coverage) {
    std::snprintf(buf, sizeof buf, "modes      %d/%d hit, %.1f%% of samples within 3 std\n",
                  r.coverage->modes_hit, r.coverage->modes, 100.0 * r.coverage->sample_share);
    s += buf;
  }
  return s;
}

}  // namespace diffuse::cli
