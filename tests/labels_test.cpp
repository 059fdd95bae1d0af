// Tests of labelled CSVs (labels.h): the label column read beside the numbers, the class order,
// exact round trips through write_labelled_csv and the streaming writer, each defect named in one
// line, and the built-in shapes' classes (the same points as without, each class where its
// formula puts it). Not the unlabelled reader (csv_test.cpp) or the shapes' formulas
// (dataset_test.cpp).
#include "diffuse/labels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

using Names = std::vector<std::string>;

void put(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good());
}

// The message parse_labelled_csv throws for this text ("" when it does not throw).
std::string error_for(const std::string& text, const std::string& column = "label") {
  try {
    parse_labelled_csv(text, "f.csv", column);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// The class name of each row, in row order.
Names row_names(const Labels& l) {
  Names out;
  for (const int32_t k : l.of_row) out.push_back(l.classes[static_cast<size_t>(k)]);
  return out;
}

TEST(LabelledCsv, ReadsStringLabelsInAnyColumnBesideTheNumbers) {
  const LabelledDataset d = parse_labelled_csv(
      "# iris-like\n"
      "sepal, species ,petal\n"
      "5.1,setosa,1.4\n"
      "\n"
      " 7.0 , versicolor , 4.7\n"
      "6.3,virginica,6\r\n"
      "4.9,setosa,-1.5e-1\n",
      "f.csv", "species");
  EXPECT_EQ(d.data.columns, (Names{"sepal", "petal"}));
  Points want(4, 2);
  want << 5.1f, 1.4f, 7.0f, 4.7f, 6.3f, 6.0f, 4.9f, -0.15f;
  EXPECT_TRUE(d.data.x == want) << d.data.x;
  EXPECT_EQ(d.labels.column, "species");
  EXPECT_EQ(d.labels.classes, (Names{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(d.labels.of_row, (std::vector<int32_t>{0, 1, 2, 0}));
  EXPECT_EQ(d.labels.counts(), (std::vector<int64_t>{2, 1, 1}));
  EXPECT_EQ(d.labels.find("virginica"), 2);
  EXPECT_EQ(d.labels.find("Setosa"), -1);  // case is kept
}

TEST(LabelledCsv, IntegerLabelsSortNumericallyOtherwiseByBytes) {
  const LabelledDataset d =
      parse_labelled_csv("label,x\n10,1\n9,2\n-1,3\n2,4\n9,5\n", "f.csv", "label");
  EXPECT_EQ(d.labels.classes, (Names{"-1", "2", "9", "10"}));
  EXPECT_EQ(d.labels.of_row, (std::vector<int32_t>{3, 2, 0, 1, 2}));
  EXPECT_EQ(row_names(d.labels), (Names{"10", "9", "-1", "2", "9"}));
  // One non-integer (here "9.5") makes the whole order bytewise; uppercase sorts before lowercase.
  EXPECT_EQ(class_order({"10", "9", "9.5", "b", "B", "a"}),
            (Names{"10", "9", "9.5", "B", "a", "b"}));
  // Equal values keep both names, in byte order; beyond int64 is not an integer.
  EXPECT_EQ(class_order({"3", "03", "-2", "1"}), (Names{"-2", "1", "03", "3"}));
  EXPECT_EQ(class_order({"99999999999999999999", "1"}), (Names{"1", "99999999999999999999"}));
  EXPECT_EQ(class_order({"-", "1"}), (Names{"-", "1"}));
  // UTF-8 names sort after ASCII (bytes as unsigned).
  EXPECT_EQ(class_order({"\xC3\xA9t\xC3\xA9", "hiver"}), (Names{"hiver", "\xC3\xA9t\xC3\xA9"}));
}

TEST(LabelledCsv, EachDefectIsOneLineNamingFileLineAndColumn) {
  EXPECT_EQ(error_for("x,y,class\n1,2,a\n"),
            "f.csv:1: no column 'label' in the header; its columns are x, y, class");
  EXPECT_EQ(error_for("\n# c\n1,2,3\n"),
            "f.csv:3: no header line, so no label column 'label' (the first line is a row of "
            "numbers; a labelled file starts with a header naming its columns)");
  EXPECT_EQ(error_for("x,label,y\n1,a,2\n3, ,4\n"),
            "f.csv:3: field 2 (the label column 'label') is empty, expected a class name");
  EXPECT_EQ(error_for("x,label\n1,\n"),
            "f.csv:2: field 2 (the label column 'label') is empty, expected a class name");
  EXPECT_EQ(error_for("label,x,label\n"),
            "f.csv:1: the label column 'label' appears twice in the header (fields 1 and 3)");
  EXPECT_EQ(error_for("label\na\n"),
            "f.csv:1: the label column 'label' is the only column; no numeric columns are left for "
            "the features");
  EXPECT_EQ(error_for("x,label\n1,a\n2,b,3\n"),
            "f.csv:3: expected 2 fields, found 3 (the header on line 1 has 2)");
  EXPECT_EQ(error_for("label,x\na,1\nb\n"),
            "f.csv:3: expected 2 fields, found 1 (the header on line 1 has 2)");
  EXPECT_EQ(error_for("x,label\n1,a\nfoo,b\n"), "f.csv:3: field 1 'foo' is not a number");
  EXPECT_EQ(error_for("x,label\n1,a\nnan,b\n"),
            "f.csv:3: field 1 'nan' is NaN, expected a finite number");
  EXPECT_EQ(error_for("x,label\n1,a\x01z\n"),
            "f.csv:2: not a text CSV file (binary byte 0x01 at column 4)");
  EXPECT_EQ(error_for("x,label\n1,\xFF\n"),
            "f.csv:2: not a text CSV file (invalid UTF-8 at column 3)");
  EXPECT_EQ(error_for("x,label\n"), "f.csv:1: no data rows, only a header (line 1)");
  EXPECT_EQ(
      error_for("x,y\n1,2\n", "a very long label column name"),
      "f.csv:1: no column 'a very long label column name' in the header; its columns are x, y");
  // Every message is one line.
  for (const std::string text : {"x,y\n1,2\n", "1,2\n", "x,label\n1,\n", "label\na\n"}) {
    EXPECT_EQ(error_for(text).find('\n'), std::string::npos) << text;
  }
}

TEST(LabelledCsv, ReadsAFileAndItsHeaderAndTheUnlabelledReaderIsUnchanged) {
  test::TempDir dir;
  const std::string path = dir.file("l.csv");
  put(path, "\xEF\xBB\xBF\"x\",y,label\n0.5,1,cat\n2,3.25,dog\n-1,1e-3,cat\n");
  const LabelledDataset d = read_labelled_csv(path, "label");
  EXPECT_EQ(d.data.columns, (Names{"x", "y"}));
  Points want(3, 2);
  want << 0.5f, 1, 2, 3.25f, -1, 1e-3f;
  EXPECT_TRUE(d.data.x == want) << d.data.x;
  EXPECT_EQ(row_names(d.labels), (Names{"cat", "dog", "cat"}));
  EXPECT_EQ(read_csv_header(path), (Names{"x", "y", "label"}));
  // read_csv on the same file still says what it always said.
  try {
    read_csv(path);
    ADD_FAILURE() << "read_csv accepted a label column";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ":2: field 3 'cat' is not a number");
  }
  put(dir.file("n.csv"), "# c\n1,2\n3,4\n");
  EXPECT_TRUE(read_csv_header(dir.file("n.csv")).empty());
  EXPECT_EQ(
      [&]() -> std::string {  // a copy: e.what() dies with the exception
        try {
          read_labelled_csv(dir.file("missing.csv"), "label");
        } catch (const Error& e) {
          return e.what();
        }
        return "";
      }(),
      dir.file("missing.csv") + ": no such file");
}

TEST(LabelledCsv, WritesTheLabelLastAndReadsBackBitForBit) {
  test::TempDir dir;
  Rng rng(7);
  const int n = 3000;
  Points x(n, 3);
  Labels l;
  l.column = "digit class";
  l.classes = {"-3", "03", "3", "12"};  // as read: numeric order, ties in byte order
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < 3; ++j) x(i, j) = static_cast<float>(rng.normal() * 1e3);
    l.of_row.push_back(static_cast<int32_t>(rng.below(4)));
  }
  x(5, 1) = 1.4e-45f;
  x(6, 2) = -0.0f;
  write_labelled_csv(dir.file("w.csv"), x, {"a", "b", "c"}, l);
  const LabelledDataset back = read_labelled_csv(dir.file("w.csv"), "digit class");
  EXPECT_EQ(read_csv_header(dir.file("w.csv")), (Names{"a", "b", "c", "digit class"}));
  ASSERT_EQ(back.data.x.rows(), n);
  EXPECT_EQ(std::memcmp(back.data.x.data(), x.data(), sizeof(float) * x.size()), 0);
  EXPECT_EQ(back.labels.classes, l.classes);
  EXPECT_EQ(back.labels.of_row, l.of_row);
  const std::string text = test::slurp(dir.file("w.csv"));
  EXPECT_EQ(text.substr(0, text.find('\n')), "a,b,c,digit class");

  // No feature names: x1, x2, x3.
  Labels two = l;
  two.of_row.resize(2);
  write_labelled_csv(dir.file("u.csv"), x.topRows(2), {}, two);
  EXPECT_EQ(read_csv_header(dir.file("u.csv")), (Names{"x1", "x2", "x3", "digit class"}));
}

TEST(LabelledCsv, TheWriterRefusesWhatCannotBeReadBackAndLeavesNoFile) {
  test::TempDir dir;
  const std::string path = dir.file("bad.csv");
  Points x(2, 1);
  x << 1, 2;
  const auto error_of = [&](const std::vector<std::string>& columns, const Labels& l) {
    try {
      write_labelled_csv(path, x, columns, l);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_of({"v"}, Labels{"label", {"a,b"}, {0, 0}}),
            path +
                ": class 0 name \"a,b\" cannot be written to a CSV: it has a comma or a line "
                "break");
  EXPECT_EQ(error_of({"v"}, Labels{"label", {"a", " b"}, {0, 1}}),
            path +
                ": class 1 name \" b\" cannot be written to a CSV: it has spaces at an end, "
                "which a reader trims");
  EXPECT_EQ(error_of({"v"}, Labels{"label", {"a"}, {0, 1}}),
            path + ": not written: row 2 has class index 1, expected 0 to 0");
  EXPECT_EQ(error_of({"v"}, Labels{"label", {"a"}, {0}}), path + ": 1 labels for 2 rows");
  EXPECT_EQ(error_of({"label"}, Labels{"label", {"a"}, {0, 0}}),
            path + ": the label column \"label\" has the name of a feature column");
  EXPECT_EQ(error_of({"v"}, Labels{"", {"a"}, {0, 0}}), path + ": the label column has no name");
  x(1, 0) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(error_of({"v"}, Labels{"label", {"a"}, {0, 0}}),
            path + ": not written: row 2, column 1 is NaN");
  EXPECT_FALSE(test::file_exists(path));
}

TEST(LabelledCsv, StreamsLabelsAcrossBlocksAndChunkBoundaries) {
  test::TempDir dir;
  const std::string path = dir.file("big.csv");
  // ~7 MB: more than one 4 MiB read chunk, so rows and labels cross a chunk boundary.
  const int blocks = 4, per_block = 100000;
  {
    CsvWriter w(path, 2, {"x", "y"}, "label", {"inner", "outer", "middle"});
    for (int b = 0; b < blocks; ++b) {
      Points x(per_block, 2);
      std::vector<int32_t> l(per_block);
      for (int i = 0; i < per_block; ++i) {
        const int row = b * per_block + i;
        x(i, 0) = static_cast<float>(row);
        x(i, 1) = static_cast<float>(-row) / 8.0f;
        l[size_t(i)] = row % 7 == 0 ? 2 : row % 2;
      }
      w.write(x, l);
    }
    EXPECT_THROW(w.write(Points::Zero(1, 2)), Error);  // rows without labels
    w.commit();
  }
  const LabelledDataset d = read_labelled_csv(path, "label");
  ASSERT_EQ(d.data.x.rows(), blocks * per_block);
  // Sorted bytewise: inner, middle, outer.
  EXPECT_EQ(d.labels.classes, (Names{"inner", "middle", "outer"}));
  int64_t wrong = 0;
  for (int row = 0; row < blocks * per_block; ++row) {
    const int want = row % 7 == 0 ? 1 : (row % 2 == 0 ? 0 : 2);
    wrong += d.labels.of_row[size_t(row)] != want || d.data.x(row, 0) != float(row) ||
             d.data.x(row, 1) != static_cast<float>(-row) / 8.0f;
  }
  EXPECT_EQ(wrong, 0);
  const std::vector<int64_t> counts = d.labels.counts();
  EXPECT_EQ(counts[1], (blocks * per_block + 6) / 7);
  EXPECT_EQ(counts[0] + counts[1] + counts[2], blocks * per_block);
}

TEST(LabelledCsv, RowsOfClassKeepsTableOrder) {
  Points x(5, 2);
  x << 0, 0, 1, 10, 2, 20, 3, 30, 4, 40;
  const Labels l{"label", {"a", "b"}, {1, 0, 1, 1, 0}};
  const Points b = rows_of_class(x, l, 1);
  Points want(3, 2);
  want << 0, 0, 2, 20, 3, 30;
  EXPECT_TRUE(b == want) << b;
  EXPECT_EQ(rows_of_class(x, l, 0).rows(), 2);
  EXPECT_EQ(rows_of_class(x, l, 0)(1, 1), 40);
  EXPECT_EQ(rows_of_class(x, l, 5).rows(), 0);
  EXPECT_THROW(rows_of_class(x.topRows(4), l, 0), Error);
}

TEST(LabelsInMemory, NamesGetTheStableOrderAndEachRowItsClass) {
  const Labels l = labels_from_names({"10", "9", "10", "-1", "9"}, "kind", "samples");
  EXPECT_EQ(l.column, "kind");
  EXPECT_EQ(l.classes, (Names{"-1", "9", "10"}));  // integers: numeric order
  EXPECT_EQ(l.of_row, (std::vector<int32_t>{2, 1, 2, 0, 1}));
  const Labels s = labels_from_names({"b", "a", "10", "b"}, "kind", "samples");
  EXPECT_EQ(s.classes, (Names{"10", "a", "b"}));  // otherwise byte order
  EXPECT_EQ(row_names(s), (Names{"b", "a", "10", "b"}));
  try {
    labels_from_names({"a", "b,c"}, "kind", "samples");
    ADD_FAILURE() << "a comma cannot be a class";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("samples: row 2: class name 'b,c' cannot be a class: ", 0), 0u) << what;
  }
}

TEST(LabelsInMemory, ANumericColumnIsTakenOutOfTheFeatures) {
  Dataset d;
  d.x.resize(4, 3);
  d.x << 0.5f, 2, 10, 1.5f, 0, 20, 2.5f, 2, 30, 3.5f, 0.25f, 40;
  d.columns = {"a", "kind", "c"};
  const Labels l = take_numeric_label_column(d, "kind", "array");
  EXPECT_EQ(l.classes, (Names{"0", "0.25", "2"}));  // 2.0 is "2"; 0.25 is not an integer
  EXPECT_EQ(row_names(l), (Names{"2", "0", "2", "0.25"}));
  EXPECT_EQ(d.columns, (Names{"a", "c"}));
  Points want(4, 2);
  want << 0.5f, 10, 1.5f, 20, 2.5f, 30, 3.5f, 40;
  EXPECT_TRUE(d.x == want) << d.x;
  Dataset bare;
  bare.x = Points::Zero(4, 2);
  try {
    take_numeric_label_column(bare, "kind", "array");
    ADD_FAILURE() << "an array without column names has no label column";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--label-column: array has no column \"kind\" (it has no column names)");
  }
}

bool same_bits(const Points& a, const Points& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

TEST(LabelledSplit, TheSameRowsAsAnUnlabelledSplitEachWithItsLabel) {
  // Feature 0 is the row number, so each part says which rows it got.
  const int n = 1001;
  LabelledDataset d;
  d.data.x.resize(n, 2);
  d.data.columns = {"row", "v"};
  d.labels = {"label", {"a", "b", "c"}, {}};
  for (int i = 0; i < n; ++i) {
    d.data.x(i, 0) = float(i);
    d.data.x(i, 1) = float(i % 13);
    d.labels.of_row.push_back(i % 3);
  }
  const Split plain = split_rows(d.data, 0.25, 42);
  const LabelledSplit s = split_labelled_rows(d, 0.25, 42);
  EXPECT_TRUE(s.train.data.x == plain.train.x);
  EXPECT_TRUE(s.test.data.x == plain.test.x);
  EXPECT_EQ(s.test.data.x.rows(), 250);  // round(0.25 * 1001)
  for (const LabelledDataset* part : {&s.train, &s.test}) {
    EXPECT_EQ(part->data.columns, d.data.columns);
    EXPECT_EQ(part->labels.classes, d.labels.classes);
    ASSERT_EQ(Eigen::Index(part->labels.of_row.size()), part->data.x.rows());
    for (Eigen::Index i = 0; i < part->data.x.rows(); ++i) {
      ASSERT_EQ(part->labels.of_row[size_t(i)], int(part->data.x(i, 0)) % 3);
    }
  }
  EXPECT_THROW(split_labelled_rows(d, 1.5, 42), UsageError);
  d.labels.of_row.pop_back();
  EXPECT_THROW(split_labelled_rows(d, 0.25, 42), Error);
}

TEST(ShapeLabels, ThePointsAreBitIdenticalToTheUnlabelledOnes) {
  for (const Shape s : all_shapes()) {
    if (shape_class_count(s) == 0) continue;
    for (const int n : {1, 2, 7, 1001}) {
      for (const uint64_t seed : {0ull, 3ull, 123456789ull}) {
        std::vector<int32_t> cls;
        const Points labelled = make_shape(s, n, 0.1, seed, &cls);
        EXPECT_TRUE(same_bits(labelled, make_shape(s, n, 0.1, seed)))
            << to_string(s) << " n=" << n << " seed=" << seed;
        ASSERT_EQ(cls.size(), size_t(n));
        for (const int32_t k : cls) ASSERT_TRUE(k >= 0 && k < shape_class_count(s));
      }
    }
  }
  const LabelledDataset d = make_labelled_shape(Shape::kEightGaussians, 500, 0.1, 9);
  EXPECT_TRUE(same_bits(d.data.x, make_shape(Shape::kEightGaussians, 500, 0.1, 9)));
  EXPECT_EQ(d.data.columns, (Names{"x", "y"}));
  EXPECT_EQ(d.labels.column, "label");
  EXPECT_EQ(d.labels.classes, (Names{"0", "1", "2", "3", "4", "5", "6", "7"}));
  EXPECT_EQ(shape_class_names(Shape::kTwentyFiveGaussians).size(), 25u);
  EXPECT_EQ(class_order(shape_class_names(Shape::kTwentyFiveGaussians)),
            shape_class_names(Shape::kTwentyFiveGaussians));  // "10" after "9": class k is "k"
}

TEST(ShapeLabels, EachClassIsWhereItsFormulaPutsIt) {
  constexpr double kPi = std::numbers::pi;
  const int n = 4001;
  std::vector<int32_t> c;
  // Mixtures at small noise: the class is the nearest centre, and every component is used.
  for (const Shape s : {Shape::kEightGaussians, Shape::kTwentyFiveGaussians}) {
    const Points x = make_shape(s, n, 0.05, 2, &c);
    const Points centres = shape_modes(s, 0.05).centres;
    int wrong = 0;
    std::vector<int> count(size_t(centres.rows()), 0);
    for (int i = 0; i < n; ++i) {
      Eigen::Index nearest = 0;
      (centres.rowwise() - x.row(i)).rowwise().squaredNorm().minCoeff(&nearest);
      wrong += nearest != c[size_t(i)];
      ++count[size_t(c[size_t(i)])];
    }
    EXPECT_EQ(wrong, 0) << to_string(s);
    EXPECT_GT(*std::min_element(count.begin(), count.end()), n / centres.rows() / 2);
  }
  // 8gaussians class k at angle 2 pi k / 8: class 2 is at (0, 2).
  {
    const Points x = make_shape(Shape::kEightGaussians, n, 0.0, 4, &c);
    for (int i = 0; i < n; ++i) {
      const double a = 2 * kPi * c[size_t(i)] / 8;
      ASSERT_NEAR(x(i, 0), 2 * std::cos(a), 1e-6);
      ASSERT_NEAR(x(i, 1), 2 * std::sin(a), 1e-6);
    }
  }
  // Moons without noise: class 0 on the unit circle about (0, 0) (upper), class 1 on the one about
  // (1, 0.5) (lower); n/2 in class 0 (the odd one out in class 1), after the shuffle.
  {
    const Points x = make_shape(Shape::kMoons, n, 0.0, 5, &c);
    int zeros = 0;
    for (int i = 0; i < n; ++i) {
      const double cx = c[size_t(i)] == 0 ? 0.0 : 1.0, cy = c[size_t(i)] == 0 ? 0.0 : 0.5;
      ASSERT_NEAR(std::hypot(x(i, 0) - cx, x(i, 1) - cy), 1.0, 1e-5) << i;
      ASSERT_TRUE(c[size_t(i)] == 0 ? x(i, 1) >= -1e-6 : x(i, 1) <= 0.5 + 1e-6) << i;
      zeros += c[size_t(i)] == 0;
    }
    EXPECT_EQ(zeros, n / 2);
  }
  // Circles without noise: class 0 at radius 1, class 1 at radius 0.5.
  {
    const Points x = make_shape(Shape::kCircles, n, 0.0, 6, &c);
    for (int i = 0; i < n; ++i) {
      ASSERT_NEAR(std::hypot(x(i, 0), x(i, 1)), c[size_t(i)] == 0 ? 1.0 : 0.5, 1e-5) << i;
    }
  }
  // Checkerboard without noise: class k is the k-th dark square counted row by row from the
  // bottom left (square (col, row) = (2 (k % 2) + row % 2, k / 2)).
  {
    const Points x = make_shape(Shape::kCheckerboard, n, 0.0, 7, &c);
    for (int i = 0; i < n; ++i) {
      const int col = static_cast<int>(std::floor((x(i, 0) + 4) / 2));
      const int row = static_cast<int>(std::floor((x(i, 1) + 4) / 2));
      ASSERT_EQ(c[size_t(i)], row * 2 + col / 2) << x.row(i);
      ASSERT_EQ((col + row) % 2, 0);
    }
  }
  // Spiral without noise: r = theta / pi, the inner turn (class 0) has r < 2.
  {
    const Points x = make_shape(Shape::kSpiral, n, 0.0, 8, &c);
    int inner = 0;
    for (int i = 0; i < n; ++i) {
      const double r = std::hypot(x(i, 0), x(i, 1));
      ASSERT_EQ(c[size_t(i)], r < 2.0 ? 0 : 1) << r;
      inner += c[size_t(i)] == 0;
    }
    // theta = 4 pi sqrt(u) < 2 pi when u < 1/4: a quarter of the points (binomial sd ~27).
    EXPECT_NEAR(inner, n / 4.0, 5 * 27.4);
  }
}

TEST(ShapeLabels, ShapesWithoutClassesAreRefusedNamingLabels) {
  for (const Shape s : {Shape::kSwissRoll, Shape::kSCurve}) {
    EXPECT_EQ(shape_class_count(s), 0);
    std::vector<int32_t> c;
    try {
      make_shape(s, 10, 0.1, 1, &c);
      ADD_FAILURE() << to_string(s);
    } catch (const UsageError& e) {
      EXPECT_EQ(std::string(e.what()),
                "--labels: " + to_string(s) +
                    " has no natural classes (one continuous curve); shapes with classes: moons, "
                    "circles, checkerboard, 8gaussians, 25gaussians, spiral");
    }
    EXPECT_THROW(make_labelled_shape(s, 10, 0.1, 1), UsageError);
    EXPECT_TRUE(shape_class_names(s).empty());
  }
}

}  // namespace
}  // namespace diffuse
