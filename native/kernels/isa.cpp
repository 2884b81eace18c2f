#include "isa.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace sparrow {

namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__GNUC__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.f16c = __builtin_cpu_supports("f16c");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
#endif
#elif defined(__aarch64__)
  f.neon = true;
#if defined(__linux__)
  unsigned long hw = getauxval(AT_HWCAP);
  f.dotprod = (hw & (1UL << 20)) != 0;  // HWCAP_ASIMDDP
#elif defined(__APPLE__)
  f.dotprod = true;  // every Apple arm64 CPU has it
#endif
#endif
  return f;
}

std::atomic<int> g_isa{-1};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Generic: return "generic";
    case Isa::AVX2: return "avx2";
    case Isa::AVX512: return "avx512";
    case Isa::NEON: return "neon";
  }
  return "unknown";
}

bool isa_from_name(const char* name, Isa* out) {
  for (Isa i : {Isa::Generic, Isa::AVX2, Isa::AVX512, Isa::NEON})
    if (std::strcmp(name, isa_name(i)) == 0) {
      *out = i;
      return true;
    }
  return false;
}

bool isa_compiled(Isa isa) {
  switch (isa) {
    case Isa::Generic: return true;
#ifdef SPARROW_HAVE_X86_KERNELS
    case Isa::AVX2: case Isa::AVX512: return true;
#endif
#ifdef SPARROW_HAVE_NEON_KERNELS
    case Isa::NEON: return true;
#endif
    default: return false;
  }
}

bool isa_supported(Isa isa) {
  if (!isa_compiled(isa)) return false;
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::Generic: return true;
    case Isa::AVX2: return f.avx2 && f.fma && f.f16c;
    case Isa::AVX512: return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.avx2 && f.fma && f.f16c;
    case Isa::NEON: return f.neon && f.dotprod;
  }
  return false;
}

Isa best_isa() {
  for (Isa i : {Isa::AVX512, Isa::AVX2, Isa::NEON})
    if (isa_supported(i)) return i;
  return Isa::Generic;
}

Isa current_isa() {
  int v = g_isa.load(std::memory_order_relaxed);
  if (v < 0) {
    Isa pick = best_isa();
    if (const char* env = std::getenv("SPARROW_ISA")) {
      Isa forced;
      if (isa_from_name(env, &forced) && isa_supported(forced)) pick = forced;
    }
    g_isa.store(int(pick));
    return pick;
  }
  return Isa(v);
}

bool set_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  g_isa.store(int(isa));
  return true;
}

}  // namespace sparrow
