// Reference twins of the matmul kernels of the later weight types (Q4_1, Q5_0, Q5_1,
// IQ4_NL, MXFP4, IQ4_XS, Q2_K, Q3_K): plain C++ over the
// repacked layouts of kernels/layout.h, with the integer arithmetic per block and the
// order of float operations per row that the SIMD kernels use.
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/generic/common_generic.h"
#include "quant/fp16.h"

using namespace sparrow;

namespace {

// 2^(e-128), as quant/quant.cpp's e8m0_half
float e8m0_half(uint8_t e) {
  uint32_t bits = e < 2 ? uint32_t(0x00200000) << e : uint32_t(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

const int8_t kIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const int8_t kMXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};


// Q4_1 (HasMin, 4 bits), Q5_0 (5 bits, offset 16), Q5_1 (HasMin, 5 bits). Per row:
// dot = sum q x (q unsigned); Q5_0 adds float(dot - 16 sx) d dx (sx: the int sum of the
// Q8_0-style block), the others float(dot) d dx + m s (s: the float of the Q8_1-style
// block, at the same place), as ggml's vec_dot_q4_1_q8_1.
template <bool HasMin, bool Five>
void legacy_block(float* acc, const uint8_t* blk, const uint8_t* xb) {
  constexpr int qs = HasMin ? 64 : 32, hb = qs + 256;
  const float dx = f32(xb);
  const int32_t sx = i32(xb + 4);
  const float s = f32(xb + 4);
  const int8_t* xs = reinterpret_cast<const int8_t*>(xb + 8);
  for (int r = 0; r < 16; r++) {
    int32_t dot = 0;
    for (int k = 0; k < 4; k++)
      for (int b = 0; b < 4; b++) {
        const uint8_t q = blk[qs + 64 * k + 4 * r + b];
        int lo = q & 15, hi = q >> 4;
        if (Five) {
          const uint8_t h = blk[hb + 4 * r + b];
          lo |= ((h >> k) & 1) << 4;
          hi |= ((h >> (4 + k)) & 1) << 4;
        }
        dot += lo * xs[4 * k + b] + hi * xs[16 + 4 * k + b];
      }
    if (HasMin)
      acc[r] += float(dot) * f16(blk + 2 * r) * dx + f16(blk + 32 + 2 * r) * s;
    else
      acc[r] += float(dot - 16 * sx) * f16(blk + 2 * r) * dx;
  }
}

// IQ4_NL / MXFP4: dot = sum table[nibble] x, then float(dot) d dx.
template <bool Mx>
void codebook_block(float* acc, const uint8_t* blk, const uint8_t* xb) {
  const int8_t* table = Mx ? kMXFP4 : kIQ4NL;
  const float dx = f32(xb);
  const int8_t* xs = reinterpret_cast<const int8_t*>(xb + 8);
  for (int r = 0; r < 16; r++) {
    int32_t dot = 0;
    for (int k = 0; k < 4; k++)
      for (int b = 0; b < 4; b++) {
        const uint8_t q = blk[32 + 64 * k + 4 * r + b];
        dot += table[q & 15] * xs[4 * k + b] + table[q >> 4] * xs[16 + 4 * k + b];
      }
    const float d = Mx ? e8m0_half(blk[r]) : f16(blk + 2 * r);
    acc[r] += float(dot) * d * dx;
  }
}

// IQ4_XS: per sub-block j of 32, dot_j = sum kIQ4NL[idx] x; isum = sum sc_j dot_j; then
// dx (d isum).
void iq4_xs_block(float* acc, const uint8_t* blk, const uint8_t* xb) {
  const float dx = f32(xb);
  const int8_t* xs = reinterpret_cast<const int8_t*>(xb + kQ8KAQs);
  for (int r = 0; r < 16; r++) {
    int32_t isum = 0;
    for (int j = 0; j < 8; j++) {
      const int c = j >> 1, hi = j & 1;
      int32_t dot = 0;
      for (int k = 0; k < 8; k++)
        for (int b = 0; b < 4; b++) {
          const uint8_t byte = blk[160 + 64 * (8 * c + k) + 4 * r + b];
          dot += kIQ4NL[hi ? byte >> 4 : byte & 15] * xs[32 * j + 4 * k + b];
        }
      isum += int8_t(blk[32 + 16 * j + r]) * dot;
    }
    acc[r] += dx * (f16(blk + 2 * r) * float(isum));
  }
}

// Q3_K: per sub-block s of 16, dot_s = sum q x with q = low | third << 2 (0..7);
// isum = sum sc_s dot_s, csum = sum sc_s bsum_s; then dx (d float(isum - 4 csum)).
void q3_k_block(float* acc, const uint8_t* blk, const uint8_t* xb) {
  const float dx = f32(xb);
  const int8_t* xs = reinterpret_cast<const int8_t*>(xb + kQ8KAQs);
  for (int r = 0; r < 16; r++) {
    int32_t isum = 0, csum = 0;
    for (int s = 0; s < 16; s++) {
      int32_t dot = 0;
      for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++) {
          const int lo = (blk[288 + 64 * s + 4 * r + b] >> (2 * i)) & 3;
          const int hi = (blk[1312 + 64 * (s >> 1) + 4 * r + b] >> (i + 4 * (s & 1))) & 1;
          dot += (lo | hi << 2) * xs[16 * s + 4 * i + b];
        }
      const int32_t sc = int8_t(blk[32 + 32 * (s >> 1) + 2 * r + (s & 1)]);
      isum += sc * dot;
      csum += sc * i16(xb + kQ8KABsums + 2 * s);
    }
    acc[r] += dx * (f16(blk + 2 * r) * float(isum - 4 * csum));
  }
}

// Q2_K: per sub-block s of 16, dot_s = sum q x (q 0..3); isum = sum sc_s dot_s,
// msum = sum m_s bsum_s; then dx (d isum - dmin msum).
void q2_k_block(float* acc, const uint8_t* blk, const uint8_t* xb) {
  const float dx = f32(xb);
  const int8_t* xs = reinterpret_cast<const int8_t*>(xb + kQ8KAQs);
  for (int r = 0; r < 16; r++) {
    int32_t isum = 0, msum = 0;
    for (int s = 0; s < 16; s++) {
      int32_t dot = 0;
      for (int i = 0; i < 4; i++)
        for (int b = 0; b < 4; b++) dot += ((blk[320 + 64 * s + 4 * r + b] >> (2 * i)) & 3) * xs[16 * s + 4 * i + b];
      const uint8_t scm = blk[64 + 32 * (s >> 1) + 2 * r + (s & 1)];
      isum += (scm & 15) * dot;
      msum += (scm >> 4) * i16(xb + kQ8KABsums + 2 * s);
    }
    acc[r] += dx * (f16(blk + 2 * r) * float(isum) - f16(blk + 32 + 2 * r) * float(msum));
  }
}

}  // namespace

