// `diffuse eval`: scores sample files against a shape or a data file (library: evaluate.h). One
// file: its scores; several (one per sampling or training seed): each, then mean ± spread. With
// --label-column, also per-class scores and the 5-NN accuracy.
#include <cstdio>

#include "commands.h"
#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/evaluate.h"
#include "diffuse/labels.h"
#include "options.h"

namespace diffuse::cli {

void add_eval_command(CLI::App& app) {
  struct Opts {
    std::vector<std::string> samples;
    std::string against, train, label_column;
    EvalConfig config;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Score samples against a reference (standardized units): sliced Wasserstein and MMD over "
      "their floor, per-column W1, correlations, copy_share with --train");
  cmd->add_option("samples", o->samples,
                  "samples CSV; several files (e.g. one per seed) also give mean ± spread")
      ->required();
  cmd->add_option("--against", o->against,
                  "built-in shape name or reference CSV (for your own table: the held-out rows "
                  "from `diffuse data split`)")
      ->required();
  cmd->add_option("--train", o->train,
                  "the training CSV: adds copy_share (share of samples nearer a training row than "
                  "95% of the reference's rows are; honest ~0.05)");
  cmd->add_option("--label-column", o->label_column,
                  "the class column of the samples and of the --against CSV (a built-in shape: "
                  "its classes, as `diffuse data --labels` writes them): adds per-class swd_ratio "
                  "and knn_accuracy (the share of samples whose label their 5 nearest reference "
                  "rows agree with)");
  cmd->add_option("--noise", o->config.noise, "noise of the built-in shape")->capture_default_str();
  add_seed_option(cmd, o->config.seed, "seed of the reference draws and projections");
  cmd->add_option("--pairs", o->config.pairs, "(score, floor) pairs averaged")
      ->capture_default_str();
  cmd->add_option("--directions", o->config.directions, "projections per sliced distance")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "one JSON object instead of a table");
  cmd->callback([o] {
    Dataset train;
    if (!o->train.empty()) train = read_csv(o->train);
    std::vector<Evaluation> runs;
    try {
      const bool labelled = !o->label_column.empty();
      const Reference ref = resolve_eval_reference(o->against, o->config.noise, o->label_column);
      const Points* t = o->train.empty() ? nullptr : &train.x;
      for (const std::string& path : o->samples) {
        LabelledDataset s;
        if (labelled) {
          s = read_labelled_csv_checked(path, o->label_column, "--label-column");
        } else {
          s.data = read_csv(path);
        }
        runs.push_back(evaluate_sample_table(path, s.data.x, labelled ? &s.labels : nullptr, ref,
                                             o->config, t));
      }
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      // A degenerate reference (its rows all equal: the metrics' bandwidth or floor is 0) is the
      // --against file's fault: name it.
      const std::string what = e.what();
      if (what.rfind("mmd: ", 0) != 0 && what.rfind("evaluate: ", 0) != 0) throw;
      throw Error(o->against + ": " + what);
    }
    if (runs.size() == 1) {
      std::fputs(
          o->json ? (evaluation_json(runs[0]) + "\n").c_str() : evaluation_text(runs[0]).c_str(),
          stdout);
      return;
    }
    if (o->json) {
      std::fputs((summary_json(runs) + "\n").c_str(), stdout);
      return;
    }
    for (size_t i = 0; i < runs.size(); ++i) {
      std::printf("== %s\n%s\n", o->samples[i].c_str(), evaluation_text(runs[i]).c_str());
    }
    std::fputs(summary_text(runs).c_str(), stdout);
  });
}

}  // namespace diffuse::cli
