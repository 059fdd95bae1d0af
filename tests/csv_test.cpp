// Tests of read_csv / write_csv: accepted layouts, exact float round trips, streaming across chunk
// boundaries, and every malformed input rejected with "FILE:LINE: what". Not the shapes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "diffuse/dataset.h"
#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/rng.h"
#include "test_util.h"

namespace diffuse {
namespace {

void put(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good());
}

// The message read_csv throws for a file with these bytes ("" when it does not throw).
class CsvErrors : public ::testing::Test {
 protected:
  std::string error_for(const std::string& bytes) {
    const std::string path = dir_.file("bad.csv");
    put(path, bytes);
    return error_at(path);
  }
  static std::string error_at(const std::string& path) {
    try {
      read_csv(path);
    } catch (const UsageError& e) {
      return std::string("UsageError instead of Error: ") + e.what();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  std::string at(int line) const {
    return dir_.file("bad.csv") + ":" + std::to_string(line) + ": ";
  }
  test::TempDir dir_;
};

TEST(ReadCsv, HeaderCommentsBlankLinesAndSpaces) {
  test::TempDir dir;
  const std::string path = dir.file("a.csv");
  put(path,
      "# produced by hand\n"
      "\n"
      "  x , y,z\n"
      "1,2,3\n"
      "   # an indented comment\n"
      "  \t\n"
      " -4.5 ,\t+5e-1 , .25\n"
      "1e3,-0,7.\n");  // no trailing newline issue: this one has one
  const Dataset d = read_csv(path);
  EXPECT_EQ(d.columns, (std::vector<std::string>{"x", "y", "z"}));
  ASSERT_EQ(d.x.rows(), 3);
  ASSERT_EQ(d.x.cols(), 3);
  Points want(3, 3);
  want << 1, 2, 3, -4.5f, 0.5f, 0.25f, 1000, 0, 7;
  EXPECT_TRUE(d.x == want) << d.x;
}

TEST(ReadCsv, NoHeaderCrlfBomAndMissingFinalNewline) {
  test::TempDir dir;
  const std::string path = dir.file("b.csv");
  put(path,
      "\xEF\xBB\xBF"
      "0.5,1\r\n2,3.25\r\n\r\n-1,1e-3");
  const Dataset d = read_csv(path);
  EXPECT_TRUE(d.columns.empty());
  Points want(3, 2);
  want << 0.5f, 1, 2, 3.25f, -1, 1e-3f;
  EXPECT_TRUE(d.x == want) << d.x;
}

TEST(ReadCsv, QuotedHeaderNamesSingleColumnAndTinyValues) {
  test::TempDir dir;
  put(dir.file("q.csv"), "\"a\",\"b c\"\n1,2\n");
  EXPECT_EQ(read_csv(dir.file("q.csv")).columns, (std::vector<std::string>{"a", "b c"}));
  // A header field may be a number as long as not all are; values below float range round to 0.
  put(dir.file("one.csv"), "value\n1e-50\n-2\n1.4e-45\n");
  const Dataset d = read_csv(dir.file("one.csv"));
  EXPECT_EQ(d.columns, std::vector<std::string>{"value"});
  ASSERT_EQ(d.x.rows(), 3);
  EXPECT_EQ(d.x(0, 0), 0.0f);
  EXPECT_EQ(d.x(1, 0), -2.0f);
  EXPECT_EQ(d.x(2, 0), std::numeric_limits<float>::denorm_min());
  put(dir.file("mixed.csv"), "t,1\n5,6\n");
  EXPECT_EQ(read_csv(dir.file("mixed.csv")).columns, (std::vector<std::string>{"t", "1"}));
}

// Floats of every magnitude, including subnormals, -0 and the largest float.
Points awkward_points(int n, int d, uint64_t seed) {
  Rng rng(seed);
  Points x(n, d);
  for (int i = 0; i < n; ++i) {
    for (int j = 0; j < d; ++j) {
      const double mag = std::pow(10.0, -40.0 + 78.0 * rng.uniform());
      x(i, j) = static_cast<float>((rng.uniform() < 0.5 ? -1 : 1) * mag);
    }
  }
  x(0, 0) = std::numeric_limits<float>::max();
  x(n - 1, d - 1) = -0.0f;
  x(n / 2, 0) = std::numeric_limits<float>::denorm_min();
  x(1, d - 1) = 0.1f;
  return x;
}

bool bitwise_equal(const Points& a, const Points& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

TEST(WriteCsv, RoundTripsFloatsExactlyForD1AndD16) {
  test::TempDir dir;
  for (int d : {1, 16}) {
    const Points x = awkward_points(2000, d, 100 + d);
    std::vector<std::string> names;
    for (int j = 0; j < d; ++j) names.push_back(std::string("c").append(std::to_string(j)));
    write_csv(dir.file("h.csv"), x, names);
    const Dataset with = read_csv(dir.file("h.csv"));
    EXPECT_TRUE(bitwise_equal(with.x, x)) << "D=" << d;
    EXPECT_EQ(with.columns, names);

    write_csv(dir.file("n.csv"), x, {});
    const Dataset without = read_csv(dir.file("n.csv"));
    EXPECT_TRUE(bitwise_equal(without.x, x)) << "D=" << d;
    EXPECT_TRUE(without.columns.empty());
  }
}

TEST(WriteCsv, WritesTheShortestTextThatReadsBackAndAHeader) {
  test::TempDir dir;
  Points x(4, 2);
  x << 0.1f, -3, 1e-20f, 123456789.0f, 5.1f, 100000, 7.9f, 0.0001f;
  write_csv(dir.file("t.csv"), x, {"x", "y"});
  // A value read as 5.1 is written as 5.1 (printf's %.9g gave 5.0999999), integers as integers
  // (a float holds 123456789 as 123456792).
  EXPECT_EQ(test::slurp(dir.file("t.csv")),
            "x,y\n0.1,-3\n1e-20,123456792\n5.1,100000\n7.9,0.0001\n");
}

TEST(WriteCsv, RefusesWhatCannotBeReadBackAndLeavesNoFile) {
  test::TempDir dir;
  Points x(2, 2);
  x << 1, 2, 3, std::nanf("");
  try {
    write_csv(dir.file("nan.csv"), x, {});
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("nan.csv") + ": not written: row 2, column 2 is NaN");
  }
  x(1, 1) = 4;
  EXPECT_THROW(write_csv(dir.file("w.csv"), x, {"only_one"}), Error);
  EXPECT_THROW(write_csv(dir.file("w.csv"), x, {"a,b", "c"}), Error);
  EXPECT_THROW(write_csv(dir.file("w.csv"), x, {" a", "c"}), Error);  // a reader trims it
  // A newline in a name (from a crafted checkpoint) is escaped: the message stays one line.
  try {
    write_csv(dir.file("w.csv"), x, {"a\nb", "c"});
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.file("w.csv") +
                                         ": column 1 name \"a\\nb\" cannot be written to a CSV "
                                         "header: it has a comma or a line break");
  }
  EXPECT_THROW(write_csv(dir.file("missing/w.csv"), x, {}), Error);
  // Nothing was left behind: no target, no temporary file.
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));

