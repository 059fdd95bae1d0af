// `diffuse data`: writes a built-in shape as CSV, or lists the shapes.
#include <cstdio>

#include "commands.h"
#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/io.h"

namespace diffuse::cli {

void add_data_command(CLI::App& app) {
  struct Opts {
    std::string name, out;
    int n = 10000;
    double noise = 0.1;
    uint64_t seed = 0;
    bool list = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("data", "Write points of a built-in shape to a CSV file");
  cmd->add_option("name", o->name, "shape name (see --list)");
  cmd->add_option("-n,--points", o->n, "number of points")->capture_default_str();
  cmd->add_option("--noise", o->noise, "std of the Gaussian noise")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("-o,--output", o->out, "output CSV file");
  cmd->add_flag("--list", o->list, "list the built-in shapes");
  cmd->callback([o] {
    if (o->list) {
      for (Shape s : all_shapes()) {
        std::printf("%-12s %s\n", to_string(s).c_str(), describe(s).c_str());
      }
      return;
    }
    if (o->name.empty()) throw UsageError("data: a shape name is required (see --list)");
    const Shape shape = parse_shape(o->name);
    if (o->out.empty()) throw UsageError("-o: an output file is required");
    check_writable(o->out, "-o");
    write_csv(o->out, make_shape(shape, o->n, o->noise, o->seed), {"x", "y"});
  });
}

}  // namespace diffuse::cli
