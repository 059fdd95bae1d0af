// safetensors reading and writing, and diffuse checkpoints on top of it: every byte of a file is
// checked before use. Not a general tensor store: F32 and F64 only, little-endian hosts only.
#include "diffuse/checkpoint.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "diffuse/error.h"
#include "diffuse/io.h"
#include "diffuse/resmlp.h"

namespace diffuse {
namespace {

using json = nlohmann::json;

// safetensors stores little-endian numbers; the data are copied byte for byte.
static_assert(std::endian::native == std::endian::little,
              "diffuse checkpoints need a little-endian host");

constexpr const char* kFormatName = "diffuse";
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kAdamM = "train.adam.m";
constexpr const char* kAdamV = "train.adam.v";
constexpr const char* kRaw = "train.raw";
constexpr const char* kInfoPrefix = "info.";

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw Error(source + ": " + what);
}

// Error messages are one line, and quote at most a short piece of untrusted text.
std::string show(std::string_view s) { return quote_for_message(s, 60); }

// A JSON value in a message: scalars as written, containers by kind (never dumped whole).
std::string brief(const json& v) {
  if (v.is_structured()) return std::string("an ") + v.type_name();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

// nlohmann's what() starts with "[json.exception.parse_error.101] "; keep only the explanation.
std::string json_reason(const json::exception& e) {
  std::string w = e.what();
  const size_t p = w.find("] ");
  return one_line(p == std::string::npos ? w : w.substr(p + 2));
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string offsets_str(uint64_t begin, uint64_t end) {
  std::string s = "[";  // appended piecewise: GCC 12 warns falsely (-Wrestrict) on "[" + ...
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  return s + "]";
}

size_t dtype_bytes(std::string_view dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F64") return 8;
  return 0;
}

std::string format_double(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// safetensors

struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t count = 0;  // elements
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& src, const std::string& name, const json& e) {
  const std::string where = "tensor " + show(name);
  if (!e.is_object()) fail(src, where + ": header entry must be a JSON object, found " + brief(e));
  auto field = [&](const char* key) -> const json& {
    const auto it = e.find(key);
    if (it == e.end()) fail(src, where + ": header entry has no \"" + key + "\"");
    return *it;
  };
  Entry out;
  out.name = name;

  const json& dtype = field("dtype");
  if (!dtype.is_string()) fail(src, where + ": \"dtype\" must be a string, found " + brief(dtype));
  out.dtype = dtype.get<std::string>();

  const json& shape = field("shape");
  const std::string shape_rule = ": \"shape\" must be an array of non-negative integers, found ";
  if (!shape.is_array()) fail(src, where + shape_rule + brief(shape));
  out.count = 1;
  bool overflow = false;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) fail(src, where + shape_rule + "element " + brief(d));
    const uint64_t n = d.get<uint64_t>();
    if (n > static_cast<uint64_t>(INT64_MAX)) {
      fail(src, where + ": shape dimension " + brief(d) + " is too large");
    }
    out.shape.push_back(static_cast<int64_t>(n));
    overflow |= __builtin_mul_overflow(out.count, n, &out.count);
  }
  if (std::find(out.shape.begin(), out.shape.end(), 0) != out.shape.end()) {
    out.count = 0;  // empty, however large the other dimensions
    overflow = false;
  }

  const json& offs = field("data_offsets");
  if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() ||
      !offs[1].is_number_unsigned()) {
    const std::string found =
        offs.is_array() && offs.size() == 2
            ? "[" + brief(offs[0]) + ", " + brief(offs[1]) + "]"
            : (offs.is_array() ? "an array of " + std::to_string(offs.size()) + " values"
                               : brief(offs));
    fail(src, where + ": \"data_offsets\" must be [begin, end], two non-negative integers, found " +
                  found);
  }
  out.begin = offs[0].get<uint64_t>();
  out.end = offs[1].get<uint64_t>();
  if (out.end < out.begin) {
    fail(src,
         where + ": data_offsets " + offsets_str(out.begin, out.end) + " end before they begin");
  }

  const size_t elem = dtype_bytes(out.dtype);
  if (elem == 0) {
    fail(src, where + " has dtype " + show(out.dtype) + "; only F32 and F64 can be read");
  }
  uint64_t bytes = 0;
  overflow |= __builtin_mul_overflow(out.count, elem, &bytes);
  if (overflow || bytes != out.end - out.begin) {
    fail(src, where + ": shape " + shape_str(out.shape) + " of " + out.dtype + " needs " +
                  (overflow ? std::string("more than 2^64") : std::to_string(bytes)) +
                  " bytes but data_offsets " + offsets_str(out.begin, out.end) + " hold " +
                  std::to_string(out.end - out.begin));
  }
  return out;
}

