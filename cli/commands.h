// The `diffuse` subcommands: each add_*_command registers one CLI11 subcommand whose callback calls
// library functions. Callbacks throw diffuse::UsageError (exit 2) or diffuse::Error (exit 1).
#pragma once

#include <CLI/CLI.hpp>

namespace diffuse::cli {

void add_data_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_demo_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_animate_command(CLI::App& app);

}  // namespace diffuse::cli
