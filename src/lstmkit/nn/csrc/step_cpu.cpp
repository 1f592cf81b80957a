// The streaming step of lstmkit's LSTM on CPU (see lstmkit/nn/streaming.py), built into the same
// extension as lstm_cpu.cpp and exposed as module functions (direct bindings: a call through
// torch.ops cost about 15 µs of a ~100 µs step):
//   pack(w_ih, w_hh, b_ih, b_hh) -> [w_blk, b_blk]   once per weight update (the cache)
//   step(x, h, c, w_blk, b_blk) -> [y, h', c']        every step, no autograd
//
// Unit-blocked weights. [W_ih | W_hh] (4H, K = I + H) is stored as (blocks, K, 4, kUnits): block k
// holds the i, f, g and o rows of hidden units 16k .. 16k + 15 (H padded with zero rows to a multiple
// of 16), transposed, so that column k of the block is 64 contiguous values:
//
//     w_blk[blk, k] = [ W_i[16 blk : 16 blk + 16, k] | W_f[...] | W_g[...] | W_o[...] ]   (4 x 16)
//
// A block's gate pre-activations z (4 x 16: one vector register per gate in float32 with AVX-512)
// are then a sum over k of that column times [x; h][k], with no horizontal reductions, and the block
// then finishes its units' c' and h' itself (a unit needs only its own four rows).
//
// At B = 1 a step is a read of the weights (2 MB for I = H = 256): each thread takes a fixed,
// contiguous run of blocks, every step, and finishes its units with no barrier but the end of the
// parallel region. Where a thread's share fits its core's L2 it stays there between steps (the
// same blocks, the same thread); where it does not (1 MB of the 2 MB per core on the 1 MB-L2 Xeon
// this was measured on) the step streams it from L3 at the rate one GEMV over the whole matrix
// does (~20 GB/s per core), and it saves the GEMV's separate gate pass, its output buffer and its
// dispatch. For B <= 8 the same loop carries up to 4 rows per read of a weight column (a beam of 8
// reads the weights twice); larger batches take one batched GEMM over the blocks (step_gemm).

#include <torch/extension.h>

#include <algorithm>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "lstm_math.h"

namespace {

using namespace lstmkit;  // Tensor, OptT, has, sigm, tanh_ (lstm_math.h)

constexpr int64_t kUnits = 16;           // hidden units per block
constexpr int64_t kParallelMin = 1 << 16;  // weights (elements) below which one thread does the step

constexpr int64_t kLanes = 4 * kUnits;  // a block's column: 4 gates x kUnits units
constexpr int64_t kKernelRows = 8;      // batch rows up to which the step reads the weights itself

// c' and h' of n <= kUnits units from a block's z = [i(16) f(16) g(16) o(16)].
template <typename T>
inline void cell_units(int64_t n, const T* z, const T* cp, T* hr, T* cr) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    T i = sigm(z[j]), f = sigm(z[kUnits + j]), g = tanh_(z[2 * kUnits + j]), o = sigm(z[3 * kUnits + j]);
    cr[j] = f * cp[j] + i * g;  // c' = f ⊙ c + i ⊙ g
    hr[j] = o * tanh_(cr[j]);   // h' = o ⊙ tanh(c')
  }
}

// A block column as whole vector registers (GCC/Clang vector extension: 64 bytes is one AVX-512
// register, two AVX2 ones): kVecs of them hold the kLanes values.
template <typename T>
using Vec [[gnu::vector_size(64)]] = T;
template <typename T>
constexpr int kVecs = int(kLanes * sizeof(T) / 64);

template <typename T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// acc[b] += Σ_k w[k] v[b][k] over len columns w (each kLanes values), for NB batch rows v (row
// stride ld). Every loop over b and the registers is unrolled, so acc lives in registers; with
// NB = 1 a second set of sums (odd k) keeps two FMA chains per register.
template <typename T, int NB>
inline void accumulate(const T* w, const T* v, int64_t ld, int64_t len, Vec<T> (&acc)[NB][kVecs<T>]) {
  constexpr int NV = kVecs<T>, L = 64 / int(sizeof(T));  // L: values per register
  if constexpr (NB == 1) {
    Vec<T> odd[NV] = {};
    int64_t k = 0;
    for (; k + 1 < len; k += 2) {
      const T v0 = v[k], v1 = v[k + 1];
#pragma GCC unroll 8
      for (int r = 0; r < NV; ++r) {
        acc[0][r] += load(w + k * kLanes + r * L) * v0;
        odd[r] += load(w + (k + 1) * kLanes + r * L) * v1;
      }
    }
    if (k < len) {
#pragma GCC unroll 8
      for (int r = 0; r < NV; ++r) acc[0][r] += load(w + k * kLanes + r * L) * v[k];
    }
#pragma GCC unroll 8
    for (int r = 0; r < NV; ++r) acc[0][r] += odd[r];
  } else {
    for (int64_t k = 0; k < len; ++k) {
#pragma GCC unroll 8
      for (int r = 0; r < NV; ++r) {
        const Vec<T> wk = load(w + k * kLanes + r * L);
#pragma GCC unroll 4
        for (int b = 0; b < NB; ++b) acc[b][r] += wk * v[b * ld + k];
      }
    }
  }
}

