// The ConditionalModel's layer kernels and whole-network forward/backward: small register-blocked
// matrix products on Eigen packets with fused epilogues (bias, embedding scale, softplus) over
// caller-owned buffers. Not an autograd: each backward is derived by hand and proven by central
// differences and PyTorch fixtures (tests/model_test.cpp); docs/PERFORMANCE.md has the
// measurements.
#include "diffuse/model.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "diffuse/error.h"
#include "diffuse/resmlp.h"
#include "nn/packet_io.h"

namespace diffuse {
namespace {

// ---- SIMD building blocks (Eigen packets: 16 floats with AVX-512, 8 with AVX, 4 with SSE) ----
//
// Every product below is C(r, c) = sum_p A(r, p) B(p, c), vectorized over r (a packet of rows
// loaded from A), broadcasting B(p, c), accumulating in registers over p in order. So each output
// element is the same chain of fused multiply-adds whatever its position in the batch, the batch
// size or the memory alignment: a column's result depends only on its own inputs (the samplers'
// blocks and the trainer's thread split rely on that), and unaligned loads are used throughout.

namespace ei = Eigen::internal;
using Packet = ei::packet_traits<float>::type;
constexpr int kLanes = ei::packet_traits<float>::size;
// Register tile: kRowPackets packets of rows x kCols columns of accumulators, + kRowPackets loaded
// rows + 1 broadcast within the register file: 28 + 3 of AVX-512's 32 (measured at H=128: 2 x 14
// runs at 90-94% of the FMA peak, 4 x 6 at 85%, 8 x 3 at 50-75%); 12 + 3 of SSE/AVX's 16.
#ifdef EIGEN_VECTORIZE_AVX512  // 32 vector registers
constexpr int kRowPackets = 2;
constexpr int kCols = 14;
#else
constexpr int kRowPackets = 2;
constexpr int kCols = 6;
#endif

constexpr float kSoftplusThreshold = 20.0f;  // PyTorch's default: linear above it

int round_up(int n, int m) { return (n + m - 1) / m * m; }

using packet_io::load_n;
using packet_io::store_n;

// exp(x) for x <= 0. With AVX-512: x = n ln2 + r (n rounded, r by a two-part ln2), exp(r) by
// Cephes' degree-6 polynomial (Eigen's), times 2^n by vscalefps, which also flushes to 0 below the
// float range: 12 instructions where Eigen's general pexp takes 19. Elsewhere Eigen's pexp.
inline Packet exp_nonpositive(const Packet& x) {
#ifdef EIGEN_VECTORIZE_AVX512
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
#else
  return ei::pexp(x);
#endif
}

// softplus(z) = max(z, 0) + log1p(u), u = exp(-|z|) in (0, 1] (no overflow), and its derivative
// sigmoid(z) = (z >= 0 ? 1 : u) / (1 + u); PyTorch's threshold: z > 20 gives z and slope 1 (1/(1+u)
// rounds to 1 there). log1p(u) = u q(u) with q a degree-8 fit of log1p(u)/u on [0, 1] (relative
// error 3e-8; 2e-7 as evaluated in float), cheaper than a log and exact as u -> 0.
// N packets at once, stage by stage: their dependency chains (about 25 operations deep) interleave.
template <bool kSigmoid, int N>
inline void softplus_packets(const Packet* z, Packet* h, Packet* s) {
  const Packet one = ei::pset1<Packet>(1.0f);
  const Packet zero = ei::pset1<Packet>(0.0f);
  static constexpr float kQ[9] = {
      0.9999999403953552f,   -0.4999949336051941f,  0.3331909775733948f,
      -0.24842984974384308f, 0.1910601556301117f,   -0.13663263618946075f,
      0.07822615653276443f,  -0.02950536273419857f, 0.005232725292444229f};
  Packet u[N], q[N];
  for (int k = 0; k < N; ++k) u[k] = exp_nonpositive(ei::pnegate(ei::pabs(z[k])));
  for (int k = 0; k < N; ++k) q[k] = ei::pset1<Packet>(kQ[8]);
  for (int d = 7; d >= 0; --d) {
    const Packet c = ei::pset1<Packet>(kQ[d]);
    for (int k = 0; k < N; ++k) q[k] = ei::pmadd(q[k], u[k], c);
  }
  for (int k = 0; k < N; ++k) {
    h[k] = ei::pmadd(u[k], q[k], ei::pmax(z[k], zero));
    h[k] = ei::pselect(ei::pcmp_lt(ei::pset1<Packet>(kSoftplusThreshold), z[k]), z[k], h[k]);
    if constexpr (kSigmoid) {
      s[k] = ei::pdiv(ei::pselect(ei::pcmp_le(zero, z[k]), one, u[k]), ei::padd(one, u[k]));
    }
  }
}

template <bool kSigmoid>
inline void softplus_packet(const Packet& z, Packet& h, Packet& s) {
  softplus_packets<kSigmoid, 1>(&z, &h, &s);
}

// One product's operands: A(r, p) = a[p * lda + r], B(p, c) = b[p * bp + c * bc], r < rows,
// p < depth. A store straight from the registers (gemm_store) can add, in this order, bias[r] and
// res(r, c) = res[c * ldo + r] (ldo: the output's leading dimension) to C as it writes it.
struct Gemm {
  const float* a;
  size_t lda;
  const float* b;
  size_t bp, bc;
  int rows, depth;
  const float* bias = nullptr;
  const float* res = nullptr;
};

// Rows [r0, r0 + RP kLanes) (the last packet holding only `tail` rows when kTail) and columns
// [c0, c0 + NC) of C into out (column-major, leading dimension ldo, column 0 = c0).
template <int RP, int NC, bool kTail>
inline void tile(const Gemm& g, int r0, int c0, int tail, float* out, size_t ldo) {
  Packet acc[RP][NC];
  for (int m = 0; m < RP; ++m) {
    for (int c = 0; c < NC; ++c) acc[m][c] = ei::pset1<Packet>(0.0f);
  }
  const float* a = g.a + r0;
  const float* b = g.b + static_cast<size_t>(c0) * g.bc;
  for (int p = 0; p < g.depth; ++p, a += g.lda, b += g.bp) {
    Packet av[RP];
    for (int m = 0; m < RP; ++m) {
      av[m] =
          kTail && m == RP - 1 ? load_n(a + m * kLanes, tail) : ei::ploadu<Packet>(a + m * kLanes);
    }
    for (int c = 0; c < NC; ++c) {
      const Packet bv = ei::pset1<Packet>(b[c * g.bc]);
      for (int m = 0; m < RP; ++m) acc[m][c] = ei::pmadd(av[m], bv, acc[m][c]);
    }
  }
  if (g.bias != nullptr) {  // (full packets only: gemm_store adds it when rows are whole packets)
    for (int m = 0; m < RP; ++m) {
      const Packet bv = ei::ploadu<Packet>(g.bias + r0 + m * kLanes);
      for (int c = 0; c < NC; ++c) acc[m][c] = ei::padd(acc[m][c], bv);
    }
  }
  if (g.res != nullptr) {
    const float* res = g.res + static_cast<size_t>(c0) * ldo + r0;
    for (int c = 0; c < NC; ++c) {
      for (int m = 0; m < RP; ++m) {
        acc[m][c] = ei::padd(acc[m][c], ei::ploadu<Packet>(res + c * ldo + m * kLanes));
      }
    }
  }
  for (int c = 0; c < NC; ++c) {
    for (int m = 0; m < RP; ++m) ei::pstoreu(out + c * ldo + r0 + m * kLanes, acc[m][c]);
  }
}

// All rows of columns [c0, c0 + NC) into out. Rows past g.rows in the last packet are written too
// (out has round_up(rows, kLanes) rows).
template <int NC>
void gemm_block(const Gemm& g, int c0, float* out, size_t ldo) {
  const int full = g.rows / kLanes, tail = g.rows % kLanes;
  int pk = 0;
  for (; pk + kRowPackets <= full; pk += kRowPackets) {
    tile<kRowPackets, NC, false>(g, pk * kLanes, c0, 0, out, ldo);
  }
  for (; pk < full; ++pk) tile<1, NC, false>(g, pk * kLanes, c0, 0, out, ldo);
  if (tail != 0) tile<1, NC, true>(g, full * kLanes, c0, tail, out, ldo);
}

template <int NC>
void gemm_block_n(const Gemm& g, int c0, int nc, float* out, size_t ldo) {
  if constexpr (NC > 0) {
    if (nc == NC) {
      gemm_block<NC>(g, c0, out, ldo);
    } else {
      gemm_block_n<NC - 1>(g, c0, nc, out, ldo);
    }
  }
}

// Splits `cols` into blocks of at most kCols columns, as even as possible (128 = 9 x 13 + 11 would
// waste a narrow tile; 10 blocks of 12-13 do not): f(c0, nc) for each.
template <class F>
inline void for_column_blocks(int cols, F&& f) {
  const int blocks = (cols + kCols - 1) / kCols;
  if (blocks == 0) return;
  const int base = cols / blocks, extra = cols % blocks;
  int c0 = 0;
  for (int k = 0; k < blocks; ++k) {
    const int nc = base + (k < extra ? 1 : 0);
    f(c0, nc);
    c0 += nc;
  }
}

// C = A B over `cols` columns, a block of columns at a time into a panel of round_up(rows, kLanes)
// x kCols floats; epi(panel, ldp, c0, nc) consumes each block while it is in L1.
template <class Epilogue>
void gemm(const Gemm& g, int cols, float* panel, Epilogue&& epi) {
  const int ldp = round_up(g.rows, kLanes);
  for_column_blocks(cols, [&](int c0, int nc) {
    gemm_block_n<kCols>(g, c0, nc, panel, static_cast<size_t>(ldp));
    epi(panel, ldp, c0, nc);
  });
}

// C = A B into out, (rows, cols) column-major with leading dimension ldo: straight from the
// registers when rows are whole packets, else through the panel. g.bias and g.res are added only
// on the first path (callers check).
void gemm_store(const Gemm& g, int cols, float* out, size_t ldo, float* panel) {
  if (g.rows % kLanes == 0 && ldo == static_cast<size_t>(g.rows)) {
    for_column_blocks(cols, [&](int c0, int nc) {
      gemm_block_n<kCols>(g, c0, nc, out + static_cast<size_t>(c0) * ldo, ldo);
    });
    return;
  }
  gemm(g, cols, panel, [&](const float* pn, int ldp, int c0, int nc) {
    for (int c = 0; c < nc; ++c) {
      float* oc = out + static_cast<size_t>(c0 + c) * ldo;
      const float* pc = pn + c * ldp;
      int r = 0;
      for (; r + kLanes <= g.rows; r += kLanes) ei::pstoreu(oc + r, ei::ploadu<Packet>(pc + r));
      if (r < g.rows)
        store_n(oc + r, ei::ploadu<Packet>(pc + r), g.rows - r);  // panel: whole packets
    }
  });
}

size_t panel_floats(int rows) { return static_cast<size_t>(round_up(rows, kLanes)) * kCols; }

// Calls f(r, n) for each packet of rows r < rows, n = rows in it (kLanes but at the tail).
template <class F>
inline void for_packets(int rows, F&& f) {
  int r = 0;
  for (; r + kLanes <= rows; r += kLanes) f(r, kLanes);
  if (r < rows) f(r, rows - r);
}

// Wt (in, out) row-major, leading dimension out, from W (out, in) row-major.
void pack_transposed(float* Wt, const float* W, int out, int in) {
  int i0 = 0;
  for (; i0 + kLanes <= out; i0 += kLanes) {
    int k0 = 0;
    for (; k0 + kLanes <= in; k0 += kLanes) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wignored-attributes"  // the packet's vector attributes: harmless
      ei::PacketBlock<Packet, kLanes> blk;
#pragma GCC diagnostic pop
      for (int r = 0; r < kLanes; ++r) {
        blk.packet[r] = ei::ploadu<Packet>(W + static_cast<size_t>(i0 + r) * in + k0);
      }
      ei::ptranspose(blk);
      for (int r = 0; r < kLanes; ++r) {
        ei::pstoreu(Wt + static_cast<size_t>(k0 + r) * out + i0, blk.packet[r]);
      }
    }
    for (int i = i0; i < i0 + kLanes; ++i) {
      for (int k = k0; k < in; ++k)
        Wt[static_cast<size_t>(k) * out + i] = W[static_cast<size_t>(i) * in + k];
    }
  }
  for (int i = i0; i < out; ++i) {
    for (int k = 0; k < in; ++k)
      Wt[static_cast<size_t>(k) * out + i] = W[static_cast<size_t>(i) * in + k];
  }
}

// y(r, j) = sum_i A(r, i) x(i, j) (+ bias[r]) for few rows (rows < kLanes: the output layer at
// small D, the input gradient of the first layer): dot products over i, one column at a time. A is
// (rows, depth) row-major with leading dimension lda; x is (depth, cols) with leading dimension
// ldx; y is (rows, cols) column-major with leading dimension rows. bias may be null.
template <int R>
inline void dot_rows(float* y, const float* A, size_t lda, const float* x, int depth,
                     const float* bias) {
  Packet acc[R];
  for (int r = 0; r < R; ++r) acc[r] = ei::pset1<Packet>(0.0f);
  for_packets(depth, [&](int i, int n) {
    const Packet xv = load_n(x + i, n);
    for (int r = 0; r < R; ++r) acc[r] = ei::pmadd(load_n(A + r * lda + i, n), xv, acc[r]);
  });
  for (int r = 0; r < R; ++r) y[r] = ei::predux(acc[r]) + (bias != nullptr ? bias[r] : 0.0f);
}

void dot_small(float* y, const float* A, size_t lda, const float* x, size_t ldx, const float* bias,
               int rows, int depth, int cols) {
  for (int j = 0; j < cols; ++j) {
    float* yj = y + static_cast<size_t>(j) * rows;
    const float* xj = x + static_cast<size_t>(j) * ldx;
    int r = 0;
    for (; r + 4 <= rows; r += 4) {
      dot_rows<4>(yj + r, A + r * lda, lda, xj, depth, bias ? bias + r : nullptr);
    }
    switch (rows - r) {
      case 3:
        dot_rows<3>(yj + r, A + r * lda, lda, xj, depth, bias ? bias + r : nullptr);
        break;
      case 2:
        dot_rows<2>(yj + r, A + r * lda, lda, xj, depth, bias ? bias + r : nullptr);
        break;
      case 1:
        dot_rows<1>(yj + r, A + r * lda, lda, xj, depth, bias ? bias + r : nullptr);
        break;
      default:
        break;
    }
  }
}

// dW = dy x^T, (out, in) row-major; dy is (out, B) and x is (in, B), column-major.
void weight_grad(float* dW, const float* dy, const float* x, int B, int in, int out, float* panel) {
  if (in >= kLanes) {
    // dW(i, k) = sum_j x(k, j) dy(i, j): vectorized over k, one row of dW per column of C.
    const Gemm g{x, static_cast<size_t>(in), dy, static_cast<size_t>(out), 1, in, B};
    gemm_store(g, out, dW, static_cast<size_t>(in), panel);
  } else {
    // Few inputs (the first layer): vectorized over i, scattered into dW's rows.
    const Gemm g{dy, static_cast<size_t>(out), x, static_cast<size_t>(in), 1, out, B};
    gemm(g, in, panel, [&](const float* pn, int ldp, int c0, int nc) {
      for (int c = 0; c < nc; ++c) {
        for (int i = 0; i < out; ++i) dW[static_cast<size_t>(i) * in + c0 + c] = pn[c * ldp + i];
      }
    });
  }
}

// db = sum over the B columns of dy (out, B), each element summed from 0 in column order.
void bias_grad(float* db, const float* dy, int B, int out) {
  if (out < kLanes) {  // the output layer at small D: plain sums beat partial packets
    std::fill(db, db + out, 0.0f);
    for (int j = 0; j < B; ++j) {
      for (int i = 0; i < out; ++i) db[i] += dy[static_cast<size_t>(j) * out + i];
    }
    return;
  }
  // Up to 4 packets of rows at a time, summed in registers over the columns (not through db,
  // whose store-to-load chain would serialize the columns).
  constexpr int kRows = 4 * kLanes;
  for (int r0 = 0; r0 < out; r0 += kRows) {
    const int rows = std::min(kRows, out - r0);
    Packet acc[4];
    for (Packet& a : acc) a = ei::pset1<Packet>(0.0f);
    for (int j = 0; j < B; ++j) {
      const float* dyj = dy + static_cast<size_t>(j) * out + r0;
      for (int q = 0; q < 4 && q * kLanes < rows; ++q) {
        acc[q] = ei::padd(acc[q], load_n(dyj + q * kLanes, std::min(kLanes, rows - q * kLanes)));
      }
    }
    for (int q = 0; q < 4 && q * kLanes < rows; ++q) {
      store_n(db + r0 + q * kLanes, acc[q], std::min(kLanes, rows - q * kLanes));
    }
  }
}

// dx = W^T dy, (in, B). W is (out, in) row-major; Wt is W packed by pack_transposed (only read
// when in < kLanes, where dx is a dot product per element).
void input_grad(float* dx, const float* W, const float* Wt, const float* dy, int B, int in, int out,
                float* panel) {
  if (in < kLanes) {
    dot_small(dx, Wt, static_cast<size_t>(out), dy, static_cast<size_t>(out), nullptr, in, out, B);
    return;
  }
  const Gemm g{W, static_cast<size_t>(in), dy, 1, static_cast<size_t>(out), in, out};
  gemm_store(g, B, dx, static_cast<size_t>(in), panel);
}

// Pointers to the 11 tensors inside a flat buffer, in state_dict order.
template <typename F>
struct Tensors {
  F* w[4];  // lin{1,2,3}.lin.weight, lin4.weight
  F* b[4];  // lin{1,2,3}.lin.bias, lin4.bias
  F* e[3];  // lin{1,2,3}.embed.weight
};

template <typename F>
Tensors<F> tensors(const ModelConfig& c, F* p) {
  const size_t D = c.dim, H = c.hidden, T = c.T;
  Tensors<F> v{};
  const size_t in[3] = {D, H, H};
  for (int l = 0; l < 3; ++l) {
    v.w[l] = p;
    p += H * in[l];
    v.b[l] = p;
    p += H;
    v.e[l] = p;
    p += T * H;
  }
  v.w[3] = p;
  p += D * H;
  v.b[3] = p;
  return v;
}

// Workspace::scratch, carved: the transposed weights of the four layers and one GEMM panel.
struct Scratch {
  float* wt[4];
  float* panel;
};

size_t aligned_floats(size_t n) { return (n + 15) / 16 * 16; }  // 64-byte steps

size_t scratch_floats(const ModelConfig& c) {
  const size_t D = c.dim, H = c.hidden;
  return 2 * aligned_floats(D * H) + 2 * aligned_floats(H * H) +
         aligned_floats(panel_floats(std::max(c.dim, c.hidden)));
}

Scratch carve(const ModelConfig& c, float* p) {
  const size_t D = c.dim, H = c.hidden;
  Scratch s{};
  const size_t sizes[4] = {D * H, H * H, H * H, D * H};
  for (int l = 0; l < 4; ++l) {
    s.wt[l] = p;
    p += aligned_floats(sizes[l]);
  }
  s.panel = p;
  return s;
}

// Packs the layers' transposed weights into wt (as carved): W1^T (D, H), W2^T, W3^T (H, H) and,
// when the output layer is a matrix product (D >= kLanes), W4^T (H, D).
// Layer l is packed by part (l + 1) % parts of parts, so two threads share the two large ones.
void pack_all(const ModelConfig& c, const float* params, float* const wt[4], int part = 0,
              int parts = 1) {
  const auto p = tensors(c, params);
  const int out[4] = {c.hidden, c.hidden, c.hidden, c.dim};
  const int in[4] = {c.dim, c.hidden, c.hidden, c.hidden};
  for (int l = 0; l < (c.dim >= kLanes ? 4 : 3); ++l) {
    if ((l + 1) % parts == part) pack_transposed(wt[l], p.w[l], out[l], in[l]);
  }
}

// Scratch for the single-layer kernels, which have no Workspace: grows once per thread.
float* layer_scratch(size_t n) {
  thread_local std::vector<float, Eigen::aligned_allocator<float>> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

enum class Pass { kTrain, kPredict };

// The whole forward. kTrain saves a, h and sigmoid(z) for the backward (z = a E[t] itself is not
// needed: softplus'(z) is the saved sigmoid); kPredict keeps only h.
// wt: the transposed weights as pack_all leaves them.
template <Pass kPass>
void forward(const ModelConfig& c, const float* params, const float* const wt[4], const float* x,
             const int32_t* t, int B, Workspace& ws, float* y) {
  const int D = c.dim, H = c.hidden;
  const auto p = tensors(c, params);
  const Scratch s = carve(c, ws.scratch.data());
  ColMatrix* const a[3] = {&ws.a1, &ws.a2, &ws.a3};
  ColMatrix* const h[3] = {&ws.h1, &ws.h2, &ws.h3};
  ColMatrix* const sg[3] = {&ws.s1, &ws.s2, &ws.s3};
  const float* in_act = x;
  for (int l = 0; l < 3; ++l) {
    const int in = l == 0 ? D : H;
    const float* bias = p.b[l];
    const float* E = p.e[l];
    float* al = a[l]->data();
    float* hl = h[l]->data();
    float* sl = sg[l]->data();
    // h = softplus((W x + b) * E[t]) column by column while the product is in L1.
    const Gemm g{wt[l], static_cast<size_t>(H), in_act, 1, static_cast<size_t>(in), H, in};
    gemm(g, B, s.panel, [&](const float* pn, int ldp, int c0, int nc) {
      for (int cc = 0; cc < nc; ++cc) {
        const int j = c0 + cc;
        const size_t col = static_cast<size_t>(j) * H;
        const float* gamma = E + static_cast<size_t>(t[j]) * H;  // E[t_j], a contiguous row
        const float* acc = pn + cc * ldp;
        constexpr bool kSig = kPass == Pass::kTrain;
        int r = 0;
        for (; r + 2 * kLanes <= H; r += 2 * kLanes) {  // two packets at a time, then one
          Packet av[2], zv[2], hv[2], sv[2];
          for (int k = 0; k < 2; ++k) {
            const int rk = r + k * kLanes;
            av[k] = ei::padd(ei::ploadu<Packet>(acc + rk), ei::ploadu<Packet>(bias + rk));
            zv[k] = ei::pmul(av[k], ei::ploadu<Packet>(gamma + rk));
          }
          softplus_packets<kSig, 2>(zv, hv, sv);
          for (int k = 0; k < 2; ++k) {
            const size_t o = col + r + k * kLanes;
            ei::pstoreu(hl + o, hv[k]);
            if constexpr (kSig) {
              ei::pstoreu(al + o, av[k]);
              ei::pstoreu(sl + o, sv[k]);
            }
          }
        }
        for (; r < H; r += kLanes) {
          const int n = std::min(kLanes, H - r);
          const Packet av = ei::padd(ei::ploadu<Packet>(acc + r), load_n(bias + r, n));
          const Packet zv = ei::pmul(av, load_n(gamma + r, n));
          Packet hv, sv;
          softplus_packet<kSig>(zv, hv, sv);
          store_n(hl + col + r, hv, n);
          if constexpr (kSig) {
            store_n(al + col + r, av, n);
            store_n(sl + col + r, sv, n);
          }
        }
      }
    });
    in_act = hl;
  }
  // y = W4 h3 + b4
  if (D < kLanes) {
    dot_small(y, p.w[3], static_cast<size_t>(H), in_act, static_cast<size_t>(H), p.b[3], D, H, B);
  } else {
    const Gemm g{wt[3], static_cast<size_t>(D), in_act, 1, static_cast<size_t>(H), D, H};
    const float* bias = p.b[3];
    gemm(g, B, s.panel, [&](const float* pn, int ldp, int c0, int nc) {
      for (int cc = 0; cc < nc; ++cc) {
        float* yj = y + static_cast<size_t>(c0 + cc) * D;
        for_packets(D, [&](int r, int n) {
          store_n(yj + r, ei::padd(ei::ploadu<Packet>(pn + cc * ldp + r), load_n(bias + r, n)), n);
        });
      }
    });
  }
}

}  // namespace

std::string to_string(ModelKind k) { return k == ModelKind::kResMlp ? "resmlp" : "tutorial"; }

std::optional<ModelKind> model_kind_from_string(std::string_view name) {
  if (name == "tutorial") return ModelKind::kTutorial;
  if (name == "resmlp") return ModelKind::kResMlp;
  return std::nullopt;
}

std::vector<std::string> model_kind_names() { return {"tutorial", "resmlp"}; }

ModelKind parse_model_kind(std::string_view name) {
  if (auto k = model_kind_from_string(name)) return *k;
  throw unknown_name_error("--model", "model", name, model_kind_names());
}

std::string to_string(Prediction p) {
  switch (p) {
    case Prediction::kX0:
      return "x0";
    case Prediction::kV:
      return "v";
    case Prediction::kEps:
      break;
  }
  return "eps";
}

std::optional<Prediction> prediction_from_string(std::string_view name) {
  if (name == "eps") return Prediction::kEps;
  if (name == "x0") return Prediction::kX0;
  if (name == "v") return Prediction::kV;
  return std::nullopt;
}

std::vector<std::string> prediction_names() { return {"eps", "x0", "v"}; }

Prediction parse_prediction(std::string_view name) {
  if (auto k = prediction_from_string(name)) return *k;
  throw unknown_name_error("--predict", "target", name, prediction_names());
}

std::vector<TensorInfo> param_layout(const ModelConfig& c) {
  if (c.kind == ModelKind::kResMlp) return resmlp_layout(c);
  const int64_t D = c.dim, H = c.hidden, T = c.T;
  std::vector<TensorInfo> layout;
  size_t offset = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape) {
    size_t size = 1;
    for (int64_t s : shape) size *= static_cast<size_t>(s);
    layout.push_back({std::move(name), std::move(shape), offset, size});
    offset += size;
  };
  const int64_t in[3] = {D, H, H};
  for (int l = 0; l < 3; ++l) {
    const std::string p = "lin" + std::to_string(l + 1) + ".";
    add(p + "lin.weight", {H, in[l]});
    add(p + "lin.bias", {H});
    add(p + "embed.weight", {T, H});
  }
  add("lin4.weight", {D, H});
  add("lin4.bias", {D});
  return layout;
}

