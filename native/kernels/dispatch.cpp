#include "kernels.h"

namespace sparrow {

namespace {
const Kernels kGeneric = {Isa::Generic, sp_dot_f32_generic};
#ifdef SPARROW_HAVE_X86_KERNELS
const Kernels kAvx2 = {Isa::AVX2, sp_dot_f32_avx2};
const Kernels kAvx512 = {Isa::AVX512, sp_dot_f32_avx512};
#endif
#ifdef SPARROW_HAVE_NEON_KERNELS
const Kernels kNeon = {Isa::NEON, sp_dot_f32_neon};
#endif
}  // namespace

const Kernels& kernels_for(Isa isa) {
  switch (isa) {
#ifdef SPARROW_HAVE_X86_KERNELS
    case Isa::AVX2: return kAvx2;
    case Isa::AVX512: return kAvx512;
#endif
#ifdef SPARROW_HAVE_NEON_KERNELS
    case Isa::NEON: return kNeon;
#endif
    default: return kGeneric;
  }
}

}  // namespace sparrow
