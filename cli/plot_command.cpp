// `diffuse plot data|schedule|forward|reverse|loss|compare` (PNG or SVG) and `diffuse animate`
// (GIF): load or compute the points, then call the plot library. No drawing code lives here.
#include "plot_command.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>
#include <vector>

#include "commands.h"
#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/evaluate.h"
#include "diffuse/io.h"
#include "diffuse/labels.h"
#include "diffuse/plot.h"
#include "diffuse/sampler.h"
#include "diffuse/schedule.h"

namespace diffuse::cli {

namespace {

// "10000" -> "10,000" for titles.
std::string with_commas(int64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > (s[0] == '-' ? 1 : 0); i -= 3) s.insert(i, ",");
  return s;
}

std::string file_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// -o for a figure: the extension picks PNG or SVG; fail before any work.
void add_figure_output(CLI::App* cmd, std::string& out) {
  cmd->add_option("-o,--output", out, "output image (.png or .svg)")->required();
}
// inputs: the files the figure is drawn from, which -o must not be.
void check_figure_output(const std::string& out, const std::vector<NamedPath>& inputs = {}) {
  try {
    image_format_for(out);
  } catch (const UsageError& e) {
    throw UsageError(std::string("-o ") + e.what());
  }
  check_writable(out, "-o");
  check_distinct_files(inputs, {{"-o", out}});
}

// The schedule from --model's checkpoint, or from --schedule/--steps/--beta-start/--beta-end.
struct ScheduleOpts {
  ScheduleConfig config;  // the training defaults: one --beta-end for train and plot
  std::string model, kind = to_string(config.kind);
};
void add_schedule_options(CLI::App* cmd, ScheduleOpts& o) {
  cmd->add_option("--model", o.model, "take the schedule from this checkpoint instead");
  cmd->add_option("--schedule", o.kind, "beta schedule: linear, sigmoid, quadratic, cosine")
      ->capture_default_str();
  cmd->add_option("--steps", o.config.T, "T, the number of diffusion steps")->capture_default_str();
  cmd->add_option("--beta-start", o.config.beta_start, "first beta")->capture_default_str();
  cmd->add_option("--beta-end", o.config.beta_end, "last beta")->capture_default_str();
}
Schedule schedule_from(const ScheduleOpts& o) {
  if (!o.model.empty()) return make_schedule(load_checkpoint(o.model).schedule);
  ScheduleConfig c = o.config;
  c.kind = parse_schedule(o.kind);
  return make_schedule(c);
}

// Sampler options shared by `plot reverse` and `animate`.
struct SamplerOpts {  // the library's defaults, shown in --help
  SampleConfig config;
  std::string sampler = to_string(config.sampler), variance = to_string(config.variance);
  std::string spacing = spacing_text(SampleConfig{}.spacing);
};
void add_sampler_options(CLI::App* cmd, SamplerOpts& o) {
  add_seed_option(cmd, o.config.seed, "random seed");
  cmd->add_option("--sampler", o.sampler, "ddpm, ddim or dpmpp2m")->capture_default_str();
  cmd->add_option("--nfe", o.config.nfe, "network evaluations (0: T)")->capture_default_str();
  cmd->add_option("--spacing", o.spacing, spacing_help())->capture_default_str();
  cmd->add_option("--eta", o.config.eta, "DDIM noise: 0 deterministic, 1 ancestral")
      ->capture_default_str();
  cmd->add_option("--variance", o.variance, "DDPM noise std: posterior or beta")
      ->capture_default_str();
  cmd->add_option("--threads", o.config.threads, "threads")->capture_default_str();
}
SampleConfig sample_config(const SamplerOpts& o, int record_every) {
  SampleConfig sc = o.config;
  sc.sampler = parse_sampler(o.sampler);
  sc.spacing = parse_spacing(o.spacing);
  sc.variance = parse_variance(o.variance);
  sc.record_every = record_every;
  return sc;
}

}  // namespace

std::string schedule_title(const Schedule& s) {
  char range[96];
  if (s.config.kind == ScheduleKind::kCosine) {
    std::snprintf(range, sizeof range, ", s=%g", s.config.cosine_s);
  } else {
    std::snprintf(range, sizeof range, ", \u03b2 %g..%g", s.config.beta_start, s.config.beta_end);
  }
  return to_string(s.config.kind) + " schedule, T=" + std::to_string(s.T()) + range;
}

