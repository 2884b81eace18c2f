// NEON conversions between f32 and f16 (round to nearest even, the default FPCR mode),
// 4 at a time; the tail goes through a zero-padded stack buffer of one vector (the same
// function called on it). extern "C" entry points only.
#include <arm_neon.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"

extern "C" void sp_f32_to_f16_neon(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  if (i < n) {
    float in[4] = {0};
    uint16_t out[4];
    __builtin_memcpy(in, x + i, sizeof(float) * size_t(n - i));
    sp_f32_to_f16_neon(in, out, 4);
    __builtin_memcpy(y + i, out, sizeof(uint16_t) * size_t(n - i));
  }
}

extern "C" void sp_f16_to_f32_neon(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
  if (i < n) {
    uint16_t in[4] = {0};
    float out[4];
    __builtin_memcpy(in, x + i, sizeof(uint16_t) * size_t(n - i));
    sp_f16_to_f32_neon(in, out, 4);
    __builtin_memcpy(y + i, out, sizeof(float) * size_t(n - i));
  }
}

extern "C" void sp_round_f16_neon(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(x + i))));
  if (i < n) {
    float in[4] = {0}, out[4];
    __builtin_memcpy(in, x + i, sizeof(float) * size_t(n - i));
    sp_round_f16_neon(in, out, 4);
    __builtin_memcpy(y + i, out, sizeof(float) * size_t(n - i));
  }
}
