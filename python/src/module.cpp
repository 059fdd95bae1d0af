// The Python module's compiled half, `diffuse._diffuse`: thin pybind11 bindings over the library
// (run.h, checkpoint.h, sampler.h, dataset.h, evaluate.h). The public API and its keyword handling
// are in python/diffuse/__init__.py; nothing here decides a default (they come from RunConfig{},
// SampleConfig{}, ...). Training and sampling release the GIL; a training run takes it back once
// an epoch to report progress and to check for Ctrl-C (PyErr_CheckSignals), which stops the run
// after that epoch with the model intact. Library errors become ValueError with the CLI's line.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/evaluate.h"
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
};

// (N, D) float32 numpy array owning the points' buffer (no copy).
py::array to_numpy(Points&& x) {
  auto* owned = new Points(std::move(x));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<Points*>(p); });
  return py::array_t<float>({owned->rows(), owned->cols()},
                            {owned->cols() * static_cast<py::ssize_t>(sizeof(float)),
                             static_cast<py::ssize_t>(sizeof(float))},
                            owned->data(), free_when_done);
}

// An (N, D) array of numbers as Points (one copy, the library's own layout). Throws TypeError /
// ValueError naming `what` for anything else.
Points to_points(const py::handle& obj, const std::string& what) {
  py::array arr;
  try {
    arr = py::array::ensure(obj);
  } catch (const py::error_already_set&) {
    arr = py::array();
  }
  if (!arr || arr.dtype().kind() == 'O' || arr.dtype().kind() == 'U' || arr.dtype().kind() == 'S' ||
      arr.dtype().kind() == 'b') {
    throw py::type_error(what + ": expected an (N, D) array of numbers, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  if (arr.ndim() != 2) {
    throw py::value_error(what + ": expected an (N, D) array, got " + std::to_string(arr.ndim()) +
                          " dimension(s)");
  }
  const auto f = FloatArray::ensure(arr);  // converts dtype and layout only when needed
  if (!f) throw py::type_error(what + ": cannot convert to float32");
  const py::ssize_t n = f.shape(0), d = f.shape(1);
  if (n < 1 || d < 1) {
    throw py::value_error(what + ": expected at least one row and one column, got (" +
                          std::to_string(n) + ", " + std::to_string(d) + ")");
  }
  Points x(n, d);
  std::memcpy(x.data(), f.data(), static_cast<size_t>(n * d) * sizeof(float));
  for (py::ssize_t i = 0; i < n * d; ++i) {
    if (!std::isfinite(x.data()[i])) {
      throw py::value_error(what + ": row " + std::to_string(i / d + 1) + ", column " +
                            std::to_string(i % d + 1) + " is not a finite number");
    }
  }
  return x;
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
  d["seed"] = c.train.seed;
  d["threads"] = c.train.threads;
  d["grad_clip"] = c.train.grad_clip;
  d["ema"] = c.train.ema_decay;
  d["warmup"] = c.train.warmup_steps;
  d["lr_schedule"] = c.train.lr_schedule == LrSchedule::kCosine ? "cosine" : "constant";
  d["lr_min"] = c.train.lr_min;
  d["checkpoint_every"] = c.checkpoint_every;
  return d;
}

template <typename T>
T option(const py::dict& o, const char* key, const char* cli) {
  try {
    return o[key].cast<T>();
  } catch (const py::cast_error&) {
    const py::handle v = o[key];
    std::string want = std::is_same_v<T, std::string> ? "a string"
                       : std::is_floating_point_v<T>  ? "a number"
                                                      : "an integer";
    throw py::type_error(std::string(cli) + ": expected " + want + ", got " +
                         std::string(py::repr(v)));
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
    const auto name = option<std::string>(o, "schedule", "--schedule");
    const auto kind = schedule_from_string(name);
    if (!kind) {
      std::string names;
      for (const auto& n : schedule_names()) names += (names.empty() ? "" : ", ") + n;
      throw UsageError("--schedule: unknown schedule '" + name + "', expected one of " + names);
    }
    c.schedule.kind = *kind;
  }
  if (has("beta_start")) c.schedule.beta_start = option<double>(o, "beta_start", "--beta-start");
  if (has("beta_end")) c.schedule.beta_end = option<double>(o, "beta_end", "--beta-end");
  if (has("hidden")) c.hidden = option<int>(o, "hidden", "--hidden");
  if (has("seed")) c.train.seed = option<uint64_t>(o, "seed", "--seed");
  if (has("threads")) c.train.threads = option<int>(o, "threads", "--threads");
  if (has("grad_clip")) c.train.grad_clip = option<double>(o, "grad_clip", "--grad-clip");
  if (has("ema")) c.train.ema_decay = option<double>(o, "ema", "--ema");
  if (has("warmup")) c.train.warmup_steps = option<int>(o, "warmup", "--warmup");
  if (has("lr_schedule")) {
    const auto v = option<std::string>(o, "lr_schedule", "--lr-schedule");
    if (v == "constant") {
      c.train.lr_schedule = LrSchedule::kConstant;
    } else if (v == "cosine") {
      c.train.lr_schedule = LrSchedule::kCosine;
    } else {
      throw UsageError("--lr-schedule: expected constant or cosine, got '" + v + "'");
    }
  }
  if (has("lr_min")) c.train.lr_min = option<double>(o, "lr_min", "--lr-min");
  if (has("checkpoint_every")) {
    c.checkpoint_every = option<int>(o, "checkpoint_every", "--checkpoint-every");
  }
  if (has("resume")) c.resume = option<std::string>(o, "resume", "--resume");
  if (has("log")) c.log = option<std::string>(o, "log", "--log");
  if (has("output")) c.out = option<std::string>(o, "output", "-o");
  return c;
}

// train(data, options, as_tutorial, on_epoch, on_warning) -> (Model, interrupted)
// data: a shape name or CSV path (str) or an (N, D) array. on_epoch(stats: dict) is called with
// the GIL after every epoch; an exception from it stops the run and propagates.
py::tuple train_model(const py::object& data, const py::dict& options, bool as_tutorial,
                      const py::object& on_epoch, const py::object& on_warning) {
  RunConfig config = run_config(options, as_tutorial);
  std::optional<Dataset> points;
  if (py::isinstance<py::str>(data)) {
    config.data = data.cast<std::string>();
  } else if (!data.is_none()) {
    points.emplace();
    points->x = to_points(data, "data");
    config.data = "array";
    if (py::hasattr(data, "columns")) {  // a pandas DataFrame: keep its column names
      for (const auto& c : data.attr("columns")) points->columns.push_back(py::str(c));
    }
  } else if (config.resume.empty()) {
    throw py::type_error("data: expected a shape name, a CSV path or an (N, D) array, got None");
  }

  bool interrupted = false;
  std::optional<py::error_already_set> callback_error;
  RunCallbacks cb;
  // Ctrl-C becomes KeyboardInterrupt wherever Python next runs: in PyErr_CheckSignals or inside
  // the progress callable. Either way the run stops after this epoch instead of losing it.
  const auto check_signals = [&interrupted] {
    if (PyErr_CheckSignals() != 0) {
      PyErr_Clear();
      interrupted = true;
    }
  };
  cb.on_epoch = [&](const EpochStats& s, const Trainer&, const Schedule&, const Normalization&) {
    if (on_epoch.is_none() || callback_error || interrupted) return;
    py::gil_scoped_acquire gil;
    check_signals();
    if (interrupted) return;
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
    return interrupted;
  };
  cb.on_warning = [&](const std::string& w) {
    py::gil_scoped_acquire gil;
    on_warning(w);
  };

  RunResult r;
  {
    py::gil_scoped_release release;
    r = points ? run_training(config, *points, cb) : run_training(config, cb);
  }
  if (callback_error) throw std::move(*callback_error);
  auto model = std::make_unique<PyModel>();
  model->checkpoint = std::move(r.checkpoint);
  model->history = std::move(r.epochs);
  model->finished = r.finished;
  return py::make_tuple(std::move(model), interrupted);
}

py::array sample_model(const PyModel& m, int n, uint64_t seed, const std::string& sampler, int nfe,
                       double eta, const std::string& variance, int threads) {
  SampleConfig sc;
  const auto kind = sampler_from_string(sampler);
  if (!kind) {
    throw UsageError("--sampler: unknown sampler '" + sampler +
                     "', expected one of ddpm, ddim, dpmpp2m");
  }
  const auto var = variance_from_string(variance);
  if (!var) {
    throw UsageError("--variance: unknown variance '" + variance + "', expected posterior or beta");
  }
  sc.sampler = *kind;
  sc.variance = *var;
  sc.nfe = nfe;
  sc.eta = eta;
  sc.seed = seed;
  if (threads < 1) throw UsageError("--threads: expected at least 1");
  Points x;
  {
    py::gil_scoped_release release;
    x = sample_checkpoint(m.checkpoint, sc, n, threads);
  }
  return to_numpy(std::move(x));
}

// diffuse.evaluate: the library's evaluate_samples (the same protocol and JSON as `diffuse eval`),
// against a shape name, a CSV path or an array of reference rows; train adds copy_share.
py::object evaluate_for_python(const py::object& samples, const py::object& reference, double noise,
                               uint64_t seed, const py::object& train) {
  const Points x = to_points(samples, "samples");
  Reference ref;
  if (py::isinstance<py::str>(reference)) {
    ref = resolve_reference(reference.cast<std::string>(), noise);
  } else {
    ref.name = "reference";
    ref.rows = to_points(reference, "reference");
    if (ref.rows.rows() < 4) throw Error("reference: needs at least 4 rows (two samples of 2)");
    for (Eigen::Index c = 0; c < ref.rows.cols(); ++c) {
      ref.columns.push_back("x" + std::to_string(c));
    }
  }
  std::optional<Points> t;
  if (!train.is_none()) {
    t = py::isinstance<py::str>(train) ? read_csv(train.cast<std::string>()).x
                                       : to_points(train, "train");
  }
  EvalConfig config;
  config.noise = noise;
  config.seed = seed;
  std::string json;
  {
    py::gil_scoped_release release;
    json = evaluation_json(evaluate_samples(x, ref, config, t ? &*t : nullptr));
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
py::tuple sample_trajectory(const PyModel& m, int n, uint64_t seed, int every, int threads) {
  SampleConfig sc;
  sc.seed = seed;
  const int T = m.checkpoint.schedule.T;
  sc.record_every = every > 0 ? every : std::max(1, T / 100);
  if (threads < 1) throw UsageError("--threads: expected at least 1");
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
py::array predict_noise(const PyModel& m, const py::object& x_obj, int t) {
  const Points x = to_points(x_obj, "x");
  const ModelConfig& c = m.checkpoint.model;
  if (x.cols() != c.dim) {
    throw py::value_error("x: expected " + std::to_string(c.dim) + " columns, got " +
                          std::to_string(x.cols()));
  }
  if (t < 0 || t >= c.T) {
    throw py::value_error("t: expected 0.." + std::to_string(c.T - 1) + ", got " +
                          std::to_string(t));
  }
  Points eps(x.rows(), x.cols());
  {
    py::gil_scoped_release release;
    model_eps_fn(c, m.checkpoint.params, 1)(x.data(), t, static_cast<int>(x.rows()), eps.data());
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
  m.def(
      "make_shape",
      [](const std::string& name, int n, double noise, uint64_t seed) {
        const Shape shape = parse_shape(name);  // the line of `diffuse data NAME`
        Points x;
        {
          py::gil_scoped_release release;
          x = make_shape(shape, n, noise, seed);
        }
        return to_numpy(std::move(x));
      },
      py::arg("name"), py::arg("n") = 10000, py::arg("noise") = 0.1, py::arg("seed") = 0);
  m.def("_train", &train_model, py::arg("data"), py::arg("options"), py::arg("as_tutorial"),
        py::arg("on_epoch"), py::arg("on_warning"));
  m.def(
      "load",
      [](const std::string& path) {
        auto model = std::make_unique<PyModel>();
        model->checkpoint = load_checkpoint(path);
        model->finished = !model->checkpoint.train_state.has_value();
        return model;
      },
      py::arg("path"), "Loads a checkpoint written by `diffuse train` or Model.save.");
  const EvalConfig ed;
  m.def("evaluate", &evaluate_for_python, py::arg("samples"), py::arg("reference"),
        py::arg("noise") = ed.noise, py::arg("seed") = ed.seed, py::arg("train") = py::none());

  const SampleConfig sd;
  py::class_<PyModel>(m, "Model", "A trained denoising diffusion model (a checkpoint in memory).")
      .def("sample", &sample_model, py::arg("n") = 10000, py::arg("seed") = sd.seed,
           py::arg("sampler") = to_string(sd.sampler), py::arg("nfe") = sd.nfe,
           py::arg("eta") = sd.eta, py::arg("variance") = to_string(sd.variance),
           py::arg("threads") = 1,
           "n samples (n, D) in the data's units; the same seed and threads give the same bits "
           "as `diffuse sample`.")
      .def(
          "save",
          [](const PyModel& m, const std::string& path) { save_checkpoint(path, m.checkpoint); },
          py::arg("path"), "Writes the model as safetensors (resumable if training was stopped).")
      .def("sample_trajectory", &sample_trajectory, py::arg("n") = 2000, py::arg("seed") = sd.seed,
           py::arg("every") = 0, py::arg("threads") = 1,
           "The DDPM reverse process: (timesteps, states (K, n, D)), x_T first, samples last.")
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
      .def_property_readonly("mean",
                             [](const PyModel& m) { return m.checkpoint.normalization.mean; })
      .def_property_readonly("std", [](const PyModel& m) { return m.checkpoint.normalization.std; })
      .def_property_readonly("info", [](const PyModel& m) { return m.checkpoint.info; })
      .def_property_readonly(
          "epochs",
          [](const PyModel& m) {
            const auto it = m.checkpoint.info.find("epochs");
            return it == m.checkpoint.info.end() ? 0 : std::stoi(it->second);
          },
          "epochs trained")
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
