// The residual MLP's layer kernels and whole-network forward/backward (include/diffuse/resmlp.h).
// The matrix products are model.cpp's linear_forward / linear_backward (register-blocked, packed
// per call into a per-thread buffer that grows once; fc2 adds its residual as it stores);
// LayerNorm, SiLU and the Fourier features are Eigen packet loops over caller-owned buffers, so a
// step allocates nothing. LayerNorm's reductions and the features run on blocks of 16 columns (one
// transpose, not 16 horizontal sums); SiLU's forward saves its slope for the backward. Each
// column's result depends only on its own inputs, whatever the batch split or its place in a
// block. Proven by central differences and PyTorch fixtures (tests/resmlp_test.cpp). Where the time
// of a training step goes: docs/PERFORMANCE.md.
#include "diffuse/resmlp.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "diffuse/error.h"
#include "nn/packet_io.h"

namespace diffuse {
namespace {

namespace ei = Eigen::internal;
using Packet = ei::packet_traits<float>::type;
constexpr int kLanes = ei::packet_traits<float>::size;

using packet_io::load_n;
using packet_io::store_n;

// f(i, m) for each packet of elements i < n, m = elements in it (kLanes but at the tail).
template <class Index, class F>
inline void for_packets(Index n, F&& f) {
  Index i = 0;
  for (; i + kLanes <= n; i += kLanes) f(i, kLanes);
  if (i < n) f(i, static_cast<int>(n - i));
}

// Lane q of the result is the sum of the lanes of p.packet[q], added in the order ei::predux adds
// them (halves first: lanes i and i + kLanes/2, then i and i + kLanes/4, ...), so it equals
// predux(p.packet[q]) whichever lane q it sits in. kLanes columns' sums cost one transpose, not
// kLanes horizontal reductions. p is overwritten.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // the packet's vector attributes: harmless
using Block = ei::PacketBlock<Packet, kLanes>;
#pragma GCC diagnostic pop
inline Packet lane_sums(Block& p) {
  ei::ptranspose(p);  // lane q of p.packet[l]: lane l of the q-th input
  for (int half = kLanes / 2; half >= 1; half /= 2) {
    for (int l = 0; l < half; ++l) p.packet[l] = ei::padd(p.packet[l], p.packet[l + half]);
  }
  return p.packet[0];
}

using ArrayMap = Eigen::Map<Eigen::ArrayXf>;
using ConstArrayMap = Eigen::Map<const Eigen::ArrayXf>;

// Pointers to the tensors inside a flat buffer, in state_dict order.
template <typename F>
struct Tensors {
  F *w_in, *b_in;
  std::vector<F*> ln_g, ln_b, w1, b1, w2, b2;  // per block
  F *lnf_g, *lnf_b, *w_out, *b_out;
  F* emb;  // label_emb.weight (C + 1, H); null for an unconditional network
};

template <typename F>
void tensors(const ModelConfig& c, F* p, Tensors<F>& v) {
  const size_t D = c.dim, H = c.hidden, I = resmlp_inputs(c), L = c.depth;
  v.w_in = p;
  p += H * I;
  v.b_in = p;
  p += H;
  v.ln_g.resize(L), v.ln_b.resize(L), v.w1.resize(L), v.b1.resize(L), v.w2.resize(L),
      v.b2.resize(L);
  for (size_t l = 0; l < L; ++l) {
    v.ln_g[l] = p, p += H;
    v.ln_b[l] = p, p += H;
    v.w1[l] = p, p += H * H;
    v.b1[l] = p, p += H;
    v.w2[l] = p, p += H * H;
    v.b2[l] = p, p += H;
  }
  v.lnf_g = p, p += H;
  v.lnf_b = p, p += H;
  v.w_out = p, p += D * H;
  v.b_out = p, p += D;
  v.emb = c.classes > 0 ? p : nullptr;
}

// Workspace::buffer, carved for max_batch columns. Slot l of h, u, g is (H, B) at l * H *
// max_batch.
struct Buffers {
  float* in;     // [x; e; ff], (I, B), I = D + E + 2 K D
  float* h;      // residual stream h_0..h_depth
  float* u;      // LayerNorm outputs u_0..u_{depth-1}, u_f at slot depth
  float* g;      // SiLU outputs g_0..g_{depth-1}, silu(u_f) at slot depth (fc1's output v_l
                 // before SiLU is written here and replaced by g_l in place)
  float* slope;  // their slopes, silu'(v_l) and silu'(u_f), for the SiLU backward
  float* mean;   // (depth + 1) x B
  float* rstd;   // (depth + 1) x B
  float* dh;     // backward scratch, (H, B) each
  float* du;
  float* dg;
  float* din;    // (I, B)
  float* table;  // e for every timestep, (E, T): time_embedding_forward once, at construction
  size_t slot;   // H * max_batch
};

size_t buffers_floats(const ModelConfig& c, int max_batch) {
  const size_t I = resmlp_inputs(c), H = c.hidden, E = kTimeFeatures, L = c.depth, B = max_batch;
  return 2 * I * B + (L + 1) * H * B * 4 + 2 * (L + 1) * B + 3 * H * B +
         E * static_cast<size_t>(c.T);
}

Buffers carve(const ModelConfig& c, Workspace& ws) {
  const size_t I = resmlp_inputs(c), H = c.hidden, L = c.depth, B = ws.max_batch;
  float* p = ws.buffer.data();
  Buffers b{};
  b.slot = H * B;
  b.in = p, p += I * B;
  b.h = p, p += (L + 1) * b.slot;
  b.u = p, p += (L + 1) * b.slot;
  b.g = p, p += (L + 1) * b.slot;
  b.slope = p, p += (L + 1) * b.slot;
  b.mean = p, p += (L + 1) * B;
  b.rstd = p, p += (L + 1) * B;
  b.dh = p, p += b.slot;
  b.du = p, p += b.slot;
  b.dg = p, p += b.slot;
  b.din = p, p += I * B;
  b.table = p;
  return b;
}

}  // namespace

std::vector<TensorInfo> resmlp_layout(const ModelConfig& c) {
  const int64_t D = c.dim, H = c.hidden, I = resmlp_inputs(c);
  std::vector<TensorInfo> layout;
  size_t offset = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    size_t size = 1;
    for (int64_t s : shape) size *= static_cast<size_t>(s);
    layout.push_back({std::move(name), std::move(shape), offset, size});
    offset += size;
  };
  add("inp.weight", {H, I});
  add("inp.bias", {H});
  for (int l = 0; l < c.depth; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    add(p + "norm.weight", {H});
    add(p + "norm.bias", {H});
    add(p + "fc1.weight", {H, H});
    add(p + "fc1.bias", {H});
    add(p + "fc2.weight", {H, H});
    add(p + "fc2.bias", {H});
  }
  add("norm.weight", {H});
  add("norm.bias", {H});
  add("out.weight", {D, H});
  add("out.bias", {D});
  if (c.classes > 0) add("label_emb.weight", {static_cast<int64_t>(c.classes) + 1, H});
  return layout;
}

