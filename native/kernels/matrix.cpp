// make_matrix and the Matrix implementations: quantized weights are repacked at load
// into the 16-row interleaved layouts of kernels/layout.h (the mapped original is not
// read again); float weights (F32/F16/BF16) are used in place. mul() calls the kernel
// of the current ISA (kernels()).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <new>
#include <string>

#include "core/error.h"
#include "core/ggml_types.h"
#include "core/gguf.h"
#include "kernels.h"
#include "layout.h"
#include "matmul.h"
#include "core/pages.h"
#include "quant/fp16.h"
#include "quant/quant.h"

namespace sparrow {

namespace {

enum : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10, Q3_K = 11, Q4_K = 12,
  Q5_K = 13, Q6_K = 14, IQ4_NL = 20, IQ4_XS = 23, BF16 = 30, MXFP4 = 39
};

// Repacked weights live in their own pages (page-aligned, zero-filled: padding rows of
// the last group stay zero, scale 0), returned to the OS when the matrix goes.
using AlignedBytes = PageBuffer;

AlignedBytes aligned_bytes(size_t n) { return PageBuffer(n, "repacked weights"); }

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }
uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// --- rounding float activations to bf16 values (what ggml converts them to for BF16
// weights; f16 has its kernel, kernels().round_f16), branch-free so that the loop over a
// row vectorizes. Equal to bf16_to_fp32(fp32_to_bf16(x)) for every float (ties to even,
// nan kept).

uint32_t float_bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}
float bits_float(uint32_t b) {
  float x;
  std::memcpy(&x, &b, 4);
  return x;
}

float round_to_bf16(float x) {
  const uint32_t b = float_bits(x);
  const uint32_t r = (b + 0x7fffu + ((b >> 16) & 1u)) & 0xffff0000u;
  return bits_float((b & 0x7fffffffu) > 0x7f800000u ? (b | 0x400000u) & 0xffff0000u : r);
}

// --- repacking: one (row, block) of the original into its place in the group block ---
// The quantized values are moved 4 bytes at a time (a uint32 of 4 byte lanes: the
// masks and shifts below never mix lanes, so this is independent of the byte order).

uint32_t get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }

void repack_q4_0(const uint8_t* src, uint8_t* dst, int r) {
  put16(dst + 2 * r, get16(src + offsetof(BlockQ4_0, d)));
  for (int k = 0; k < 4; k++) std::memcpy(dst + 32 + 64 * k + 4 * r, src + offsetof(BlockQ4_0, qs) + 4 * k, 4);
}

void repack_q8_0(const uint8_t* src, uint8_t* dst, int r) {
  put16(dst + 2 * r, get16(src + offsetof(BlockQ8_0, d)));
  for (int k = 0; k < 8; k++)  // int8 -> uint8 + 128
    put32(dst + 32 + 64 * k + 4 * r, get32(src + offsetof(BlockQ8_0, qs) + 4 * k) ^ 0x80808080u);
}

// Q4_K / Q5_K. The group block wants, at [320 + 64 i + 4 r + b] (i = 8 c + k), value
// 64 c + 4 k + b in the low nibble and value 64 c + 32 + 4 k + b in the high one: that is
// byte 32 c + 4 k + b = 4 i + b of the original qs, so the 128 bytes move unchanged, 4 at
// a time. Likewise for Q5_K the fifth bits: bit j of qh[4 k + b] belongs to value
// 32 j + 4 k + b, just what byte [2368 + 64 k + 4 r + b] holds. Only the 6-bit scales
// and mins are unpacked.
void repack_q45_k(const uint8_t scales[12], const uint8_t* qs, const uint8_t* qh, uint16_t d, uint16_t dmin,
                  uint8_t* dst, int r) {
  put16(dst + 2 * r, d);
  put16(dst + 32 + 2 * r, dmin);
  for (int j = 0; j < 8; j++) {
    uint8_t sc, m;
    kquant_scale_min(scales, j, &sc, &m);
    dst[64 + 16 * j + r] = sc;
    dst[192 + 32 * (j >> 1) + 2 * r + (j & 1)] = m;
  }
  for (int i = 0; i < 32; i++) std::memcpy(dst + 320 + 64 * i + 4 * r, qs + 4 * i, 4);
  if (qh)
    for (int k = 0; k < 8; k++) std::memcpy(dst + 2368 + 64 * k + 4 * r, qh + 4 * k, 4);
}

