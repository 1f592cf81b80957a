// The compiled CPU path of lstmkit's LSTM: one layer-direction, forward and backward through time.
//
// The same arithmetic as lstmkit/nn/fused.py (its docstring states the equations), but every step's
// elementwise work is one pass over each row instead of a dozen tensor ops: gate nonlinearities,
// the three layer norms (input 4H, recurrent 4H, cell H), peepholes, zoneout (masks drawn here from
// a counter hash, see dropout.py) and the padding mask. The two matrix products per step (W_hh h
// forward, dA W_hh backward) stay with ATen's GEMM. Gates packed i|f|g|o.
//
// Saved for the backward: the activated gates, c̃, and the states; tanh of the cell is recomputed
// there. Without padding the hidden states are the outputs y and (without cell zoneout) the cell
// states are c̃, so neither is stored twice.
//
// Layout: row (t, b) of the (T, B, N) tensors. xg, y, d_y and the returned dxg may be strided views
// (a bidirectional layer reads both directions' projections from one (T, B, 8H) tensor and writes
// both outputs into one (T, B, 2H) tensor); the saved buffers are contiguous, row = t * B + b.
// With reverse=true the loop runs t = T-1 .. 0: padding (valid = 0) then sits before each sequence's
// real end and leaves the initial state untouched, so each sequence starts at its own end.
//
// Loaded by lstmkit/nn/compiled.py with torch.utils.cpp_extension (JIT, cached); registered as the
// operators torch.ops.lstmkit_cpu.forward / .backward. The streaming step is in step_cpu.cpp.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "lstm_math.h"

namespace {

using namespace lstmkit;  // Tensor, OptT, has, sigm, tanh_ (lstm_math.h)

constexpr double kEps = 1e-5;  // LN_EPS in cell.py

// Zoneout's counter hash (murmur3's 32-bit finaliser over a scrambled counter); dropout.py computes
// the same function with torch integer ops for the other paths.
inline uint32_t zo_hash(uint32_t idx, uint32_t seed) {
  uint32_t x = (idx * 0x9E3779B1u) ^ seed;
  x ^= x >> 16;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  x *= 0xC2B2AE35u;
  x ^= x >> 16;
  return x;
}

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

// Layer-norm input gradient of one row: dx = rs (dy γ - mean(dy γ) - x̂ mean(dy γ x̂)). dx may be dy.
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

struct Zone {  // one zoneout mask: none/eval (seed < 0, the constant row) or hashed (seed, threshold)
  int64_t seed;
  uint32_t thr;
};

// The zoneout factors of one row: a {0, 1} mask hashed from (seed, row * n + j) in training, else the
// constant row (p in eval, 0 without zoneout). Inner loops never branch on an absent option.
template <typename T>
inline const T* keep_row(const Zone& z, int64_t row, int64_t n, const T* constant, T* scratch) {
  if (z.seed < 0) return constant;
  const uint32_t base = static_cast<uint32_t>(row * n), seed = static_cast<uint32_t>(z.seed), thr = z.thr;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) scratch[j] = zo_hash(base + static_cast<uint32_t>(j), seed) < thr ? T(1) : T(0);
  return scratch;
}

struct Strided {  // a (T, B, N) tensor whose rows may be strided; the last dim is contiguous
  int64_t st, sb;
  template <typename T>
  T* row(T* base, int64_t t, int64_t b) const { return base + t * st + b * sb; }
};

inline Strided strides(const Tensor& x) {
  TORCH_CHECK(x.dim() == 3 && x.stride(2) == 1, "lstmkit_cpu: expected a (T, B, N) tensor with a contiguous last dim");
  return {x.stride(0), x.stride(1)};
}

template <typename T>
struct Opts {  // optional inputs as raw pointers (null when absent); per-row constants for the rest
  const T *g_ih, *b_ih, *g_hh, *b_hh, *g_c, *b_c;
  const T* peep;   // (3, H), zeros when absent
  const T* valid;  // (T, B): 1 real step, 0 padding; null = all real
  const T *kc_const, *kh_const;  // rows of H constants
  Zone zc, zh;
};