size_t resmlp_buffer_floats(const ModelConfig& c, int max_batch) {
  return buffers_floats(c, max_batch);
}

void resmlp_init_workspace(const ModelConfig& c, Workspace& ws) {
  std::vector<int32_t> t(static_cast<size_t>(c.T));
  for (int i = 0; i < c.T; ++i) t[i] = i;
  time_embedding_forward(carve(c, ws).table, t.data(), c.T, kTimeFeatures, c.T);
}

void resmlp_init(const ModelConfig& c, float* params, Rng& rng) {
  // torch defaults: Linear U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias; LayerNorm 1, 0;
  // Embedding N(0, 1).
  for (const TensorInfo& ti : resmlp_layout(c)) {
    float* p = params + ti.offset;
    if (ti.name == "label_emb.weight") {
      rng.fill_normal(p, ti.size);
      continue;
    }
    const bool norm = ti.name.find("norm.") != std::string::npos;
    if (norm) {
      const bool gain = ti.name.find("weight") != std::string::npos;
      std::fill(p, p + ti.size, gain ? 1.0f : 0.0f);
      continue;
    }
    const int64_t fan_in = ti.name.rfind("inp.", 0) == 0 ? resmlp_inputs(c) : c.hidden;
    const auto bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
    rng.fill_uniform(p, ti.size, -bound, bound);
  }
}

// ---- layer kernels ----

