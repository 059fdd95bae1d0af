// libFuzzer target for the checkpoint loader (parse_checkpoint, the in-memory twin of
// load_checkpoint): any bytes must give a checkpoint that is safe to sample from, or one
// diffuse::Error line naming the source. Not a test of the values themselves.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/checkpoint.h"
#include "diffuse/error.h"

namespace {

// A broken promise is a crash: libFuzzer saves the input that caused it.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "checkpoint_fuzz: broken invariant: %s\n", what);
    __builtin_trap();
  }
}

void check_message(const diffuse::Error& e, const std::string& source) {
  const std::string_view what = e.what();
  require(what.rfind(source + ":", 0) == 0, "the message starts with the source name");
  require(what.find('\n') == std::string_view::npos, "the message is one line");
}

bool all_finite(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isfinite(x)) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz.safetensors";

  // The generic layer: whatever parses must serialize and parse back to the same tensors.
  try {
    const diffuse::SafeTensors st = diffuse::parse_safetensors(bytes, source);
    std::string again;
    try {
      again = diffuse::serialize_safetensors(st);
    } catch (const diffuse::Error&) {
      return 0;  // e.g. metadata a JSON writer refuses; the loader below rejects it as well
    }
    const diffuse::SafeTensors back = diffuse::parse_safetensors(again, source);
    require(back.metadata == st.metadata, "metadata survive a round trip");
    require(back.tensors.size() == st.tensors.size(), "every tensor survives a round trip");
    for (const auto& [name, t] : st.tensors) {
      const auto it = back.tensors.find(name);
      require(it != back.tensors.end() && it->second.shape == t.shape &&
                  it->second.data.size() == t.data.size(),
              "each tensor keeps its name and shape");
      // Bit patterns, not values: NaN payloads must survive too (memcmp must not see the null
      // data() of an empty vector).
      require(t.data.empty() || std::memcmp(it->second.data.data(), t.data.data(),
                                            t.data.size() * sizeof(float)) == 0,
              "each tensor keeps its bits");
    }
  } catch (const diffuse::Error& e) {
    check_message(e, source);
    return 0;
  }

  // The checkpoint layer: a loaded checkpoint is consistent with the model it describes.
  try {
    const diffuse::Checkpoint ck = diffuse::parse_checkpoint(bytes, source);
    require(ck.model.dim >= 1 && ck.model.hidden >= 1 && ck.model.T >= 2, "sizes are valid");
    require(ck.schedule.T == ck.model.T, "the schedule has the model's T");
    require(ck.params.size() == diffuse::param_count(ck.model), "one weight per parameter");
    require(all_finite(ck.params), "weights are finite");
    const size_t D = static_cast<size_t>(ck.model.dim);
    require(ck.normalization.empty() ||
                (ck.normalization.mean.size() == D && ck.normalization.std.size() == D),
            "normalization has one mean and std per column");
    for (double s : ck.normalization.std) require(s > 0, "normalization std > 0");
    require(ck.columns.empty() || ck.columns.size() == D, "one name per column");
    if (ck.train_state) {
      const diffuse::TrainState& ts = *ck.train_state;
      require(ts.adam.m.size() == ck.params.size() && ts.adam.v.size() == ck.params.size(),
              "Adam moments match the weights");
      require(ts.raw_params.empty() || ts.raw_params.size() == ck.params.size(),
              "raw weights match the weights");
      require(all_finite(ts.adam.m) && all_finite(ts.adam.v) && all_finite(ts.raw_params),
              "train state is finite");
    }
  } catch (const diffuse::UsageError&) {
    require(false, "a bad file is an Error, not a UsageError");
  } catch (const diffuse::Error& e) {
    check_message(e, source);
  }
  return 0;
}
