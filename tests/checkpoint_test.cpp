// Checkpoint files: bit-exact round trips, deterministic bytes, a file built byte by byte, PyTorch
// compatibility, and one specific Error (never a crash) per kind of damage. Not training tests.
#include "diffuse/checkpoint.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <typeinfo>
#include <vector>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "test_util.h"

namespace diffuse {
namespace {

using json = nlohmann::json;
using test::TempDir;

const ModelConfig kSmall{3, 5, 4};  // dim, hidden, T

// A checkpoint exercising every field, with values that only survive an exact round trip.
Checkpoint make_checkpoint(const ModelConfig& mc, bool with_train) {
  Rng rng(42);
  Checkpoint ck;
  ck.model = mc;
  ck.schedule = ScheduleConfig{ScheduleKind::kCosine, mc.T, rng.uniform() * 1e-3,
                               0.01 + rng.uniform() * 0.01, 0.008 + rng.uniform() * 1e-3};
  ck.params.resize(param_count(mc));
  rng.fill_uniform(ck.params.data(), ck.params.size(), -1.0f, 1.0f);
  ck.params[0] = -0.0f;
  ck.params[1] = std::numeric_limits<float>::denorm_min();
  ck.params[2] = std::numeric_limits<float>::max();
  ck.params[3] = std::numeric_limits<float>::lowest();
  for (int i = 0; i < mc.dim; ++i) {
    ck.normalization.mean.push_back(rng.normal() * 10);
    ck.normalization.std.push_back(0.1 + rng.uniform());
  }
  for (int i = 0; i < mc.dim; ++i) {
    ck.range.min.push_back(rng.normal() * 10 - 20);
    ck.range.max.push_back(rng.normal() * 10 + 20);
    ck.range.integer.push_back(i % 2 == 0);
  }
  ck.columns = {"x", "temp\xc3\xa9 \"C\"", "z,w"};  // UTF-8, a quote and a comma
  ck.columns.resize(mc.dim, "c");
  ck.info = {{"data", "moons"}, {"epochs", "10"}, {"note", "tab\there"}};
  if (with_train) {
    TrainState ts;
    ts.epoch = 7;
    ts.adam = Adam(ck.params.size(), AdamConfig{3e-4 + rng.uniform() * 1e-6, 0.9, 0.999, 1e-8});
    ts.adam.step_count = 12345678901;
    rng.fill_uniform(ts.adam.m.data(), ts.adam.m.size(), -0.1f, 0.1f);
    rng.fill_uniform(ts.adam.v.data(), ts.adam.v.size(), 0.0f, 0.01f);
    ts.rng = {0, std::numeric_limits<uint64_t>::max(), uint64_t{1} << 63, 12345};
    ts.raw_params.resize(ck.params.size());
    rng.fill_uniform(ts.raw_params.data(), ts.raw_params.size(), -2.0f, 2.0f);
    ts.train_config_json = R"({"epochs": 10, "lr": 0.001})";
    ck.train_state = ts;
  }
  return ck;
}

template <typename T>
void expect_bits_equal(const std::vector<T>& a, const std::vector<T>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(T)), 0) << what;
}

void expect_same_bits(double a, double b, const char* what) {
  EXPECT_EQ(std::bit_cast<uint64_t>(a), std::bit_cast<uint64_t>(b))
      << what << ": " << a << " vs " << b;
}

// ---- building and taking apart files ----

