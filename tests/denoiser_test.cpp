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

// Classifier-free guidance on closed-form predictors: class k's eps is affine in x with its own
// slope and offset, the null class (label 4) another one.
TEST(Guidance, CombinesAsDiffusersWithW1ConditionalAndW0UnconditionalBitForBit) {
  const int D = 3, n = 5;
  int calls = 0;
  const ConditionalEpsFn base = [&calls](const float* x, int t, int n_, const int32_t* labels,
                                         float* eps) {
    ++calls;
    for (int j = 0; j < n_; ++j) {
      const int k = labels == nullptr ? 4 : labels[j];
      for (int d = 0; d < D; ++d) {
        eps[j * D + d] = (0.5f + 0.25f * k) * x[j * D + d] + 0.1f * k - 0.01f * t + 0.3f * d;
      }
    }
  };
  std::vector<float> x(n * D);
  Rng rng(3);
  rng.fill_normal(x.data(), x.size());
  const std::vector<int32_t> labels = {0, 2, 1, 3, 2};
  const std::vector<int32_t> nulls(n, 4);
  std::vector<float> cond(x.size()), uncond(x.size()), got(x.size());
  base(x.data(), 7, n, labels.data(), cond.data());
  base(x.data(), 7, n, nulls.data(), uncond.data());
  for (double w : {0.0, 1.0, 2.0, 3.5, 0.4}) {
    calls = 0;
    guided_eps_fn(base, w, 4, D)(x.data(), 7, n, labels.data(), got.data());
    EXPECT_EQ(calls, w == 0.0 || w == 1.0 ? 1 : 2) << w;  // no wasted evaluation
    for (size_t i = 0; i < x.size(); ++i) {
      const float expected = uncond[i] + static_cast<float>(w) * (cond[i] - uncond[i]);
      if (w == 1.0) {
        EXPECT_EQ(got[i], cond[i]);
      } else if (w == 0.0) {
        EXPECT_EQ(got[i], uncond[i]);
      } else {
        EXPECT_EQ(got[i], expected) << w;
        // and it is the closed form: the guided slope and offset of the affine predictors
        const int k = labels[i / D];
        const double slope = 0.5 + 0.25 * 4 + w * 0.25 * (k - 4);
        const double offset = 0.1 * 4 + w * 0.1 * (k - 4) - 0.07 + 0.3 * (i % D);
        EXPECT_NEAR(got[i], slope * x[i] + offset, 1e-5 * (1 + std::abs(slope * x[i])));
      }
    }
  }
  // No labels: passed through as they are (the unconditional prediction) whatever W.
  std::vector<float> none(x.size());
  base(x.data(), 7, n, nullptr, none.data());
  calls = 0;
  guided_eps_fn(base, 3.0, 4, D)(x.data(), 7, n, nullptr, got.data());
  EXPECT_EQ(got, none);
  EXPECT_EQ(calls, 1);
  EXPECT_THROW(guided_eps_fn(base, -0.5, 4, D), UsageError);
  EXPECT_THROW(guided_eps_fn(base, std::nan(""), 4, D), UsageError);
}

// Guidance on v or x0 outputs is guidance on eps: eps is affine in the output with coefficients
// that do not depend on the label, and the weights (1 - W, W) sum to 1.
TEST(Guidance, OnEpsEqualsGuidanceOnTheNetworksOutputForEveryTarget) {
  const Schedule s = cosine(1000);
  const int D = 2, n = 64;
  Rng rng(4);
  std::vector<float> x(n * D), out_c(n * D), out_u(n * D), out_g(n * D);
  rng.fill_normal(x.data(), x.size());
  rng.fill_normal(out_c.data(), out_c.size());
  rng.fill_normal(out_u.data(), out_u.size());
  const float w = 2.5f;
  for (size_t i = 0; i < out_g.size(); ++i) out_g[i] = out_u[i] + w * (out_c[i] - out_u[i]);
  for (Prediction p : {Prediction::kEps, Prediction::kX0, Prediction::kV}) {
    for (int t : {5, 400, 990}) {
      std::vector<float> e_c(n * D), e_u(n * D), e_g(n * D);
      output_to_eps(p, s, t, x.data(), out_c.data(), x.size(), e_c.data());
      output_to_eps(p, s, t, x.data(), out_u.data(), x.size(), e_g.data());
      output_to_eps(p, s, t, x.data(), out_u.data(), x.size(), e_u.data());
      output_to_eps(p, s, t, x.data(), out_g.data(), x.size(), e_g.data());
      double worst = 0, scale = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        const double combined = e_u[i] + w * (static_cast<double>(e_c[i]) - e_u[i]);
        worst = std::max(worst, std::abs(combined - e_g[i]));
        scale = std::max(scale, std::abs(combined));
      }
      EXPECT_LT(worst, 1e-5 * scale) << to_string(p) << " t=" << t;
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
