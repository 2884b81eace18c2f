// Reference twins of the sparse matmul kernels (sparse/layout.h): plain C++, the same
// integer block sums and the same float operations per row and block as the generic
// dense kernels (kernels/generic/matmul_generic.cpp), reading only the active channels.
#include <cstdint>
#include <cstring>

#include "quant/fp16.h"
#include "sparse/layout.h"
#include "sparse/sparse_kernels.h"

using namespace sparrow;

namespace {

float ld_f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}
float ld_f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
int32_t ld_i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// The byte of a channel vector half that holds row rr (< 64): slot_row is its own inverse.
int slot_of(int rr) { return 16 * ((rr >> 2) & 3) + 4 * (rr >> 4) + (rr & 3); }

// Q4 = true: Q4_0 (nibbles, offset 8); false: Q8_0 (q + 128, offset 128).
template <bool Q4>
uint64_t smm(SP_SMM_ARGS) {
  constexpr int kChan = Q4 ? kSparseQ4_0Channel : kSparseQ8_0Channel;
  constexpr int kBlock = Q4 ? kSparseQ4_0Block : kSparseQ8_0Block;
  constexpr int32_t kOff = Q4 ? 8 : 128;
  const int64_t nb = cols / 32;
  const uint8_t* x = static_cast<const uint8_t*>(xq);
  const int64_t xrow = nb * 40;
  uint64_t bytes = 0;
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * nb * kBlock;
    float acc[kSparseMaxTokens][kSparseRows] = {};
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      bool active[32];
      int n_active = 0;
      for (int c = 0; c < 32; c++) {
        active[c] = false;
        for (int64_t t = 0; t < n; t++) active[c] = active[c] || x[t * xrow + b * 40 + 8 + c] != 0;
        n_active += active[c];
      }
      bytes += kSparseScaleBytes + uint64_t(n_active) * kChan;
      for (int64_t t = 0; t < n; t++) {
        const uint8_t* xb = x + t * xrow + b * 40;
        const float dx = ld_f32(xb);
        const int32_t sx = ld_i32(xb + 4);
        const int8_t* xs = reinterpret_cast<const int8_t*>(xb + 8);
        for (int r = 0; r < kSparseRows; r++) {
          const int h = r / 64, p = slot_of(r % 64);
          int32_t dot = 0;
          for (int c = 0; c < 32; c++) {
            if (!active[c]) continue;
            const uint8_t* ch = blk + kSparseScaleBytes + c * kChan;
            const int q = Q4 ? (h ? ch[p] >> 4 : ch[p] & 15) : ch[64 * h + p];
            dot += q * xs[c];
          }
          acc[t][r] += float(dot - kOff * sx) * ld_f16(blk + 2 * r) * dx;
        }
      }
    }
    for (int64_t t = 0; t < n; t++)
      for (int r = 0; r < kSparseRows && g * kSparseRows + r < rlimit; r++) y[t * ldy + g * kSparseRows + r] = acc[t][r];
  }
  return bytes;
}

}  // namespace

extern "C" uint64_t sp_smm_q4_0_generic(SP_SMM_ARGS) { return smm<true>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q8_0_generic(SP_SMM_ARGS) { return smm<false>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
