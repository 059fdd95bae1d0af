// The Python module's compiled half, `diffuse._diffuse`: thin pybind11 bindings over the library
// (run.h, checkpoint.h, sampler.h, dataset.h, labels.h, evaluate.h). The public API and its keyword
// handling are in python/diffuse/__init__.py; nothing here decides a default or a name: the
// *_defaults() dicts read RunConfig{}, SampleConfig{}, ShapeConfig{}, EvalConfig{} (the CLI's
// defaults too), and the library's parse_* helpers turn names into enums with the CLI's messages.
// Training and sampling release the GIL; a training run takes it back once an epoch to report
// progress and to check for Ctrl-C (PyErr_CheckSignals), which stops the run after that epoch with
// the model intact. Library errors become ValueError with the CLI's line.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/denoiser.h"
#include "diffuse/error.h"
#include "diffuse/evaluate.h"
#include "diffuse/labels.h"
#include "diffuse/model.h"
#include "diffuse/run.h"
#include "diffuse/sampler.h"
#include "diffuse/schedule.h"
#include "diffuse/train.h"

namespace py = pybind11;

namespace diffuse::python {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A trained model: what a checkpoint holds, plus the run's per-epoch statistics when it was
// trained in this process.
struct PyModel {
  Checkpoint checkpoint;
  std::vector<EpochStats> history;
  bool finished = true;
  int epochs = 0;  // epochs trained (the checkpoint's "epochs" metadata)
};

// The checkpoint's "epochs" metadata (0 when absent); `file` names it when it is not a count.
int epochs_of(const Checkpoint& c, const std::string& file) {
  const auto it = c.info.find("epochs");
  if (it == c.info.end()) return 0;
  const std::string& s = it->second;
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 0) {
    throw Error(file + ": corrupt metadata: 'epochs' is not a whole number of epochs");
  }
  return v;
}

// A Python int (or numpy integer; not a bool) within T's range, for the keyword `name`.
template <typename T>
T to_int(const py::handle& v, const std::string& name) {
  if (PyBool_Check(v.ptr()) || PyIndex_Check(v.ptr()) == 0) {
    throw py::type_error(name + ": expected an integer, got " + std::string(py::repr(v)));
  }
  const auto i = py::reinterpret_steal<py::int_>(PyNumber_Index(v.ptr()));
  if (!i) throw py::error_already_set();
  const py::int_ lo(std::numeric_limits<T>::min()), hi(std::numeric_limits<T>::max());
  if (i < lo || i > hi) {
    throw py::value_error(name + ": expected an integer from " +
                          std::to_string(std::numeric_limits<T>::min()) + " to " +
                          std::to_string(std::numeric_limits<T>::max()) + ", got " +
                          std::string(py::repr(i)));
  }
  return i.cast<T>();
}

// A real number (int, float, numpy scalar; not a bool, a string or a complex number).
double to_double(const py::handle& v, const std::string& name) {
  if (!PyBool_Check(v.ptr()) && !PyUnicode_Check(v.ptr()) && !PyBytes_Check(v.ptr()) &&
      !PyComplex_Check(v.ptr())) {
    const double d = PyFloat_AsDouble(v.ptr());
    if (!(d == -1.0 && PyErr_Occurred())) return d;
    PyErr_Clear();
  }
  throw py::type_error(name + ": expected a number, got " + std::string(py::repr(v)));
}

bool is_path_like(const py::handle& v) {
  return py::isinstance<py::str>(v) || py::hasattr(v, "__fspath__");
}

// A str or os.PathLike (pathlib.Path) as a path string.
std::string to_path(const py::handle& v, const std::string& name) {
  if (!is_path_like(v)) {
    throw py::type_error(name + ": expected a path (str or os.PathLike), got " +
                         std::string(py::repr(v)));
  }
  return py::module_::import("os").attr("fsdecode")(v).cast<std::string>();
}

// (N, D) float32 numpy array owning the points' buffer (no copy).
py::array to_numpy(Points&& x) {
  auto* owned = new Points(std::move(x));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<Points*>(p); });
  return py::array_t<float>({owned->rows(), owned->cols()},
                            {owned->cols() * static_cast<py::ssize_t>(sizeof(float)),
                             static_cast<py::ssize_t>(sizeof(float))},
                            owned->data(), free_when_done);
}

