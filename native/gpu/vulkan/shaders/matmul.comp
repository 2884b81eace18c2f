#version 450
// y[t][row0 + r] = sum_c W[r][c] x[t][c] for the rows of one weight chunk and a tile of up
// to TILE tokens (decode: a GEMV; prompts reuse each dequantized weight block for TILE
// tokens). Two forms: REDUCE (GPUs): a workgroup per output row, its threads over
// consecutive blocks (coalesced reads), summed by a tree in shared memory; else (CPU-type
// devices such as lavapipe, whose barriers are slow): one thread per output row, no shared
// memory and no barrier. The weights are the GGUF blocks as stored in the file,
// read as 32-bit words; WTYPE_* picks the block format (one SPIR-V per type and form). The
// sums run in one fixed order whatever the tile, so a token's result does not depend on the
// tokens it is batched with.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, set = 0, binding = 0) readonly buffer Wb { uint w[]; };
layout(std430, set = 0, binding = 1) readonly buffer Xb { float x[]; };
layout(std430, set = 0, binding = 2) buffer Yb { float y[]; };
layout(push_constant) uniform PC {
  uint rows;       // rows of this chunk
  uint cols;
  uint n;          // tokens
  uint ldy;        // floats per row of y
  uint row0;       // first output column of this chunk
  uint row_bytes;  // bytes of one weight row
  uint x_stride;   // floats per row of x
} pc;
#define TILE 8
#ifdef REDUCE
shared float red[TILE][WG];
#endif

uint byte_at(uint off) { return (w[off >> 2] >> ((off & 3u) << 3)) & 0xFFu; }
uint u16_at(uint off) { return byte_at(off) | (byte_at(off + 1u) << 8); }
float f16_at(uint off) { return unpackHalf2x16(u16_at(off)).x; }
int i8_at(uint off) { return int(byte_at(off) << 24) >> 24; }