void repack_q4_k(const uint8_t* src, uint8_t* dst, int r) {
  repack_q45_k(src + offsetof(BlockQ4_K, scales), src + offsetof(BlockQ4_K, qs), nullptr,
               get16(src + offsetof(BlockQ4_K, d)), get16(src + offsetof(BlockQ4_K, dmin)), dst, r);
}

void repack_q5_k(const uint8_t* src, uint8_t* dst, int r) {
  repack_q45_k(src + offsetof(BlockQ5_K, scales), src + offsetof(BlockQ5_K, qs), src + offsetof(BlockQ5_K, qh),
               get16(src + offsetof(BlockQ5_K, d)), get16(src + offsetof(BlockQ5_K, dmin)), dst, r);
}

// Q6_K. Value n (of 256) has its low 4 bits in nibble (n / 64) % 2 of ql[64 (n / 128) +
// n % 64] and its high 2 bits at bit 2 ((n / 32) % 4) of qh[32 (n / 128) + n % 32].
// The group block wants
//   [288 + 64 c + 4 r + i]: low bits of value 8 c + i (nibble 0) and 8 c + 4 + i (nibble 1),
//   [2336 + 64 s + 4 r + i]: high bits of values 16 s + 4 g + i at bit 2 g, g = 0..3,
// and 4 consecutive i are 4 consecutive source bytes in both cases.
void repack_q6_k(const uint8_t* src, uint8_t* dst, int r) {
  const uint8_t* ql = src + offsetof(BlockQ6_K, ql);
  const uint8_t* qh = src + offsetof(BlockQ6_K, qh);
  put16(dst + 2 * r, get16(src + offsetof(BlockQ6_K, d)));
  for (int s = 0; s < 16; s += 2) std::memcpy(dst + 32 + 16 * s + 2 * r, src + offsetof(BlockQ6_K, scales) + s, 2);
  for (int c = 0; c < 32; c++) {
    const int n = 8 * c, shift = 4 * ((n / 64) % 2);
    const uint8_t* p = ql + 64 * (n / 128) + n % 64;
    uint32_t lo0 = (get32(p) >> shift) & 0x0f0f0f0fu, lo1 = (get32(p + 4) >> shift) & 0x0f0f0f0fu;
    put32(dst + 288 + 64 * c + 4 * r, lo0 | lo1 << 4);
  }
  for (int s = 0; s < 16; s++) {
    const int n = 16 * s, shift = 2 * ((n / 32) % 4);
    const uint8_t* p = qh + 32 * (n / 128) + n % 32;
    uint32_t h = 0;
    for (int g = 0; g < 4; g++) h |= ((get32(p + 4 * g) >> shift) & 0x03030303u) << (2 * g);
    put32(dst + 2336 + 64 * s + 4 * r, h);
  }
}