struct Fill {  // tensors standing in for absent options
  Tensor peep, kc, kh;
};

Fill fill_absent(const Tensor& like, int64_t H, const OptT& peep, double zc_p, int64_t zc_seed, double zh_p,
                 int64_t zh_seed) {
  auto opt = like.options();
  return {has(peep) ? peep->contiguous() : at::zeros({3, H}, opt), at::full({H}, zc_seed < 0 ? zc_p : 0.0, opt),
          at::full({H}, zh_seed < 0 ? zh_p : 0.0, opt)};
}

template <typename T>
Opts<T> make_opts(const OptT& g_ih, const OptT& b_ih, const OptT& g_hh, const OptT& b_hh, const OptT& g_c,
                  const OptT& b_c, const OptT& valid, const Fill& f, int64_t zc_seed, int64_t zc_thr,
                  int64_t zh_seed, int64_t zh_thr) {
  return {ptr_or_null<T>(g_ih), ptr_or_null<T>(b_ih), ptr_or_null<T>(g_hh), ptr_or_null<T>(b_hh),
          ptr_or_null<T>(g_c),  ptr_or_null<T>(b_c),  f.peep.data_ptr<T>(), ptr_or_null<T>(valid),
          f.kc.data_ptr<T>(),   f.kh.data_ptr<T>(),   Zone{zc_seed, static_cast<uint32_t>(zc_thr)},
          Zone{zh_seed, static_cast<uint32_t>(zh_thr)}};
}

// ---------------------------------------------------------------------------------------- forward
template <typename T>
struct FwdBufs {  // saved (T, B, N): gates i|f|g|o (activated), ct = c̃, cs = cell states after the
  T *gates, *ct, *cs;  // step (may be ct); ahat/a_rs (LN_hh), nhat/n_rs (LN_c), x_mu/x_rs (LN_ih)
  T *ahat, *a_rs, *nhat, *n_rs, *x_mu, *x_rs;
  T* scratch;  // (threads, 3H): zoneout rows, tanh(n)
};

// z = LN_ih(x) + LN_hh(a) (or x + a) for one row of G = 4H.
template <typename T>
inline void preactivation(const T* x, const T* ar, int64_t G, int64_t row, const Opts<T>& o, const FwdBufs<T>& s,
                          T* z) {
  if (!o.g_hh) {
#pragma omp simd
    for (int64_t j = 0; j < G; ++j) z[j] = x[j] + ar[j];
    return;
  }
  T mu, rs;
  moments(ar, G, mu, rs);
  s.a_rs[row] = rs;
  T* ah = s.ahat + row * G;
  const T *gm = o.g_hh, *bt = o.b_hh;
  if (!o.g_ih) {
#pragma omp simd
    for (int64_t j = 0; j < G; ++j) {
      ah[j] = (ar[j] - mu) * rs;
      z[j] = x[j] + gm[j] * ah[j] + bt[j];
    }
    return;
  }
  T xm, xr;
  moments(x, G, xm, xr);
  s.x_mu[row] = xm, s.x_rs[row] = xr;
  const T *gi = o.g_ih, *bi = o.b_ih;
#pragma omp simd
  for (int64_t j = 0; j < G; ++j) {
    ah[j] = (ar[j] - mu) * rs;
    z[j] = gi[j] * ((x[j] - xm) * xr) + bi[j] + gm[j] * ah[j] + bt[j];
  }
}

