// Shared by the compiled CPU kernels of lstmkit (lstm_cpu.cpp: sequences; step_cpu.cpp: streaming).
#pragma once

#include <ATen/ATen.h>

#include <cmath>

namespace lstmkit {

using at::Tensor;
using OptT = c10::optional<Tensor>;

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

}  // namespace lstmkit