  // An existing file is replaced whole.
  put(dir.file("w.csv"), "old contents that are longer than the new ones\n");
  write_csv(dir.file("w.csv"), x, {});
  EXPECT_EQ(test::slurp(dir.file("w.csv")), "1,2\n3,4\n");
}

// An OutputStopScope stops a file mid-write (CsvWriter writes 1 MiB at a time): Interrupted names
// it, its temporary file is gone and the old file is untouched. A nested scope that never stops
// (what the CLI's training uses to save its resumable checkpoint) lets a file finish.
TEST(OutputStopScope, StopsAFileMidWriteAndLeavesTheOldOne) {
  test::TempDir dir;
  const std::string out = dir.file("w.csv");
  put(out, "old\n");
  Points x = Points::Constant(400000, 2, 0.123456789f);  // ~9 MiB of text: several writes
  int asked = 0;
  {
    const OutputStopScope scope([&asked] { return ++asked > 3; });  // the 4th question stops
    try {
      write_csv(out, x, {"a", "b"});
      FAIL() << "no exception";
    } catch (const Interrupted& e) {
      EXPECT_EQ(std::string(e.what()), "interrupted; " + out + " was not written");
    }
    EXPECT_EQ(asked, 4);  // the constructor, the header and one 1 MiB chunk went through
    EXPECT_EQ(test::slurp(out), "old\n");
    EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()), {}), 1);
    {
      const OutputStopScope finish(nullptr);  // innermost wins
      EXPECT_FALSE(OutputStopScope::stop_requested());
      write_csv(out, x.topRows(2), {"a", "b"});
    }
    EXPECT_EQ(test::slurp(out), "a,b\n0.12345679,0.12345679\n0.12345679,0.12345679\n");
    EXPECT_TRUE(OutputStopScope::stop_requested());  // the outer scope again
    EXPECT_THROW(write_csv(dir.file("new.csv"), x.topRows(2), {}), Interrupted);
    EXPECT_FALSE(std::filesystem::exists(dir.file("new.csv")));
  }
  EXPECT_FALSE(OutputStopScope::stop_requested());  // no scope: nothing asks
  write_csv(dir.file("new.csv"), x.topRows(1), {});
  EXPECT_TRUE(std::filesystem::exists(dir.file("new.csv")));
}