std::string u64_le(uint64_t n) {
  std::string s;
  for (int i = 0; i < 8; ++i) s += static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

std::string with_length(const std::string& header) { return u64_le(header.size()) + header; }

struct Parts {
  json header;
  std::string data;
};

Parts split(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

// Whether loading `path` throws diffuse::Error whose message names the path and every part.
::testing::AssertionResult LoadFailsWith(const std::string& path,
                                         std::initializer_list<std::string> parts) {
  try {
    load_checkpoint(path);
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.rfind(path + ": ", 0) != 0) {
      return ::testing::AssertionFailure() << "message does not start with the path: " << m;
    }
    for (const std::string& p : parts) {
      if (m.find(p) == std::string::npos) {
        return ::testing::AssertionFailure() << "message lacks \"" << p << "\": " << m;
      }
    }
    if (m.find('\n') != std::string::npos) {
      return ::testing::AssertionFailure() << "message has more than one line: " << m;
    }
    return ::testing::AssertionSuccess() << m;
  }
  return ::testing::AssertionFailure() << "loading " << path << " succeeded";
}

class CheckpointFile : public ::testing::Test {
 protected:
  void SetUp() override {
    save_checkpoint(path, ck);
    good = read_file(path);
  }
  // Plain writes: thousands of damaged files are written, and an fsync each would take minutes.
  void write(const std::string& bytes) {
    std::remove(path.c_str());  // a new file: rewriting in place makes ext4 flush on close
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(f.good()) << path;
  }
  // Rewrites the header JSON (unpadded) in front of the unchanged data.
  void edit_header(const std::function<void(json&)>& edit) {
    Parts p = split(good);
    edit(p.header);
    write(with_length(p.header.dump()) + p.data);
  }
  void edit_metadata(const std::string& key, const std::optional<std::string>& value) {
    edit_header([&](json& h) {
      if (value) {
        h["__metadata__"][key] = *value;
      } else {
        h["__metadata__"].erase(key);
      }
    });
  }
  // Rewrites a well-formed safetensors file with different tensors or metadata.
  void edit_tensors(const std::function<void(SafeTensors&)>& edit) {
    SafeTensors st = parse_safetensors(good, "good");
    edit(st);
    write(serialize_safetensors(st));
  }

  TempDir dir;
  std::string path = dir.file("model.safetensors");
  Checkpoint ck = make_checkpoint(kSmall, true);
  std::string good;
};

// ---- round trips and the format ----

TEST(Checkpoint, RoundTripIsBitExact) {
  TempDir dir;
  const Checkpoint ck = make_checkpoint(kSmall, true);
  save_checkpoint(dir.file("a.safetensors"), ck);
  const Checkpoint back = load_checkpoint(dir.file("a.safetensors"));

  EXPECT_EQ(back.model.dim, 3);
  EXPECT_EQ(back.model.hidden, 5);
  EXPECT_EQ(back.model.T, 4);
  EXPECT_EQ(back.schedule.kind, ScheduleKind::kCosine);
  EXPECT_EQ(back.schedule.T, 4);
  expect_same_bits(back.schedule.beta_start, ck.schedule.beta_start, "beta_start");
  expect_same_bits(back.schedule.beta_end, ck.schedule.beta_end, "beta_end");
  expect_same_bits(back.schedule.cosine_s, ck.schedule.cosine_s, "cosine_s");
  expect_bits_equal(back.params, ck.params, "params");
  expect_bits_equal(back.normalization.mean, ck.normalization.mean, "mean");
  expect_bits_equal(back.normalization.std, ck.normalization.std, "std");
  expect_bits_equal(back.range.min, ck.range.min, "range.min");
  expect_bits_equal(back.range.max, ck.range.max, "range.max");
  EXPECT_EQ(back.range.integer, ck.range.integer);
  EXPECT_EQ(back.columns, ck.columns);
  EXPECT_EQ(back.info, ck.info);

  ASSERT_TRUE(back.train_state.has_value());
  const TrainState& a = *back.train_state;
  const TrainState& b = *ck.train_state;
  EXPECT_EQ(a.epoch, 7);
  EXPECT_EQ(a.adam.step_count, 12345678901);
  expect_same_bits(a.adam.config.lr, b.adam.config.lr, "lr");
  expect_same_bits(a.adam.config.beta1, 0.9, "beta1");
  expect_same_bits(a.adam.config.beta2, 0.999, "beta2");
  expect_same_bits(a.adam.config.eps, 1e-8, "eps");
  expect_bits_equal(a.adam.m, b.adam.m, "adam.m");
  expect_bits_equal(a.adam.v, b.adam.v, "adam.v");
  expect_bits_equal(a.raw_params, b.raw_params, "raw_params");
  EXPECT_EQ(a.rng, b.rng);
  EXPECT_EQ(a.train_config_json, b.train_config_json);
}

TEST(Checkpoint, OptionalPartsStayAbsent) {
  TempDir dir;
  Checkpoint ck = make_checkpoint(kSmall, false);
  ck.normalization = {};
  ck.range = {};  // as in checkpoints saved before the range was stored: they load without it
  ck.columns.clear();
  ck.info.clear();
  ck.schedule.kind = ScheduleKind::kQuadratic;
  save_checkpoint(dir.file("a.safetensors"), ck);
  const SafeTensors st = read_safetensors(dir.file("a.safetensors"));
  EXPECT_EQ(st.tensors.size(), 11u);
  EXPECT_EQ(st.metadata.count("normalization"), 0u);
  EXPECT_EQ(st.metadata.count("range"), 0u);
  EXPECT_EQ(st.metadata.count("columns"), 0u);

  const Checkpoint back = load_checkpoint(dir.file("a.safetensors"));
  EXPECT_TRUE(back.normalization.empty());
  EXPECT_TRUE(back.range.empty());
  EXPECT_TRUE(back.columns.empty());
  EXPECT_TRUE(back.info.empty());
  EXPECT_FALSE(back.train_state.has_value());
  EXPECT_EQ(back.schedule.kind, ScheduleKind::kQuadratic);
  expect_bits_equal(back.params, ck.params, "params");

  // Train state without EMA: no train.raw tensor, empty raw_params after loading.
  Checkpoint with_train = make_checkpoint(kSmall, true);
  with_train.train_state->raw_params.clear();
  save_checkpoint(dir.file("b.safetensors"), with_train);
  EXPECT_EQ(read_safetensors(dir.file("b.safetensors")).tensors.count("train.raw"), 0u);
  const Checkpoint back2 = load_checkpoint(dir.file("b.safetensors"));
  ASSERT_TRUE(back2.train_state.has_value());
  EXPECT_TRUE(back2.train_state->raw_params.empty());
  expect_bits_equal(back2.train_state->adam.m, with_train.train_state->adam.m, "adam.m");
}

TEST(Checkpoint, BytesAreDeterministicAndAligned) {
  TempDir dir;
  const Checkpoint ck = make_checkpoint(kSmall, true);
  save_checkpoint(dir.file("a.safetensors"), ck);
  save_checkpoint(dir.file("b.safetensors"), ck);
  const std::string a = read_file(dir.file("a.safetensors"));
  EXPECT_EQ(a, read_file(dir.file("b.safetensors")));

  // The header is padded with spaces so the data start on an 8-byte boundary.
  uint64_t n = 0;
  std::memcpy(&n, a.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_NE(a[8 + n - 1], '\0');
  // Data are in name order: lin1.embed.weight (params from offset H*D + H) comes first.
  float first = 0;
  std::memcpy(&first, a.data() + 8 + n, 4);
  EXPECT_EQ(first, ck.params[5 * 3 + 5]);

  // Insertion order does not matter.
  SafeTensors x, y;
  x.tensors["b"] = {"F32", {2}, {1, 2}};
  x.tensors["a"] = {"F32", {1, 1}, {3}};
  x.metadata["k2"] = "v";
  x.metadata["k1"] = "w";
  y.metadata["k1"] = "w";
  y.tensors["a"] = {"F32", {1, 1}, {3}};
  y.metadata["k2"] = "v";
  y.tensors["b"] = {"F32", {2}, {1, 2}};
  EXPECT_EQ(serialize_safetensors(x), serialize_safetensors(y));
  const std::string bytes = serialize_safetensors(x);
  const std::string header =
      R"({"__metadata__":{"k1":"w","k2":"v"},"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1,1]},)"
      R"("b":{"data_offsets":[4,12],"dtype":"F32","shape":[2]}})";
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes.substr(8, padded.size()), padded);
  EXPECT_EQ(bytes.size(), 8 + padded.size() + 12);
}

