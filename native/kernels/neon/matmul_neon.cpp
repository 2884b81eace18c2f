// NEON (AArch64, with the dot-product extension) matmul kernels over the repacked layouts
// of kernels/layout.h. extern "C" entry points only; helpers have internal linkage.
//
// A 16-row group is done as four quarters of 4 rows (one 128-bit register, 4 bytes per
// row). sdot by lane (vdotq_laneq_s32) multiplies the quants of 4 rows with a 4-byte
// group of activations and adds into each row's lane. Tiles of 4 rows x T tokens (T <= 4),
// or of all 16 rows x 1 token for the GEMV (run_tiles).
#include <arm_neon.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/neon/common_neon.h"

namespace {


// Tile<Q, T> does quarters [q0, q0 + Q) of a group for T tokens, the quarters inside the
// block loop. n <= 3 (the GEMV of decoding, small batches of decode steps) takes all four
// quarters in one pass over the group's bytes, so the memory stream never waits on a
// second pass over lines already read; larger n takes one quarter at a time, T = 4 tokens
// then the remainder. Each
// row's operations are the same code whatever Q and T: the bits do not depend on n.
template <template <int, int> class Tile>
void run_tiles(const uint8_t* w, int64_t group_bytes, const uint8_t* x, int64_t xrow, int64_t nb, int64_t n,
               float* y, int64_t ldy, int64_t g0, int64_t g1, int64_t rlimit) {
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * group_bytes;
    if (n <= 3) {  // bound by the weight stream: one pass over the group
      const int64_t left = rlimit - g * 16;
      if (n == 1) Tile<4, 1>::run(wg, 0, nb, x, xrow, y + g * 16, ldy, left);
      if (n == 2) Tile<4, 2>::run(wg, 0, nb, x, xrow, y + g * 16, ldy, left);
      if (n == 3) Tile<4, 3>::run(wg, 0, nb, x, xrow, y + g * 16, ldy, left);
      continue;
    }
    for (int qd = 0; qd < 4; qd++) {
      int64_t left = rlimit - g * 16 - 4 * qd;
      if (left <= 0) break;
      float* yg = y + g * 16 + 4 * qd;
      int64_t t = 0;
      for (; t + 4 <= n; t += 4) Tile<1, 4>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left);
      switch (n - t) {
        case 1: Tile<1, 1>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left); break;
        case 2: Tile<1, 2>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left); break;
        case 3: Tile<1, 3>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left); break;
        default: break;
      }
    }
  }
}

template <int Q, int T>
struct Q4_0Tile {
  static void run(const uint8_t* wg, int q0, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    float32x4_t acc[Q][T];
    for (int qq = 0; qq < Q; qq++)
      for (int t = 0; t < T; t++) acc[qq][t] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    for (int64_t b = 0; b < nb; b++)
      for (int qq = 0; qq < Q; qq++) {
        const int qd = q0 + qq;
        const uint8_t* blk = wg + b * sparrow::kQ4_0GroupBlock;
        int8x16_t lo[4], hi[4];
        for (int k = 0; k < 4; k++) {
          uint8x16_t raw = vld1q_u8(blk + 32 + 64 * k + 16 * qd);
          lo[k] = s8(vandq_u8(raw, m4));
          hi[k] = s8(vshrq_n_u8(raw, 4));
        }
        const float32x4_t dw = f16x4(blk + 8 * qd);
        for (int t = 0; t < T; t++) {
          const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
          int32x4_t s = dot4(vdupq_n_s32(0), lo, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 8)));
          s = dot4(s, hi, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 24)));
          s = vsubq_s32(s, vdupq_n_s32(8 * ld32(xb + 4)));
          acc[qq][t] = vfmaq_n_f32(acc[qq][t], vmulq_f32(vcvtq_f32_s32(s), dw), ldf(xb));
        }
      }
    for (int qq = 0; qq < Q && 4 * qq < left; qq++)
      for (int t = 0; t < T; t++) store_rows(y + 4 * qq + t * ldy, left - 4 * qq, acc[qq][t]);
  }
};