// Every header read_csv accepts is written back so that it reads back the same: names that are
// all numbers ("1","2" would otherwise be a data row), a first name starting with '#' (a comment),
// names that keep quotes of their own, a quote inside a name.
TEST(WriteCsv, AnyHeaderReadCsvAcceptsRoundTrips) {
  test::TempDir dir;
  Points x(2, 2);
  x << 1, 2, 3, 4;
  for (const std::string header :
       {"\"1\",\"2\"", "\"#a\",b", "\"\"q\"\",r", "x\"y,z", "\"nan\",\"inf\"", "\"1\",b"}) {
    put(dir.file("in.csv"), header + "\n1,2\n3,4\n");
    const Dataset in = read_csv(dir.file("in.csv"));
    ASSERT_EQ(in.columns.size(), 2u) << header;
    write_csv(dir.file("out.csv"), x, in.columns);
    const Dataset back = read_csv(dir.file("out.csv"));
    EXPECT_EQ(back.columns, in.columns)
        << header << " written as " << test::slurp(dir.file("out.csv"));
    EXPECT_TRUE(bitwise_equal(back.x, x)) << header;
  }
  // Only what needs quotes gets them.
  write_csv(dir.file("out.csv"), x, {"1", "2"});
  EXPECT_EQ(test::slurp(dir.file("out.csv")), "\"1\",\"2\"\n1,2\n3,4\n");
  write_csv(dir.file("out.csv"), x, {"#a", "#b"});
  EXPECT_EQ(test::slurp(dir.file("out.csv")), "\"#a\",#b\n1,2\n3,4\n");
}

TEST(ReadCsv, StreamsLargeFilesAcrossChunkBoundaries) {
  // ~11 MB: lines straddle several 4 MiB chunk boundaries.
  test::TempDir dir;
  const Points x = awkward_points(120000, 8, 7);
  write_csv(dir.file("big.csv"), x, {"a", "b", "c", "d", "e", "f", "g", "h"});
  ASSERT_GT(std::filesystem::file_size(dir.file("big.csv")), size_t{9} << 20);
  const Dataset d = read_csv(dir.file("big.csv"));
  EXPECT_TRUE(bitwise_equal(d.x, x));
  EXPECT_EQ(d.columns.size(), 8u);
}

