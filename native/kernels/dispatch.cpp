// One kernel table per ISA. An entry an ISA has no fast kernel for would point to the
// generic twin, or (AVX-512) to the AVX2 kernel, which every AVX-512 CPU runs; today
// every table has its own kernel for every entry.
#include "kernels.h"

namespace sparrow {

namespace {
// Field order: isa, dot_f32, mm_q4_0, mm_q8_0, mm_q4_k, mm_q5_k, mm_q6_k, mm_f32, mm_f16,
// mm_bf16, dot_f16_f32, axpy_f16, quantize_q8a, quantize_q8ka, f32_to_f16, f16_to_f32,
// round_f16, pv_f16, then mm_q4_1, mm_q5_0, mm_q5_1, mm_iq4_nl, mm_mxfp4, mm_iq4_xs, mm_q2_k, mm_q3_k.
const Kernels kGeneric = {Isa::Generic, sp_dot_f32_generic, sp_mm_q4_0_generic, sp_mm_q8_0_generic,
                       sp_mm_q4_k_generic, sp_mm_q5_k_generic, sp_mm_q6_k_generic, sp_mm_f32_generic,
                       sp_mm_f16_generic, sp_mm_bf16_generic, sp_dot_f16_f32_generic, sp_axpy_f16_generic,
                          sp_quantize_q8a_generic, sp_quantize_q8ka_generic,
                          sp_f32_to_f16_generic, sp_f16_to_f32_generic, sp_round_f16_generic,
                       sp_pv_f16_generic,
                       sp_mm_q4_1_generic, sp_mm_q5_0_generic, sp_mm_q5_1_generic, sp_mm_iq4_nl_generic, sp_mm_mxfp4_generic, sp_mm_iq4_xs_generic,
                       sp_mm_q2_k_generic, sp_mm_q3_k_generic};
#ifdef SPARROW_HAVE_X86_KERNELS
const Kernels kAvx2 = {Isa::AVX2, sp_dot_f32_avx2, sp_mm_q4_0_avx2, sp_mm_q8_0_avx2,
                       sp_mm_q4_k_avx2, sp_mm_q5_k_avx2, sp_mm_q6_k_avx2, sp_mm_f32_avx2,
                       sp_mm_f16_avx2, sp_mm_bf16_avx2, sp_dot_f16_f32_avx2, sp_axpy_f16_avx2,
                       sp_quantize_q8a_avx2, sp_quantize_q8ka_avx2,
                       sp_f32_to_f16_avx2, sp_f16_to_f32_avx2, sp_round_f16_avx2,
                       sp_pv_f16_avx2,
                       sp_mm_q4_1_avx2, sp_mm_q5_0_avx2, sp_mm_q5_1_avx2, sp_mm_iq4_nl_avx2, sp_mm_mxfp4_avx2, sp_mm_iq4_xs_avx2,
                       sp_mm_q2_k_avx2, sp_mm_q3_k_avx2};
const Kernels kAvx512 = {Isa::AVX512, sp_dot_f32_avx512, sp_mm_q4_0_avx512, sp_mm_q8_0_avx512,
                         sp_mm_q4_k_avx512, sp_mm_q5_k_avx512, sp_mm_q6_k_avx512, sp_mm_f32_avx512,
                         sp_mm_f16_avx512, sp_mm_bf16_avx512, sp_dot_f16_f32_avx512, sp_axpy_f16_avx512,
                         sp_quantize_q8a_avx512, sp_quantize_q8ka_avx512,
                         sp_f32_to_f16_avx512, sp_f16_to_f32_avx512, sp_round_f16_avx512,
                         sp_pv_f16_avx512,
                         sp_mm_q4_1_avx512, sp_mm_q5_0_avx512, sp_mm_q5_1_avx512, sp_mm_iq4_nl_avx512, sp_mm_mxfp4_avx512,
                         sp_mm_iq4_xs_avx512, sp_mm_q2_k_avx512, sp_mm_q3_k_avx512};
#endif
#ifdef SPARROW_HAVE_NEON_KERNELS
const Kernels kNeon = {Isa::NEON, sp_dot_f32_neon, sp_mm_q4_0_neon, sp_mm_q8_0_neon,
                       sp_mm_q4_k_neon, sp_mm_q5_k_neon, sp_mm_q6_k_neon, sp_mm_f32_neon,
                       sp_mm_f16_neon, sp_mm_bf16_neon, sp_dot_f16_f32_neon, sp_axpy_f16_neon,
                       sp_quantize_q8a_neon, sp_quantize_q8ka_neon,
                       sp_f32_to_f16_neon, sp_f16_to_f32_neon, sp_round_f16_neon,
                       sp_pv_f16_neon,
                       sp_mm_q4_1_neon, sp_mm_q5_0_neon, sp_mm_q5_1_neon, sp_mm_iq4_nl_neon, sp_mm_mxfp4_neon, sp_mm_iq4_xs_neon,
                       sp_mm_q2_k_neon, sp_mm_q3_k_neon};
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