template <int Q, int T>
struct Q8_0Tile {
  static void run(const uint8_t* wg, int q0, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    float32x4_t acc[Q][T];
    for (int qq = 0; qq < Q; qq++)
      for (int t = 0; t < T; t++) acc[qq][t] = vdupq_n_f32(0);
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (int64_t b = 0; b < nb; b++)
      for (int qq = 0; qq < Q; qq++) {
        const int qd = q0 + qq;
        const uint8_t* blk = wg + b * sparrow::kQ8_0GroupBlock;
        int8x16_t w[8];  // signed quants: sum q*x equals the twin's sum (q+128)x - 128 sum x
        for (int k = 0; k < 8; k++) w[k] = s8(veorq_u8(vld1q_u8(blk + 32 + 64 * k + 16 * qd), flip));
        const float32x4_t dw = f16x4(blk + 8 * qd);
        for (int t = 0; t < T; t++) {
          const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
          int32x4_t s = dot4(vdupq_n_s32(0), w, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 8)));
          s = dot4(s, w + 4, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 24)));
          acc[qq][t] = vfmaq_n_f32(acc[qq][t], vmulq_f32(vcvtq_f32_s32(s), dw), ldf(xb));
        }
      }
    for (int qq = 0; qq < Q && 4 * qq < left; qq++)
      for (int t = 0; t < T; t++) store_rows(y + 4 * qq + t * ldy, left - 4 * qq, acc[qq][t]);
  }
};

template <int Q, int T, bool Q5>
struct Q45_KTileImpl {
  static void run(const uint8_t* wg, int q0, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    constexpr int kBlock = Q5 ? sparrow::kQ5_KGroupBlock : sparrow::kQ4_KGroupBlock;
    float32x4_t acc[Q][T];
    for (int qq = 0; qq < Q; qq++)
      for (int t = 0; t < T; t++) acc[qq][t] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m10 = vdupq_n_u8(0x10);
    for (int64_t b = 0; b < nb; b++)
      for (int qq = 0; qq < Q; qq++) {
        const int qd = q0 + qq;
        const uint8_t* blk = wg + b * kBlock;
        const uint8_t* xs = x + b * sparrow::kQ8KABytes;
        int32x4_t isum[T], msum[T];
        for (int t = 0; t < T; t++) isum[t] = msum[t] = vdupq_n_s32(0);
        for (int j = 0; j < 8; j++) {
          const int32x4_t sc = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(vld1_u8(blk + 64 + 16 * j + 4 * qd)))));
          const uint8_t* qc = blk + 320 + 512 * (j >> 1) + 16 * qd;
          int8x16_t w[8];
          for (int k = 0; k < 8; k++) {
            uint8x16_t raw = vld1q_u8(qc + 64 * k);
            uint8x16_t q = (j & 1) ? vshrq_n_u8(raw, 4) : vandq_u8(raw, m4);
            if (Q5) {  // bit j of the high-bit byte -> bit 4
              uint8x16_t hb = vshlq_u8(vld1q_u8(blk + 2368 + 64 * k + 16 * qd), vdupq_n_s8(int8_t(4 - j)));
              q = vorrq_u8(q, vandq_u8(hb, m10));
            }
            w[k] = s8(q);
          }
          for (int t = 0; t < T; t++) {
            const int8_t* xq = reinterpret_cast<const int8_t*>(xs + t * xrow + sparrow::kQ8KAQs + 32 * j);
            int32x4_t d = dot4(dot4(vdupq_n_s32(0), w, vld1q_s8(xq)), w + 4, vld1q_s8(xq + 16));
            isum[t] = vmlaq_s32(isum[t], d, sc);
          }
        }
        for (int p = 0; p < 4; p++) {
          const int16x8_t mp = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(blk + 192 + 32 * p + 8 * qd)));
          for (int t = 0; t < T; t++)
            msum[t] = vaddq_s32(msum[t], pair_dot(mp, ld32(xs + t * xrow + sparrow::kQ8KABsums32 + 4 * p)));
        }
        const float32x4_t d = f16x4(blk + 8 * qd), dmin = f16x4(blk + 32 + 8 * qd);
        for (int t = 0; t < T; t++) {
          float32x4_t v = vsubq_f32(vmulq_f32(d, vcvtq_f32_s32(isum[t])), vmulq_f32(dmin, vcvtq_f32_s32(msum[t])));
          acc[qq][t] = vfmaq_n_f32(acc[qq][t], v, ldf(xs + t * xrow));
        }
      }
    for (int qq = 0; qq < Q && 4 * qq < left; qq++)
      for (int t = 0; t < T; t++) store_rows(y + 4 * qq + t * ldy, left - 4 * qq, acc[qq][t]);
  }
};
template <int Q, int T> struct Q4_KTile : Q45_KTileImpl<Q, T, false> {};
template <int Q, int T> struct Q5_KTile : Q45_KTileImpl<Q, T, true> {};