// The entries must tile the data exactly: sorted by begin, each starts where the previous ended.
void check_coverage(const std::string& src, std::vector<const Entry*> entries, uint64_t data_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  uint64_t expected = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : entries) {
    if (e->begin < expected) {
      fail(src, "tensors " + show(prev->name) + " " + offsets_str(prev->begin, prev->end) +
                    " and " + show(e->name) + " " + offsets_str(e->begin, e->end) + " overlap");
    }
    if (e->begin > expected) {
      fail(src, "data bytes " + std::to_string(expected) + " to " + std::to_string(e->begin) +
                    " belong to no tensor (gap before " + show(e->name) + ")");
    }
    expected = e->end;
    if (e->end > e->begin) prev = e;  // an empty tensor cannot overlap anything
  }
  if (expected != data_size) {
    fail(src, "data has " + std::to_string(data_size) + " bytes but the tensors cover only " +
                  std::to_string(expected) + " (trailing bytes belong to no tensor)");
  }
}

// ---------------------------------------------------------------------------------------------
// checkpoint metadata

// Typed, checked access to __metadata__ with messages naming the key.
class Meta {
 public:
  Meta(const std::map<std::string, std::string>& m, const std::string& src) : m_(m), src_(src) {}

  const std::string* find(const std::string& key) const {
    const auto it = m_.find(key);
    return it == m_.end() ? nullptr : &it->second;
  }
  const std::string& str(const std::string& key) const {
    const std::string* v = find(key);
    if (v == nullptr) fail(src_, "metadata \"" + key + "\" is missing");
    return *v;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi) const {
    const std::string& s = str(key);
    int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
      fail(src_, "metadata \"" + key + "\" is " + show(s) + ", not an integer");
    }
    if (v < lo || v > hi) {
      fail(src_, "metadata \"" + key + "\" is " + s + ", expected " + std::to_string(lo) + " to " +
                     std::to_string(hi));
    }
    return v;
  }
  enum Bounds { kClosed, kOpen };  // whether lo and hi themselves are allowed
  // A finite number between lo and hi.
  double real(const std::string& key, double lo, double hi, Bounds bounds = kClosed) const {
    const std::string& s = str(key);
    double v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty() || !std::isfinite(v)) {
      fail(src_, "metadata \"" + key + "\" is " + show(s) + ", not a finite number");
    }
    const bool open = bounds == kOpen;
    if (v < lo || v > hi || (open && (v == lo || v == hi))) {
      fail(src_, "metadata \"" + key + "\" is " + s + ", expected " + (open ? "> " : ">= ") +
                     format_double(lo) + " and " + (open ? "< " : "<= ") + format_double(hi));
    }
    return v;
  }
  // Metadata values that hold JSON text.
  json json_value(const std::string& key) const {
    const std::string& s = str(key);
    try {
      return json::parse(s);
    } catch (const json::exception& e) {
      fail(src_, "metadata \"" + key + "\" is not valid JSON: " + json_reason(e));
    }
  }

 private:
  const std::map<std::string, std::string>& m_;
  const std::string& src_;
};

// Copies the tensor into dst after checking every value is finite (and >= 0 when asked).
void take_values(const std::string& src, const std::string& name, const std::vector<float>& data,
                 float* dst, bool non_negative = false) {
  for (size_t i = 0; i < data.size(); ++i) {
    const float x = data[i];
    if (!std::isfinite(x)) {
      fail(src, "tensor " + name + " has a non-finite value (" + (std::isnan(x) ? "nan" : "inf") +
                    ") at index " + std::to_string(i));
    }
    if (non_negative && x < 0) {
      fail(src, "tensor " + name + " has a negative value (" + format_double(x) + ") at index " +
                    std::to_string(i) + "; it holds squared gradients");
    }
  }
  std::copy(data.begin(), data.end(), dst);
}

std::vector<double> number_array(const std::string& src, const std::string& what, const json& a,
                                 size_t expected) {
  if (!a.is_array()) fail(src, what + " must be an array of numbers, found " + brief(a));
  if (a.size() != expected) {
    fail(src, what + " has " + std::to_string(a.size()) +
                  " values but the model has dim=" + std::to_string(expected));
  }
  std::vector<double> out;
  for (const json& x : a) {
    if (!x.is_number()) fail(src, what + " must hold numbers, found " + brief(x));
    out.push_back(x.get<double>());
  }
  return out;
}