size_t param_count(const ModelConfig& c) {
  if (c.kind == ModelKind::kResMlp) {
    const auto layout = resmlp_layout(c);
    return layout.back().offset + layout.back().size;
  }
  const size_t D = c.dim, H = c.hidden, T = c.T;
  return (H * D + H + T * H) + 2 * (H * H + H + T * H) + (D * H + D);
}

void validate(const ModelConfig& c) {
  if (c.dim < 1)
    throw UsageError("data dimension: expected at least 1, got " + std::to_string(c.dim));
  if (c.hidden < 1)
    throw UsageError("--hidden: expected at least 1, got " + std::to_string(c.hidden));
  if (c.T < 2) throw UsageError("--steps: expected at least 2, got " + std::to_string(c.T));
  if (c.kind == ModelKind::kResMlp && (c.depth < 1 || c.depth > 64)) {
    throw UsageError("--depth: expected 1..64 residual blocks, got " + std::to_string(c.depth));
  }
  if (c.classes < 0 || c.classes > kMaxClasses) {
    throw UsageError("--label-column: expected at most " + std::to_string(kMaxClasses) +
                     " classes, got " + std::to_string(c.classes));
  }
  if (c.classes > 0 && c.kind != ModelKind::kResMlp) {
    throw UsageError(
        "--label-column: the tutorial's network has no class embedding; use --model "
        "resmlp");
  }
  if (c.fourier_features < 0 || c.fourier_features > kMaxFourierFeatures) {
    throw UsageError("--fourier-features: expected 0.." + std::to_string(kMaxFourierFeatures) +
                     " octaves, got " + std::to_string(c.fourier_features));
  }
  if (c.fourier_features > 0 && c.kind != ModelKind::kResMlp) {
    throw UsageError(
        "--fourier-features: the tutorial's network takes no input features; use --model resmlp");
  }
  if (c.hidden > 65536 || c.dim > 65536) {
    throw UsageError("--hidden: expected at most 65536, got " + std::to_string(c.hidden));
  }
}