// Q4_1 / Q5_0 / Q5_1: scales (and mins) as they are, the nibbles as Q4_0, and the
// fifth bits regrouped so that bit 8b + k (b, k < 4) of the row's lane is that of value
// 4k + b and bit 8b + 4 + k that of value 16 + 4k + b.
template <uint32_t Type>
void repack_legacy(const uint8_t* src, uint8_t* dst, int r) {
  constexpr bool has_min = Type != Q5_0, five = Type != Q4_1;
  constexpr size_t qs = Type == Q4_1 ? offsetof(BlockQ4_1, qs) : Type == Q5_0 ? offsetof(BlockQ5_0, qs) : offsetof(BlockQ5_1, qs);
  constexpr int qoff = has_min ? 64 : 32;
  put16(dst + 2 * r, get16(src));
  if (has_min) put16(dst + 32 + 2 * r, get16(src + 2));
  for (int k = 0; k < 4; k++) std::memcpy(dst + qoff + 64 * k + 4 * r, src + qs + 4 * k, 4);
  if (five) {
    uint32_t qh = get32(src + (Type == Q5_0 ? offsetof(BlockQ5_0, qh) : offsetof(BlockQ5_1, qh))), h = 0;
    for (int k = 0; k < 4; k++)
      for (int b = 0; b < 4; b++) {
        h |= ((qh >> (4 * k + b)) & 1u) << (8 * b + k);
        h |= ((qh >> (16 + 4 * k + b)) & 1u) << (8 * b + 4 + k);
      }
    uint8_t bytes[4] = {uint8_t(h), uint8_t(h >> 8), uint8_t(h >> 16), uint8_t(h >> 24)};
    std::memcpy(dst + qoff + 256 + 4 * r, bytes, 4);
  }
}

// IQ4_NL / MXFP4: the scale (fp16 d, or the E8M0 byte), the nibbles as Q4_0.
void repack_iq4_nl(const uint8_t* src, uint8_t* dst, int r) {
  put16(dst + 2 * r, get16(src + offsetof(BlockIQ4_NL, d)));
  for (int k = 0; k < 4; k++) std::memcpy(dst + 32 + 64 * k + 4 * r, src + offsetof(BlockIQ4_NL, qs) + 4 * k, 4);
}
void repack_mxfp4(const uint8_t* src, uint8_t* dst, int r) {
  dst[r] = src[offsetof(BlockMXFP4, e)];
  for (int k = 0; k < 4; k++) std::memcpy(dst + 32 + 64 * k + 4 * r, src + offsetof(BlockMXFP4, qs) + 4 * k, 4);
}

// IQ4_XS: d as it is, the 6-bit scales as int8 (ls - 32), the indices re-paired as Q4_K's
// nibbles (the file pairs value 32j + l with 32j + 16 + l; the group block 64c + i with
// 64c + 32 + i).
void repack_iq4_xs(const uint8_t* src, uint8_t* dst, int r) {
  BlockIQ4_XS b;
  std::memcpy(&b, src, sizeof(b));
  put16(dst + 2 * r, b.d);
  for (int j = 0; j < 8; j++) {
    const int ls = ((b.scales_l[j / 2] >> (4 * (j % 2))) & 15) | ((b.scales_h >> (2 * j)) & 3) << 4;
    dst[32 + 16 * j + r] = uint8_t(int8_t(ls - 32));
  }
  uint8_t idx[256];
  for (int i = 0; i < 256; i++) idx[i] = (b.qs[16 * (i / 32) + i % 16] >> (4 * ((i % 32) / 16))) & 15;
  for (int c = 0; c < 4; c++)
    for (int k = 0; k < 8; k++)
      for (int e = 0; e < 4; e++)
        dst[160 + 64 * (8 * c + k) + 4 * r + e] = uint8_t(idx[64 * c + 4 * k + e] | idx[64 * c + 32 + 4 * k + e] << 4);
}

// Q3_K / Q2_K: the 2-bit values 4 to a byte (value 16s + 4i + b at bits 2i of byte b of
// chunk s), Q3_K's third bits 8 to a byte, the scales (and mins) as bytes.
void put_2bit_chunks(const int8_t* q, uint8_t* dst, int r) {
  for (int s = 0; s < 16; s++)
    for (int b = 0; b < 4; b++) {
      uint8_t byte = 0;
      for (int i = 0; i < 4; i++) byte = uint8_t(byte | (q[16 * s + 4 * i + b] & 3) << (2 * i));
      dst[64 * s + 4 * r + b] = byte;
    }
}

