#version 450
// Element-wise operations over n floats, one thread each:
//   0 add:      a[i] += b[i]
//   1 scale:    a[i] *= s
//   2 add_bias: a[i] += b[i % width]
//   3 swiglu:   o[i] = silu(a[i]) * b[i]
//   4 geglu:    o[i] = gelu(a[i]) * b[i] (tanh approximation, through f16 as ggml's CPU)
//   5 softcap:  a[i] = s * tanh(a[i] / s)
//   6 gather:   o[r][c] = a[idx(r)][c]            (b: per row r, {idx as int bits, weight})
//   7 scatter:  a[idx(r)][c] += weight(r) * o[r][c]
//   8 zero:     a[i] = 0
//   9 swiglu_oai: o[i] = x sigmoid(1.702 x) (y + 1), x = min(a[i], 7), y = clamp(b[i], -7, 7)
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, set = 0, binding = 0) buffer Ab { float a[]; };
layout(std430, set = 0, binding = 1) readonly buffer Bb { float b[]; };
layout(std430, set = 0, binding = 2) buffer Ob { float o[]; };
layout(push_constant) uniform PC {
  uint op;
  uint n;
  uint width;
  float s;
} pc;

void main() {
  uint i = wg_linear() * WG + gl_LocalInvocationID.x;
  if (i >= pc.n) return;
  switch (pc.op) {
    case 0u: a[i] += b[i]; break;
    case 1u: a[i] *= pc.s; break;
    case 2u: a[i] += b[i % pc.width]; break;
    case 3u: {
      float g = a[i];
      o[i] = g / (1.0 + exp(-g)) * b[i];
      break;
    }
    case 4u: {
      float x = a[i], g = round_f16(x);
      float r;
      if (x <= -10.0) r = 0.0;
      else if (x >= 10.0) r = x;
      else r = round_f16(0.5 * g * (1.0 + tanh(0.7978845608028654 * g * (1.0 + 0.044715 * g * g))));
      o[i] = r * b[i];
      break;
    }
    case 5u: a[i] = tanh(a[i] * (1.0 / pc.s)) * pc.s; break;
    case 6u: {
      uint r = i / pc.width, c = i % pc.width;
      o[i] = a[uint(floatBitsToInt(b[2u * r])) * pc.width + c];
      break;
    }
    case 7u: {
      uint r = i / pc.width, c = i % pc.width;
      uint dst = uint(floatBitsToInt(b[2u * r])) * pc.width + c;
      a[dst] += b[2u * r + 1u] * o[i];
      break;
    }
    case 8u: a[i] = 0.0; break;
    case 9u: {
      float x = min(a[i], 7.0), y = clamp(b[i], -7.0, 7.0);
      o[i] = x / (1.0 + exp(-1.702 * x)) * (y + 1.0);
      break;
    }
  }
}