Normalization parse_normalization(const Meta& meta, const std::string& src, int dim) {
  const json j = meta.json_value("normalization");
  const std::string what = "metadata \"normalization\"";
  if (!j.is_object()) {
    fail(src, what + " must be an object {\"mean\": [..], \"std\": [..]}, found " + brief(j));
  }
  for (const char* key : {"mean", "std"}) {
    if (!j.contains(key)) fail(src, what + " has no \"" + key + "\"");
  }
  Normalization n;
  n.mean = number_array(src, what + " mean", j["mean"], dim);
  n.std = number_array(src, what + " std", j["std"], dim);
  for (int i = 0; i < dim; ++i) {
    if (!(n.std[i] > 0)) {
      fail(src, what + " std[" + std::to_string(i) + "] is " + format_double(n.std[i]) +
                    ", must be > 0");
    }
  }
  return n;
}

DataRange parse_range(const Meta& meta, const std::string& src, int dim) {
  const json j = meta.json_value("range");
  const std::string what = "metadata \"range\"";
  if (!j.is_object()) {
    fail(src, what + " must be an object {\"min\": [..], \"max\": [..], \"integer\": [..]}, " +
                  "found " + brief(j));
  }
  for (const char* key : {"min", "max", "integer"}) {
    if (!j.contains(key)) fail(src, what + " has no \"" + key + "\"");
  }
  DataRange r;
  r.min = number_array(src, what + " min", j["min"], dim);
  r.max = number_array(src, what + " max", j["max"], dim);
  const json& ints = j["integer"];
  if (!ints.is_array() || ints.size() != static_cast<size_t>(dim)) {
    fail(src, what + " integer must be an array of " + std::to_string(dim) + " true/false, found " +
                  brief(ints));
  }
  for (const json& b : ints) {
    if (!b.is_boolean()) fail(src, what + " integer must hold true/false, found " + brief(b));
    r.integer.push_back(b.get<bool>());
  }
  for (int i = 0; i < dim; ++i) {
    if (!std::isfinite(r.min[i]) || !std::isfinite(r.max[i]) || !(r.min[i] <= r.max[i])) {
      fail(src, what + " column " + std::to_string(i) + " has min " + format_double(r.min[i]) +
                    " and max " + format_double(r.max[i]) + ", expected finite min <= max");
    }
  }
  return r;
}

std::vector<std::string> parse_columns(const Meta& meta, const std::string& src, int dim) {
  const json j = meta.json_value("columns");
  if (!j.is_array()) fail(src, "metadata \"columns\" must be a JSON array of strings");
  if (j.size() != static_cast<size_t>(dim)) {
    fail(src, "metadata \"columns\" names " + std::to_string(j.size()) +
                  " columns but the model has dim=" + std::to_string(dim));
  }
  std::vector<std::string> out;
  for (const json& c : j) {
    if (!c.is_string()) fail(src, "metadata \"columns\" must hold strings, found " + brief(c));
    out.push_back(c.get<std::string>());
  }
  return out;
}

// "classes" and "class_counts": as many names (distinct strings) as counts (integers >= 1).
void parse_classes(const Meta& meta, const std::string& src, Checkpoint& ck) {
  const json names = meta.json_value("classes");
  if (!names.is_array() || names.empty()) {
    fail(src, "metadata \"classes\" must be a non-empty JSON array of strings");
  }
  std::set<std::string> seen;
  for (const json& c : names) {
    if (!c.is_string()) fail(src, "metadata \"classes\" must hold strings, found " + brief(c));
    if (!seen.insert(c.get<std::string>()).second) {
      fail(src, "metadata \"classes\" names class " + show(c.get<std::string>()) + " twice");
    }
    ck.classes.push_back(c.get<std::string>());
  }
  const json counts = meta.json_value("class_counts");
  if (!counts.is_array() || counts.size() != names.size()) {
    fail(src, "metadata \"class_counts\" must be a JSON array of " + std::to_string(names.size()) +
                  " row counts, one per class");
  }
  for (const json& n : counts) {
    if (!n.is_number_integer() || n.get<int64_t>() < 1) {
      fail(src, "metadata \"class_counts\" must hold integers >= 1, found " + brief(n));
    }
    ck.class_counts.push_back(n.get<int64_t>());
  }
  if (ck.classes.size() > static_cast<size_t>(kMaxClasses)) {
    fail(src, "metadata \"classes\" names " + std::to_string(ck.classes.size()) +
                  " classes, at most " + std::to_string(kMaxClasses) + " are supported");
  }
  ck.model.classes = static_cast<int>(ck.classes.size());
  const std::string* column = meta.find("label_column");
  ck.label_column = column != nullptr ? *column : "label";
}

