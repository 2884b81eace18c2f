// NEON (AArch64, dotprod) sparse matmul kernels over the channel-major layouts of
// sparse/layout.h, for every type that has one (Q4_0, Q8_0, Q4_1, Q5_0, Q5_1, IQ4_NL,
// MXFP4, Q4_K, Q5_K, Q6_K). extern "C" entry points only; helpers have internal linkage.
//
// As on x86, four active channels at a time: each 16-byte chunk k of a channel vector half
// h is interleaved with vzip1/2q_u8 then _u16 (the layout's slot order makes vector j's
// 32-bit lanes rows 64h + 16j + 4k .. +3) and sdot adds the four channels' signed quants
// times their activation bytes into each row's int32 sum. All quants are signed int8 here
// (nibbles, 5-bit values, Q8_0's q, the codebooks' values). The float step per block and 4
// rows is the dense NEON kernels' (kernels/neon/matmul_neon.cpp, matmul_extra_neon.cpp),
// so the results are bit-identical to them.
#include <arm_neon.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU
#include "sparse/layout.h"
#include "sparse/sparse_kernels.h"

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
inline float32x4_t f16x4(const uint8_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(reinterpret_cast<const uint16_t*>(p)))); }
// 2^(e-128) for 4 E8M0 bytes (exact), as the dense kernels
inline float32x4_t e8m0_half_x4(const uint8_t* p) {
  uint32_t w4;
  __builtin_memcpy(&w4, p, 4);
  const uint32x4_t e = vmovl_u16(vget_low_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(w4)))));
  const uint32x4_t normal = vshlq_n_u32(vsubq_u32(e, vdupq_n_u32(1)), 23);
  const uint32x4_t sub = vshlq_u32(vdupq_n_u32(0x00200000), vreinterpretq_s32_u32(e));
  return vreinterpretq_f32_u32(vbslq_u32(vcltq_u32(e, vdupq_n_u32(2)), sub, normal));
}
inline void prefetch(const uint8_t* p) { __builtin_prefetch(p); }

enum Var { vQ4_0, vQ8_0, vQ4_1, vQ5_0, vQ5_1, vIQ4, vMx, vK4, vK5, vK6 };
template <int V>
struct Var32 {
  static constexpr bool kMin = V == vQ4_1 || V == vQ5_1, kFive = V == vQ5_0 || V == vQ5_1;
  static constexpr int kHead = V == vMx ? sparrow::kSparseMXFP4Head : kMin ? 2 * sparrow::kSparseScaleBytes
                                                                           : sparrow::kSparseScaleBytes;
  static constexpr int kChan = V == vQ8_0 ? sparrow::kSparseQ8_0Channel : kFive ? sparrow::kSparseQ5_KChannel
                                                                               : sparrow::kSparseQ4_0Channel;
  static constexpr int kBlock = kHead + 32 * kChan;
  static constexpr int32_t kOff = V == vQ4_0 ? 8 : V == vQ5_0 ? 16 : 0;  // times the block sum of x
};

// Chunk k (slots 16k .. 16k + 15) of half h of a channel vector, as signed quants.
template <int V>
inline int8x16_t chunk(const uint8_t* ch, int h, int k) {
  if (V == vQ8_0) return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ch + 64 * h + 16 * k), vdupq_n_u8(0x80)));
  const uint8x16_t raw = vld1q_u8(ch + 16 * k);
  uint8x16_t v = h ? vshrq_n_u8(raw, 4) : vandq_u8(raw, vdupq_n_u8(0x0f));
  if (V == vK6) {  // high 2 bits: bits 2(2h + k / 2) of bytes 16 (k % 2) .. of the 32 after the nibbles
    const uint8x16_t hb = vld1q_u8(ch + 64 + 16 * (k & 1));
    const int sh = 2 * (2 * h + (k >> 1));
    const uint8x16_t hi = vandq_u8(vshlq_u8(hb, vdupq_n_s8(int8_t(-sh))), vdupq_n_u8(3));
    v = vorrq_u8(v, vshlq_n_u8(hi, 4));
  }
  if (Var32<V>::kFive || V == vK5) {  // bit p % 8 of byte 64 + 8h + p / 8
    const uint8_t* hb = ch + 64 + 8 * h + 2 * k;
    const uint8x16_t bb = vcombine_u8(vdup_n_u8(hb[0]), vdup_n_u8(hb[1]));
    const uint8x16_t bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    v = vorrq_u8(v, vandq_u8(vtstq_u8(bb, bit), vdupq_n_u8(0x10)));
  }
  if (V == vIQ4) {
    const int8x16_t table = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    return vqtbl1q_s8(table, v);
  }
  if (V == vMx) {
    const int8x16_t table = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    return vqtbl1q_s8(table, v);
  }
  return vreinterpretq_s8_u8(v);
}

