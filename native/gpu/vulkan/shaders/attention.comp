#version 450
// Attention of the n tokens of one sequence (rows t0.., positions pos0..) over its device
// cache, one workgroup per (token, head): the positions in chunks of WG, one score per
// thread, an online softmax (running maximum and sum), and P V accumulated per dimension.
// q is rounded to f16 as the CPU's default route does. Grouped-query heads share a KV
// head; window > 0 limits a token to the last `window` positions; softcap > 0 caps the
// scores with s * tanh(x / s). sinks != 0: the head's sink logit (binding 4) joins the
// softmax's maximum and sum from the start and weighs no value (attention sinks).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, set = 0, binding = 0) readonly buffer Qb { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer KCb { float kc[]; };
layout(std430, set = 0, binding = 2) readonly buffer VCb { float vc[]; };
layout(std430, set = 0, binding = 3) buffer Ob { float o[]; };
layout(std430, set = 0, binding = 4) readonly buffer Sb { float sink[]; };
layout(push_constant) uniform PC {
  uint n_head;
  uint n_head_kv;
  uint head_dim;
  uint t0;
  uint pos0;
  float scale;
  float softcap;
  uint window;
  uint sinks;
} pc;
#define MAX_HD 256
shared float qs[MAX_HD];
shared float acc[MAX_HD];
shared float p[WG];
shared float run_max, run_sum, corr;

void main() {
  uint tid = gl_LocalInvocationID.x;
  uint i = gl_WorkGroupID.x, h = gl_WorkGroupID.y;
  uint hd = pc.head_dim, qw = pc.n_head * hd, kvd = pc.n_head_kv * hd;
  uint row = pc.t0 + i;
  int pos = int(pc.pos0 + i);
  uint kh = h / (pc.n_head / pc.n_head_kv);
  for (uint d = tid; d < hd; d += WG) {
    qs[d] = round_f16(q[row * qw + h * hd + d]);
    acc[d] = 0.0;
  }
  if (tid == 0u) {
    // A sink starts the running maximum at its logit, with exp(sink - sink) = 1 in the sum.
    run_max = pc.sinks != 0u ? sink[h] : -1.0 / 0.0;
    run_sum = pc.sinks != 0u ? 1.0 : 0.0;
  }
  int lo = pc.window > 0u ? max(0, pos - int(pc.window) + 1) : 0;
  barrier();
  for (int c0 = lo; c0 <= pos; c0 += WG) {
    int pp = c0 + int(tid);
    float s = -1.0 / 0.0;
    if (pp <= pos) {
      uint kb = uint(pp) * kvd + kh * hd;
      float dot = 0.0;
      for (uint d = 0u; d < hd; d++) dot += qs[d] * kc[kb + d];
      s = dot * pc.scale;
      if (pc.softcap > 0.0) s = pc.softcap * tanh(s / pc.softcap);
    }
    p[tid] = s;
    barrier();
    if (tid == 0u) {
      float m = run_max;
      for (uint j = 0u; j < WG; j++) m = max(m, p[j]);
      float c = run_max == -1.0 / 0.0 ? 0.0 : exp(run_max - m);
      float add = 0.0;
      for (uint j = 0u; j < WG; j++) {
        float e = p[j] == -1.0 / 0.0 ? 0.0 : exp(p[j] - m);
        p[j] = e;
        add += e;
      }
      run_sum = run_sum * c + add;
      run_max = m;
      corr = c;
    }
    barrier();
    int cnt = min(WG, pos - c0 + 1);
    for (uint d = tid; d < hd; d += WG) {
      float a = acc[d] * corr;
      for (int j = 0; j < cnt; j++) a += p[j] * vc[uint(c0 + j) * kvd + kh * hd + d];
      acc[d] = a;
    }
    barrier();
  }
  for (uint d = tid; d < hd; d += WG) o[row * qw + h * hd + d] = acc[d] / run_sum;
}