void repack_q3_k(const uint8_t* src, uint8_t* dst, int r) {
  int8_t v[256], sc[16], m[16], q[256];
  float d, dmin;
  unpack_small_k(Q3_K, src, v, sc, m, &d, &dmin);
  put16(dst + 2 * r, get16(src + offsetof(BlockQ3_K, d)));
  for (int s = 0; s < 16; s++) dst[32 + 32 * (s >> 1) + 2 * r + (s & 1)] = uint8_t(sc[s]);
  for (int i = 0; i < 256; i++) q[i] = int8_t(v[i] + 4);
  put_2bit_chunks(q, dst + 288, r);
  for (int t = 0; t < 8; t++)
    for (int b = 0; b < 4; b++) {
      uint8_t byte = 0;
      for (int e = 0; e < 2; e++)
        for (int i = 0; i < 4; i++) byte = uint8_t(byte | ((q[16 * (2 * t + e) + 4 * i + b] >> 2) & 1) << (i + 4 * e));
      dst[1312 + 64 * t + 4 * r + b] = byte;
    }
}

void repack_q2_k(const uint8_t* src, uint8_t* dst, int r) {
  int8_t v[256], sc[16], m[16];
  float d, dmin;
  unpack_small_k(Q2_K, src, v, sc, m, &d, &dmin);
  put16(dst + 2 * r, get16(src + offsetof(BlockQ2_K, d)));
  put16(dst + 32 + 2 * r, get16(src + offsetof(BlockQ2_K, dmin)));
  for (int s = 0; s < 16; s++) dst[64 + 32 * (s >> 1) + 2 * r + (s & 1)] = src[offsetof(BlockQ2_K, scales) + s];
  put_2bit_chunks(v, dst + 320, r);
}

// --- reading one row back out of a group block (get_row) ---

void unrepack_q4_0(const uint8_t* src, int r, float* out) {
  float d = fp16_to_fp32(get16(src + 2 * r));
  for (int k = 0; k < 4; k++)
    for (int j = 0; j < 4; j++) {
      uint8_t q = src[32 + 64 * k + 4 * r + j];
      out[4 * k + j] = d * float((q & 15) - 8);
      out[16 + 4 * k + j] = d * float((q >> 4) - 8);
    }
}

void unrepack_q8_0(const uint8_t* src, int r, float* out) {
  float d = fp16_to_fp32(get16(src + 2 * r));
  for (int i = 0; i < 32; i++) out[i] = d * float(int8_t(src[32 + 64 * (i / 4) + 4 * r + i % 4] ^ 0x80));
}

void unrepack_q45_k(const uint8_t* src, int r, float* out, bool q5) {
  float d = fp16_to_fp32(get16(src + 2 * r)), dmin = fp16_to_fp32(get16(src + 32 + 2 * r));
  for (int i = 0; i < 256; i++) {
    int j = i / 32, c = j / 2, k = (i % 32) / 4, b = i % 4;
    uint8_t byte = src[320 + 64 * (8 * c + k) + 4 * r + b];
    int q = (j & 1) ? byte >> 4 : byte & 15;
    if (q5) q |= ((src[2368 + 64 * k + 4 * r + b] >> j) & 1) << 4;
    float sc = src[64 + 16 * j + r], m = src[192 + 32 * (j >> 1) + 2 * r + (j & 1)];
    out[i] = d * sc * float(q) - dmin * m;
  }
}
void unrepack_q4_k(const uint8_t* src, int r, float* out) { unrepack_q45_k(src, r, out, false); }
void unrepack_q5_k(const uint8_t* src, int r, float* out) { unrepack_q45_k(src, r, out, true); }

void unrepack_q6_k(const uint8_t* src, int r, float* out) {
  float d = fp16_to_fp32(get16(src + 2 * r));
  for (int i = 0; i < 256; i++) {
    int s = i / 16, g = (i % 16) / 4, b = i % 4, c = (4 * s + g) / 2;
    uint8_t lo = src[288 + 64 * c + 4 * r + b];
    lo = (g & 1) ? lo >> 4 : lo & 15;
    uint8_t hi = (src[2336 + 64 * s + 4 * r + b] >> (2 * g)) & 3;
    float sc = float(int8_t(src[32 + 32 * (s >> 1) + 2 * r + (s & 1)]));
    out[i] = d * sc * float(int(lo | hi << 4) - 32);
  }
}