std::array<uint64_t, 4> parse_rng(const Meta& meta, const std::string& src) {
  const json j = meta.json_value("train.rng");
  const std::string rule = "metadata \"train.rng\" must be an array of 4 decimal strings";
  if (!j.is_array() || j.size() != 4) {
    fail(src,
         rule + ", found " +
             (j.is_array() ? "an array of " + std::to_string(j.size()) + " values" : brief(j)));
  }
  std::array<uint64_t, 4> s{};
  for (size_t i = 0; i < 4; ++i) {
    if (!j[i].is_string()) fail(src, rule + ", found " + brief(j[i]));
    const std::string& t = j[i].get_ref<const std::string&>();
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), s[i]);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size()) {
      fail(src, rule + " (unsigned 64-bit), found " + show(t));
    }
  }
  if (s == std::array<uint64_t, 4>{}) {
    fail(src, "metadata \"train.rng\" is all zeros, which is not a valid xoshiro256++ state");
  }
  return s;
}

const RawTensor* find_tensor(const SafeTensors& st, const std::string& name) {
  const auto it = st.tensors.find(name);
  return it == st.tensors.end() ? nullptr : &it->second;
}

void check_train_tensor(const std::string& src, const std::string& name, const RawTensor& t,
                        size_t n) {
  if (t.shape != std::vector<int64_t>{static_cast<int64_t>(n)}) {
    fail(src, "tensor " + name + " has shape " + shape_str(t.shape) + ", expected [" +
                  std::to_string(n) + "] (one value per model parameter)");
  }
}

TrainState parse_train_state(const SafeTensors& st, const Meta& meta, const std::string& src,
                             size_t n) {
  TrainState ts;
  for (const char* name : {kAdamM, kAdamV}) {
    if (find_tensor(st, name) == nullptr) {
      fail(src, std::string("the file has train state but tensor ") + name + " is missing");
    }
  }
  const RawTensor& m = *find_tensor(st, kAdamM);
  const RawTensor& v = *find_tensor(st, kAdamV);
  check_train_tensor(src, kAdamM, m, n);
  check_train_tensor(src, kAdamV, v, n);
  ts.adam.m.resize(n);
  ts.adam.v.resize(n);
  take_values(src, kAdamM, m.data, ts.adam.m.data());
  take_values(src, kAdamV, v.data, ts.adam.v.data(), /*non_negative=*/true);
  if (const RawTensor* raw = find_tensor(st, kRaw)) {
    check_train_tensor(src, kRaw, *raw, n);
    ts.raw_params.resize(n);
    take_values(src, kRaw, raw->data, ts.raw_params.data());
  }

  ts.epoch = static_cast<int>(meta.integer("train.epoch", 0, INT_MAX));
  ts.adam.step_count = meta.integer("train.adam.step", 0, INT64_MAX);
  constexpr double kHuge = std::numeric_limits<double>::max();
  ts.adam.config.lr = meta.real("train.adam.lr", 0, kHuge);
  ts.adam.config.beta1 = meta.real("train.adam.beta1", 0, 1, Meta::kOpen);
  ts.adam.config.beta2 = meta.real("train.adam.beta2", 0, 1, Meta::kOpen);
  ts.adam.config.eps = meta.real("train.adam.eps", 0, kHuge);
  ts.rng = parse_rng(meta, src);
  ts.train_config_json = meta.str("train.config");
  if (!ts.train_config_json.empty()) meta.json_value("train.config");  // must parse
  return ts;
}

