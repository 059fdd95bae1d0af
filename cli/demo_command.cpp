// `diffuse demo`: the tutorial's whole run (swiss roll, 1000 epochs) end to end, leaving the data,
// model, samples, loss log, metrics and every figure of the tutorial (plus a GIF) in one folder.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "diffuse/error.h"
#include "diffuse/evaluate.h"
#include "diffuse/io.h"
#include "diffuse/plot.h"
#include "diffuse/train.h"
#include "options.h"
#include "plot_command.h"

namespace diffuse::cli {

namespace {

// The trained weights depend on the thread count, so the demo's default is a fixed 1 (its output is
// the same on any machine, loaded or not). Two threads train 1.65-1.85x faster than one on an idle
// 2-core machine, but a step needs both, so on a loaded machine they are up to 2.8x slower
// (docs/PERFORMANCE.md, "Default thread count"). --threads 0 asks for the load-based choice: two
// only when the 1-minute load average leaves a core to spare besides the one we take.
int load_based_threads(double* load_out) {
  const unsigned cores = std::thread::hardware_concurrency();
  double load = -1.0;
  if (cores < 2 || getloadavg(&load, 1) != 1) load = -1.0;
  *load_out = load;
  return load >= 0.0 && load + 1.0 <= cores ? 2 : 1;
}

}  // namespace

void add_demo_command(CLI::App& app) {
  struct Opts {
    std::string out = "out";
    TrainOptions train;
    bool no_figures = false;
    int snapshot_every = 0;  // 0: ten strips over the run
  };
  auto o = std::make_shared<Opts>();
  o->train.train.threads = 1;  // fixed (reproducible); 0: load_based_threads()
  CLI::App* cmd = app.add_subcommand("demo", "Run the tutorial end to end into a folder");
  cmd->add_option("--out", o->out, "output folder")->capture_default_str();
  cmd->add_option(
         "--epochs", o->train.train.epochs,
         "passes over the data (0: as many as the default budget of optimizer steps needs)")
      ->capture_default_str();
  cmd->add_option("--threads", o->train.train.threads,
                  "threads; the results depend on it (0: 2 when the load average leaves a core "
                  "to spare, else 1)")
      ->capture_default_str();
  add_seed_option(cmd, o->train.train.seed, "seed");
  cmd->add_option("--snapshot-every", o->snapshot_every,
                  "reverse-process snapshot every N epochs (0: ten over the run, as the "
                  "tutorial's every 100 of its 1000 epochs)")
      ->capture_default_str();
  cmd->add_flag("--as-tutorial", o->train.as_tutorial,
                "the tutorial's own settings (sigmoid schedule, T=100, no EMA) instead of ours");
  cmd->add_flag("--no-figures", o->no_figures, "skip the figures and the GIF");
  cmd->add_flag("-q,--quiet", o->train.quiet, "no progress output");
  cmd->callback([cmd, o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    namespace fs = std::filesystem;
    const bool figures = !o->no_figures;
    if (o->snapshot_every < 0) throw UsageError("--snapshot-every: expected >= 0");
    TrainOptions t = o->train;
    double load = -1.0;
    const int load_based = load_based_threads(&load);
    const bool automatic = t.train.threads == 0;
    if (automatic) t.train.threads = load_based;
    if (!t.quiet && load >= 0.0 && automatic) {
      std::fprintf(stderr,
                   "demo: %d thread%s, chosen by the load average %.1f on %u cores (the results "
                   "depend on the thread count)\n",
                   t.train.threads, t.train.threads == 1 ? "" : "s", load,
                   std::thread::hardware_concurrency());
    } else if (!t.quiet && load >= 0.0 && load_based > t.train.threads) {
      std::fprintf(stderr,
                   "demo: %d thread%s; --threads %d would train faster now (load average %.1f on "
                   "%u cores), with other results (they depend on the thread count)\n",
                   t.train.threads, t.train.threads == 1 ? "" : "s", load_based, load,
                   std::thread::hardware_concurrency());
    }
    if (t.as_tutorial) apply_tutorial_where_unset(*cmd, t);
    validate(t.train, t.n);  // a usage error must leave no half-made output folder behind
    std::error_code ec;
    fs::create_directories(o->out, ec);
    if (ec || !fs::is_directory(o->out)) {
      throw UsageError("--out " + o->out + ": cannot create the folder: " + ec.message());
    }
    const auto t0 = std::chrono::steady_clock::now();
    const fs::path dir(o->out);
    auto path = [&](const char* name) { return (dir / name).string(); };
    t.out = path("model.safetensors");
    t.log = path("train_log.csv");

    // The training data exactly as the model will see it, and the forward process over it.
    const Dataset data = load_data(t.data, t.n, t.noise, t.train.seed + 1);
    write_csv(path("data.csv"), data.x, data.columns);
    const Schedule schedule = make_schedule(t.schedule);
    if (figures) {
      // The figures draw at most kDefaultSamplePoints of the training points (the draw is iid, so
      // its first rows are a fair sample): 100,000 dots draw slower and show nothing more.
      const Points shown =
          data.x.topRows(std::min<Eigen::Index>(data.x.rows(), kDefaultSamplePoints));
      const std::string count =
          shown.rows() == data.x.rows()
              ? std::to_string(data.x.rows())
              : std::to_string(shown.rows()) + " of " + std::to_string(data.x.rows());
      plot_points(path("data.png"), shown, t.data + ": " + count + " points",
                  axis_labels(data.columns));
      plot_schedule(path("schedule.png"), schedule, schedule_title(schedule));
      forward_strip(path("forward.png"), shown, schedule, 10, t.train.seed + 2, t.data,
                    data.columns);
      // Ten strips over the run by default, whatever its epochs: 1000 of the tutorial's 10,000
      // points, about 100 of a default run's 100,000.
      const int epochs = resolve_budget(t.train, data.x.rows()).epochs;
      fs::create_directories(dir / "snapshots", ec);
      t.snapshot_every = o->snapshot_every > 0 ? o->snapshot_every : std::max(1, epochs / 10);
      t.snapshot_dir = path("snapshots");
    }

    const Checkpoint ckpt = run_training_in_terminal(t);
    SampleConfig sc;
    sc.seed = t.train.seed;
    sc.record_every = figures ? auto_record_every(schedule.T()) : 0;
    Trajectory trajectory;
    const Points samples =
        sample_checkpoint(ckpt, sc, kDefaultSamplePoints, t.train.threads, &trajectory);
    write_csv(path("samples.csv"), samples, ckpt.columns);

    EvalConfig eval_config;
    eval_config.noise = t.noise;
    eval_config.seed = t.train.seed + 1000;
    const Reference ref = resolve_reference(t.data, t.noise);
    const Evaluation r = evaluate_samples(samples, ref, eval_config);
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(evaluation_json(r));
    write_file_atomic(path("metrics.json"), j.dump(2) + "\n");

    if (figures) {
      plot_reverse_strip(path("reverse.png"), trajectory.x, trajectory.t, 10,
                         "reverse process: " + t.data + ", DDPM", ckpt.columns);
      compare_figure(path("compare.png"), samples, ref, r);
      const LossCurve loss = read_loss_log(t.log);
      plot_loss(path("loss.png"), loss.epochs, loss.mean_loss, false, "training loss (MSE)");
      // The GIF shows 2,000 of the points: enough to see the shape, small enough for a README.
      std::vector<Points> frames;
      std::vector<std::string> labels;
      for (size_t i = 0; i < trajectory.x.size(); ++i) {
        frames.push_back(trajectory.x[i].topRows(std::min<Eigen::Index>(2000, samples.rows())));
        labels.push_back("t=" + std::to_string(trajectory.t[i]));
      }
      animate_gif(path("reverse.gif"), frames, labels);
    }
    const double total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!t.quiet) {
      std::fprintf(stderr, "%s", evaluation_text(r).c_str());
      std::fprintf(stderr, "demo: wrote data, model, log, samples, metrics%s to %s/ in %.1f s\n",
                   figures ? " and figures" : "", o->out.c_str(), total);
    }
  });
}

}  // namespace diffuse::cli
