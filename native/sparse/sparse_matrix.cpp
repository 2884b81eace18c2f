// SparseMatrix (sparse/sparse_matrix.h): the channel-major repacking at load (from the
// file's blocks) and back (to the file's blocks, exactly), the choice between the sparse
// kernel and the dense kernel on a scratch copy in the dense layout, get_row, and the
// per-ISA table of sparse kernels.
#include "sparse/sparse_matrix.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ggml_types.h"
#include "core/pages.h"
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "sparse/layout.h"
#include "sparse/sparse_kernels.h"

namespace sparrow {

namespace {

const SparseKernels kSparseGeneric = {sp_smm_q4_0_generic, sp_smm_q8_0_generic, sp_smm_q4_k_generic, sp_smm_q6_k_generic, sp_smm_q5_k_generic, sp_smm_q4_1_generic, sp_smm_q5_0_generic, sp_smm_q5_1_generic, sp_smm_iq4_nl_generic, sp_smm_mxfp4_generic};
const SparseKernels kSparseNone = {};
#ifdef SPARROW_HAVE_X86_KERNELS
const SparseKernels kSparseAvx2 = {sp_smm_q4_0_avx2, sp_smm_q8_0_avx2, sp_smm_q4_k_avx2, sp_smm_q6_k_avx2, sp_smm_q5_k_avx2, sp_smm_q4_1_avx2, sp_smm_q5_0_avx2, sp_smm_q5_1_avx2, sp_smm_iq4_nl_avx2, sp_smm_mxfp4_avx2};
const SparseKernels kSparseAvx512 = {sp_smm_q4_0_avx512, sp_smm_q8_0_avx512, sp_smm_q4_k_avx512, sp_smm_q6_k_avx512, sp_smm_q5_k_avx512, sp_smm_q4_1_avx512, sp_smm_q5_0_avx512, sp_smm_q5_1_avx512, sp_smm_iq4_nl_avx512, sp_smm_mxfp4_avx512};
#endif
#ifdef SPARROW_HAVE_NEON_KERNELS
const SparseKernels kSparseNeon = {sp_smm_q4_0_neon, sp_smm_q8_0_neon, sp_smm_q4_k_neon, sp_smm_q6_k_neon, sp_smm_q5_k_neon, sp_smm_q4_1_neon, sp_smm_q5_0_neon, sp_smm_q5_1_neon, sp_smm_iq4_nl_neon, sp_smm_mxfp4_neon};
#endif

enum : uint32_t { kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kIQ4_NL = 20, kMXFP4 = 39 };

// --- one row's values in a channel vector (sparse/layout.h) ---

// The byte of a channel vector half that holds row rr (< 64): slot_row is its own inverse.
int slot_of(int rr) { return 16 * ((rr >> 2) & 3) + 4 * (rr >> 4) + (rr & 3); }

void set_nibble(uint8_t* ch, int rr, int v) {
  const int p = slot_of(rr % 64);
  ch[p] = uint8_t(ch[p] | (v & 15) << (4 * (rr / 64)));
}
int get_nibble(const uint8_t* ch, int rr) { return (ch[slot_of(rr % 64)] >> (4 * (rr / 64))) & 15; }
// Q6_K's high 2 bits, in the 32 bytes after the nibbles.
void set_high2(uint8_t* ch, int rr, int v) {
  const int p = slot_of(rr % 64), k = 2 * (rr / 64) + p / 32;
  ch[64 + p % 32] = uint8_t(ch[64 + p % 32] | (v & 3) << (2 * k));
}
int get_high2(const uint8_t* ch, int rr) {
  const int p = slot_of(rr % 64), k = 2 * (rr / 64) + p / 32;
  return (ch[64 + p % 32] >> (2 * k)) & 3;
}

// --- per type: one file block of row rr into its group block, and back ---

void pack_q4_0(const uint8_t* src, uint8_t* blk, int rr) {
  std::memcpy(blk + 2 * rr, src + offsetof(BlockQ4_0, d), 2);
  const uint8_t* qs = src + offsetof(BlockQ4_0, qs);
  for (int c = 0; c < 32; c++)
    set_nibble(blk + kSparseScaleBytes + c * kSparseQ4_0Channel, rr, c < 16 ? qs[c] & 15 : qs[c - 16] >> 4);
}
void unpack_q4_0(const uint8_t* blk, int rr, uint8_t* dst) {
  std::memcpy(dst + offsetof(BlockQ4_0, d), blk + 2 * rr, 2);
  const uint8_t* ch = blk + kSparseScaleBytes;
  for (int i = 0; i < 16; i++)
    dst[offsetof(BlockQ4_0, qs) + i] =
        uint8_t(get_nibble(ch + i * kSparseQ4_0Channel, rr) | get_nibble(ch + (16 + i) * kSparseQ4_0Channel, rr) << 4);
}

void pack_q8_0(const uint8_t* src, uint8_t* blk, int rr) {
  std::memcpy(blk + 2 * rr, src + offsetof(BlockQ8_0, d), 2);
  for (int c = 0; c < 32; c++)
    blk[kSparseScaleBytes + c * kSparseQ8_0Channel + 64 * (rr / 64) + slot_of(rr % 64)] =
        uint8_t(src[offsetof(BlockQ8_0, qs) + c] ^ 0x80);
}
void unpack_q8_0(const uint8_t* blk, int rr, uint8_t* dst) {
  std::memcpy(dst + offsetof(BlockQ8_0, d), blk + 2 * rr, 2);
  for (int c = 0; c < 32; c++)
    dst[offsetof(BlockQ8_0, qs) + c] =
        uint8_t(blk[kSparseScaleBytes + c * kSparseQ8_0Channel + 64 * (rr / 64) + slot_of(rr % 64)] ^ 0x80);
}

// Q4_K: value 64 c + l (l < 32) is the low nibble of qs[32 c + l], value 64 c + 32 + l the
// high one; the 6-bit scales and mins of the 8 sub-blocks are packed in 12 bytes.
void pack_q4_k(const uint8_t* src, uint8_t* blk, int rr) {
  std::memcpy(blk + 2 * rr, src + offsetof(BlockQ4_K, d), 2);
  std::memcpy(blk + 256 + 2 * rr, src + offsetof(BlockQ4_K, dmin), 2);
  for (int j = 0; j < 8; j++) kquant_scale_min(src + offsetof(BlockQ4_K, scales), j, blk + 512 + 128 * j + rr, blk + 1536 + 128 * j + rr);
  const uint8_t* qs = src + offsetof(BlockQ4_K, qs);
  for (int n = 0; n < 256; n++) {
    const int c = n / 64, l = n % 32, hi = (n % 64) / 32;
    set_nibble(blk + kSparseQ4_KHead + 64 * n, rr, hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15);
  }
}
void unpack_q4_k(const uint8_t* blk, int rr, uint8_t* dst) {
  std::memcpy(dst + offsetof(BlockQ4_K, d), blk + 2 * rr, 2);
  std::memcpy(dst + offsetof(BlockQ4_K, dmin), blk + 256 + 2 * rr, 2);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; j++) sc[j] = blk[512 + 128 * j + rr], m[j] = blk[1536 + 128 * j + rr];
  uint8_t* q = dst + offsetof(BlockQ4_K, scales);  // the inverse of kquant_scale_min
  for (int j = 0; j < 4; j++) {
    q[j] = uint8_t(sc[j] | (sc[j + 4] >> 4) << 6);
    q[j + 4] = uint8_t(m[j] | (m[j + 4] >> 4) << 6);
    q[j + 8] = uint8_t((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
  uint8_t* qs = dst + offsetof(BlockQ4_K, qs);
  for (int i = 0; i < 128; i++) {
    const int c = i / 32, l = i % 32;
    qs[i] = uint8_t(get_nibble(blk + kSparseQ4_KHead + 64 * (64 * c + l), rr) |
                    get_nibble(blk + kSparseQ4_KHead + 64 * (64 * c + 32 + l), rr) << 4);
  }
}

// Q5_K: Q4_K's layout of the low 4 bits (as Q4_K's qs), and the fifth bit of value n at
// bit n / 32 of qh[n % 32].
void set_fifth(uint8_t* ch, int rr, int v) {
  const int p = slot_of(rr % 64);
  ch[64 + 8 * (rr / 64) + p / 8] = uint8_t(ch[64 + 8 * (rr / 64) + p / 8] | (v & 1) << (p % 8));
}
int get_fifth(const uint8_t* ch, int rr) {
  const int p = slot_of(rr % 64);
  return (ch[64 + 8 * (rr / 64) + p / 8] >> (p % 8)) & 1;
}
void pack_q5_k(const uint8_t* src, uint8_t* blk, int rr) {
  std::memcpy(blk + 2 * rr, src + offsetof(BlockQ5_K, d), 2);
  std::memcpy(blk + 256 + 2 * rr, src + offsetof(BlockQ5_K, dmin), 2);
  for (int j = 0; j < 8; j++) kquant_scale_min(src + offsetof(BlockQ5_K, scales), j, blk + 512 + 128 * j + rr, blk + 1536 + 128 * j + rr);
  const uint8_t* qs = src + offsetof(BlockQ5_K, qs);
  const uint8_t* qh = src + offsetof(BlockQ5_K, qh);
  for (int n = 0; n < 256; n++) {
    const int c = n / 64, l = n % 32, hi = (n % 64) / 32;
    uint8_t* ch = blk + kSparseQ4_KHead + kSparseQ5_KChannel * n;
    set_nibble(ch, rr, hi ? qs[32 * c + l] >> 4 : qs[32 * c + l] & 15);
    set_fifth(ch, rr, qh[n % 32] >> (n / 32));
  }
}
void unpack_q5_k(const uint8_t* blk, int rr, uint8_t* dst) {
  std::memcpy(dst + offsetof(BlockQ5_K, d), blk + 2 * rr, 2);
  std::memcpy(dst + offsetof(BlockQ5_K, dmin), blk + 256 + 2 * rr, 2);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; j++) sc[j] = blk[512 + 128 * j + rr], m[j] = blk[1536 + 128 * j + rr];
  uint8_t* q = dst + offsetof(BlockQ5_K, scales);  // the inverse of kquant_scale_min
  for (int j = 0; j < 4; j++) {
    q[j] = uint8_t(sc[j] | (sc[j + 4] >> 4) << 6);
    q[j + 4] = uint8_t(m[j] | (m[j + 4] >> 4) << 6);
    q[j + 8] = uint8_t((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
  }
  uint8_t* qs = dst + offsetof(BlockQ5_K, qs);
  uint8_t* qh = dst + offsetof(BlockQ5_K, qh);
  std::memset(qh, 0, 32);
  const uint8_t* ch = blk + kSparseQ4_KHead;
  for (int i = 0; i < 128; i++) {
    const int c = i / 32, l = i % 32;
    qs[i] = uint8_t(get_nibble(ch + kSparseQ5_KChannel * (64 * c + l), rr) |
                    get_nibble(ch + kSparseQ5_KChannel * (64 * c + 32 + l), rr) << 4);
  }
  for (int n = 0; n < 256; n++) qh[n % 32] = uint8_t(qh[n % 32] | get_fifth(ch + kSparseQ5_KChannel * n, rr) << (n / 32));
}

// Q6_K: value n has its low 4 bits in nibble (n / 64) % 2 of ql[64 (n / 128) + n % 64] and
// its high 2 bits at bit 2 ((n / 32) % 4) of qh[32 (n / 128) + n % 32].
void pack_q6_k(const uint8_t* src, uint8_t* blk, int rr) {
  std::memcpy(blk + 2 * rr, src + offsetof(BlockQ6_K, d), 2);
  for (int s = 0; s < 16; s++) blk[256 + 128 * s + rr] = src[offsetof(BlockQ6_K, scales) + s];
  const uint8_t* ql = src + offsetof(BlockQ6_K, ql);
  const uint8_t* qh = src + offsetof(BlockQ6_K, qh);
  for (int n = 0; n < 256; n++) {
    uint8_t* ch = blk + kSparseQ6_KHead + kSparseQ6_KChannel * n;
    set_nibble(ch, rr, ql[64 * (n / 128) + n % 64] >> (4 * ((n / 64) % 2)));
    set_high2(ch, rr, qh[32 * (n / 128) + n % 32] >> (2 * ((n / 32) % 4)));
  }
}
void unpack_q6_k(const uint8_t* blk, int rr, uint8_t* dst) {
  std::memcpy(dst + offsetof(BlockQ6_K, d), blk + 2 * rr, 2);
  for (int s = 0; s < 16; s++) dst[offsetof(BlockQ6_K, scales) + s] = blk[256 + 128 * s + rr];
  uint8_t* ql = dst + offsetof(BlockQ6_K, ql);
  uint8_t* qh = dst + offsetof(BlockQ6_K, qh);
  std::memset(ql, 0, 128);
  std::memset(qh, 0, 64);
  for (int n = 0; n < 256; n++) {
    const uint8_t* ch = blk + kSparseQ6_KHead + kSparseQ6_KChannel * n;
    ql[64 * (n / 128) + n % 64] = uint8_t(ql[64 * (n / 128) + n % 64] | get_nibble(ch, rr) << (4 * ((n / 64) % 2)));
    qh[32 * (n / 128) + n % 32] = uint8_t(qh[32 * (n / 128) + n % 32] | get_high2(ch, rr) << (2 * ((n / 32) % 4)));
  }
}

// --- per type: a 128-row group into the dense 16-row layout (kernels/layout.h) ---
// For each of the `rows` rows (< 128) and block b: row rr of the group is row rr % 16 of
// dense group rr / 16; in the sparse group block its quants are at byte slot_of(rr % 64)
// of each channel vector, nibble (or 64-byte half) rr / 64.

struct RowAt {
  int p, h;  // the byte of a channel-vector half, and the half
  explicit RowAt(int rr) : p(slot_of(rr % 64)), h(rr / 64) {}
  int nib(const uint8_t* ch) const { return (ch[p] >> (4 * h)) & 15; }
  int fifth(const uint8_t* ch) const { return (ch[64 + 8 * h + p / 8] >> (p % 8)) & 1; }
  int six(const uint8_t* ch) const {  // Q6_K's q: low nibble | high 2 bits << 4
    return nib(ch) | ((ch[64 + p % 32] >> (2 * (2 * h + p / 32))) & 3) << 4;
  }
};

void dense_q4_0(const uint8_t* wg, int64_t nb, int rows, uint8_t* dst) {
  for (int rr = 0; rr < rows; rr++) {
    const RowAt at(rr);
    const int r = rr % kGroupRows;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kSparseQ4_0Block;
      const uint8_t* ch = blk + kSparseScaleBytes;
      uint8_t* out = dst + ((rr / kGroupRows) * nb + b) * kQ4_0GroupBlock;
      std::memcpy(out + 2 * r, blk + 2 * rr, 2);
      for (int i = 0; i < 16; i++)
        out[32 + 64 * (i / 4) + 4 * r + i % 4] =
            uint8_t(at.nib(ch + i * kSparseQ4_0Channel) | at.nib(ch + (16 + i) * kSparseQ4_0Channel) << 4);
    }
  }
}

void dense_q8_0(const uint8_t* wg, int64_t nb, int rows, uint8_t* dst) {
  for (int rr = 0; rr < rows; rr++) {
    const RowAt at(rr);
    const int r = rr % kGroupRows, off = 64 * at.h + at.p;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kSparseQ8_0Block;
      const uint8_t* ch = blk + kSparseScaleBytes + off;
      uint8_t* out = dst + ((rr / kGroupRows) * nb + b) * kQ8_0GroupBlock;
      std::memcpy(out + 2 * r, blk + 2 * rr, 2);
      for (int i = 0; i < 32; i++) out[32 + 64 * (i / 4) + 4 * r + i % 4] = ch[i * kSparseQ8_0Channel];  // both q ^ 0x80
    }
  }
}

// Q4_K (Q5 = false) and Q5_K (its fifth bits after Q4_K's group block).
template <bool Q5>
void dense_q45_k(const uint8_t* wg, int64_t nb, int rows, uint8_t* dst) {
  constexpr int kBlock = Q5 ? kSparseQ5_KBlock : kSparseQ4_KBlock, kChan = Q5 ? kSparseQ5_KChannel : 64;
  constexpr int kDense = Q5 ? kQ5_KGroupBlock : kQ4_KGroupBlock;
  for (int rr = 0; rr < rows; rr++) {
    const RowAt at(rr);
    const int r = rr % kGroupRows;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* ch = blk + kSparseQ4_KHead;
      uint8_t* out = dst + ((rr / kGroupRows) * nb + b) * kDense;
      std::memcpy(out + 2 * r, blk + 2 * rr, 2);
      std::memcpy(out + 32 + 2 * r, blk + 256 + 2 * rr, 2);
      for (int j = 0; j < 8; j++) {
        out[64 + 16 * j + r] = blk[512 + 128 * j + rr];
        out[192 + 32 * (j >> 1) + 2 * r + (j & 1)] = blk[1536 + 128 * j + rr];
      }
      for (int c = 0; c < 4; c++)
        for (int k = 0; k < 8; k++)
          for (int e = 0; e < 4; e++) {
            const int n = 64 * c + 4 * k + e;
            out[320 + 64 * (8 * c + k) + 4 * r + e] = uint8_t(at.nib(ch + kChan * n) | at.nib(ch + kChan * (n + 32)) << 4);
          }
      if (Q5)  // byte [2368 + 64 k + 4 r + e]: bit j = the fifth bit of value 32 j + 4 k + e
        for (int k = 0; k < 8; k++)
          for (int e = 0; e < 4; e++) {
            int hb = 0;
            for (int j = 0; j < 8; j++) hb |= at.fifth(ch + kChan * (32 * j + 4 * k + e)) << j;
            out[2368 + 64 * k + 4 * r + e] = uint8_t(hb);
          }
    }
  }
}

void dense_q6_k(const uint8_t* wg, int64_t nb, int rows, uint8_t* dst) {
  for (int rr = 0; rr < rows; rr++) {
    const RowAt at(rr);
    const int r = rr % kGroupRows;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kSparseQ6_KBlock;
      const uint8_t* ch = blk + kSparseQ6_KHead;
      uint8_t* out = dst + ((rr / kGroupRows) * nb + b) * kQ6_KGroupBlock;
      std::memcpy(out + 2 * r, blk + 2 * rr, 2);
      for (int s = 0; s < 16; s++) out[32 + 32 * (s >> 1) + 2 * r + (s & 1)] = blk[256 + 128 * s + rr];
      uint8_t q[256];
      for (int n = 0; n < 256; n++) q[n] = uint8_t(at.six(ch + kSparseQ6_KChannel * n));
      for (int c = 0; c < 32; c++)
        for (int e = 0; e < 4; e++) out[288 + 64 * c + 4 * r + e] = uint8_t((q[8 * c + e] & 15) | (q[8 * c + 4 + e] & 15) << 4);
      for (int s = 0; s < 16; s++)
        for (int e = 0; e < 4; e++) {
          int hb = 0;
          for (int i = 0; i < 4; i++) hb |= ((q[16 * s + 4 * i + e] >> 4) & 3) << (2 * i);
          out[2336 + 64 * s + 4 * r + e] = uint8_t(hb);
        }
    }
  }
}

// Q4_1, Q5_0, Q5_1 (d, m, 4 or 5 bits) and IQ4_NL, MXFP4 (codebook indices): value i < 16
// in the low nibble of qs[i], value 16 + i in the high one; Q5_*'s fifth bit of value i at
// bit i of the 32-bit qh.
template <uint32_t Ty>
struct Small {
  static constexpr bool kMin = Ty == kQ4_1 || Ty == kQ5_1, kFive = Ty == kQ5_0 || Ty == kQ5_1, kMx = Ty == kMXFP4;
  // offsets in the file's block
  static constexpr int kQh = Ty == kQ5_0 ? 2 : 4;
  static constexpr int kQs = Ty == kQ4_1 ? 4 : Ty == kQ5_0 ? 6 : Ty == kQ5_1 ? 8 : Ty == kIQ4_NL ? 2 : 1;
  static constexpr int kFileBytes = kQs + 16;
  // the sparse group block
  static constexpr int kHead = kMx ? kSparseMXFP4Head : kMin ? 2 * kSparseScaleBytes : kSparseScaleBytes;
  static constexpr int kChan = kFive ? kSparseQ5_KChannel : kSparseQ4_0Channel;
  static constexpr int kBlock = kHead + 32 * kChan;
  // the dense group block (kernels/layout.h)
  static constexpr int kDenseQs = kMin ? 64 : 32;
  static constexpr int kDense = Ty == kQ4_1 ? kQ4_1GroupBlock : Ty == kQ5_0 ? kQ5_0GroupBlock
                              : Ty == kQ5_1 ? kQ5_1GroupBlock : kCodebookGroupBlock;
};

template <uint32_t Ty>
void pack_small(const uint8_t* src, uint8_t* blk, int rr) {
  using L = Small<Ty>;
  if (L::kMx) blk[rr] = src[0];
  else std::memcpy(blk + 2 * rr, src, 2);
  if (L::kMin) std::memcpy(blk + kSparseScaleBytes + 2 * rr, src + 2, 2);
  uint32_t qh = 0;
  if (L::kFive) std::memcpy(&qh, src + L::kQh, 4);
  for (int c = 0; c < 32; c++) {
    uint8_t* ch = blk + L::kHead + c * L::kChan;
    set_nibble(ch, rr, c < 16 ? src[L::kQs + c] & 15 : src[L::kQs + c - 16] >> 4);
    if (L::kFive) set_fifth(ch, rr, int(qh >> c));
  }
}
template <uint32_t Ty>
void unpack_small(const uint8_t* blk, int rr, uint8_t* dst) {
  using L = Small<Ty>;
  std::memset(dst, 0, L::kFileBytes);
  if (L::kMx) dst[0] = blk[rr];
  else std::memcpy(dst, blk + 2 * rr, 2);
  if (L::kMin) std::memcpy(dst + 2, blk + kSparseScaleBytes + 2 * rr, 2);
  const uint8_t* ch = blk + L::kHead;
  uint32_t qh = 0;
  for (int i = 0; i < 16; i++)
    dst[L::kQs + i] = uint8_t(get_nibble(ch + i * L::kChan, rr) | get_nibble(ch + (16 + i) * L::kChan, rr) << 4);
  if (L::kFive) {
    for (int c = 0; c < 32; c++) qh |= uint32_t(get_fifth(ch + c * L::kChan, rr)) << c;
    std::memcpy(dst + L::kQh, &qh, 4);
  }
}
template <uint32_t Ty>
void dense_small(const uint8_t* wg, int64_t nb, int rows, uint8_t* dst);

template <uint32_t Ty>
void dense_small(const uint8_t* wg, int64_t nb, int rows, uint8_t* dst) {
  using L = Small<Ty>;
  for (int rr = 0; rr < rows; rr++) {
    const RowAt at(rr);
    const int r = rr % kGroupRows;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * L::kBlock;
      const uint8_t* ch = blk + L::kHead;
      uint8_t* out = dst + ((rr / kGroupRows) * nb + b) * L::kDense;
      if (L::kMx) out[r] = blk[rr], out[16 + r] = 0;
      else std::memcpy(out + 2 * r, blk + 2 * rr, 2);
      if (L::kMin) std::memcpy(out + 32 + 2 * r, blk + kSparseScaleBytes + 2 * rr, 2);
      // chunk k lane r byte e: value 4k + e (low nibble), 16 + 4k + e (high)
      for (int i = 0; i < 16; i++)
        out[L::kDenseQs + 64 * (i / 4) + 4 * r + i % 4] = uint8_t(at.nib(ch + i * L::kChan) | at.nib(ch + (16 + i) * L::kChan) << 4);
      if (L::kFive)  // byte e of lane r: bit k = fifth bit of value 4k + e, bit 4 + k that of 16 + 4k + e
        for (int e = 0; e < 4; e++) {
          int hb = 0;
          for (int k = 0; k < 4; k++)
            hb |= at.fifth(ch + (4 * k + e) * L::kChan) << k | at.fifth(ch + (16 + 4 * k + e) * L::kChan) << (4 + k);
          out[L::kDenseQs + 256 + 4 * r + e] = uint8_t(hb);
        }
    }
  }
}

