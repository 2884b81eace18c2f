// Reference twins of the SIMD matmul kernels: plain C++ over the same repacked layouts
// (kernels/layout.h), with the same integer arithmetic per block and the same order of
// float operations per row, so a fast kernel differs from its twin only by float
// rounding (fma vs mul+add). Compiled with baseline flags.
#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/generic/common_generic.h"
#include "quant/fp16.h"

using namespace sparrow;

namespace {



}  // namespace

extern "C" void sp_mm_q4_0_generic(SP_QMM_ARGS) {
  run(w, cols / 32, kQ4_0GroupBlock, xq, kQ8ABytes, n, y, ldy, g0, g1, rlimit,
      [](float* acc, const uint8_t* blk, const uint8_t* xb) {
        float dx = f32(xb);
        int32_t sx = i32(xb + 4);
        const int8_t* xs = reinterpret_cast<const int8_t*>(xb + 8);
        for (int r = 0; r < 16; r++) {
          int32_t dot = 0;
          for (int k = 0; k < 4; k++)
            for (int j = 0; j < 4; j++) {
              uint8_t q = blk[32 + 64 * k + 4 * r + j];
              dot += (q & 15) * xs[4 * k + j] + (q >> 4) * xs[16 + 4 * k + j];
            }
          acc[r] += float(dot - 8 * sx) * f16(blk + 2 * r) * dx;
        }
      });
}

extern "C" void sp_mm_q8_0_generic(SP_QMM_ARGS) {
  run(w, cols / 32, kQ8_0GroupBlock, xq, kQ8ABytes, n, y, ldy, g0, g1, rlimit,
      [](float* acc, const uint8_t* blk, const uint8_t* xb) {
        float dx = f32(xb);
        int32_t sx = i32(xb + 4);
        const int8_t* xs = reinterpret_cast<const int8_t*>(xb + 8);
        for (int r = 0; r < 16; r++) {
          int32_t dot = 0;  // of (q + 128) with x
          for (int k = 0; k < 8; k++)
            for (int j = 0; j < 4; j++) dot += blk[32 + 64 * k + 4 * r + j] * xs[4 * k + j];
          acc[r] += float(dot - 128 * sx) * f16(blk + 2 * r) * dx;
        }
      });
}

// Q4_K and Q5_K share everything but the fifth bit.
template <bool Q5>
static void q45_k_block(float* acc, const uint8_t* blk, const uint8_t* xb) {
  float dx = f32(xb);
  const int8_t* xs = reinterpret_cast<const int8_t*>(xb + kQ8KAQs);
  for (int r = 0; r < 16; r++) {
    int32_t isum = 0, msum = 0;
    for (int j = 0; j < 8; j++) {
      int c = j >> 1, hi = j & 1;
      int32_t dot = 0;
      for (int k = 0; k < 8; k++)
        for (int b = 0; b < 4; b++) {
          uint8_t byte = blk[320 + 64 * (8 * c + k) + 4 * r + b];
          int q = hi ? byte >> 4 : byte & 15;
          if (Q5) q |= ((blk[2368 + 64 * k + 4 * r + b] >> j) & 1) << 4;
          dot += q * xs[32 * j + 4 * k + b];
        }
      isum += dot * blk[64 + 16 * j + r];
      msum += blk[192 + 32 * (j >> 1) + 2 * r + (j & 1)] * i16(xb + kQ8KABsums32 + 2 * j);
    }
    acc[r] += dx * (f16(blk + 2 * r) * float(isum) - f16(blk + 32 + 2 * r) * float(msum));
  }
}

extern "C" void sp_mm_q4_k_generic(SP_QMM_ARGS) {
  run(w, cols / 256, kQ4_KGroupBlock, xq, kQ8KABytes, n, y, ldy, g0, g1, rlimit, q45_k_block<false>);
}

extern "C" void sp_mm_q5_k_generic(SP_QMM_ARGS) {
  run(w, cols / 256, kQ5_KGroupBlock, xq, kQ8KABytes, n, y, ldy, g0, g1, rlimit, q45_k_block<true>);
}

extern "C" void sp_mm_q6_k_generic(SP_QMM_ARGS) {
  run(w, cols / 256, kQ6_KGroupBlock, xq, kQ8KABytes, n, y, ldy, g0, g1, rlimit,
      [](float* acc, const uint8_t* blk, const uint8_t* xb) {
        float dx = f32(xb);
        const int8_t* xs = reinterpret_cast<const int8_t*>(xb + kQ8KAQs);
        for (int r = 0; r < 16; r++) {
          int32_t isum = 0, csum = 0;
          for (int s = 0; s < 16; s++) {
            int32_t dot = 0;
            for (int i = 0; i < 4; i++)
              for (int b = 0; b < 4; b++) {
                uint8_t lo = blk[288 + 64 * (2 * s + i / 2) + 4 * r + b];
                lo = (i & 1) ? lo >> 4 : lo & 15;
                uint8_t hi = (blk[2336 + 64 * s + 4 * r + b] >> (2 * i)) & 3;
                dot += (lo | hi << 4) * xs[16 * s + 4 * i + b];
              }
            int32_t sc = int8_t(blk[32 + 32 * (s >> 1) + 2 * r + (s & 1)]);
            isum += dot * sc;
            csum += sc * i16(xb + kQ8KABsums + 2 * s);
          }
          acc[r] += dx * (f16(blk + 2 * r) * float(isum - 32 * csum));
        }
      });
}

// Float weights: plain dot products in double (the accurate reference).
template <typename Load>
static void fmm(const void* w, int64_t elem, int64_t cols, const float* x, int64_t n, float* y, int64_t ldy,
                int64_t r0, int64_t r1, Load load) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  for (int64_t r = r0; r < r1; r++) {
    const uint8_t* row = wb + r * cols * elem;
    for (int64_t t = 0; t < n; t++) {
      const float* xt = x + t * cols;
      double s = 0;
      for (int64_t c = 0; c < cols; c++) s += double(load(row + c * elem)) * xt[c];
      y[t * ldy + r] = float(s);
    }
  }
}

extern "C" void sp_mm_f32_generic(SP_FMM_ARGS) {
  fmm(w, 4, cols, x, n, y, ldy, r0, r1, [](const uint8_t* p) { return f32(p); });
}
extern "C" void sp_mm_f16_generic(SP_FMM_ARGS) {
  fmm(w, 2, cols, x, n, y, ldy, r0, r1, [](const uint8_t* p) { return f16(p); });
}
extern "C" void sp_mm_bf16_generic(SP_FMM_ARGS) {
  fmm(w, 2, cols, x, n, y, ldy, r0, r1, [](const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return bf16_to_fp32(h);
  });
}

extern "C" float sp_dot_f16_f32_generic(const uint16_t* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += double(fp16_to_fp32(a[i])) * b[i];
  return float(s);
}

extern "C" void sp_axpy_f16_generic(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * fp16_to_fp32(x[i]);
}