void time_embedding_forward(float* e, const int32_t* t, int B, int E, int T) {
  // e is (E, B); t is (B)
  const int half = E / 2;
  for (int j = 0; j < B; ++j) {
    const double tau = 1000.0 * t[j] / T;
    float* ej = e + static_cast<size_t>(j) * E;
    for (int k = 0; k < half; ++k) {
      const double f = std::exp(-std::log(10000.0) * k / half);
      ej[k] = static_cast<float>(std::sin(tau * f));
      ej[half + k] = static_cast<float>(std::cos(tau * f));
    }
  }
}

// Eigen's packet sin and cos, not std::sin / std::cos: a D=64 training step with K=6 took 1.30x as
// long with the library's, D=2 1.10x (bench BM_ResMlpTrainStep). They agree to 6e-8 (half an
// ulp of 1), well inside the PyTorch fixtures' tolerance, but not bit for bit.
// A block of kLanes columns at a time, vectorized over the columns: for each coordinate d and
// octave k, one packet of sines and one of cosines of 2^k x_d; every kLanes such feature packets
// are transposed into kLanes features of each column. Each element's sine and cosine are the same
// whichever lane computes them, so a column's features do not depend on the batch.
void input_fourier_forward(float* f, size_t ldf, const float* x, int B, int D, int K) {
  // x is (D, B); f is (2 K D, B) with column stride ldf
  alignas(64) float xd[kLanes];
  for (int j0 = 0; j0 < B; j0 += kLanes) {
    const int nb = std::min(kLanes, B - j0);
    Block blk;
    int filled = 0, c0 = 0;  // feature packets in blk; the first one's feature index
    auto flush = [&] {       // blk's features c0.. to each column of the block
      for (int q = filled; q < kLanes; ++q) blk.packet[q] = ei::pset1<Packet>(0.0f);
      ei::ptranspose(blk);  // lane q of packet l: feature c0 + q of column j0 + l
      for (int l = 0; l < nb; ++l) {
        store_n(f + static_cast<size_t>(j0 + l) * ldf + c0, blk.packet[l], filled);
      }
      c0 += filled;
      filled = 0;
    };
    for (int d = 0; d < D; ++d) {
      for (int l = 0; l < kLanes; ++l) xd[l] = l < nb ? x[static_cast<size_t>(j0 + l) * D + d] : 0;
      const Packet xv = ei::pload<Packet>(xd);
      for (int k = 0; k < K; ++k) {
        // 2^k x is exact (a power of two)
        const Packet a = ei::pmul(xv, ei::pset1<Packet>(static_cast<float>(1 << k)));
        blk.packet[filled++] = ei::psin(a);
        blk.packet[filled++] = ei::pcos(a);
        if (filled == kLanes) flush();  // (kLanes is even: a pair never straddles two flushes)
      }
    }
    if (filled > 0) flush();
  }
}

void input_fourier_backward(float* dx, const float* df, const float* f, size_t ldf, int B, int D,
                            int K) {
  // dx is (D, B); df and f are (2 K D, B) with column stride ldf
  for (int j = 0; j < B; ++j) {
    const float* dfj = df + static_cast<size_t>(j) * ldf;
    const float* fj = f + static_cast<size_t>(j) * ldf;
    float* dxj = dx + static_cast<size_t>(j) * D;
    for (int d = 0; d < D; ++d) {
      float acc = 0.0f;
      for (int k = 0; k < K; ++k) {
        const size_t i = 2 * (static_cast<size_t>(d) * K + k);
        // d sin(2^k x) = 2^k cos(2^k x) dx, d cos(2^k x) = -2^k sin(2^k x) dx
        acc += static_cast<float>(1 << k) * (dfj[i] * fj[i + 1] - dfj[i + 1] * fj[i]);
      }
      dxj[d] += acc;
    }
  }
}

void class_embedding_forward(float* h, const float* table, const int32_t* labels, int B, int n,
                             int rows) {
  // h is (n, B); table is (rows, n) row-major; labels is (B)
  for (int j = 0; j < B; ++j) {
    const int32_t k = labels == nullptr ? rows - 1 : labels[j];
    if (k < 0 || k >= rows) {
      throw Error("model: class label " + std::to_string(k) + " is outside the model's 0.." +
                  std::to_string(rows - 1));
    }
    ArrayMap(h + static_cast<size_t>(j) * n, n) +=
        ConstArrayMap(table + static_cast<size_t>(k) * n, n);
  }
}

