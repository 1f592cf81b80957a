// The compiled CPU path of lstmkit's SLSTM (the sLSTM of xLSTM): one layer-direction, forward and
// backward through time.
//
// The equations are in lstmkit/nn/slstm.py, the backward's in lstmkit/nn/slstm_fused.py (whose Python
// "fused" path does the same arithmetic as tensor ops). Here every step is one batched matmul over the
// K heads (ATen's GEMM: R_k h_{t-1}[k] forward, dA_k R_k backward) and one pass over each row for all
// the elementwise work: log σ(f̃), the stabiliser max, the two exps, tanh, σ, c, n and h = o c / n.
//
// Layout: row (t, b) of the (T, B, N) tensors, all contiguous. The 4H pre-activations are head-major:
// column k*4Dh + g*Dh + j is gate g (i|f|z|o) of unit k*Dh + j, so a (B, 4H) row block viewed (K, B, 4Dh)
// (strides 4Dh, 4H, 1) is the batched matmul's operand without a copy, and the recurrent product
// (K, B, 4Dh) is read in place. With reverse=true the loop runs t = T-1 .. 0: padding (valid = 0) then
// sits before each sequence's real end and leaves the initial state untouched.
//
// Saved for the backward: i', f', z, o (T, B, 4H), σ(-f̃) and κ (which side of the max won: 1 log i,
// 0 log f + m_{t-1}, ½ a tie, as torch.maximum splits its gradient) (T, B, H), and the states h, c, n.
// Where the previous state is empty (n_{t-1} = 0, as the default zeros) m_t = log i and f' = 0, saved
// as κ = 1 and f' = 0: the backward needs nothing else for it.
// The stabiliser m is carried in one (B, H) row: the backward does not read it.
//
// Registered as torch.ops.lstmkit_cpu.slstm_forward / .slstm_backward (a fragment of lstm_cpu.cpp's library).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "lstm_math.h"

namespace {

using namespace lstmkit;  // Tensor, OptT, has, sigm, tanh_ (lstm_math.h)

template <typename T>
struct Fwd {
  const T* xg;     // (T, B, 4H)
  const T* rec;    // (K, B, 4Dh): this step's recurrent term
  const T* valid;  // (T, B) 1/0, or null
  T *gates, *sf, *kz, *hs, *cs, *ns, *y;  // hs may be y
  T* m;                                   // (B, H) the running stabiliser
  int64_t B, K, D, H;
};

template <typename T, bool EXP>
void forward_row(const Fwd<T>& s, int64_t t, int64_t b, const T* hp, const T* cp, const T* np) {
  const int64_t H = s.H, D = s.D, row = t * s.B + b;
  T *hr = s.hs + row * H, *cr = s.cs + row * H, *nr = s.ns + row * H, *yr = s.y + row * H, *mr = s.m + b * H;
  if (s.valid && s.valid[row] == T(0)) {  // padding: the state passes through, the output is zero
    for (int64_t u = 0; u < H; ++u) hr[u] = hp[u], cr[u] = cp[u], nr[u] = np[u], yr[u] = T(0);
    return;
  }
  const T* x = s.xg + row * 4 * H;
  T *g = s.gates + row * 4 * H, *sfr = s.sf + row * H, *kzr = s.kz + row * H;
  for (int64_t k = 0; k < s.K; ++k) {
    const T *xk = x + k * 4 * D, *ak = s.rec + (k * s.B + b) * 4 * D;
    T* gk = g + k * 4 * D;
    const int64_t o0 = k * D;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      const int64_t u = o0 + j;
      const T zi = xk[j] + ak[j], zf = xk[D + j] + ak[D + j];
      const T zz = xk[2 * D + j] + ak[2 * D + j], zo = xk[3 * D + j] + ak[3 * D + j];
      T lf, sg;
      if (EXP) {
        lf = zf, sg = T(1);
      } else {  // log σ(f̃) = min(f̃, 0) - log(1 + e^{-|f̃|}) ; σ(-f̃)
        const T e = std::exp(-std::abs(zf)), q = T(1) + e;
        lf = (zf < T(0) ? zf : T(0)) - std::log(q);
        sg = (zf >= T(0) ? e : T(1)) / q;
      }
      const T uu = lf + mr[u];  // log f + m_{t-1}
      const bool empty = np[u] == T(0);  // an empty state: m_t = log i, f' = 0
      const T mn = (empty || zi > uu) ? zi : uu;
      const T kv = (empty || zi > uu) ? T(1) : (zi == uu ? T(0.5) : T(0));
      const T ip = std::exp(zi - mn), fp = empty ? T(0) : std::exp(uu - mn);  // i', f' in [0, 1]
      const T z = tanh_(zz), o = sigm(zo);
      const T c = fp * cp[u] + ip * z, n = fp * np[u] + ip, h = o * c / n;
      gk[j] = ip, gk[D + j] = fp, gk[2 * D + j] = z, gk[3 * D + j] = o;
      sfr[u] = sg, kzr[u] = kv;
      cr[u] = c, nr[u] = n, hr[u] = h, yr[u] = h, mr[u] = mn;
    }
  }
}

