// `diffuse demo`: the tutorial's whole run (swiss roll, T=100, sigmoid, 1000 epochs) end to end,
// leaving the data, model, samples, loss log and metrics in one folder.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands.h"
#include "common.h"
#include "diffuse/error.h"
#include "diffuse/io.h"

namespace diffuse::cli {

void add_demo_command(CLI::App& app) {
  struct Opts {
    std::string out = "out";
    TrainOptions train;
  };
  auto o = std::make_shared<Opts>();
  o->train.train.threads = std::thread::hardware_concurrency() >= 2 ? 2 : 1;
  CLI::App* cmd = app.add_subcommand("demo", "Run the tutorial end to end into a folder");
  cmd->add_option("--out", o->out, "output folder")->capture_default_str();
  cmd->add_option("--epochs", o->train.train.epochs, "passes over the data")->capture_default_str();
  cmd->add_option("--threads", o->train.train.threads, "threads")->capture_default_str();
  cmd->add_option("--seed", o->train.train.seed, "seed")->capture_default_str();
  cmd->add_flag("-q,--quiet", o->train.quiet, "no progress output");
  cmd->callback([o] {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(o->out, ec);
    if (ec || !fs::is_directory(o->out)) {
      throw UsageError("--out " + o->out + ": cannot create the folder: " + ec.message());
    }
    const auto t0 = std::chrono::steady_clock::now();
    const fs::path dir(o->out);
    TrainOptions t = o->train;
    t.out = (dir / "model.safetensors").string();
    t.log = (dir / "train_log.csv").string();

    // The training data, as the model will see it.
    const Dataset data = load_data(t.data, t.n, t.noise, t.train.seed + 1);
    write_csv((dir / "data.csv").string(), data.x, data.columns);

    const Checkpoint ckpt = run_training(t);
    SampleConfig sc;
    sc.seed = t.train.seed;
    const Points samples = sample_checkpoint(ckpt, sc, t.n, t.train.threads);
    write_csv((dir / "samples.csv").string(), samples, ckpt.columns);

    const EvalResult r = evaluate_against(samples, t.data, t.noise, t.train.seed + 1000);
    nlohmann::ordered_json j = nlohmann::ordered_json::parse(eval_json(r));
    write_file_atomic((dir / "metrics.json").string(), j.dump(2) + "\n");
    const double total =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!t.quiet) {
      std::fprintf(stderr, "%s", eval_text(r).c_str());
      std::fprintf(stderr,
                   "demo: wrote %s/{data.csv, model.safetensors, train_log.csv, "
                   "samples.csv, metrics.json} in %.1f s\n",
                   o->out.c_str(), total);
    }
  });
}

}  // namespace diffuse::cli
