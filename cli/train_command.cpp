// `diffuse train`: trains a model on a shape or CSV file and saves it as safetensors.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include "commands.h"
#include "diffuse/error.h"
#include "diffuse/io.h"
#include "options.h"
#include "plot_command.h"

namespace diffuse::cli {
namespace {

// Refuses (exit 2) a file that a snapshot (DIR/reverse_epoch_NNNN.png) could overwrite.
void check_not_a_snapshot(const std::string& dir, const std::vector<NamedPath>& files) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const NamedPath& f : files) {
    if (f.path.empty()) continue;
    const std::string name = fs::path(f.path).filename().string();
    const bool snapshot_name = name.rfind("reverse_epoch_", 0) == 0 && name.size() > 18 &&
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

}  // namespace

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
    note_given_options(*cmd, *o);
    if (o->as_tutorial) apply_tutorial_where_unset(*cmd, *o);
    if (snap->every < 0) throw UsageError("--snapshot-every: expected >= 0");
    ExtraEpochHook hook;
    // A snapshot that fails (a full disk) must not cost the run: warn once, train on, and exit 3
    // after the model is saved.
    auto snapshot_error = std::make_shared<std::string>();
    if (snap->every > 0) {
      check_not_a_snapshot(snap->dir,
                           {{"-o", o->out},
                            {"--log", o->log.empty() ? default_log_path(o->out) : o->log},
                            {"--data", o->data},
                            {"--resume", o->resume}});
      // A shape's columns are x and y; a CSV's header (or a resumed run's data) is read by the
      // run itself, so those snapshots are not labelled.
      const std::vector<std::string> columns = is_shape_name(o->data) && o->resume.empty()
                                                   ? std::vector<std::string>{"x", "y"}
                                                   : std::vector<std::string>{};
      ExtraEpochHook draw = reverse_snapshot_hook(snap->dir, snap->every, snap->points,
                                                  o->train.seed, o->train.threads, columns);
      hook = [draw, snapshot_error](const EpochStats& s, const Trainer& tr, const Schedule& sch,
                                    const Normalization& norm) {
        try {
          draw(s, tr, sch, norm);
        } catch (const UsageError&) {
          throw;
        } catch (const Error& e) {
          if (!snapshot_error->empty()) return;
          *snapshot_error = std::string("a snapshot could not be written: ") + e.what();
          std::fprintf(stderr, "diffuse: warning: %s; training goes on\n", snapshot_error->c_str());
        }
      };
    }
    const Checkpoint ckpt = run_training_in_terminal(*o, hook);
    if (!snapshot_error->empty())
      throw SideOutputError(o->out + " was saved, but " + *snapshot_error);
    if (!o->quiet) {
      std::fprintf(stderr, "saved %s (final loss %s, %s s)\n", o->out.c_str(),
                   ckpt.info.count("final_loss") ? ckpt.info.at("final_loss").c_str() : "?",
                   ckpt.info.count("train_seconds") ? ckpt.info.at("train_seconds").c_str() : "?");
    }
  });
}

}  // namespace diffuse::cli
