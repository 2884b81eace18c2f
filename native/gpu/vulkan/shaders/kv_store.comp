#version 450
// Writes the keys and values of n tokens (rows t0.. of k and v, kvd floats each) to one
// layer of a sequence's device cache at positions pos0.., rounded as the host cache would
// store them: to f16, or (q8 != 0) through Q8_0 blocks of 32 with an f16 scale. One
// thread per block of 32 values (F16: per value).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;
layout(std430, set = 0, binding = 0) readonly buffer Kb { float k[]; };
layout(std430, set = 0, binding = 1) readonly buffer Vb { float v[]; };
layout(std430, set = 0, binding = 2) buffer KCb { float kc[]; };
layout(std430, set = 0, binding = 3) buffer VCb { float vc[]; };
layout(push_constant) uniform PC {
  uint kvd;
  uint n;
  uint t0;
  uint pos0;
  uint q8;
} pc;

void q8_block(uint src, uint dst, bool is_k) {
  float amax = 0.0;
  for (uint i = 0u; i < 32u; i++) amax = max(amax, abs(is_k ? k[src + i] : v[src + i]));
  float d = amax / 127.0, id = d != 0.0 ? 1.0 / d : 0.0;
  float dh = round_f16(d);
  for (uint i = 0u; i < 32u; i++) {
    float xv = is_k ? k[src + i] : v[src + i];
    float t = xv * id;
    float q = sign(t) * floor(abs(t) + 0.5);  // lround: halves away from zero
    if (is_k) kc[dst + i] = q * dh;
    else vc[dst + i] = q * dh;
  }
}

void main() {
  uint id = wg_linear() * WG + gl_LocalInvocationID.x;
  if (pc.q8 != 0u) {
    uint nb = pc.kvd / 32u;
    if (id >= pc.n * nb) return;
    uint t = id / nb, b = id % nb;
    uint src = (pc.t0 + t) * pc.kvd + b * 32u, dst = (pc.pos0 + t) * pc.kvd + b * 32u;
    q8_block(src, dst, true);
    q8_block(src, dst, false);
    return;
  }
  if (id >= pc.n * pc.kvd) return;
  uint t = id / pc.kvd, c = id % pc.kvd;
  kc[(pc.pos0 + t) * pc.kvd + c] = round_f16(k[(pc.t0 + t) * pc.kvd + c]);
  vc[(pc.pos0 + t) * pc.kvd + c] = round_f16(v[(pc.t0 + t) * pc.kvd + c]);
}