Checkpoint checkpoint_from(const SafeTensors& st, const std::string& src) {
  const Meta meta(st.metadata, src);
  const std::string* format = meta.find("format");
  if (format == nullptr) {
    fail(src, "not a diffuse checkpoint: metadata has no \"format\" (expected \"diffuse\")");
  }
  if (*format != kFormatName) {
    fail(src, "not a diffuse checkpoint: metadata \"format\" is " + show(*format) +
                  ", expected \"diffuse\"");
  }
  const int64_t version = meta.integer("format_version", INT64_MIN, INT64_MAX);
  if (version > kCheckpointFormatVersion) {
    fail(src, "written by a newer diffuse: version " + std::to_string(version) +
                  ", this build reads up to " + std::to_string(kCheckpointFormatVersion));
  }
  if (version < 1) {
    fail(src,
         "metadata \"format_version\" is " + std::to_string(version) + ", versions start at 1");
  }

  Checkpoint ck;
  ck.model.dim = static_cast<int>(meta.integer("dim", 1, INT_MAX));
  ck.model.hidden = static_cast<int>(meta.integer("hidden", 1, INT_MAX));
  ck.model.T = static_cast<int>(meta.integer("T", 2, INT_MAX));
  // Version 1 files predate the choice of network and target: the tutorial's, predicting eps.
  if (const std::string* m = meta.find("model")) {
    const std::optional<ModelKind> mk = model_kind_from_string(*m);
    if (!mk) fail(src, "metadata \"model\" is " + show(*m) + ", expected tutorial or resmlp");
    ck.model.kind = *mk;
  }
  if (ck.model.kind == ModelKind::kResMlp) {
    ck.model.depth = static_cast<int>(meta.integer("depth", 1, 64));
  }
  // Absent from files written before the option and from every K = 0 file: no features. (validate
  // below refuses them on the tutorial's network.)
  if (meta.find("fourier_features")) {
    ck.model.fourier_features =
        static_cast<int>(meta.integer("fourier_features", 0, kMaxFourierFeatures));
  }
  if (const std::string* p = meta.find("prediction")) {
    const std::optional<Prediction> pk = prediction_from_string(*p);
    if (!pk) fail(src, "metadata \"prediction\" is " + show(*p) + ", expected eps, x0 or v");
    ck.model.prediction = *pk;
  }
  if (meta.find("classes") || meta.find("class_counts")) parse_classes(meta, src, ck);
  try {
    validate(ck.model);
  } catch (const UsageError& e) {
    fail(src, std::string("metadata describes an invalid model: ") + e.what());
  }
  const int D = ck.model.dim, H = ck.model.hidden, T = ck.model.T;

  const std::string& kind = meta.str("schedule");
  const std::optional<ScheduleKind> k = schedule_from_string(kind);
  if (!k) {
    std::string names;
    for (const std::string& n : schedule_names()) names += (names.empty() ? "" : ", ") + n;
    fail(src, "metadata \"schedule\" is " + show(kind) + ", expected one of " + names);
  }
  ck.schedule.kind = *k;
  ck.schedule.T = T;
  ck.schedule.beta_start = meta.real("beta_start", 0, 1, Meta::kOpen);
  ck.schedule.beta_end = meta.real("beta_end", 0, 1, Meta::kOpen);
  ck.schedule.cosine_s = meta.real("cosine_s", 0, std::numeric_limits<double>::max());

  // Names first: every model tensor, nothing unknown.
  const std::vector<TensorInfo> layout = param_layout(ck.model);
  std::set<std::string> known = {kAdamM, kAdamV, kRaw};
  std::string missing, extra;
  for (const TensorInfo& t : layout) {
    known.insert(t.name);
    if (find_tensor(st, t.name) == nullptr) missing += (missing.empty() ? "" : ", ") + t.name;
  }
  if (!missing.empty()) fail(src, "missing model tensor(s): " + missing);
  for (const auto& [name, t] : st.tensors) {
    if (!known.count(name)) extra += (extra.empty() ? "" : ", ") + show(name);
  }
  if (!extra.empty()) {
    fail(src, "unexpected tensor(s): " + extra + " (a diffuse checkpoint holds the " +
                  std::to_string(layout.size()) + " tensors of its " + to_string(ck.model.kind) +
                  " model and train.adam.m, train.adam.v, train.raw)");
  }

  // The metadata sizes must be the tensors' sizes; saying which one disagrees beats a bare
  // shape mismatch.
  const char* first = ck.model.kind == ModelKind::kTutorial ? "lin1.lin.weight" : "inp.weight";
  const int first_in = ck.model.kind == ModelKind::kTutorial ? D : resmlp_inputs(ck.model);
  const RawTensor& w1 = *find_tensor(st, first);
  if (w1.shape.size() == 2 && w1.shape[0] != H) {
    fail(src, "metadata says hidden=" + std::to_string(H) + " but tensor " + first + " is " +
                  std::to_string(w1.shape[0]) + " wide (shape " + shape_str(w1.shape) + ")");
  }
  if (w1.shape.size() == 2 && w1.shape[1] != first_in) {
    const int K = ck.model.fourier_features;
    fail(src, "metadata says dim=" + std::to_string(D) +
                  (K > 0 ? ", fourier_features=" + std::to_string(K) : std::string()) +
                  " but tensor " + first + " takes " + std::to_string(w1.shape[1]) +
                  " inputs, not " + std::to_string(first_in) + " (shape " + shape_str(w1.shape) +
                  ")");
  }
  const RawTensor* e1 =
      ck.model.kind == ModelKind::kTutorial ? find_tensor(st, "lin1.embed.weight") : nullptr;
  if (e1 != nullptr && e1->shape.size() == 2 && e1->shape[0] != T) {
    fail(src, "metadata says T=" + std::to_string(T) + " but tensor lin1.embed.weight has " +
                  std::to_string(e1->shape[0]) + " rows, one per timestep (shape " +
                  shape_str(e1->shape) + ")");
  }
  for (const TensorInfo& info : layout) {
    const RawTensor& t = *find_tensor(st, info.name);
    if (t.shape != info.shape) {
      fail(src, "tensor " + info.name + " has shape " + shape_str(t.shape) + ", expected " +
                    shape_str(info.shape) + " for dim=" + std::to_string(D) +
                    ", hidden=" + std::to_string(H) + ", T=" + std::to_string(T));
    }
  }
  // Shapes match metadata and the data fit in the file, so these sizes are real.
  ck.params.resize(param_count(ck.model));
  for (const TensorInfo& info : layout) {
    take_values(src, info.name, find_tensor(st, info.name)->data, ck.params.data() + info.offset);
  }

  if (meta.find("normalization")) ck.normalization = parse_normalization(meta, src, D);
  if (meta.find("range")) ck.range = parse_range(meta, src, D);
  if (meta.find("columns")) ck.columns = parse_columns(meta, src, D);
  for (const auto& [key, value] : st.metadata) {
    if (key.rfind(kInfoPrefix, 0) == 0) ck.info[key.substr(std::strlen(kInfoPrefix))] = value;
  }

  bool has_train = false;
  for (const auto& [name, t] : st.tensors) has_train |= name.rfind("train.", 0) == 0;
  for (const auto& [key, v] : st.metadata) has_train |= key.rfind("train.", 0) == 0;
  if (has_train) ck.train_state = parse_train_state(st, meta, src, ck.params.size());
  return ck;
}