TEST(Checkpoint, TensorsAreNamedAndShapedAsThePyTorchStateDict) {
  TempDir dir;
  save_checkpoint(dir.file("a.safetensors"), make_checkpoint(kSmall, true));
  const SafeTensors st = read_safetensors(dir.file("a.safetensors"));
  const size_t n = param_count(kSmall);
  EXPECT_EQ(n, 15u + 5 + 20 + 2 * (25 + 5 + 20) + 15 + 3);
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"lin1.lin.weight", {5, 3}},    {"lin1.lin.bias", {5}},      {"lin1.embed.weight", {4, 5}},
      {"lin2.lin.weight", {5, 5}},    {"lin2.lin.bias", {5}},      {"lin2.embed.weight", {4, 5}},
      {"lin3.lin.weight", {5, 5}},    {"lin3.lin.bias", {5}},      {"lin3.embed.weight", {4, 5}},
      {"lin4.weight", {3, 5}},        {"lin4.bias", {3}},          {"train.adam.m", {int64_t(n)}},
      {"train.adam.v", {int64_t(n)}}, {"train.raw", {int64_t(n)}},
  };
  ASSERT_EQ(st.tensors.size(), expected.size());
  for (const auto& [name, shape] : expected) {
    ASSERT_EQ(st.tensors.count(name), 1u) << name;
    EXPECT_EQ(st.tensors.at(name).shape, shape) << name;
    EXPECT_EQ(st.tensors.at(name).dtype, "F32") << name;
  }
  const auto& md = st.metadata;
  EXPECT_EQ(md.at("format"), "diffuse");
  EXPECT_EQ(md.at("format_version"), "1");
  EXPECT_EQ(md.at("dim"), "3");
  EXPECT_EQ(md.at("hidden"), "5");
  EXPECT_EQ(md.at("T"), "4");
  EXPECT_EQ(md.at("schedule"), "cosine");
  EXPECT_EQ(md.at("info.data"), "moons");
  EXPECT_EQ(md.at("train.epoch"), "7");
  EXPECT_EQ(md.at("train.adam.step"), "12345678901");
  EXPECT_EQ(md.at("train.adam.beta2"), "0.999");
  EXPECT_EQ(md.at("train.rng"), R"(["0","18446744073709551615","9223372036854775808","12345"])");
  const json norm = json::parse(md.at("normalization"));
  EXPECT_EQ(norm.at("mean").size(), 3u);
  EXPECT_EQ(norm.at("std").size(), 3u);
  EXPECT_EQ(json::parse(md.at("columns")).at(1), "temp\xc3\xa9 \"C\"");
}

// The format from its specification alone, not from our writer: bytes laid down by hand, tensors
// in state_dict order in the data but not in the header, one of them F64.
TEST(Checkpoint, HandBuiltFileLoads) {
  const std::string header =
      "{\"__metadata__\": {\"format\": \"diffuse\", \"format_version\": \"1\", \"dim\": \"1\",\n"
      "  \"hidden\": \"1\", \"T\": \"2\", \"schedule\": \"linear\", \"beta_start\": \"0.0001\",\n"
      "  \"beta_end\": \"0.02\", \"cosine_s\": \"0.008\"},\n"
      " \"lin4.bias\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [52, 60]},\n"
      " \"lin4.weight\": {\"dtype\": \"F32\", \"shape\": [1, 1], \"data_offsets\": [48, 52]},\n"
      " \"lin3.embed.weight\": {\"shape\": [2, 1], \"dtype\": \"F32\", \"data_offsets\": [40, "
      "48]},\n"
      " \"lin3.lin.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [36, 40]},\n"
      " \"lin3.lin.weight\": {\"dtype\": \"F32\", \"shape\": [1, 1], \"data_offsets\": [32, 36]},\n"
      " \"lin1.lin.weight\": {\"dtype\": \"F32\", \"shape\": [1, 1], \"data_offsets\": [0, 4]},\n"
      " \"lin1.lin.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},\n"
      " \"lin1.embed.weight\": {\"dtype\": \"F32\", \"shape\": [2, 1], \"data_offsets\": [8, "
      "16]},\n"
      " \"lin2.lin.weight\": {\"dtype\": \"F32\", \"shape\": [1, 1], \"data_offsets\": [16, 20]},\n"
      " \"lin2.lin.bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [20, 24]},\n"
      " \"lin2.embed.weight\": {\"dtype\": \"F32\", \"shape\": [2, 1], \"data_offsets\": [24, "
      "32]}}";
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  // IEEE-754 bit patterns, least significant byte first.
  const uint32_t f32[] = {0x3F000000, 0xBFA00000, 0x3F400000, 0x3FC00000,  // 0.5 -1.25 0.75 1.5
                          0x40000000, 0xBF000000, 0x3E800000, 0x3E000000,  // 2 -0.5 0.25 0.125
                          0x40400000, 0xC0400000, 0x3F800000, 0x40000000,  // 3 -3 1 2
                          0xC0200000};                                     // -2.5
  for (uint32_t w : f32) {
    for (int i = 0; i < 4; ++i) bytes += static_cast<char>((w >> (8 * i)) & 0xff);
  }
  const uint64_t f64 = 0x3FB999999999999A;  // 0.1
  for (int i = 0; i < 8; ++i) bytes += static_cast<char>((f64 >> (8 * i)) & 0xff);
  ASSERT_EQ(bytes.size(), 8 + header.size() + 60);

  TempDir dir;
  write_file_atomic(dir.file("hand.safetensors"), bytes);
  const Checkpoint ck = load_checkpoint(dir.file("hand.safetensors"));
  EXPECT_EQ(ck.model.dim, 1);
  EXPECT_EQ(ck.model.hidden, 1);
  EXPECT_EQ(ck.model.T, 2);
  EXPECT_EQ(ck.schedule.kind, ScheduleKind::kLinear);
  EXPECT_EQ(ck.schedule.beta_start, 0.0001);
  EXPECT_EQ(ck.schedule.beta_end, 0.02);
  EXPECT_FALSE(ck.train_state.has_value());
  EXPECT_TRUE(ck.normalization.empty());
  const std::vector<float> expected = {0.5f,   -1.25f, 0.75f, 1.5f, 2.0f, -0.5f, 0.25f,
                                       0.125f, 3.0f,   -3.0f, 1.0f, 2.0f, -2.5f, 0.1f};
  EXPECT_EQ(ck.params, expected);
  EXPECT_EQ(read_safetensors(dir.file("hand.safetensors")).tensors.at("lin4.bias").dtype, "F64");
}

