// The compiled CPU path of lstmkit's LSTM: one layer-direction, forward and backward through time.
//
// The same arithmetic as lstmkit/nn/fused.py (its docstring states the equations), but every step's
// elementwise work is one pass over each row instead of a dozen tensor ops: gate nonlinearities,
// both layer norms (over the 4H recurrent pre-activations and over the H cell), peepholes, zoneout
// and the padding mask. The two matrix products per step (W_hh h forward, dA W_hh backward) stay
// with ATen's GEMM. Layout: every (T, B, N) tensor is time-major and contiguous; gates packed i|f|g|o.
//
// Loaded by lstmkit/nn/compiled.py with torch.utils.cpp_extension (JIT, cached); registered as the
// operators torch.ops.lstmkit_cpu.forward / .backward.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace {

using at::Tensor;
using OptT = c10::optional<Tensor>;

constexpr double kEps = 1e-5;  // LN_EPS in cell.py

// Vectorisable nonlinearities (clamped so exp never overflows under -ffast-math).
template <typename T>
inline T sigm(T x) {
  x = x < T(-80) ? T(-80) : (x > T(80) ? T(80) : x);
  return T(1) / (T(1) + std::exp(-x));
}
template <typename T>
inline T tanh_(T x) {
  x = x < T(-20) ? T(-20) : (x > T(20) ? T(20) : x);
  return T(1) - T(2) / (std::exp(T(2) * x) + T(1));
}

inline bool has(const OptT& t) { return t.has_value() && t->defined(); }

template <typename T>
const T* ptr_or_null(const OptT& t) {
  return has(t) ? t->data_ptr<T>() : nullptr;
}

// Mean and reciprocal standard deviation (biased variance) of one row of n values.
template <typename T>
inline void moments(const T* x, int64_t n, T& mu, T& rs) {
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += x[j];
  mu = s / T(n);
  T v = 0;
#pragma omp simd reduction(+ : v)
  for (int64_t j = 0; j < n; ++j) v += (x[j] - mu) * (x[j] - mu);
  rs = T(1) / std::sqrt(v / T(n) + T(kEps));
}

// Layer-norm input gradient of one row: dx = rs (dy γ - mean(dy γ) - x̂ mean(dy γ x̂)).
template <typename T>
inline void ln_backward_row(const T* dy, const T* xhat, const T* gamma, T rs, int64_t n, T* dx) {
  T m1 = 0, m2 = 0;
#pragma omp simd reduction(+ : m1, m2)
  for (int64_t j = 0; j < n; ++j) {
    T d = dy[j] * gamma[j];
    m1 += d;
    m2 += d * xhat[j];
  }
  m1 /= T(n);
  m2 /= T(n);
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = rs * (dy[j] * gamma[j] - m1 - xhat[j] * m2);
}

struct Opts {  // optional inputs, as raw pointers (null when absent)
  const void* g_hh;
  const void* b_hh;
  const void* g_c;
  const void* b_c;
  const void* peep;
  const void* valid;  // (T, B) in the compute dtype: 1 real step, 0 padding
  const void* keep_c;  // (T, B, H) zoneout factors, or one row of H constants (stride 0)
  const void* keep_h;
  int64_t kc_stride, kh_stride;  // H, or 0 for a constant factor
};

// Inner loops never branch on an absent option: an absent peephole reads zeros and an absent
// zoneout reads a row of constants (a masked load from a null pointer costs a microcode assist).
struct Fill {
  Tensor peep, keep_c, keep_h;
};

Fill fill_absent(const Tensor& like, int64_t H, const OptT& peep, const OptT& keep_c, const OptT& keep_h,
                 double keep_c_p, double keep_h_p) {
  auto opt = like.options();
  return {has(peep) ? peep->contiguous() : at::zeros({3, H}, opt),
          has(keep_c) ? keep_c->contiguous() : at::full({H}, keep_c_p, opt),
          has(keep_h) ? keep_h->contiguous() : at::full({H}, keep_h_p, opt)};
}

