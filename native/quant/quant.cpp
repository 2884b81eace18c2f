// Reference (de)quantizers: plain C++, written for clarity; the kernels' twins and the
// tests are checked against these.
#include "quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "fp16.h"

namespace sparrow {

namespace {
enum : uint32_t { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8, Q4_K = 12, Q5_K = 13, Q6_K = 14, BF16 = 30 };

int nearest(float x) { return int(std::lrintf(x)); }
int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
}  // namespace

bool quant_supported(uint32_t type) {
  switch (type) {
    case F32: case F16: case BF16: case Q4_0: case Q8_0: case Q4_K: case Q5_K: case Q6_K: return true;
    default: return false;
  }
}

int64_t quant_block_size(uint32_t type) {
  switch (type) {
    case Q4_0: case Q8_0: return QK;
    case Q4_K: case Q5_K: case Q6_K: return QK_K;
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
    default:
      return;
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