TEST(Checkpoint, SaveRefusesInconsistentCheckpoints) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  Checkpoint ck = make_checkpoint(kSmall, true);
  ck.params.pop_back();
  EXPECT_THROW(save_checkpoint(path, ck), Error);
  ck = make_checkpoint(kSmall, true);
  ck.params[17] = std::nanf("");
  try {
    save_checkpoint(path, ck);
    ADD_FAILURE() << "saved a NaN weight";
  } catch (const Error& e) {
    // params[17] is lin1.lin.bias[2] (lin1.lin.weight holds 15 values).
    EXPECT_EQ(std::string(e.what()), path +
                                         ": cannot save checkpoint: tensor lin1.lin.bias has a "
                                         "non-finite value at index 2");
  }
  ck = make_checkpoint(kSmall, true);
  ck.train_state->adam.v.resize(3);
  EXPECT_THROW(save_checkpoint(path, ck), Error);
  ck = make_checkpoint(kSmall, true);
  ck.normalization.std.pop_back();
  EXPECT_THROW(save_checkpoint(path, ck), Error);
  ck = make_checkpoint(kSmall, true);
  ck.range.integer.pop_back();
  EXPECT_THROW(save_checkpoint(path, ck), Error);
  ck = make_checkpoint(kSmall, true);
  ck.range.min[1] = ck.range.max[1] + 1;
  EXPECT_THROW(save_checkpoint(path, ck), Error);
  ck = make_checkpoint(kSmall, true);
  ck.schedule.T = 7;
  EXPECT_THROW(save_checkpoint(path, ck), Error);
  EXPECT_FALSE(test::file_exists(path));  // nothing half-written
}

TEST(SafeTensors, SerializeRejectsShapeDataMismatch) {
  SafeTensors st;
  st.tensors["a"] = {"F32", {2, 3}, {1, 2, 3}};
  EXPECT_THROW(serialize_safetensors(st), Error);
}

TEST(SafeTensors, ReadsEmptyTensorsAndConvertsF64) {
  const std::string header =
      R"({"a": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]},)"
      R"( "b": {"dtype": "F64", "shape": [2], "data_offsets": [0, 16]},)"
      R"( "c": {"dtype": "F32", "shape": [1099511627776, 0], "data_offsets": [16, 16]},)"
      R"( "__metadata__": {"k": "v"}})";
  const double b[2] = {0.1, -1e-3};
  std::string bytes = with_length(header);
  bytes.append(reinterpret_cast<const char*>(b), sizeof b);
  const SafeTensors st = parse_safetensors(bytes, "mem");
  ASSERT_EQ(st.tensors.size(), 3u);
  EXPECT_TRUE(st.tensors.at("a").data.empty());
  EXPECT_EQ(st.tensors.at("b").dtype, "F64");
  EXPECT_EQ(st.tensors.at("b").data, (std::vector<float>{0.1f, -1e-3f}));
  EXPECT_EQ(st.tensors.at("c").shape, (std::vector<int64_t>{1099511627776, 0}));
  EXPECT_TRUE(st.tensors.at("c").data.empty());
  EXPECT_EQ(st.metadata.at("k"), "v");

  // Written back as F32 and read again: same names, shapes, values.
  const SafeTensors again = parse_safetensors(serialize_safetensors(st), "mem");
  EXPECT_EQ(again.tensors.at("b").dtype, "F32");
  EXPECT_EQ(again.tensors.at("b").data, st.tensors.at("b").data);
  EXPECT_EQ(again.tensors.at("c").shape, st.tensors.at("c").shape);
  EXPECT_EQ(again.metadata, st.metadata);
}

// ---- damaged files: each gives an Error naming the path and the problem ----

TEST(CheckpointErrors, MissingFile) {
  TempDir dir;
  EXPECT_TRUE(LoadFailsWith(dir.file("nope.safetensors"), {"no such file"}));
}