#if defined(WTYPE_F32) || defined(WTYPE_F16) || defined(WTYPE_BF16)
#define FLOAT_WEIGHTS 1
#else
// The 32 weights of unit u (a block of 32, or a 32-wide sub-block of a 256 super-block)
// of the row starting at byte rb.
void dequant32(uint rb, uint u, out float v[32]) {
#if defined(WTYPE_Q8_0)
  uint o = rb + u * 34u;
  float d = f16_at(o);
  for (uint i = 0u; i < 32u; i++) v[i] = d * float(i8_at(o + 2u + i));
#elif defined(WTYPE_Q4_0)
  uint o = rb + u * 18u;
  float d = f16_at(o);
  for (uint i = 0u; i < 16u; i++) {
    uint q = byte_at(o + 2u + i);
    v[i] = d * (float(q & 15u) - 8.0);
    v[i + 16u] = d * (float(q >> 4) - 8.0);
  }
#elif defined(WTYPE_Q4_1)
  uint o = rb + u * 20u;
  float d = f16_at(o), m = f16_at(o + 2u);
  for (uint i = 0u; i < 16u; i++) {
    uint q = byte_at(o + 4u + i);
    v[i] = d * float(q & 15u) + m;
    v[i + 16u] = d * float(q >> 4) + m;
  }
#elif defined(WTYPE_Q5_0)
  uint o = rb + u * 22u;
  float d = f16_at(o);
  uint qh = byte_at(o + 2u) | (byte_at(o + 3u) << 8) | (byte_at(o + 4u) << 16) | (byte_at(o + 5u) << 24);
  for (uint i = 0u; i < 16u; i++) {
    uint q = byte_at(o + 6u + i);
    v[i] = d * (float((q & 15u) | (((qh >> i) & 1u) << 4)) - 16.0);
    v[i + 16u] = d * (float((q >> 4) | (((qh >> (i + 16u)) & 1u) << 4)) - 16.0);
  }
#elif defined(WTYPE_Q5_1)
  uint o = rb + u * 24u;
  float d = f16_at(o), m = f16_at(o + 2u);
  uint qh = byte_at(o + 4u) | (byte_at(o + 5u) << 8) | (byte_at(o + 6u) << 16) | (byte_at(o + 7u) << 24);
  for (uint i = 0u; i < 16u; i++) {
    uint q = byte_at(o + 8u + i);
    v[i] = d * float((q & 15u) | (((qh >> i) & 1u) << 4)) + m;
    v[i + 16u] = d * float((q >> 4) | (((qh >> (i + 16u)) & 1u) << 4)) + m;
  }
#elif defined(WTYPE_Q4_K) || defined(WTYPE_Q5_K)
#if defined(WTYPE_Q4_K)
  uint o = rb + (u >> 3) * 144u;
#else
  uint o = rb + (u >> 3) * 176u;
#endif
  uint j = u & 7u;
  float d = f16_at(o), dmin = f16_at(o + 2u);
  uint s = o + 4u;  // 12 bytes of 6-bit scales and mins
  uint sc, m;
  if (j < 4u) {
    sc = byte_at(s + j) & 63u;
    m = byte_at(s + j + 4u) & 63u;
  } else {
    sc = (byte_at(s + j + 4u) & 15u) | ((byte_at(s + j - 4u) >> 6) << 4);
    m = (byte_at(s + j + 4u) >> 4) | ((byte_at(s + j) >> 6) << 4);
  }
  float dl = d * float(sc), ml = dmin * float(m);
#if defined(WTYPE_Q4_K)
  uint qs = o + 16u + 32u * (j >> 1);
  uint sh = 4u * (j & 1u);
  for (uint i = 0u; i < 32u; i++) v[i] = dl * float((byte_at(qs + i) >> sh) & 15u) - ml;
#else
  uint qh = o + 16u, qs = o + 48u + 32u * (j >> 1);
  uint sh = 4u * (j & 1u);
  for (uint i = 0u; i < 32u; i++)
    v[i] = dl * float(((byte_at(qs + i) >> sh) & 15u) | (((byte_at(qh + i) >> j) & 1u) << 4)) - ml;
#endif
#elif defined(WTYPE_Q6_K)
  uint o = rb + (u >> 3) * 210u;
  uint j = u & 7u, half_ = j >> 2, g = j & 3u;
  float d = f16_at(o + 208u);
  uint ql = o + 64u * half_ + 32u * (g & 1u), qh = o + 128u + 32u * half_;
  uint lsh = 4u * (g >> 1), hsh = 2u * g;
  for (uint i = 0u; i < 32u; i++) {
    int q = int(((byte_at(ql + i) >> lsh) & 15u) | (((byte_at(qh + i) >> hsh) & 3u) << 4)) - 32;
    float sc = float(i8_at(o + 192u + 8u * half_ + (i >> 4) + 2u * g));
    v[i] = d * sc * float(q);
  }
#elif defined(WTYPE_IQ4_NL) || defined(WTYPE_MXFP4)
#if defined(WTYPE_IQ4_NL)
  const float table[16] = float[16](-127., -104., -83., -65., -49., -35., -22., -10., 1., 13., 25., 38., 53., 69., 89., 113.);
  uint o = rb + u * 18u;
  float d = f16_at(o);
  uint qs = o + 2u;
#else
  const float table[16] = float[16](0., 1., 2., 3., 4., 6., 8., 12., 0., -1., -2., -3., -4., -6., -8., -12.);
  uint o = rb + u * 17u;
  uint e = byte_at(o);
  float d = uintBitsToFloat(e < 2u ? (0x00200000u << e) : ((e - 1u) << 23));  // 2^(e-128)
  uint qs = o + 1u;
#endif
  for (uint i = 0u; i < 16u; i++) {
    uint q = byte_at(qs + i);
    v[i] = d * table[q & 15u];
    v[i + 16u] = d * table[q >> 4];
  }
#elif defined(WTYPE_Q2_K)
  uint o = rb + (u >> 3) * 84u, j32 = u & 7u;
  float d = f16_at(o + 80u), dmin = f16_at(o + 82u);
  for (uint k = 0u; k < 32u; k++) {
    uint i = 32u * j32 + k;
    uint sc = byte_at(o + i / 16u);
    uint q = (byte_at(o + 16u + 32u * (i / 128u) + i % 32u) >> (2u * ((i / 32u) % 4u))) & 3u;
    v[k] = d * float(sc & 15u) * float(q) - dmin * float(sc >> 4);
  }
#elif defined(WTYPE_Q3_K)
  uint o = rb + (u >> 3) * 110u, j32 = u & 7u;
  float d = f16_at(o + 108u);
  for (uint k = 0u; k < 32u; k++) {
    uint i = 32u * j32 + k, j = i / 16u;
    int s = int(((byte_at(o + 96u + j % 8u) >> (4u * (j / 8u))) & 15u) | (((byte_at(o + 104u + j % 4u) >> (2u * (j / 4u))) & 3u) << 4)) - 32;
    uint lo = (byte_at(o + 32u + 32u * (i / 128u) + i % 32u) >> (2u * ((i / 32u) % 4u))) & 3u;
    uint hi = (byte_at(o + i % 32u) >> (i / 32u)) & 1u;
    v[k] = d * float(s) * float(int(lo | (hi << 2)) - 4);
  }
#elif defined(WTYPE_IQ4_XS)
  const float table[16] = float[16](-127., -104., -83., -65., -49., -35., -22., -10., 1., 13., 25., 38., 53., 69., 89., 113.);
  uint o = rb + (u >> 3) * 136u, j = u & 7u;
  float d = f16_at(o);
  uint ls = ((byte_at(o + 4u + j / 2u) >> (4u * (j % 2u))) & 15u) | (((u16_at(o + 2u) >> (2u * j)) & 3u) << 4);
  float dl = d * float(int(ls) - 32);
  for (uint i = 0u; i < 16u; i++) {
    uint q = byte_at(o + 8u + 16u * j + i);
    v[i] = dl * table[q & 15u];
    v[i + 16u] = dl * table[q >> 4];
  }
#else
#error "unknown weight type"
#endif
}
#endif

