// Tests of the labelled evaluation (evaluate_labelled_samples, knn_classify): 5-NN accuracy of
// correct, swapped and partly swapped labels, per-class scores computed on each class's own rows,
// a shape's classes as the reference, and the JSON / text reports. Not the unlabelled protocol
// (evaluate_test.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/evaluate.h"
#include "diffuse/labels.h"
#include "diffuse/rng.h"

namespace diffuse {
namespace {

// Two round blobs of std 0.5, class "a" at (-5, 0) and class "b" at (5, 0) (shifted by `shift_b`),
// n rows of each, interleaved a, b, a, b, ...
LabelledDataset two_blobs(int n, uint64_t seed, double shift_b_y = 0.0) {
  Rng rng(seed);
  LabelledDataset d;
  d.data.x.resize(2 * n, 2);
  d.data.columns = {"u", "v"};
  d.labels.column = "label";
  d.labels.classes = {"a", "b"};
  for (int i = 0; i < 2 * n; ++i) {
    const int c = i % 2;
    d.data.x(i, 0) = static_cast<float>((c == 0 ? -5.0 : 5.0) + 0.5 * rng.normal());
    d.data.x(i, 1) = static_cast<float>((c == 1 ? shift_b_y : 0.0) + 0.5 * rng.normal());
    d.labels.of_row.push_back(c);
  }
  return d;
}

Reference reference_of(const LabelledDataset& d) {
  Reference ref;
  ref.name = "ref.csv";
  ref.rows = d.data.x;
  ref.columns = d.data.columns;
  ref.labels = d.labels;
  return ref;
}

EvalConfig quick() {
  EvalConfig c;
  c.pairs = 64;
  return c;
}

TEST(KnnClassify, MajorityOfFiveAndTiesGoToTheNearest) {
  Points fitted(6, 2);
  fitted << 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 10, 0;
  const std::vector<int32_t> cls = {0, 1, 1, 0, 0, 1};
  Points q(3, 2);
  q << 0.1, 0, 9, 0, 1.9, 0;
  // Query 0: neighbours 0 (c0), 1 (c1), 2 (c1), 3 (c0), 4 (c0): 3 votes to 2 for class 0.
  // Query 1: 10 (c1), 4 (c0), 3 (c0), 2 (c1), 1 (c1): class 1. Query 2: 2, 1, 3, 0, 4: c0 wins 3-2.
  EXPECT_EQ(knn_classify(fitted, cls, 2, q), (std::vector<int32_t>{0, 1, 0}));
  // k = 4 at 0.1: c0, c1, c1, c0 is a 2-2 tie; the nearest row (class 0) decides.
  EXPECT_EQ(knn_classify(fitted, cls, 2, q.topRows(1), 4), (std::vector<int32_t>{0}));
  // k = 2 at 0.6: rows 1 (c1, 0.4 away) and 0 (c0, 0.6 away) tie 1-1: class 1.
  Points q2(1, 2);
  q2 << 0.6, 0;
  EXPECT_EQ(knn_classify(fitted, cls, 2, q2, 2), (std::vector<int32_t>{1}));
  // k beyond the fitted rows uses them all; a class outside the range is refused.
  EXPECT_EQ(knn_classify(fitted.topRows(3), {0, 1, 1}, 2, q.topRows(1), 5),
            (std::vector<int32_t>{1}));
  EXPECT_THROW(knn_classify(fitted, {0, 1, 1, 0, 0, 2}, 2, q), Error);
}

TEST(EvaluateLabelled, CorrectLabelsScoreOneAndSwappedLabelsZero) {
  const Reference ref = reference_of(two_blobs(1500, 1));
  LabelledDataset s = two_blobs(600, 2);
  const Evaluation good = evaluate_labelled_samples(s.data.x, s.labels, ref, quick());
  ASSERT_TRUE(good.knn_accuracy.has_value());
  EXPECT_EQ(*good.knn_accuracy, 1.0);
  ASSERT_EQ(good.classes.size(), 2u);
  for (const ClassScore& c : good.classes) {
    EXPECT_EQ(c.n, 600);
    EXPECT_EQ(c.reference_rows, 1500);
    EXPECT_EQ(c.compared, 600);  // min(600, 1500 / 2)
    ASSERT_TRUE(c.swd_ratio.has_value());
    EXPECT_LT(*c.swd_ratio, 1.6) << c.name;
    EXPECT_GT(*c.swd_ratio, 0.6) << c.name;
  }
  // The overall scores are evaluate_samples' own, unchanged by the labels.
  const Evaluation plain = evaluate_samples(s.data.x, ref, quick());
  EXPECT_EQ(good.scores.swd_ratio, plain.scores.swd_ratio);
  EXPECT_EQ(good.label_column, "label");

  // The same points with the two names swapped: every sample sits among the other class.
  s.labels.classes = {"b", "a"};
  const Evaluation bad = evaluate_labelled_samples(s.data.x, s.labels, ref, quick());
  EXPECT_EQ(*bad.knn_accuracy, 0.0);
  for (const ClassScore& c : bad.classes) EXPECT_GT(*c.swd_ratio, 20.0) << c.name;
  EXPECT_EQ(bad.scores.swd_ratio, plain.scores.swd_ratio);
}

TEST(EvaluateLabelled, PerClassScoresUseEachClassesOwnRows) {
  const Reference ref = reference_of(two_blobs(1500, 3));
  // Class b drawn 1.5 std too high; class a right. 5-NN still puts every point in its blob.
  const LabelledDataset s = two_blobs(500, 4, 0.75);
  const Evaluation e = evaluate_labelled_samples(s.data.x, s.labels, ref, quick());
  ASSERT_EQ(e.classes.size(), 2u);
  EXPECT_EQ(e.classes[0].name, "a");
  EXPECT_LT(*e.classes[0].swd_ratio, 1.6);
  EXPECT_GT(*e.classes[1].swd_ratio, 4.0);
  EXPECT_EQ(*e.knn_accuracy, 1.0);

  // A class with one sample has no swd (null in JSON, "-" in text); a reference class no sample
  // has is listed with n = 0.
  LabelledDataset few = two_blobs(200, 5);
  few.labels.of_row.assign(size_t(few.data.x.rows()), 0);
  few.labels.of_row[7] = 1;
  const Evaluation f = evaluate_labelled_samples(few.data.x, few.labels, ref, quick());
  EXPECT_EQ(f.classes[1].n, 1);
  EXPECT_FALSE(f.classes[1].swd_ratio.has_value());
  const nlohmann::json j = nlohmann::json::parse(evaluation_json(f));
  EXPECT_TRUE(j["classes"][1]["swd_ratio"].is_null());
  EXPECT_EQ(j["classes"][1]["n"], 1);
  EXPECT_EQ(j["classes"][0]["reference_rows"], 1500);
  EXPECT_NE(evaluation_text(f).find("too few rows: 1 samples, 1500 reference"), std::string::npos);
}

TEST(EvaluateLabelled, AShapesClassesAreTheReference) {
  const Reference ref = resolve_labelled_reference("8gaussians", 0.1, "label");
  EXPECT_EQ(ref.labels.classes, shape_class_names(Shape::kEightGaussians));
  LabelledDataset s = make_labelled_shape(Shape::kEightGaussians, 4000, 0.1, 11);
  const Evaluation e = evaluate_labelled_samples(s.data.x, s.labels, ref, quick());
  EXPECT_GE(*e.knn_accuracy, 0.99);
  ASSERT_EQ(e.classes.size(), 8u);
  int64_t total = 0;
  for (const ClassScore& c : e.classes) {
    total += c.n;
    EXPECT_GT(c.reference_rows, 100000 / 8 * 9 / 10);  // the 100,000-row draw, about 1/8 each
    EXPECT_LT(*c.swd_ratio, 1.8) << c.name;
  }
  EXPECT_EQ(total, 4000);
  // Classes 0 and 1 named the other way round: 6 of 8 modes stay right.
  s.labels.classes = {"1", "0", "2", "3", "4", "5", "6", "7"};
  const double acc = *evaluate_labelled_samples(s.data.x, s.labels, ref, quick()).knn_accuracy;
  EXPECT_GT(acc, 0.70);
  EXPECT_LT(acc, 0.80);

  EXPECT_THROW(resolve_labelled_reference("swiss_roll", 0.1, "label"), UsageError);
}

TEST(EvaluateLabelled, ReportsKeepTheUnlabelledKeysAndAddTheClassOnes) {
  const Reference ref = reference_of(two_blobs(400, 6));
  const LabelledDataset s = two_blobs(150, 7);
  const nlohmann::json plain =
      nlohmann::json::parse(evaluation_json(evaluate_samples(s.data.x, ref, quick())));
  const Evaluation e = evaluate_labelled_samples(s.data.x, s.labels, ref, quick());
  const nlohmann::json j = nlohmann::json::parse(evaluation_json(e));
  for (auto it = plain.begin(); it != plain.end(); ++it) {
    ASSERT_TRUE(j.contains(it.key())) << it.key();
    if (it.value().is_number_float()) {  // MMD sums over threads: equal to rounding, not bits
      EXPECT_NEAR(j[it.key()].get<double>(), it.value().get<double>(),
                  1e-9 * std::abs(it.value().get<double>()))
          << it.key();
    } else {
      EXPECT_EQ(j[it.key()], it.value()) << it.key();
    }
  }
  EXPECT_FALSE(plain.contains("knn_accuracy"));
  EXPECT_EQ(j["label_column"], "label");
  EXPECT_EQ(j["knn_accuracy"], 1.0);
  EXPECT_EQ(j["classes"].size(), 2u);
  EXPECT_EQ(j["classes"][1]["name"], "b");
  EXPECT_EQ(j["classes"][1]["n"], 150);
  EXPECT_DOUBLE_EQ(j["classes"][1]["swd_ratio"].get<double>(), *e.classes[1].swd_ratio);
  const std::string text = evaluation_text(e);
  EXPECT_NE(text.find("knn_acc    1.000"), std::string::npos) << text;
  // Several runs: knn_accuracy and each class's swd_ratio get a mean and spread.
  const nlohmann::json sum = nlohmann::json::parse(summary_json({e, e}));
  EXPECT_EQ(sum["mean"]["knn_accuracy"], 1.0);
  EXPECT_DOUBLE_EQ(sum["mean"]["swd_ratio:class:a"].get<double>(), *e.classes[0].swd_ratio);
  EXPECT_EQ(sum["std"]["swd_ratio:class:a"], 0.0);
}

TEST(EvaluateLabelled, AClassTheReferenceLacksIsOneLineNamingBoth) {
  const Reference ref = reference_of(two_blobs(100, 8));
  LabelledDataset s = two_blobs(20, 9);
  s.labels.classes = {"a", "zebra"};
  try {
    evaluate_labelled_samples(s.data.x, s.labels, ref, quick());
    ADD_FAILURE() << "no error";
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "the samples' class \"zebra\" (20 rows) is not a class of ref.csv (its classes: a, "
              "b)");
  }
  Reference unlabelled = ref;
  unlabelled.labels = {};
  EXPECT_THROW(evaluate_labelled_samples(s.data.x, s.labels, unlabelled, quick()), Error);
  s.labels.of_row.pop_back();
  EXPECT_THROW(evaluate_labelled_samples(s.data.x, s.labels, ref, quick()), Error);
}

}  // namespace
}  // namespace diffuse