template <typename T>
void forward_row(int64_t row, int64_t H, const T* x, const T* ar, const T* hp, const T* cp, T* yr, T* hr,
                 const Opts<T>& o, const FwdBufs<T>& s, int64_t slot) {
  T* z = s.gates + row * 4 * H;
  preactivation(x, ar, 4 * H, row, o, s, z);
  const T* pp = o.peep;
  T *zi = z, *zf = z + H, *zg = z + 2 * H, *zo = z + 3 * H;
  T* c_t = s.ct + row * H;
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    T i = sigm(zi[j] + pp[j] * cp[j]), f = sigm(zf[j] + pp[H + j] * cp[j]), g = tanh_(zg[j]);
    zi[j] = i, zf[j] = f, zg[j] = g;
    c_t[j] = f * cp[j] + i * g;  // c̃ = f ⊙ c + i ⊙ g
    zo[j] = sigm(zo[j] + pp[2 * H + j] * c_t[j]);
  }
  T* tr = s.scratch + slot * 3 * H + 2 * H;
  if (o.g_c) {  // τ = tanh(γ_c ⊙ LN(c̃) + β_c)
    const T *gm = o.g_c, *bt = o.b_c;
    T mu, rs;
    moments(c_t, H, mu, rs);
    s.n_rs[row] = rs;
    T* nh = s.nhat + row * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      nh[j] = (c_t[j] - mu) * rs;
      tr[j] = tanh_(gm[j] * nh[j] + bt[j]);
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) tr[j] = tanh_(c_t[j]);
  }
  const T v = o.valid ? o.valid[row] : T(1);
  const T* kc = keep_row(o.zc, row, H, o.kc_const, s.scratch + slot * 3 * H);
  const T* kh = keep_row(o.zh, row, H, o.kh_const, s.scratch + slot * 3 * H + H);
  T* cr = s.cs + row * H;  // may be c_t (then the same value is written back), hr may be yr
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

Tensor saved_or_empty(bool on, at::IntArrayRef shape, const at::TensorOptions& opt) {
  return on ? at::empty(shape, opt) : at::empty({0}, opt);
}

std::vector<Tensor> lstm_forward(const Tensor& xg, const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                 const OptT& g_ih, const OptT& b_ih, const OptT& g_hh, const OptT& b_hh,
                                 const OptT& g_c, const OptT& b_c, const OptT& peep, const OptT& h_mask,
                                 const OptT& valid, double zc_p, int64_t zc_seed, int64_t zc_thr, double zh_p,
                                 int64_t zh_seed, int64_t zh_thr, bool reverse, const OptT& y_out) {
  const int64_t T_ = xg.size(0), B = xg.size(1), G = xg.size(2), H = G / 4;
  TORCH_CHECK(!has(g_ih) || has(g_hh), "lstmkit_cpu: the input layer norm needs the recurrent one");
  auto opt = xg.options();
  const bool ln_ih = has(g_ih), ln_hh = has(g_hh), ln_c = has(g_c), masked = has(h_mask);
  Tensor gates = at::empty({T_, B, G}, opt), ct = at::empty({T_, B, H}, opt);
  Tensor y = has(y_out) ? *y_out : at::empty({T_, B, H}, opt);
  const bool padded = has(valid), c_zoneout = zc_seed >= 0 || zc_p != 0.0;
  Tensor hs = padded ? at::empty({T_, B, H}, opt) : y;  // states = outputs unless padding zeroes outputs
  Tensor cs = padded || c_zoneout ? at::empty({T_, B, H}, opt) : ct;
  Tensor ahat = saved_or_empty(ln_hh, {T_, B, G}, opt), a_rs = saved_or_empty(ln_hh, {T_, B}, opt);
  Tensor nhat = saved_or_empty(ln_c, {T_, B, H}, opt), n_rs = saved_or_empty(ln_c, {T_, B}, opt);
  Tensor x_mu = saved_or_empty(ln_ih, {T_, B}, opt), x_rs = saved_or_empty(ln_ih, {T_, B}, opt);
  Tensor a = at::empty({B, G}, opt), hm = at::empty({B, H}, opt), scratch = at::empty({at::get_num_threads(), 3 * H}, opt);
  Tensor w_t = w_hh.t().contiguous();  // (H, 4H), row-major: a faster B operand for the per-step GEMM
  const Fill fill = fill_absent(xg, H, peep, zc_p, zc_seed, zh_p, zh_seed);
  const Strided sx = strides(xg), sy = strides(y), sh = strides(hs);
  AT_DISPATCH_FLOATING_TYPES(xg.scalar_type(), "lstm_forward", [&] {
    using T = scalar_t;
    const Opts<T> o = make_opts<T>(g_ih, b_ih, g_hh, b_hh, g_c, b_c, valid, fill, zc_seed, zc_thr, zh_seed, zh_thr);
    auto p = [](Tensor& x) { return x.numel() ? x.data_ptr<T>() : nullptr; };
    const FwdBufs<T> s{p(gates), p(ct), p(cs), p(ahat), p(a_rs), p(nhat), p(n_rs), p(x_mu), p(x_rs), p(scratch)};
    const T *p_xg = xg.data_ptr<T>(), *p_a = a.data_ptr<T>();
    T *p_y = y.data_ptr<T>(), *p_hs = hs.data_ptr<T>();
    for (int64_t step = 0; step < T_; ++step) {
      const int64_t t = reverse ? T_ - 1 - step : step, prev = reverse ? t + 1 : t - 1;
      Tensor h_prev = step == 0 ? h0 : hs[prev], c_prev = step == 0 ? c0 : cs[prev];  // (B, H)
      if (masked) {
        at::mul_out(hm, h_prev, *h_mask);
        at::mm_out(a, hm, w_t);  // W_hh (h ⊙ m)   (B, 4H)
      } else {
        at::mm_out(a, h_prev, w_t);
      }
      const T *hp = h_prev.data_ptr<T>(), *cp = c_prev.data_ptr<T>();
      const int64_t h_row = step == 0 ? H : sh.sb;  // h0 is contiguous, y's rows may be strided
      at::parallel_for(0, B, 8, [&](int64_t lo, int64_t hi) {
        const int64_t slot = at::get_thread_num();  // this thread's scratch row
        for (int64_t b = lo; b < hi; ++b)
          forward_row<T>(t * B + b, H, sx.row(p_xg, t, b), p_a + b * G, hp + b * h_row, cp + b * H,
                         sy.row(p_y, t, b), sh.row(p_hs, t, b), o, s, slot);
      });
    }
  });
  return {y, gates, ct, hs, cs, ahat, a_rs, nhat, n_rs, x_mu, x_rs};
}