template <bool HasMin, bool Five>
void unrepack_legacy(const uint8_t* src, int r, float* out) {
  constexpr int qoff = HasMin ? 64 : 32;
  const float d = fp16_to_fp32(get16(src + 2 * r)), m = HasMin ? fp16_to_fp32(get16(src + 32 + 2 * r)) : 0.0f;
  for (int k = 0; k < 4; k++)
    for (int b = 0; b < 4; b++) {
      const uint8_t q = src[qoff + 64 * k + 4 * r + b], h = Five ? src[qoff + 256 + 4 * r + b] : 0;
      const int lo = (q & 15) | ((h >> k) & 1) << 4, hi = (q >> 4) | ((h >> (4 + k)) & 1) << 4;
      out[4 * k + b] = HasMin ? d * float(lo) + m : d * float(lo - 16);
      out[16 + 4 * k + b] = HasMin ? d * float(hi) + m : d * float(hi - 16);
    }
}

template <bool Mx>
void unrepack_codebook(const uint8_t* src, int r, float* out) {
  const float d = Mx ? e8m0_half(src[r]) : fp16_to_fp32(get16(src + 2 * r));
  const int8_t* table = Mx ? kMXFP4 : kIQ4NL;
  for (int k = 0; k < 4; k++)
    for (int b = 0; b < 4; b++) {
      const uint8_t q = src[32 + 64 * k + 4 * r + b];
      out[4 * k + b] = d * float(table[q & 15]);
      out[16 + 4 * k + b] = d * float(table[q >> 4]);
    }
}

void unrepack_iq4_xs(const uint8_t* src, int r, float* out) {
  const float d = fp16_to_fp32(get16(src + 2 * r));
  for (int i = 0; i < 256; i++) {
    const int j = i / 32, c = j / 2, k = (i % 32) / 4, e = i % 4;
    const uint8_t byte = src[160 + 64 * (8 * c + k) + 4 * r + e];
    const int q = (j & 1) ? byte >> 4 : byte & 15;
    out[i] = d * float(int8_t(src[32 + 16 * j + r])) * float(kIQ4NL[q]);
  }
}

void unrepack_q3_k(const uint8_t* src, int r, float* out) {
  const float d = fp16_to_fp32(get16(src + 2 * r));
  for (int n = 0; n < 256; n++) {
    const int s = n / 16, i = (n % 16) / 4, b = n % 4;
    const int lo = (src[288 + 64 * s + 4 * r + b] >> (2 * i)) & 3;
    const int hi = (src[1312 + 64 * (s >> 1) + 4 * r + b] >> (i + 4 * (s & 1))) & 1;
    out[n] = d * float(int8_t(src[32 + 32 * (s >> 1) + 2 * r + (s & 1)])) * float((lo | hi << 2) - 4);
  }
}

void unrepack_q2_k(const uint8_t* src, int r, float* out) {
  const float d = fp16_to_fp32(get16(src + 2 * r)), dmin = fp16_to_fp32(get16(src + 32 + 2 * r));
  for (int n = 0; n < 256; n++) {
    const int s = n / 16, i = (n % 16) / 4, b = n % 4;
    const int q = (src[320 + 64 * s + 4 * r + b] >> (2 * i)) & 3;
    const uint8_t scm = src[64 + 32 * (s >> 1) + 2 * r + (s & 1)];
    out[n] = d * float(scm & 15) * float(q) - dmin * float(scm >> 4);
  }
}

// One row of `nb` original blocks into its place (row r % 16) in the group blocks: the
// per-block repack inlined into a loop, one indirect call per row.
template <void (*Repack)(const uint8_t*, uint8_t*, int), size_t SrcBlock, int GroupBlock>
void repack_row(const uint8_t* src, uint8_t* dst, int64_t nb, int r) {
  for (int64_t b = 0; b < nb; b++) Repack(src + b * SrcBlock, dst + b * GroupBlock, r);
}