void class_embedding_backward(float* dtable, const float* dh, const int32_t* labels, int B, int n,
                              int rows) {
  // dtable is (rows, n) row-major; dh is (n, B); labels is (B)
  std::fill(dtable, dtable + static_cast<size_t>(rows) * n, 0.0f);
  for (int j = 0; j < B; ++j) {
    const int32_t k = labels == nullptr ? rows - 1 : labels[j];
    ArrayMap(dtable + static_cast<size_t>(k) * n, n) +=
        ConstArrayMap(dh + static_cast<size_t>(j) * n, n);
  }
}

// A block of kLanes columns at a time: their sums (and sums of squares) are reduced together by
// lane_sums, and rstd is one vector square root and division for the block. Each column's
// arithmetic is the per-column formula's, in the same order, wherever the column sits.
// kPackets > 0: n is kPackets whole packets, known to the compiler (its loops unroll, no tails).
template <int kPackets>
void layer_norm_forward_n(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                          const float* beta, int B, int n_any) {
  // x, y are (n, B); gamma, beta are (n); mean, rstd are (B)
  const int n = kPackets > 0 ? kPackets * kLanes : n_any;
  const Packet zero = ei::pset1<Packet>(0.0f), one = ei::pset1<Packet>(1.0f);
  const Packet inv_n = ei::pset1<Packet>(1.0f / static_cast<float>(n));
  const Packet eps = ei::pset1<Packet>(kLayerNormEps);
  alignas(64) float mu[kLanes], r[kLanes];
  for (int j0 = 0; j0 < B; j0 += kLanes) {
    const int nb = std::min(kLanes, B - j0);  // columns in this block
    Block blk;
    for (int q = 0; q < kLanes; ++q) {
      Packet sum = zero;  // the padding columns q >= nb sum to 0
      if (q < nb) {
        const float* xj = x + static_cast<size_t>(j0 + q) * n;
        for_packets(n, [&](int i, int m) { sum = ei::padd(sum, load_n(xj + i, m, 0.0f)); });
      }
      blk.packet[q] = sum;
    }
    const Packet mv = ei::pmul(lane_sums(blk), inv_n);
    ei::pstore(mu, mv);
    for (int q = 0; q < kLanes; ++q) {
      Packet sq = zero;
      if (q < nb) {
        const float* xj = x + static_cast<size_t>(j0 + q) * n;
        const Packet m = ei::pset1<Packet>(mu[q]);
        for_packets(n, [&](int i, int k) {
          const Packet d = ei::psub(load_n(xj + i, k, mu[q]), m);  // lanes past n give 0
          sq = ei::pmadd(d, d, sq);
        });
      }
      blk.packet[q] = sq;
    }
    // rstd = 1 / sqrt(var + eps), var = mean of the squares (one rounding for var + eps, as the
    // compiler contracted the scalar formula of the per-column version)
    const Packet rv = ei::pdiv(one, ei::psqrt(ei::pmadd(lane_sums(blk), inv_n, eps)));
    ei::pstore(r, rv);
    store_n(mean + j0, mv, nb);
    store_n(rstd + j0, rv, nb);
    for (int q = 0; q < nb; ++q) {
      const float* xj = x + static_cast<size_t>(j0 + q) * n;
      float* yj = y + static_cast<size_t>(j0 + q) * n;
      const Packet m = ei::pset1<Packet>(mu[q]), rq = ei::pset1<Packet>(r[q]);
      for_packets(n, [&](int i, int k) {
        const Packet xhat = ei::pmul(ei::psub(load_n(xj + i, k, mu[q]), m), rq);
        store_n(yj + i, ei::pmadd(xhat, load_n(gamma + i, k, 0.0f), load_n(beta + i, k, 0.0f)), k);
      });
    }
  }
}