template <int Q, int T>
struct Q6_KTile {
  static void run(const uint8_t* wg, int q0, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    float32x4_t acc[Q][T];
    for (int qq = 0; qq < Q; qq++)
      for (int t = 0; t < T; t++) acc[qq][t] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m30 = vdupq_n_u8(0x30);
    for (int64_t b = 0; b < nb; b++)
      for (int qq = 0; qq < Q; qq++) {
        const int qd = q0 + qq;
        const uint8_t* blk = wg + b * sparrow::kQ6_KGroupBlock;
        const uint8_t* xs = x + b * sparrow::kQ8KABytes;
        int32x4_t isum[T], csum[T];
        for (int t = 0; t < T; t++) isum[t] = csum[t] = vdupq_n_s32(0);
        for (int s = 0; s < 16; s++) {
          const uint8x16_t qh = vld1q_u8(blk + 2336 + 64 * s + 16 * qd);
          const uint8x16_t ql0 = vld1q_u8(blk + 288 + 128 * s + 16 * qd), ql1 = vld1q_u8(blk + 288 + 128 * s + 64 + 16 * qd);
          int8x16_t w[4];
          w[0] = s8(vorrq_u8(vandq_u8(ql0, m4), vandq_u8(vshlq_n_u8(qh, 4), m30)));
          w[1] = s8(vorrq_u8(vshrq_n_u8(ql0, 4), vandq_u8(vshlq_n_u8(qh, 2), m30)));
          w[2] = s8(vorrq_u8(vandq_u8(ql1, m4), vandq_u8(qh, m30)));
          w[3] = s8(vorrq_u8(vshrq_n_u8(ql1, 4), vandq_u8(vshrq_n_u8(qh, 2), m30)));
          const int16x8_t pair = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(blk + 32 + 32 * (s >> 1) + 8 * qd)));
          const int16x8_t one = (s & 1) ? vuzp2q_s16(pair, pair) : vuzp1q_s16(pair, pair);
          const int32x4_t sc = vmovl_s16(vget_low_s16(one));
          for (int t = 0; t < T; t++) {
            const int8_t* xq = reinterpret_cast<const int8_t*>(xs + t * xrow + sparrow::kQ8KAQs + 16 * s);
            isum[t] = vmlaq_s32(isum[t], dot4(vdupq_n_s32(0), w, vld1q_s8(xq)), sc);
          }
        }
        for (int p = 0; p < 8; p++) {
          const int16x8_t sp = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(blk + 32 + 32 * p + 8 * qd)));
          for (int t = 0; t < T; t++) csum[t] = vaddq_s32(csum[t], pair_dot(sp, ld32(xs + t * xrow + sparrow::kQ8KABsums + 4 * p)));
        }
        const float32x4_t d = f16x4(blk + 8 * qd);
        for (int t = 0; t < T; t++) {
          int32x4_t v = vsubq_s32(isum[t], vshlq_n_s32(csum[t], 5));
          acc[qq][t] = vfmaq_n_f32(acc[qq][t], vmulq_f32(d, vcvtq_f32_s32(v)), ldf(xs + t * xrow));
        }
      }
    for (int qq = 0; qq < Q && 4 * qq < left; qq++)
      for (int t = 0; t < T; t++) store_rows(y + 4 * qq + t * ldy, left - 4 * qq, acc[qq][t]);
  }
};

// ---- float weights: one row x one token, 4 columns per step, 4 accumulators ----

