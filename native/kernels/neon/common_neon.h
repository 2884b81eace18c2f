// Helpers shared by the neon kernel files of this folder (and only by them: they are
// compiled with the same flags). Internal linkage, so no other translation unit can pick
// up these copies.
#pragma once
#include <arm_neon.h>
#include <stdint.h>

namespace {

inline int32_t ld32(const uint8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline float ldf(const uint8_t* p) {
  float v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline float32x4_t f16x4(const uint8_t* p) {
  return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p))));
}
inline int8x16_t s8(uint8x16_t v) { return vreinterpretq_s8_u8(v); }
// sum over the 4 groups of x (16 bytes) of w[i] . x group i, added to acc
inline int32x4_t dot4(int32x4_t acc, const int8x16_t* w, int8x16_t x) {
  acc = vdotq_laneq_s32(acc, w[0], x, 0);
  acc = vdotq_laneq_s32(acc, w[1], x, 1);
  acc = vdotq_laneq_s32(acc, w[2], x, 2);
  acc = vdotq_laneq_s32(acc, w[3], x, 3);
  return acc;
}
// per row: m[2p] * b[0] + m[2p+1] * b[1] from (m even, m odd) int16 pairs of 4 rows
inline int32x4_t pair_dot(int16x8_t m, int32_t bpair) {
  int16x8_t b = vreinterpretq_s16_s32(vdupq_n_s32(bpair));
  return vpaddq_s32(vmull_s16(vget_low_s16(m), vget_low_s16(b)), vmull_high_s16(m, b));
}
inline void store_rows(float* y, int64_t left, float32x4_t v) {
  if (left >= 4) {
    vst1q_f32(y, v);
  } else {
    float tmp[4];
    vst1q_f32(tmp, v);
    for (int64_t i = 0; i < left; i++) y[i] = tmp[i];
  }
}

}  // namespace
