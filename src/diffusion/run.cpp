// The training run (see run.h): options, resume, the per-epoch log, periodic and stop-safe
// checkpoints, and sampling a checkpoint in the data's units.
#include "diffuse/run.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string_view>

#include "diffuse/denoiser.h"
#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/labels.h"
#include "diffuse/plot.h"
#include "diffuse/rng.h"

namespace diffuse {
namespace {

// The options a resumable checkpoint keeps (train_config_json), under the CLI's names.
nlohmann::json options_json(const RunConfig& o) {
  return {{"data", o.data},
          {"n", o.n},
          {"noise", o.noise},
          {"schedule", to_string(o.schedule.kind)},
          {"T", o.schedule.T},
          {"beta_start", o.schedule.beta_start},
          {"beta_end", o.schedule.beta_end},
          {"hidden", o.hidden},
          {"standardize", o.standardize},
          {"model", to_string(o.model)},
          {"depth", o.depth},
          // What the network has: 0 for the tutorial's, so that resuming it with 0 is no change.
          {"fourier_features", model_config(o, 1).fourier_features},
          {"predict", to_string(o.prediction)},
          {"label_column", o.label_column},
          {"label_dropout", o.train.label_dropout},
          {"loss_weighting", to_string(o.train.loss_weighting)},
          {"snr_gamma", o.train.snr_gamma},
          {"epochs", o.train.epochs},
          {"updates", o.train.updates},
          {"batch_size", o.train.batch_size},
          {"lr", o.train.lr},
          {"grad_clip", o.train.grad_clip},
          {"seed", o.train.seed},
          {"threads", o.train.threads},
          {"ema", o.train.ema_decay},
          {"warmup", o.train.warmup_steps},
          {"lr_schedule", to_string(o.train.lr_schedule)},
          {"lr_min", o.train.lr_min}};
}

// The options a resumed run stores, under the command line's names: the JSON key, and whether a
// resumed run may change it (the rest must be the stored run's, or it would silently differ).
struct StoredOption {
  const char* option;
  const char* key;
  bool may_change;
};
constexpr StoredOption kStoredOptions[] = {{"--data", "data", false},
                                           {"-n", "n", false},
                                           {"--noise", "noise", false},
                                           {"--schedule", "schedule", false},
                                           {"--steps", "T", false},
                                           {"--beta-start", "beta_start", false},
                                           {"--beta-end", "beta_end", false},
                                           {"--hidden", "hidden", false},
                                           {"--standardize", "standardize", false},
                                           {"--model", "model", false},
                                           {"--depth", "depth", false},
                                           {"--fourier-features", "fourier_features", false},
                                           {"--predict", "predict", false},
                                           {"--label-column", "label_column", false},
                                           {"--label-dropout", "label_dropout", false},
                                           {"--loss-weighting", "loss_weighting", false},
                                           {"--snr-gamma", "snr_gamma", false},
                                           {"--epochs", "epochs", true},
                                           {"--updates", "updates", true},
                                           {"--batch-size", "batch_size", false},
                                           {"--lr", "lr", false},
                                           {"--grad-clip", "grad_clip", false},
                                           {"--seed", "seed", false},
                                           {"--threads", "threads", true},
                                           {"--ema", "ema", false},
                                           {"--warmup", "warmup", false},
                                           {"--lr-schedule", "lr_schedule", false},
                                           {"--lr-min", "lr_min", false}};

// Reads the stored options strictly: a value of the wrong type or out of its type's range is the
// file's fault (Error naming `source`), never silently converted (a seed of -1 became 2^64 - 1).
void options_from_json(const nlohmann::json& j, RunConfig& o, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": the stored training options are not a JSON object");
  auto at = [&](const char* key) -> const nlohmann::json& {
    const auto it = j.find(key);
    if (it == j.end()) {
      throw Error(source + ": the stored training options have no \"" + std::string(key) + "\"");
    }
    return *it;
  };
  auto bad = [&](const char* key, const std::string& expected) {
    return Error(source + ": stored training option \"" + key + "\" is " +
                 at(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                 ", expected " + expected);
  };
  auto text = [&](const char* key) {
    if (!at(key).is_string()) throw bad(key, "a string");
    return at(key).get<std::string>();
  };
  auto integer = [&](const char* key) {
    const auto& v = at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < INT32_MIN || v.get<int64_t>() > INT32_MAX) {
      throw bad(key, "a 32-bit integer");
    }
    return static_cast<int>(v.get<int64_t>());
  };
  auto real = [&](const char* key) {
    if (!at(key).is_number()) throw bad(key, "a number");
    return at(key).get<double>();
  };
  o.data = text("data");
  o.n = integer("n");
  o.noise = real("noise");
  const std::string schedule = text("schedule");
  const auto kind = schedule_from_string(schedule);
  if (!kind) throw bad("schedule", "linear, sigmoid, quadratic or cosine");
  o.schedule.kind = *kind;
  o.schedule.T = integer("T");
  o.schedule.beta_start = real("beta_start");
  o.schedule.beta_end = real("beta_end");
  o.hidden = integer("hidden");
  // Runs saved before the option existed standardized CSV files and not shapes.
  if (j.contains("standardize")) {
    if (!at("standardize").is_boolean()) throw bad("standardize", "true or false");
    o.standardize = at("standardize").get<bool>();
  } else {
    o.standardize = !is_shape_name(o.data);
  }
  // Absent from runs saved before the choice of network: the tutorial's, as they were.
  auto text_or = [&](const char* key, const char* fallback) {
    return j.contains(key) ? text(key) : std::string(fallback);
  };
  const std::string model = text_or("model", "tutorial");
  const std::string predict = text_or("predict", "eps");
  const std::string weighting = text_or("loss_weighting", "uniform");
  const auto mk = model_kind_from_string(model);
  const auto pk = prediction_from_string(predict);
  const auto wk = loss_weighting_from_string(weighting);
  if (!mk) throw bad("model", "\"tutorial\" or \"resmlp\"");
  if (!pk) throw bad("predict", "\"eps\", \"x0\" or \"v\"");
  if (!wk) throw bad("loss_weighting", "\"uniform\" or \"min-snr\"");
  o.model = *mk;
  o.prediction = *pk;
  o.train.loss_weighting = *wk;
  o.depth = j.contains("depth") ? integer("depth") : ModelConfig{}.depth;
  // Absent from runs saved before the option: no features, as they were trained.
  o.fourier_features = j.contains("fourier_features") ? integer("fourier_features") : 0;
  // Absent from runs saved before conditional models: unconditional.
  o.label_column = text_or("label_column", "");
  o.train.label_dropout =
      j.contains("label_dropout") ? real("label_dropout") : TrainConfig{}.label_dropout;
  o.train.snr_gamma = j.contains("snr_gamma") ? real("snr_gamma") : TrainConfig{}.snr_gamma;
  o.train.epochs = integer("epochs");
  // Runs saved before the budget in optimizer steps existed give epochs.
  if (j.contains("updates")) {
    if (!at("updates").is_number_integer() || at("updates").get<int64_t>() < 0) {
      throw bad("updates", "a non-negative integer");
    }
    o.train.updates = at("updates").get<int64_t>();
  } else {
    o.train.updates = kDefaultUpdates;
  }
  o.train.batch_size = integer("batch_size");
  o.train.lr = real("lr");
  o.train.grad_clip = real("grad_clip");
  if (!at("seed").is_number_unsigned()) throw bad("seed", "an integer from 0 to 2^64 - 1");
  o.train.seed = at("seed").get<uint64_t>();
  o.train.threads = integer("threads");
  o.train.ema_decay = real("ema");
  o.train.warmup_steps = integer("warmup");
  const auto lr_schedule = lr_schedule_from_string(text("lr_schedule"));
  if (!lr_schedule) throw bad("lr_schedule", "\"constant\" or \"cosine\"");
  o.train.lr_schedule = *lr_schedule;
  o.train.lr_min = real("lr_min");
}

// model_config() gives the tutorial's network no features, so the option itself is checked: an
// out-of-range value is an error with either network, not silently dropped.
void check_fourier_option(const RunConfig& o) {
  if (o.fourier_features < 0 || o.fourier_features > kMaxFourierFeatures) {
    throw UsageError("--fourier-features: expected 0.." + std::to_string(kMaxFourierFeatures) +
                     ", got " + std::to_string(o.fourier_features));
  }
}

// Every check a run makes on its options before it loads data or allocates the model: UsageError
// naming the option (the batch size against the data waits for the data).
void validate_options(const RunConfig& o, bool in_memory) {
  if (!in_memory && is_shape_name(o.data)) check_shape_size(o.n, o.noise);
  make_schedule(o.schedule);  // validates T and the betas, and checks T against memory
  check_fourier_option(o);
  ModelConfig mc = model_config(o, 1);
  mc.classes = o.label_column.empty() ? 0 : 1;  // the tutorial's network refuses a label column
  validate(mc);
  validate(o.train, INT64_MAX);
  if (!o.label_column.empty() && !in_memory && is_shape_name(o.data)) {
    throw UsageError("--label-column: the built-in shape " + o.data +
                     " has no label column; give a CSV file with --data");
  }
}

// The data of a conditional run and its labels: a CSV's label column (labels.h; a column the
// header does not have is a UsageError naming --label-column), or the named column of points in
// memory. UsageError when there are more classes than a model holds or a class has fewer than
// kMinClassRows rows.
Labels load_labelled(const RunConfig& o, Dataset* data, Dataset& ds) {
  Labels labels;
  if (data == nullptr && is_shape_name(o.data)) {
    throw UsageError("--label-column: the built-in shape " + o.data +
                     " has no label column; give a CSV file with --data");
  }
  if (data != nullptr) {
    ds = std::move(*data);
    labels = take_numeric_label_column(ds, o.label_column, o.data);
  } else {
    const std::vector<std::string> header = read_csv_header(o.data);
    if (std::find(header.begin(), header.end(), o.label_column) == header.end()) {
      std::string known;
      for (const std::string& c : header) known += (known.empty() ? "" : ", ") + c;
      throw UsageError(
          "--label-column: " + o.data + " has no column " + quote_for_message(o.label_column) +
          (known.empty() ? " (it has no header line)" : " (its columns: " + known + ")"));
    }
    LabelledDataset ld = read_labelled_csv(o.data, o.label_column);
    ds = std::move(ld.data);
    labels = std::move(ld.labels);
  }
  if (labels.num_classes() > kMaxClasses) {
    throw UsageError("--label-column: " + quote_for_message(o.label_column) + " has " +
                     std::to_string(labels.num_classes()) + " classes, at most " +
                     std::to_string(kMaxClasses) + " are supported");
  }
  const std::vector<int64_t> counts = labels.counts();
  for (int k = 0; k < labels.num_classes(); ++k) {
    if (counts[k] < kMinClassRows) {
      throw UsageError("--label-column: class " + quote_for_message(labels.classes[k]) + " of " +
                       o.data + " has " + std::to_string(counts[k]) +
                       (counts[k] == 1 ? " row" : " rows") + "; every class needs at least " +
                       std::to_string(kMinClassRows));
    }
  }
  return labels;
}

// `train --resume`: the stored run's options, with the ones the caller gave (o.given) that a
// resumed run may change applied; a given option that differs from the stored value is refused.
RunConfig resumed_options(const RunConfig& o, const Checkpoint& resumed, bool in_memory) {
  nlohmann::json stored_json;
  try {
    stored_json = nlohmann::json::parse(resumed.train_state->train_config_json);
  } catch (const nlohmann::json::exception& e) {
    throw Error(o.resume + ": unreadable training options: " + e.what());
  }
  RunConfig stored = o;
  options_from_json(stored_json, stored, o.resume);
  if (!o.given.empty()) {
    validate_options(o, in_memory);  // the command line's own values first, as options
    const nlohmann::json cli = options_json(o);
    for (const StoredOption& s : kStoredOptions) {
      if (!o.given.count(s.option) || s.may_change || cli[s.key] == stored_json[s.key]) continue;
      const nlohmann::json& v = stored_json[s.key];
      throw UsageError(std::string(s.option) + ": the run in " + o.resume + " was started with " +
                       s.option + " " + (v.is_string() ? v.get<std::string>() : v.dump()) +
                       "; a resumed run keeps it (only --epochs, --updates, --threads, "
                       "--checkpoint-every, --log and -o may change)");
    }
    const int done = resumed.train_state->epoch;
    if (o.given.count("--epochs")) {
      if (o.train.epochs <= done) {
        throw UsageError("--epochs: " + std::to_string(done) + " epochs are already done in " +
                         o.resume + "; expected more than " + std::to_string(done));
      }
      stored.train.epochs = o.train.epochs;
    }
    if (o.given.count("--updates")) stored.train.updates = o.train.updates;
    if (o.given.count("--threads")) stored.train.threads = o.train.threads;
  }
  try {
    validate_options(stored, in_memory);
  } catch (const UsageError& e) {  // a bad value in the file is the file's fault, not an option's
    throw Error(o.resume + ": stored training option " + e.what());
  }
  return stored;
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

constexpr const char* kSnapshotPrefix = "reverse_epoch_";

// The snapshot options' checks (UsageError naming the option), before any work: the folder exists
// and is writable, and no input or output of the run is a file a snapshot could overwrite.
void check_snapshot_options(const RunConfig& o, const std::vector<NamedPath>& files) {
  namespace fs = std::filesystem;
  if (o.snapshot_every < 0) {
    throw UsageError("--snapshot-every: expected >= 0, got " + std::to_string(o.snapshot_every));
  }
  if (o.snapshot_every == 0) return;
  if (o.snapshot_points < 1) {
    throw UsageError("--snapshot-points: expected at least 1 sample, got " +
                     std::to_string(o.snapshot_points));
  }
  const std::string& dir = o.snapshot_dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UsageError("--snapshot-dir " + dir + ": " +
                     (fs::exists(dir, ec) ? "is a file, not a folder" : "no such folder"));
  }
  check_writable((fs::path(dir) / (std::string(kSnapshotPrefix) + "0.png")).string(),
                 "--snapshot-dir");
  for (const NamedPath& f : files) {
    if (f.path.empty()) continue;
    const std::string name = fs::path(f.path).filename().string();
    const bool snapshot_name = name.rfind(kSnapshotPrefix, 0) == 0 && name.size() > 18 &&
                               name.compare(name.size() - 4, 4, ".png") == 0;
    if (!snapshot_name) continue;
    const fs::path parent =
        fs::path(f.path).parent_path().empty() ? fs::path(".") : fs::path(f.path).parent_path();
    if (fs::equivalent(parent, dir, ec)) {
      throw UsageError(f.option + " " + f.path + " is where --snapshot-dir " + dir +
                       " writes a snapshot; it would be overwritten");
    }
  }
}

void default_warning(const std::string& w) {
  std::fprintf(stderr, "diffuse: warning: %s\n", w.c_str());
}

// data: points given in memory (moved from), or null to load config.data (a shape or CSV file).
RunResult run(const RunConfig& config, Dataset* data, const RunCallbacks& cb) {
  RunConfig o = config;
  const auto warn = cb.on_warning ? cb.on_warning : default_warning;
  std::optional<Checkpoint> resumed;
  if (!o.resume.empty()) {
    resumed = load_checkpoint(o.resume);
    if (!resumed->train_state) {
      throw Error(o.resume +
                  ": has no training state to resume (it is a finished model; only "
                  "checkpoints saved with --checkpoint-every or on interrupt resume)");
    }
    o = resumed_options(o, *resumed, data != nullptr);
    if (data != nullptr) o.data = config.data;
  }
  if (o.checkpoint_every < 0) {
    throw UsageError("--checkpoint-every: expected >= 0, got " +
                     std::to_string(o.checkpoint_every));
  }
  check_fourier_option(o);
  const bool writes = !o.out.empty();
  if (!writes && o.checkpoint_every > 0) {
    throw UsageError("--checkpoint-every: needs a checkpoint path (-o) to save to");
  }
  if (!writes && !o.log.empty()) {
    throw UsageError("--log: needs a checkpoint path (-o); the log is written with the checkpoint");
  }
  std::string log_path;
  if (writes) {
    check_writable(o.out, "-o");
    log_path = o.log.empty() ? default_log_path(o.out) : o.log;
    check_writable(log_path, "--log");
    // No output may be an input (-o onto the resumed checkpoint is the one exception: it is read
    // whole before anything is written).
    std::vector<NamedPath> inputs;
    if (data == nullptr && !is_shape_name(o.data)) inputs.push_back({"--data", o.data});
    check_distinct_files(inputs, {{"-o", o.out}, {"--log", log_path}});
    if (resumed) check_distinct_files({{"--resume", o.resume}}, {{"--log", log_path}});
  }
  check_snapshot_options(o, {{"-o", o.out},
                             {"--log", log_path},
                             {"--data", data == nullptr ? o.data : std::string()},
                             {"--resume", o.resume}});

  const Schedule schedule = make_schedule(o.schedule);
  if (schedule.config.kind == ScheduleKind::kCosine && !resumed) {
    for (const char* option : {"--beta-start", "--beta-end"}) {
      if (o.given.count(option) != 0) {
        throw UsageError(std::string(option) +
                         ": the cosine schedule has no beta range (--steps sets it); use it with "
                         "--schedule linear, sigmoid or quadratic");
      }
    }
  }
  if (o.model == ModelKind::kTutorial) {  // also on resume: the stored run's network
    for (const char* option : {"--depth", "--fourier-features"}) {
      if (o.given.count(option) != 0) {
        throw UsageError(std::string(option) +
                         ": the tutorial's network has no residual blocks or input features; use "
                         "it with --model resmlp");
      }
    }
  }
  if (auto w = schedule_warning(schedule)) warn(*w);

  Dataset ds;
  Labels labels;  // a conditional run's
  if (!o.label_column.empty()) {
    labels = load_labelled(o, data, ds);
  } else {
    ds = data != nullptr ? std::move(*data) : load_data(o.data, o.n, o.noise, o.train.seed + 1);
  }
  const std::vector<int64_t> class_counts = labels.counts();
  const DataRange range = fit_data_range(ds.x);  // in the data's units, before standardizing
  Normalization norm;
  if (o.standardize) {
    std::vector<int> constant;
    norm = fit_normalization(ds.x, &constant);
    for (int c : constant) {
      warn(o.data + ": column " + std::to_string(c + 1) +
           (ds.columns.empty() ? "" : " (" + ds.columns[c] + ")") +
           " is constant; it is not scaled");
    }
    norm.apply(ds.x);
  }
  if (data == nullptr && is_shape_name(o.data) && ds.columns.empty()) ds.columns = {"x", "y"};

  ModelConfig mc = model_config(o, static_cast<int>(ds.x.cols()));
  mc.classes = labels.num_classes();
  if (resumed) {  // the same data, or the continued run would silently differ
    if (labels.classes != resumed->classes || class_counts != resumed->class_counts) {
      throw Error(o.resume + ": the classes of " + o.data + " have changed since the run started");
    }
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
  check_training_memory(mc, ds.x.rows(), o.train);
  Model model(mc);
  Rng init_rng = Rng(o.train.seed).fork(0);
  model.init(init_rng);
  Trainer trainer(model, schedule, ds.x, o.train, mc.classes > 0 ? &labels.of_row : nullptr);
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
    c.range = range;
    c.columns = ds.columns;
    c.classes = labels.classes;
    c.class_counts = class_counts;
    if (mc.classes > 0) c.label_column = o.label_column;
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

  RunResult result;
  std::vector<EpochStats>& rows = result.epochs;
  // The log keeps the rows of the run being resumed; the epoch of the newest resumable checkpoint
  // under o.out (0: none) is named if training fails.
  const std::string earlier_log =
      resumed && writes ? log_rows_until(log_path, resumed->train_state->epoch) : std::string();
  int saved_epoch = resumed && o.resume == o.out ? resumed->train_state->epoch : 0;

  // A log that cannot be written (a full disk) must not cost the model: the checkpoint is always
  // saved first, and the failure is reported in result.side_output_errors.
  bool log_failed = false;
  auto write_log = [&](bool during_training) {
    if (!writes) return;
    try {
      write_file_atomic(log_path, log_csv(earlier_log, rows));
    } catch (const Error& e) {
      if (log_failed) return;  // once is enough
      log_failed = true;
      result.side_output_errors.push_back("--log " + log_path +
                                          " could not be written: " + e.what());
      if (during_training) warn(result.side_output_errors.back() + "; training goes on");
    }
  };
  // A snapshot that cannot be written (a full disk) must not cost the run either: warn once and
  // train on.
  bool snapshot_failed = false;
  auto write_snapshot = [&](const EpochStats& s) {
    SampleConfig sc;
    sc.seed = o.train.seed;
    sc.record_every = auto_record_every(schedule.T());
    char name[64];
    std::snprintf(name, sizeof name, "%s%04d.png", kSnapshotPrefix, s.epoch);
    try {
      Trajectory tr;
      sample_checkpoint(make_checkpoint(false), sc, o.snapshot_points, o.train.threads, &tr);
      plot_reverse_strip((std::filesystem::path(o.snapshot_dir) / name).string(), tr.x, tr.t, 10,
                         "reverse process after epoch " + std::to_string(s.epoch), ds.columns);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      if (snapshot_failed) return;
      snapshot_failed = true;
      result.side_output_errors.push_back(std::string("a snapshot could not be written: ") +
                                          e.what());
      warn(result.side_output_errors.back() + "; training goes on");
    }
  };

  // After every check that can refuse the run, so that a refusal stays one line; a resumed run was
  // warned when it started.
  if (!resumed) {
    const TrainConfig resolved = resolve_budget(o.train, ds.x.rows());
    if (auto w = budget_warning(resolved, ds.x.rows())) warn(*w);
    if (auto w = memorization_warning(resolved, ds.x.rows())) warn(*w);
  }
  try {
    train(trainer, [&](const EpochStats& s, const Trainer& tr) {
      rows.push_back(s);
      if (cb.on_epoch) cb.on_epoch(s, tr, schedule, norm);
      if (o.snapshot_every > 0 && (s.epoch % o.snapshot_every == 0 || s.epoch == s.epochs)) {
        write_snapshot(s);
      }
      if (o.checkpoint_every > 0 && s.epoch % o.checkpoint_every == 0 && s.epoch < s.epochs) {
        save_checkpoint(o.out, make_checkpoint(true));
        saved_epoch = s.epoch;
        write_log(true);
      }
      return !(cb.stop_requested && cb.stop_requested());
    });
  } catch (const Error& e) {  // e.g. the loss became NaN: keep the log and say what is left
    if (writes) {
      try {
        write_file_atomic(log_path, log_csv(earlier_log, rows));
      } catch (const Error&) {
        // the training error matters more
      }
    }
    throw Error(std::string(e.what()) +
                (saved_epoch > 0 ? "; the last good checkpoint (epoch " +
                                       std::to_string(saved_epoch) + ") is " + o.out
                                 : "; no checkpoint was saved (--checkpoint-every N keeps one)"));
  }

  result.finished = trainer.done();
  if (!result.finished) {
    result.checkpoint = make_checkpoint(true);
    if (writes) save_checkpoint(o.out, result.checkpoint);
    write_log(false);
    return result;
  }
  Checkpoint& ckpt = result.checkpoint;
  ckpt = make_checkpoint(false);
  if (!rows.empty()) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", rows.back().mean_loss);
    ckpt.info["final_loss"] = buf;
    std::snprintf(buf, sizeof buf, "%.3f", rows.back().seconds);
    ckpt.info["train_seconds"] = buf;
    std::snprintf(buf, sizeof buf, "%.1f", rows.back().steps_per_s);
    ckpt.info["steps_per_s"] = buf;
  }
  if (writes) save_checkpoint(o.out, ckpt);
  write_log(false);
  return result;
}

}  // namespace

