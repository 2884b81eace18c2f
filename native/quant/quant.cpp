// Reference (de)quantizers: plain C++, written for clarity; the kernels' twins and the
// tests are checked against these.
#include "quant.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "fp16.h"

namespace sparrow {

namespace {
enum : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q2_K = 10, Q3_K = 11, Q4_K = 12,
  Q5_K = 13, Q6_K = 14, IQ4_NL = 20, IQ4_XS = 23, BF16 = 30, MXFP4 = 39
};

int nearest(float x) { return int(std::lrintf(x)); }
int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
}  // namespace

bool quant_supported(uint32_t type) {
  switch (type) {
    case F32: case F16: case BF16: case Q4_0: case Q8_0: case Q4_K: case Q5_K: case Q6_K:
    case Q4_1: case Q5_0: case Q5_1: case Q2_K: case Q3_K: case IQ4_NL: case IQ4_XS: case MXFP4: return true;
    default: return false;
  }
}

int64_t quant_block_size(uint32_t type) {
  switch (type) {
    case Q4_0: case Q8_0: case Q4_1: case Q5_0: case Q5_1: case IQ4_NL: case MXFP4: return QK;
    case Q4_K: case Q5_K: case Q6_K: case Q2_K: case Q3_K: case IQ4_XS: return QK_K;
    default: return 1;
  }
}

size_t quant_block_bytes(uint32_t type) {
  switch (type) {
    case F32: return 4;
    case F16: case BF16: return 2;
    case Q4_0: return sizeof(BlockQ4_0);
    case Q8_0: return sizeof(BlockQ8_0);
    case Q4_K: return sizeof(BlockQ4_K);
    case Q5_K: return sizeof(BlockQ5_K);
    case Q6_K: return sizeof(BlockQ6_K);
    case Q4_1: return sizeof(BlockQ4_1);
    case Q5_0: return sizeof(BlockQ5_0);
    case Q5_1: return sizeof(BlockQ5_1);
    case IQ4_NL: return sizeof(BlockIQ4_NL);
    case MXFP4: return sizeof(BlockMXFP4);
    case Q2_K: return sizeof(BlockQ2_K);
    case Q3_K: return sizeof(BlockQ3_K);
    case IQ4_XS: return sizeof(BlockIQ4_XS);
    default: return 0;
  }
}

size_t quant_row_bytes(uint32_t type, int64_t n) {
  return size_t(n / quant_block_size(type)) * quant_block_bytes(type);
}