// Batch rows b0 .. b0 + NB of one block: z = W_blk [x; h] + b, then the block's n units.
template <typename T, int NB>
void block_rows(int64_t blk, int64_t b0, int64_t I, int64_t H, const T* x, const T* h, const T* c, const T* w,
                const T* bias, T* h1, T* c1) {
  constexpr int NV = kVecs<T>, L = 64 / int(sizeof(T));
  const int64_t j0 = blk * kUnits, n = std::min(kUnits, H - j0);
  const T* wb = w + blk * (I + H) * kLanes;  // (K, 4, kUnits)
  Vec<T> acc[NB][NV];
  for (int b = 0; b < NB; ++b)
    for (int r = 0; r < NV; ++r) acc[b][r] = bias ? load(bias + blk * kLanes + r * L) : Vec<T>{};
  accumulate<T, NB>(wb, x + b0 * I, I, I, acc);                // W_ih x
  accumulate<T, NB>(wb + I * kLanes, h + b0 * H, H, H, acc);  // W_hh h
  for (int b = 0; b < NB; ++b) {
    T z[kLanes];  // [i(16) f(16) g(16) o(16)]
    __builtin_memcpy(z, &acc[b][0], sizeof z);
    const int64_t o = (b0 + b) * H + j0;
    cell_units(n, z, c + o, h1 + o, c1 + o);
  }
}

// Blocks [lo, hi) of one step, for every batch row (up to 4 per read of a block; B <= kKernelRows).
template <typename T>
void step_blocks(int64_t lo, int64_t hi, int64_t B, int64_t I, int64_t H, const T* x, const T* h, const T* c,
                 const T* w, const T* bias, T* h1, T* c1) {
  for (int64_t blk = lo; blk < hi; ++blk) {
    int64_t b = 0;
    for (; b + 4 <= B; b += 4) block_rows<T, 4>(blk, b, I, H, x, h, c, w, bias, h1, c1);
    switch (B - b) {  // the last 1-3 rows in one read of the block too
      case 3: block_rows<T, 3>(blk, b, I, H, x, h, c, w, bias, h1, c1); break;
      case 2: block_rows<T, 2>(blk, b, I, H, x, h, c, w, bias, h1, c1); break;
      case 1: block_rows<T, 1>(blk, b, I, H, x, h, c, w, bias, h1, c1); break;
      default: break;
    }
  }
}

// One step on all threads, each on its own fixed run of blocks (see the file comment).
template <typename T>
void step_all(int64_t B, int64_t I, int64_t H, const T* x, const T* h, const T* c, const T* w, const T* bias,
              T* h1, T* c1) {
  const int64_t blocks = (H + kUnits - 1) / kUnits;
#ifdef _OPENMP
  if (blocks > 1 && B * 4 * H * (I + H) >= kParallelMin && at::get_num_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
    {
      const int64_t nt = omp_get_num_threads(), tid = omp_get_thread_num();
      step_blocks(blocks * tid / nt, blocks * (tid + 1) / nt, B, I, H, x, h, c, w, bias, h1, c1);
    }
    return;
  }
#endif
  step_blocks(int64_t(0), blocks, B, I, H, x, h, c, w, bias, h1, c1);
}

