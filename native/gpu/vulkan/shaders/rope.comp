#version 450
// Rotates the first rope_dim values of every head of every row, one thread per pair. The
// cos/sin of each row's pairs come from the host (cs: rows x rope_dim/2 x {cos, sin}),
// computed exactly as the CPU backend does. Rows start at row_off (a cache region).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, set = 0, binding = 0) buffer Xb { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Cb { float cs[]; };
layout(push_constant) uniform PC {
  uint width;
  uint n_heads;
  uint head_dim;
  uint rope_dim;
  uint neox;
  uint rows;
  uint row_off;
  uint round16;  // 1: the results rounded to f16 (keys of an F16 cache)
} pc;

void main() {
  uint half_ = pc.rope_dim / 2u;
  uint id = wg_linear() * WG + gl_LocalInvocationID.x;
  if (id >= pc.rows * pc.n_heads * half_) return;
  uint i = id % half_, h = (id / half_) % pc.n_heads, r = id / (half_ * pc.n_heads);
  uint base = (pc.row_off + r) * pc.width + h * pc.head_dim;
  uint ia = pc.neox != 0u ? i : 2u * i, ib = pc.neox != 0u ? i + half_ : 2u * i + 1u;
  float c = cs[(r * half_ + i) * 2u], s = cs[(r * half_ + i) * 2u + 1u];
  float x0 = x[base + ia], x1 = x[base + ib];
  float y0 = x0 * c - x1 * s, y1 = x0 * s + x1 * c;
  if (pc.round16 != 0u) {
    y0 = round_f16(y0);
    y1 = round_f16(y1);
  }
  x[base + ia] = y0;
  x[base + ib] = y1;
}