struct QuantKind {
  int block;        // columns per block
  int group_block;  // bytes per (16-row group, block) in the repacked layout
  bool kquant;      // activations as BlockQ8KA (else BlockQ8A)
  void (*repack)(const uint8_t* src, uint8_t* dst, int64_t nb, int r);
  void (*unrepack)(const uint8_t* src, int r, float* out);
  QMatMulFn Kernels::*fn;
  bool q8_1 = false;  // BlockQ8A with s = fp16(sum * d) in place of the sum (ggml's Q8_1)
};

const QuantKind* quant_kind(uint32_t type) {
  static const QuantKind q4_0{32, kQ4_0GroupBlock, false, repack_row<repack_q4_0, sizeof(BlockQ4_0), kQ4_0GroupBlock>,
                              unrepack_q4_0, &Kernels::mm_q4_0};
  static const QuantKind q8_0{32, kQ8_0GroupBlock, false, repack_row<repack_q8_0, sizeof(BlockQ8_0), kQ8_0GroupBlock>,
                              unrepack_q8_0, &Kernels::mm_q8_0};
  static const QuantKind q4_k{256, kQ4_KGroupBlock, true, repack_row<repack_q4_k, sizeof(BlockQ4_K), kQ4_KGroupBlock>,
                              unrepack_q4_k, &Kernels::mm_q4_k};
  static const QuantKind q5_k{256, kQ5_KGroupBlock, true, repack_row<repack_q5_k, sizeof(BlockQ5_K), kQ5_KGroupBlock>,
                              unrepack_q5_k, &Kernels::mm_q5_k};
  static const QuantKind q6_k{256, kQ6_KGroupBlock, true, repack_row<repack_q6_k, sizeof(BlockQ6_K), kQ6_KGroupBlock>,
                              unrepack_q6_k, &Kernels::mm_q6_k};
  static const QuantKind q4_1{32, kQ4_1GroupBlock, false,
                              repack_row<repack_legacy<Q4_1>, sizeof(BlockQ4_1), kQ4_1GroupBlock>,
                              unrepack_legacy<true, false>, &Kernels::mm_q4_1, true};
  static const QuantKind q5_0{32, kQ5_0GroupBlock, false,
                              repack_row<repack_legacy<Q5_0>, sizeof(BlockQ5_0), kQ5_0GroupBlock>,
                              unrepack_legacy<false, true>, &Kernels::mm_q5_0};
  static const QuantKind q5_1{32, kQ5_1GroupBlock, false,
                              repack_row<repack_legacy<Q5_1>, sizeof(BlockQ5_1), kQ5_1GroupBlock>,
                              unrepack_legacy<true, true>, &Kernels::mm_q5_1, true};
  static const QuantKind iq4_nl{32, kCodebookGroupBlock, false,
                                repack_row<repack_iq4_nl, sizeof(BlockIQ4_NL), kCodebookGroupBlock>,
                                unrepack_codebook<false>, &Kernels::mm_iq4_nl};
  static const QuantKind mxfp4{32, kCodebookGroupBlock, false,
                               repack_row<repack_mxfp4, sizeof(BlockMXFP4), kCodebookGroupBlock>,
                               unrepack_codebook<true>, &Kernels::mm_mxfp4};
  static const QuantKind q2_k{256, kQ2_KGroupBlock, true, repack_row<repack_q2_k, sizeof(BlockQ2_K), kQ2_KGroupBlock>,
                              unrepack_q2_k, &Kernels::mm_q2_k};
  static const QuantKind q3_k{256, kQ3_KGroupBlock, true, repack_row<repack_q3_k, sizeof(BlockQ3_K), kQ3_KGroupBlock>,
                              unrepack_q3_k, &Kernels::mm_q3_k};
  static const QuantKind iq4_xs{256, kIQ4_XSGroupBlock, true,
                                repack_row<repack_iq4_xs, sizeof(BlockIQ4_XS), kIQ4_XSGroupBlock>, unrepack_iq4_xs,
                                &Kernels::mm_iq4_xs};
  switch (type) {
    case Q4_1: return &q4_1;
    case Q5_0: return &q5_0;
    case Q5_1: return &q5_1;
    case IQ4_NL: return &iq4_nl;
    case MXFP4: return &mxfp4;
    case Q2_K: return &q2_k;
    case Q3_K: return &q3_k;
    case IQ4_XS: return &iq4_xs;
    case Q4_0: return &q4_0;
    case Q8_0: return &q8_0;
    case Q4_K: return &q4_k;
    case Q5_K: return &q5_k;
    case Q6_K: return &q6_k;
    default: return nullptr;
  }
}

