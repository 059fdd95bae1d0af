// `diffuse train`: trains a model on a shape or CSV file and saves it as safetensors.
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "diffuse/error.h"

namespace diffuse::cli {

void add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Train a diffusion model and save it (.safetensors)");
  add_train_options(cmd, *o);
  cmd->add_option("-o,--output", o->out, "checkpoint file to write")->required();
  cmd->callback([o] {
    const Checkpoint ckpt = run_training(*o);
    if (!o->quiet) {
      std::fprintf(stderr, "saved %s (final loss %s, %s s)\n", o->out.c_str(),
                   ckpt.info.count("final_loss") ? ckpt.info.at("final_loss").c_str() : "?",
                   ckpt.info.count("train_seconds") ? ckpt.info.at("train_seconds").c_str() : "?");
    }
  });
}

}  // namespace diffuse::cli