template <typename T>
Opts make_opts(const OptT& g_hh, const OptT& b_hh, const OptT& g_c, const OptT& b_c, const OptT& valid,
               const Fill& f, int64_t H) {
  return {ptr_or_null<T>(g_hh), ptr_or_null<T>(b_hh), ptr_or_null<T>(g_c), ptr_or_null<T>(b_c),
          f.peep.data_ptr<T>(), ptr_or_null<T>(valid), f.keep_c.data_ptr<T>(), f.keep_h.data_ptr<T>(),
          f.keep_c.dim() == 1 ? 0 : H, f.keep_h.dim() == 1 ? 0 : H};
}

// ---------------------------------------------------------------------------------------- forward
// Saved (T, B, N) buffers: gates i|f|g|o (activated), ct = c̃, tn = tanh(n), hs/cs = states after
// the step, ahat/a_rs (LN_hh), nhat/n_rs (LN_c).
template <typename T>
void forward_row(int64_t t, int64_t b, int64_t B, int64_t H, const T* xg, const T* a, const T* h_prev,
                 const T* c_prev, const Opts& o, T* gates, T* ct, T* tn, T* hs, T* cs, T* y, T* ahat,
                 T* a_rs, T* nhat, T* n_rs) {
  const int64_t G = 4 * H, row = t * B + b;
  const T* x = xg + row * G;
  const T* ar = a + b * G;
  T* z = gates + row * G;
  const T* cp = c_prev + b * H;
  const T* hp = h_prev + b * H;
  if (o.g_hh) {  // z = xg + γ ⊙ LN(a) + β
    const T *gm = (const T*)o.g_hh, *bt = (const T*)o.b_hh;
    T mu, rs;
    moments(ar, G, mu, rs);
    a_rs[row] = rs;
    T* ah = ahat + row * G;
#pragma omp simd
    for (int64_t j = 0; j < G; ++j) {
      ah[j] = (ar[j] - mu) * rs;
      z[j] = x[j] + gm[j] * ah[j] + bt[j];
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < G; ++j) z[j] = x[j] + ar[j];
  }
  const T* pp = (const T*)o.peep;
  T *zi = z, *zf = z + H, *zg = z + 2 * H, *zo = z + 3 * H;
  T* c_t = ct + row * H;
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    T i = sigm(zi[j] + pp[j] * cp[j]), f = sigm(zf[j] + pp[H + j] * cp[j]), g = tanh_(zg[j]);
    zi[j] = i, zf[j] = f, zg[j] = g;
    c_t[j] = f * cp[j] + i * g;  // c̃ = f ⊙ c + i ⊙ g
    zo[j] = sigm(zo[j] + pp[2 * H + j] * c_t[j]);
  }
  T* tr = tn + row * H;
  if (o.g_c) {  // τ = tanh(γ_c ⊙ LN(c̃) + β_c)
    const T *gm = (const T*)o.g_c, *bt = (const T*)o.b_c;
    T mu, rs;
    moments(c_t, H, mu, rs);
    n_rs[row] = rs;
    T* nh = nhat + row * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      nh[j] = (c_t[j] - mu) * rs;
      tr[j] = tanh_(gm[j] * nh[j] + bt[j]);
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) tr[j] = tanh_(c_t[j]);
  }
  const T v = o.valid ? ((const T*)o.valid)[row] : T(1);
  const T* kc = (const T*)o.keep_c + row * o.kc_stride;
  const T* kh = (const T*)o.keep_h + row * o.kh_stride;
  T *hr = hs + row * H, *cr = cs + row * H, *yr = y + row * H;
  const bool real = v != T(0);  // else frozen past the end
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    T hn = zo[j] * tr[j];  // h' = o ⊙ τ
    T cz = c_t[j] + kc[j] * (cp[j] - c_t[j]);  // zoneout: lerp(c̃, c_{t-1}, k_c)
    T hz = hn + kh[j] * (hp[j] - hn);
    yr[j] = v * hz;  // padding -> 0
    cr[j] = real ? cz : cp[j];
    hr[j] = real ? hz : hp[j];
  }
}