class QuantMatrix final : public Matrix {
 public:
  QuantMatrix(uint32_t type, const QuantKind& kind, const uint8_t* data, int64_t rows, int64_t cols,
              const ParallelFor& par)
      : Matrix(type, rows, cols, data), k_(kind), nb_(cols / kind.block) {
    const int64_t groups = (rows + kGroupRows - 1) / kGroupRows;
    const int64_t group_bytes = nb_ * k_.group_block;
    w_ = aligned_bytes(size_t(groups * group_bytes));
    // Row groups are independent (each writes only its own group block), so they are
    // handed out in tasks of about 256 KiB of output: enough work per task to make the
    // hand-out cheap, enough tasks to keep every thread busy on the larger matrices.
    const int64_t per_task = std::max<int64_t>(1, (int64_t(256) << 10) / group_bytes);
    const int64_t tasks = (groups + per_task - 1) / per_task;
    const size_t src_block = quant_block_bytes(type);
    auto repack_task = [&](int64_t task) {
      const int64_t row_end = std::min(rows, (task + 1) * per_task * kGroupRows);
      const int64_t g0 = task * per_task, g1 = std::min(groups, g0 + per_task);
      prefault_pages(w_.get() + g0 * group_bytes, size_t((g1 - g0) * group_bytes));
      for (int64_t row = task * per_task * kGroupRows; row < row_end; row++) {
        const uint8_t* src = data + row * nb_ * src_block;
        uint8_t* dst = w_.get() + (row / kGroupRows) * group_bytes;
        k_.repack(src, dst, nb_, int(row % kGroupRows));
      }
    };
    if (par && tasks > 1) par(tasks, repack_task);
    else for (int64_t t = 0; t < tasks; t++) repack_task(t);
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

  void mul(const void* xq, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) const override {
    if (r0 < 0 || r1 > rows_ || r0 > r1 || (r0 % kGroupRows != 0 && r0 != r1))
      throw sparrow_error("ERR_INTERNAL", "Matrix::mul: row range [" + std::to_string(r0) + ", " +
                                              std::to_string(r1) + ") is not aligned to 16 or out of range");
    if (r0 == r1 || n <= 0) return;
    QMatMulFn fn = kernels().*(k_.fn);
    // Tokens in chunks whose activations stay in L2 while the weights of every row
    // group stream past them once per chunk.
    int64_t xrow = row_bytes();
    int64_t chunk = std::max<int64_t>(8, (int64_t(192) * 1024 / xrow) / 8 * 8);
    const uint8_t* x = static_cast<const uint8_t*>(xq);
    for (int64_t t0 = 0; t0 < n; t0 += chunk)
      fn(w_.get(), cols_, x + t0 * xrow, std::min(chunk, n - t0), y + t0 * ldy, ldy, r0 / kGroupRows,
         (r1 + kGroupRows - 1) / kGroupRows, r1);
  }

  int64_t row_align() const override { return kGroupRows; }

  // ggml's Q8_1: the same quants and d as Q8_0, plus s = d * sum rounded to fp16, where
  // d = amax / 127 unrounded; s goes into the sum field as a float.
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

  void get_row(int64_t r, float* out) const override {
    const uint8_t* g = w_.get() + (r / kGroupRows) * nb_ * k_.group_block;
    for (int64_t b = 0; b < nb_; b++) k_.unrepack(g + b * k_.group_block, int(r % kGroupRows), out + b * k_.block);
  }

 private:
  int64_t row_bytes() const { return nb_ * (k_.kquant ? kQ8KABytes : kQ8ABytes); }
  const QuantKind& k_;
  int64_t nb_;
  AlignedBytes w_;
};

class FloatMatrix final : public Matrix {
 public:
  FloatMatrix(uint32_t type, const void* data, int64_t rows, int64_t cols) : Matrix(type, rows, cols, data), w_(data) {}