TEST_F(CsvErrors, MissingFileAndFolder) {
  EXPECT_EQ(error_at(dir_.file("nope.csv")), dir_.file("nope.csv") + ": no such file");
  EXPECT_EQ(error_at(dir_.path()), dir_.path() + ": is a folder, not a file");
}

TEST_F(CsvErrors, NoDataRows) {
  EXPECT_EQ(error_for(""), at(1) + "no data rows: the file is empty");
  EXPECT_EQ(error_for("# only\n\n  \n# comments\n"),
            at(4) + "no data rows: only blank lines and comments");
  EXPECT_EQ(error_for("# c\nx,y\n\n"), at(3) + "no data rows, only a header (line 2)");
  EXPECT_EQ(error_for("x,y"), at(1) + "no data rows, only a header (line 1)");
}

TEST_F(CsvErrors, RaggedRows) {
  EXPECT_EQ(error_for("a,b,c\n1,2,3\n# comment\n\n4,5\n"),
            at(5) + "expected 3 fields, found 2 (the header on line 1 has 3)");
  EXPECT_EQ(error_for("\n1,2\n3,4,5\n"),
            at(3) + "expected 2 fields, found 3 (the first row on line 2 has 2)");
  EXPECT_EQ(error_for("x,y\n1,\n"), at(2) + "field 2 is empty, expected a number");
  // A first row of numbers with an empty field is a data row with a stray comma, not a header.
  EXPECT_EQ(error_for("1,2,\n3,4\n"),
            at(1) + "field 3 is empty in a row of numbers (a comma at the end of the line?)");
  EXPECT_EQ(error_for("# c\n1,,2\n"), at(2) + "field 2 is empty in a row of numbers");
}

TEST_F(CsvErrors, TextInANumberField) {
  EXPECT_EQ(error_for("x,y\n1,2\n3,abc\n"), at(3) + "field 2 'abc' is not a number");
  EXPECT_EQ(error_for("1,2\n3,4\n\n5,6\nx,y\n"), at(5) + "field 1 'x' is not a number");
  EXPECT_EQ(error_for("1,2\n0x10,4\n"), at(2) + "field 1 '0x10' is not a number");
  EXPECT_EQ(error_for("1,2\n1 2,4\n"), at(2) + "field 1 '1 2' is not a number");
  EXPECT_EQ(error_for("1,2\n+-1,4\n"), at(2) + "field 1 '+-1' is not a number");
  EXPECT_EQ(error_for("1,2\n3,4\n5,this field is far too long to print\n"),
            at(3) + "field 2 'this field is far to...' is not a number");
  // Tabs and other bytes that would garble a terminal are escaped, not echoed.
  EXPECT_EQ(error_for("1,2\n3,a\tb\n"), at(2) + "field 2 'a\\tb' is not a number");
}

TEST_F(CsvErrors, NanInfAndOverflow) {
  EXPECT_EQ(error_for("x,y\n1,nan\n"), at(2) + "field 2 'nan' is NaN, expected a finite number");
  EXPECT_EQ(error_for("NaN,1\n"), at(1) + "field 1 'NaN' is NaN, expected a finite number");
  EXPECT_EQ(error_for("1,2\n-inf,1\n"),
            at(2) + "field 1 '-inf' is infinite, expected a finite number");
  EXPECT_EQ(error_for("1,2\n3,1e400\n"),
            at(2) + "field 2 '1e400' is too large for a float (max 3.4e38)");
  EXPECT_EQ(error_for("1,2\n3,-1e39\n"),
            at(2) + "field 2 '-1e39' is too large for a float (max 3.4e38)");
  EXPECT_EQ(error_for("1,2\n3,4e38\n"),
            at(2) + "field 2 '4e38' is too large for a float (max 3.4e38)");
}