void check_inputs(const Tensor& xg, const Tensor& w_hh) {
  TORCH_CHECK(xg.dim() == 3 && xg.is_contiguous(), "lstmkit_cpu.slstm: xg must be a contiguous (T, B, 4H) tensor");
  TORCH_CHECK(w_hh.dim() == 3 && w_hh.size(1) == 4 * w_hh.size(2) && w_hh.size(0) * w_hh.size(2) * 4 == xg.size(2),
              "lstmkit_cpu.slstm: w_hh must be (K, 4Dh, Dh) with K*Dh = H");
}

std::vector<Tensor> slstm_forward(const Tensor& xg, const Tensor& h0, const Tensor& c0, const Tensor& n0,
                                  const Tensor& m0, const Tensor& w_hh, const OptT& valid, bool exp_forget,
                                  bool reverse) {
  check_inputs(xg, w_hh);
  const int64_t T_ = xg.size(0), B = xg.size(1), H = xg.size(2) / 4, K = w_hh.size(0), D = w_hh.size(2);
  auto opt = xg.options();
  const bool padded = has(valid);
  Tensor gates = at::empty({T_, B, 4 * H}, opt), sf = at::empty({T_, B, H}, opt), kz = at::empty({T_, B, H}, opt);
  Tensor cs = at::empty({T_, B, H}, opt), ns = at::empty({T_, B, H}, opt), y = at::empty({T_, B, H}, opt);
  Tensor hs = padded ? at::empty({T_, B, H}, opt) : y;  // states = outputs unless padding zeroes outputs
  Tensor m = m0.contiguous().clone(), rec = at::empty({K, B, 4 * D}, opt);
  Tensor w_t = w_hh.transpose(1, 2).contiguous();  // (K, Dh, 4Dh)
  Tensor h0c = h0.contiguous(), c0c = c0.contiguous(), n0c = n0.contiguous();
  AT_DISPATCH_FLOATING_TYPES(xg.scalar_type(), "slstm_forward", [&] {
    using T = scalar_t;
    const Fwd<T> s{xg.data_ptr<T>(), rec.data_ptr<T>(), padded ? valid->data_ptr<T>() : nullptr,
                   gates.data_ptr<T>(), sf.data_ptr<T>(), kz.data_ptr<T>(), hs.data_ptr<T>(), cs.data_ptr<T>(),
                   ns.data_ptr<T>(), y.data_ptr<T>(), m.data_ptr<T>(), B, K, D, H};
    for (int64_t step = 0; step < T_; ++step) {
      const int64_t t = reverse ? T_ - 1 - step : step, prev = reverse ? t + 1 : t - 1;
      const Tensor h_prev = step == 0 ? h0c : hs[prev];  // (B, H)
      at::bmm_out(rec, h_prev.view({B, K, D}).transpose(0, 1), w_t);  // R_k h[k]   (K, B, 4Dh)
      const T* hp = h_prev.data_ptr<T>();
      const T* cp = step == 0 ? c0c.data_ptr<T>() : s.cs + prev * B * H;
      const T* np = step == 0 ? n0c.data_ptr<T>() : s.ns + prev * B * H;
      at::parallel_for(0, B, 8, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
          if (exp_forget)
            forward_row<T, true>(s, t, b, hp + b * H, cp + b * H, np + b * H);
          else
            forward_row<T, false>(s, t, b, hp + b * H, cp + b * H, np + b * H);
        }
      });
    }
  });
  return {y, gates, sf, kz, hs, cs, ns, m};
}

template <typename T>
struct Bwd {
  const T *d_y, *gates, *sf, *kz, *cs, *ns, *valid;
  const T* dhr;  // (K, B, Dh): R_kᵀ dA_k of the step after (in processing order)
  T *dz, *dkeep, *dc, *dn, *dm;  // dz (T, B, 4H); dkeep: dL/dh that bypasses the recurrence (B, H)
  int64_t B, K, D, H;
};