template <int T, int V>
uint64_t tile(const uint8_t* wg, const uint8_t* next, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy,
              int64_t rows_left) {
  using L = Var32<V>;
  float32x4_t acc[T][32];
  for (int t = 0; t < T; t++)
    for (int v = 0; v < 32; v++) acc[t][v] = vdupq_n_f32(0);
  uint64_t bytes = 0;
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* blk = wg + b * L::kBlock;
    const uint8_t* xs = x + b * 40 + 8;
    uint32_t active = 0;
    for (int c = 0; c < 32; c++) {
      bool any = false;
      for (int t = 0; t < T; t++) any = any || xs[t * xrow + c] != 0;
      active |= uint32_t(any) << c;
    }
    {  // prefetch the next block's scales and active channels (a skip pattern defeats the stream prefetcher)
      const uint8_t* pb = b + 1 < nb ? blk + L::kBlock : next;
      const uint8_t* xa = b + 1 < nb ? xs + 40 : x + 8;
      if (pb) {
        for (int l = 0; l < L::kHead; l += 64) prefetch(pb + l);
        for (int c = 0; c < 32; c++) {
          bool any = false;
          for (int t = 0; t < T; t++) any = any || xa[t * xrow + c] != 0;
          if (any) prefetch(pb + L::kHead + c * L::kChan), prefetch(pb + L::kHead + c * L::kChan + L::kChan - 1);
        }
      }
    }
    bytes += L::kHead + uint64_t(__builtin_popcount(active)) * L::kChan;
    int32x4_t s[T][32];
    for (int t = 0; t < T; t++)
      for (int v = 0; v < 32; v++) s[t][v] = vdupq_n_s32(0);
    const uint8_t* ch0 = blk + L::kHead;
    uint32_t mask = active;
    while (mask) {
      int c[4];
      uint32_t keep[4];
      for (int q = 0; q < 4; q++) {
        if (mask) {
          c[q] = __builtin_ctz(mask);
          mask &= mask - 1;
          keep[q] = 0xffu;
        } else {
          c[q] = c[0];
          keep[q] = 0;
        }
      }
      int8x16_t xv[T];
      for (int t = 0; t < T; t++) {
        const uint8_t* xt = xs + t * xrow;
        const uint32_t w4 = (uint32_t(xt[c[0]]) & keep[0]) | (uint32_t(xt[c[1]]) & keep[1]) << 8 |
                            (uint32_t(xt[c[2]]) & keep[2]) << 16 | (uint32_t(xt[c[3]]) & keep[3]) << 24;
        xv[t] = vreinterpretq_s8_u32(vdupq_n_u32(w4));
      }
      for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++) {
          const uint8x16_t a = vreinterpretq_u8_s8(chunk<V>(ch0 + c[0] * L::kChan, h, k));
          const uint8x16_t bq = vreinterpretq_u8_s8(chunk<V>(ch0 + c[1] * L::kChan, h, k));
          const uint8x16_t cc = vreinterpretq_u8_s8(chunk<V>(ch0 + c[2] * L::kChan, h, k));
          const uint8x16_t d = vreinterpretq_u8_s8(chunk<V>(ch0 + c[3] * L::kChan, h, k));
          const uint16x8_t ab_lo = vreinterpretq_u16_u8(vzip1q_u8(a, bq)), ab_hi = vreinterpretq_u16_u8(vzip2q_u8(a, bq));
          const uint16x8_t cd_lo = vreinterpretq_u16_u8(vzip1q_u8(cc, d)), cd_hi = vreinterpretq_u16_u8(vzip2q_u8(cc, d));
          int8x16_t r[4];
          r[0] = vreinterpretq_s8_u16(vzip1q_u16(ab_lo, cd_lo));
          r[1] = vreinterpretq_s8_u16(vzip2q_u16(ab_lo, cd_lo));
          r[2] = vreinterpretq_s8_u16(vzip1q_u16(ab_hi, cd_hi));
          r[3] = vreinterpretq_s8_u16(vzip2q_u16(ab_hi, cd_hi));
          for (int j = 0; j < 4; j++)
            for (int t = 0; t < T; t++) s[t][16 * h + 4 * j + k] = vdotq_s32(s[t][16 * h + 4 * j + k], r[j], xv[t]);
        }
    }
    for (int v = 0; v < 32; v++) {  // rows 4v .. 4v + 3
      const float32x4_t dw = V == vMx ? e8m0_half_x4(blk + 4 * v) : f16x4(blk + 8 * v);
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * 40;
        if (L::kMin) {
          const float32x4_t mw = f16x4(blk + sparrow::kSparseScaleBytes + 8 * v);
          acc[t][v] = vaddq_f32(acc[t][v], vfmaq_n_f32(vmulq_n_f32(mw, ldf(xb + 4)), vmulq_f32(vcvtq_f32_s32(s[t][v]), dw), ldf(xb)));
        } else {
          const int32x4_t si = L::kOff ? vsubq_s32(s[t][v], vdupq_n_s32(L::kOff * ld32(xb + 4))) : s[t][v];
          acc[t][v] = vfmaq_n_f32(acc[t][v], vmulq_f32(vcvtq_f32_s32(si), dw), ldf(xb));
        }
      }
    }
  }
  for (int v = 0; v < 32; v++) {
    const int64_t left = rows_left - 4 * v;
    if (left <= 0) break;
    for (int t = 0; t < T; t++) {
      if (left >= 4) {
        vst1q_f32(y + t * ldy + 4 * v, acc[t][v]);
      } else {
        float tmp[4];
        vst1q_f32(tmp, acc[t][v]);
        for (int i = 0; i < left; i++) y[t * ldy + 4 * v + i] = tmp[i];
      }
    }
  }
  return bytes;
}