struct SparseKind {
  int block;        // columns per file block
  int group_block;  // bytes per (128-row group, block)
  int head, chan;   // bytes of the scales, and of one channel vector, per group block
  bool kquant;      // BlockQ8KA activations (else BlockQ8A)
  void (*pack)(const uint8_t* src, uint8_t* blk, int rr);
  void (*unpack)(const uint8_t* blk, int rr, uint8_t* dst);
  // rows (<= 128) of a group into the dense layout: 8 group blocks of 16 rows per block
  void (*to_dense)(const uint8_t* wg, int64_t nb, int rows, uint8_t* dst);
  int dense_block;  // bytes per (16-row group, block) of the dense layout
  SparseMatMulFn SparseKernels::*fn;
  QMatMulFn Kernels::*dense;
  bool q8_1 = false;  // Q8A1 activations (BlockQ8A with the float s in place of the sum)
};

const SparseKind* sparse_kind(uint32_t type) {
  static const SparseKind q4_0{32, kSparseQ4_0Block, kSparseScaleBytes, kSparseQ4_0Channel, false, pack_q4_0,
                               unpack_q4_0, dense_q4_0, kQ4_0GroupBlock, &SparseKernels::smm_q4_0, &Kernels::mm_q4_0};
  static const SparseKind q8_0{32, kSparseQ8_0Block, kSparseScaleBytes, kSparseQ8_0Channel, false, pack_q8_0,
                               unpack_q8_0, dense_q8_0, kQ8_0GroupBlock, &SparseKernels::smm_q8_0, &Kernels::mm_q8_0};
  static const SparseKind q4_k{256, kSparseQ4_KBlock, kSparseQ4_KHead, 64, true, pack_q4_k,
                               unpack_q4_k, dense_q45_k<false>, kQ4_KGroupBlock, &SparseKernels::smm_q4_k, &Kernels::mm_q4_k};
  static const SparseKind q5_k{256, kSparseQ5_KBlock, kSparseQ4_KHead, kSparseQ5_KChannel, true, pack_q5_k,
                               unpack_q5_k, dense_q45_k<true>, kQ5_KGroupBlock, &SparseKernels::smm_q5_k, &Kernels::mm_q5_k};
  static const SparseKind q6_k{256, kSparseQ6_KBlock, kSparseQ6_KHead, kSparseQ6_KChannel, true, pack_q6_k,
                               unpack_q6_k, dense_q6_k, kQ6_KGroupBlock, &SparseKernels::smm_q6_k, &Kernels::mm_q6_k};
#define SP_SMALL_KIND(name, Ty, q81)                                                                       \
  static const SparseKind name{32, Small<Ty>::kBlock, Small<Ty>::kHead, Small<Ty>::kChan, false, pack_small<Ty>, \
                               unpack_small<Ty>, dense_small<Ty>, Small<Ty>::kDense, &SparseKernels::smm_##name,   \
                               &Kernels::mm_##name, q81};
  SP_SMALL_KIND(q4_1, kQ4_1, true)
  SP_SMALL_KIND(q5_0, kQ5_0, false)
  SP_SMALL_KIND(q5_1, kQ5_1, true)
  SP_SMALL_KIND(iq4_nl, kIQ4_NL, false)
  SP_SMALL_KIND(mxfp4, kMXFP4, false)
#undef SP_SMALL_KIND
  switch (type) {
    case kQ4_1: return &q4_1;
    case kQ5_0: return &q5_0;
    case kQ5_1: return &q5_1;
    case kIQ4_NL: return &iq4_nl;
    case kMXFP4: return &mxfp4;
    case kQ4_0: return &q4_0;
    case kQ8_0: return &q8_0;
    case kQ4_K: return &q4_k;
    case kQ5_K: return &q5_k;
    case kQ6_K: return &q6_k;
    default: return nullptr;
  }
}

class SparseMatrix final : public Matrix {
 public:
  SparseMatrix(uint32_t type, const SparseKind& kind, const uint8_t* data, int64_t rows, int64_t cols,
               std::shared_ptr<SparseStats> stats, const ParallelFor& par)
      : Matrix(type, rows, cols, nullptr),  // no source(): the weights live channel-major only
        k_(kind),
        nb_(cols / kind.block),
        src_block_(quant_block_bytes(type)),
        groups_((rows + kSparseRows - 1) / kSparseRows),
        stats_(std::move(stats)) {
    const int64_t group_bytes = nb_ * k_.group_block;
    w_ = PageBuffer(size_t(groups_ * group_bytes), "channel-major weights");  // zero-filled
    auto repack_group = [&](int64_t g) {
      uint8_t* wg = w_.get() + g * group_bytes;
      prefault_pages(wg, size_t(group_bytes));
      const int64_t row_end = std::min(rows, (g + 1) * kSparseRows);
      for (int64_t row = g * kSparseRows; row < row_end; row++)
        for (int64_t b = 0; b < nb_; b++)
          k_.pack(data + size_t(row * nb_ + b) * src_block_, wg + b * k_.group_block, int(row % kSparseRows));
    };
    if (par && groups_ > 1) par(groups_, repack_group);
    else for (int64_t g = 0; g < groups_; g++) repack_group(g);
  }

  InputFormat input_format() const override {
    return k_.kquant ? InputFormat::Q8KA : k_.q8_1 ? InputFormat::Q8A1 : InputFormat::Q8A;
  }
  size_t input_bytes(int64_t n) const override { return size_t(n * row_bytes()); }
  void quantize_input(const float* x, int64_t n, void* xq) const override {
    const Kernels& k = kernels();
    auto quantize = k_.kquant ? k.quantize_q8ka : k.quantize_q8a;
    for (int64_t t = 0; t < n; t++) quantize(x + t * cols_, static_cast<uint8_t*>(xq) + t * row_bytes(), cols_);
    if (k_.q8_1) to_q8_1(x, n, static_cast<uint8_t*>(xq));
  }
  int64_t row_align() const override { return kSparseRows; }

  void mul(const void* xq, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) const override {
    if (r0 < 0 || r1 > rows_ || r0 > r1 || (r0 % kSparseRows != 0 && r0 != r1))
      throw sparrow_error("ERR_INTERNAL", "SparseMatrix::mul: row range [" + std::to_string(r0) + ", " +
                                              std::to_string(r1) + ") is not aligned to 128 or out of range");
    if (r0 == r1 || n <= 0) return;
    const int64_t g0 = r0 / kSparseRows, g1 = (r1 + kSparseRows - 1) / kSparseRows;
    const uint64_t dense_bytes = uint64_t(g1 - g0) * uint64_t(nb_ * k_.group_block);
    const Isa isa = current_isa();
    SparseMatMulFn fn = sparse_kernels_for(isa).*(k_.fn);
    uint64_t read = dense_bytes;
    if (fn && n <= kSparseMaxTokens)
      read = fn(w_.get(), cols_, xq, n, y, ldy, g0, g1, r1);
    else
      mul_dense(kernels_for(isa).*(k_.dense), xq, n, y, ldy, g0, g1, r1);
    if (stats_) {
      stats_->read.fetch_add(read, std::memory_order_relaxed);
      stats_->dense.fetch_add(dense_bytes, std::memory_order_relaxed);
    }
  }

  void get_row(int64_t r, float* out) const override {
    const uint8_t* wg = w_.get() + (r / kSparseRows) * nb_ * k_.group_block;
    std::vector<uint8_t> blk(src_block_);
    for (int64_t b = 0; b < nb_; b++) {
      k_.unpack(wg + b * k_.group_block, int(r % kSparseRows), blk.data());
      dequantize_row(type_, blk.data(), out + b * k_.block, k_.block);
    }
  }

 private:
  int64_t row_bytes() const { return nb_ * (k_.kquant ? kQ8KABytes : kQ8ABytes); }

  // ggml's Q8_1, as the dense matrix makes it (kernels/matrix.cpp): the sum field of each
  // BlockQ8A becomes the float s = fp16(d * sum), d = amax / 127 unrounded.
  void to_q8_1(const float* x, int64_t n, uint8_t* xq) const {
    for (int64_t t = 0; t < n; t++)
      for (int64_t b = 0; b < nb_; b++) {
        const float* v = x + t * cols_ + 32 * b;
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = std::max(amax, std::fabs(v[i]));
        uint8_t* blk = xq + t * row_bytes() + b * kQ8ABytes;
        int32_t sum;
        std::memcpy(&sum, blk + 4, 4);
        const float s = fp16_to_fp32(fp32_to_fp16(amax / 127 * float(sum)));
        std::memcpy(blk + 4, &s, 4);
      }
  }

  // The dense kernel over each group, converted into the dense layout in a per-thread
  // scratch buffer; tokens in chunks as the dense Matrix does (each output depends only
  // on its row and token).
  void mul_dense(QMatMulFn fn, const void* xq, int64_t n, float* y, int64_t ldy, int64_t g0, int64_t g1,
                 int64_t r1) const {
    thread_local std::vector<uint8_t> dense;
    const size_t need = size_t(kSparseRows / kGroupRows) * size_t(nb_) * size_t(k_.dense_block);
    if (dense.size() < need) dense.resize(need);
    const int64_t xrow = row_bytes();
    const int64_t chunk = std::max<int64_t>(8, (int64_t(192) * 1024 / xrow) / 8 * 8);
    const uint8_t* x = static_cast<const uint8_t*>(xq);
    for (int64_t g = g0; g < g1; g++) {
      const int64_t row0 = g * kSparseRows, rlimit = std::min(r1, row0 + kSparseRows) - row0;
      k_.to_dense(w_.get() + g * nb_ * k_.group_block, nb_, int(rlimit), dense.data());
      const int64_t dg1 = (rlimit + kGroupRows - 1) / kGroupRows;
      for (int64_t t0 = 0; t0 < n; t0 += chunk)
        fn(dense.data(), cols_, x + t0 * xrow, std::min(chunk, n - t0), y + t0 * ldy + row0, ldy, 0, dg1, rlimit);
    }
  }

  const SparseKind& k_;
  int64_t nb_;
  size_t src_block_;
  int64_t groups_;
  std::shared_ptr<SparseStats> stats_;
  PageBuffer w_;
};

}  // namespace