Model::Model(const ModelConfig& c) : config(c), params(param_count(c), 0.0f) {}

void Model::init(Rng& rng) {
  if (config.kind == ModelKind::kResMlp) {
    resmlp_init(config, params.data(), rng);
    return;
  }
  const auto layout = param_layout(config);
  for (const auto& ti : layout) {
    float* p = params.data() + ti.offset;
    if (ti.name.find("embed") != std::string::npos) {
      rng.fill_uniform(p, ti.size, 0.0f, 1.0f);  // embed.weight.data.uniform_()
    } else {
      // nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in);
      // the bias uses the same bound.
      const int64_t fan_in = ti.name.find("lin4") == 0   ? config.hidden
                             : ti.name.find("lin1") == 0 ? config.dim
                                                         : config.hidden;
      const auto bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
      rng.fill_uniform(p, ti.size, -bound, bound);
    }
  }
}

namespace {
int tutorial_rows(const ModelConfig& c) { return c.kind == ModelKind::kTutorial ? c.hidden : 0; }
}  // namespace

Workspace::Workspace(const ModelConfig& c, int max_batch_)
    : max_batch(max_batch_),
      a1(tutorial_rows(c), max_batch_),
      a2(tutorial_rows(c), max_batch_),
      a3(tutorial_rows(c), max_batch_),
      h1(tutorial_rows(c), max_batch_),
      h2(tutorial_rows(c), max_batch_),
      h3(tutorial_rows(c), max_batch_),
      s1(tutorial_rows(c), max_batch_),
      s2(tutorial_rows(c), max_batch_),
      s3(tutorial_rows(c), max_batch_),
      dh(tutorial_rows(c), max_batch_),
      dz(tutorial_rows(c), max_batch_),
      dx(c.dim, max_batch_),
      t(max_batch_, 0),
      scratch(c.kind == ModelKind::kTutorial ? scratch_floats(c) : 0, 0.0f) {
  if (c.kind == ModelKind::kResMlp) {
    buffer.assign(resmlp_buffer_floats(c, max_batch_), 0.0f);
    resmlp_init_workspace(c, *this);
  }
}

