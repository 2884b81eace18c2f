// NEON (AArch64 + dotprod) matmul kernels of the later weight types over the repacked
// layouts of kernels/layout.h: Q4_1 / Q5_0 / Q5_1, IQ4_NL / MXFP4 / IQ4_XS (codebooks,
// vqtbl1q), and Q2_K / Q3_K (2-bit values). extern "C" entry points only; helpers have
// internal linkage. As matmul_neon.cpp: quarters of 4 rows x T tokens (T <= 4), sdot by lane.
#include <arm_neon.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/neon/common_neon.h"

namespace {


template <template <int> class Tile>
void run_tiles(const uint8_t* w, int64_t group_bytes, const uint8_t* x, int64_t xrow, int64_t nb, int64_t n,
               float* y, int64_t ldy, int64_t g0, int64_t g1, int64_t rlimit) {
  for (int64_t g = g0; g < g1; g++)
    for (int qd = 0; qd < 4; qd++) {
      int64_t left = rlimit - g * 16 - 4 * qd;
      if (left <= 0) break;
      const uint8_t* wg = w + g * group_bytes;
      float* yg = y + g * 16 + 4 * qd;
      int64_t t = 0;
      for (; t + 4 <= n; t += 4) Tile<4>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left);
      switch (n - t) {
        case 1: Tile<1>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left); break;
        case 2: Tile<2>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left); break;
        case 3: Tile<3>::run(wg, qd, nb, x + t * xrow, xrow, yg + t * ldy, ldy, left); break;
        default: break;
      }
    }
}

template <int T, bool HasMin, bool Five>
struct LegacyTileImpl {
  static constexpr int kBlock = HasMin ? (Five ? sparrow::kQ5_1GroupBlock : sparrow::kQ4_1GroupBlock) : sparrow::kQ5_0GroupBlock;
  static constexpr int kQs = HasMin ? 64 : 32;
  static void run(const uint8_t* wg, int qd, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    float32x4_t acc[T];
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m10 = vdupq_n_u8(0x10);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      int8x16_t lo[4], hi[4];
      const uint8x16_t hb = Five ? vld1q_u8(blk + kQs + 256 + 16 * qd) : vdupq_n_u8(0);
      for (int k = 0; k < 4; k++) {
        uint8x16_t raw = vld1q_u8(blk + kQs + 64 * k + 16 * qd);
        uint8x16_t l = vandq_u8(raw, m4), h = vshrq_n_u8(raw, 4);
        if (Five) {  // bit k -> bit 4 (low nibbles), bit 4 + k -> bit 4 (high nibbles)
          l = vorrq_u8(l, vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(4 - k))), m10));
          h = vorrq_u8(h, vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(-k))), m10));
        }
        lo[k] = s8(l), hi[k] = s8(h);
      }
      const float32x4_t dw = f16x4(blk + 8 * qd);
      const float32x4_t mw = HasMin ? f16x4(blk + 32 + 8 * qd) : vdupq_n_f32(0);
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        int32x4_t s = dot4(vdupq_n_s32(0), lo, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 8)));
        s = dot4(s, hi, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 24)));
        const float dx = ldf(xb);
        if (HasMin) {  // + m s, s the Q8_1 block's float at the place of the sum
          acc[t] = vaddq_f32(acc[t], vfmaq_n_f32(vmulq_n_f32(mw, ldf(xb + 4)), vmulq_f32(vcvtq_f32_s32(s), dw), dx));
        } else {
          s = vsubq_s32(s, vdupq_n_s32(16 * ld32(xb + 4)));
          acc[t] = vfmaq_n_f32(acc[t], vmulq_f32(vcvtq_f32_s32(s), dw), dx);
        }
      }
    }
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, left, acc[t]);
  }
};
template <int T> struct Q4_1Tile : LegacyTileImpl<T, true, false> {};
template <int T> struct Q5_0Tile : LegacyTileImpl<T, false, true> {};
template <int T> struct Q5_1Tile : LegacyTileImpl<T, true, true> {};

