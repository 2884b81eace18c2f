// NEON conversions between f32 and f16 (round to nearest even, the default FPCR mode),
// 4 at a time; the tail goes through a zero-padded stack buffer of one vector.
// extern "C" entry points only; helpers have internal linkage.
#include <arm_neon.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"

namespace {

// vec(in, out) converts 4 elements; the last partial vector is padded with zeros.
template <typename In, typename Out, typename Vec>
inline void convert4(const In* x, Out* y, int64_t n, Vec vec) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vec(x + i, y + i);
  if (i < n) {
    In in[4] = {};
    Out out[4];
    __builtin_memcpy(in, x + i, sizeof(In) * size_t(n - i));
    vec(in, out);
    __builtin_memcpy(y + i, out, sizeof(Out) * size_t(n - i));
  }
}

}  // namespace

extern "C" void sp_f32_to_f16_neon(const float* x, uint16_t* y, int64_t n) {
  convert4(x, y, n, [](const float* a, uint16_t* b) { vst1_u16(b, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(a)))); });
}

extern "C" void sp_f16_to_f32_neon(const uint16_t* x, float* y, int64_t n) {
  convert4(x, y, n, [](const uint16_t* a, float* b) { vst1q_f32(b, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(a)))); });
}

extern "C" void sp_round_f16_neon(const float* x, float* y, int64_t n) {
  convert4(x, y, n, [](const float* a, float* b) { vst1q_f32(b, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(a)))); });
}
