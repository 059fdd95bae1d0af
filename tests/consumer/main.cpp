// A program outside the project that uses the installed library: a short run with the library's
// defaults (the CLI's), then sampling the model it returns.
#include <cstdio>

#include "diffuse/run.h"

int main() {
  diffuse::RunConfig config;
  config.data = "moons";
  config.n = 512;
  config.hidden = 32;
  config.train.epochs = 2;
  const diffuse::RunResult run = diffuse::run_training(config);
  diffuse::SampleConfig sc;
  sc.seed = 1;
  const diffuse::Points x = diffuse::sample_checkpoint(run.checkpoint, sc, 64, 1);
  std::printf("%d %d\n", static_cast<int>(x.rows()), static_cast<int>(x.cols()));
  return run.finished && x.rows() == 64 && x.cols() == 2 ? 0 : 1;
}
