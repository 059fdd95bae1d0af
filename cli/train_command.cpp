// `diffuse train`: trains a model on a shape or CSV file and saves it as safetensors.
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "diffuse/error.h"
#include "plot_command.h"

namespace diffuse::cli {

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  struct Snapshots {
    int every = 0, points = 2000;
    std::string dir = "snapshots";
  };
  auto snap = std::make_shared<Snapshots>();
  CLI::App* cmd = app.add_subcommand("train", "Train a diffusion model and save it (.safetensors)");
  add_train_options(cmd, *o);
  cmd->add_option("-o,--output", o->out, "checkpoint file to write")->required();
  cmd->add_option("--snapshot-every", snap->every,
                  "draw the reverse process every N epochs (0: never)")
      ->capture_default_str();
  cmd->add_option("--snapshot-dir", snap->dir, "folder for the snapshots")->capture_default_str();
  cmd->add_option("--snapshot-points", snap->points, "samples per snapshot")->capture_default_str();
  cmd->callback([cmd, o, snap] {
    if (o->as_tutorial) apply_tutorial_where_unset(*cmd, *o);
    if (snap->every < 0) throw UsageError("--snapshot-every: expected >= 0");
    ExtraEpochHook hook;
    if (snap->every > 0) {
      // A shape's columns are x and y; a CSV's header (or a resumed run's data) is read by the
      // run itself, so those snapshots are not labelled.
      const std::vector<std::string> columns = is_shape_name(o->data) && o->resume.empty()
                                                   ? std::vector<std::string>{"x", "y"}
                                                   : std::vector<std::string>{};
      hook = reverse_snapshot_hook(snap->dir, snap->every, snap->points, o->train.seed,
                                   o->train.threads, columns);
    }
    const Checkpoint ckpt = run_training_in_terminal(*o, hook);
    if (!o->quiet) {
      std::fprintf(stderr, "saved %s (final loss %s, %s s)\n", o->out.c_str(),
                   ckpt.info.count("final_loss") ? ckpt.info.at("final_loss").c_str() : "?",
                   ckpt.info.count("train_seconds") ? ckpt.info.at("train_seconds").c_str() : "?");
    }
  });
}

}  // namespace diffuse::cli