TEST_F(CheckpointFile, ShorterThanTheLengthPrefix) {
  write("abc");
  EXPECT_TRUE(LoadFailsWith(path, {"file is 3 bytes, too short"}));
}

TEST_F(CheckpointFile, HeaderLengthLargerThanFile) {
  write(u64_le(1000000) + "{}{}");
  EXPECT_TRUE(LoadFailsWith(path, {"header length 1000000 is larger than the file (12 bytes)"}));
  write(u64_le(std::numeric_limits<uint64_t>::max()) + "{}");
  EXPECT_TRUE(LoadFailsWith(path, {"header length 18446744073709551615", "(10 bytes)"}));
}

TEST_F(CheckpointFile, HeaderNotJson) {
  write(with_length(R"({"a": [1, 2)"));
  // nlohmann reports the end of input, after the 11th header byte: file offset 8 + 11.
  EXPECT_TRUE(LoadFailsWith(
      path, {"header is not valid JSON at file offset 19", "unexpected end of input"}));
  write(with_length(R"({"a": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 4]}})"));
  EXPECT_TRUE(LoadFailsWith(path, {"header is not valid JSON", "number overflow"}));
  write(with_length(""));
  EXPECT_TRUE(LoadFailsWith(path, {"header is not valid JSON"}));
}

TEST_F(CheckpointFile, HeaderNotAnObject) {
  write(with_length("[1, 2]"));
  EXPECT_TRUE(LoadFailsWith(path, {"header must be a JSON object, found an array"}));
  edit_header([](json& h) { h["__metadata__"] = json::array({"a"}); });
  EXPECT_TRUE(LoadFailsWith(path, {"\"__metadata__\" must be an object of strings"}));
  edit_header([](json& h) { h["__metadata__"]["dim"] = 3; });
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"dim\" must be a string, found 3"}));
}

TEST_F(CheckpointFile, TensorEntryMissingFields) {
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    edit_header([&](json& h) { h["lin1.lin.bias"].erase(field); });
    EXPECT_TRUE(LoadFailsWith(
        path, {std::string("tensor \"lin1.lin.bias\": header entry has no \"") + field + "\""}));
  }
}

TEST_F(CheckpointFile, TensorEntryWrongTypes) {
  const std::string t = "tensor \"lin1.lin.bias\"";
  edit_header([](json& h) { h["lin1.lin.bias"] = 5; });
  EXPECT_TRUE(LoadFailsWith(path, {t + ": header entry must be a JSON object, found 5"}));
  edit_header([](json& h) { h["lin1.lin.bias"]["dtype"] = 32; });
  EXPECT_TRUE(LoadFailsWith(path, {t + ": \"dtype\" must be a string, found 32"}));
  edit_header([](json& h) { h["lin1.lin.bias"]["shape"] = "5"; });
  EXPECT_TRUE(LoadFailsWith(path, {t + ": \"shape\" must be an array of non-negative integers"}));
  edit_header([](json& h) { h["lin1.lin.bias"]["shape"] = json::array({-5}); });
  EXPECT_TRUE(LoadFailsWith(path, {"non-negative integers, found element -5"}));
  edit_header([](json& h) { h["lin1.lin.bias"]["shape"] = json::array({5.0}); });
  EXPECT_TRUE(LoadFailsWith(path, {"non-negative integers, found element 5.0"}));
  edit_header([](json& h) { h["lin1.lin.bias"]["data_offsets"] = json::array({0}); });
  EXPECT_TRUE(LoadFailsWith(
      path, {t + ": \"data_offsets\" must be [begin, end]", "found an array of 1 values"}));
  edit_header([](json& h) { h["lin1.lin.bias"]["data_offsets"] = json::array({"0", "20"}); });
  EXPECT_TRUE(LoadFailsWith(
      path, {t + ": \"data_offsets\" must be [begin, end]", "found [\"0\", \"20\"]"}));
  edit_header([](json& h) { h["lin1.lin.bias"]["data_offsets"] = json::array({20, 0}); });
  EXPECT_TRUE(LoadFailsWith(path, {t + ": data_offsets [20, 0] end before they begin"}));
}

TEST_F(CheckpointFile, UnsupportedDtype) {
  edit_header([](json& h) { h["lin1.lin.bias"]["dtype"] = "F16"; });
  EXPECT_TRUE(
      LoadFailsWith(path, {"tensor \"lin1.lin.bias\" has dtype \"F16\"; only F32 and F64"}));
  edit_header([](json& h) { h["train.adam.m"]["dtype"] = "I64"; });
  EXPECT_TRUE(LoadFailsWith(path, {"tensor \"train.adam.m\" has dtype \"I64\""}));
}

TEST_F(CheckpointFile, ShapeDisagreesWithByteCount) {
  std::string offsets;
  edit_header([&](json& h) {
    h["lin1.lin.bias"]["shape"] = json::array({6});
    offsets = h["lin1.lin.bias"]["data_offsets"].dump();
  });
  EXPECT_TRUE(LoadFailsWith(path, {"tensor \"lin1.lin.bias\": shape [6] of F32 needs 24 bytes but "
                                   "data_offsets",
                                   "hold 20"}));
  edit_header([&](json& h) { h["lin1.lin.bias"]["shape"] = json::array({uint64_t{1} << 62, 8}); });
  EXPECT_TRUE(LoadFailsWith(path, {"needs more than 2^64 bytes"}));
}

TEST_F(CheckpointFile, OffsetsOutOfRange) {
  const size_t data_size = split(good).data.size();
  edit_header([&](json& h) {
    h["lin4.bias"]["data_offsets"] = json::array({data_size, data_size + 12});
  });
  EXPECT_TRUE(LoadFailsWith(
      path, {"tensor \"lin4.bias\": data_offsets [" + std::to_string(data_size) + ", " +
             std::to_string(data_size + 12) + "] run past the end of the data (" +
             std::to_string(data_size) + " bytes)"}));
}