std::vector<Tensor> lstm_forward(const Tensor& xg, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                 const OptT& g_hh, const OptT& b_hh, const OptT& g_c, const OptT& b_c,
                                 const OptT& peep, const OptT& h_mask, const OptT& valid, const OptT& keep_c,
                                 const OptT& keep_h, double keep_c_p, double keep_h_p) {
  const int64_t T_ = xg.size(0), B = xg.size(1), G = xg.size(2), H = G / 4;
  auto opt = xg.options();
  Tensor gates = at::empty({T_, B, G}, opt), ct = at::empty({T_, B, H}, opt), tn = at::empty({T_, B, H}, opt);
  Tensor hs = at::empty({T_, B, H}, opt), cs = at::empty({T_, B, H}, opt), y = at::empty({T_, B, H}, opt);
  const bool ln_hh = has(g_hh), ln_c = has(g_c);
  Tensor ahat = ln_hh ? at::empty({T_, B, G}, opt) : at::empty({0}, opt);
  Tensor a_rs = ln_hh ? at::empty({T_, B}, opt) : at::empty({0}, opt);
  Tensor nhat = ln_c ? at::empty({T_, B, H}, opt) : at::empty({0}, opt);
  Tensor n_rs = ln_c ? at::empty({T_, B}, opt) : at::empty({0}, opt);
  Tensor a = at::empty({B, G}, opt), hm = at::empty({B, H}, opt);
  Tensor w_t = w_hh.t().contiguous();  // (H, 4H), row-major: a faster B operand for the per-step GEMM
  const bool masked = has(h_mask);
  const Fill fill = fill_absent(xg, H, peep, keep_c, keep_h, keep_c_p, keep_h_p);
  AT_DISPATCH_FLOATING_TYPES(xg.scalar_type(), "lstm_forward", [&] {
    using T = scalar_t;
    Opts o = make_opts<T>(g_hh, b_hh, g_c, b_c, valid, fill, H);
    const T *p_xg = xg.data_ptr<T>(), *p_a = a.data_ptr<T>();
    T *p_gates = gates.data_ptr<T>(), *p_ct = ct.data_ptr<T>(), *p_tn = tn.data_ptr<T>(), *p_hs = hs.data_ptr<T>();
    T *p_cs = cs.data_ptr<T>(), *p_y = y.data_ptr<T>();
    T* p_ahat = ln_hh ? ahat.data_ptr<T>() : nullptr;
    T* p_ars = ln_hh ? a_rs.data_ptr<T>() : nullptr;
    T* p_nhat = ln_c ? nhat.data_ptr<T>() : nullptr;
    T* p_nrs = ln_c ? n_rs.data_ptr<T>() : nullptr;
    for (int64_t t = 0; t < T_; ++t) {
      Tensor h_prev = t == 0 ? h0 : hs[t - 1], c_prev = t == 0 ? c0 : cs[t - 1];  // (B, H)
      if (masked) {
        at::mul_out(hm, h_prev, *h_mask);
        at::mm_out(a, hm, w_t);  // W_hh (h ⊙ m)   (B, 4H)
      } else {
        at::mm_out(a, h_prev, w_t);
      }
      const T *hp = h_prev.data_ptr<T>(), *cp = c_prev.data_ptr<T>();
      at::parallel_for(0, B, 8, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b)
          forward_row<T>(t, b, B, H, p_xg, p_a, hp, cp, o, p_gates, p_ct, p_tn, p_hs, p_cs, p_y, p_ahat, p_ars,
                         p_nhat, p_nrs);
      });
    }
  });
  return {y, gates, ct, tn, hs, cs, ahat, a_rs, nhat, n_rs};
}

// --------------------------------------------------------------------------------------- backward
struct Saved {  // raw pointers into the forward's buffers
  const void *gates, *ct, *tn, *cs, *c0, *ahat, *a_rs, *nhat, *n_rs;
};