void kquant_scale_min(const uint8_t s[12], int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = uint8_t((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
    *m = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

// Inverse of kquant_scale_min for all 8 pairs (each value < 64).
static void kquant_pack_scales(const uint8_t sc[8], const uint8_t m[8], uint8_t s[12]) {
  std::memset(s, 0, 12);
  for (int j = 0; j < 4; j++) {
    s[j] = sc[j];
    s[j + 4] = m[j];
  }
  for (int j = 4; j < 8; j++) {
    s[j + 4] = uint8_t((sc[j] & 15) | ((m[j] & 15) << 4));
    s[j - 4] |= uint8_t((sc[j] >> 4) << 6);
    s[j] |= uint8_t((m[j] >> 4) << 6);
  }
}

void unpack_q4_k(const BlockQ4_K& b, uint8_t q[256], uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 8; j++) kquant_scale_min(b.scales, j, &sc[j], &m[j]);
  for (int i = 0; i < 256; i++) {
    uint8_t byte = b.qs[32 * (i / 64) + i % 32];
    q[i] = ((i / 32) & 1) ? byte >> 4 : byte & 15;
  }
}

void unpack_q5_k(const BlockQ5_K& b, uint8_t q[256], uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 8; j++) kquant_scale_min(b.scales, j, &sc[j], &m[j]);
  for (int i = 0; i < 256; i++) {
    uint8_t byte = b.qs[32 * (i / 64) + i % 32];
    uint8_t lo = ((i / 32) & 1) ? byte >> 4 : byte & 15;
    uint8_t hi = (b.qh[i % 32] >> (i / 32)) & 1;
    q[i] = uint8_t(lo | hi << 4);
  }
}

void unpack_q6_k(const BlockQ6_K& b, uint8_t q[256]) {
  for (int i = 0; i < 256; i++) {
    int h = i / 128, k = (i / 32) % 4, l = i % 32;
    uint8_t byte = b.ql[64 * h + 32 * (k & 1) + l];
    uint8_t lo = (k / 2) ? byte >> 4 : byte & 15;
    uint8_t hi = (b.qh[32 * h + l] >> (2 * k)) & 3;
    q[i] = uint8_t(lo | hi << 4);
  }
}

const int8_t kIQ4NL[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
const int8_t kMXFP4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

float e8m0_half(uint8_t e) {
  // 2^(e-128): a normal float for e >= 2 (exponent field e - 1), else a subnormal
  uint32_t bits = e < 2 ? uint32_t(0x00200000) << e : uint32_t(e - 1) << 23;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void unpack_legacy(uint32_t type, const uint8_t* p, uint8_t q[32]) {
  const size_t qs = type == Q4_1 ? offsetof(BlockQ4_1, qs) : type == Q5_0 ? offsetof(BlockQ5_0, qs) : offsetof(BlockQ5_1, qs);
  for (int i = 0; i < 32; i++) q[i] = uint8_t((p[qs + i % 16] >> (4 * (i / 16))) & 15);
  if (type == Q4_1) return;
  uint32_t qh;
  std::memcpy(&qh, p + (type == Q5_0 ? offsetof(BlockQ5_0, qh) : offsetof(BlockQ5_1, qh)), 4);
  for (int i = 0; i < 32; i++) q[i] = uint8_t(q[i] | ((qh >> i) & 1) << 4);
}

static int q3_k_scale(const uint8_t s[12], int j) {
  int lo = (s[j % 8] >> (4 * (j / 8))) & 15, hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return lo | hi << 4;
}

void unpack_small_k(uint32_t type, const uint8_t* p, int8_t v[256], int8_t sc[16], int8_t m[16], float* d,
                    float* dmin) {
  uint16_t h;
  if (type == Q2_K) {
    BlockQ2_K b;
    std::memcpy(&b, p, sizeof(b));
    *d = fp16_to_fp32(b.d), *dmin = fp16_to_fp32(b.dmin);
    for (int j = 0; j < 16; j++) sc[j] = int8_t(b.scales[j] & 15), m[j] = int8_t(b.scales[j] >> 4);
    for (int i = 0; i < 256; i++) v[i] = int8_t((b.qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3);
  } else if (type == Q3_K) {
    BlockQ3_K b;
    std::memcpy(&b, p, sizeof(b));
    *d = fp16_to_fp32(b.d), *dmin = 0;
    for (int j = 0; j < 16; j++) sc[j] = int8_t(q3_k_scale(b.scales, j) - 32), m[j] = 0;
    for (int i = 0; i < 256; i++) {
      int lo = (b.qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3, hi = (b.hmask[i % 32] >> (i / 32)) & 1;
      v[i] = int8_t((lo | hi << 2) - 4);
    }
  } else {  // IQ4_XS
    BlockIQ4_XS b;
    std::memcpy(&b, p, sizeof(b));
    std::memcpy(&h, &b.d, 2);
    *d = fp16_to_fp32(h), *dmin = 0;
    for (int j = 0; j < 8; j++) {
      int ls = ((b.scales_l[j / 2] >> (4 * (j % 2))) & 15) | ((b.scales_h >> (2 * j)) & 3) << 4;
      sc[2 * j] = sc[2 * j + 1] = int8_t(ls - 32);
      m[2 * j] = m[2 * j + 1] = 0;
    }
    for (int i = 0; i < 256; i++) v[i] = kIQ4NL[(b.qs[16 * (i / 32) + i % 16] >> (4 * ((i % 32) / 16))) & 15];
  }
}

void dequantize_row(uint32_t type, const void* src, float* dst, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(src);
  switch (type) {
    case F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case F16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    case BF16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    case Q8_0:
      for (int64_t b = 0; b < n / QK; b++) {
        BlockQ8_0 blk;
        std::memcpy(&blk, p + b * sizeof(blk), sizeof(blk));
        float d = fp16_to_fp32(blk.d);
        for (int i = 0; i < QK; i++) dst[b * QK + i] = d * blk.qs[i];
      }
      return;
    case Q4_0:
      for (int64_t b = 0; b < n / QK; b++) {
        BlockQ4_0 blk;
        std::memcpy(&blk, p + b * sizeof(blk), sizeof(blk));
        float d = fp16_to_fp32(blk.d);
        for (int i = 0; i < QK; i++) dst[b * QK + i] = d * float(((blk.qs[i % 16] >> (4 * (i / 16))) & 15) - 8);
      }
      return;
    case Q4_K:
    case Q5_K:
      for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t q[256], sc[8], m[8];
        float d, dmin;
        if (type == Q4_K) {
          BlockQ4_K blk;
          std::memcpy(&blk, p + b * sizeof(blk), sizeof(blk));
          unpack_q4_k(blk, q, sc, m);
          d = fp16_to_fp32(blk.d), dmin = fp16_to_fp32(blk.dmin);
        } else {
          BlockQ5_K blk;
          std::memcpy(&blk, p + b * sizeof(blk), sizeof(blk));
          unpack_q5_k(blk, q, sc, m);
          d = fp16_to_fp32(blk.d), dmin = fp16_to_fp32(blk.dmin);
        }
        for (int i = 0; i < 256; i++) dst[b * 256 + i] = d * sc[i / 32] * q[i] - dmin * m[i / 32];
      }
      return;
    case Q6_K:
      for (int64_t b = 0; b < n / QK_K; b++) {
        BlockQ6_K blk;
        std::memcpy(&blk, p + b * sizeof(blk), sizeof(blk));
        uint8_t q[256];
        unpack_q6_k(blk, q);
        float d = fp16_to_fp32(blk.d);
        for (int i = 0; i < 256; i++) dst[b * 256 + i] = d * blk.scales[i / 16] * (int(q[i]) - 32);
      }
      return;
    case Q4_1:
    case Q5_0:
    case Q5_1: {
      const size_t bs = quant_block_bytes(type);
      for (int64_t b = 0; b < n / QK; b++) {
        const uint8_t* blk = p + b * bs;
        uint8_t q[32];
        unpack_legacy(type, blk, q);
        uint16_t h;
        std::memcpy(&h, blk, 2);
        const float d = fp16_to_fp32(h);
        std::memcpy(&h, blk + 2, 2);
        const float m = type == Q5_0 ? 0.0f : fp16_to_fp32(h);
        for (int i = 0; i < QK; i++) dst[b * QK + i] = type == Q5_0 ? d * float(int(q[i]) - 16) : d * float(q[i]) + m;
      }
      return;
    }
    case IQ4_NL:
    case MXFP4:
      for (int64_t b = 0; b < n / QK; b++) {
        const uint8_t* blk = p + b * quant_block_bytes(type);
        float d;
        const uint8_t* qs;
        if (type == IQ4_NL) {
          uint16_t h;
          std::memcpy(&h, blk, 2);
          d = fp16_to_fp32(h), qs = blk + offsetof(BlockIQ4_NL, qs);
        } else {
          d = e8m0_half(blk[0]), qs = blk + offsetof(BlockMXFP4, qs);
        }
        const int8_t* table = type == IQ4_NL ? kIQ4NL : kMXFP4;
        for (int i = 0; i < QK; i++) dst[b * QK + i] = d * float(table[(qs[i % 16] >> (4 * (i / 16))) & 15]);
      }
      return;
    case Q2_K:
    case Q3_K:
    case IQ4_XS:
      for (int64_t b = 0; b < n / QK_K; b++) {
        int8_t v[256], sc[16], m[16];
        float d, dmin;
        unpack_small_k(type, p + b * quant_block_bytes(type), v, sc, m, &d, &dmin);
        for (int i = 0; i < 256; i++) dst[b * 256 + i] = d * float(sc[i / 16]) * float(v[i]) - dmin * float(m[i / 16]);
      }
      return;
    default:
      return;
  }
}

// The signed value of largest magnitude of v[0..n) (the first one on ties), and its magnitude.
static float signed_max(const float* v, int n, float* amax_out) {
  float amax = 0, mx = 0;
  for (int i = 0; i < n; i++)
    if (std::fabs(v[i]) > amax) amax = std::fabs(v[i]), mx = v[i];
  if (amax_out) *amax_out = amax;
  return mx;
}

// The index of the codebook entry nearest to x (the first one on ties).
static int nearest_code(const int8_t table[16], float x) {
  int best = 0;
  float err = std::fabs(float(table[0]) - x);
  for (int i = 1; i < 16; i++) {
    float e = std::fabs(float(table[i]) - x);
    if (e < err) best = i, err = e;
  }
  return best;
}

// Q4_1 / Q5_0 / Q5_1 as ggml's reference quantizers: the value is truncated toward
// zero after adding one half (plus the offset), in float.
static void quantize_legacy_block(uint32_t type, const float* v, uint8_t* out) {
  uint8_t q[32];
  uint16_t d16, m16 = 0;
  if (type == Q5_0) {
    const float mx = signed_max(v, QK, nullptr);
    const float d = mx / -16, id = d != 0 ? 1.0f / d : 0.0f;
    d16 = fp32_to_fp16(d);
    for (int i = 0; i < QK; i++) q[i] = uint8_t(std::min(31, int(int8_t(v[i] * id + 16.5f))));
  } else {
    float lo = v[0], hi = v[0];
    for (int i = 1; i < QK; i++) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
    const int levels = type == Q4_1 ? 15 : 31;
    const float d = (hi - lo) / float(levels), id = d != 0 ? 1.0f / d : 0.0f;
    d16 = fp32_to_fp16(d), m16 = fp32_to_fp16(lo);
    for (int i = 0; i < QK; i++) q[i] = uint8_t(std::min(levels, int(uint8_t((v[i] - lo) * id + 0.5f))));
  }
  uint8_t qs[16];
  uint32_t qh = 0;
  for (int i = 0; i < 16; i++) qs[i] = uint8_t((q[i] & 15) | (q[i + 16] & 15) << 4);
  for (int i = 0; i < 32; i++) qh |= uint32_t((q[i] >> 4) & 1) << i;
  std::memcpy(out, &d16, 2);
  if (type == Q4_1) {
    std::memcpy(out + 2, &m16, 2), std::memcpy(out + 4, qs, 16);
  } else if (type == Q5_0) {
    std::memcpy(out + 2, &qh, 4), std::memcpy(out + 6, qs, 16);
  } else {
    std::memcpy(out + 2, &m16, 2), std::memcpy(out + 4, &qh, 4), std::memcpy(out + 8, qs, 16);
  }
}

// K-quants with an offset (Q4_K: 4 bits, Q5_K: 5 bits): per sub-block of 32 a scale and
// a min fitted to [min(0, lo), hi], both quantized to 6 bits against the block's d / dmin.
static void quantize_kquant_block(const float* x, int bits, uint16_t* d16, uint16_t* dmin16,
                                  uint8_t sc[8], uint8_t m[8], uint8_t q[256]) {
  const int levels = (1 << bits) - 1;
  float scale[8], minv[8], max_scale = 0, max_min = 0;
  for (int j = 0; j < 8; j++) {
    float lo = 0, hi = 0;
    for (int i = 0; i < 32; i++) lo = std::min(lo, x[32 * j + i]), hi = std::max(hi, x[32 * j + i]);
    scale[j] = (hi - lo) / levels;
    minv[j] = -lo;
    max_scale = std::max(max_scale, scale[j]);
    max_min = std::max(max_min, minv[j]);
  }
  *d16 = fp32_to_fp16(max_scale / 63);
  *dmin16 = fp32_to_fp16(max_min / 63);
  float d = fp16_to_fp32(*d16), dmin = fp16_to_fp32(*dmin16);
  for (int j = 0; j < 8; j++) {
    sc[j] = uint8_t(d > 0 ? clampi(nearest(scale[j] / d), 0, 63) : 0);
    m[j] = uint8_t(dmin > 0 ? clampi(nearest(minv[j] / dmin), 0, 63) : 0);
    float s = d * sc[j], mm = dmin * m[j];
    for (int i = 0; i < 32; i++) q[32 * j + i] = uint8_t(s > 0 ? clampi(nearest((x[32 * j + i] + mm) / s), 0, levels) : 0);
  }
}

void quantize_row(uint32_t type, const float* x, void* dst, int64_t n) {
  uint8_t* p = static_cast<uint8_t*>(dst);
  switch (type) {
    case F32:
      std::memcpy(dst, x, size_t(n) * 4);
      return;
    case F16:
    case BF16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t h = type == F16 ? fp32_to_fp16(x[i]) : fp32_to_bf16(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case Q8_0:
      for (int64_t b = 0; b < n / QK; b++) {
        const float* v = x + b * QK;
        float amax = 0;
        for (int i = 0; i < QK; i++) amax = std::max(amax, std::fabs(v[i]));
        BlockQ8_0 blk;
        blk.d = fp32_to_fp16(amax / 127);
        float id = amax > 0 ? 127 / amax : 0;
        for (int i = 0; i < QK; i++) blk.qs[i] = int8_t(clampi(nearest(v[i] * id), -127, 127));
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    case Q4_0:
      for (int64_t b = 0; b < n / QK; b++) {
        const float* v = x + b * QK;
        float amax = 0, mx = 0;  // mx: the value of largest magnitude, sign kept
        for (int i = 0; i < QK; i++)
          if (std::fabs(v[i]) > amax) amax = std::fabs(v[i]), mx = v[i];
        BlockQ4_0 blk;
        float d = mx / -8;  // so that mx maps to -8 exactly and the range is [-8, 7]
        blk.d = fp32_to_fp16(d);
        float id = d != 0 ? 1 / d : 0;
        uint8_t q[32];
        for (int i = 0; i < QK; i++) q[i] = uint8_t(clampi(nearest(v[i] * id) + 8, 0, 15));
        for (int i = 0; i < 16; i++) blk.qs[i] = uint8_t(q[i] | q[i + 16] << 4);
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    case Q4_K:
    case Q5_K:
      for (int64_t b = 0; b < n / QK_K; b++) {
        uint8_t sc[8], m[8], q[256];
        uint16_t d, dmin;
        quantize_kquant_block(x + b * 256, type == Q4_K ? 4 : 5, &d, &dmin, sc, m, q);
        if (type == Q4_K) {
          BlockQ4_K blk{};
          blk.d = d, blk.dmin = dmin;
          kquant_pack_scales(sc, m, blk.scales);
          for (int i = 0; i < 256; i++) blk.qs[32 * (i / 64) + i % 32] |= uint8_t(((i / 32) & 1) ? q[i] << 4 : q[i]);
          std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
        } else {
          BlockQ5_K blk{};
          blk.d = d, blk.dmin = dmin;
          kquant_pack_scales(sc, m, blk.scales);
          for (int i = 0; i < 256; i++) {
            uint8_t lo = q[i] & 15;
            blk.qs[32 * (i / 64) + i % 32] |= uint8_t(((i / 32) & 1) ? lo << 4 : lo);
            blk.qh[i % 32] |= uint8_t(((q[i] >> 4) & 1) << (i / 32));
          }
          std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
        }
      }
      return;
    case Q6_K:
      for (int64_t b = 0; b < n / QK_K; b++) {
        const float* v = x + b * 256;
        float scale[16], max_abs_scale = 0, max_scale = 0;
        for (int j = 0; j < 16; j++) {
          float amax = 0, mx = 0;
          for (int i = 0; i < 16; i++)
            if (std::fabs(v[16 * j + i]) > amax) amax = std::fabs(v[16 * j + i]), mx = v[16 * j + i];
          scale[j] = mx / -32;  // as Q4_0: the largest magnitude maps to -32
          if (std::fabs(scale[j]) > max_abs_scale) max_abs_scale = std::fabs(scale[j]), max_scale = scale[j];
        }
        BlockQ6_K blk{};
        blk.d = fp32_to_fp16(max_scale / -128);
        float d = fp16_to_fp32(blk.d);
        for (int j = 0; j < 16; j++) blk.scales[j] = int8_t(d != 0 ? clampi(nearest(scale[j] / d), -128, 127) : 0);
        for (int i = 0; i < 256; i++) {
          float s = d * blk.scales[i / 16];
          int qi = s != 0 ? clampi(nearest(v[i] / s) + 32, 0, 63) : 32;
          int h = i / 128, k = (i / 32) % 4, l = i % 32;
          blk.ql[64 * h + 32 * (k & 1) + l] |= uint8_t((k / 2) ? (qi & 15) << 4 : (qi & 15));
          blk.qh[32 * h + l] |= uint8_t((qi >> 4) << (2 * k));
        }
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    case Q4_1:
    case Q5_0:
    case Q5_1:
      for (int64_t b = 0; b < n / QK; b++) quantize_legacy_block(type, x + b * QK, p + b * quant_block_bytes(type));
      return;
    case IQ4_NL:
      for (int64_t b = 0; b < n / QK; b++) {
        const float* v = x + b * QK;
        BlockIQ4_NL blk;
        const float d = signed_max(v, QK, nullptr) / -127.0f;  // the largest magnitude maps to kIQ4NL[0]
        blk.d = fp32_to_fp16(d);
        const float dd = fp16_to_fp32(blk.d), id = dd != 0 ? 1.0f / dd : 0.0f;
        uint8_t q[32];
        for (int i = 0; i < QK; i++) q[i] = uint8_t(nearest_code(kIQ4NL, v[i] * id));
        for (int i = 0; i < 16; i++) blk.qs[i] = uint8_t(q[i] | q[i + 16] << 4);
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    case MXFP4:
      for (int64_t b = 0; b < n / QK; b++) {
        const float* v = x + b * QK;
        float amax;
        signed_max(v, QK, &amax);
        // as ggml: the exponent puts amax in [4, 8) times the scale, the nearest codes
        // (by absolute error, first on ties) against the unscaled values
        BlockMXFP4 blk;
        blk.e = amax > 0 ? uint8_t(std::floor(std::log2(amax)) - 2 + 127) : 0;
        const float d = e8m0_half(blk.e);
        uint8_t q[32];
        for (int i = 0; i < QK; i++) {
          int best = 0;
          float err = std::fabs(float(kMXFP4[0]) * d - v[i]);
          for (int c = 1; c < 16; c++) {
            float e = std::fabs(float(kMXFP4[c]) * d - v[i]);
            if (e < err) best = c, err = e;
          }
          q[i] = uint8_t(best);
        }
        for (int i = 0; i < 16; i++) blk.qs[i] = uint8_t(q[i] | q[i + 16] << 4);
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    case Q2_K:
      for (int64_t b = 0; b < n / QK_K; b++) {
        const float* v = x + b * QK_K;
        float scale[16], minv[16], max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
          float lo = 0, hi = 0;
          for (int i = 0; i < 16; i++) lo = std::min(lo, v[16 * j + i]), hi = std::max(hi, v[16 * j + i]);
          scale[j] = (hi - lo) / 3, minv[j] = -lo;
          max_scale = std::max(max_scale, scale[j]), max_min = std::max(max_min, minv[j]);
        }
        BlockQ2_K blk{};
        blk.d = fp32_to_fp16(max_scale / 15), blk.dmin = fp32_to_fp16(max_min / 15);
        const float d = fp16_to_fp32(blk.d), dmin = fp16_to_fp32(blk.dmin);
        for (int j = 0; j < 16; j++) {
          int sc = d > 0 ? clampi(nearest(scale[j] / d), 0, 15) : 0, m = dmin > 0 ? clampi(nearest(minv[j] / dmin), 0, 15) : 0;
          blk.scales[j] = uint8_t(sc | m << 4);
          const float s = d * sc, mm = dmin * m;
          for (int i = 0; i < 16; i++) {
            const int e = 16 * j + i, q = s > 0 ? clampi(nearest((v[e] + mm) / s), 0, 3) : 0;
            blk.qs[32 * (e / 128) + e % 32] |= uint8_t(q << (2 * ((e / 32) % 4)));
          }
        }
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    case Q3_K:
      for (int64_t b = 0; b < n / QK_K; b++) {
        const float* v = x + b * QK_K;
        float scale[16], max_scale = 0, amax_scale = 0;
        for (int j = 0; j < 16; j++) {
          scale[j] = signed_max(v + 16 * j, 16, nullptr) / -4;  // the largest magnitude maps to -4
          if (std::fabs(scale[j]) > amax_scale) amax_scale = std::fabs(scale[j]), max_scale = scale[j];
        }
        BlockQ3_K blk{};
        blk.d = fp32_to_fp16(max_scale / -32);
        const float d = fp16_to_fp32(blk.d);
        for (int j = 0; j < 16; j++) {
          const int sc = d != 0 ? clampi(nearest(scale[j] / d), -32, 31) : 0, s6 = sc + 32;
          blk.scales[j % 8] |= uint8_t((s6 & 15) << (4 * (j / 8)));
          blk.scales[8 + j % 4] |= uint8_t((s6 >> 4) << (2 * (j / 4)));
          const float s = d * sc;
          for (int i = 0; i < 16; i++) {
            const int e = 16 * j + i, q = (s != 0 ? clampi(nearest(v[e] / s), -4, 3) : 0) + 4;
            blk.qs[32 * (e / 128) + e % 32] |= uint8_t((q & 3) << (2 * ((e / 32) % 4)));
            blk.hmask[e % 32] |= uint8_t((q >> 2) << (e / 32));
          }
        }
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    case IQ4_XS:
      for (int64_t b = 0; b < n / QK_K; b++) {
        const float* v = x + b * QK_K;
        float scale[8], max_scale = 0, amax_scale = 0;
        for (int j = 0; j < 8; j++) {
          scale[j] = signed_max(v + 32 * j, 32, nullptr) / -127;  // the largest magnitude maps to kIQ4NL[0]
          if (std::fabs(scale[j]) > amax_scale) amax_scale = std::fabs(scale[j]), max_scale = scale[j];
        }
        BlockIQ4_XS blk{};
        blk.d = fp32_to_fp16(max_scale / -32);
        const float d = fp16_to_fp32(blk.d);
        for (int j = 0; j < 8; j++) {
          const int ls = d != 0 ? clampi(nearest(scale[j] / d), -32, 31) : 0, s6 = ls + 32;
          blk.scales_l[j / 2] |= uint8_t((s6 & 15) << (4 * (j % 2)));
          blk.scales_h = uint16_t(blk.scales_h | (s6 >> 4) << (2 * j));
          const float s = d * ls, is = s != 0 ? 1.0f / s : 0.0f;
          for (int i = 0; i < 32; i++) {
            const int q = nearest_code(kIQ4NL, v[32 * j + i] * is);
            blk.qs[16 * j + i % 16] |= uint8_t(q << (4 * (i / 16)));
          }
        }
        std::memcpy(p + b * sizeof(blk), &blk, sizeof(blk));
      }
      return;
    default:
      return;
  }
}

// As ggml's Q8_0 activations: the quants use the unrounded 127 / amax, and the scale is
// stored rounded to fp16 (ggml's block_q8_0 keeps d as fp16), so the products use that
// rounded scale. It is kept here as the float value of that fp16 number, which the
// kernels read as a float.
void quantize_row_q8a(const float* x, BlockQ8A* y, int64_t n) {
  for (int64_t b = 0; b < n / QK; b++) {
    const float* v = x + b * QK;
    float amax = 0;
    for (int i = 0; i < QK; i++) amax = std::max(amax, std::fabs(v[i]));
    float id = amax > 0 ? 127 / amax : 0;
    int sum = 0;
    for (int i = 0; i < QK; i++) {
      int q = clampi(nearest(v[i] * id), -127, 127);
      y[b].qs[i] = int8_t(q);
      sum += q;
    }
    y[b].d = fp16_to_fp32(fp32_to_fp16(amax / 127));
    y[b].sum = sum;
  }
}

void quantize_row_q8ka(const float* x, BlockQ8KA* y, int64_t n) {
  for (int64_t b = 0; b < n / QK_K; b++) {
    const float* v = x + b * QK_K;
    // As ggml's Q8_K: the scale comes from the element of largest magnitude (the first
    // one on ties), sign kept: iscale = -127 / max, q = nearest(iscale * x) (ties to
    // even), d = 1 / iscale. d and the quants then both carry the opposite sign of max,
    // so d * q is the same value as with a positive scale; d = 1 / iscale can differ by
    // an ulp from max / -127, and that ulp is what ggml multiplies by.
    float amax = 0, mx = 0;
    for (int i = 0; i < QK_K; i++) amax = std::max(amax, std::fabs(v[i]));  // vectorizes
    for (int i = 0; i < QK_K; i++)
      if (std::fabs(v[i]) == amax) {
        mx = v[i];
        break;
      }
    const float iscale = amax > 0 ? -127.0f / mx : 0.0f;
    for (int i = 0; i < QK_K; i++) y[b].qs[i] = int8_t(clampi(nearest(iscale * v[i]), -127, 127));
    for (int k = 0; k < 16; k++) {
      int s = 0;
      for (int i = 0; i < 16; i++) s += y[b].qs[16 * k + i];
      y[b].bsums[k] = int16_t(s);
    }
    for (int k = 0; k < 8; k++) y[b].bsums32[k] = int16_t(y[b].bsums[2 * k] + y[b].bsums[2 * k + 1]);
    y[b].d = amax > 0 ? 1.0f / iscale : 0.0f;
  }
}

}  // namespace sparrow
