// Adam and global gradient-norm clipping with PyTorch's semantics (torch.optim.Adam,
// torch.nn.utils.clip_grad_norm_), over the model's flat parameter buffer. Not a general optimizer
// library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "diffuse/model.h"

namespace diffuse {

struct AdamConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// Kingma & Ba 2015, Algorithm 1, in PyTorch's form: p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps).
struct Adam {
  AdamConfig config;
  int64_t step_count = 0;
  std::vector<float> m, v;  // first and second moments, one per parameter

  Adam() = default;
  Adam(size_t n, const AdamConfig& c);
  // One update with learning rate lr (a scheduler may vary it).
  void step(float* params, const float* grads, double lr);

  // step() split for threads that share one update: begin_step advances step_count and returns
  // the step's scalars; update applies them to params[lo, hi) (disjoint ranges, any order).
  // step() is begin_step and one update over all parameters, with the same arithmetic.
  struct StepScalars {
    float b1, b2, one_minus_b1, one_minus_b2, step_size, bc2_sqrt, eps;
  };
  StepScalars begin_step(double lr);
  // Also, in the same pass: the gradients are scaled by grad_scale first (clipping; 1 leaves them
  // exact), and when ema is not null, ema = ema_decay * ema + (1 - ema_decay) * params afterwards.
  void update(const StepScalars& s, float* params, const float* grads, size_t lo, size_t hi,
              float grad_scale = 1.0f, float* ema = nullptr, float ema_decay = 0.0f);
};

// The norm clip_grad_norm computes, without scaling anything.
float grad_norm(const float* grads, const std::vector<TensorInfo>& layout);
// grad_norm in parts, for threads that each hold a slice of the gradients: each adds the squares of
// grads[lo, hi) to sq (a double per tensor of layout, in a fixed order); norm_from_squares then
// gives the norm from the summed squares.
void add_squares(const float* grads, const std::vector<TensorInfo>& layout, size_t lo, size_t hi,
                 double* sq);
float norm_from_squares(const double* sq, size_t tensors);

// The factor clip_grad_norm scales the gradients by: max_norm / (norm + 1e-6) as torch, at most 1
// (1 leaves them exact).
float clip_coefficient(float norm, float max_norm);

// L2 norm of all gradients together (norm of the per-tensor norms, as PyTorch), then scales them by
// max_norm / (norm + 1e-6) when that is below 1. Returns the norm before clipping.
float clip_grad_norm(float* grads, const std::vector<TensorInfo>& layout, float max_norm);

}  // namespace diffuse