// ---------------------------------------------------------------------------------------------
// checkpoint writing

[[noreturn]] void refuse(const std::string& path, const std::string& what) {
  throw Error(path + ": cannot save checkpoint: " + what);
}

RawTensor flat_tensor(const std::vector<float>& x) {
  return RawTensor{"F32", {static_cast<int64_t>(x.size())}, x};
}

SafeTensors checkpoint_to_safetensors(const std::string& path, const Checkpoint& ck) {
  try {
    validate(ck.model);
  } catch (const UsageError& e) {
    refuse(path, e.what());
  }
  const int D = ck.model.dim;
  if (ck.schedule.T != ck.model.T) {
    refuse(path, "schedule has T=" + std::to_string(ck.schedule.T) +
                     " but the model has T=" + std::to_string(ck.model.T));
  }
  const size_t n = param_count(ck.model);
  if (ck.params.size() != n) {
    refuse(path,
           std::to_string(ck.params.size()) + " weights, the model needs " + std::to_string(n));
  }
  const Normalization& norm = ck.normalization;
  if (!norm.empty() &&
      (norm.mean.size() != static_cast<size_t>(D) || norm.std.size() != norm.mean.size())) {
    refuse(path, "normalization has " + std::to_string(norm.mean.size()) + " means and " +
                     std::to_string(norm.std.size()) + " stds for dim=" + std::to_string(D));
  }
  for (size_t i = 0; i < norm.mean.size(); ++i) {
    if (!std::isfinite(norm.mean[i]) || !(norm.std[i] > 0) || !std::isfinite(norm.std[i])) {
      refuse(path, "normalization column " + std::to_string(i) + " has mean " +
                       format_double(norm.mean[i]) + ", std " + format_double(norm.std[i]));
    }
  }
  const DataRange& range = ck.range;
  if (!range.empty() &&
      (range.min.size() != static_cast<size_t>(D) || range.max.size() != range.min.size() ||
       range.integer.size() != range.min.size())) {
    refuse(path, "range has " + std::to_string(range.min.size()) + " minima, " +
                     std::to_string(range.max.size()) + " maxima and " +
                     std::to_string(range.integer.size()) +
                     " integer flags for dim=" + std::to_string(D));
  }
  for (size_t i = 0; i < range.min.size(); ++i) {
    if (!std::isfinite(range.min[i]) || !std::isfinite(range.max[i]) ||
        !(range.min[i] <= range.max[i])) {
      refuse(path, "range column " + std::to_string(i) + " has min " + format_double(range.min[i]) +
                       ", max " + format_double(range.max[i]));
    }
  }
  if (!ck.columns.empty() && ck.columns.size() != static_cast<size_t>(D)) {
    refuse(path, std::to_string(ck.columns.size()) + " column names for dim=" + std::to_string(D));
  }
  if (ck.classes.size() != static_cast<size_t>(ck.model.classes) ||
      ck.class_counts.size() != ck.classes.size()) {
    refuse(path, std::to_string(ck.classes.size()) + " class names and " +
                     std::to_string(ck.class_counts.size()) + " class counts for a model of " +
                     std::to_string(ck.model.classes) + " classes");
  }
  for (size_t k = 0; k < ck.classes.size(); ++k) {
    if (ck.class_counts[k] < 1) {
      refuse(path, "class " + ck.classes[k] + " has " + std::to_string(ck.class_counts[k]) +
                       " rows, expected at least 1");
    }
    for (size_t i = 0; i < k; ++i) {
      if (ck.classes[i] == ck.classes[k]) refuse(path, "class " + ck.classes[k] + " named twice");
    }
  }

  SafeTensors st;
  for (const TensorInfo& info : param_layout(ck.model)) {
    const auto first = ck.params.begin() + static_cast<std::ptrdiff_t>(info.offset);
    st.tensors[info.name] =
        RawTensor{"F32", info.shape,
                  std::vector<float>(first, first + static_cast<std::ptrdiff_t>(info.size))};
  }
  auto& md = st.metadata;
  md["format"] = kFormatName;
  // A tutorial model predicting eps is a version 1 file, which every earlier build reads; any other
  // model says it needs a build that knows "model" and "prediction".
  const bool v1 = ck.model.kind == ModelKind::kTutorial && ck.model.prediction == Prediction::kEps;
  // Input Fourier features make version 4 and a conditional model version 3; any other model
  // stays version 2, readable as before (an earlier build refuses a newer file by its version,
  // instead of misreading inp.weight's width).
  md["format_version"] = std::to_string(v1                              ? 1
                                        : ck.model.fourier_features > 0 ? kCheckpointFormatVersion
                                        : ck.model.classes > 0          ? 3
                                                                        : 2);
  if (!v1) {
    md["model"] = to_string(ck.model.kind);
    md["prediction"] = to_string(ck.model.prediction);
    if (ck.model.kind == ModelKind::kResMlp) md["depth"] = std::to_string(ck.model.depth);
    if (ck.model.fourier_features > 0) {
      md["fourier_features"] = std::to_string(ck.model.fourier_features);
    }
  }
  md["dim"] = std::to_string(ck.model.dim);
  md["hidden"] = std::to_string(ck.model.hidden);
  md["T"] = std::to_string(ck.model.T);
  md["schedule"] = to_string(ck.schedule.kind);
  md["beta_start"] = format_double(ck.schedule.beta_start);
  md["beta_end"] = format_double(ck.schedule.beta_end);
  md["cosine_s"] = format_double(ck.schedule.cosine_s);
  // nlohmann writes doubles in the shortest form that reads back to the same bits.
  if (!norm.empty()) md["normalization"] = json{{"mean", norm.mean}, {"std", norm.std}}.dump();
  if (!range.empty()) {
    md["range"] = json{{"min", range.min}, {"max", range.max}, {"integer", range.integer}}.dump();
  }
  if (!ck.columns.empty()) md["columns"] = json(ck.columns).dump();
  if (ck.model.classes > 0) {
    md["classes"] = json(ck.classes).dump();
    md["class_counts"] = json(ck.class_counts).dump();
    md["label_column"] = ck.label_column.empty() ? "label" : ck.label_column;
  }
  for (const auto& [key, value] : ck.info) md[kInfoPrefix + key] = value;

  if (ck.train_state) {
    const TrainState& ts = *ck.train_state;
    if (ts.adam.m.size() != n || ts.adam.v.size() != n) {
      refuse(path, "Adam moments have " + std::to_string(ts.adam.m.size()) + " and " +
                       std::to_string(ts.adam.v.size()) + " values, the model has " +
                       std::to_string(n) + " weights");
    }
    if (!ts.raw_params.empty() && ts.raw_params.size() != n) {
      refuse(path, "train state has " + std::to_string(ts.raw_params.size()) +
                       " raw weights, the model has " + std::to_string(n));
    }
    st.tensors[kAdamM] = flat_tensor(ts.adam.m);
    st.tensors[kAdamV] = flat_tensor(ts.adam.v);
    if (!ts.raw_params.empty()) st.tensors[kRaw] = flat_tensor(ts.raw_params);
    md["train.epoch"] = std::to_string(ts.epoch);
    md["train.adam.step"] = std::to_string(ts.adam.step_count);
    md["train.adam.lr"] = format_double(ts.adam.config.lr);
    md["train.adam.beta1"] = format_double(ts.adam.config.beta1);
    md["train.adam.beta2"] = format_double(ts.adam.config.beta2);
    md["train.adam.eps"] = format_double(ts.adam.config.eps);
    json rng = json::array();
    for (uint64_t s : ts.rng) rng.push_back(std::to_string(s));
    md["train.rng"] = rng.dump();
    md["train.config"] = ts.train_config_json;
  }
  for (const auto& [name, t] : st.tensors) {
    const auto bad =
        std::find_if(t.data.begin(), t.data.end(), [](float x) { return !std::isfinite(x); });
    if (bad != t.data.end()) {
      refuse(path, "tensor " + name + " has a non-finite value at index " +
                       std::to_string(bad - t.data.begin()));
    }
  }
  return st;
}

}  // namespace

