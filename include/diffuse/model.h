// The networks a denoiser can hold, behind one set of calls (param_layout, Model::init, Workspace,
// model_forward / model_backward / model_predict) that the trainer, the samplers' adapter and the
// checkpoint use without knowing which network it is; ModelConfig::kind picks it:
//
// kTutorial: the tutorial's ConditionalModel with hand-written forward and backward kernels on
// Eigen. Not an autograd: every layer is a *_forward / *_backward pair.
//
//   h1 = softplus((W1 x  + b1) * E1[t])     ConditionalLinear(D, H)
//   h2 = softplus((W2 h1 + b2) * E2[t])     ConditionalLinear(H, H)
//   h3 = softplus((W3 h2 + b3) * E3[t])     ConditionalLinear(H, H)
//   y  = W4 h3 + b4                         Linear(H, D)
//
// kResMlp: a residual MLP with a sinusoidal embedding of time and, optionally, Fourier features of
// its input (include/diffuse/resmlp.h has its layers and kernels), optionally class-conditional
// (ModelConfig::classes): a learned class embedding with one extra "no class" entry, so that one
// network predicts with and without a class (classifier-free guidance, Ho & Salimans 2022).
//
// What the network's output means (the noise, the clean data or v) is ModelConfig::prediction;
// include/diffuse/denoiser.h turns it into the noise the samplers take.
//
// Parameters live in one flat float buffer in PyTorch state_dict order and memory layout
// (Linear weight (out, in) row-major, Embedding weight (T, out) row-major), so a checkpoint is a
// straight copy and Adam, clipping and zeroing are single loops.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "diffuse/rng.h"
#include "diffuse/tensor.h"

namespace diffuse {

// The network inside a denoiser.
enum class ModelKind { kTutorial, kResMlp };
// What the network's output estimates at (x_t, t): the noise eps, the clean data x0, or
// v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0 (Salimans & Ho 2022).
enum class Prediction { kEps, kX0, kV };

std::string to_string(ModelKind k);  // "tutorial", "resmlp"
std::optional<ModelKind> model_kind_from_string(std::string_view name);
std::vector<std::string> model_kind_names();
// The network of that name, or unknown_name_error naming --model.
ModelKind parse_model_kind(std::string_view name);
std::string to_string(Prediction p);  // "eps", "x0", "v"
std::optional<Prediction> prediction_from_string(std::string_view name);
std::vector<std::string> prediction_names();
// The target of that name, or unknown_name_error naming --predict.
Prediction parse_prediction(std::string_view name);

// The shape of one network. Its member defaults describe the tutorial's network (the layout the
// kernels and fixtures start from), not a run's defaults: those are RunConfig's (run.h), which
// builds a ModelConfig from them.
struct ModelConfig {
  int dim = 2;       // D, data dimensions
  int hidden = 128;  // H, hidden width
  int T = 100;       // number of timesteps (tutorial: rows of each embedding table)
  ModelKind kind = ModelKind::kTutorial;
  int depth = 3;  // kResMlp: residual blocks (the tutorial's network has a fixed depth)
  Prediction prediction = Prediction::kEps;
  // C > 0: a class-conditional network (kResMlp only) with C classes 0..C-1 and the null class C
  // ("no class"); the calls below take one label per column. 0: unconditional.
  int classes = 0;
  // K > 0 (kResMlp only): the first layer also sees sin(2^k x_d), cos(2^k x_d) for k = 0..K-1 of
  // every coordinate, 2 K D more inputs (resmlp.h). Lets the network draw a coordinate's fine
  // structure (25gaussians' tight modes) that a plain MLP on x smears. 0: none.
  int fourier_features = 0;
};

// The null ("no class") label of a conditional model: its last embedding row.
inline int null_label(const ModelConfig& c) { return c.classes; }

// One named tensor inside the flat parameter buffer.
struct TensorInfo {
  std::string name;            // PyTorch state_dict key, e.g. "lin1.lin.weight"
  std::vector<int64_t> shape;  // PyTorch shape, e.g. {H, D}
  size_t offset = 0;           // in floats
  size_t size = 0;             // in floats
};

// The tensors in state_dict order. kTutorial, 11: lin{1,2,3}.lin.weight, .lin.bias, .embed.weight;
// lin4.*. kResMlp: see resmlp.h.
std::vector<TensorInfo> param_layout(const ModelConfig& c);
size_t param_count(const ModelConfig& c);
// Throws UsageError unless D >= 1, H >= 1, T >= 2 (and, for kResMlp, 1 <= depth <= 64),
// 0 <= classes <= kMaxClasses, with classes > 0 only for kResMlp ("--label-column" names it), and
// 0 <= fourier_features <= kMaxFourierFeatures, above 0 only for kResMlp ("--fourier-features").
void validate(const ModelConfig& c);
inline constexpr int kMaxClasses = 65536;
// At most 10 octaves: the highest, sin(2^(K-1) x) = sin(512 x) at K = 10, has period
// 2 pi / 512 = 0.012 in standardized units, finer than any structure of the data, and at |x| ~ 4
// float resolves its argument only to 2.4e-4 rad (2% of that period): more octaves would feed the
// network noise. It also bounds the first layer's extra inputs: 2 K D, 20 per coordinate.
inline constexpr int kMaxFourierFeatures = 10;

struct Model {
  ModelConfig config;
  std::vector<float> params;  // flat, param_count(config) floats