// --------------------------------------------------------------------------------------- backward
template <typename T>
struct BwdBufs {  // the forward's buffers, and a scratch row per thread (7H): zoneout rows, x̂_ih, tanh(n)
  const T* xg;
  Strided sx;
  const T *gates, *ct, *ahat, *a_rs, *nhat, *n_rs, *x_mu, *x_rs;
  T* scratch;
};

// The layer-norm parts of one row's backward, after dz is known: dL/da through γ_hh ⊙ LN(a) (into
// da), then dL/dx through γ_ih ⊙ LN(x), in place in dz. Sums dγ, dβ into the row's accumulators.
template <typename T>
inline void ln_backward(int64_t t, int64_t b, int64_t row, int64_t G, const BwdBufs<T>& s, const Opts<T>& o, T* dz,
                        T* da, T* ac, T* scratch) {
  const int64_t H = G / 4;
  const T* ah = s.ahat + row * G;
  ln_backward_row(dz, ah, o.g_hh, s.a_rs[row], G, da);
  T *ag = ac, *ab = ac + G;
#pragma omp simd
  for (int64_t j = 0; j < G; ++j) ag[j] += dz[j] * ah[j], ab[j] += dz[j];
  if (!o.g_ih) return;
  const T* x = s.sx.row(s.xg, t, b);
  const T xm = s.x_mu[row], xr = s.x_rs[row];
  T* xh = scratch + 2 * H;
  T *ig = ac + 13 * H, *ib = ac + 17 * H;
#pragma omp simd
  for (int64_t j = 0; j < G; ++j) {
    xh[j] = (x[j] - xm) * xr;
    ig[j] += dz[j] * xh[j], ib[j] += dz[j];
  }
  ln_backward_row(dz, xh, o.g_ih, xr, G, dz);
}

