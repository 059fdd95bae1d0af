// Tests for the denoiser interface: prediction targets and their conversion to the noise the
// samplers take, min-SNR weights, the samplers' adapter, and training with each target.
#include "diffuse/denoiser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/model.h"
#include "diffuse/rng.h"
#include "diffuse/sampler.h"
#include "diffuse/train.h"
#include "test_util.h"

namespace diffuse {
namespace {

Schedule cosine(int T) {
  ScheduleConfig c;
  c.kind = ScheduleKind::kCosine;
  c.T = T;
  return make_schedule(c);
}

TEST(Denoiser, AnExactPredictionOfEachTargetGivesBackTheNoise) {
  const Schedule s = cosine(1000);
  Rng rng(1);
  const size_t n = 64;
  std::vector<float> x0(n), eps(n), xt(n), target(n), got(n);
  rng.fill_normal(x0.data(), n);
  rng.fill_normal(eps.data(), n);
  for (int t : {0, 10, 500, 990}) {
    const auto a = static_cast<float>(s.sqrt_alpha_bar[t]);
    const auto sg = static_cast<float>(s.sqrt_one_minus_alpha_bar[t]);
    for (size_t i = 0; i < n; ++i) xt[i] = a * x0[i] + sg * eps[i];
    for (Prediction p : {Prediction::kEps, Prediction::kX0, Prediction::kV}) {
      prediction_target(p, s, t, x0.data(), eps.data(), n, target.data());
      output_to_eps(p, s, t, xt.data(), target.data(), n, got.data());
      double worst = 0;
      for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(double(got[i]) - eps[i]));
      // x0 -> eps divides by sigma_t, which is about 0.0016 * 4 at t = 0 of a cosine schedule
      const double tol = p == Prediction::kX0 ? 2e-6 / sg : 2e-6;
      EXPECT_LT(worst, tol) << to_string(p) << " t=" << t;
    }
  }
}

TEST(Denoiser, MinSnrWeightsFollowHangEtAl) {
  const Schedule s = cosine(1000);
  for (int t : {0, 100, 400, 999}) {
    const double snr = s.alpha_bar[t] / (1 - s.alpha_bar[t]);
    const double m = std::min(snr, 5.0);
    EXPECT_DOUBLE_EQ(loss_weight(LossWeighting::kMinSnr, 5.0, Prediction::kEps, s, t), m / snr);
    EXPECT_DOUBLE_EQ(loss_weight(LossWeighting::kMinSnr, 5.0, Prediction::kX0, s, t), m);
    EXPECT_DOUBLE_EQ(loss_weight(LossWeighting::kMinSnr, 5.0, Prediction::kV, s, t), m / (snr + 1));
    EXPECT_EQ(loss_weight(LossWeighting::kUniform, 5.0, Prediction::kV, s, t), 1.0);
  }
  // Low noise (high SNR) is down-weighted for eps; high noise keeps weight 1.
  EXPECT_LT(loss_weight(LossWeighting::kMinSnr, 5.0, Prediction::kEps, s, 0), 0.01);
  EXPECT_EQ(loss_weight(LossWeighting::kMinSnr, 5.0, Prediction::kEps, s, 999), 1.0);
}

TEST(Denoiser, NamesRoundTrip) {
  for (const auto& n : prediction_names()) EXPECT_EQ(to_string(*prediction_from_string(n)), n);
  for (const auto& n : model_kind_names()) EXPECT_EQ(to_string(*model_kind_from_string(n)), n);
  for (const auto& n : loss_weighting_names()) {
    EXPECT_EQ(to_string(*loss_weighting_from_string(n)), n);
  }
  EXPECT_FALSE(prediction_from_string("noise"));
  EXPECT_FALSE(model_kind_from_string("unet"));
}

TEST(Denoiser, EpsFnConvertsTheNetworkOutputAndRawAccessIsRefused) {
  const Schedule s = cosine(200);
  const ModelConfig net{2, 16, 200, ModelKind::kResMlp, 1, Prediction::kEps};
  ModelConfig v = net;
  v.prediction = Prediction::kV;
  Model m(net);
  Rng rng(3);
  m.init(rng);
  const int n = 300;
  std::vector<float> x(2 * n), out(2 * n), eps(2 * n), want(2 * n);
  rng.fill_normal(x.data(), x.size());
  model_eps_fn(net, m.params, 1)(x.data(), 150, n, out.data());
  output_to_eps(Prediction::kV, s, 150, x.data(), out.data(), out.size(), want.data());
  denoiser_eps_fn(v, m.params, s, 2)(x.data(), 150, n, eps.data());
  EXPECT_EQ(eps, want);
  // eps prediction: the adapter is the network itself
  denoiser_eps_fn(net, m.params, s, 1)(x.data(), 150, n, eps.data());
  EXPECT_EQ(eps, out);
  EXPECT_THROW(model_eps_fn(v, m.params, 1), Error);
}

// A two-cluster 2-D set; each target trains, the loss falls, and a run repeats bit for bit.
TEST(Denoiser, EveryTargetAndWeightingTrainsDeterministically) {
  Rng rng(5);
  Points data(512, 2);
  for (int i = 0; i < data.rows(); ++i) {
    data(i, 0) = (i % 2 ? 1.0f : -1.0f) + 0.1f * static_cast<float>(rng.normal());
    data(i, 1) = 0.1f * static_cast<float>(rng.normal());
  }
  const Schedule s = cosine(100);
  for (Prediction p : {Prediction::kEps, Prediction::kX0, Prediction::kV}) {
    for (LossWeighting w : {LossWeighting::kUniform, LossWeighting::kMinSnr}) {
      SCOPED_TRACE(to_string(p) + " " + to_string(w));
      auto run = [&](int threads) {
        Model m(ModelConfig{2, 32, 100, ModelKind::kResMlp, 2, p});
        Rng init(1);
        m.init(init);
        TrainConfig tc;
        tc.epochs = 30;
        tc.batch_size = 64;
        tc.threads = threads;
        tc.loss_weighting = w;
        Trainer tr(m, s, data, tc);
        const auto stats = train(tr);
        return std::pair{stats, m.params};
      };
      const auto [stats, params] = run(2);
      double first = 0, last = 0;
      for (int e = 0; e < 5; ++e) first += stats[e].mean_loss, last += stats[25 + e].mean_loss;
      EXPECT_LT(last, 0.8 * first);
      EXPECT_EQ(run(2).second, params);
    }
  }
}

}  // namespace
}  // namespace diffuse
