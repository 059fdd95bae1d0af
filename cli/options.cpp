// Shared orchestration for the subcommands: the training options, the library's training run
// with a progress bar and Ctrl-C handling, and evaluation helpers.
#include "options.h"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/progress.h"

namespace diffuse::cli {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
int g_stop_depth = 0;  // StopSignals alive (main thread only)
// The first Ctrl-C / SIGTERM asks for a clean stop; a second one kills at once (the default
// action), which loses nothing either: every output is renamed into place whole.
extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
  std::signal(sig, SIG_DFL);
}

}  // namespace

StopSignals::StopSignals()
    : outermost_(g_stop_depth++ == 0), outputs_([] { return StopSignals::requested(); }) {
  if (!outermost_) return;  // an inner one (demo's training) must not forget an earlier Ctrl-C
  g_stop_signal = 0;
  old_int_ = std::signal(SIGINT, on_stop_signal);
  old_term_ = std::signal(SIGTERM, on_stop_signal);
}

StopSignals::~StopSignals() {
  --g_stop_depth;
  if (!outermost_) return;
  std::signal(SIGINT, old_int_);
  std::signal(SIGTERM, old_term_);
}

bool StopSignals::requested() { return g_stop_signal != 0; }

uint64_t parse_seed(const std::string& text, const std::string& option) {
  uint64_t v = 0;
  const char* b = text.data();
  const char* e = b + text.size();
  const auto [end, ec] = std::from_chars(b, e, v);
  if (text.empty() || ec != std::errc() || end != e) {
    throw UsageError(option + ": expected an integer from 0 to 18446744073709551615 (2^64 - 1), " +
                     "got " + quote_for_message(text, 40));
  }
  return v;
}

void add_seed_option(CLI::App* cmd, uint64_t& seed, const std::string& description) {
  cmd->add_option_function<std::string>(
         "--seed", [&seed](const std::string& v) { seed = parse_seed(v); }, description)
      ->default_str(std::to_string(seed));
}

void add_train_options(CLI::App* cmd, TrainOptions& o) {
  cmd->add_option("--data", o.data, "built-in shape (see `diffuse data --list`) or a CSV file")
      ->capture_default_str();
  cmd->add_option("-n,--points", o.n, "points to generate for a built-in shape")
      ->capture_default_str();
  cmd->add_option("--noise", o.noise, "noise of a built-in shape")->capture_default_str();
  cmd->add_option("--updates", o.train.updates,
                  "training budget in optimizer steps (whole epochs, rounded up)")
      ->capture_default_str();
  cmd->add_option("--epochs", o.train.epochs,
                  "passes over the data; sets the budget instead of --updates (0: as many as "
                  "--updates needs)")
      ->capture_default_str();
  cmd->add_option("--batch-size", o.train.batch_size,
                  "points per optimizer step (0: 128, or all the rows when there are fewer)")
      ->capture_default_str();
  cmd->add_option("--lr", o.train.lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--steps", o.schedule.T, "T, the number of diffusion steps")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--schedule", [&o](const std::string& v) { o.schedule.kind = parse_schedule(v); },
         "beta schedule: linear, sigmoid, quadratic, cosine")
      ->default_str(to_string(o.schedule.kind));
  cmd->add_option("--beta-start", o.schedule.beta_start, "first beta")->capture_default_str();
  cmd->add_option("--beta-end", o.schedule.beta_end, "last beta")->capture_default_str();
  cmd->add_option("--hidden", o.hidden, "hidden width H of the model")->capture_default_str();
  cmd->add_option("--standardize", o.standardize,
                  "train on columns scaled to mean 0, std 1 (undone when sampling): true or false")
      ->default_str(o.standardize ? "true" : "false");
  cmd->add_option_function<std::string>(
         "--model", [&o](const std::string& v) { o.model = parse_model_kind(v); },
         "the network: tutorial or resmlp (residual MLP)")
      ->default_str(to_string(o.model));
  cmd->add_option("--depth", o.depth, "residual blocks of the resmlp network")
      ->capture_default_str();
  cmd->add_option("--fourier-features", o.fourier_features,
                  "K: the resmlp network also sees sin(2^k x), cos(2^k x) of each coordinate, "
                  "k < K (sharp structure such as a grid of tight modes; 0: none, at most 10)")
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--predict", [&o](const std::string& v) { o.prediction = parse_prediction(v); },
         "what the network predicts: eps, x0 or v")
      ->default_str(to_string(o.prediction));
  cmd->add_option_function<std::string>(
         "--loss-weighting",
         [&o](const std::string& v) { o.train.loss_weighting = parse_loss_weighting(v); },
         "weight of each noise level in the loss: uniform or min-snr")
      ->default_str(to_string(o.train.loss_weighting));
  cmd->add_option("--snr-gamma", o.train.snr_gamma, "gamma of the min-snr weighting")
      ->capture_default_str();
  cmd->add_option("--label-column", o.label_column,
                  "CSV column with each row's class: a class-conditional model (resmlp) that "
                  "`sample --class` draws from");
  cmd->add_option("--label-dropout", o.train.label_dropout,
                  "probability that a row's class is hidden in a step (learns the unconditional "
                  "model guidance needs)")
      ->capture_default_str();
  add_seed_option(cmd, o.train.seed, "seed for the data (seed+1), weights and training");
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
         [&o](const std::string& v) { o.train.lr_schedule = parse_lr_schedule(v); },
         "constant or cosine (decay to --lr-min)")
      ->default_str(to_string(o.train.lr_schedule));
  cmd->add_option("--lr-min", o.train.lr_min, "final learning rate of the cosine decay")
      ->capture_default_str();
  cmd->add_flag("--as-tutorial", o.as_tutorial,
                "the tutorial's settings (beta 1e-4..0.02, lr 1e-3 constant, no EMA) for every "
                "option not given");
  cmd->add_option("--checkpoint-every", o.checkpoint_every,
                  "save a resumable checkpoint every N epochs (0: only at the end)")
      ->capture_default_str();
  cmd->add_option("--resume", o.resume, "continue the run saved in this checkpoint");
  cmd->add_option("--log", o.log, "per-epoch loss log (CSV); default: MODEL.log.csv");
  cmd->add_flag("-q,--quiet", o.quiet, "no progress output (warnings still show)");
}