// Q4_K / Q5_K / Q6_K: BlockQ8KA activations (d at 0, bsums at 4, bsums32 at 36, qs at 52;
// 308 bytes). Float steps per block and 4 rows as the dense NEON kernels.
template <int T, int V>
uint64_t tile_k(const uint8_t* wg, const uint8_t* next, int64_t nb, const uint8_t* x, int64_t xrow, float* y,
                int64_t ldy, int64_t rows_left) {
  constexpr bool Q6 = V == vK6;
  constexpr int kChan = Q6 ? sparrow::kSparseQ6_KChannel : V == vK5 ? sparrow::kSparseQ5_KChannel : 64;
  constexpr int kHead = Q6 ? sparrow::kSparseQ6_KHead : sparrow::kSparseQ4_KHead;
  constexpr int kBlock = kHead + 256 * kChan;
  constexpr int kSub = Q6 ? 16 : 8, kCols = 256 / kSub;
  float32x4_t acc[T][32];
  for (int t = 0; t < T; t++)
    for (int v = 0; v < 32; v++) acc[t][v] = vdupq_n_f32(0);
  uint64_t bytes = 0;
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* blk = wg + b * kBlock;
    const uint8_t* xb = x + b * 308;
    const uint8_t* next_blk = b + 1 < nb ? blk + kBlock : next;
    int32x4_t isum[T][32], csum[T][32];
    for (int t = 0; t < T; t++)
      for (int v = 0; v < 32; v++) isum[t][v] = csum[t][v] = vdupq_n_s32(0);
    for (int sb = 0; sb < kSub; sb++) {
      if (next_blk)  // the next block's header, a slice per sub-block
        for (int l = (sb * kHead / kSub) & ~63; l < (sb + 1) * kHead / kSub; l += 64) prefetch(next_blk + l);
      const uint8_t* f = blk + (Q6 ? 256 : 1536) + 128 * sb;  // Q6_K: int8 scales; else mins
      for (int v = 0; v < 32; v++) {
        uint32_t w4;
        __builtin_memcpy(&w4, f + 4 * v, 4);
        const uint8x8_t b8 = vreinterpret_u8_u32(vdup_n_u32(w4));
        const int32x4_t fv = Q6 ? vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b8))))
                                : vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b8))));
        for (int t = 0; t < T; t++) {
          int16_t bs;
          __builtin_memcpy(&bs, xb + t * xrow + (Q6 ? 4 : 36) + 2 * sb, 2);
          csum[t][v] = vmlaq_n_s32(csum[t][v], fv, int32_t(bs));
        }
      }
      const uint8_t* xs = xb + 52 + kCols * sb;
      uint32_t mask = 0;
      for (int c = 0; c < kCols; c++) {
        bool any = false;
        for (int t = 0; t < T; t++) any = any || xs[t * xrow + c] != 0;
        mask |= uint32_t(any) << c;
      }
      bytes += uint64_t(__builtin_popcount(mask)) * kChan;
      if (!mask) continue;
      const uint8_t* ch0 = blk + kHead + kChan * kCols * sb;
      for (int c = 0; c < kCols; c++)  // this sub-block's active channels, ahead of their use below
        if (mask >> c & 1) prefetch(ch0 + c * kChan), prefetch(ch0 + c * kChan + kChan - 1);
      int32x4_t s[T][32];
      for (int t = 0; t < T; t++)
        for (int v = 0; v < 32; v++) s[t][v] = vdupq_n_s32(0);
      while (mask) {
        int c[4];
        uint32_t keep[4];
        for (int q = 0; q < 4; q++) {
          if (mask) {
            c[q] = __builtin_ctz(mask);
            mask &= mask - 1;
            keep[q] = 0xffu;
          } else {
            c[q] = c[0];
            keep[q] = 0;
          }
        }
        int8x16_t xv[T];
        for (int t = 0; t < T; t++) {
          const uint8_t* xt = xs + t * xrow;
          const uint32_t w4 = (uint32_t(xt[c[0]]) & keep[0]) | (uint32_t(xt[c[1]]) & keep[1]) << 8 |
                              (uint32_t(xt[c[2]]) & keep[2]) << 16 | (uint32_t(xt[c[3]]) & keep[3]) << 24;
          xv[t] = vreinterpretq_s8_u32(vdupq_n_u32(w4));
        }
        for (int h = 0; h < 2; h++)
          for (int k = 0; k < 4; k++) {
            const uint8x16_t a = vreinterpretq_u8_s8(chunk<V>(ch0 + c[0] * kChan, h, k));
            const uint8x16_t bq = vreinterpretq_u8_s8(chunk<V>(ch0 + c[1] * kChan, h, k));
            const uint8x16_t cc = vreinterpretq_u8_s8(chunk<V>(ch0 + c[2] * kChan, h, k));
            const uint8x16_t d = vreinterpretq_u8_s8(chunk<V>(ch0 + c[3] * kChan, h, k));
            const uint16x8_t ab_lo = vreinterpretq_u16_u8(vzip1q_u8(a, bq)), ab_hi = vreinterpretq_u16_u8(vzip2q_u8(a, bq));
            const uint16x8_t cd_lo = vreinterpretq_u16_u8(vzip1q_u8(cc, d)), cd_hi = vreinterpretq_u16_u8(vzip2q_u8(cc, d));
            int8x16_t r[4];
            r[0] = vreinterpretq_s8_u16(vzip1q_u16(ab_lo, cd_lo));
            r[1] = vreinterpretq_s8_u16(vzip2q_u16(ab_lo, cd_lo));
            r[2] = vreinterpretq_s8_u16(vzip1q_u16(ab_hi, cd_hi));
            r[3] = vreinterpretq_s8_u16(vzip2q_u16(ab_hi, cd_hi));
            for (int j = 0; j < 4; j++)
              for (int t = 0; t < T; t++) s[t][16 * h + 4 * j + k] = vdotq_s32(s[t][16 * h + 4 * j + k], r[j], xv[t]);
          }
      }
      const uint8_t* sc = blk + (Q6 ? 256 : 512) + 128 * sb;
      for (int v = 0; v < 32; v++) {
        uint32_t w4;
        __builtin_memcpy(&w4, sc + 4 * v, 4);
        const uint8x8_t b8 = vreinterpret_u8_u32(vdup_n_u32(w4));
        const int32x4_t scv = Q6 ? vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u8(b8))))
                                 : vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(vmovl_u8(b8))));
        for (int t = 0; t < T; t++) isum[t][v] = vmlaq_s32(isum[t][v], s[t][v], scv);
      }
    }
    bytes += kHead;
    for (int v = 0; v < 32; v++) {
      const float32x4_t d = f16x4(blk + 8 * v);
      for (int t = 0; t < T; t++) {
        const float dx = ldf(xb + t * xrow);
        if (Q6) {
          const int32x4_t iv = vsubq_s32(isum[t][v], vshlq_n_s32(csum[t][v], 5));
          acc[t][v] = vfmaq_n_f32(acc[t][v], vmulq_f32(d, vcvtq_f32_s32(iv)), dx);
        } else {
          const float32x4_t dmin = f16x4(blk + 256 + 8 * v);
          const float32x4_t fv = vsubq_f32(vmulq_f32(d, vcvtq_f32_s32(isum[t][v])), vmulq_f32(dmin, vcvtq_f32_s32(csum[t][v])));
          acc[t][v] = vfmaq_n_f32(acc[t][v], fv, dx);
        }
      }
    }
  }
  for (int v = 0; v < 32; v++) {
    const int64_t left = rows_left - 4 * v;
    if (left <= 0) break;
    for (int t = 0; t < T; t++) {
      if (left >= 4) {
        vst1q_f32(y + t * ldy + 4 * v, acc[t][v]);
      } else {
        float tmp[4];
        vst1q_f32(tmp, acc[t][v]);
        for (int i = 0; i < left; i++) y[t * ldy + 4 * v + i] = tmp[i];
      }
    }
  }
  return bytes;
}

