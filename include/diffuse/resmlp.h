// The residual-MLP denoiser network (ModelConfig::kind == ModelKind::kResMlp): a continuous
// sinusoidal embedding of time, optional Fourier features of the input, LayerNorm and SiLU in
// pre-norm residual blocks. Its layers as *_forward / *_backward kernels with shape comments; the
// whole network is reached through model.h's calls (model_forward, model_backward, model_predict),
// not from here. Not an autograd.
//
//   e   = [sin(tau f), cos(tau f)],  tau = 1000 t / T,  f_k = 10000^(-k/(E/2))   (E, B)
//   ff  = [sin(2^k x_d), cos(2^k x_d)] for d < D, k < K   (K octaves)           (2 K D, B)
//   h0  = W_in [x; e; ff] + b_in (+ C_emb[y])             inp: Linear(D + E + 2 K D, H)
//                                                         label_emb: Embedding(C + 1, H)
//   for l < depth:                                        blocks.l
//     u_l     = LayerNorm_l(h_l)                            .norm: LayerNorm(H)
//     g_l     = silu(W1_l u_l + b1_l)                       .fc1: Linear(H, H)
//     h_{l+1} = h_l + W2_l g_l + b2_l                       .fc2: Linear(H, H)
//   y   = W_out silu(LayerNorm(h_depth)) + b_out          norm: LayerNorm(H), out: Linear(H, D)
//
// The Fourier features (ModelConfig::fourier_features = K; 0: none, ff is empty) give the first
// layer each coordinate at K octaves, ordered coordinate by coordinate: sin(x_1), cos(x_1),
// sin(2 x_1), cos(2 x_1), ..., cos(2^(K-1) x_1), sin(x_2), ... An MLP on x alone draws smooth
// functions of x (spectral bias); a grid of tight modes (25gaussians) needs a sharp function of
// each coordinate, which the high octaves supply. The network's first layer is the only one that
// changes: it takes 2 K D more inputs (init fan_in D + E + 2 K D).
//
// The class-conditional network (ModelConfig::classes = C > 0) adds a learned embedding of the
// label y in 0..C (C: the null class, "no class") to h0. W_in e + b_in is the network's time
// embedding projected to the width H; adding the class embedding to it is the usual way a class
// enters a diffusion network (ADM, DiT: emb = time_emb + class_emb), and the residual stream
// carries the sum into every block. It is a per-class bias of the first layer: a lookup and an
// add forward, a scatter-add of dh0 backward.
//
// Tensor names are the state_dict keys of scripts/resmlp_reference.py's ResMlp, in its order:
// inp.weight (H, D+E+2KD), inp.bias, blocks.L.{norm.weight, norm.bias, fc1.weight, fc1.bias,
// fc2.weight, fc2.bias}, norm.weight, norm.bias, out.weight (D, H), out.bias and, conditional,
// label_emb.weight (C + 1, H) (registered last, so the unconditional layout is a prefix).
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

// The first layer's inputs: D + E + 2 K D ([x; e; ff]).
inline int resmlp_inputs(const ModelConfig& c) {
  return c.dim + kTimeFeatures + 2 * c.fourier_features * c.dim;
}

// Used by model.cpp's dispatch.
std::vector<TensorInfo> resmlp_layout(const ModelConfig& c);
size_t resmlp_buffer_floats(const ModelConfig& c, int max_batch);
void resmlp_init_workspace(const ModelConfig& c, Workspace& ws);  // after sizing ws.buffer
void resmlp_init(const ModelConfig& c, float* params, Rng& rng);
// labels (B) as model.h's model_forward: read when c.classes > 0 (null: every column the null
// class).
// for_backward false (model_predict): the SiLU slopes the backward needs are not saved; y is the
// same, bit for bit.
void resmlp_forward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                    int B, Workspace& ws, float* y, const int32_t* labels = nullptr,
                    bool for_backward = true);
void resmlp_backward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                     int B, const float* dy, Workspace& ws, float* grads,
                     const int32_t* labels = nullptr);

// ---- layer kernels (column-major; B columns = samples) ----

// e (E, B): e[k] = sin(tau f_k), e[E/2 + k] = cos(tau f_k), tau = 1000 t_j / T. E even. No
// parameters and t is discrete, so there is no backward.
void time_embedding_forward(float* e, const int32_t* t, int B, int E, int T);

// Fourier features of x (D, B) into f, (2 K D, B) with column stride ldf >= 2 K D: for
// coordinate d and octave k < K, f[2 (d K + k)] = sin(2^k x_d), f[2 (d K + k) + 1] =
// cos(2^k x_d), by Eigen's packet sin and cos (within 6e-8 of std::sin / std::cos, not bit for
// bit). Every element takes the same packet path, so a column's features do not depend on the
// batch. No parameters.
void input_fourier_forward(float* f, size_t ldf, const float* x, int B, int D, int K);
// Adds the features' share of d loss / d x to dx (D, B), given df (d loss / d f, column stride
// ldf) and the forward's f: dx_d += sum_k 2^k (df_sin cos(2^k x_d) - df_cos sin(2^k x_d)). The
// trainer does not need it (x is data); model_backward's d loss / d x does.
void input_fourier_backward(float* dx, const float* df, const float* f, size_t ldf, int B, int D,
                            int K);

// Embedding lookup added to h (n, B): h[:, j] += table[label_j] with table (rows, n) row-major
// and label_j = labels[j] (every label the null row rows - 1 when labels is null). Throws Error
// for a label outside 0..rows-1.
void class_embedding_forward(float* h, const float* table, const int32_t* labels, int B, int n,
                             int rows);
// Overwrites dtable (rows, n) with the scatter-add of dh (n, B): dtable[label_j] += dh[:, j].
void class_embedding_backward(float* dtable, const float* dh, const int32_t* labels, int B, int n,
                              int rows);

// Per column of x (n, B): y = (x - mean) * rstd * gamma + beta, rstd = 1 / sqrt(var + 1e-5), the
// biased variance (as torch). Saves mean and rstd (B) for the backward. y, x are (n, B).
void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                        const float* beta, int B, int n);
// Overwrites dx (n, B), dgamma (n) and dbeta (n) from dy (n, B), given the forward's x, mean, rstd.
void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* mean, const float* rstd, const float* gamma, int B, int n);

// y = x sigmoid(x), n elements. y may be x.
void silu_forward(float* y, const float* x, size_t n);
// dx = dy * s (1 + x (1 - s)), s = sigmoid(x). dx may be dy.
void silu_backward(float* dx, const float* dy, const float* x, size_t n);
// The pair the training step uses: the forward also saves the slope s (1 + x (1 - s)) (n), so
// that the backward is one product, dx = dy * slope, with no exponential or division, and fc1's
// output need not be kept. The same values, bit for bit, as the pair above. y may be x.
void silu_train_forward(float* y, float* slope, const float* x, size_t n);
void silu_train_backward(float* dx, const float* dy, const float* slope, size_t n);

}  // namespace diffuse