// ---- layer kernels ----

// The product W x of a layer: W^T packed into this thread's scratch, followed by the panel the
// epilogue reads. x is (in, B); W is (out, in) row-major.
struct LayerProduct {
  Gemm g;
  float* panel;
};
LayerProduct layer_product(const float* W, const float* x, int in, int out) {
  float* wt = layer_scratch(aligned_floats(static_cast<size_t>(in) * out) + panel_floats(out));
  float* panel = wt + aligned_floats(static_cast<size_t>(in) * out);
  pack_transposed(wt, W, out, in);
  return {Gemm{wt, static_cast<size_t>(out), x, 1, static_cast<size_t>(in), out, in}, panel};
}

void cond_linear_forward(float* z, float* a, const float* x, const float* W, const float* b,
                         const float* E, const int32_t* t, int B, int in, int out) {
  // x is (in, B); W is (out, in) row-major; b is (out); E is (T, out) row-major; a, z are (out, B)
  const LayerProduct lp = layer_product(W, x, in, out);
  gemm(lp.g, B, lp.panel, [&](const float* pn, int ldp, int c0, int nc) {
    for (int cc = 0; cc < nc; ++cc) {
      const int j = c0 + cc;
      const size_t col = static_cast<size_t>(j) * out;
      const float* gamma = E + static_cast<size_t>(t[j]) * out;
      for_packets(out, [&](int r, int n) {
        const Packet av = ei::padd(ei::ploadu<Packet>(pn + cc * ldp + r), load_n(b + r, n));
        store_n(a + col + r, av, n);
        store_n(z + col + r, ei::pmul(av, load_n(gamma + r, n)), n);
      });
    }
  });
}