TEST_F(CheckpointFile, OffsetsOverlap) {
  edit_header(
      [](json& h) { h["lin2.lin.bias"]["data_offsets"] = h["lin1.lin.bias"]["data_offsets"]; });
  EXPECT_TRUE(
      LoadFailsWith(path, {"tensors \"lin1.lin.bias\"", "and \"lin2.lin.bias\"", "overlap"}));
}

TEST_F(CheckpointFile, TensorsDoNotCoverTheData) {
  write(good + "abcd");
  EXPECT_TRUE(LoadFailsWith(path, {"bytes but the tensors cover only", "trailing bytes"}));
  // A gap inside: A covers [0, 4), B [8, 12).
  write(with_length(R"({"A": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                    R"( "B": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})") +
        std::string(12, '\0'));
  try {
    read_safetensors(path);
    ADD_FAILURE() << "a gap was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": data bytes 4 to 8 belong to no tensor (gap before \"B\")");
  }
}

TEST_F(CheckpointFile, MissingOrExtraModelTensors) {
  edit_tensors([](SafeTensors& st) {
    st.tensors.erase("lin3.lin.bias");
    st.tensors.erase("lin4.bias");
  });
  EXPECT_TRUE(LoadFailsWith(path, {"missing model tensor(s): lin3.lin.bias, lin4.bias"}));
  edit_tensors([](SafeTensors& st) { st.tensors["lin5.weight"] = {"F32", {1}, {1.0f}}; });
  EXPECT_TRUE(LoadFailsWith(path, {"unexpected tensor(s): \"lin5.weight\""}));
}

TEST_F(CheckpointFile, WrongShape) {
  edit_tensors([](SafeTensors& st) { st.tensors["lin4.weight"].shape = {5, 3}; });
  EXPECT_TRUE(LoadFailsWith(
      path, {"tensor lin4.weight has shape [5, 3], expected [3, 5] for dim=3, hidden=5, T=4"}));
  edit_tensors([](SafeTensors& st) { st.tensors["lin2.embed.weight"].shape = {20}; });
  EXPECT_TRUE(LoadFailsWith(path, {"tensor lin2.embed.weight has shape [20], expected [4, 5]"}));
}

TEST_F(CheckpointFile, NotADiffuseCheckpoint) {
  edit_metadata("format", "pytorch");
  EXPECT_TRUE(
      LoadFailsWith(path, {"not a diffuse checkpoint: metadata \"format\" is \"pytorch\""}));
  edit_metadata("format", std::nullopt);
  EXPECT_TRUE(LoadFailsWith(path, {"not a diffuse checkpoint: metadata has no \"format\""}));
  edit_header([](json& h) { h.erase("__metadata__"); });
  EXPECT_TRUE(LoadFailsWith(path, {"not a diffuse checkpoint"}));
}

TEST_F(CheckpointFile, NewerFormatVersion) {
  const std::string newer = std::to_string(kCheckpointFormatVersion + 1);
  edit_metadata("format_version", newer);
  EXPECT_TRUE(LoadFailsWith(
      path, {"written by a newer diffuse: version " + newer + ", this build reads up to " +
             std::to_string(kCheckpointFormatVersion)}));
  edit_metadata("format_version", "0");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"format_version\" is 0"}));
  edit_metadata("format_version", "one");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"format_version\" is \"one\", not an integer"}));
}

TEST_F(CheckpointFile, MetadataMissingOrUnparsable) {
  for (const char* key : {"dim", "hidden", "T", "schedule", "beta_start", "beta_end", "cosine_s"}) {
    edit_metadata(key, std::nullopt);
    EXPECT_TRUE(LoadFailsWith(path, {std::string("metadata \"") + key + "\" is missing"}));
  }
  edit_metadata("dim", "2.5");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"dim\" is \"2.5\", not an integer"}));
  edit_metadata("hidden", "");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"hidden\" is \"\", not an integer"}));
  edit_metadata("T", "1");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"T\" is 1, expected 2 to"}));
  edit_metadata("T", "99999999999");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"T\" is 99999999999, expected 2 to 2147483647"}));
  edit_metadata("beta_end", "0.02x");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"beta_end\" is \"0.02x\", not a finite number"}));
  edit_metadata("beta_start", "nan");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"beta_start\" is \"nan\", not a finite number"}));
  edit_metadata("beta_start", "1e400");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"beta_start\" is \"1e400\", not a finite number"}));
  edit_metadata("beta_end", "1.5");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"beta_end\" is 1.5, expected > 0 and < 1"}));
  edit_metadata("schedule", "exponential");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"schedule\" is \"exponential\", expected one of "
                                   "linear, sigmoid, quadratic, cosine"}));
}

