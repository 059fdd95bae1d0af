// Pieces the subcommands share: the training options (train and demo take the same ones), the
// library's training run in a terminal, and small output helpers. Orchestration only; the work is
// in the library.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "diffuse/checkpoint.h"
#include "diffuse/dataset.h"
#include "diffuse/io.h"
#include "diffuse/metrics.h"
#include "diffuse/run.h"
#include "diffuse/sampler.h"
#include "diffuse/schedule.h"
#include "diffuse/train.h"

namespace diffuse::cli {

// The training options of `train` and `demo`: the library's RunConfig (whose defaults are the
// CLI's; one source of truth) plus what only a terminal needs.
struct TrainOptions : RunConfig {
  bool quiet = false;        // no progress output (warnings still show)
  bool as_tutorial = false;  // --as-tutorial (see apply_tutorial_where_unset)
};

// --spacing's help for sample, plot and animate, with each sampler's own spacing.
std::string spacing_help();

// Registers every training option on cmd (defaults shown in --help), --as-tutorial included.
void add_train_options(CLI::App* cmd, TrainOptions& o);

// Records in o.given the training options set on cmd's command line, so that a resumed run can
// refuse the ones that conflict with its stored options (RunConfig::given).
void note_given_options(const CLI::App& cmd, TrainOptions& o);

// --as-tutorial: gives every training option the user did not set on cmd's command line the
// value of RunConfig::tutorial() (the tutorial's sigmoid schedule to beta 0.02, lr 1e-3
// constant, no EMA; see docs/DEFAULTS.md).
void apply_tutorial_where_unset(const CLI::App& cmd, TrainOptions& o);

// diffuse::run_training with a progress bar on stderr (unless quiet), warnings on stderr, and
// Ctrl-C / SIGTERM asking the run to stop after the current epoch: it then saves a resumable
// checkpoint and throws Interrupted saying how to continue. A log that could not be written after
// the model was saved is a SideOutputError (exit 3).
Checkpoint run_training_in_terminal(const TrainOptions& o);

// Ctrl-C / SIGTERM for a command that writes files; its first action, before any file is touched
// (check_writable's probe included). While one lives, the first Ctrl-C / SIGTERM only sets
// requested(), and every output file asks it (an OutputStopScope): the command then stops at its
// next check, an output being written throws Interrupted("interrupted; PATH was not written") and
// removes its temporary file, and main() exits 130 with that one line. A second one kills at once,
// the default action (a temporary file may then remain). They nest: only the outermost installs
// the handlers and restores the ones before it.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  static bool requested();

 private:
  bool outermost_;
  void (*old_int_)(int) = nullptr;
  void (*old_term_)(int) = nullptr;
  OutputStopScope outputs_;
};

// Registers --seed on cmd: a decimal integer 0 .. 2^64 - 1 (anything else, "-1" or "2^70"
// included, is a UsageError naming --seed; CLI11 alone would saturate them to 2^64 - 1).
void add_seed_option(CLI::App* cmd, uint64_t& seed, const std::string& description);
// The same check on a text value: the seed, or UsageError naming `option`.
uint64_t parse_seed(const std::string& text, const std::string& option = "--seed");

}  // namespace diffuse::cli