// One row of one step back. dh, dc (B, H) hold dL/dh_t, dL/dc_t on entry; on exit dc holds
// dL/dc_{t-1} and dh_keep the part of dL/dh_{t-1} that skips the recurrent matmul (padding, zoneout).
// The small parameters' gradients are summed while the row is in cache, into this thread's ac (21H):
// [dγ_hh | dβ_hh] (4H each), [dγ_c | dβ_c] (H each), [dw_ci | dw_cf | dw_co] (H each), [dγ_ih | dβ_ih].
template <typename T>
void backward_row(int64_t t, int64_t b, int64_t B, int64_t H, const T* dyr, const T* cp, T* dzr, T* dar, T* dh,
                  T* dc, T* dh_keep, const BwdBufs<T>& s, const Opts<T>& o, bool has_peep, T* ac, T* scratch) {
  const int64_t G = 4 * H, row = t * B + b;
  T *dhr = dh + b * H, *dcr = dc + b * H, *dk = dh_keep + b * H;
  const T v = o.valid ? o.valid[row] : T(1);
  if (v == T(0)) {  // padding: the state passed through unchanged
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) dk[j] = dhr[j];
    for (int64_t j = 0; j < G; ++j) dzr[j] = T(0);
    if (dar != dzr) for (int64_t j = 0; j < G; ++j) dar[j] = T(0);
    return;
  }
  const T* z = s.gates + row * G;
  const T *i = z, *f = z + H, *g = z + 2 * H, *og = z + 3 * H;
  const T* ctr = s.ct + row * H;
  const T* kc = keep_row(o.zc, row, H, o.kc_const, scratch);
  const T* kh = keep_row(o.zh, row, H, o.kh_const, scratch + H);
  T* tr = scratch + 6 * H;  // τ = tanh(n), recomputed
  if (o.g_c) {
    const T *nh = s.nhat + row * H, *gm = o.g_c, *bt = o.b_c;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) tr[j] = tanh_(gm[j] * nh[j] + bt[j]);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) tr[j] = tanh_(ctr[j]);
  }
  const T* pp = o.peep;
  // du = (1-k_h) dL/dh' ; dn = du ⊙ o (1-τ²) ; ∂z_o = du ⊙ τ o(1-o)
  T* dnr = dzr;  // dL/dn, kept in dz's i-slot until the next loop overwrites it
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
    const T* nh = s.nhat + row * H;
    ln_backward_row(dnr, nh, o.g_c, s.n_rs[row], H, dct);
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
  if (o.g_hh) ln_backward(t, b, row, G, s, o, dzr, dar, ac, scratch);
}

Tensor last_dim_contiguous(const Tensor& x) { return x.stride(-1) == 1 ? x : x.contiguous(); }