RunConfig RunConfig::tutorial() {
  RunConfig c;
  c.schedule = ScheduleConfig::tutorial();
  c.train = TrainConfig::tutorial();
  c.hidden = 128;
  c.standardize = false;
  c.model = ModelKind::kTutorial;
  c.prediction = Prediction::kEps;
  c.fourier_features = 0;  // as the tutorial's network; also for --as-tutorial --model resmlp
  c.n = ShapeConfig{}.n;   // the tutorial's 10,000 points
  return c;
}

ModelConfig model_config(const RunConfig& c, int dim) {
  ModelConfig mc{dim, c.hidden, c.schedule.T, c.model, c.depth, c.prediction};
  mc.fourier_features = c.model == ModelKind::kResMlp ? c.fourier_features : 0;
  return mc;
}

RunResult run_training(const RunConfig& config, const RunCallbacks& callbacks) {
  return run(config, nullptr, callbacks);
}

RunResult run_training(const RunConfig& config, const Dataset& data,
                       const RunCallbacks& callbacks) {
  Dataset copy = data;  // standardized in place
  return run(config, &copy, callbacks);
}

RunResult run_training(const RunConfig& config, Dataset&& data, const RunCallbacks& callbacks) {
  return run(config, &data, callbacks);
}

std::string default_log_path(const std::string& checkpoint) {
  std::string base = checkpoint;
  const std::string ext = ".safetensors";
  if (base.size() > ext.size() && base.compare(base.size() - ext.size(), ext.size(), ext) == 0) {
    base.resize(base.size() - ext.size());
  }
  return base + ".log.csv";
}

