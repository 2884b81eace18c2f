#version 450
// out[r] = x[src(r)] / rms(x[src(r)]) * w, one workgroup per row. src(r) is r, or sel[r]
// when a selection is given (the rows whose logits are read). In place (x == out) is
// allowed: every thread reads its values before the barrier and writes after it.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, set = 0, binding = 0) buffer Xb { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Wb { float wt[]; };
layout(std430, set = 0, binding = 2) buffer Ob { float o[]; };
layout(std430, set = 0, binding = 3) readonly buffer Sb { int sel[]; };
layout(push_constant) uniform PC {
  uint width;
  uint rows;
  float eps;
  uint use_sel;
} pc;
shared float red[WG];

void main() {
  uint r = wg_linear();
  if (r >= pc.rows) return;
  uint tid = gl_LocalInvocationID.x;
  uint src = (pc.use_sel != 0u ? uint(sel[r]) : r) * pc.width, dst = r * pc.width;
  float s = 0.0;
  for (uint i = tid; i < pc.width; i += WG) s += x[src + i] * x[src + i];
  red[tid] = s;
  barrier();
  for (uint k = WG / 2; k > 0u; k >>= 1) {
    if (tid < k) red[tid] += red[tid + k];
    barrier();
  }
  float scale = 1.0 / sqrt(red[0] / float(pc.width) + pc.eps);
  for (uint i = tid; i < pc.width; i += WG) o[dst + i] = (x[src + i] * scale) * wt[i];
}