void cond_linear_backward(float* dx, float* dW, float* db, float* dE, float* dz, const float* x,
                          const float* a, const float* W, const float* E, const int32_t* t, int B,
                          int in, int out, int T) {
  // dz, a are (out, B); x, dx are (in, B); W, dW are (out, in) row-major; dE is (T, out) row-major
  std::fill(dE, dE + static_cast<size_t>(T) * out, 0.0f);
  for (int j = 0; j < B; ++j) {
    const size_t row = static_cast<size_t>(t[j]) * out;
    const size_t col = static_cast<size_t>(j) * out;
    for_packets(out, [&](int r, int n) {
      // z = a * gamma: d gamma = dz * a (summed over samples with this t); da = dz * gamma.
      const Packet dzv = load_n(dz + col + r, n);
      store_n(dE + row + r, ei::pmadd(dzv, load_n(a + col + r, n), load_n(dE + row + r, n)), n);
      store_n(dz + col + r, ei::pmul(dzv, load_n(E + row + r, n)), n);
    });
  }
  linear_backward(dx, dW, db, dz, x, W, B, in, out);
}

void linear_forward(float* y, const float* x, const float* W, const float* b, int B, int in,
                    int out, const float* residual) {
  // x is (in, B); W is (out, in) row-major; b is (out); y and residual are (out, B)
  if (out < kLanes) {
    dot_small(y, W, static_cast<size_t>(in), x, static_cast<size_t>(in), b, out, in, B);
    if (residual != nullptr) {
      for (size_t i = 0; i < static_cast<size_t>(out) * B; ++i) y[i] += residual[i];
    }
    return;
  }
  LayerProduct lp = layer_product(W, x, in, out);
  if (out % kLanes == 0) {  // (W x + b) + residual as the registers are stored
    lp.g.bias = b;
    lp.g.res = residual;
    gemm_store(lp.g, B, y, static_cast<size_t>(out), lp.panel);
    return;
  }
  gemm(lp.g, B, lp.panel, [&](const float* pn, int ldp, int c0, int nc) {
    for (int cc = 0; cc < nc; ++cc) {
      const size_t col = static_cast<size_t>(c0 + cc) * out;
      for_packets(out, [&](int r, int n) {
        Packet v = ei::padd(ei::ploadu<Packet>(pn + cc * ldp + r), load_n(b + r, n));
        if (residual != nullptr) v = ei::padd(v, load_n(residual + col + r, n));
        store_n(y + col + r, v, n);
      });
    }
  });
}