std::string spacing_help() {
  return "where the --nfe < T steps of ddim and dpmpp2m fall: logsnr (even in log-SNR), or a "
         "power P from 1 to " +
         spacing_name(kMaxSpacing) +
         ", t_i = T (1 - i/nfe)^P (1 even in t, larger nearer the data); 0 the sampler's own "
         "(dpmpp2m " +
         spacing_name(sampler_spacing(SamplerKind::kDpmpp2m)) + ", ddim " +
         spacing_name(sampler_spacing(SamplerKind::kDdim)) + ")";
}

void note_given_options(const CLI::App& cmd, TrainOptions& o) {
  for (const char* name : {"--data",
                           "-n",
                           "--noise",
                           "--schedule",
                           "--steps",
                           "--beta-start",
                           "--beta-end",
                           "--hidden",
                           "--standardize",
                           "--model",
                           "--depth",
                           "--fourier-features",
                           "--predict",
                           "--loss-weighting",
                           "--snr-gamma",
                           "--epochs",
                           "--updates",
                           "--label-column",
                           "--label-dropout",
                           "--batch-size",
                           "--lr",
                           "--grad-clip",
                           "--seed",
                           "--threads",
                           "--ema",
                           "--warmup",
                           "--lr-schedule",
                           "--lr-min"}) {
    const CLI::Option* opt = cmd.get_option_no_throw(name);
    if (opt != nullptr && opt->count() > 0) o.given.insert(name);
  }
}

void apply_tutorial_where_unset(const CLI::App& cmd, TrainOptions& o) {
  const RunConfig tutorial = RunConfig::tutorial();
  const auto unset = [&cmd](const char* name) {
    const CLI::Option* opt = cmd.get_option_no_throw(name);
    return opt == nullptr || opt->count() == 0;
  };
  if (unset("--points")) o.n = tutorial.n;
  if (unset("--steps")) o.schedule.T = tutorial.schedule.T;
  if (unset("--schedule")) o.schedule.kind = tutorial.schedule.kind;
  if (unset("--beta-start")) o.schedule.beta_start = tutorial.schedule.beta_start;
  if (unset("--beta-end")) o.schedule.beta_end = tutorial.schedule.beta_end;
  if (unset("--hidden")) o.hidden = tutorial.hidden;
  if (unset("--standardize")) o.standardize = tutorial.standardize;
  if (unset("--model")) o.model = tutorial.model;
  if (unset("--fourier-features")) o.fourier_features = tutorial.fourier_features;
  if (unset("--predict")) o.prediction = tutorial.prediction;
  if (unset("--loss-weighting")) o.train.loss_weighting = tutorial.train.loss_weighting;
  if (unset("--epochs") && unset("--updates")) o.train.epochs = tutorial.train.epochs;
  if (unset("--batch-size")) o.train.batch_size = tutorial.train.batch_size;
  if (unset("--lr")) o.train.lr = tutorial.train.lr;
  if (unset("--grad-clip")) o.train.grad_clip = tutorial.train.grad_clip;
  if (unset("--ema")) o.train.ema_decay = tutorial.train.ema_decay;
  if (unset("--warmup")) o.train.warmup_steps = tutorial.train.warmup_steps;
  if (unset("--lr-schedule")) o.train.lr_schedule = tutorial.train.lr_schedule;
  if (unset("--lr-min")) o.train.lr_min = tutorial.train.lr_min;
}

Checkpoint run_training_in_terminal(const TrainOptions& o) {
  ProgressBar progress(stderr);
  struct Finish {  // the bar ends its line before any message, also when training throws
    ProgressBar& bar;
    bool quiet;
    ~Finish() {
      if (!quiet) bar.finish();
    }
  } finish{progress, o.quiet};
  RunCallbacks callbacks;
  callbacks.on_epoch = [&](const EpochStats& s, const Trainer&, const Schedule&,
                           const Normalization&) {
    if (!o.quiet) progress.update(s);
  };
  const StopSignals stop;
  callbacks.stop_requested = [] { return StopSignals::requested(); };
  // The run answers Ctrl-C itself, after the epoch, by saving a resumable checkpoint: its files
  // must be written whole, not stopped (an OutputStopScope that never stops them).
  const OutputStopScope saves_complete(nullptr);
  RunResult r = run_training(o, callbacks);
  if (!r.finished) {
    throw Interrupted("interrupted at epoch " + std::to_string(r.epochs.back().epoch) + "/" +
                      std::to_string(r.epochs.back().epochs) +
                      "; saved a resumable checkpoint: continue with `diffuse train --resume " +
                      o.out + " -o " + o.out + "`" +
                      (r.side_output_errors.empty() ? "" : " (" + r.side_output_errors[0] + ")"));
  }
  if (!r.side_output_errors.empty()) {
    throw SideOutputError(o.out + " was saved, but " + r.side_output_errors[0]);
  }
  return std::move(r.checkpoint);
}

}  // namespace diffuse::cli
