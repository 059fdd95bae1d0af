// Scoring samples against a reference, as `diffuse eval` and the Python module do: resolving the
// reference (a built-in shape name or a CSV file), the protocol (standardized units, the floor,
// repeated pairs), every score (sliced Wasserstein, MMD, per-column W1, correlations, copy_share,
// mode coverage) and the JSON / text reports. The metrics themselves live in metrics.h. Not a
// plotting or statistics library; no file is written here.
//
// The protocol, one rule for every reference:
//  - Units: every score is computed in the reference's standardized units: each column minus the
//    reference's mean, divided by the reference's std (a constant column: divided by 1). A CSV
//    reference uses its rows; a built-in shape uses a fixed 100,000-point i.i.d. draw of itself,
//    so that a CSV of a shape and the shape's name score alike and no column's units decide.
//  - Size: scores compare m rows with m rows: m = N (the samples) for a shape, and
//    m = min(N, floor(R / 2)) for a CSV of R rows (the samples are then a random m-subset).
//  - Floor: the same distance between two independent m-row samples of the reference: fresh
//    i.i.d. draws of a shape (moons and circles are drawn i.i.d. here, not evenly spaced as
//    `diffuse data` writes them, because a model's samples are i.i.d.: an evenly spaced pair would
//    give an optimistic floor), or two disjoint random m-row subsets of a CSV.
//  - Pairs: `pairs` times, a target B and an honest sample A are drawn, with one set of projection
//    directions; swd = mean of swd(S, B), swd_floor = mean of swd(A, B), swd_ratio = swd / floor.
//    Sharing B and the directions between score and floor cancels most of the estimator's noise.
//  - Classes (evaluate_labelled_samples, `eval --label-column`): the same units as the whole; per
//    class, the class's samples against the class's reference rows (a shape's: its rows of the
//    fixed 100,000-point draw) by the CSV rule (m = min(n_c, floor(R_c / 2)), disjoint subsets for
//    the floor), `pairs` pairs; and knn_accuracy, the share of samples whose label the majority of
//    their 5 nearest reference rows (standardized; at most 50,000 rows, a fixed random subset of
//    larger references; a shape: the first 20,000 rows of that draw) agrees with.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/labels.h"
#include "diffuse/metrics.h"
#include "diffuse/tensor.h"