template <int T, int V>
uint64_t tile_any(const uint8_t* wg, const uint8_t* next, int64_t nb, const uint8_t* x, int64_t xrow, float* y,
                  int64_t ldy, int64_t rows_left) {
  if constexpr (V >= vK4) return tile_k<T, V>(wg, next, nb, x, xrow, y, ldy, rows_left);
  else return tile<T, V>(wg, next, nb, x, xrow, y, ldy, rows_left);
}

template <int V>
uint64_t run_groups(SP_SMM_ARGS) {
  constexpr bool K = V >= vK4;
  constexpr int64_t kBlock = !K ? Var32<V>::kBlock : V == vK6 ? sparrow::kSparseQ6_KBlock
                                                   : V == vK5 ? sparrow::kSparseQ5_KBlock : sparrow::kSparseQ4_KBlock;
  const int64_t nb = cols / (K ? 256 : 32), xrow = nb * (K ? 308 : 40), group_bytes = nb * kBlock;
  const uint8_t* x = static_cast<const uint8_t*>(xq);
  uint64_t bytes = 0;
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * group_bytes;
    const uint8_t* next = g + 1 < g1 ? wg + group_bytes : nullptr;
    float* yg = y + g * sparrow::kSparseRows;
    const int64_t left = rlimit - g * sparrow::kSparseRows;
    switch (n) {
      case 1: bytes += tile_any<1, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 2: bytes += tile_any<2, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 3: bytes += tile_any<3, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 4: bytes += tile_any<4, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 5: bytes += tile_any<5, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 6: bytes += tile_any<6, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 7: bytes += tile_any<7, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 8: bytes += tile_any<8, V>(wg, next, nb, x, xrow, yg, ldy, left); break;
      default: break;
    }
  }
  return bytes;
}

}  // namespace

extern "C" uint64_t sp_smm_q4_0_neon(SP_SMM_ARGS) { return run_groups<vQ4_0>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q8_0_neon(SP_SMM_ARGS) { return run_groups<vQ8_0>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q4_1_neon(SP_SMM_ARGS) { return run_groups<vQ4_1>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q5_0_neon(SP_SMM_ARGS) { return run_groups<vQ5_0>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q5_1_neon(SP_SMM_ARGS) { return run_groups<vQ5_1>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_iq4_nl_neon(SP_SMM_ARGS) { return run_groups<vIQ4>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_mxfp4_neon(SP_SMM_ARGS) { return run_groups<vMx>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q4_k_neon(SP_SMM_ARGS) { return run_groups<vK4>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q5_k_neon(SP_SMM_ARGS) { return run_groups<vK5>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q6_k_neon(SP_SMM_ARGS) { return run_groups<vK6>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