struct LoadF32 {
  static float32x4_t load(const uint8_t* p) { return vld1q_f32(reinterpret_cast<const float*>(p)); }
  static float one(const uint8_t* p) { return ldf(p); }
  static constexpr int elem = 4;
};
struct LoadF16 {
  static float32x4_t load(const uint8_t* p) { return f16x4(p); }
  static float one(const uint8_t* p) { return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vld1_dup_u16(reinterpret_cast<const uint16_t*>(p)))), 0); }
  static constexpr int elem = 2;
};
struct LoadBF16 {
  static float32x4_t load(const uint8_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)), 16));
  }
  static float one(const uint8_t* p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    uint32_t b = uint32_t(h) << 16;
    float f;
    __builtin_memcpy(&f, &b, 4);
    return f;
  }
  static constexpr int elem = 2;
};

template <class L>
void float_mm(const void* w, int64_t cols, const float* x, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const int64_t main = cols / 16 * 16;
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = wb + r * cols * L::elem;
    for (int64_t t = 0; t < n; t++) {
      const float* xt = x + t * cols;
      float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
      for (int64_t c = 0; c < main; c += 16) {
        a0 = vfmaq_f32(a0, L::load(row + c * L::elem), vld1q_f32(xt + c));
        a1 = vfmaq_f32(a1, L::load(row + (c + 4) * L::elem), vld1q_f32(xt + c + 4));
        a2 = vfmaq_f32(a2, L::load(row + (c + 8) * L::elem), vld1q_f32(xt + c + 8));
        a3 = vfmaq_f32(a3, L::load(row + (c + 12) * L::elem), vld1q_f32(xt + c + 12));
      }
      float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
      for (int64_t c = main; c < cols; c++) s += L::one(row + c * L::elem) * xt[c];
      y[t * ldy + r] = s;
    }
  }
}

}  // namespace

#define SP_QMM_NEON(name, Tile, block, nbdiv, xbytes)                                                     \
  extern "C" void sp_mm_##name##_neon(SP_QMM_ARGS) {                                                      \
    int64_t nb = cols / nbdiv;                                                                            \
    run_tiles<Tile>(w, nb * block, static_cast<const uint8_t*>(xq), nb * xbytes, nb, n, y, ldy, g0, g1, rlimit); \
  }
SP_QMM_NEON(q4_0, Q4_0Tile, sparrow::kQ4_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_NEON(q8_0, Q8_0Tile, sparrow::kQ8_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_NEON(q4_k, Q4_KTile, sparrow::kQ4_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_NEON(q5_k, Q5_KTile, sparrow::kQ5_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_NEON(q6_k, Q6_KTile, sparrow::kQ6_KGroupBlock, 256, sparrow::kQ8KABytes)

extern "C" void sp_mm_f32_neon(SP_FMM_ARGS) { float_mm<LoadF32>(w, cols, x, n, y, ldy, r0, r1); }
extern "C" void sp_mm_f16_neon(SP_FMM_ARGS) { float_mm<LoadF16>(w, cols, x, n, y, ldy, r0, r1); }
extern "C" void sp_mm_bf16_neon(SP_FMM_ARGS) { float_mm<LoadBF16>(w, cols, x, n, y, ldy, r0, r1); }

extern "C" float sp_dot_f16_f32_neon(const uint16_t* a, const float* b, int64_t n) {
  float32x4_t a0 = vdupq_n_f32(0), a1 = a0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 = vfmaq_f32(a0, f16x4(reinterpret_cast<const uint8_t*>(a + i)), vld1q_f32(b + i));
    a1 = vfmaq_f32(a1, f16x4(reinterpret_cast<const uint8_t*>(a + i + 4)), vld1q_f32(b + i + 4));
  }
  float s = vaddvq_f32(vaddq_f32(a0, a1));
  for (; i < n; i++) s += LoadF16::one(reinterpret_cast<const uint8_t*>(a + i)) * b[i];
  return s;
}

extern "C" void sp_axpy_f16_neon(float a, const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), f16x4(reinterpret_cast<const uint8_t*>(x + i)), a));
  for (; i < n; i++) y[i] += a * LoadF16::one(reinterpret_cast<const uint8_t*>(x + i));
}