#ifdef REDUCE
void main() {
  uint r = wg_linear();
  if (r >= pc.rows) return;  // the whole workgroup leaves together
  uint tid = gl_LocalInvocationID.x;
  uint t0 = gl_WorkGroupID.y * TILE;
  uint nt = min(uint(TILE), pc.n - t0);
  float acc[TILE];
  for (uint t = 0u; t < TILE; t++) acc[t] = 0.0;
  uint rb = r * pc.row_bytes;
#ifdef FLOAT_WEIGHTS
  for (uint c = tid; c < pc.cols; c += WG) {
#if defined(WTYPE_F32)
    float wv = uintBitsToFloat(w[(rb >> 2) + c]);
#elif defined(WTYPE_F16)
    float wv = f16_at(rb + 2u * c);
#else
    float wv = uintBitsToFloat(u16_at(rb + 2u * c) << 16);
#endif
    for (uint t = 0u; t < nt; t++) {
      float xv = x[(t0 + t) * pc.x_stride + c];
#if defined(WTYPE_F16)
      xv = round_f16(xv);  // as the CPU (and ggml): activations rounded to the weights' f16
#elif defined(WTYPE_BF16)
      uint b = floatBitsToUint(xv);
      b = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
      xv = uintBitsToFloat(b);
#endif
      acc[t] += wv * xv;
    }
  }
#else
  uint units = pc.cols / 32u;
  for (uint u = tid; u < units; u += WG) {
    float v[32];
    dequant32(rb, u, v);
    for (uint t = 0u; t < nt; t++) {
      uint xo = (t0 + t) * pc.x_stride + u * 32u;
      float s = 0.0;
      for (uint i = 0u; i < 32u; i++) s += v[i] * x[xo + i];
      acc[t] += s;
    }
  }
#endif
  for (uint t = 0u; t < TILE; t++) red[t][tid] = acc[t];
  barrier();
  for (uint s = WG / 2; s > 0u; s >>= 1) {
    if (tid < s)
      for (uint t = 0u; t < TILE; t++) red[t][tid] += red[t][tid + s];
    barrier();
  }
  if (tid < nt) y[(t0 + tid) * pc.ldy + pc.row0 + r] = red[tid][0];
}
#else
void main() {
  uint r = wg_linear() * WG + gl_LocalInvocationID.x;
  if (r >= pc.rows) return;
  uint t0 = gl_WorkGroupID.y * TILE;
  uint nt = min(uint(TILE), pc.n - t0);
  float acc[TILE];
  for (uint t = 0u; t < TILE; t++) acc[t] = 0.0;
  uint rb = r * pc.row_bytes;
#ifdef FLOAT_WEIGHTS
  for (uint c = 0u; c < pc.cols; c++) {
#if defined(WTYPE_F32)
    float wv = uintBitsToFloat(w[(rb >> 2) + c]);
#elif defined(WTYPE_F16)
    float wv = f16_at(rb + 2u * c);
#else
    float wv = uintBitsToFloat(u16_at(rb + 2u * c) << 16);
#endif
    for (uint t = 0u; t < nt; t++) {
      float xv = x[(t0 + t) * pc.x_stride + c];
#if defined(WTYPE_F16)
      xv = round_f16(xv);  // as the CPU (and ggml): activations rounded to the weights' f16
#elif defined(WTYPE_BF16)
      uint b = floatBitsToUint(xv);
      b = (b + 0x7FFFu + ((b >> 16) & 1u)) & 0xFFFF0000u;
      xv = uintBitsToFloat(b);
#endif
      acc[t] += wv * xv;
    }
  }
#else
  uint units = pc.cols / 32u;
  for (uint u = 0u; u < units; u++) {
    float v[32];
    dequant32(rb, u, v);
    for (uint t = 0u; t < nt; t++) {
      uint xo = (t0 + t) * pc.x_stride + u * 32u;
      float s = 0.0;
      for (uint i = 0u; i < 32u; i++) s += v[i] * x[xo + i];
      acc[t] += s;
    }
  }
#endif
  for (uint t = 0u; t < nt; t++) y[(t0 + t) * pc.ldy + pc.row0 + r] = acc[t];
}
#endif