namespace {

// The sampling configuration a checkpoint's model runs with: threads, and its data's x0 range.
// Checks the class and guidance against the model.
SampleConfig checkpoint_sample_config(const Checkpoint& ckpt, const SampleConfig& sc,
                                      const Schedule& schedule, int threads) {
  SampleConfig config = sc;
  config.threads = threads;
  validate(config, schedule.T());
  if (sc.label != kEveryClass) {
    if (ckpt.model.classes == 0) {
      throw UsageError("--class: the model has no classes (it was trained without --label-column)");
    }
    if (sc.label < 0 || sc.label >= ckpt.model.classes) {
      throw UsageError("--class: label " + std::to_string(sc.label) +
                       " is outside the model's 0.." + std::to_string(ckpt.model.classes - 1));
    }
  }
  if (!(sc.guidance >= 0.0) || !std::isfinite(sc.guidance)) {
    throw UsageError("--guidance: expected a finite scale >= 0, got " +
                     std::to_string(sc.guidance));
  }
  if (sc.guidance != 1.0 && sc.label == kEveryClass) {
    throw UsageError("--guidance: needs --class (it scales the pull towards one class)");
  }
  config.x0_range = x0_range(ckpt.range, ckpt.normalization);
  return config;
}

// Normalized samples -> the data's units, clipped to the range and rounded as configured.
void finish_samples(const Checkpoint& ckpt, const SampleConfig& config, Points& x) {
  ckpt.normalization.undo(x);
  // The last step returns the clamped x0; undoing the standardization can round it a hair out.
  if (config.x0_clamp != X0Clamp::kOff) clip_to_range(ckpt.range, x);
  if (config.round_integers) round_integer_columns(ckpt.range, x);
}

// A conditional checkpoint's predictor with the configuration's guidance.
ConditionalEpsFn conditional_eps_fn(const Checkpoint& ckpt, const SampleConfig& config,
                                    const Schedule& schedule, int threads) {
  return guided_eps_fn(denoiser_conditional_eps_fn(ckpt.model, ckpt.params, schedule, threads),
                       config.guidance, null_label(ckpt.model), ckpt.model.dim);
}

// The stream sample_labels draws each row's class from (fork 0 is the trainer's initialization;
// sampling's own noise is Rng(seed) itself).
constexpr uint64_t kLabelStream = 7;

}  // namespace