TEST_F(CsvErrors, BinaryFiles) {
  EXPECT_EQ(error_for(std::string("1,2\n3,4\n5,\0\0\x01", 13)),
            at(3) + "not a text CSV file (binary byte 0x00 at column 3)");
  EXPECT_EQ(error_for(std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16)),
            at(1) + "not a text CSV file (invalid UTF-8 at column 1)");
  EXPECT_EQ(error_for(std::string("#\x01\x02\n1\n", 6)),
            at(1) + "not a text CSV file (binary byte 0x01 at column 2)");
  EXPECT_EQ(error_for("x,y\n1,2\n\xff\xfe,3\n"),
            at(3) + "not a text CSV file (invalid UTF-8 at column 1)");
  EXPECT_EQ(
      error_for("1,2\r3,4\n"),
      at(1) + "carriage return inside a line at column 4; expected \\n or \\r\\n line endings");
  // UTF-8 header names are fine.
  put(dir_.file("utf8.csv"),
      "temp \xC2\xB0"
      "C,\xE5\x80\xBC\n1,2\n");
  EXPECT_EQ(read_csv(dir_.file("utf8.csv")).columns, (std::vector<std::string>{"temp \xC2\xB0"
                                                                               "C",
                                                                               "\xE5\x80\xBC"}));
}

TEST_F(CsvErrors, VeryLongLines) {
  const std::string big(kCsvMaxLineBytes + 10, '7');
  // The limit and the number of columns it allows are in the message (README: any number of
  // columns, up to this line length).
  const std::string too_long =
      "line longer than 1 MiB, the most a line may hold (about 61680 columns of 16-character "
      "numbers); a binary or one-line file?";
  EXPECT_EQ(error_for("x\n1\n" + big + "\n2\n"), at(3) + too_long);
  // No newline at all: stops after the limit instead of reading the whole file.
  EXPECT_EQ(error_for(std::string(3 * kCsvMaxLineBytes, '1')), at(1) + too_long);
  // A line just under the limit is accepted.
  std::string ok = "1";
  while (ok.size() + 2 < kCsvMaxLineBytes) ok += ",1";
  put(dir_.file("wide.csv"), ok + "\n" + ok + "\n");
  const Dataset d = read_csv(dir_.file("wide.csv"));
  EXPECT_EQ(d.x.rows(), 2);
  EXPECT_EQ(d.x.cols(), static_cast<Eigen::Index>((ok.size() + 1) / 2));
}

// parse_csv (bytes in memory, as the fuzzer uses it) gives what read_csv gives for the same bytes:
// the same points and names, or the same message with the source in place of the path.
TEST_F(CsvErrors, ParseCsvInMemoryMatchesReadCsv) {
  const std::string path = dir_.file("same.csv");
  write_csv(path, awkward_points(120000, 8, 3), {"a", "b", "c", "d", "e", "f", "g", "h"});
  const std::string big = test::slurp(path);  // ~11 MB: lines straddle the 4 MiB refills
  for (const std::string& bytes :
       {big, std::string("\xEF\xBB\xBF# c\r\nx\r\n1\r\n-2"), std::string("7\n")}) {
    put(path, bytes);
    const Dataset a = read_csv(path);
    const Dataset b = parse_csv(bytes, path);
    EXPECT_TRUE(bitwise_equal(a.x, b.x));
    EXPECT_EQ(a.columns, b.columns);
  }
  const std::string no_newline(3 * kCsvMaxLineBytes, '1');
  for (const std::string& bytes : {std::string(), std::string("x,y\n1,2\n3\n"), no_newline,
                                   std::string("x\n1\n") + std::string(kCsvMaxLineBytes + 1, '2'),
                                   std::string("1,2\n3,4\n5,\0\0\x01", 13)}) {
    const std::string from_file = error_for(bytes);
    ASSERT_FALSE(from_file.empty());
    try {
      parse_csv(bytes, dir_.file("bad.csv"));
      ADD_FAILURE() << "parse_csv accepted what read_csv rejects: " << from_file;
    } catch (const Error& e) {
      EXPECT_EQ(e.what(), from_file);
    }
  }
}

}  // namespace
}  // namespace diffuse