  InputFormat input_format() const override {
    return type_ == F16 ? InputFormat::F16R : type_ == BF16 ? InputFormat::BF16R : InputFormat::F32;
  }
  size_t input_bytes(int64_t n) const override { return size_t(n * cols_) * sizeof(float); }
  // As ggml (whose vec_dot_type for F16 / BF16 weights is F16 / BF16), the activations
  // are rounded to the weights' precision (nearest, ties to even) before the products;
  // they stay floats so that the kernels read them as they are.
  void quantize_input(const float* x, int64_t n, void* xq) const override {
    const int64_t total = n * cols_;
    float* out = static_cast<float*>(xq);
    if (type_ == F16)
      kernels().round_f16(x, out, total);
    else if (type_ == BF16)
      for (int64_t i = 0; i < total; i++) out[i] = round_to_bf16(x[i]);
    else
      std::memcpy(xq, x, size_t(total) * sizeof(float));
  }
  void mul(const void* xq, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) const override {
    if (r0 < 0 || r1 > rows_ || r0 > r1)
      throw sparrow_error("ERR_INTERNAL", "Matrix::mul: row range out of range");
    const Kernels& k = kernels();
    FMatMulFn fn = type_ == F32 ? k.mm_f32 : type_ == F16 ? k.mm_f16 : k.mm_bf16;
    if (r0 < r1 && n > 0) fn(w_, cols_, static_cast<const float*>(xq), n, y, ldy, r0, r1);
  }
  void get_row(int64_t r, float* out) const override {
    size_t elem = type_ == F32 ? 4 : 2;
    dequantize_row(type_, static_cast<const uint8_t*>(w_) + size_t(r * cols_) * elem, out, cols_);
  }

 private:
  const void* w_;
};

}  // namespace

std::unique_ptr<Matrix> make_matrix(uint32_t type, const void* data, int64_t rows, int64_t cols, const char* name,
                                    const ParallelFor& par) {
  if (!quant_supported(type))
    throw sparrow_error("ERR_UNSUPPORTED_TYPE", std::string("tensor '") + name + "' has type " + type_name(type) +
                                                    ", which sparrow-llm cannot compute with (supported: F32, F16, "
                                                    "BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, "
                                                    "Q6_K, IQ4_NL, IQ4_XS, MXFP4)");
  if (rows <= 0 || cols <= 0 || cols % quant_block_size(type) != 0)
    throw sparrow_error("ERR_BAD_TENSOR_SHAPE", std::string("tensor '") + name + "' of type " + type_name(type) +
                                                    " has " + std::to_string(cols) +
                                                    " columns, not a positive multiple of its block size " +
                                                    std::to_string(quant_block_size(type)));
  if (const QuantKind* k = quant_kind(type))
    return std::make_unique<QuantMatrix>(type, *k, static_cast<const uint8_t*>(data), rows, cols, par);
  return std::make_unique<FloatMatrix>(type, data, rows, cols);
}

std::unique_ptr<Matrix> make_matrix(const GGUFTensor& t, const ParallelFor& par) {
  if (t.ne[2] != 1 || t.ne[3] != 1)
    throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor '" + t.name + "' is not a matrix (" +
                                                    std::to_string(t.n_dims) + " dimensions)");
  return make_matrix(t.type, t.data, t.ne[1], t.ne[0], t.name.c_str(), par);
}

}  // namespace sparrow