void forward_strip(const std::string& out, const Points& x0, const Schedule& s, int panels,
                   uint64_t seed, const std::string& what,
                   const std::vector<std::string>& columns) {
  const std::vector<int> steps = strip_steps(s.T(), std::min(panels, s.T()));
  std::vector<std::string> titles;
  titles.reserve(steps.size());
  for (int t : steps) titles.push_back("t=" + std::to_string(t));
  plot_strip(out, forward_samples(x0, s, steps, seed), titles, axis_labels(columns),
             "forward process q(x\u209c | x\u2080): " + what + ", " + schedule_title(s));
}

namespace {

void check_panels(int panels) {
  if (panels < 1 || panels > 50) {
    throw UsageError("--panels: expected 1 to 50, got " + std::to_string(panels));
  }
}

// The 0-based index of the column named by --x / --y: a header name, or its number 1..D.
int column_index(const std::string& which, const Dataset& d, const std::string& option,
                 const std::string& file) {
  for (size_t i = 0; i < d.columns.size(); ++i) {
    if (d.columns[i] == which) return static_cast<int>(i);
  }
  int k = 0;
  size_t used = 0;
  try {
    k = std::stoi(which, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != which.size() || k < 1 || k > d.x.cols()) {
    std::string names;
    for (const auto& c : d.columns) names += (names.empty() ? "" : ", ") + c;
    throw UsageError(option + ": " + file + " has no column '" + which + "' (expected 1.." +
                     std::to_string(d.x.cols()) + (names.empty() ? "" : " or one of " + names) +
                     ")");
  }
  return k - 1;
}

// --label-column of `plot data` and `plot compare`.
void add_label_column_option(CLI::App* cmd, std::string& column) {
  cmd->add_option("--label-column", column,
                  std::string("colour the points by this class column, with a legend (default: a "
                              "column named `") +
                      kDefaultLabelColumn + "` when the file has one)");
}

// Reads a CSV with its classes when column is not empty.
LabelledDataset read_maybe_labelled(const std::string& path, const std::string& column) {
  if (column.empty()) return LabelledDataset{read_csv(path), {}};
  return read_labelled_csv_checked(path, column, "--label-column");
}

// One panel's classes, for PlotStyle::classes.
PointClasses point_classes(const Labels& l) { return PointClasses{l.of_row, l.classes}; }

void add_plot_data(CLI::App* plot) {
  struct Opts {
    std::string x_column = "1", y_column = "2";
    std::string data, out, label_column;
    ShapeConfig shape;
    bool labels = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = plot->add_subcommand("data", "Scatter plot of a built-in shape or a CSV file");
  cmd->add_option("data", o->data, "built-in shape (see `diffuse data --list`) or a CSV file")
      ->required();
  cmd->add_option("-n,--points", o->shape.n, "points to generate for a built-in shape")
      ->capture_default_str();
  cmd->add_option("--noise", o->shape.noise, "noise of a built-in shape")->capture_default_str();
  add_seed_option(cmd, o->shape.seed, "seed of a built-in shape");
  cmd->add_option("--x", o->x_column, "column drawn across: a name from the header or 1..D")
      ->capture_default_str();
  cmd->add_option("--y", o->y_column, "column drawn upwards: a name from the header or 1..D")
      ->capture_default_str();
  add_label_column_option(cmd, o->label_column);
  cmd->add_flag("--labels", o->labels,
                "a built-in shape: colour the points by their class (as `diffuse data --labels`)");
  add_figure_output(cmd, o->out);
  cmd->callback([o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    check_figure_output(o->out, {{"the data", o->data}});
    const bool shape = is_shape_name(o->data);
    if (shape && !o->label_column.empty()) {
      throw UsageError("--label-column: " + o->data +
                       " is a built-in shape; colour it by class with --labels");
    }
    if (!shape && o->labels) {
      throw UsageError("--labels: " + o->data +
                       " is a file; its classes come from its label column (--label-column)");
    }
    LabelledDataset ld;
    std::error_code ec;
    if (shape && o->labels) {
      ld = make_labelled_shape(parse_shape(o->data), o->shape.n, o->shape.noise, o->shape.seed);
    } else if (shape ||
               (o->label_column.empty() && !(std::filesystem::is_regular_file(o->data, ec) &&
                                             csv_has_column(o->data, kDefaultLabelColumn)))) {
      ld.data = load_data(o->data, o->shape.n, o->shape.noise, o->shape.seed);  // as without labels
    } else {
      ld = read_labelled_csv_checked(
          o->data, o->label_column.empty() ? kDefaultLabelColumn : o->label_column,
          "--label-column");
    }
    const bool labelled = !ld.labels.classes.empty();
    const Dataset& d = ld.data;
    const std::string name = is_shape_name(o->data) ? o->data : file_name(o->data);
    const int cx = column_index(o->x_column, d, "--x", name);
    const int cy =
        d.x.cols() == 1 && o->y_column == "2" ? cx : column_index(o->y_column, d, "--y", name);
    Points xy(d.x.rows(), 2);
    xy.col(0) = d.x.col(cx);
    xy.col(1) = d.x.col(cy);
    const auto label = [&d](int c) {
      return c < static_cast<int>(d.columns.size()) ? d.columns[c]
                                                    : "column " + std::to_string(c + 1);
    };
    PlotStyle style;
    style.x_label = label(cx);
    style.y_label = label(cy);
    std::string title = name + " (" + with_commas(d.x.rows()) + " points";
    if (labelled) {
      style.classes = {point_classes(ld.labels)};
      title += ", " + std::to_string(ld.labels.num_classes()) + " classes";
    }
    plot_points(o->out, xy, title + ")", style);
  });
}

void add_plot_schedule(CLI::App* plot) {
  struct Opts {
    ScheduleOpts schedule;
    std::string out;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd =
      plot->add_subcommand("schedule", "beta_t and sqrt(alpha_bar_t) of a noise schedule");
  add_schedule_options(cmd, o->schedule);
  add_figure_output(cmd, o->out);
  cmd->callback([o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    check_figure_output(o->out, {{"--model", o->schedule.model}});
    const Schedule s = schedule_from(o->schedule);
    plot_schedule(o->out, s, schedule_title(s));
  });
}

void add_plot_forward(CLI::App* plot) {
  struct Opts {
    std::string data = RunConfig{}.data, out;
    ScheduleOpts schedule;
    ShapeConfig shape;
    int panels = 10;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = plot->add_subcommand(
      "forward", "The forward process q(x_t | x_0) at evenly spaced t, on shared axes");
  cmd->add_option("data", o->data, "built-in shape or CSV file")->capture_default_str();
  cmd->add_option("-n,--points", o->shape.n, "points to generate for a built-in shape")
      ->capture_default_str();
  cmd->add_option("--noise", o->shape.noise, "noise of a built-in shape")->capture_default_str();
  add_seed_option(cmd, o->shape.seed, "seed of the data and of the forward noise");
  cmd->add_option("--panels", o->panels, "number of panels, t from 0 to T-1")
      ->capture_default_str();
  add_schedule_options(cmd, o->schedule);
  add_figure_output(cmd, o->out);
  cmd->callback([o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    check_panels(o->panels);
    check_figure_output(o->out, {{"the data", o->data}});
    const Schedule s = schedule_from(o->schedule);
    Dataset d = load_data(o->data, o->shape.n, o->shape.noise, o->shape.seed);
    std::string what = is_shape_name(o->data) ? o->data : file_name(o->data);
    if (!is_shape_name(o->data)) {  // as training sees CSV data: standardized columns
      fit_normalization(d.x).apply(d.x);
      what += ", standardized";
    }
    forward_strip(o->out, d.x, s, o->panels, o->shape.seed + 1, what, d.columns);
  });
}

void add_plot_reverse(CLI::App* plot) {
  struct Opts {
    std::string model, out;
    SamplerOpts sampler;
    int n = kDefaultSamplePoints, panels = 10;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = plot->add_subcommand(
      "reverse", "A trained model's sampling trajectory from x_T to x_0, on shared axes");
  cmd->add_option("model", o->model, "checkpoint (.safetensors)")->required();
  cmd->add_option("-n,--points", o->n, "number of samples")->capture_default_str();
  cmd->add_option("--panels", o->panels, "number of panels")->capture_default_str();
  add_sampler_options(cmd, o->sampler);
  add_figure_output(cmd, o->out);
  cmd->callback([o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    check_panels(o->panels);
    check_figure_output(o->out, {{"the model", o->model}});
    const Checkpoint ckpt = load_checkpoint(o->model);
    const SampleConfig sc = sample_config(o->sampler, auto_record_every(ckpt.schedule.T));
    Trajectory tr;
    sample_checkpoint(ckpt, sc, o->n, o->sampler.config.threads, &tr);
    plot_reverse_strip(o->out, tr.x, tr.t, o->panels,
                       "reverse process: " + file_name(o->model) + ", " + to_string(sc.sampler),
                       ckpt.columns);
  });
}

void add_plot_loss(CLI::App* plot) {
  struct Opts {
    std::string log, out;
    bool log_y = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = plot->add_subcommand("loss", "Per-epoch mean loss from a training log CSV");
  cmd->add_option("log", o->log, "training log (epoch,mean_loss,... as `diffuse train` writes)")
      ->required();
  cmd->add_flag("--log-y", o->log_y, "logarithmic loss axis");
  add_figure_output(cmd, o->out);
  cmd->callback([o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    check_figure_output(o->out, {{"the log", o->log}});
    const LossCurve c = read_loss_log(o->log);
    plot_loss(o->out, c.epochs, c.mean_loss, o->log_y, "training loss: " + file_name(o->log));
  });
}

void add_plot_compare(CLI::App* plot) {
  struct Opts {
    std::string samples, against, out, columns, label_column;
    EvalConfig config;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = plot->add_subcommand(
      "compare", "Data beside samples (2-D: two panels; N-D: pairwise grid of a few columns)");
  cmd->add_option("samples", o->samples, "samples CSV")->required();
  cmd->add_option("--against", o->against, "built-in shape name or reference CSV")->required();
  cmd->add_option("--columns", o->columns,
                  "N-D: comma-separated column names or 0-based indices, at most 6 (default: "
                  "the 4 columns with the worst W1 ratio)");
  cmd->add_option("--noise", o->config.noise, "noise of the built-in shape")->capture_default_str();
  cmd->add_option("--seed", o->config.seed, "seed of the evaluation")->capture_default_str();
  cmd->add_option("--label-column", o->label_column,
                  std::string("2-D: colour both panels by this class column of the samples and "
                              "of the --against CSV (a built-in shape: its classes), with a legend "
                              "(default: `") +
                      kDefaultLabelColumn + "` when the samples and the reference both have it)");
  add_figure_output(cmd, o->out);
  cmd->callback([o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    check_figure_output(o->out);
    // The label column: the one named, or `label` when both files have it (a shape: its classes).
    std::string column = o->label_column;
    std::error_code ec;
    if (column.empty() && std::filesystem::is_regular_file(o->samples, ec) &&
        csv_has_column(o->samples, kDefaultLabelColumn)) {
      const std::optional<Shape> shape = shape_from_string(o->against);
      const bool ref_has = shape ? shape_class_count(*shape) > 0
                                 : std::filesystem::is_regular_file(o->against, ec) &&
                                       csv_has_column(o->against, kDefaultLabelColumn);
      if (ref_has) column = kDefaultLabelColumn;
    }
    const Reference ref = column.empty()
                              ? resolve_reference(o->against, o->config.noise)
                              : resolve_labelled_reference(o->against, o->config.noise, column);
    const LabelledDataset ls = read_maybe_labelled(o->samples, column);
    const Dataset& s = ls.data;
    const Evaluation e = evaluate_samples(s.x, ref, o->config);
    std::vector<int> cols;
    if (!o->columns.empty()) {
      std::stringstream list(o->columns);
      std::string item;
      while (std::getline(list, item, ',')) {
        const auto at = std::find(ref.columns.begin(), ref.columns.end(), item);
        if (at != ref.columns.end()) {
          cols.push_back(static_cast<int>(at - ref.columns.begin()));
          continue;
        }
        try {
          size_t used = 0;
          const int c = std::stoi(item, &used);
          if (used != item.size()) throw std::invalid_argument(item);
          cols.push_back(c);
        } catch (const std::logic_error&) {
          throw UsageError("--columns: '" + item + "' is neither a column name of " + o->against +
                           " nor an index");
        }
      }
    }
    compare_figure(o->out, s.x, ref, e, cols, column.empty() ? nullptr : &ls.labels);
  });
}

}  // namespace

void compare_figure(const std::string& out, const Points& samples, const Reference& ref,
                    const Evaluation& e, std::vector<int> cols, const Labels* sample_labels) {
  const bool labelled = sample_labels != nullptr && !ref.labels.classes.empty();
  std::vector<int32_t> data_classes;
  const Points data =
      ref.shape ? draw_shape_iid(*ref.shape,
                                 static_cast<int>(std::min<Eigen::Index>(samples.rows(), 100000)),
                                 ref.noise, 1, labelled ? &data_classes : nullptr)
                : ref.rows;
  if (labelled && !ref.shape) data_classes = ref.labels.of_row;
  char title[160];
  std::snprintf(title, sizeof title, "swd_ratio %.2f against %s", e.scores.swd_ratio,
                file_name(ref.name).c_str());
  if (samples.cols() == 2 && cols.empty()) {
    PlotStyle style;
    if (labelled) {
      // The samples' classes by name in the reference's order, so that a class has one colour.
      std::vector<int32_t> sample_classes;
      for (const int32_t k : sample_labels->of_row) {
        const int c = ref.labels.find(sample_labels->classes.at(size_t(k)));
        if (c < 0) {
          throw UsageError("--label-column: the samples' class " +
                           quote_for_message(sample_labels->classes[size_t(k)], 40) +
                           " is not a class of " + ref.name);
        }
        sample_classes.push_back(c);
      }
      style.classes = {PointClasses{data_classes, ref.labels.classes},
                       PointClasses{sample_classes, ref.labels.classes}};
    }
    plot_strip(out, {data, samples},
               {"data (" + with_commas(data.rows()) + ")",
                "samples (" + with_commas(samples.rows()) + ")"},
               style, title);
    return;
  }
  if (cols.empty()) {  // the worst columns by W1 ratio, shown in file order
    std::vector<int> order(e.columns.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return e.columns[size_t(a)].w1_ratio > e.columns[size_t(b)].w1_ratio;
    });
    order.resize(std::min<size_t>(order.size(), 4));
    std::sort(order.begin(), order.end());
    cols = order;
  }
  plot_compare_grid(out, data, samples, cols, ref.columns, title);
}

void add_plot_command(CLI::App& app) {
  CLI::App* plot = app.add_subcommand("plot", "Draw figures (.png or .svg)");
  plot->require_subcommand(1);
  add_plot_data(plot);
  add_plot_schedule(plot);
  add_plot_forward(plot);
  add_plot_reverse(plot);
  add_plot_loss(plot);
  add_plot_compare(plot);
}

void add_animate_command(CLI::App& app) {
  struct Opts {
    std::string model, out;
    SamplerOpts sampler;
    int n = kDefaultTrajectoryPoints, every = 0, size = 360, frame_ms = 40, hold_ms = 1500;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd =
      app.add_subcommand("animate",
                         "The reverse process as a looping GIF, from noise to data (a conditional "
                         "model's classes in their colours, with a legend)");
  cmd->add_option("model", o->model, "checkpoint (.safetensors)")->required();
  cmd->add_option("-o,--output", o->out, "output GIF")->required();
  cmd->add_option("-n,--points", o->n, "number of samples")->capture_default_str();
  cmd->add_option("--every", o->every,
                  "one frame per k steps (0: about 100 frames); with --nfe below T every step is "
                  "a frame and --every is not used")
      ->capture_default_str();
  cmd->add_option("--size", o->size, "image side in pixels")->capture_default_str();
  cmd->add_option("--frame-ms", o->frame_ms, "delay between frames")->capture_default_str();
  cmd->add_option("--hold-ms", o->hold_ms, "how long the last frame stays")->capture_default_str();
  add_sampler_options(cmd, o->sampler);
  cmd->callback([o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    if (o->every < 0) throw UsageError("--every: expected >= 0, got " + std::to_string(o->every));
    if (o->size < 120 || o->size > 2048) {
      throw UsageError("--size: expected 120 to 2048 pixels, got " + std::to_string(o->size));
    }
    const std::string gif_max = std::to_string(kGifMaxDelayMs);
    if (o->frame_ms < 20 || o->frame_ms > kGifMaxDelayMs) {
      throw UsageError("--frame-ms: expected 20 to " + gif_max +
                       " (a GIF frame's delay is at most 655.35 s), got " +
                       std::to_string(o->frame_ms));
    }
    if (o->hold_ms < 0 || o->hold_ms > kGifMaxDelayMs) {
      throw UsageError("--hold-ms: expected 0 to " + gif_max +
                       " (a GIF frame's delay is at most 655.35 s), got " +
                       std::to_string(o->hold_ms));
    }
    std::string ext = std::filesystem::path(o->out).extension().string();
    for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (ext != ".gif") throw UsageError("-o " + o->out + ": expected a .gif file");
    check_writable(o->out, "-o");
    check_distinct_files({{"the model", o->model}}, {{"-o", o->out}});
    const Checkpoint ckpt = load_checkpoint(o->model);
    const int every = o->every > 0 ? o->every : auto_record_every(ckpt.schedule.T);
    const SampleConfig sc = sample_config(o->sampler, every);
    Trajectory tr;
    sample_checkpoint(ckpt, sc, o->n, o->sampler.config.threads, &tr);
    std::vector<std::string> labels;
    for (int t : tr.t) labels.push_back("t=" + std::to_string(t));
    GifOptions g;
    g.size_px = o->size;
    g.frame_ms = o->frame_ms;
    g.hold_last_ms = o->hold_ms;
    if (!ckpt.classes.empty()) {  // a conditional model: each row in its class's colour
      g.classes = PointClasses{sample_labels(ckpt, sc, 0, o->n), ckpt.classes};
    }
    animate_gif(o->out, tr.x, labels, g);
  });
}

}  // namespace diffuse::cli