// One row of one step back. dh, dc (B, H) hold dL/dh_t, dL/dc_t on entry; on exit dc holds
// dL/dc_{t-1} and dh_keep the part of dL/dh_{t-1} that skips the recurrent matmul (padding, zoneout).
// The small parameters' gradients are summed per row while the row is in cache, into acc (B, 13H):
// [dγ_hh | dβ_hh] (4H each), [dγ_c | dβ_c] (H each), [dw_ci | dw_cf | dw_co] (H each).
template <typename T>
void backward_row(int64_t t, int64_t b, int64_t B, int64_t H, const T* dy, T* dh, T* dc, T* dh_keep, const Saved& s,
                  const Opts& o, bool has_peep, T* dz, T* da, T* acc) {
  const int64_t G = 4 * H, row = t * B + b;
  T* ac = acc + b * 13 * H;
  T *dhr = dh + b * H, *dcr = dc + b * H, *dk = dh_keep + b * H, *dzr = dz + row * G;
  const T v = o.valid ? ((const T*)o.valid)[row] : T(1);
  if (v == T(0)) {  // padding: the state passed through unchanged
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) dk[j] = dhr[j];
    for (int64_t j = 0; j < G; ++j) dzr[j] = T(0);
    if (da != dz) for (int64_t j = 0; j < G; ++j) da[row * G + j] = T(0);
    return;
  }
  const T* z = (const T*)s.gates + row * G;
  const T *i = z, *f = z + H, *g = z + 2 * H, *og = z + 3 * H;
  const T* ctr = (const T*)s.ct + row * H;
  const T* tr = (const T*)s.tn + row * H;
  const T* cp = t == 0 ? (const T*)s.c0 + b * H : (const T*)s.cs + (row - B) * H;
  const T* kc = (const T*)o.keep_c + row * o.kc_stride;
  const T* kh = (const T*)o.keep_h + row * o.kh_stride;
  const T* pp = (const T*)o.peep;
  const T* dyr = dy + row * H;
  // du = (1-k_h) dL/dh' ; dn = du ⊙ o (1-τ²) ; ∂z_o = du ⊙ τ o(1-o)
  T* dnr = dzr;  // dL/dn, kept in dz's i-slot until the last loop overwrites it
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    T dh1 = dhr[j] + dyr[j];
    dk[j] = kh[j] * dh1;
    T du = dh1 - dk[j];
    dzr[3 * H + j] = du * tr[j] * og[j] * (T(1) - og[j]);
    dnr[j] = du * og[j] * (T(1) - tr[j] * tr[j]);
  }
  T* dct = dhr;  // dh's row is free now: reuse it for dL/dc̃
  if (o.g_c) {
    const T* nh = (const T*)s.nhat + row * H;
    ln_backward_row(dnr, nh, (const T*)o.g_c, ((const T*)s.n_rs)[row], H, dct);
    T *ag = ac + 8 * H, *ab = ac + 9 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) ag[j] += dnr[j] * nh[j], ab[j] += dnr[j];
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) dct[j] = dnr[j];
  }
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    T dc1 = dcr[j];
    T d = dct[j] + (T(1) - kc[j]) * dc1 + dzr[3 * H + j] * pp[2 * H + j];  // dL/dc̃
    T dzi = d * g[j] * i[j] * (T(1) - i[j]);
    T dzf = d * cp[j] * f[j] * (T(1) - f[j]);
    dzr[2 * H + j] = d * i[j] * (T(1) - g[j] * g[j]);
    dzr[j] = dzi;
    dzr[H + j] = dzf;
    dcr[j] = d * f[j] + kc[j] * dc1 + dzi * pp[j] + dzf * pp[H + j];  // dL/dc_{t-1}
  }
  if (has_peep) {
    T* ap = ac + 10 * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j)
      ap[j] += dzr[j] * cp[j], ap[H + j] += dzr[H + j] * cp[j], ap[2 * H + j] += dzr[3 * H + j] * ctr[j];
  }
  if (o.g_hh) {  // dL/da through γ ⊙ LN(a)
    const T* ah = (const T*)s.ahat + row * G;
    ln_backward_row(dzr, ah, (const T*)o.g_hh, ((const T*)s.a_rs)[row], G, da + row * G);
    T* ab = ac + G;
#pragma omp simd
    for (int64_t j = 0; j < G; ++j) ac[j] += dzr[j] * ah[j], ab[j] += dzr[j];
  }
}

