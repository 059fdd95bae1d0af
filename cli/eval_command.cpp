// `diffuse eval`: scores samples against a shape or a data file (SWD, MMD, floors, coverage).
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "diffuse/dataset.h"

namespace diffuse::cli {

void add_eval_command(CLI::App& app) {
  struct Opts {
    std::string samples, against;
    double noise = 0.1;
    uint64_t seed = 1000;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("eval", "Score samples: sliced Wasserstein and MMD vs floor");
  cmd->add_option("samples", o->samples, "samples CSV")->required();
  cmd->add_option("--against", o->against, "built-in shape name or reference CSV")->required();
  cmd->add_option("--noise", o->noise, "noise of the built-in shape")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the fresh reference draws")->capture_default_str();
  cmd->add_flag("--json", o->json, "one JSON object instead of a table");
  cmd->callback([o] {
    const Dataset s = read_csv(o->samples);
    const EvalResult r = evaluate_against(s.x, o->against, o->noise, o->seed);
    std::fputs(o->json ? (eval_json(r) + "\n").c_str() : eval_text(r).c_str(), stdout);
  });
}

}  // namespace diffuse::cli