TEST_F(CheckpointFile, MetadataContradictsTensors) {
  edit_metadata("hidden", "4");
  EXPECT_TRUE(LoadFailsWith(
      path, {"metadata says hidden=4 but tensor lin1.lin.weight is 5 wide (shape [5, 3])"}));
  edit_metadata("dim", "2");
  EXPECT_TRUE(LoadFailsWith(
      path,
      {"metadata says dim=2 but tensor lin1.lin.weight takes 3 inputs, not 2 (shape [5, 3])"}));
  edit_metadata("T", "100");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata says T=100 but tensor lin1.embed.weight has 4 rows"}));
  edit_metadata("normalization", R"({"mean": [1, 2], "std": [1, 1]})");
  EXPECT_TRUE(LoadFailsWith(
      path, {"metadata \"normalization\" mean has 2 values but the model has dim=3"}));
  edit_metadata("normalization", R"({"mean": [1, 2, 3], "std": [1, 0, 1]})");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"normalization\" std[1] is 0, must be > 0"}));
  edit_metadata("normalization", R"({"mean": [1, 2, 3]})");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"normalization\" has no \"std\""}));
  edit_metadata("normalization", "[1, 2, 3]");
  EXPECT_TRUE(
      LoadFailsWith(path, {"metadata \"normalization\" must be an object", "found an array"}));
  edit_metadata("normalization", R"({"mean": [1, 2, 3], "std": [1, 1)");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"normalization\" is not valid JSON"}));
  edit_metadata("range", R"({"min": [0, 0], "max": [1, 1], "integer": [true, true]})");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"range\" min has 2 values but the model has dim=3"}));
  edit_metadata("range", R"({"min": [0, 0, 0], "max": [1, 1, 1]})");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"range\" has no \"integer\""}));
  edit_metadata("range", R"({"min": [0, 2, 0], "max": [1, 1, 1], "integer": [true, true, true]})");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"range\" column 1 has min 2 and max 1"}));
  edit_metadata("range", R"({"min": [0, 0, 0], "max": [1, 1, 1], "integer": [true, 1, true]})");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"range\" integer must hold true/false, found 1"}));
  edit_metadata("columns", R"(["x", "y"])");
  EXPECT_TRUE(
      LoadFailsWith(path, {"metadata \"columns\" names 2 columns but the model has dim=3"}));
  edit_metadata("columns", R"(["x", "y", 3])");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"columns\" must hold strings, found 3"}));
  // A schedule name with a tab and a control byte is escaped, not echoed.
  edit_metadata("schedule", "ex\tp\x01");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"schedule\" is \"ex\\tp\\x01\", expected one of"}));
}

TEST_F(CheckpointFile, NonFiniteWeights) {
  edit_tensors([](SafeTensors& st) { st.tensors["lin2.lin.weight"].data[7] = std::nanf(""); });
  EXPECT_TRUE(
      LoadFailsWith(path, {"tensor lin2.lin.weight has a non-finite value (nan) at index 7"}));
  edit_tensors([](SafeTensors& st) {
    st.tensors["lin4.bias"].data[2] = -std::numeric_limits<float>::infinity();
  });
  EXPECT_TRUE(LoadFailsWith(path, {"tensor lin4.bias has a non-finite value (inf) at index 2"}));
  edit_tensors([](SafeTensors& st) { st.tensors["train.raw"].data[0] = std::nanf(""); });
  EXPECT_TRUE(LoadFailsWith(path, {"tensor train.raw has a non-finite value (nan) at index 0"}));
  edit_tensors([](SafeTensors& st) { st.tensors["train.adam.v"].data[3] = -1.0f; });
  EXPECT_TRUE(LoadFailsWith(path, {"tensor train.adam.v has a negative value (-1) at index 3"}));
}

TEST_F(CheckpointFile, F64TooLargeForFloatIsNonFinite) {
  // train.raw, last in the data, rewritten as F64 with one value beyond float's range.
  Parts p = split(good);
  json& raw = p.header["train.raw"];
  const uint64_t begin = raw["data_offsets"][0];
  ASSERT_EQ(raw["data_offsets"][1], p.data.size());
  std::vector<double> values(ck.train_state->raw_params.begin(), ck.train_state->raw_params.end());
  values[1] = 1e300;
  p.data.resize(begin);
  p.data.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
  raw["dtype"] = "F64";
  raw["data_offsets"] = json::array({begin, p.data.size()});
  write(with_length(p.header.dump()) + p.data);
  EXPECT_TRUE(LoadFailsWith(path, {"tensor train.raw has a non-finite value (inf) at index 1"}));

  // The same file with a representable value loads, converted to float.
  values[1] = 0.1;
  p.data.resize(begin);
  p.data.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
  write(with_length(p.header.dump()) + p.data);
  const Checkpoint back = load_checkpoint(path);
  EXPECT_EQ(back.train_state->raw_params[1], 0.1f);
  EXPECT_EQ(back.train_state->raw_params[2], ck.train_state->raw_params[2]);
}

TEST_F(CheckpointFile, TrainStateIncomplete) {
  edit_tensors([](SafeTensors& st) { st.tensors.erase("train.adam.v"); });
  EXPECT_TRUE(LoadFailsWith(path, {"the file has train state but tensor train.adam.v is missing"}));
  edit_tensors([](SafeTensors& st) {
    st.tensors["train.adam.m"].data.pop_back();
    st.tensors["train.adam.m"].shape = {157};
  });
  EXPECT_TRUE(LoadFailsWith(
      path,
      {"tensor train.adam.m has shape [157], expected [158] (one value per model parameter)"}));
  edit_metadata("train.adam.beta2", "1");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"train.adam.beta2\" is 1, expected > 0 and < 1"}));
  edit_metadata("train.epoch", std::nullopt);
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"train.epoch\" is missing"}));
  edit_metadata("train.adam.step", "-1");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"train.adam.step\" is -1, expected 0 to"}));
  edit_metadata("train.rng", R"(["1", "2", "3"])");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"train.rng\" must be an array of 4 decimal strings, "
                                   "found an array of 3 values"}));
  edit_metadata("train.rng", R"(["1", "2", "3", "18446744073709551616"])");
  EXPECT_TRUE(LoadFailsWith(path, {"(unsigned 64-bit), found \"18446744073709551616\""}));
  edit_metadata("train.rng", R"(["0", "0", "0", "0"])");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"train.rng\" is all zeros"}));
  edit_metadata("train.config", "{epochs: 3}");
  EXPECT_TRUE(LoadFailsWith(path, {"metadata \"train.config\" is not valid JSON"}));
  // Train metadata without the tensors is train state with its tensors missing.
  edit_tensors([](SafeTensors& st) {
    st.tensors.erase("train.adam.m");
    st.tensors.erase("train.adam.v");
    st.tensors.erase("train.raw");
  });
  EXPECT_TRUE(LoadFailsWith(path, {"the file has train state but tensor train.adam.m is missing"}));
}