std::vector<Tensor> lstm_backward(const Tensor& d_y, const Tensor& d_hn, const Tensor& d_cn, const Tensor& w_hh,
                                  const Tensor& gates, const Tensor& ct, const Tensor& tn, const Tensor& cs,
                                  const Tensor& c0, const Tensor& ahat, const Tensor& a_rs, const Tensor& nhat,
                                  const Tensor& n_rs, const OptT& g_hh, const OptT& g_c, const OptT& peep,
                                  const OptT& h_mask, const OptT& valid, const OptT& keep_c, const OptT& keep_h,
                                  double keep_c_p, double keep_h_p) {
  const int64_t T_ = gates.size(0), B = gates.size(1), G = gates.size(2), H = G / 4;
  auto opt = gates.options();
  const bool ln_hh = has(g_hh), ln_c = has(g_c);
  Tensor dz = at::empty({T_, B, G}, opt);
  Tensor da = ln_hh ? at::empty({T_, B, G}, opt) : dz;
  Tensor acc = at::zeros({B, 13 * H}, opt);
  Tensor dh = d_hn.contiguous().clone(), dc = d_cn.contiguous().clone(), dh_keep = at::empty({B, H}, opt);
  Tensor dyc = d_y.contiguous();
  const bool masked = has(h_mask), has_peep = has(peep);
  const Fill fill = fill_absent(gates, H, peep, keep_c, keep_h, keep_c_p, keep_h_p);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    using T = scalar_t;
    Opts o = make_opts<T>(g_hh, c10::nullopt, g_c, c10::nullopt, valid, fill, H);
    Saved s{gates.data_ptr<T>(), ct.data_ptr<T>(), tn.data_ptr<T>(), cs.data_ptr<T>(), c0.data_ptr<T>(),
            ln_hh ? ahat.data_ptr<T>() : nullptr, ln_hh ? a_rs.data_ptr<T>() : nullptr,
            ln_c ? nhat.data_ptr<T>() : nullptr, ln_c ? n_rs.data_ptr<T>() : nullptr};
    const T* p_dy = dyc.data_ptr<T>();
    T *p_dh = dh.data_ptr<T>(), *p_dc = dc.data_ptr<T>(), *p_keep = dh_keep.data_ptr<T>();
    T *p_dz = dz.data_ptr<T>(), *p_da = da.data_ptr<T>(), *p_acc = acc.data_ptr<T>();
    for (int64_t t = T_ - 1; t >= 0; --t) {
      at::parallel_for(0, B, 8, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b)
          backward_row<T>(t, b, B, H, p_dy, p_dh, p_dc, p_keep, s, o, has_peep, p_dz, p_da, p_acc);
      });
      at::mm_out(dh, da[t], w_hh);  // dL/d(h ⊙ m) = dA W_hh   (B, H)
      if (masked) dh.mul_(*h_mask);
      dh.add_(dh_keep);
    }
  });
  return {dz, da, acc.sum(0), dh, dc};  // acc summed over the batch: (13H,)
}

}  // namespace

TORCH_LIBRARY(lstmkit_cpu, m) {
  m.def(
      "forward(Tensor xg, Tensor h0, Tensor c0, Tensor w_hh, Tensor? g_hh, Tensor? b_hh, Tensor? g_c, "
      "Tensor? b_c, Tensor? peep, Tensor? h_mask, Tensor? valid, Tensor? keep_c, Tensor? keep_h, "
      "float keep_c_p, float keep_h_p) -> Tensor[]",
      &lstm_forward);
  m.def(
      "backward(Tensor d_y, Tensor d_hn, Tensor d_cn, Tensor w_hh, Tensor gates, Tensor ct, Tensor tn, "
      "Tensor cs, Tensor c0, Tensor ahat, Tensor a_rs, Tensor nhat, Tensor n_rs, Tensor? g_hh, Tensor? g_c, "
      "Tensor? peep, Tensor? h_mask, Tensor? valid, Tensor? keep_c, Tensor? keep_h, float keep_c_p, "
      "float keep_h_p) -> Tensor[]",
      &lstm_backward);
}