// [W_ih | W_hh] (4H, I + H) -> (blocks, I + H, 4, kUnits), and b_ih + b_hh (4H,) -> (blocks, 4, kUnits).
std::vector<Tensor> pack(const Tensor& w_ih, const Tensor& w_hh, const OptT& b_ih, const OptT& b_hh) {
  const int64_t H = w_hh.size(1), K = w_ih.size(1) + H, blocks = (H + kUnits - 1) / kUnits;
  TORCH_CHECK(w_ih.size(0) == 4 * H && w_hh.size(0) == 4 * H, "lstmkit_cpu.pack: weights must have 4H rows");
  const int64_t pad = blocks * kUnits - H;
  Tensor w = at::constant_pad_nd(at::cat({w_ih, w_hh}, 1).view({4, H, K}), {0, 0, 0, pad});  // (4, Hp, K)
  w = w.view({4, blocks, kUnits, K}).permute({1, 3, 0, 2}).contiguous();                   // (blocks, K, 4, U)
  Tensor b;
  if (has(b_ih)) {
    b = at::constant_pad_nd((*b_ih + *b_hh).view({4, H}), {0, pad});       // (4, Hp)
    b = b.view({4, blocks, kUnits}).permute({1, 0, 2}).contiguous();  // (blocks, 4, U)
  }
  return {w, b};
}

// B > kKernelRows: the kernel would read the weights once per 4 rows, so the gate pre-activations
// are one batched GEMM over the blocks, z (blocks, B, 4 x kUnits), then the blocks' units.
void step_gemm(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_blk, const OptT& bias, Tensor& h1,
               Tensor& c1) {
  const int64_t B = x.size(0), H = h.size(1), K = x.size(1) + H, blocks = w_blk.size(0);
  const Tensor xh = at::cat({x, h}, 1);      // (B, K)
  const Tensor w3 = w_blk.view({blocks, K, kLanes});  // (blocks, K, 4 x kUnits)
  const Tensor z = has(bias) ? at::baddbmm(bias->view({blocks, 1, kLanes}), xh.expand({blocks, B, K}), w3)
                             : at::matmul(xh, w3);  // (blocks, B, 4 x kUnits)
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_step_gemm", [&] {
    using T = scalar_t;
    const T *pz = z.data_ptr<T>(), *pc = c.data_ptr<T>();
    T *ph1 = h1.data_ptr<T>(), *pc1 = c1.data_ptr<T>();
    at::parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t blk = lo; blk < hi; ++blk)
        for (int64_t b = 0; b < B; ++b) {
          const int64_t o = b * H + blk * kUnits;
          cell_units(std::min(kUnits, H - blk * kUnits), pz + (blk * B + b) * kLanes, pc + o, ph1 + o, pc1 + o);
        }
    });
  });
}

// x (B, I); h, c (B, H) or one layer's (1, B, H); w_blk, b_blk from pack -> [y (B, H), h', c' (as h, c)].
std::vector<Tensor> lstm_step(const Tensor& x_in, const Tensor& h_in, const Tensor& c_in, const Tensor& w_blk,
                              const OptT& bias) {
  const int64_t B = x_in.size(0), H = c_in.size(-1), I = x_in.size(1), blocks = (H + kUnits - 1) / kUnits;
  // (1, B, H) and (B, H) states are the same memory when contiguous: no reshape op per step
  const Tensor x = x_in.contiguous(), h = h_in.contiguous(), c = c_in.contiguous();
  TORCH_CHECK(h.numel() == B * H && c.numel() == B * H, "lstmkit_cpu.step: h and c must hold (B, H) = (", B, ", ",
              H, ")");
  TORCH_CHECK(w_blk.is_contiguous() && w_blk.numel() == blocks * (I + H) * kLanes && w_blk.size(0) == blocks,
              "lstmkit_cpu.step: w_blk must be pack()'s contiguous (blocks, I + H, 4, 16)");
  TORCH_CHECK(!has(bias) || (bias->is_contiguous() && bias->numel() == blocks * kLanes),
              "lstmkit_cpu.step: the bias must be pack()'s contiguous (blocks, 4, 16)");
  Tensor h1 = at::empty(h_in.sizes(), x.options()), c1 = at::empty(c_in.sizes(), x.options());
  if (B > kKernelRows) {
    step_gemm(x, h.view({B, H}), c, w_blk, bias, h1, c1);
    return {h1.view({B, H}), h1, c1};
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_step", [&] {
    using T = scalar_t;
    step_all<T>(B, I, H, x.data_ptr<T>(), h.data_ptr<T>(), c.data_ptr<T>(), w_blk.data_ptr<T>(),
                has(bias) ? bias->data_ptr<T>() : nullptr, h1.data_ptr<T>(), c1.data_ptr<T>());
  });
  return {h1.view({B, H}), h1, c1};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("pack", &pack, "[W_ih | W_hh] and b_ih + b_hh with rows in the step's unit-blocked order -> [w_blk, b_blk]");
  m.def("step", &lstm_step, "one plain streaming LSTM step (no autograd): x, h, c, w_blk, b_blk -> [y, h', c']");
}
