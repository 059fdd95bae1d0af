// `diffuse data`: writes a built-in shape as CSV (with its classes under --labels), lists the
// shapes, or splits a CSV (`data split`).
#include <cstdio>

#include "commands.h"
#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/labels.h"
#include "options.h"

namespace diffuse::cli {

void add_data_command(CLI::App& app) {
  struct Opts {
    std::string name, out;
    ShapeConfig shape;  // the library's defaults, shown in --help
    bool list = false, labels = false;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("data", "Write points of a built-in shape to a CSV file");
  cmd->add_option("name", o->name, "shape name (see --list)");
  cmd->add_option("-n,--points", o->shape.n, "number of points")->capture_default_str();
  cmd->add_option("--noise", o->shape.noise, "std of the Gaussian noise")->capture_default_str();
  add_seed_option(cmd, o->shape.seed, "random seed");
  cmd->add_option("-o,--output", o->out, "output CSV file");
  cmd->add_flag("--list", o->list, "list the built-in shapes");
  cmd->add_flag("--labels", o->labels,
                "add a `label` column: each point's class (the mixture component of 8gaussians "
                "and 25gaussians, the moon, the circle, the checkerboard square, the spiral's "
                "turn); the points are the same as without it");
  // `diffuse data split FILE.csv --test 0.2 --seed K`: train and test files for held-out eval.
  struct SplitOpts {
    std::string file, train_out, test_out, label_column;
    double test = 0.2;
    uint64_t seed = 0;
  };
  auto so = std::make_shared<SplitOpts>();
  CLI::App* split = cmd->add_subcommand(
      "split", "Split a CSV's rows at random into train and test files (header kept)");
  split->add_option("file", so->file, "the CSV to split")->required();
  split->add_option("--test", so->test, "share of the rows held out for testing")
      ->capture_default_str();
  split->add_option("--seed", so->seed, "random seed of the split")->capture_default_str();
  split->add_option("--train-out", so->train_out, "train file (default FILE.train.csv)");
  split->add_option("--test-out", so->test_out, "test file (default FILE.test.csv)");
  split->add_option("--label-column", so->label_column,
                    "a class column (any strings or integers) kept beside the numbers; it is "
                    "written last in both files");
  split->callback([so] {
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    std::string stem = so->file;
    if (stem.size() > 4 && stem.compare(stem.size() - 4, 4, ".csv") == 0) {
      stem.resize(stem.size() - 4);
    }
    const std::string train_out = so->train_out.empty() ? stem + ".train.csv" : so->train_out;
    const std::string test_out = so->test_out.empty() ? stem + ".test.csv" : so->test_out;
    if (train_out == test_out || train_out == so->file || test_out == so->file) {
      throw UsageError(
          "split: --train-out, --test-out and the input must be three different files");
    }
    check_writable(train_out, "--train-out");
    check_writable(test_out, "--test-out");
    if (!so->label_column.empty()) {
      const LabelledSplit s = split_labelled_rows(
          read_labelled_csv_checked(so->file, so->label_column, "--label-column"), so->test,
          so->seed);
      write_labelled_csv(train_out, s.train);
      write_labelled_csv(test_out, s.test);
      std::fprintf(stderr, "split: %lld rows to %s, %lld to %s\n",
                   static_cast<long long>(s.train.data.x.rows()), train_out.c_str(),
                   static_cast<long long>(s.test.data.x.rows()), test_out.c_str());
      return;
    }
    const Split s = split_rows(read_csv(so->file), so->test, so->seed);
    write_csv(train_out, s.train.x, s.train.columns);
    write_csv(test_out, s.test.x, s.test.columns);
    std::fprintf(stderr, "split: %lld rows to %s, %lld to %s\n",
                 static_cast<long long>(s.train.x.rows()), train_out.c_str(),
                 static_cast<long long>(s.test.x.rows()), test_out.c_str());
  });
  cmd->callback([o, split] {
    if (split->parsed()) return;
    if (o->list) {
      for (Shape s : all_shapes()) {
        std::printf("%-12s %s\n", to_string(s).c_str(), describe(s).c_str());
      }
      return;
    }
    const StopSignals stop;  // Ctrl-C: exit 130, no output half-written (see StopSignals)
    if (o->name.empty()) throw UsageError("data: a shape name is required (see --list)");
    const Shape shape = parse_shape(o->name);
    if (o->out.empty()) throw UsageError("-o: an output file is required");
    if (o->labels) check_shape_has_classes(shape);
    check_writable(o->out, "-o");
    if (o->labels) {
      write_labelled_csv(o->out,
                         make_labelled_shape(shape, o->shape.n, o->shape.noise, o->shape.seed));
      return;
    }
    write_csv(o->out, make_shape(shape, o->shape.n, o->shape.noise, o->shape.seed), {"x", "y"});
  });
}

}  // namespace diffuse::cli