void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x,
                     const float* W, int B, int in, int out) {
  // dy is (out, B); x, dx are (in, B); W, dW are (out, in) row-major; db is (out)
  const size_t wt_floats = in < kLanes ? aligned_floats(static_cast<size_t>(in) * out) : 0;
  float* wt = layer_scratch(wt_floats + panel_floats(std::max(in, out)));
  float* panel = wt + wt_floats;
  weight_grad(dW, dy, x, B, in, out, panel);
  bias_grad(db, dy, B, out);
  if (dx != nullptr) {
    if (in < kLanes) pack_transposed(wt, W, out, in);
    input_grad(dx, W, wt, dy, B, in, out, panel);
  }
}

void softplus_forward(float* h, const float* z, size_t n) {
  // PyTorch: z > 20 ? z : log1p(exp(z)); here max(z, 0) + log1p(exp(-|z|)), no overflow.
  size_t i = 0;
  Packet hv, sv;
  for (; i + kLanes <= n; i += kLanes) {
    softplus_packet<false>(ei::ploadu<Packet>(z + i), hv, sv);
    ei::pstoreu(h + i, hv);
  }
  if (i < n) {
    const int m = static_cast<int>(n - i);
    softplus_packet<false>(load_n(z + i, m), hv, sv);
    store_n(h + i, hv, m);
  }
}