std::vector<int32_t> sample_labels(const Checkpoint& ckpt, const SampleConfig& sc, int64_t first,
                                   int m) {
  if (ckpt.model.classes == 0) return {};
  if (sc.label != kEveryClass) return std::vector<int32_t>(static_cast<size_t>(m), sc.label);
  std::vector<double> cumulative;
  double total = 0;
  for (int64_t c : ckpt.class_counts) cumulative.push_back(total += static_cast<double>(c));
  Rng rng = Rng(sc.seed).fork(kLabelStream);
  if (first > 0) RngJump(static_cast<uint64_t>(first)).apply(rng);  // uniform() is one draw
  std::vector<int32_t> labels(static_cast<size_t>(m));
  for (int32_t& k : labels) {
    const double u = rng.uniform() * total;
    k = static_cast<int32_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) -
                             cumulative.begin());
    k = std::min(k, ckpt.model.classes - 1);
  }
  return labels;
}

int class_label(const Checkpoint& ckpt, std::string_view name) {
  if (ckpt.classes.empty()) {
    throw UsageError("--class: the model has no classes (it was trained without --label-column)");
  }
  for (size_t k = 0; k < ckpt.classes.size(); ++k) {
    if (ckpt.classes[k] == name) return static_cast<int>(k);
  }
  std::string known;
  for (const std::string& c : ckpt.classes) {
    if (known.size() > 200) {
      known += ", ...";
      break;
    }
    known += (known.empty() ? "" : ", ") + c;
  }
  throw UsageError("--class: unknown class " + quote_for_message(name) +
                   "; the model's classes are " + known);
}

