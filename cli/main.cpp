// The `diffuse` command: a thin shell over the library; every subcommand lives in its own file.
// Exit codes: 0 success, 2 usage error (bad option or value), 1 any other failure, 3 the model was
// saved but a side output (log, snapshot) was not, 130 interrupted (docs/RELIABILITY.md).
#include <cstdio>
#include <exception>
#include <string>

#include "commands.h"
#include "diffuse/error.h"

int main(int argc, char** argv) {
  CLI::App app{"diffuse: train, sample, evaluate and draw denoising diffusion models (DDPM)"};
  app.set_version_flag("--version", "diffuse 0.1.0");
  app.require_subcommand(1);
  app.get_formatter()->column_width(34);
  diffuse::cli::add_data_command(app);
  diffuse::cli::add_train_command(app);
  diffuse::cli::add_sample_command(app);
  diffuse::cli::add_eval_command(app);
  diffuse::cli::add_demo_command(app);
  diffuse::cli::add_plot_command(app);
  diffuse::cli::add_animate_command(app);
  if (argc == 1) {  // no command: the usage (what CLI11 would print for --help), exit 2
    app.name("diffuse");
    std::fputs(app.help().c_str(), stdout);
    return 2;
  }
  // CLI11 would only say "A subcommand is required"; name the word it did not know.
  std::string names;
  bool known = false;
  for (const CLI::App* sub : app.get_subcommands({})) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
    known = known || (argc > 1 && sub->get_name() == argv[1]);
  }
  if (argc > 1 && argv[1][0] != '-' && !known) {
    std::fprintf(stderr, "diffuse: error: unknown command '%s'; expected one of %s\n", argv[1],
                 names.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other error (CLI11 would add "Run with --help for more information.").
    std::fprintf(stderr, "diffuse: error: %s\n", e.what());
    return 2;
  } catch (const diffuse::SideOutputError& e) {
    std::fprintf(stderr, "diffuse: error: %s\n", e.what());
    return 3;
  } catch (const diffuse::Interrupted& e) {
    // "diffuse: plot data: interrupted; OUT was not written": the command, then what was lost.
    std::string command;
    for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      command += (command.empty() ? "" : " ") + sub->get_name();
    }
    std::fprintf(stderr, "diffuse: %s: %s\n", command.c_str(), e.what());
    return 130;
  } catch (const diffuse::UsageError& e) {
    std::fprintf(stderr, "diffuse: error: %s\n", e.what());
    return 2;
  } catch (const diffuse::Error& e) {
    std::fprintf(stderr, "diffuse: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    // The sizes are checked against memory before the work starts, so this is rare: name the
    // command and the options that decide the sizes.
    std::string command = "diffuse";
    for (const CLI::App* sub : app.get_subcommands()) command += " " + sub->get_name();
    std::fprintf(stderr,
                 "diffuse: error: %s: out of memory (the data, -n, --hidden, --steps or "
                 "--batch-size ask for more than this machine has free)\n",
                 command.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "diffuse: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