SafeTensors parse_safetensors(std::string_view bytes, const std::string& source) {
  if (bytes.size() < 8) {
    fail(source, "file is " + std::to_string(bytes.size()) +
                     " bytes, too short for safetensors (it starts with an 8-byte header length)");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > bytes.size() - 8) {
    fail(source, "header length " + std::to_string(header_len) + " is larger than the file (" +
                     std::to_string(bytes.size()) + " bytes): truncated or not safetensors");
  }
  const std::string_view header = bytes.substr(8, header_len);
  const std::string_view data = bytes.substr(8 + header_len);

  json h;
  try {
    h = json::parse(header.begin(), header.end());
  } catch (const json::parse_error& e) {
    // e.byte counts from 1 within the header.
    const uint64_t offset = 8 + (e.byte > 0 ? e.byte - 1 : 0);
    fail(source, "header is not valid JSON at file offset " + std::to_string(offset) + ": " +
                     json_reason(e));
  } catch (const json::exception& e) {
    fail(source, "header is not valid JSON: " + json_reason(e));
  }
  if (!h.is_object()) fail(source, "header must be a JSON object, found " + brief(h));

  SafeTensors st;
  std::vector<Entry> entries;
  entries.reserve(h.size());
  for (const auto& [name, value] : h.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) {
        fail(source, "\"__metadata__\" must be an object of strings, found " + brief(value));
      }
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) {
          fail(source, "metadata " + show(key) + " must be a string, found " + brief(v));
        }
        st.metadata[key] = v.get<std::string>();
      }
      continue;
    }
    Entry e = parse_entry(source, name, value);
    if (e.end > data.size()) {
      fail(source, "tensor " + show(name) + ": data_offsets " + offsets_str(e.begin, e.end) +
                       " run past the end of the data (" + std::to_string(data.size()) + " bytes)");
    }
    entries.push_back(std::move(e));
  }
  std::vector<const Entry*> order;
  for (const Entry& e : entries) order.push_back(&e);
  check_coverage(source, order, data.size());

  for (const Entry& e : entries) {
    RawTensor t;
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.data.resize(e.count);
    const char* p = data.data() + e.begin;
    if (e.count == 0) {
      // nothing to copy (and memcpy must not see an empty vector's null pointer)
    } else if (e.dtype == "F32") {
      std::memcpy(t.data.data(), p, e.count * sizeof(float));
    } else {  // F64, converted
      for (uint64_t i = 0; i < e.count; ++i) {
        double x = 0;
        std::memcpy(&x, p + i * sizeof(double), sizeof(double));
        t.data[i] = static_cast<float>(x);
      }
    }
    st.tensors[e.name] = std::move(t);
  }
  return st;
}

