// `diffuse train`: trains a model on a shape or CSV file and saves it as safetensors.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "diffuse/error.h"
#include "diffuse/io.h"
#include "options.h"

namespace diffuse::cli {

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Train a diffusion model and save it (.safetensors)");
  add_train_options(cmd, *o);
  cmd->add_option("-o,--output", o->out, "checkpoint file to write")->required();
  cmd->add_option("--snapshot-every", o->snapshot_every,
                  "draw the reverse process every N epochs and after the last (0: never)")
      ->capture_default_str();
  cmd->add_option("--snapshot-dir", o->snapshot_dir, "folder for the snapshots (must exist)")
      ->capture_default_str();
  cmd->add_option("--snapshot-points", o->snapshot_points, "samples per snapshot")
      ->capture_default_str();
  cmd->callback([cmd, o] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    note_given_options(*cmd, *o);
    if (o->as_tutorial) apply_tutorial_where_unset(*cmd, *o);
    const Checkpoint ckpt = run_training_in_terminal(*o);
    if (!o->quiet) {
      std::fprintf(stderr, "saved %s (final loss %s, %s s)\n", o->out.c_str(),
                   ckpt.info.count("final_loss") ? ckpt.info.at("final_loss").c_str() : "?",
                   ckpt.info.count("train_seconds") ? ckpt.info.at("train_seconds").c_str() : "?");
    }
  });
}

}  // namespace diffuse::cli
