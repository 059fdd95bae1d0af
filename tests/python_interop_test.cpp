// A Python user loads our checkpoint into its PyTorch module (the tutorial's, or the residual MLP's
// reference in scripts/resmlp_reference.py) with strict=True and gets our outputs.
// Runs scripts/check_python_load.py with Debian's python3-torch; skipped where torch is missing.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "diffuse/checkpoint.h"
#include "diffuse/model.h"
#include "test_util.h"

namespace diffuse {
namespace {

bool have_torch() { return test::run_shell("/usr/bin/python3 -c 'import torch'").exit_code == 0; }

// Saves a model of config c, runs it on 40 random columns, and has PyTorch load and run it.
test::CommandResult python_load(const ModelConfig& c) {
  test::TempDir dir;
  Model m(c);
  Rng rng(5);
  m.init(rng);
  Checkpoint ck;
  ck.model = c;
  ck.schedule.T = c.T;
  ck.params = m.params;
  for (int k = 0; k < c.classes; ++k) {
    ck.classes.push_back("class " + std::to_string(k));
    ck.class_counts.push_back(k + 2);
  }
  save_checkpoint(dir.file("m.safetensors"), ck);

  const int B = 40;
  ColMatrix x(c.dim, B), y(c.dim, B);
  std::vector<int32_t> t(B), labels(B);
  Rng data(6);
  data.fill_normal(x.data(), x.size());
  for (int j = 0; j < B; ++j) t[j] = static_cast<int32_t>(data.below(c.T));
  // Every class and the null class C.
  for (int j = 0; j < B; ++j) labels[j] = static_cast<int32_t>(j % (c.classes + 1));
  Workspace ws(c, B);
  model_forward(c, m.params.data(), x.data(), t.data(), B, ws, y.data(), labels.data());

  FILE* in = std::fopen(dir.file("in.csv").c_str(), "w");
  FILE* out = std::fopen(dir.file("out.csv").c_str(), "w");
  for (int j = 0; j < B; ++j) {
    std::fprintf(in, "%d", t[j]);
    if (c.classes > 0) std::fprintf(in, ",%d", labels[j]);
    for (int d = 0; d < c.dim; ++d) std::fprintf(in, ",%.9g", x(d, j));
    std::fprintf(in, "\n");
    for (int d = 0; d < c.dim; ++d) std::fprintf(out, "%s%.9g", d ? "," : "", y(d, j));
    std::fprintf(out, "\n");
  }
  std::fclose(in);
  std::fclose(out);
  return test::run_shell(std::string("/usr/bin/python3 ") + DIFFUSE_SOURCE_DIR +
                         "/scripts/check_python_load.py " + dir.file("m.safetensors") + " " +
                         dir.file("in.csv") + " " + dir.file("out.csv"));
}

TEST(PythonInterop, TutorialModelLoadsOurCheckpointAndAgrees) {
  if (!have_torch()) GTEST_SKIP() << "python3-torch is not installed";
  const auto r = python_load(ModelConfig{3, 24, 17});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("loaded 11 tensors into tutorial"), std::string::npos) << r.output;
}

TEST(PythonInterop, ResMlpReferenceLoadsOurCheckpointStrictAndAgrees) {
  if (!have_torch()) GTEST_SKIP() << "python3-torch is not installed";
  // v prediction: the raw output is compared, whatever it stands for.
  const auto r = python_load(ModelConfig{3, 24, 1000, ModelKind::kResMlp, 2, Prediction::kV});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // inp 2 + 2 blocks x 6 + norm 2 + out 2
  EXPECT_NE(r.output.find("loaded 18 tensors into resmlp"), std::string::npos) << r.output;
}

TEST(PythonInterop, ResMlpWithFourierFeaturesLoadsStrictAndAgrees) {
  if (!have_torch()) GTEST_SKIP() << "python3-torch is not installed";
  ModelConfig c{3, 24, 1000, ModelKind::kResMlp, 2, Prediction::kV};
  c.fourier_features = 6;  // the reference rebuilds inp as Linear(3 + 32 + 36, 24) from metadata
  const auto r = python_load(c);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("loaded 18 tensors into resmlp"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fourier_features=6"), std::string::npos) << r.output;
}

TEST(PythonInterop, ConditionalResMlpReferenceLoadsOurCheckpointStrictAndAgrees) {
  if (!have_torch()) GTEST_SKIP() << "python3-torch is not installed";
  ModelConfig c{4, 16, 1000, ModelKind::kResMlp, 2, Prediction::kV};
  c.classes = 5;
  const auto r = python_load(c);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // 18 + label_emb.weight
  EXPECT_NE(r.output.find("loaded 19 tensors into resmlp"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace diffuse
