// NEON (AArch64). extern "C" only, no STL, no inline helpers shared with other files.
#include <arm_neon.h>
#include <stdint.h>

extern "C" float sp_dot_f32_neon(const float* a, const float* b, int64_t n) {
  float32x4_t acc0 = vdupq_n_f32(0), acc1 = vdupq_n_f32(0);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    acc0 = vfmaq_f32(acc0, vld1q_f32(a + i), vld1q_f32(b + i));
    acc1 = vfmaq_f32(acc1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
  }
  float sum = vaddvq_f32(vaddq_f32(acc0, acc1));
  for (; i < n; i++) sum += a[i] * b[i];
  return sum;
}