const int8_t kIQ4NLTable[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const int8_t kMXFP4Table[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e-128) for the 4 E8M0 bytes at p (exact; e = 0, 1 give subnormals)
inline float32x4_t e8m0_half_x4(const uint8_t* p) {
  const uint32x4_t e = vmovl_u16(vget_low_u16(vmovl_u8(vld1_u8(p))));
  const uint32x4_t normal = vshlq_n_u32(vsubq_u32(e, vdupq_n_u32(1)), 23);
  const uint32x4_t sub = vshlq_u32(vdupq_n_u32(0x00200000), vreinterpretq_s32_u32(e));
  return vreinterpretq_f32_u32(vbslq_u32(vcltq_u32(e, vdupq_n_u32(2)), sub, normal));
}

template <int T, bool Mx>
struct CodebookTileImpl {
  static void run(const uint8_t* wg, int qd, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    float32x4_t acc[T];
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    const int8x16_t table = vld1q_s8(Mx ? kMXFP4Table : kIQ4NLTable);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kCodebookGroupBlock;
      int8x16_t lo[4], hi[4];
      for (int k = 0; k < 4; k++) {
        uint8x16_t raw = vld1q_u8(blk + 32 + 64 * k + 16 * qd);
        lo[k] = vqtbl1q_s8(table, vandq_u8(raw, m4));
        hi[k] = vqtbl1q_s8(table, vshrq_n_u8(raw, 4));
      }
      // e8m0_half_x4 reads 8 bytes from 4 qd: inside the 32-byte header
      const float32x4_t dw = Mx ? e8m0_half_x4(blk + 4 * qd) : f16x4(blk + 8 * qd);
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        int32x4_t s = dot4(vdupq_n_s32(0), lo, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 8)));
        s = dot4(s, hi, vld1q_s8(reinterpret_cast<const int8_t*>(xb + 24)));
        acc[t] = vfmaq_n_f32(acc[t], vmulq_f32(vcvtq_f32_s32(s), dw), ldf(xb));
      }
    }
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, left, acc[t]);
  }
};
template <int T> struct IQ4_NLTile : CodebookTileImpl<T, false> {};
template <int T> struct MXFP4Tile : CodebookTileImpl<T, true> {};

template <int T>
struct IQ4_XSTile {
  static void run(const uint8_t* wg, int qd, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    float32x4_t acc[T];
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0);
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    const int8x16_t table = vld1q_s8(kIQ4NLTable);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kIQ4_XSGroupBlock;
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      int32x4_t isum[T];
      for (int t = 0; t < T; t++) isum[t] = vdupq_n_s32(0);
      for (int j = 0; j < 8; j++) {
        // the 4 rows' int8 scales (reads 8 bytes from 4 qd: inside the 16 of sub-block j)
        const int32x4_t sc = vmovl_s16(vget_low_s16(vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(blk + 32 + 16 * j + 4 * qd)))));
        const uint8_t* qc = blk + 160 + 512 * (j >> 1) + 16 * qd;
        int8x16_t w[8];
        for (int k = 0; k < 8; k++) {
          uint8x16_t raw = vld1q_u8(qc + 64 * k);
          w[k] = vqtbl1q_s8(table, (j & 1) ? vshrq_n_u8(raw, 4) : vandq_u8(raw, m4));
        }
        for (int t = 0; t < T; t++) {
          const int8_t* xq = reinterpret_cast<const int8_t*>(xs + t * xrow + sparrow::kQ8KAQs + 32 * j);
          int32x4_t d = dot4(dot4(vdupq_n_s32(0), w, vld1q_s8(xq)), w + 4, vld1q_s8(xq + 16));
          isum[t] = vmlaq_s32(isum[t], d, sc);
        }
      }
      const float32x4_t d = f16x4(blk + 8 * qd);
      for (int t = 0; t < T; t++) acc[t] = vfmaq_n_f32(acc[t], vmulq_f32(d, vcvtq_f32_s32(isum[t])), ldf(xs + t * xrow));
    }
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, left, acc[t]);
  }
};