// A file cut short anywhere in the header, and at a sample of places in the data, is an Error.
TEST_F(CheckpointFile, TruncatedAtAnyByteIsAnError) {
  const uint64_t header_end = 8 + split(good).header.dump().size();  // at least the JSON
  std::vector<size_t> cuts;
  for (size_t n = 0; n <= header_end + 8; ++n) cuts.push_back(n);
  for (size_t n = header_end + 8; n < good.size(); n += 97) cuts.push_back(n);
  cuts.push_back(good.size() - 1);
  for (size_t n : cuts) {
    write(good.substr(0, n));
    ASSERT_TRUE(LoadFailsWith(path, {})) << "cut at byte " << n << " of " << good.size();
  }
  EXPECT_GT(cuts.size(), 1000u);  // the header of this checkpoint alone is over 1000 bytes
}

// Every byte of the header replaced by characters that upset JSON and numbers: each file loads or
// gives an Error, and nothing else (no crash, no other exception type).
TEST_F(CheckpointFile, DamagedHeaderBytesNeverCrash) {
  uint64_t n = 0;
  std::memcpy(&n, good.data(), 8);
  int errors = 0, loads = 0;
  for (size_t i = 0; i < 8 + n; ++i) {
    for (char c : {'"', '}', '9', '\0', '\xff'}) {
      std::string bad = good;
      if (bad[i] == c) continue;
      bad[i] = c;
      write(bad);
      try {
        load_checkpoint(path);
        ++loads;
      } catch (const Error&) {
        ++errors;
      } catch (const std::exception& e) {
        FAIL() << "byte " << i << " = " << int(c) << ": " << typeid(e).name() << ": " << e.what();
      }
    }
  }
  EXPECT_GT(errors, 1000);
  // A few changes are harmless (digits inside numbers or strings), so some files still load.
  EXPECT_GT(loads, 0);
}

// Optional: PyTorch (Debian python3-torch) reads the file with json+struct and loads the weights
// into the tutorial's ConditionalModel with load_state_dict(strict=True).
TEST(CheckpointPython, PyTorchLoadsTheStateDict) {
  TempDir dir;
  const ModelConfig mc{2, 16, 10};
  Checkpoint ck = make_checkpoint(mc, true);
  for (size_t i = 0; i < ck.params.size(); ++i) ck.params[i] = float(i % 97) * 0.25f - 12.0f;
  save_checkpoint(dir.file("m.safetensors"), ck);
  const std::string script = R"PY(
import json, struct, sys
try:
    import torch
except ImportError:
    print("NO_TORCH")
    sys.exit(0)
from torch import nn
import torch.nn.functional as F

raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert n % 8 == 0, n
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
meta = header.pop("__metadata__")
assert all(isinstance(v, str) for v in meta.values())
tensors = {}
for name, e in header.items():
    assert e["dtype"] == "F32", e
    b, end = e["data_offsets"]
    tensors[name] = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e["shape"])

class ConditionalLinear(nn.Module):
    def __init__(self, num_in, num_out, n_steps):
        super().__init__()
        self.num_out = num_out
        self.lin = nn.Linear(num_in, num_out)
        self.embed = nn.Embedding(n_steps, num_out)

    def forward(self, x, t):
        return self.embed(t).view(-1, self.num_out) * self.lin(x)

class ConditionalModel(nn.Module):
    def __init__(self, n_steps, dim, hidden):
        super().__init__()
        self.lin1 = ConditionalLinear(dim, hidden, n_steps)
        self.lin2 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin3 = ConditionalLinear(hidden, hidden, n_steps)
        self.lin4 = nn.Linear(hidden, dim)

    def forward(self, x, t):
        x = F.softplus(self.lin1(x, t))
        x = F.softplus(self.lin2(x, t))
        x = F.softplus(self.lin3(x, t))
        return self.lin4(x)

dim, hidden, T = int(meta["dim"]), int(meta["hidden"]), int(meta["T"])
model = ConditionalModel(T, dim, hidden)
model.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("train.")})
flat = torch.cat([p.reshape(-1) for p in model.state_dict().values()])
expected = (torch.arange(flat.numel()) % 97).float() * 0.25 - 12.0
assert torch.equal(flat, expected), "state_dict order or values differ"
assert tensors["train.adam.m"].shape == (flat.numel(),)
assert model(torch.zeros(3, dim), torch.tensor([0, 4, T - 1])).shape == (3, dim)
print("OK", flat.numel(), meta["schedule"])
)PY";
  write_file_atomic(dir.file("load.py"), script);
  const test::CommandResult r = test::run_shell("/usr/bin/python3 '" + dir.file("load.py") + "' '" +
                                                dir.file("m.safetensors") + "'");
  if (r.exit_code == 127 || r.output.find("NO_TORCH") != std::string::npos) {
    GTEST_SKIP() << "/usr/bin/python3 with torch is not available";
  }
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("OK " + std::to_string(param_count(mc)) + " cosine"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace diffuse
