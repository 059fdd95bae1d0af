// A program outside the project that uses the installed library: train briefly, then sample.
#include <cstdio>

#include "diffuse/dataset.h"
#include "diffuse/model.h"
#include "diffuse/sampler.h"
#include "diffuse/schedule.h"
#include "diffuse/train.h"

int main() {
  diffuse::Points data = diffuse::make_shape(diffuse::Shape::kMoons, 512, 0.1, 1);
  diffuse::Schedule s = diffuse::make_schedule({});
  diffuse::Model model(diffuse::ModelConfig{2, 32, s.T()});
  diffuse::Rng rng(0);
  model.init(rng);
  diffuse::TrainConfig tc;
  tc.epochs = 2;
  diffuse::Trainer trainer(model, s, data, tc);
  diffuse::train(trainer);
  diffuse::Points x = diffuse::sample(diffuse::model_eps_fn(model.config, model.params, 1), s, 64,
                                      2, diffuse::SampleConfig{});
  std::printf("%d %d\n", static_cast<int>(x.rows()), static_cast<int>(x.cols()));
  return x.rows() == 64 && x.cols() == 2 ? 0 : 1;
}
