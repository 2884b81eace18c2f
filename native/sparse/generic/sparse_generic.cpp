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

// Marks the channels c < width whose quantized input qs[t * xrow + c] is nonzero in some
// token t < n (the ones a step reads) and returns how many there are.
int mark_active(const uint8_t* qs, int64_t xrow, int64_t n, int width, bool* active) {
  int n_active = 0;
  for (int c = 0; c < width; c++) {
    active[c] = false;
    for (int64_t t = 0; t < n; t++) active[c] = active[c] || qs[t * xrow + c] != 0;
    n_active += active[c];
  }
  return n_active;
}

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
      const int n_active = mark_active(x + b * 40 + 8, xrow, n, 32, active);
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

int16_t ld_i16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Q4_K (Ty = 4), Q5_K (5) and Q6_K (6), BlockQ8KA activations (d at 0, bsums at 4,
// bsums32 at 36, qs at 52; 308 bytes).
template <int Ty>
uint64_t smm_k(SP_SMM_ARGS) {
  constexpr bool Q6 = Ty == 6, Q5 = Ty == 5;
  constexpr int kChan = Q6 ? kSparseQ6_KChannel : Q5 ? kSparseQ5_KChannel : 64;
  constexpr int kHead = Q6 ? kSparseQ6_KHead : kSparseQ4_KHead;
  constexpr int kBlock = Q6 ? kSparseQ6_KBlock : Q5 ? kSparseQ5_KBlock : kSparseQ4_KBlock;
  const int64_t nb = cols / 256;
  const uint8_t* x = static_cast<const uint8_t*>(xq);
  const int64_t xrow = nb * 308;
  uint64_t bytes = 0;
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * nb * kBlock;
    float acc[kSparseMaxTokens][kSparseRows] = {};
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      bool active[256];
      const int n_active = mark_active(x + b * 308 + 52, xrow, n, 256, active);
      bytes += kHead + uint64_t(n_active) * kChan;
      for (int64_t t = 0; t < n; t++) {
        const uint8_t* xb = x + t * xrow + b * 308;
        const float dx = ld_f32(xb);
        const int8_t* xs = reinterpret_cast<const int8_t*>(xb + 52);
        for (int r = 0; r < kSparseRows; r++) {
          const int h = r / 64, p = slot_of(r % 64);
          auto q = [&](int c) {
            const uint8_t* ch = blk + kHead + c * kChan;
            int v = h ? ch[p] >> 4 : ch[p] & 15;
            if (Q6) v |= ((ch[64 + p % 32] >> (2 * (2 * h + p / 32))) & 3) << 4;
            if (Q5) v |= ((ch[64 + 8 * h + p / 8] >> (p % 8)) & 1) << 4;
            return v;
          };
          if (!Q6) {
            int32_t isum = 0, msum = 0;
            for (int j = 0; j < 8; j++) {
              int32_t dot = 0;
              for (int c = 32 * j; c < 32 * j + 32; c++)
                if (active[c]) dot += q(c) * xs[c];
              isum += dot * blk[512 + 128 * j + r];
              msum += blk[1536 + 128 * j + r] * ld_i16(xb + 36 + 2 * j);
            }
            acc[t][r] += dx * (ld_f16(blk + 2 * r) * float(isum) - ld_f16(blk + 256 + 2 * r) * float(msum));
          } else {
            int32_t isum = 0, csum = 0;
            for (int sb = 0; sb < 16; sb++) {
              int32_t dot = 0;
              for (int c = 16 * sb; c < 16 * sb + 16; c++)
                if (active[c]) dot += q(c) * xs[c];
              const int32_t sc = int8_t(blk[256 + 128 * sb + r]);
              isum += dot * sc;
              csum += sc * ld_i16(xb + 4 + 2 * sb);
            }
            acc[t][r] += dx * (ld_f16(blk + 2 * r) * float(isum - 32 * csum));
          }
        }
      }
    }
    for (int64_t t = 0; t < n; t++)
      for (int r = 0; r < kSparseRows && g * kSparseRows + r < rlimit; r++) y[t * ldy + g * kSparseRows + r] = acc[t][r];
  }
  return bytes;
}

}  // namespace

extern "C" uint64_t sp_smm_q4_k_generic(SP_SMM_ARGS) { return smm_k<4>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q5_k_generic(SP_SMM_ARGS) { return smm_k<5>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q6_k_generic(SP_SMM_ARGS) { return smm_k<6>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }

extern "C" uint64_t sp_smm_q4_0_generic(SP_SMM_ARGS) { return smm<true>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q8_0_generic(SP_SMM_ARGS) { return smm<false>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }

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

// Q4_1 (V = 1), Q5_0 (2), Q5_1 (3), IQ4_NL (4), MXFP4 (5): the float steps per row and
// block of kernels/generic/matmul_extra_generic.cpp (legacy_block, codebook_block).
template <int V>
uint64_t smm_small(SP_SMM_ARGS) {
  constexpr bool Min = V == 1 || V == 3, Five = V == 2 || V == 3, Mx = V == 5, Book = V >= 4;
  constexpr int kHead = Mx ? kSparseMXFP4Head : Min ? 2 * kSparseScaleBytes : kSparseScaleBytes;
  constexpr int kChan = Five ? kSparseQ5_KChannel : kSparseQ4_0Channel;
  constexpr int kBlock = kHead + 32 * kChan;
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
      const int n_active = mark_active(x + b * 40 + 8, xrow, n, 32, active);
      bytes += kHead + uint64_t(n_active) * kChan;
      for (int64_t t = 0; t < n; t++) {
        const uint8_t* xb = x + t * xrow + b * 40;
        const float dx = ld_f32(xb);
        const int32_t sx = ld_i32(xb + 4);
        const float s = ld_f32(xb + 4);
        const int8_t* xs = reinterpret_cast<const int8_t*>(xb + 8);
        for (int r = 0; r < kSparseRows; r++) {
          const int h = r / 64, p = slot_of(r % 64);
          int32_t dot = 0;
          for (int c = 0; c < 32; c++) {
            if (!active[c]) continue;
            const uint8_t* ch = blk + kHead + c * kChan;
            int q = h ? ch[p] >> 4 : ch[p] & 15;
            if (Five) q |= ((ch[64 + 8 * h + p / 8] >> (p % 8)) & 1) << 4;
            if (Book) q = Mx ? kMXFP4[q] : kIQ4NL[q];
            dot += q * xs[c];
          }
          if (Min)
            acc[t][r] += float(dot) * ld_f16(blk + 2 * r) * dx + ld_f16(blk + kSparseScaleBytes + 2 * r) * s;
          else if (Book)
            acc[t][r] += float(dot) * (Mx ? e8m0_half(blk[r]) : ld_f16(blk + 2 * r)) * dx;
          else
            acc[t][r] += float(dot - 16 * sx) * ld_f16(blk + 2 * r) * dx;
        }
      }
    }
    for (int64_t t = 0; t < n; t++)
      for (int r = 0; r < kSparseRows && g * kSparseRows + r < rlimit; r++) y[t * ldy + g * kSparseRows + r] = acc[t][r];
  }
  return bytes;
}

}  // namespace

extern "C" uint64_t sp_smm_q4_1_generic(SP_SMM_ARGS) { return smm_small<1>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q5_0_generic(SP_SMM_ARGS) { return smm_small<2>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q5_1_generic(SP_SMM_ARGS) { return smm_small<3>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_iq4_nl_generic(SP_SMM_ARGS) { return smm_small<4>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_mxfp4_generic(SP_SMM_ARGS) { return smm_small<5>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