  Model() = default;
  explicit Model(const ModelConfig& c);  // zero-filled
  // PyTorch's default initialization: Linear weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
  // embeddings U[0, 1) (the tutorial's embed.weight.data.uniform_()); LayerNorm gain 1, bias 0.
  void init(Rng& rng);
};

// Saved activations and scratch for one batch of up to max_batch columns. Allocated once, so a
// training step or a sampling chunk allocates nothing.
// The tutorial's buffers are empty for another kind, which uses `buffer` instead.
struct Workspace {
  Workspace() = default;
  Workspace(const ModelConfig& c, int max_batch);
  int max_batch = 0;
  ColMatrix a1, a2, a3;  // pre-scale W x + b, (H, B)
  ColMatrix h1, h2, h3;  // after softplus, (H, B)
  // softplus'(z) = sigmoid(z), saved by model_forward for the backward, (H, B)
  ColMatrix s1, s2, s3;
  ColMatrix dh, dz;  // gradient scratch, (H, B)
  ColMatrix dx;      // gradient wrt the input, (D, B)
  // false: model_backward leaves dx alone and skips the first layer's input gradient, which the
  // trainer never reads (x is data). A fifth of a residual-MLP step at D=64 with Fourier features.
  bool input_grad = true;
  std::vector<int32_t> t;  // timestep scratch for model_predict, (B)
  // Transposed weights and a matrix-product panel for the kernels (src/nn/model.cpp).
  std::vector<float, Eigen::aligned_allocator<float>> scratch;
  // kResMlp: its activations and scratch, carved by src/nn/resmlp.cpp.
  std::vector<float, Eigen::aligned_allocator<float>> buffer;
};

// ---- layer kernels (pointers are column-major; B columns = samples) ----

// ConditionalLinear: a = W x + b, z = a * E[t] (per column).
// x is (in, B); W is (out, in) row-major; b is (out); E is (T, out) row-major; t is (B).
// a and z are (out, B).
void cond_linear_forward(float* z, float* a, const float* x, const float* W, const float* b,
                         const float* E, const int32_t* t, int B, int in, int out);
// Overwrites dW (out, in), db (out), dE (T, out) with this batch's gradient; dx (in, B) if not
// null. dz is (out, B) and is overwritten with da = dz * E[t]; x and a are as saved by the forward.
void cond_linear_backward(float* dx, float* dW, float* db, float* dE, float* dz, const float* x,
                          const float* a, const float* W, const float* E, const int32_t* t, int B,
                          int in, int out, int T);

// Linear: y = W x + b, plus residual (out, B) when it is not null (a residual block's sum, added
// as y is written: (W x + b) + residual; it must not alias y). x is (in, B), W is (out, in)
// row-major, y is (out, B).
void linear_forward(float* y, const float* x, const float* W, const float* b, int B, int in,
                    int out, const float* residual = nullptr);
// Overwrites dW and db; dx (in, B) if not null. dy is (out, B).
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x,
                     const float* W, int B, int in, int out);

// PyTorch softplus (beta 1, threshold 20): h = z > 20 ? z : log1p(exp(z)). n elements.
void softplus_forward(float* h, const float* z, size_t n);
// dz = dh * sigmoid(z) (1 where z > 20).
void softplus_backward(float* dz, const float* dh, const float* z, size_t n);

// Mean squared error over n elements, accumulated in double.
float mse_forward(const float* y, const float* target, size_t n);
// dy = 2 (y - target) / n.
void mse_backward(float* dy, const float* y, const float* target, size_t n);

// ---- the whole network ----

// y = eps_theta(x, t[, label]). x is (D, B), t is (B), y is (D, B); B <= ws.max_batch. Saves
// activations. labels (B), each in 0..C (C: the null class), is read only by a conditional model
// (c.classes > 0), for which null means every column has the null class; a label outside 0..C
// throws Error.
void model_forward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                   int B, Workspace& ws, float* y, const int32_t* labels = nullptr);
// The transposed weights (W^T of each layer) that the forward multiplies by, which model_forward
// and model_predict pack on every call. Packed once, one copy serves several forwards on the same
// params (the trainer's threads share one per step).
struct PackedWeights {
  PackedWeights() = default;
  explicit PackedWeights(const ModelConfig& c);  // sized for c
  std::vector<float, Eigen::aligned_allocator<float>> data;
};
// Packs params into packed (sized for c: no allocation). Threads may share the work: the calls
// for part = 0..parts-1 together pack everything, each a different subset of the layers.
void pack_weights(const ModelConfig& c, const float* params, PackedWeights& packed, int part = 0,
                  int parts = 1);
// model_forward with weights that pack_weights packed from these params.
void model_forward(const ModelConfig& c, const float* params, const PackedWeights& packed,
                   const float* x, const int32_t* t, int B, Workspace& ws, float* y,
                   const int32_t* labels = nullptr);

// Given dy (D, B) after model_forward on the same batch (and the same labels), overwrites grads
// (param_count floats) with d loss / d params, and ws.dx with d loss / d x unless
// ws.input_grad is false.
void model_backward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                    int B, const float* dy, Workspace& ws, float* grads,
                    const int32_t* labels = nullptr);

// eps_theta(x, t[, label]) for n columns at one timestep t, in chunks of ws.max_batch (no
// allocation). x and y are (D, n); labels (n) as for model_forward. Used by the samplers.
void model_predict(const ModelConfig& c, const float* params, const float* x, int t, int n,
                   Workspace& ws, float* y, const int32_t* labels = nullptr);

}  // namespace diffuse
