// `diffuse sample`: draws points from a trained model into a CSV file, streamed in chunks so that
// memory does not grow with -n (the values are the same bits as drawing them all at once).
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "commands.h"
#include "diffuse/error.h"
#include "diffuse/io.h"
#include "options.h"

namespace diffuse::cli {

namespace {

// Rows per chunk: about 1 Mi values (4 MiB per buffer; the sampler holds 3 or 4 such buffers),
// a multiple of the model's 256-column block and at least one block.
int chunk_rows_for(int dim) {
  const int64_t rows = (int64_t{1} << 20) / std::max(dim, 1) / 256 * 256;
  return static_cast<int>(std::clamp<int64_t>(rows, 256, int64_t{1} << 20));
}

}  // namespace

void add_sample_command(CLI::App& app) {
  struct Opts {  // the library's defaults (SampleConfig{}), shown in --help
    SampleConfig config;
    std::string model, out, sampler = to_string(config.sampler),
                            variance = to_string(config.variance),
                            x0_clamp = to_string(config.x0_clamp);
    std::string spacing = spacing_text(SampleConfig{}.spacing);
    int n = kDefaultSamplePoints;
    std::string class_name;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("sample", "Sample points from a trained model into a CSV");
  cmd->add_option("model", o->model, "checkpoint (.safetensors)")->required();
  cmd->add_option("-n,--points", o->n, "number of samples")->capture_default_str();
  add_seed_option(cmd, o->config.seed, "random seed");
  cmd->add_option("--sampler", o->sampler, "ddpm, ddim or dpmpp2m")->capture_default_str();
  cmd->add_option("--nfe", o->config.nfe, "network evaluations (0: T)")->capture_default_str();
  cmd->add_option("--spacing", o->spacing, spacing_help())->capture_default_str();
  cmd->add_option("--eta", o->config.eta, "DDIM noise: 0 deterministic, 1 ancestral")
      ->capture_default_str();
  cmd->add_option("--variance", o->variance, "DDPM noise std: posterior or beta")
      ->capture_default_str();
  cmd->add_option("--x0-clamp", o->x0_clamp,
                  "keep each step's x0 prediction inside the training data's range: clip, "
                  "threshold (Imagen's dynamic thresholding) or off")
      ->capture_default_str();
  cmd->add_flag("--round-integers", o->config.round_integers,
                "round the columns that held only whole numbers in the training data");
  cmd->add_option("--threads", o->config.threads, "threads")->capture_default_str();
  CLI::Option* class_opt =
      cmd->add_option("--class", o->class_name,
                      "draw this class of a model trained with --label-column (default: every "
                      "class in its training share, written to the label column)");
  CLI::Option* guidance_opt =
      cmd->add_option("--guidance", o->config.guidance,
                      "classifier-free guidance scale W of --class: eps_uncond + W (eps_class - "
                      "eps_uncond); 1 the plain class, 0 unconditional, > 1 sharper classes")
          ->capture_default_str();
  cmd->add_option("-o,--output", o->out, "output CSV file")->required();
  cmd->callback([o, class_opt, guidance_opt] {
    // Ctrl-C is ours from here on, before the first file is touched: check_writable creates and
    // removes a probe "OUT.tmp-XXXXXX", and a Ctrl-C there under the default action killed the
    // process with no message and could leave the probe behind. Now it only sets the flag, and
    // the work stops at its next check with the one clean line. A second Ctrl-C kills at once;
    // a temporary file may then remain.
    const StopSignals stop;
    SampleConfig sc = o->config;
    sc.sampler = parse_sampler(o->sampler);
    sc.spacing = parse_spacing(o->spacing);
    sc.variance = parse_variance(o->variance);
    sc.x0_clamp = parse_x0_clamp(o->x0_clamp);
    if (sc.threads < 1)
      throw UsageError("--threads: expected 1..256, got " + std::to_string(sc.threads));
    if (o->n < 1) throw UsageError("-n: expected at least 1 sample, got " + std::to_string(o->n));
    check_writable(o->out, "-o");
    check_distinct_files({{"the model", o->model}}, {{"-o", o->out}});
    if (guidance_opt->count() > 0 && class_opt->count() == 0) {
      throw UsageError("--guidance: needs --class (it scales the pull towards one class)");
    }
    if (!(sc.guidance >= 0.0) || !std::isfinite(sc.guidance)) {
      throw UsageError("--guidance: expected a finite scale >= 0, got " +
                       std::to_string(sc.guidance));
    }
    const Checkpoint ckpt = load_checkpoint(o->model);
    if (class_opt->count() > 0) {
      try {
        sc.label = class_label(ckpt, o->class_name);
      } catch (const UsageError& e) {
        throw UsageError(std::string(e.what()) + " (" + o->model + ")");
      }
    }
    // Stored names no CSV header can hold are the checkpoint's fault: say so before sampling.
    for (size_t k = 0; k < ckpt.columns.size(); ++k) {
      if (const std::string why = column_name_problem(ckpt.columns[k]); !why.empty()) {
        throw Error(o->model + ": stored column " + std::to_string(k + 1) + " name " +
                    quote_for_message(ckpt.columns[k]) +
                    " cannot be written to a CSV header: " + why);
      }
    }
    validate(sc, make_schedule(ckpt.schedule).T());
    const std::string interrupted = "interrupted; " + o->out + " was not written";
    if (StopSignals::requested()) throw Interrupted(interrupted);  // while the model loaded

    // A conditional model's samples carry their class in the training data's label column.
    const bool labelled = ckpt.model.classes > 0;
    std::unique_ptr<CsvWriter> out =
        labelled ? std::make_unique<CsvWriter>(o->out, ckpt.model.dim, ckpt.columns,
                                               ckpt.label_column, ckpt.classes)
                 : std::make_unique<CsvWriter>(o->out, ckpt.model.dim, ckpt.columns);
    try {
      sample_checkpoint_chunked(
          ckpt, sc, o->n, sc.threads, chunk_rows_for(ckpt.model.dim),
          [&](int64_t first, const Points& x) {
            if (labelled) {
              out->write(x, sample_labels(ckpt, sc, first, static_cast<int>(x.rows())));
            } else {
              out->write(x);
            }
          },
          [] { return StopSignals::requested(); });
    } catch (const Interrupted&) {
      throw Interrupted(interrupted);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      // The sampler's own failures (NaN) are the model's: name its file.
      const std::string what = e.what();
      if (what.rfind(o->out, 0) == 0) throw;
      throw Error(o->model + ": " + what);
    }
    out->commit();
  });
}

}  // namespace diffuse::cli
