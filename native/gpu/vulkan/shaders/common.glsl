// Shared by every shader: 64 threads a workgroup; a workgroup index spread over x and z
// (dispatches wider than 65535 workgroups use z as the high part).
#define WG 64
uint wg_linear() { return gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x; }
// The f16 value nearest to x, as a float (what an F16 KV cache or f16 activation holds).
float round_f16(float x) { return unpackHalf2x16(packHalf2x16(vec2(x, 0.0))).x; }