extern "C" void sp_mm_q3_k_generic(SP_QMM_ARGS) {
  run(w, cols / 256, kQ3_KGroupBlock, xq, kQ8KABytes, n, y, ldy, g0, g1, rlimit, q3_k_block);
}
extern "C" void sp_mm_q2_k_generic(SP_QMM_ARGS) {
  run(w, cols / 256, kQ2_KGroupBlock, xq, kQ8KABytes, n, y, ldy, g0, g1, rlimit, q2_k_block);
}

extern "C" void sp_mm_iq4_xs_generic(SP_QMM_ARGS) {
  run(w, cols / 256, kIQ4_XSGroupBlock, xq, kQ8KABytes, n, y, ldy, g0, g1, rlimit, iq4_xs_block);
}

extern "C" void sp_mm_q4_1_generic(SP_QMM_ARGS) {
  run(w, cols / 32, kQ4_1GroupBlock, xq, kQ8ABytes, n, y, ldy, g0, g1, rlimit, legacy_block<true, false>);
}
extern "C" void sp_mm_q5_0_generic(SP_QMM_ARGS) {
  run(w, cols / 32, kQ5_0GroupBlock, xq, kQ8ABytes, n, y, ldy, g0, g1, rlimit, legacy_block<false, true>);
}
extern "C" void sp_mm_q5_1_generic(SP_QMM_ARGS) {
  run(w, cols / 32, kQ5_1GroupBlock, xq, kQ8ABytes, n, y, ldy, g0, g1, rlimit, legacy_block<true, true>);
}
extern "C" void sp_mm_iq4_nl_generic(SP_QMM_ARGS) {
  run(w, cols / 32, kCodebookGroupBlock, xq, kQ8ABytes, n, y, ldy, g0, g1, rlimit, codebook_block<false>);
}
extern "C" void sp_mm_mxfp4_generic(SP_QMM_ARGS) {
  run(w, cols / 32, kCodebookGroupBlock, xq, kQ8ABytes, n, y, ldy, g0, g1, rlimit, codebook_block<true>);
}