// One row of one step back. On entry dkeep + dhr + d_y is dL/dh_t and dc, dn, dm are dL/dc_t, dL/dn_t,
// dL/dm_t; on exit they are the gradients of the previous state (dh through dz and the next bmm).
template <typename T, bool EXP>
void backward_row(const Bwd<T>& s, int64_t t, int64_t b, const T* cp, const T* np) {
  const int64_t H = s.H, D = s.D, row = t * s.B + b;
  T *dkr = s.dkeep + b * H, *dcr = s.dc + b * H, *dnr = s.dn + b * H, *dmr = s.dm + b * H, *dzr = s.dz + row * 4 * H;
  if (s.valid && s.valid[row] == T(0)) {  // padding: everything passes through
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t j = 0; j < D; ++j) dkr[k * D + j] += s.dhr[(k * s.B + b) * D + j];
    for (int64_t j = 0; j < 4 * H; ++j) dzr[j] = T(0);
    return;
  }
  const T *g = s.gates + row * 4 * H, *cr = s.cs + row * H, *nr = s.ns + row * H, *dyr = s.d_y + row * H;
  const T *sfr = s.sf + row * H, *kzr = s.kz + row * H;
  for (int64_t k = 0; k < s.K; ++k) {
    const T *gk = g + k * 4 * D, *dhk = s.dhr + (k * s.B + b) * D;
    T* dzk = dzr + k * 4 * D;
    const int64_t o0 = k * D;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) {
      const int64_t u = o0 + j;
      const T dh1 = dhk[j] + dkr[u] + dyr[u];
      const T ip = gk[j], fp = gk[D + j], z = gk[2 * D + j], o = gk[3 * D + j];
      const T inv = T(1) / nr[u], r = cr[u] * inv;
      const T dct = dcr[u] + dh1 * o * inv;      // dc̄
      const T dnt = dnr[u] - dh1 * o * r * inv;  // dn̄
      const T gi = (dct * z + dnt) * ip, gf = (dct * cp[u] + dnt * np[u]) * fp;
      const T dzi = gi + kzr[u] * (dmr[u] - gi - gf);
      const T du = dmr[u] - dzi;  // dL/d(log f + m_{t-1})
      dzk[j] = dzi;
      dzk[D + j] = EXP ? du : du * sfr[u];
      dzk[2 * D + j] = dct * ip * (T(1) - z * z);
      dzk[3 * D + j] = dh1 * r * o * (T(1) - o);
      dcr[u] = dct * fp, dnr[u] = dnt * fp, dmr[u] = du, dkr[u] = T(0);
    }
  }
}

std::vector<Tensor> slstm_backward(const Tensor& d_y, const Tensor& d_hn, const Tensor& d_cn, const Tensor& d_nn,
                                   const Tensor& d_mn, const Tensor& w_hh, const Tensor& gates, const Tensor& sf,
                                   const Tensor& kz, const Tensor& cs, const Tensor& ns, const Tensor& c0,
                                   const Tensor& n0, const OptT& valid, bool exp_forget, bool reverse) {
  check_inputs(gates, w_hh);
  const int64_t T_ = gates.size(0), B = gates.size(1), H = gates.size(2) / 4, K = w_hh.size(0), D = w_hh.size(2);
  auto opt = gates.options();
  Tensor dz = at::empty({T_, B, 4 * H}, opt), dhr = at::zeros({K, B, D}, opt);
  Tensor dkeep = d_hn.contiguous().clone(), dc = d_cn.contiguous().clone(), dn = d_nn.contiguous().clone();
  Tensor dm = d_mn.contiguous().clone(), dy = d_y.contiguous(), w = w_hh.contiguous();
  Tensor c0c = c0.contiguous(), n0c = n0.contiguous();
  AT_DISPATCH_FLOATING_TYPES(gates.scalar_type(), "slstm_backward", [&] {
    using T = scalar_t;
    const Bwd<T> s{dy.data_ptr<T>(),  gates.data_ptr<T>(), sf.data_ptr<T>(), kz.data_ptr<T>(),
                   cs.data_ptr<T>(),  ns.data_ptr<T>(),    has(valid) ? valid->data_ptr<T>() : nullptr,
                   dhr.data_ptr<T>(), dz.data_ptr<T>(),    dkeep.data_ptr<T>(), dc.data_ptr<T>(),
                   dn.data_ptr<T>(),  dm.data_ptr<T>(),    B, K, D, H};
    for (int64_t step = T_ - 1; step >= 0; --step) {
      const int64_t t = reverse ? T_ - 1 - step : step, prev = reverse ? t + 1 : t - 1;
      const T* cp = step == 0 ? c0c.data_ptr<T>() : s.cs + prev * B * H;  // c_{t-1} in processing order
      const T* np = step == 0 ? n0c.data_ptr<T>() : s.ns + prev * B * H;
      at::parallel_for(0, B, 8, [&](int64_t lo, int64_t hi) {
        for (int64_t b = lo; b < hi; ++b) {
          if (exp_forget)
            backward_row<T, true>(s, t, b, cp + b * H, np + b * H);
          else
            backward_row<T, false>(s, t, b, cp + b * H, np + b * H);
        }
      });
      at::bmm_out(dhr, dz[t].view({B, K, 4 * D}).transpose(0, 1), w);  // dA_k R_k   (K, B, Dh)
    }
  });
  Tensor dh0 = dhr.transpose(0, 1).reshape({B, H}) + dkeep;
  return {dz, dh0, dc, dn, dm};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lstmkit_cpu, m) {
  m.def(
      "slstm_forward(Tensor xg, Tensor h0, Tensor c0, Tensor n0, Tensor m0, Tensor w_hh, Tensor? valid, "
      "bool exp_forget, bool reverse) -> Tensor[]",
      &slstm_forward);
  m.def(
      "slstm_backward(Tensor d_y, Tensor d_hn, Tensor d_cn, Tensor d_nn, Tensor d_mn, Tensor w_hh, Tensor gates, "
      "Tensor sf, Tensor kz, Tensor cs, Tensor ns, Tensor c0, Tensor n0, Tensor? valid, bool exp_forget, "
      "bool reverse) -> Tensor[]",
      &slstm_backward);
}