template <int T, bool Q3>
struct Q23_KTileImpl {
  static constexpr int kBlock = Q3 ? sparrow::kQ3_KGroupBlock : sparrow::kQ2_KGroupBlock;
  static constexpr int kLow = Q3 ? 288 : 320;
  static void run(const uint8_t* wg, int qd, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, int64_t left) {
    float32x4_t acc[T];
    for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0);
    const uint8x16_t m3 = vdupq_n_u8(3), m4 = vdupq_n_u8(4);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      int32x4_t isum[T], csum[T];
      for (int t = 0; t < T; t++) isum[t] = csum[t] = vdupq_n_s32(0);
      for (int s = 0; s < 16; s++) {
        const uint8x16_t lo = vld1q_u8(blk + kLow + 64 * s + 16 * qd);
        const uint8x16_t hb = Q3 ? vld1q_u8(blk + 1312 + 64 * (s >> 1) + 16 * qd) : vdupq_n_u8(0);
        int8x16_t w[4];
        for (int i = 0; i < 4; i++) {
          uint8x16_t q = vandq_u8(vshlq_u8(lo, vdupq_n_s8(int8_t(-2 * i))), m3);
          if (Q3) q = vorrq_u8(q, vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(2 - i - 4 * (s & 1)))), m4));
          w[i] = s8(q);
        }
        int16x8_t pair;
        if (Q3) pair = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(blk + 32 + 32 * (s >> 1) + 8 * qd)));
        else pair = vreinterpretq_s16_u16(vandq_u16(vmovl_u8(vld1_u8(blk + 64 + 32 * (s >> 1) + 8 * qd)), vdupq_n_u16(0x0f)));
        const int16x8_t one = (s & 1) ? vuzp2q_s16(pair, pair) : vuzp1q_s16(pair, pair);
        const int32x4_t sc = vmovl_s16(vget_low_s16(one));
        for (int t = 0; t < T; t++) {
          const int8_t* xq = reinterpret_cast<const int8_t*>(xs + t * xrow + sparrow::kQ8KAQs + 16 * s);
          isum[t] = vmlaq_s32(isum[t], dot4(vdupq_n_s32(0), w, vld1q_s8(xq)), sc);
        }
      }
      for (int p = 0; p < 8; p++) {
        int16x8_t sp;
        if (Q3) sp = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(blk + 32 + 32 * p + 8 * qd)));
        else sp = vreinterpretq_s16_u16(vshrq_n_u16(vmovl_u8(vld1_u8(blk + 64 + 32 * p + 8 * qd)), 4));
        for (int t = 0; t < T; t++) csum[t] = vaddq_s32(csum[t], pair_dot(sp, ld32(xs + t * xrow + sparrow::kQ8KABsums + 4 * p)));
      }
      const float32x4_t d = f16x4(blk + 8 * qd);
      for (int t = 0; t < T; t++) {
        float32x4_t v;
        if (Q3) {
          v = vmulq_f32(d, vcvtq_f32_s32(vsubq_s32(isum[t], vshlq_n_s32(csum[t], 2))));
        } else {
          const float32x4_t dmin = f16x4(blk + 32 + 8 * qd);
          v = vsubq_f32(vmulq_f32(d, vcvtq_f32_s32(isum[t])), vmulq_f32(dmin, vcvtq_f32_s32(csum[t])));
        }
        acc[t] = vfmaq_n_f32(acc[t], v, ldf(xs + t * xrow));
      }
    }
    for (int t = 0; t < T; t++) store_rows(y + t * ldy, left, acc[t]);
  }
};
template <int T> struct Q3_KTile : Q23_KTileImpl<T, true> {};
template <int T> struct Q2_KTile : Q23_KTileImpl<T, false> {};

}  // namespace

#define SP_QMM_NEON_EXTRA(name, Tile, block, nbdiv, xbytes)                                              \
  extern "C" void sp_mm_##name##_neon(SP_QMM_ARGS) {                                                      \
    int64_t nb = cols / nbdiv;                                                                            \
    run_tiles<Tile>(w, nb * block, static_cast<const uint8_t*>(xq), nb * xbytes, nb, n, y, ldy, g0, g1, rlimit); \
  }
SP_QMM_NEON_EXTRA(q4_1, Q4_1Tile, sparrow::kQ4_1GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_NEON_EXTRA(q5_0, Q5_0Tile, sparrow::kQ5_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_NEON_EXTRA(q5_1, Q5_1Tile, sparrow::kQ5_1GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_NEON_EXTRA(iq4_nl, IQ4_NLTile, sparrow::kCodebookGroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_NEON_EXTRA(mxfp4, MXFP4Tile, sparrow::kCodebookGroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_NEON_EXTRA(iq4_xs, IQ4_XSTile, sparrow::kIQ4_XSGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_NEON_EXTRA(q3_k, Q3_KTile, sparrow::kQ3_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_NEON_EXTRA(q2_k, Q2_KTile, sparrow::kQ2_KGroupBlock, 256, sparrow::kQ8KABytes)