// An (N, D) array of real numbers as a checked numpy array (no copy when it already is one).
// Throws TypeError / ValueError naming `what` for anything else.
py::array checked_array(const py::handle& obj, const std::string& what) {
  py::array arr;
  try {
    arr = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
    arr = py::array();
  }
  const char kind = arr ? arr.dtype().kind() : 'O';
  if (kind != 'f' && kind != 'i' && kind != 'u') {  // not bool, complex, strings, objects, dates
    throw py::type_error(what + ": expected an (N, D) array of numbers, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  if (arr.ndim() != 2) {
    throw py::value_error(what + ": expected an (N, D) array, got " + std::to_string(arr.ndim()) +
                          " dimension(s)");
  }
  if (arr.shape(0) < 1 || arr.shape(1) < 1) {
    throw py::value_error(what + ": expected at least one row and one column, got (" +
                          std::to_string(arr.shape(0)) + ", " + std::to_string(arr.shape(1)) + ")");
  }
  return arr;
}

void check_finite(const float* x, py::ssize_t n, py::ssize_t d, const std::string& what) {
  for (py::ssize_t i = 0; i < n * d; ++i) {
    if (!std::isfinite(x[i])) {
      throw py::value_error(what + ": row " + std::to_string(i / d + 1) + ", column " +
                            std::to_string(i % d + 1) + " is not a finite number");
    }
  }
}

// An (N, D) array of numbers as Points: exactly one copy, converting dtype and layout on the way
// (numpy.copyto into the Points' buffer).
Points to_points(const py::handle& obj, const std::string& what) {
  const py::array arr = checked_array(obj, what);
  const py::ssize_t n = arr.shape(0), d = arr.shape(1);
  Points x(n, d);
  const py::capsule not_owned(x.data(), [](void*) {});
  const py::array_t<float> view(
      {n, d},
      {d * static_cast<py::ssize_t>(sizeof(float)), static_cast<py::ssize_t>(sizeof(float))},
      x.data(), not_owned);
  py::module_::import("numpy").attr("copyto")(view, arr, py::arg("casting") = "unsafe");
  check_finite(x.data(), n, d, what);
  return x;
}

// Read-only (N, D) float32 points: a view of a float32 C-contiguous array (no copy), else a copy.
struct PointsView {
  Points copy;
  py::array array;  // keeps the viewed array alive
  const float* data = nullptr;
  Eigen::Index rows = 0, cols = 0;
};

PointsView view_points(const py::handle& obj, const std::string& what) {
  PointsView v;
  if (py::isinstance<FloatArray>(obj) && py::reinterpret_borrow<py::array>(obj).ndim() == 2) {
    v.array = checked_array(obj, what);
    v.data = static_cast<const float*>(v.array.data());
    v.rows = v.array.shape(0);
    v.cols = v.array.shape(1);
    check_finite(v.data, v.rows, v.cols, what);
  } else {
    v.copy = to_points(obj, what);
    v.data = v.copy.data();
    v.rows = v.copy.rows();
    v.cols = v.copy.cols();
  }
  return v;
}

py::dict stats_dict(const EpochStats& s) {
  py::dict d;
  d["epoch"] = s.epoch;
  d["epochs"] = s.epochs;
  d["mean_loss"] = s.mean_loss;
  d["last_loss"] = s.last_loss;
  d["steps"] = s.steps;
  d["seconds"] = s.seconds;
  d["steps_per_s"] = s.steps_per_s;
  return d;
}

// The library's defaults for every training keyword, under the CLI's option names.
py::dict train_defaults(const RunConfig& c) {
  py::dict d;
  d["points"] = c.n;
  d["noise"] = c.noise;
  d["updates"] = c.train.updates;
  d["epochs"] = c.train.epochs;
  d["batch_size"] = c.train.batch_size;
  d["standardize"] = c.standardize;
  d["lr"] = c.train.lr;
  d["steps"] = c.schedule.T;
  d["schedule"] = to_string(c.schedule.kind);
  d["beta_start"] = c.schedule.beta_start;
  d["beta_end"] = c.schedule.beta_end;
  d["hidden"] = c.hidden;
  d["model"] = to_string(c.model);
  d["depth"] = c.depth;
  d["fourier_features"] = c.fourier_features;
  d["predict"] = to_string(c.prediction);
  d["loss_weighting"] = to_string(c.train.loss_weighting);
  d["snr_gamma"] = c.train.snr_gamma;
  d["label_dropout"] = c.train.label_dropout;
  d["seed"] = c.train.seed;
  d["threads"] = c.train.threads;
  d["grad_clip"] = c.train.grad_clip;
  d["ema"] = c.train.ema_decay;
  d["warmup"] = c.train.warmup_steps;
  d["lr_schedule"] = to_string(c.train.lr_schedule);
  d["lr_min"] = c.train.lr_min;
  d["checkpoint_every"] = c.checkpoint_every;
  d["snapshot_every"] = c.snapshot_every;
  d["snapshot_dir"] = c.snapshot_dir;
  d["snapshot_points"] = c.snapshot_points;
  return d;
}

// A string keyword (the CLI's option name in the message).
std::string to_text(const py::handle& v, const std::string& name) {
  if (!py::isinstance<py::str>(v)) {
    throw py::type_error(name + ": expected a string, got " + std::string(py::repr(v)));
  }
  return v.cast<std::string>();
}

// --spacing: a number (0, or a power) or the name "logsnr". A number is checked as the CLI's text
// would be, so that -1 (kLogSnrSpacing's value) or NaN is refused, not taken for logsnr.
double to_spacing(const py::handle& v) {
  if (py::isinstance<py::str>(v)) return parse_spacing(v.cast<std::string>());
  const double d = to_double(v, "--spacing");
  if (!(d >= 0.0)) return parse_spacing(std::string(py::str(v)));  // throws, naming the value
  return d;
}

bool to_bool(const py::handle& v, const std::string& name) {
  if (!PyBool_Check(v.ptr())) {
    throw py::type_error(name + ": expected True or False, got " + std::string(py::repr(v)));
  }
  return v.ptr() == Py_True;
}

template <typename T>
T option(const py::dict& o, const char* key, const char* cli) {
  const py::handle v = o[key];
  if constexpr (std::is_same_v<T, std::string>) {
    return to_text(v, cli);
  } else if constexpr (std::is_same_v<T, bool>) {
    return to_bool(v, cli);
  } else if constexpr (std::is_floating_point_v<T>) {
    return to_double(v, cli);
  } else {
    return to_int<T>(v, cli);
  }
}

// Applies the given keywords (CLI names, '-' as '_') over base.
RunConfig run_config(const py::dict& o, bool as_tutorial) {
  RunConfig c = as_tutorial ? RunConfig::tutorial() : RunConfig{};
  const auto has = [&o](const char* k) { return o.contains(k) && !o[k].is_none(); };
  if (has("points")) c.n = option<int>(o, "points", "-n");
  if (has("noise")) c.noise = option<double>(o, "noise", "--noise");
  if (has("updates")) c.train.updates = option<int64_t>(o, "updates", "--updates");
  if (has("epochs")) c.train.epochs = option<int>(o, "epochs", "--epochs");
  if (has("standardize")) c.standardize = option<bool>(o, "standardize", "--standardize");
  if (has("batch_size")) c.train.batch_size = option<int>(o, "batch_size", "--batch-size");
  if (has("lr")) c.train.lr = option<double>(o, "lr", "--lr");
  if (has("steps")) c.schedule.T = option<int>(o, "steps", "--steps");
  if (has("schedule")) {
    c.schedule.kind = parse_schedule(option<std::string>(o, "schedule", "--schedule"));
  }
  if (has("beta_start")) c.schedule.beta_start = option<double>(o, "beta_start", "--beta-start");
  if (has("beta_end")) c.schedule.beta_end = option<double>(o, "beta_end", "--beta-end");
  if (has("hidden")) c.hidden = option<int>(o, "hidden", "--hidden");
  // The CLI's names and messages for the choices: the library's parse_* (enum <-> string).
  if (has("model")) c.model = parse_model_kind(option<std::string>(o, "model", "--model"));
  if (has("depth")) c.depth = option<int>(o, "depth", "--depth");
  if (has("fourier_features")) {
    c.fourier_features = option<int>(o, "fourier_features", "--fourier-features");
  }
  if (has("predict")) {
    c.prediction = parse_prediction(option<std::string>(o, "predict", "--predict"));
  }
  if (has("loss_weighting")) {
    c.train.loss_weighting =
        parse_loss_weighting(option<std::string>(o, "loss_weighting", "--loss-weighting"));
  }
  if (has("snr_gamma")) c.train.snr_gamma = option<double>(o, "snr_gamma", "--snr-gamma");
  if (has("label_column") && !o["label_column"].is_none()) {
    c.label_column = option<std::string>(o, "label_column", "--label-column");
  }
  if (has("label_dropout")) {
    c.train.label_dropout = option<double>(o, "label_dropout", "--label-dropout");
  }
  if (has("seed")) c.train.seed = option<uint64_t>(o, "seed", "--seed");
  if (has("threads")) c.train.threads = option<int>(o, "threads", "--threads");
  if (has("grad_clip")) c.train.grad_clip = option<double>(o, "grad_clip", "--grad-clip");
  if (has("ema")) c.train.ema_decay = option<double>(o, "ema", "--ema");
  if (has("warmup")) c.train.warmup_steps = option<int>(o, "warmup", "--warmup");
  if (has("lr_schedule")) {
    c.train.lr_schedule = parse_lr_schedule(option<std::string>(o, "lr_schedule", "--lr-schedule"));
  }
  if (has("lr_min")) c.train.lr_min = option<double>(o, "lr_min", "--lr-min");
  if (has("checkpoint_every")) {
    c.checkpoint_every = option<int>(o, "checkpoint_every", "--checkpoint-every");
  }
  if (has("snapshot_every")) {
    c.snapshot_every = option<int>(o, "snapshot_every", "--snapshot-every");
  }
  if (has("snapshot_dir")) c.snapshot_dir = to_path(o["snapshot_dir"], "--snapshot-dir");
  if (has("snapshot_points")) {
    c.snapshot_points = option<int>(o, "snapshot_points", "--snapshot-points");
  }
  if (has("resume")) c.resume = to_path(o["resume"], "--resume");
  if (has("log")) c.log = to_path(o["log"], "--log");
  if (has("output")) c.out = to_path(o["output"], "-o");
  // As the CLI's note_given_options: a resumed run refuses a given option that differs from the
  // stored run's (RunConfig::given holds the command-line names).
  for (const auto& [key, value] : o) {
    if (value.is_none()) continue;
    const std::string k = py::str(key);
    if (k == "points") {
      c.given.insert("-n");
    } else if (k != "resume" && k != "log" && k != "output") {
      std::string name = "--" + k;
      std::replace(name.begin(), name.end(), '_', '-');
      c.given.insert(name);
    }
  }
  return c;
}

// train(data, options, as_tutorial, on_epoch, on_warning) -> (Model, interrupted)
// data: a shape name or CSV path (str) or an (N, D) array. on_epoch(stats: dict) is called with
// the GIL after every epoch; an exception from it stops the run and propagates.
py::tuple train_model(const py::object& data, const py::dict& options, bool as_tutorial,
                      const py::object& on_epoch, const py::object& on_warning) {
  RunConfig config = run_config(options, as_tutorial);
  if (!data.is_none()) config.given.insert("--data");
  std::optional<Dataset> points;
  if (is_path_like(data)) {
    config.data = to_path(data, "data");
  } else if (!data.is_none()) {
    points.emplace();
    points->x = to_points(data, "data");
    config.data = "array";
    if (py::hasattr(data, "columns")) {  // a pandas DataFrame: keep its column names
      for (const auto& c : data.attr("columns")) points->columns.push_back(py::str(c));
    }
  } else if (config.resume.empty()) {
    throw py::type_error("data: expected a shape name, a CSV path or an (N, D) array, got None");
  } else if (const Checkpoint saved = load_checkpoint(config.resume);
             saved.info.count("data") != 0 && saved.info.at("data") == "array") {
    throw UsageError("--resume " + config.resume +
                     ": the run trained on an array; pass the same array: train(x, resume=...)");
  }

  bool interrupted = false;
  std::optional<py::error_already_set> callback_error;
  RunCallbacks cb;
  // Ctrl-C becomes KeyboardInterrupt wherever Python next runs: in PyErr_CheckSignals or inside
  // the progress callable. Either way the run stops after this epoch instead of losing it.
  // Any other exception a signal handler raises (a SIGALRM handler's TimeoutError) stops the run
  // and propagates.
  const auto check_signals = [&interrupted, &callback_error] {
    if (PyErr_CheckSignals() == 0) return;
    py::error_already_set e;  // takes the pending exception
    if (e.matches(PyExc_KeyboardInterrupt)) {
      interrupted = true;
    } else {
      callback_error = std::move(e);
    }
  };
  cb.on_epoch = [&](const EpochStats& s, const Trainer&, const Schedule&, const Normalization&) {
    if (on_epoch.is_none() || callback_error || interrupted) return;
    py::gil_scoped_acquire gil;
    check_signals();
    if (interrupted || callback_error) return;
    try {
      on_epoch(stats_dict(s));
    } catch (py::error_already_set& e) {
      if (e.matches(PyExc_KeyboardInterrupt)) {
        interrupted = true;
      } else {
        callback_error = std::move(e);
      }
    }
  };
  cb.stop_requested = [&] {
    if (callback_error || interrupted) return true;
    py::gil_scoped_acquire gil;
    check_signals();
    return interrupted || callback_error.has_value();
  };
  cb.on_warning = [&](const std::string& w) {
    py::gil_scoped_acquire gil;
    on_warning(w);
  };

  RunResult r;
  {
    py::gil_scoped_release release;
    r = points ? run_training(config, std::move(*points), cb) : run_training(config, cb);
  }
  if (callback_error) throw std::move(*callback_error);
  auto model = std::make_unique<PyModel>();
  model->checkpoint = std::move(r.checkpoint);
  model->history = std::move(r.epochs);
  model->finished = r.finished;
  model->epochs = epochs_of(model->checkpoint, "the trained model");
  return py::make_tuple(std::move(model), interrupted);
}

// The defaults of Model.sample's keywords (`diffuse sample`'s options), from SampleConfig{}.
py::dict sample_defaults() {
  const SampleConfig s;
  py::dict d;
  d["n"] = kDefaultSamplePoints;
  d["seed"] = s.seed;
  d["sampler"] = to_string(s.sampler);
  d["nfe"] = s.nfe;
  d["spacing"] = s.spacing;
  d["eta"] = s.eta;
  d["variance"] = to_string(s.variance);
  d["threads"] = s.threads;
  d["x0_clamp"] = to_string(s.x0_clamp);
  d["round_integers"] = s.round_integers;
  d["class_"] = py::none();  // --class: every class in its training share
  d["guidance"] = s.guidance;
  d["return_labels"] = false;  // Python's own: also return each row's class name
  return d;
}

// Model.sample: `diffuse sample`. class_ is --class (a class name, or an int written as one;
// trailing underscore: `class` is a Python keyword); return_labels adds each row's class name
// (what the CLI writes to the label column), a conditional model's, or an empty array.
py::object sample_model(const PyModel& m, const py::object& n_obj, const py::object& seed,
                        const py::object& sampler, const py::object& nfe, const py::object& spacing,
                        const py::object& eta, const py::object& variance,
                        const py::object& threads, const py::object& x0_clamp,
                        const py::object& round_integers, const py::object& class_,
                        const py::object& guidance, const py::object& return_labels) {
  const int n = to_int<int>(n_obj, "-n");
  SampleConfig sc;
  sc.sampler = parse_sampler(to_text(sampler, "--sampler"));
  sc.variance = parse_variance(to_text(variance, "--variance"));
  sc.nfe = to_int<int>(nfe, "--nfe");
  sc.spacing = to_spacing(spacing);
  sc.eta = to_double(eta, "--eta");
  sc.seed = to_int<uint64_t>(seed, "--seed");
  sc.threads = to_int<int>(threads, "--threads");
  sc.x0_clamp = parse_x0_clamp(to_text(x0_clamp, "--x0-clamp"));
  sc.round_integers = to_bool(round_integers, "--round-integers");
  sc.guidance = to_double(guidance, "--guidance");
  const bool labels = to_bool(return_labels, "return_labels");
  if (sc.guidance != SampleConfig{}.guidance && class_.is_none()) {
    throw UsageError("--guidance: needs --class (it scales the pull towards one class)");
  }
  if (!class_.is_none()) {
    sc.label =
        class_label(m.checkpoint, py::isinstance<py::str>(class_) ? class_.cast<std::string>()
                                                                  : std::string(py::str(class_)));
  }
  Points x;
  {
    py::gil_scoped_release release;
    x = sample_checkpoint(m.checkpoint, sc, n, sc.threads);
  }
  py::array xs = to_numpy(std::move(x));
  if (!labels) return xs;
  py::list names;
  if (m.checkpoint.model.classes > 0) {
    for (int32_t k : sample_labels(m.checkpoint, sc, 0, n)) names.append(m.checkpoint.classes[k]);
  }
  return py::make_tuple(xs, py::array(names));
}

// diffuse.evaluate: the library's evaluate_sample_table (the same protocol and JSON as `diffuse
// eval`), against a shape name, a CSV path (str or os.PathLike) or an array of reference rows;
// train adds copy_share. label_column is `eval --label-column`: the samples, and a reference given
// as rows, are then (rows, labels) pairs (Model.sample(return_labels=True)'s) or tables with
// named columns (a DataFrame) holding that column, as `train` takes them.
py::dict evaluate_defaults() {
  const EvalConfig e;
  py::dict d;
  d["noise"] = e.noise;
  d["seed"] = e.seed;
  d["pairs"] = e.pairs;
  d["directions"] = e.directions;
  return d;
}

// Each row's class name from a sequence of str or int (an int is the class of that name, as the
// CLI reads "3" in a label column).
std::vector<std::string> class_names(const py::handle& seq, const std::string& what) {
  std::vector<std::string> names;
  for (const py::handle item : seq) {
    if (py::isinstance<py::str>(item)) {
      names.push_back(item.cast<std::string>());
    } else if (!PyBool_Check(item.ptr()) && PyIndex_Check(item.ptr()) != 0) {
      names.push_back(py::str(py::int_(py::reinterpret_borrow<py::object>(item))));
    } else {
      throw py::type_error(what + ": expected class names (str or int), got " +
                           std::string(py::repr(item)));
    }
  }
  return names;
}

// Rows and their labels: a (rows, labels) pair, or a table whose `columns` name label_column.
struct LabelledRows {
  Points x;
  std::vector<std::string> columns;
  Labels labels;
};

LabelledRows labelled_rows(const py::handle& obj, const std::string& label_column,
                           const std::string& what) {
  LabelledRows r;
  if (py::isinstance<py::tuple>(obj) && py::len(obj) == 2) {
    const auto pair = py::reinterpret_borrow<py::tuple>(obj);
    r.x = to_points(pair[0], what);
    r.labels = labels_from_names(class_names(pair[1], what + " labels"), label_column, what);
    if (static_cast<Eigen::Index>(r.labels.of_row.size()) != r.x.rows()) {
      throw py::value_error(what + ": " + std::to_string(r.labels.of_row.size()) + " labels for " +
                            std::to_string(r.x.rows()) + " rows");
    }
    return r;
  }
  if (!py::hasattr(obj, "columns")) {
    throw py::type_error(what +
                         ": with label_column, expected (rows, labels) or a table with "
                         "named columns (a DataFrame), got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  Dataset d;
  d.x = to_points(obj, what);
  for (const auto& c : obj.attr("columns")) d.columns.push_back(py::str(c));
  r.labels = take_numeric_label_column(d, label_column, what);
  r.x = std::move(d.x);
  r.columns = std::move(d.columns);
  return r;
}

py::object evaluate_for_python(const py::object& samples, const py::object& reference,
                               const py::object& noise_obj, const py::object& seed_obj,
                               const py::object& pairs, const py::object& directions,
                               const py::object& train, const py::object& label_column_obj) {
  EvalConfig config;
  config.noise = to_double(noise_obj, "--noise");
  config.seed = to_int<uint64_t>(seed_obj, "--seed");
  config.pairs = to_int<int>(pairs, "--pairs");
  config.directions = to_int<int>(directions, "--directions");
  const std::string label_column =
      label_column_obj.is_none() ? std::string() : to_text(label_column_obj, "--label-column");
  const bool labelled = !label_column.empty();
  Points x;
  Labels labels;
  if (labelled) {
    LabelledRows s = labelled_rows(samples, label_column, "samples");
    x = std::move(s.x);
    labels = std::move(s.labels);
  } else {
    x = to_points(samples, "samples");
  }
  Reference ref;
  if (is_path_like(reference)) {
    ref = resolve_eval_reference(to_path(reference, "reference"), config.noise, label_column);
  } else if (labelled) {
    LabelledRows r = labelled_rows(reference, label_column, "reference");
    ref =
        reference_from_rows("reference", std::move(r.x), std::move(r.columns), std::move(r.labels));
  } else {
    ref = reference_from_rows("reference", to_points(reference, "reference"));
  }
  std::optional<Points> t;
  if (!train.is_none()) {
    t = is_path_like(train) ? read_csv(to_path(train, "train")).x : to_points(train, "train");
  }
  std::string json;
  {
    py::gil_scoped_release release;
    json = evaluation_json(evaluate_sample_table("samples", x, labelled ? &labels : nullptr, ref,
                                                 config, t ? &*t : nullptr));
  }
  return py::module_::import("json").attr("loads")(json);
}

// The weights under their PyTorch state_dict names, as arrays of their PyTorch shapes (copies).
py::dict state_dict(const PyModel& m) {
  py::dict d;
  for (const TensorInfo& t : param_layout(m.checkpoint.model)) {
    std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    py::array_t<float> a(shape);
    std::memcpy(a.mutable_data(), m.checkpoint.params.data() + t.offset,
                static_cast<size_t>(a.size()) * sizeof(float));
    d[py::str(t.name)] = a;
  }
  return d;
}

// The reverse process: the states at the timesteps a sampler records every `every` steps (0: about
// 100 states), x_T first and the samples last, as (K, n, D) in the data's units.
py::dict trajectory_defaults() {
  const SampleConfig s;
  py::dict d;
  d["n"] = kDefaultTrajectoryPoints;
  d["seed"] = s.seed;
  d["every"] = 0;
  d["threads"] = s.threads;
  return d;
}

py::tuple sample_trajectory(const PyModel& m, const py::object& n_obj, const py::object& seed,
                            const py::object& every_obj, const py::object& threads_obj) {
  const int n = to_int<int>(n_obj, "-n");
  const int every = to_int<int>(every_obj, "--every");
  const int threads = to_int<int>(threads_obj, "--threads");
  if (every < 0) throw UsageError("--every: expected >= 0, got " + std::to_string(every));
  SampleConfig sc;
  sc.seed = to_int<uint64_t>(seed, "--seed");
  sc.record_every = every > 0 ? every : auto_record_every(m.checkpoint.schedule.T);
  Trajectory tr;
  {
    py::gil_scoped_release release;
    sample_checkpoint(m.checkpoint, sc, n, threads, &tr);
  }
  const py::ssize_t K = static_cast<py::ssize_t>(tr.x.size()), D = m.checkpoint.model.dim;
  py::array_t<float> states({K, static_cast<py::ssize_t>(n), D});
  for (py::ssize_t k = 0; k < K; ++k) {
    std::memcpy(states.mutable_data(k), tr.x[k].data(),
                static_cast<size_t>(n) * static_cast<size_t>(D) * sizeof(float));
  }
  return py::make_tuple(tr.t, states);
}

// eps_theta(x, t) for points x (n, D) in the model's standardized units at timestep t.
py::array predict_noise(const PyModel& m, const py::object& x_obj, const py::object& t_obj) {
  const int t = to_int<int>(t_obj, "t");
  const PointsView x = view_points(x_obj, "x");  // no copy for a float32 C-contiguous array
  const ModelConfig& c = m.checkpoint.model;
  if (x.cols != c.dim) {
    throw py::value_error("x: expected " + std::to_string(c.dim) + " columns, got " +
                          std::to_string(x.cols));
  }
  if (t < 0 || t >= c.T) {
    throw py::value_error("t: expected 0.." + std::to_string(c.T - 1) + ", got " +
                          std::to_string(t));
  }
  Points eps(x.rows, x.cols);
  {
    py::gil_scoped_release release;
    const Schedule schedule = make_schedule(m.checkpoint.schedule);
    denoiser_eps_fn(c, m.checkpoint.params, schedule, 1)(x.data, t, static_cast<int>(x.rows),
                                                         eps.data());
  }
  return to_numpy(std::move(eps));
}

}  // namespace
}  // namespace diffuse::python

PYBIND11_MODULE(_diffuse, m) {
  using namespace diffuse;
  using namespace diffuse::python;
  m.doc() = "diffuse's compiled core; use the `diffuse` package.";

  // UsageError and Error carry the CLI's one line; both are bad input to a Python caller.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::bad_alloc&) {
      PyErr_SetString(PyExc_MemoryError, "out of memory");
    }
  });

  m.def(
      "train_defaults", [] { return train_defaults(RunConfig{}); },
      "The default of every training keyword (RunConfig{}: the CLI's defaults).");
  m.def(
      "tutorial_settings", [] { return train_defaults(RunConfig::tutorial()); },
      "The tutorial's settings (RunConfig::tutorial(), `--as-tutorial`).");
  m.def("shape_names", [] {
    std::vector<std::string> names;
    for (Shape s : all_shapes()) names.push_back(to_string(s));
    return names;
  });
  // make_shape, evaluate, Model.sample and Model.sample_trajectory take their keywords' defaults
  // from these dicts (python/diffuse/__init__.py builds their signatures): the library's structs.
  m.def("make_shape_defaults", [] {
    const ShapeConfig s;
    py::dict d;
    d["n"] = s.n;
    d["noise"] = s.noise;
    d["seed"] = s.seed;
    return d;
  });
  m.def("sample_defaults", &sample_defaults);
  m.def("trajectory_defaults", &trajectory_defaults);
  m.def("evaluate_defaults", &evaluate_defaults);
  m.def(
      "_make_shape",
      [](const py::object& name, const py::object& n_obj, const py::object& noise_obj,
         const py::object& seed, bool labels) -> py::object {
        const Shape shape = parse_shape(to_text(name, "name"));  // the line of `diffuse data NAME`
        const int n = to_int<int>(n_obj, "-n");
        const double noise = to_double(noise_obj, "--noise");
        const uint64_t s = to_int<uint64_t>(seed, "--seed");
        if (labels) check_shape_has_classes(shape);  // `diffuse data NAME --labels`'s line
        Points x;
        std::vector<int32_t> classes;
        {
          py::gil_scoped_release release;
          x = labels ? make_shape(shape, n, noise, s, &classes) : make_shape(shape, n, noise, s);
        }
        if (!labels) return to_numpy(std::move(x));
        py::array_t<int32_t> y(static_cast<py::ssize_t>(classes.size()));
        std::copy(classes.begin(), classes.end(), y.mutable_data());
        return py::make_tuple(to_numpy(std::move(x)), y);
      },
      py::arg("name"), py::arg("n"), py::arg("noise"), py::arg("seed"), py::arg("labels"));
  m.def("_train", &train_model, py::arg("data"), py::arg("options"), py::arg("as_tutorial"),
        py::arg("on_epoch"), py::arg("on_warning"));
  m.def(
      "load",
      [](const py::object& path_obj) {
        const std::string path = to_path(path_obj, "path");
        auto model = std::make_unique<PyModel>();
        model->checkpoint = load_checkpoint(path);
        model->finished = !model->checkpoint.train_state.has_value();
        model->epochs = epochs_of(model->checkpoint, path);
        return model;
      },
      py::arg("path"), "Loads a checkpoint written by `diffuse train` or Model.save.");
  m.def("_evaluate", &evaluate_for_python, py::arg("samples"), py::arg("reference"),
        py::arg("noise"), py::arg("seed"), py::arg("pairs"), py::arg("directions"),
        py::arg("train"), py::arg("label_column"));

  py::class_<PyModel>(m, "Model", "A trained denoising diffusion model (a checkpoint in memory).")
      .def("_sample", &sample_model, py::arg("n"), py::arg("seed"), py::arg("sampler"),
           py::arg("nfe"), py::arg("spacing"), py::arg("eta"), py::arg("variance"),
           py::arg("threads"), py::arg("x0_clamp"), py::arg("round_integers"), py::arg("class_"),
           py::arg("guidance"), py::arg("return_labels"))
      .def(
          "save",
          [](const PyModel& m, const py::object& path) {
            save_checkpoint(to_path(path, "path"), m.checkpoint);
          },
          py::arg("path"), "Writes the model as safetensors (resumable if training was stopped).")
      .def("_sample_trajectory", &sample_trajectory, py::arg("n"), py::arg("seed"),
           py::arg("every"), py::arg("threads"))
      .def("predict_noise", &predict_noise, py::arg("x"), py::arg("t"),
           "The network's eps_theta(x, t) for x (n, D) in the model's standardized units.")
      .def_property_readonly(
          "betas",
          [](const PyModel& m) {
            const auto v = make_schedule(m.checkpoint.schedule).beta;
            return py::array_t<double>(static_cast<py::ssize_t>(v.size()), v.data());
          },
          "beta_t for t = 0..T-1")
      .def_property_readonly(
          "alpha_bar",
          [](const PyModel& m) {
            const auto v = make_schedule(m.checkpoint.schedule).alpha_bar;
            return py::array_t<double>(static_cast<py::ssize_t>(v.size()), v.data());
          },
          "prod_{s<=t} (1 - beta_s) for t = 0..T-1")
      .def("state_dict", &state_dict,
           "The weights as numpy arrays under the tutorial's PyTorch state_dict names.")
      .def_property_readonly("dim", [](const PyModel& m) { return m.checkpoint.model.dim; })
      .def_property_readonly("hidden", [](const PyModel& m) { return m.checkpoint.model.hidden; })
      .def_property_readonly("steps", [](const PyModel& m) { return m.checkpoint.schedule.T; })
      .def_property_readonly("schedule",
                             [](const PyModel& m) { return to_string(m.checkpoint.schedule.kind); })
      .def_property_readonly("beta_start",
                             [](const PyModel& m) { return m.checkpoint.schedule.beta_start; })
      .def_property_readonly("beta_end",
                             [](const PyModel& m) { return m.checkpoint.schedule.beta_end; })
      .def_property_readonly("columns", [](const PyModel& m) { return m.checkpoint.columns; })
      .def_property_readonly(
          "classes", [](const PyModel& m) { return m.checkpoint.classes; },
          "The class names of a model trained with label_column (in their stable order); empty "
          "for an unconditional model.")
      .def_property_readonly(
          "class_counts", [](const PyModel& m) { return m.checkpoint.class_counts; },
          "The training rows of each class (Model.classes' order).")
      .def_property_readonly("mean",
                             [](const PyModel& m) { return m.checkpoint.normalization.mean; })
      .def_property_readonly("std", [](const PyModel& m) { return m.checkpoint.normalization.std; })
      .def_property_readonly("info", [](const PyModel& m) { return m.checkpoint.info; })
      .def_property_readonly(
          "epochs", [](const PyModel& m) { return m.epochs; }, "epochs trained")
      .def_property_readonly(
          "finished", [](const PyModel& m) { return m.finished; },
          "False when training stopped early (the model can resume)")
      .def_property_readonly(
          "history",
          [](const PyModel& m) {
            py::list l;
            for (const EpochStats& s : m.history) l.append(stats_dict(s));
            return l;
          },
          "per-epoch statistics of the training run in this process")
      .def("__repr__", [](const PyModel& m) {
        const auto& c = m.checkpoint;
        return "<diffuse.Model dim=" + std::to_string(c.model.dim) +
               " hidden=" + std::to_string(c.model.hidden) +
               " steps=" + std::to_string(c.schedule.T) +
               " schedule=" + to_string(c.schedule.kind) + (m.finished ? "" : " (stopped early)") +
               ">";
      });
}