SafeTensors read_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_safetensors(bytes, path);
}

std::string serialize_safetensors(const SafeTensors& st) {
  json h = json::object();  // std::map underneath: keys sorted, so the bytes are deterministic
  uint64_t offset = 0;
  for (const auto& [name, t] : st.tensors) {
    if (name == kMetadataKey) throw Error("cannot write a tensor named \"__metadata__\"");
    uint64_t count = 1;
    for (int64_t d : t.shape) {
      if (d < 0)
        throw Error("cannot write tensor " + name + ": negative shape " + shape_str(t.shape));
      count *= static_cast<uint64_t>(d);
    }
    if (count != t.data.size()) {
      throw Error("cannot write tensor " + name + ": shape " + shape_str(t.shape) + " has " +
                  std::to_string(count) + " elements but the data have " +
                  std::to_string(t.data.size()));
    }
    const uint64_t end = offset + count * sizeof(float);
    h[name] =
        json{{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", json::array({offset, end})}};
    offset = end;
  }
  if (!st.metadata.empty()) h[kMetadataKey] = st.metadata;

  std::string text;
  try {
    text = h.dump();
  } catch (const json::exception& e) {  // names and values must be valid UTF-8
    throw Error("cannot write safetensors header: " + json_reason(e));
  }
  // Pad so the data start 8-byte aligned (safetensors recommends it; readers ignore the spaces).
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n = text.size();
  char len[8];
  std::memcpy(len, &n, 8);
  out.append(len, 8);
  out += text;
  for (const auto& [name, t] : st.tensors) {
    if (!t.data.empty()) {
      out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
    }
  }
  return out;
}

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  const SafeTensors st = checkpoint_to_safetensors(path, ckpt);
  std::string bytes;
  try {
    bytes = serialize_safetensors(st);
  } catch (const Error& e) {
    refuse(path, e.what());
  }
  write_file_atomic(path, bytes);
}

Checkpoint load_checkpoint(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse_checkpoint(bytes, path);
}

Checkpoint parse_checkpoint(std::string_view bytes, const std::string& source) {
  return checkpoint_from(parse_safetensors(bytes, source), source);
}

}  // namespace diffuse
