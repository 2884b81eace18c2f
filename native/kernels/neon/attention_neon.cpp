// NEON attention kernel (kernels.h, sp_pv_f16): probabilities times f16 values. Each
// output value is one chain of fused multiply-adds over the positions in increasing
// order, whatever the number of rows (rows are blocked by four so that one load and
// conversion of the values serves four rows). extern "C" entry points only.
#include <arm_neon.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"

extern "C" void sp_pv_f16_neon(const float* w, int64_t ldw, const uint16_t* v, int64_t ldv, int64_t np, float* out,
                               int64_t ldo, int64_t rows, int64_t hd) {
  const int64_t main = hd / 4 * 4;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* w0 = w + r * ldw;
    float* y0 = out + r * ldo;
    for (int64_t i = 0; i < main; i += 4) {
      float32x4_t a0 = vld1q_f32(y0 + i), a1 = vld1q_f32(y0 + ldo + i);
      float32x4_t a2 = vld1q_f32(y0 + 2 * ldo + i), a3 = vld1q_f32(y0 + 3 * ldo + i);
      for (int64_t p = 0; p < np; p++) {
        const float32x4_t x = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + p * ldv + i)));
        a0 = vfmaq_n_f32(a0, x, w0[p]);
        a1 = vfmaq_n_f32(a1, x, w0[ldw + p]);
        a2 = vfmaq_n_f32(a2, x, w0[2 * ldw + p]);
        a3 = vfmaq_n_f32(a3, x, w0[3 * ldw + p]);
      }
      vst1q_f32(y0 + i, a0);
      vst1q_f32(y0 + ldo + i, a1);
      vst1q_f32(y0 + 2 * ldo + i, a2);
      vst1q_f32(y0 + 3 * ldo + i, a3);
    }
  }
  for (; r < rows; r++) {
    const float* w0 = w + r * ldw;
    float* y0 = out + r * ldo;
    for (int64_t i = 0; i < main; i += 4) {
      float32x4_t a0 = vld1q_f32(y0 + i);
      for (int64_t p = 0; p < np; p++) a0 = vfmaq_n_f32(a0, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + p * ldv + i))), w0[p]);
      vst1q_f32(y0 + i, a0);
    }
  }
  // The last hd % 4 values of every row: the same fused chain, one value at a time.
  for (r = 0; r < rows; r++)
    for (int64_t i = main; i < hd; i++) {
      float a = out[r * ldo + i];
      for (int64_t p = 0; p < np; p++) {
        const uint16_t h = v[p * ldv + i];
        a = __builtin_fmaf(w[r * ldw + p], vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0), a);
      }
      out[r * ldo + i] = a;
    }
}