void softplus_backward(float* dz, const float* dh, const float* z, size_t n) {
  size_t i = 0;
  Packet hv, sv;
  for (; i + kLanes <= n; i += kLanes) {
    softplus_packet<true>(ei::ploadu<Packet>(z + i), hv, sv);
    ei::pstoreu(dz + i, ei::pmul(ei::ploadu<Packet>(dh + i), sv));
  }
  if (i < n) {
    const int m = static_cast<int>(n - i);
    softplus_packet<true>(load_n(z + i, m), hv, sv);
    store_n(dz + i, ei::pmul(load_n(dh + i, m), sv), m);
  }
}

float mse_forward(const float* y, const float* target, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(y[i]) - target[i];
    sum += d * d;
  }
  return static_cast<float>(sum / static_cast<double>(n));
}

void mse_backward(float* dy, const float* y, const float* target, size_t n) {
  const float scale = 2.0f / static_cast<float>(n);
  for (size_t i = 0; i < n; ++i) dy[i] = scale * (y[i] - target[i]);
}

// ---- the whole network ----

void model_forward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                   int B, Workspace& ws, float* y, const int32_t* labels) {
  // x is (D, B); t is (B); y is (D, B); labels is (B)
  if (c.kind == ModelKind::kResMlp) {
    resmlp_forward(c, params, x, t, B, ws, y, labels);
    return;
  }
  const Scratch s = carve(c, ws.scratch.data());
  pack_all(c, params, s.wt);
  forward<Pass::kTrain>(c, params, s.wt, x, t, B, ws, y);
}

// The residual MLP packs inside its layers' calls: it has nothing to share here.
PackedWeights::PackedWeights(const ModelConfig& c)
    : data(c.kind == ModelKind::kTutorial ? scratch_floats(c) : 0, 0.0f) {}

void pack_weights(const ModelConfig& c, const float* params, PackedWeights& packed, int part,
                  int parts) {
  if (c.kind != ModelKind::kTutorial) return;
  const Scratch s = carve(c, packed.data.data());
  pack_all(c, params, s.wt, part, parts);
}

