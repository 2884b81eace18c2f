// NEON activation quantizers: the same values as quant/quant.cpp's reference (products
// rounded to nearest even by vcvtn, as lrintf does in the default rounding mode; the
// Q8_0 scale rounded to fp16 by the hardware conversion, as the software one does).
// extern "C" entry points only; helpers have internal linkage.
#include <arm_neon.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"

namespace {

// 4 floats times s, rounded to nearest even, clamped to [-127, 127], as int32 lanes.
inline int32x4_t quant4(float32x4_t v, float32x4_t s) {
  int32x4_t q = vcvtnq_s32_f32(vmulq_f32(v, s));
  return vminq_s32(vmaxq_s32(q, vdupq_n_s32(-127)), vdupq_n_s32(127));
}

// 16 int32 lanes (in [-127, 127]) to 16 bytes in order.
inline int8x16_t narrow16(const int32x4_t* q) {
  int16x8_t lo = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
  int16x8_t hi = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
  return vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
}

inline int32_t sum16(const int32x4_t* q) { return vaddvq_s32(vaddq_s32(vaddq_s32(q[0], q[1]), vaddq_s32(q[2], q[3]))); }

inline float round_fp16(float f) { return vgetq_lane_f32(vcvt_f32_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0); }

}  // namespace

extern "C" void sp_quantize_q8a_neon(const float* x, void* y, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(y);
  for (int64_t b = 0; b < n / 32; b++, x += 32, out += sparrow::kQ8ABytes) {
    float32x4_t v[8];
    float32x4_t m = vdupq_n_f32(0);
    for (int k = 0; k < 8; k++) {
      v[k] = vld1q_f32(x + 4 * k);
      m = vmaxq_f32(m, vabsq_f32(v[k]));
    }
    const float amax = vmaxvq_f32(m);
    const float32x4_t id = vdupq_n_f32(amax > 0 ? 127 / amax : 0);
    int32x4_t q[8];
    for (int k = 0; k < 8; k++) q[k] = quant4(v[k], id);
    vst1q_s8(reinterpret_cast<int8_t*>(out + 8), narrow16(q));
    vst1q_s8(reinterpret_cast<int8_t*>(out + 24), narrow16(q + 4));
    const float d = round_fp16(amax / 127);
    const int32_t sum = sum16(q) + sum16(q + 4);
    __builtin_memcpy(out, &d, 4);
    __builtin_memcpy(out + 4, &sum, 4);
  }
}

extern "C" void sp_quantize_q8ka_neon(const float* x, void* y, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(y);
  for (int64_t b = 0; b < n / 256; b++, x += 256, out += sparrow::kQ8KABytes) {
    float32x4_t m = vdupq_n_f32(0);
    for (int k = 0; k < 64; k++) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + 4 * k)));
    const float amax = vmaxvq_f32(m);
    // The element of largest magnitude, the first one on ties, sign kept.
    float mx = 0;
    for (int i = 0; i < 256; i++)
      if (__builtin_fabsf(x[i]) == amax) {
        mx = x[i];
        break;
      }
    const float iscale = amax > 0 ? -127.0f / mx : 0.0f;
    const float32x4_t s = vdupq_n_f32(iscale);
    int16_t bsums[16];
    for (int k = 0; k < 16; k++) {
      int32x4_t q[4];
      for (int j = 0; j < 4; j++) q[j] = quant4(vld1q_f32(x + 16 * k + 4 * j), s);
      vst1q_s8(reinterpret_cast<int8_t*>(out + sparrow::kQ8KAQs + 16 * k), narrow16(q));
      bsums[k] = int16_t(sum16(q));
    }
    int16_t bsums32[8];
    for (int k = 0; k < 8; k++) bsums32[k] = int16_t(bsums[2 * k] + bsums[2 * k + 1]);
    const float d = amax > 0 ? 1.0f / iscale : 0.0f;
    __builtin_memcpy(out, &d, 4);
    __builtin_memcpy(out + sparrow::kQ8KABsums, bsums, sizeof bsums);
    __builtin_memcpy(out + sparrow::kQ8KABsums32, bsums32, sizeof bsums32);
  }
}
