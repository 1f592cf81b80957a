// The streaming step of lstmkit's LSTM on CPU (see lstmkit/nn/streaming.py), built into the same
// extension as lstm_cpu.cpp and exposed as the module function step(x, h, c, w_cat, bias): a direct
// binding, because a call through torch.ops cost about 15 µs of a ~100 µs step.
//
// One step of a plain cell for a streaming loop (no autograd): z = [W_ih | W_hh] [x; h] + b as ONE
// matrix-vector (B = 1) or matrix product over the cached side-by-side weights (4H, I + H), then
// one pass for the gates. At B = 1 the step is a read of the weights: one pass instead of two, and
// on several threads each core keeps re-reading the same rows (from its own cache). The B = 1
// product calls BLAS's gemv directly when torch's library exports it (MKL builds do): dispatching
// cat / addmv / select as tensor ops cost more than a third of the step.

#include <torch/extension.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <vector>

#include "lstm_math.h"

namespace {

using namespace lstmkit;  // Tensor, OptT, has, sigm, tanh_ (lstm_math.h)

template <typename T>
void step_row(int64_t H, const T* z, const T* cp, T* hr, T* cr) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    T i = sigm(z[j]), f = sigm(z[H + j]), g = tanh_(z[2 * H + j]), o = sigm(z[3 * H + j]);
    cr[j] = f * cp[j] + i * g;  // c' = f ⊙ c + i ⊙ g
    hr[j] = o * tanh_(cr[j]);   // h' = o ⊙ tanh(c')
  }
}

}  // namespace

extern "C" {  // Fortran BLAS, resolved from libtorch_cpu when present (weak: null otherwise)
void sgemv_(const char*, const int*, const int*, const float*, const float*, const int*, const float*, const int*,
            const float*, float*, const int*) __attribute__((weak));
void dgemv_(const char*, const int*, const int*, const double*, const double*, const int*, const double*,
            const int*, const double*, double*, const int*) __attribute__((weak));
}

namespace {

// y (n_out) = W (n_out, n_in, row-major) x + y, through BLAS when available. Returns false if not.
inline bool blas_gemv(int64_t n_out, int64_t n_in, const float* w, const float* x, float* y) {
  if (!sgemv_ || n_out > INT32_MAX || n_in > INT32_MAX) return false;
  const int m = int(n_in), n = int(n_out), one = 1;  // column-major: Wᵀ is (n_in, n_out)
  const float a = 1.f, b = 1.f;
  sgemv_("T", &m, &n, &a, w, &m, x, &one, &b, y, &one);
  return true;
}
inline bool blas_gemv(int64_t n_out, int64_t n_in, const double* w, const double* x, double* y) {
  if (!dgemv_ || n_out > INT32_MAX || n_in > INT32_MAX) return false;
  const int m = int(n_in), n = int(n_out), one = 1;
  const double a = 1., b = 1.;
  dgemv_("T", &m, &n, &a, w, &m, x, &one, &b, y, &one);
  return true;
}

// z (4H,) = W [x; h] + b for one sequence.
template <typename T>
void step_gates(const Tensor& x, const Tensor& h, const Tensor& w_cat, const OptT& bias, Tensor& z) {
  const int64_t I = x.size(1), H = h.size(1), G = w_cat.size(0);
  std::vector<T> xh(I + H);
  const T *px = x.data_ptr<T>(), *ph = h.data_ptr<T>();
  std::copy(px, px + I, xh.begin());
  std::copy(ph, ph + H, xh.begin() + I);
  T* pz = z.data_ptr<T>();
  if (has(bias)) std::copy(bias->data_ptr<T>(), bias->data_ptr<T>() + G, pz);
  else std::fill(pz, pz + G, T(0));
  if (!blas_gemv(G, I + H, w_cat.data_ptr<T>(), xh.data(), pz)) {
    Tensor v = at::from_blob(xh.data(), {I + H}, x.options());
    z.view({G}).add_(at::mv(w_cat, v));
  }
}

// x (B, I); h, c (B, H) or one layer's (1, B, H) -> [y (B, H), h', c' (shaped as h, c)].
std::vector<Tensor> lstm_step(const Tensor& x_in, const Tensor& h_in, const Tensor& c_in, const Tensor& w_cat,
                              const OptT& bias) {
  const int64_t B = x_in.size(0), H = c_in.size(-1);
  const Tensor x = x_in.contiguous(), h = h_in.reshape({B, -1}).contiguous(), c = c_in.reshape({B, H}).contiguous();
  TORCH_CHECK(w_cat.is_contiguous() && w_cat.size(0) == 4 * H && w_cat.size(1) == x.size(1) + h.size(1),
              "lstmkit_cpu.step: w_cat must be the contiguous (4H, I + H) [W_ih | W_hh]");
  Tensor z = at::empty({B, 4 * H}, x.options());
  if (B == 1) {
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_step_gates", [&] { step_gates<scalar_t>(x, h, w_cat, bias, z); });
  } else {
    Tensor xh = at::cat({x, h}, 1);  // (B, I + H)
    z = has(bias) ? at::addmm(*bias, xh, w_cat.t()) : at::mm(xh, w_cat.t());  // (B, 4H)
  }
  Tensor h1 = at::empty(h_in.sizes(), x.options()), c1 = at::empty(c_in.sizes(), x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstm_step", [&] {
    using T = scalar_t;
    for (int64_t b = 0; b < B; ++b)
      step_row<T>(H, z.data_ptr<T>() + b * 4 * H, c.data_ptr<T>() + b * H, h1.data_ptr<T>() + b * H,
                  c1.data_ptr<T>() + b * H);
  });
  return {h1.view({B, H}), h1, c1};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("step", &lstm_step, "one plain streaming LSTM step (no autograd): x, h, c, w_cat, bias -> [y, h', c']");
}
