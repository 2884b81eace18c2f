// Run-time choice of the SIMD path. The kernels of each ISA live in their own folder,
// compiled with that ISA's flags only (kernels/<isa>/*.cpp: extern "C", no STL, no
// shared inline code). The dispatcher picks the best one this CPU supports; tests and
// users can force another one with setIsa() / the SPARROW_ISA environment variable.
#pragma once

namespace sparrow {

enum class Isa : int { Generic = 0, AVX2 = 1, AVX512 = 2, NEON = 3 };

const char* isa_name(Isa isa);               // "generic", "avx2", "avx512", "neon"
bool isa_from_name(const char* name, Isa* out);
bool isa_compiled(Isa isa);                  // this binary has kernels for it
bool isa_supported(Isa isa);                 // compiled, and the CPU can run it
Isa best_isa();                              // the fastest supported one
Isa current_isa();
// Switches the kernel path for the whole process; returns false (and changes nothing)
// when the path is not supported here.
bool set_isa(Isa isa);

// CPU features as detected, for systemInfo().
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool neon = false, dotprod = false;
};
const CpuFeatures& cpu_features();

}  // namespace sparrow