std::vector<Tensor> lstm_backward(const Tensor& d_y_in, const Tensor& d_hn, const Tensor& d_cn, const Tensor& w_hh,
                                  const Tensor& xg, const Tensor& gates, const Tensor& ct, const Tensor& cs, const Tensor& c0, const Tensor& ahat, const Tensor& a_rs,
                                  const Tensor& nhat, const Tensor& n_rs, const Tensor& x_mu, const Tensor& x_rs,
                                  const OptT& g_ih, const OptT& g_hh, const OptT& g_c, const OptT& b_c,
                                  const OptT& peep,
                                  const OptT& h_mask, const OptT& valid, double zc_p, int64_t zc_seed,
                                  int64_t zc_thr, double zh_p, int64_t zh_seed, int64_t zh_thr, bool reverse,
                                  const OptT& dx_out) {
  const int64_t T_ = gates.size(0), B = gates.size(1), G = gates.size(2), H = G / 4;
  auto opt = gates.options();
  const bool ln_hh = has(g_hh), masked = has(h_mask), has_peep = has(peep);
  Tensor dxg = has(dx_out) ? *dx_out : at::empty({T_, B, G}, opt);  // dL/dxg; dL/dz before the input LN
  Tensor da = ln_hh ? at::empty({T_, B, G}, opt) : dxg;  // dL/da, a = W_hh h_{t-1}
  const int64_t threads = at::get_num_threads();
  Tensor acc = at::zeros({threads, 21 * H}, opt), scratch = at::empty({threads, 7 * H}, opt);
  Tensor dh = d_hn.contiguous().clone(), dc = d_cn.contiguous().clone(), dh_keep = at::empty({B, H}, opt);
  const Tensor d_y = last_dim_contiguous(d_y_in);
  const Fill fill = fill_absent(gates, H, peep, zc_p, zc_seed, zh_p, zh_seed);
  const Strided sdy = strides(d_y), sdx = strides(dxg), sda = strides(da);
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "lstm_backward", [&] {
    using T = scalar_t;
    const Opts<T> o = make_opts<T>(g_ih, c10::nullopt, g_hh, c10::nullopt, g_c, b_c, valid, fill, zc_seed, zc_thr,
                                   zh_seed, zh_thr);
    auto p = [](const Tensor& x) { return x.numel() ? x.data_ptr<T>() : nullptr; };
    const BwdBufs<T> s{xg.data_ptr<T>(), strides(xg), p(gates), p(ct), p(ahat), p(a_rs), p(nhat), p(n_rs), p(x_mu),
                       p(x_rs), scratch.data_ptr<T>()};
    const T *p_dy = d_y.data_ptr<T>(), *p_cs = cs.data_ptr<T>(), *p_c0 = c0.data_ptr<T>();
    T *p_dh = dh.data_ptr<T>(), *p_dc = dc.data_ptr<T>(), *p_keep = dh_keep.data_ptr<T>();
    T *p_dx = dxg.data_ptr<T>(), *p_da = da.data_ptr<T>(), *p_acc = acc.data_ptr<T>();
    for (int64_t step = T_ - 1; step >= 0; --step) {
      const int64_t t = reverse ? T_ - 1 - step : step, prev = reverse ? t + 1 : t - 1;
      const T* cprev = step == 0 ? p_c0 : p_cs + prev * B * H;  // c_{t-1} in processing order   (B, H)
      at::parallel_for(0, B, 8, [&](int64_t lo, int64_t hi) {
        const int64_t slot = at::get_thread_num();  // this thread's accumulators and scratch
        for (int64_t b = lo; b < hi; ++b)
          backward_row<T>(t, b, B, H, sdy.row(p_dy, t, b), cprev + b * H, sdx.row(p_dx, t, b), sda.row(p_da, t, b),
                          p_dh, p_dc, p_keep, s, o, has_peep, p_acc + slot * 21 * H, s.scratch + slot * 7 * H);
      });
      at::mm_out(dh, da[t], w_hh);  // dL/d(h ⊙ m) = dA W_hh   (B, H)
      if (masked) dh.mul_(*h_mask);
      dh.add_(dh_keep);
    }
  });
  return {dxg, da, acc.sum(0), dh, dc};  // acc summed over the threads: (21H,)
}

}  // namespace

TORCH_LIBRARY(lstmkit_cpu, m) {
  m.def(
      "forward(Tensor xg, Tensor h0, Tensor c0, Tensor w_hh, Tensor? g_ih, Tensor? b_ih, Tensor? g_hh, "
      "Tensor? b_hh, Tensor? g_c, Tensor? b_c, Tensor? peep, Tensor? h_mask, Tensor? valid, float zc_p, "
      "int zc_seed, int zc_thr, float zh_p, int zh_seed, int zh_thr, bool reverse, Tensor? y_out) -> Tensor[]",
      &lstm_forward);
  m.def(
      "backward(Tensor d_y, Tensor d_hn, Tensor d_cn, Tensor w_hh, Tensor xg, Tensor gates, Tensor ct, "
      "Tensor cs, Tensor c0, Tensor ahat, Tensor a_rs, Tensor nhat, Tensor n_rs, Tensor x_mu, "
      "Tensor x_rs, Tensor? g_ih, Tensor? g_hh, Tensor? g_c, Tensor? b_c, Tensor? peep, Tensor? h_mask, Tensor? valid, "
      "float zc_p, int zc_seed, int zc_thr, float zh_p, int zh_seed, int zh_thr, bool reverse, "
      "Tensor? dx_out) -> Tensor[]",
      &lstm_backward);
}
