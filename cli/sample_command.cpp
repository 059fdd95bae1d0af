// `diffuse sample`: draws points from a trained model into a CSV file.
#include "commands.h"
#include "common.h"
#include "diffuse/error.h"
#include "diffuse/io.h"

namespace diffuse::cli {

void add_sample_command(CLI::App& app) {
  struct Opts {
    std::string model, out, sampler = "ddpm", variance = "posterior";
    std::string x0_clamp = to_string(SampleConfig{}.x0_clamp);
    bool round_integers = false;
    int n = 10000, nfe = 0, threads = 1;
    double eta = 0.0;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("sample", "Sample points from a trained model into a CSV");
  cmd->add_option("model", o->model, "checkpoint (.safetensors)")->required();
  cmd->add_option("-n,--points", o->n, "number of samples")->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed")->capture_default_str();
  cmd->add_option("--sampler", o->sampler, "ddpm, ddim or dpmpp2m")->capture_default_str();
  cmd->add_option("--nfe", o->nfe, "network evaluations (0: T)")->capture_default_str();
  cmd->add_option("--eta", o->eta, "DDIM noise: 0 deterministic, 1 ancestral")
      ->capture_default_str();
  cmd->add_option("--variance", o->variance, "DDPM noise std: posterior or beta")
      ->capture_default_str();
  cmd->add_option("--x0-clamp", o->x0_clamp,
                  "keep each step's x0 prediction inside the training data's range: clip, "
                  "threshold (Imagen's dynamic thresholding) or off")
      ->capture_default_str();
  cmd->add_flag("--round-integers", o->round_integers,
                "round the columns that held only whole numbers in the training data");
  cmd->add_option("--threads", o->threads, "threads")->capture_default_str();
  cmd->add_option("-o,--output", o->out, "output CSV file")->required();
  cmd->callback([o] {
    SampleConfig sc;
    sc.sampler = parse_sampler(o->sampler);
    sc.variance = parse_variance(o->variance);
    sc.nfe = o->nfe;
    sc.eta = o->eta;
    sc.seed = o->seed;
    sc.x0_clamp = parse_x0_clamp(o->x0_clamp);
    sc.round_integers = o->round_integers;
    if (o->threads < 1) throw UsageError("--threads: expected at least 1");
    check_writable(o->out, "-o");
    const Checkpoint ckpt = load_checkpoint(o->model);
    const Points x = sample_checkpoint(ckpt, sc, o->n, o->threads);
    write_csv(o->out, x, ckpt.columns);
  });
}

}  // namespace diffuse::cli