namespace diffuse {

// The evaluation's settings; the CLI's `eval` options default to these (one source of truth).
struct EvalConfig {
  double noise = ShapeConfig{}.noise;  // of a built-in shape reference
  uint64_t seed = 1000;                // of the reference draws, subsets and projection directions
  // (score, floor) pairs averaged, and projection directions per pair. The estimator's noise is
  // mostly the draws' (two i.i.d. samples differ a lot), not the directions': many pairs with few
  // directions each. Measured on 10,000 samples, four eval seeds: 16 x 512 moved swd_ratio by
  // 11-21%, 128 x 32 by 3-7%, 384 x 16 by 2-3% (docs/QUALITY.md).
  int pairs = 384;
  int directions = 16;
  int mmd_pairs = 3;  // MMD is O(n^2): fewer pairs, at most 5,000 rows each
};

// A resolved reference: a built-in shape (drawn on demand) or the rows of a CSV file.
struct Reference {
  std::string name;                  // the shape name or the path, for messages and reports
  std::optional<Shape> shape;        // set for a built-in shape
  double noise = 0.1;                // of the shape
  Points rows;                       // the CSV's rows (empty for a shape)
  std::vector<std::string> columns;  // column names: the CSV header, or x, y for a shape
  // With a label column (resolve_labelled_reference): the class names, and for a CSV each row's
  // class (of_row is empty for a shape: its classes come with its draws). Empty column: none.
  Labels labels;
  int64_t dim() const { return shape ? 2 : rows.cols(); }
};

// A shape name or a CSV path (as load_data decides). Throws UsageError for an unknown name
// (listing the shapes) and Error for an unreadable file or one with fewer than 4 rows.
Reference resolve_reference(const std::string& against, double noise);
// The same with classes: a CSV's label column `label_column` (read_labelled_csv_checked's errors:
// a missing column is a UsageError naming --label-column), or a built-in shape's classes ("0",
// "1", ...; UsageError naming --against for swiss_roll and s_curve).
Reference resolve_labelled_reference(const std::string& against, double noise,
                                     const std::string& label_column);

// `diffuse eval --against`'s reference: resolve_reference, or with a label column (not empty)
// resolve_labelled_reference.
Reference resolve_eval_reference(const std::string& against, double noise,
                                 const std::string& label_column);
// A reference of rows in memory (the Python module's arrays), called `name` in reports and
// messages; its columns named x0, x1, ... unless `columns` names each one; `labels` (optional, one
// per row) its classes. Throws Error naming it when it has fewer than 4 rows.
Reference reference_from_rows(const std::string& name, Points rows,
                              std::vector<std::string> columns = {}, Labels labels = {});

// Per column, in standardized units: 1-D Wasserstein-1 between the samples' and the reference's
// column, its floor (between two reference samples), and their ratio (1 = as good as fresh data).
struct ColumnScore {
  std::string name;
  double w1 = 0, w1_floor = 0, w1_ratio = 0;
  double mean_shift = 0;  // mean of the samples' column minus the reference's (standardized)
};

// One class's scores (evaluate_labelled_samples). The swd fields are unset when the class has
// fewer than 2 samples or fewer than 4 reference rows.
struct ClassScore {
  std::string name;
  int64_t n = 0;               // samples with this label
  int64_t reference_rows = 0;  // reference rows of this class
  int64_t compared = 0;        // m: rows per side in each comparison
  std::optional<double> swd, swd_floor, swd_ratio;
};

struct Evaluation {
  EvalResult scores;     // swd, swd_floor, swd_ratio, mmd, mmd_floor, n (samples), coverage
  int64_t compared = 0;  // m: rows per side in each comparison
  int pairs = 0;
  std::string reference;
  std::vector<ColumnScore> columns;
  // Largest |corr(samples) - corr(reference)| over column pairs (i < j), the pair, and the same
  // for two reference samples (its floor). 0 and (-1, -1) for one column.
  double corr_max_diff = 0, corr_max_diff_floor = 0;
  int corr_i = -1, corr_j = -1;
  // With a training file: the share of samples nearer (standardized) to their nearest training
  // row than 95% of the held-out rows are to theirs. Honest samples: about 0.05; copies: ~1.
  std::optional<double> copy_share;
  std::optional<double> copy_threshold;  // that 5th percentile distance (standardized units)
  // With labels: the label column's name, every reference class in its order, and the share of
  // samples whose label their 5 nearest reference rows' majority agrees with (1: every sample lies
  // among its own class; about 1/K for labels drawn at random).
  std::string label_column;
  std::vector<ClassScore> classes;
  std::optional<double> knn_accuracy;
};

// Scores samples (N, D) against the reference, with copy_share when train (T, D) is given.
// Deterministic for a config. Throws Error when the dimensions differ or inputs are not finite.
Evaluation evaluate_samples(const Points& samples, const Reference& ref, const EvalConfig& config,
                            const Points* train = nullptr);
// evaluate_samples plus the per-class scores and knn_accuracy; labels (samples.rows() rows) are
// matched to the reference's classes by name. Throws UsageError for a sample class the reference
// does not have ("the samples' class 'x' (12 rows) is not a class of REF (its classes: a, b)"),
// Error for an unlabelled reference or a label count other than samples.rows().
Evaluation evaluate_labelled_samples(const Points& samples, const Labels& labels,
                                     const Reference& ref, const EvalConfig& config,
                                     const Points* train = nullptr);

// One table of samples scored as `diffuse eval` scores each file: evaluate_labelled_samples when
// labels is given, else evaluate_samples. Throws Error naming `source` (the file, or "samples")
// for fewer than 2 samples, and UsageError naming it for a sample class the reference lacks.
Evaluation evaluate_sample_table(const std::string& source, const Points& samples,
                                 const Labels* labels, const Reference& ref,
                                 const EvalConfig& config, const Points* train = nullptr);

// The neighbours of the knn_accuracy classifier.
inline constexpr int kKnnNeighbours = 5;
// For each row of query (Q, D), the majority class among its k nearest rows of fitted (F, D)
// (Euclidean; classes[F] in [0, num_classes)); a tie goes to the tied class with the nearest row.
std::vector<int32_t> knn_classify(const Points& fitted, const std::vector<int32_t>& classes,
                                  int num_classes, const Points& query, int k = kKnnNeighbours);

// copy_share alone (used by evaluate_samples): all three in the same units, already standardized.
// threshold_out receives the 5th percentile of the held-out rows' nearest-training-row distances.
double copy_share(const Points& samples, const Points& heldout, const Points& train,
                  double* threshold_out = nullptr);

// The i.i.d. draws the floor uses for a shape (see above); other shapes as make_shape. With
// classes (a shape that has them), each point's class as make_shape gives it (moons and circles:
// 0 the outer half).
Points draw_shape_iid(Shape s, int n, double noise, uint64_t seed,
                      std::vector<int32_t>* classes = nullptr);

// One JSON object (keys: swd, swd_floor, swd_ratio, mmd, mmd_floor, n, [modes, modes_hit,
// mode_coverage, in_mode_share], compared, pairs, units, reference, columns[], worst_column,
// corr_max_diff, corr_max_diff_floor, corr_pair, [copy_share, copy_threshold], [label_column,
// knn_accuracy, classes[] of {name, n, reference_rows, compared, swd, swd_floor, swd_ratio}
// (null when unset)]) and a text table.
std::string evaluation_json(const Evaluation& e);
std::string evaluation_text(const Evaluation& e);

// Several evaluations of the same model (sampling or training seeds): every score's mean and
// spread (sample standard deviation, n - 1), as JSON {"runs": [...], "mean": {...}, "std": {...}}
// and as text ("swd_ratio 1.52 ± 0.08 (3 runs)"). With labels also knn_accuracy and
// "swd_ratio:class:NAME" for each class scored in every run.
std::string summary_json(const std::vector<Evaluation>& runs);
std::string summary_text(const std::vector<Evaluation>& runs);

}  // namespace diffuse