const SparseKernels& sparse_kernels_for(Isa isa) {
  switch (isa) {
    case Isa::Generic: return kSparseGeneric;
#ifdef SPARROW_HAVE_X86_KERNELS
    case Isa::AVX2: return kSparseAvx2;
    case Isa::AVX512: return kSparseAvx512;
#endif
#ifdef SPARROW_HAVE_NEON_KERNELS
    case Isa::NEON: return kSparseNeon;
#endif
    default: return kSparseNone;
  }
}

bool sparse_supported(uint32_t type) { return sparse_kind(type) != nullptr; }
const char* sparse_supported_names() { return "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4, Q4_K, Q5_K, Q6_K"; }

std::unique_ptr<Matrix> make_sparse_matrix(uint32_t type, const void* data, int64_t rows, int64_t cols,
                                           const char* name, std::shared_ptr<SparseStats> stats,
                                           const ParallelFor& par) {
  const SparseKind* k = sparse_kind(type);
  if (!k)
    throw sparrow_error("ERR_UNSUPPORTED_TYPE", std::string("tensor '") + name + "' has type " + type_name(type) +
                                                    ", which has no channel-major (sparse) layout (supported: " +
                                                    sparse_supported_names() + ")");
  if (rows <= 0 || cols <= 0 || cols % k->block != 0)
    throw sparrow_error("ERR_BAD_TENSOR_SHAPE", std::string("tensor '") + name + "' of type " + type_name(type) +
                                                    " has " + std::to_string(cols) +
                                                    " columns, not a positive multiple of its block size " +
                                                    std::to_string(k->block));
  return std::make_unique<SparseMatrix>(type, *k, static_cast<const uint8_t*>(data), rows, cols, std::move(stats), par);
}

}  // namespace sparrow