void model_forward(const ModelConfig& c, const float* params, const PackedWeights& packed,
                   const float* x, const int32_t* t, int B, Workspace& ws, float* y,
                   const int32_t* labels) {
  if (c.kind == ModelKind::kResMlp) {
    resmlp_forward(c, params, x, t, B, ws, y, labels);
    return;
  }
  const Scratch s = carve(c, const_cast<float*>(packed.data.data()));  // only read
  forward<Pass::kTrain>(c, params, s.wt, x, t, B, ws, y);
}

void model_backward(const ModelConfig& c, const float* params, const float* x, const int32_t* t,
                    int B, const float* dy, Workspace& ws, float* grads, const int32_t* labels) {
  // dy is (D, B); grads has the flat layout of params; ws.dx gets d loss / d x, (D, B)
  if (c.kind == ModelKind::kResMlp) {
    resmlp_backward(c, params, x, t, B, dy, ws, grads, labels);
    return;
  }
  const int D = c.dim, H = c.hidden, T = c.T;
  const auto p = tensors(c, params);
  const auto g = tensors(c, grads);
  const Scratch s = carve(c, ws.scratch.data());
  for (int l = 0; l < 3; ++l) {
    std::fill(g.b[l], g.b[l] + H, 0.0f);
    std::fill(g.e[l], g.e[l] + static_cast<size_t>(T) * H, 0.0f);
  }
  const ColMatrix* const a[3] = {&ws.a1, &ws.a2, &ws.a3};
  const ColMatrix* const h[3] = {&ws.h1, &ws.h2, &ws.h3};
  const ColMatrix* const sg[3] = {&ws.s1, &ws.s2, &ws.s3};
  float* da_buf[2] = {ws.dz.data(), ws.dh.data()};

  // Layer 4 (y = W4 h3 + b4).
  weight_grad(g.w[3], dy, h[2]->data(), B, H, D, s.panel);
  bias_grad(g.b[3], dy, B, D);

  // dh_l = W_{l+1}^T da_{l+1} for l = 3, 2, 1, each fused with softplus' and the embedding of layer
  // l: dz = dh * sigmoid(z_l); dE_l[t] += dz * a_l; da_l = dz * E_l[t]; db_l += da_l.
  const float* da_above = dy;
  for (int l = 2; l >= 0; --l) {
    const float* Wabove = p.w[l + 1];  // (rows_above, H) row-major
    const int rows_above = l == 2 ? D : H;
    const float* sl = sg[l]->data();
    const float* al = a[l]->data();
    const float* E = p.e[l];
    float* dE = g.e[l];
    float* db = g.b[l];
    float* da = da_buf[l % 2];
    const Gemm gm{Wabove,    static_cast<size_t>(H),          da_above,
                  1,         static_cast<size_t>(rows_above), H,
                  rows_above};
    gemm(gm, B, s.panel, [&](const float* pn, int ldp, int c0, int nc) {
      for_packets(H, [&](int r, int n) {
        Packet dbv = ei::pset1<Packet>(0.0f);  // this block's share of db, summed in registers
        for (int cc = 0; cc < nc; ++cc) {
          const int j = c0 + cc;
          const size_t col = static_cast<size_t>(j) * H;
          const size_t row = static_cast<size_t>(t[j]) * H;
          const Packet dzv =
              ei::pmul(ei::ploadu<Packet>(pn + cc * ldp + r), load_n(sl + col + r, n));
          store_n(dE + row + r, ei::pmadd(dzv, load_n(al + col + r, n), load_n(dE + row + r, n)),
                  n);
          const Packet dav = ei::pmul(dzv, load_n(E + row + r, n));
          store_n(da + col + r, dav, n);
          dbv = ei::padd(dbv, dav);
        }
        store_n(db + r, ei::padd(load_n(db + r, n), dbv), n);
      });
    });
    // dW_l = da_l x_l^T with x_l the layer's input.
    const float* x_l = l == 0 ? x : h[l - 1]->data();
    weight_grad(g.w[l], da, x_l, B, l == 0 ? D : H, H, s.panel);
    da_above = da;
  }
  // d loss / d x = W1^T da_1.
  if (!ws.input_grad) return;
  if (D < kLanes) pack_transposed(s.wt[0], p.w[0], H, D);
  input_grad(ws.dx.data(), p.w[0], s.wt[0], da_above, B, D, H, s.panel);
}

void model_predict(const ModelConfig& c, const float* params, const float* x, int t, int n,
                   Workspace& ws, float* y, const int32_t* labels) {
  // x, y are (D, n); one timestep t for every column; labels is (n)
  std::fill(ws.t.begin(), ws.t.end(), t);
  const int D = c.dim;
  if (c.kind == ModelKind::kResMlp) {
    for (int j = 0; j < n; j += ws.max_batch) {
      const int B = std::min(ws.max_batch, n - j);
      resmlp_forward(c, params, x + static_cast<size_t>(j) * D, ws.t.data(), B, ws,
                     y + static_cast<size_t>(j) * D, labels == nullptr ? nullptr : labels + j,
                     /*for_backward=*/false);
    }
    return;
  }
  const Scratch s = carve(c, ws.scratch.data());
  pack_all(c, params, s.wt);
  for (int j = 0; j < n; j += ws.max_batch) {
    const int B = std::min(ws.max_batch, n - j);
    forward<Pass::kPredict>(c, params, s.wt, x + static_cast<size_t>(j) * D, ws.t.data(), B, ws,
                            y + static_cast<size_t>(j) * D);
  }
}

}  // namespace diffuse
