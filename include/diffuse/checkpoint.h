// Checkpoints as safetensors files (https://github.com/huggingface/safetensors): tensors named and
// shaped as the model's PyTorch state_dict (the tutorial's, or scripts/resmlp_reference.py's), F32,
// with everything sampling needs in __metadata__. Not a general tensor store: loading validates the
// file against the model it describes.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/data_range.h"
#include "diffuse/dataset.h"
#include "diffuse/model.h"
#include "diffuse/optim.h"
#include "diffuse/rng.h"
#include "diffuse/schedule.h"

namespace diffuse {

// 1: the tutorial's model predicting eps (no "model" / "prediction" metadata; still written for
// it). 2: adds "model" (tutorial, resmlp), "prediction" (eps, x0, v) and, for resmlp, "depth".
// 3: a class-conditional model: "classes" and "class_counts" and the label_emb.weight tensor
// (written only for one, so that every unconditional file stays readable by version 2 builds).
// 4: a resmlp with input Fourier features: "fourier_features" (K, 1..kMaxFourierFeatures) and an
// inp.weight of D + E + 2 K D columns (written only for K > 0: a K = 0 file stays version 2 or 3,
// and a file without the key has K = 0).
inline constexpr int kCheckpointFormatVersion = 4;

// What a training run needs to continue bit-for-bit (diffuse train --resume).
struct TrainState {
  int epoch = 0;                  // epochs finished
  Adam adam;                      // moments and step count
  std::array<uint64_t, 4> rng{};  // trainer RNG state
  std::vector<float> raw_params;  // the optimizer's weights when the saved weights are the EMA
  std::string train_config_json;  // the TrainConfig that produced it, for checking on resume
};

struct Checkpoint {
  ModelConfig model;
  ScheduleConfig schedule;
  Normalization normalization;       // empty: data were not standardized
  DataRange range;                   // the training data's range; empty: not stored (old files)
  std::vector<std::string> columns;  // data column names, if any
  // A conditional model's class names, label k = classes[k] (model.classes of them), and the
  // training rows of each (sampling without a class draws them in these proportions).
  std::vector<std::string> classes;
  std::vector<int64_t> class_counts;
  std::string label_column;   // the data column the classes came from (written back on sampling)
  std::vector<float> params;  // the weights to sample from (EMA when trained with EMA)
  std::optional<TrainState> train_state;
  std::map<std::string, std::string> info;  // free-form extra metadata (data source, epochs, ...)
};

// Writes atomically. Tensor names: the state_dict keys of param_layout(); train state, when
// present, as extra 1-D tensors "train.adam.m", "train.adam.v", "train.raw" (omitted when
// raw_params is empty) and metadata keys. Metadata (all values strings): "format" = "diffuse",
// "format_version", "dim", "hidden", "T", "schedule", "beta_start", "beta_end", "cosine_s"
// (%.17g, exact round trip), "model", "prediction", (resmlp) "depth" and (K > 0)
// "fourier_features" unless the model is the tutorial's predicting eps (then a version 1 file
// without them), optional "normalization" {"mean": [..], "std": [..]}, "range" {"min": [..],
// "max": [..], "integer": [true/false..]} (data units), "columns" [..] and (conditional models)
// "classes" [..] and "class_counts" [..] as JSON text and "label_column", "info.KEY" per info
// entry; with train state "train.epoch", "train.adam.step", "train.adam.lr", "train.adam.beta1",
// "train.adam.beta2", "train.adam.eps", "train.rng" (JSON array of 4 decimal strings) and
// "train.config". Throws Error naming path when ckpt is inconsistent (sizes, non-finite weights)
// instead of writing a file load_checkpoint rejects.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Validates everything (header, JSON, names, shapes, dtype, offsets, version, metadata against
// tensors) and throws Error "PATH: what is wrong" on the first problem.
Checkpoint load_checkpoint(const std::string& path);
// The same from the file's bytes in memory (tests, fuzzing); `source` starts every message.
Checkpoint parse_checkpoint(std::string_view bytes, const std::string& source);

// ---- generic safetensors (used by the above and by tests for fixtures) ----
struct RawTensor {
  std::string dtype;  // "F32" (only F32 is written; F32 and F64 are read, F64 converted)
  std::vector<int64_t> shape;
  std::vector<float> data;
};
struct SafeTensors {
  std::map<std::string, RawTensor> tensors;
  std::map<std::string, std::string> metadata;
};
// Reads and checks a whole file (header, JSON, entry fields, offsets contiguous and covering the
// data, shape against byte count); throws Error "PATH: what is wrong".
SafeTensors read_safetensors(const std::string& path);
// The same from bytes in memory; `source` (usually the path) starts every error message.
SafeTensors parse_safetensors(std::string_view bytes, const std::string& source);
std::string serialize_safetensors(const SafeTensors& st);  // deterministic bytes (sorted names)

}  // namespace diffuse