// Blocks of kLanes columns as the forward: the two per-column means are reduced by lane_sums. The
// rows go in chunks of up to 4 packets whose dgamma and dbeta stay in registers over the block's
// columns; they still accumulate column by column, in column order.
template <int kPackets>
void layer_norm_backward_n(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                           const float* mean, const float* rstd, const float* gamma, int B,
                           int n_any) {
  // dy, x, dx are (n, B); gamma, dgamma, dbeta are (n); mean, rstd are (B)
  const int n = kPackets > 0 ? kPackets * kLanes : n_any;
  std::fill(dgamma, dgamma + n, 0.0f);
  std::fill(dbeta, dbeta + n, 0.0f);
  constexpr int kChunk = 4;  // packets of rows
  const Packet zero = ei::pset1<Packet>(0.0f);
  const Packet inv_n = ei::pset1<Packet>(1.0f / static_cast<float>(n));
  alignas(64) float m1[kLanes], m2[kLanes];
  for (int j0 = 0; j0 < B; j0 += kLanes) {
    const int nb = std::min(kLanes, B - j0);
    // xhat = (x - mean) r; dxhat = dy gamma;
    // dx = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat)).
    Block b1, b2;  // per column: the packets of sum(dxhat) and sum(dxhat xhat)
    for (int q = 0; q < kLanes; ++q) b1.packet[q] = zero, b2.packet[q] = zero;
    for (int r0 = 0; r0 < n; r0 += kChunk * kLanes) {
      const int np = std::min(kChunk, (n - r0 + kLanes - 1) / kLanes);  // packets in this chunk
      auto rows = [&](int k) { return std::min(kLanes, n - r0 - k * kLanes); };
      Packet dg[kChunk], db[kChunk], ga[kChunk];
      for (int k = 0; k < np; ++k) {
        dg[k] = load_n(dgamma + r0 + k * kLanes, rows(k), 0.0f);
        db[k] = load_n(dbeta + r0 + k * kLanes, rows(k), 0.0f);
        ga[k] = load_n(gamma + r0 + k * kLanes, rows(k), 0.0f);
      }
      for (int q = 0; q < nb; ++q) {
        const int j = j0 + q;
        const size_t o = static_cast<size_t>(j) * n + r0;
        const Packet mv = ei::pset1<Packet>(mean[j]), rv = ei::pset1<Packet>(rstd[j]);
        Packet s1 = b1.packet[q], s2 = b2.packet[q];
        for (int k = 0; k < np; ++k) {
          const size_t i = o + k * kLanes;
          const Packet xhat = ei::pmul(ei::psub(load_n(x + i, rows(k), mean[j]), mv), rv);
          const Packet dyv = load_n(dy + i, rows(k), 0.0f);
          dg[k] = ei::pmadd(dyv, xhat, dg[k]);
          db[k] = ei::padd(dyv, db[k]);
          const Packet dxhat = ei::pmul(dyv, ga[k]);
          s1 = ei::padd(s1, dxhat);
          s2 = ei::pmadd(dxhat, xhat, s2);
        }
        b1.packet[q] = s1, b2.packet[q] = s2;
      }
      for (int k = 0; k < np; ++k) {
        store_n(dgamma + r0 + k * kLanes, dg[k], rows(k));
        store_n(dbeta + r0 + k * kLanes, db[k], rows(k));
      }
    }
    ei::pstore(m1, ei::pmul(lane_sums(b1), inv_n));
    ei::pstore(m2, ei::pmul(lane_sums(b2), inv_n));
    for (int q = 0; q < nb; ++q) {
      const int j = j0 + q;
      const size_t o = static_cast<size_t>(j) * n;
      const Packet mv = ei::pset1<Packet>(mean[j]), rv = ei::pset1<Packet>(rstd[j]);
      const Packet m1v = ei::pset1<Packet>(m1[q]), m2v = ei::pset1<Packet>(m2[q]);
      for_packets(n, [&](int i, int m) {
        const Packet xhat = ei::pmul(ei::psub(load_n(x + o + i, m, mean[j]), mv), rv);
        const Packet dxhat = ei::pmul(load_n(dy + o + i, m, 0.0f), load_n(gamma + i, m, 0.0f));
        store_n(dx + o + i, ei::pmul(rv, ei::psub(ei::psub(dxhat, m1v), ei::pmul(xhat, m2v))), m);
      });
    }
  }
}

// The usual widths (H = 32, 64, 128, 256 at 16 lanes) get their unrolled copy.
template <class F>
inline void with_packets(int n, F&& f) {
  switch (n % kLanes == 0 ? n / kLanes : 0) {
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 8:
      return f(std::integral_constant<int, 8>{});
    case 16:
      return f(std::integral_constant<int, 16>{});
    default:
      return f(std::integral_constant<int, 0>{});
  }
}

