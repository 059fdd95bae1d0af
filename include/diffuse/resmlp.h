// The residual-MLP denoiser network (ModelConfig::kind == ModelKind::kResMlp): a continuous
// sinusoidal embedding of time, LayerNorm and SiLU in pre-norm residual blocks. Its layers as
// *_forward / *_backward kernels with shape comments; the whole network is reached through
// model.h's calls (model_forward, model_backward, model_predict), not from here. Not an autograd.
//
//   e   = [sin(tau f), cos(tau f)],  tau = 1000 t / T,  f_k = 10000^(-k/(E/2))   (E, B)
//   h0  = W_in [x; e] + b_in                              inp: Linear(D + E, H)
//   for l < depth:                                        blocks.l
//     u_l     = LayerNorm_l(h_l)                            .norm: LayerNorm(H)
//     g_l     = silu(W1_l u_l + b1_l)                       .fc1: Linear(H, H)
//     h_{l+1} = h_l + W2_l g_l + b2_l                       .fc2: Linear(H, H)
//   y   = W_out silu(LayerNorm(h_depth)) + b_out          norm: LayerNorm(H), out: Linear(H, D)
//
// Tensor names are the state_dict keys of scripts/resmlp_reference.py's ResMlp, in its order:
// inp.weight (H, D+E), inp.bias, blocks.L.{norm.weight, norm.bias, fc1.weight, fc1.bias,
// fc2.weight, fc2.bias}, norm.weight, norm.bias, out.weight (D, H), out.bias.
// Time enters only through e, a fixed function of t / T: no table grows with T, so a large T costs
// nothing and the fast samplers may pick any subset of the timesteps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "diffuse/model.h"

namespace diffuse {

inline constexpr int kTimeFeatures = 32;       // E: 16 sines and 16 cosines
inline constexpr float kLayerNormEps = 1e-5f;  // torch.nn.LayerNorm's default

// Used by model.cpp's dispatch.
std::vector<TensorInfo> resmlp_layout(const ModelConfig& c);
size_t resmlp_buffer_floats(const ModelConfig& c, int max_batch);
void resmlp_init_workspace(const ModelConfig& c, Workspace& ws);  // after sizing ws.buffer
void resmlp_init(const ModelConfig& c, float* params, Rng& rng);
void resmlp_forward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                    int B, Workspace& ws, float* y);
void resmlp_backward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                     int B, const float* dy, Workspace& ws, float* grads);

// ---- layer kernels (column-major; B columns = samples) ----

// e (E, B): e[k] = sin(tau f_k), e[E/2 + k] = cos(tau f_k), tau = 1000 t_j / T. E even. No
// parameters and t is discrete, so there is no backward.
void time_embedding_forward(float* e, const int32_t* t, int B, int E, int T);

// Per column of x (n, B): y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + 1e-5), the
// biased variance (as torch). Saves mean and rstd (B) for the backward. y, x are (n, B).
void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                        const float* beta, int B, int n);
// Overwrites dx (n, B), dgamma (n) and dbeta (n) from dy (n, B), given the forward's x, mean, rstd.
void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* mean, const float* rstd, const float* gamma, int B, int n);

// y = x sigmoid(x), n elements.
void silu_forward(float* y, const float* x, size_t n);
// dx = dy * s (1 + x (1 - s)), s = sigmoid(x). dx may be dy.
void silu_backward(float* dx, const float* dy, const float* x, size_t n);

}  // namespace diffuse