Points sample_checkpoint(const Checkpoint& ckpt, const SampleConfig& sc, int n, int threads,
                         Trajectory* trajectory) {
  if (n < 1) throw UsageError("-n: expected at least 1 sample, got " + std::to_string(n));
  const Schedule schedule = make_schedule(ckpt.schedule);
  const SampleConfig config = checkpoint_sample_config(ckpt, sc, schedule, threads);
  Points x;
  if (ckpt.model.classes == 0) {
    x = sample(denoiser_eps_fn(ckpt.model, ckpt.params, schedule, threads), schedule, n,
               ckpt.model.dim, config, trajectory);
  } else {
    const std::vector<int32_t> labels = sample_labels(ckpt, config, 0, n);
    x = sample(conditional_eps_fn(ckpt, config, schedule, threads), schedule, n, ckpt.model.dim,
               config, labels.data(), trajectory);
  }
  finish_samples(ckpt, config, x);
  if (trajectory != nullptr) {
    for (Points& p : trajectory->x) ckpt.normalization.undo(p);
  }
  return x;
}

void sample_checkpoint_chunked(const Checkpoint& ckpt, const SampleConfig& sc, int64_t n,
                               int threads, int chunk_rows,
                               const std::function<void(int64_t first, const Points& x)>& sink,
                               const std::function<bool()>& stop) {
  if (n < 1) throw UsageError("-n: expected at least 1 sample, got " + std::to_string(n));
  const Schedule schedule = make_schedule(ckpt.schedule);
  const SampleConfig config = checkpoint_sample_config(ckpt, sc, schedule, threads);
  Points x;
  auto finish = [&](int64_t first, const Points& chunk) {
    x = chunk;
    finish_samples(ckpt, config, x);
    sink(first, x);
  };
  if (ckpt.model.classes == 0) {
    sample_chunked(denoiser_eps_fn(ckpt.model, ckpt.params, schedule, threads), schedule, n,
                   ckpt.model.dim, config, chunk_rows, finish, stop);
    return;
  }
  sample_chunked(
      conditional_eps_fn(ckpt, config, schedule, threads), schedule, n, ckpt.model.dim, config,
      chunk_rows,
      [&](int64_t first, int m, int32_t* labels) {
        const std::vector<int32_t> l = sample_labels(ckpt, config, first, m);
        std::copy(l.begin(), l.end(), labels);
      },
      finish, stop);
}

}  // namespace diffuse