void layer_norm_forward(float* y, float* mean, float* rstd, const float* x, const float* gamma,
                        const float* beta, int B, int n) {
  with_packets(n, [&](auto np) {
    layer_norm_forward_n<decltype(np)::value>(y, mean, rstd, x, gamma, beta, B, n);
  });
}

void layer_norm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                         const float* mean, const float* rstd, const float* gamma, int B, int n) {
  with_packets(n, [&](auto np) {
    layer_norm_backward_n<decltype(np)::value>(dx, dgamma, dbeta, dy, x, mean, rstd, gamma, B, n);
  });
}

// Every element takes the same packet path (the tail through a padded packet), so an element's
// result does not depend on its position: a column's output is the same in any batch.
void silu_forward(float* y, const float* x, size_t n) {
  const Packet one = ei::pset1<Packet>(1.0f);
  for_packets(n, [&](size_t i, int m) {
    const Packet xv = load_n(x + i, m, 0.0f);
    store_n(y + i, ei::pdiv(xv, ei::padd(one, ei::pexp(ei::pnegate(xv)))), m);
  });
}

void silu_train_forward(float* y, float* slope, const float* x, size_t n) {
  const Packet one = ei::pset1<Packet>(1.0f);
  for_packets(n, [&](size_t i, int m) {
    const Packet xv = load_n(x + i, m, 0.0f);
    const Packet d = ei::padd(one, ei::pexp(ei::pnegate(xv)));  // 1 + exp(-x)
    const Packet sv = ei::pdiv(one, d);
    store_n(y + i, ei::pdiv(xv, d), m);  // (after x is read: y may be x)
    store_n(slope + i, ei::pmul(sv, ei::pmadd(xv, ei::psub(one, sv), one)), m);
  });
}

void silu_train_backward(float* dx, const float* dy, const float* slope, size_t n) {
  for_packets(n, [&](size_t i, int m) {
    store_n(dx + i, ei::pmul(load_n(dy + i, m, 0.0f), load_n(slope + i, m, 0.0f)), m);
  });
}

void silu_backward(float* dx, const float* dy, const float* x, size_t n) {
  const Packet one = ei::pset1<Packet>(1.0f);
  for_packets(n, [&](size_t i, int m) {
    const Packet xv = load_n(x + i, m, 0.0f);
    const Packet sv = ei::pdiv(one, ei::padd(one, ei::pexp(ei::pnegate(xv))));
    const Packet slope = ei::pmul(sv, ei::pmadd(xv, ei::psub(one, sv), one));
    store_n(dx + i, ei::pmul(load_n(dy + i, m, 0.0f), slope), m);
  });
}

// ---- the whole network ----

void resmlp_forward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                    int B, Workspace& ws, float* y, const int32_t* labels, bool for_backward) {
  // x is (D, B); t is (B); y is (D, B); labels is (B)
  const int D = c.dim, H = c.hidden, E = kTimeFeatures, I = resmlp_inputs(c), L = c.depth;
  thread_local Tensors<const float> p;  // its vectors grow once per thread
  tensors(c, params, p);
  const Buffers b = carve(c, ws);
  const size_t hb = static_cast<size_t>(H) * B;
  // in = [x; e; ff], (I, B), e from the table time_embedding_forward made
  // (element by element and packet by packet: library copies of 2 and 32 floats cost more than
  // the copying)
  for (int j = 0; j < B; ++j) {
    float* col = b.in + static_cast<size_t>(j) * I;
    const float* xj = x + static_cast<size_t>(j) * D;
    for (int d = 0; d < D; ++d) col[d] = xj[d];
    const float* ej = b.table + static_cast<size_t>(t[j]) * E;
    for_packets(E, [&](int i, int m) { store_n(col + D + i, load_n(ej + i, m), m); });
  }
  if (c.fourier_features > 0) input_fourier_forward(b.in + D + E, I, x, B, D, c.fourier_features);
  linear_forward(b.h, b.in, p.w_in, p.b_in, B, I, H);
  if (c.classes > 0) class_embedding_forward(b.h, p.emb, labels, B, H, c.classes + 1);
  for (int l = 0; l < L; ++l) {
    float* hl = b.h + l * b.slot;
    float* ul = b.u + l * b.slot;
    float* gl = b.g + l * b.slot;
    float* sl = b.slope + l * b.slot;
    float* hn = b.h + (l + 1) * b.slot;
    layer_norm_forward(ul, b.mean + l * B, b.rstd + l * B, hl, p.ln_g[l], p.ln_b[l], B, H);
    linear_forward(gl, ul, p.w1[l], p.b1[l], B, H, H);  // v_l, then g_l = silu(v_l) in place
    if (for_backward) {
      silu_train_forward(gl, sl, gl, hb);
    } else {
      silu_forward(gl, gl, hb);
    }
    linear_forward(hn, gl, p.w2[l], p.b2[l], B, H, H, hl);  // (W2 g + b2) + h
  }
  float* uf = b.u + L * b.slot;
  float* gf = b.g + L * b.slot;
  layer_norm_forward(uf, b.mean + L * B, b.rstd + L * B, b.h + L * b.slot, p.lnf_g, p.lnf_b, B, H);
  if (for_backward) {
    silu_train_forward(gf, b.slope + L * b.slot, uf, hb);
  } else {
    silu_forward(gf, uf, hb);
  }
  linear_forward(y, gf, p.w_out, p.b_out, B, H, D);
}

void resmlp_backward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                     int B, const float* dy, Workspace& ws, float* grads, const int32_t* labels) {
  // dy is (D, B); grads has the flat layout of params; ws.dx gets d loss / d x, (D, B); labels is
  // (B), as given to the forward
  (void)x;  // saved in the workspace by the forward, as [x; e; ff]
  (void)t;
  const int D = c.dim, H = c.hidden, E = kTimeFeatures, I = resmlp_inputs(c), L = c.depth;
  thread_local Tensors<const float> p;
  thread_local Tensors<float> g;
  tensors(c, params, p);
  tensors(c, grads, g);
  const Buffers b = carve(c, ws);
  const size_t hb = static_cast<size_t>(H) * B;
  const auto m = static_cast<Eigen::Index>(hb);
  // y = W_out g_f + b_out; g_f = silu(u_f); u_f = LN(h_L)
  float* uf = b.u + L * b.slot;
  float* gf = b.g + L * b.slot;
  linear_backward(b.dg, g.w_out, g.b_out, dy, gf, p.w_out, B, H, D);
  silu_train_backward(b.dg, b.dg, b.slope + L * b.slot, hb);
  layer_norm_backward(b.dh, g.lnf_g, g.lnf_b, b.dg, b.h + L * b.slot, b.mean + L * B,
                      b.rstd + L * B, p.lnf_g, B, H);
  // b.dh is d loss / d h_{l+1}; each block adds its branch's gradient to it.
  for (int l = L - 1; l >= 0; --l) {
    const float* hl = b.h + l * b.slot;
    const float* ul = b.u + l * b.slot;
    const float* gl = b.g + l * b.slot;
    const float* sl = b.slope + l * b.slot;
    linear_backward(b.dg, g.w2[l], g.b2[l], b.dh, gl, p.w2[l], B, H, H);
    silu_train_backward(b.dg, b.dg, sl, hb);
    linear_backward(b.du, g.w1[l], g.b1[l], b.dg, ul, p.w1[l], B, H, H);
    layer_norm_backward(b.dg, g.ln_g[l], g.ln_b[l], b.du, hl, b.mean + l * B, b.rstd + l * B,
                        p.ln_g[l], B, H);
    ArrayMap(b.dh, m) += ConstArrayMap(b.dg, m);
  }
  if (c.classes > 0) class_embedding_backward(g.emb, b.dh, labels, B, H, c.classes + 1);
  linear_backward(ws.input_grad ? b.din : nullptr, g.w_in, g.b_in, b.dh, b.in, p.w_in, B, I, H);
  if (!ws.input_grad) return;
  for (int j = 0; j < B; ++j) {
    std::copy_n(b.din + static_cast<size_t>(j) * I, D, ws.dx.data() + static_cast<size_t>(j) * D);
  }
  // e has no gradient (t is discrete); ff adds its path to x's
  if (c.fourier_features > 0) {
    input_fourier_backward(ws.dx.data(), b.din + D + E, b.in + D + E, I, B, D, c.fourier_features);
  }
}

}  // namespace diffuse
