// Quantized block formats and their plain reference (de)quantizers.
//
// Weight blocks follow the GGUF/ggml definitions byte for byte (the structs below are
// written from the format description; static_asserts pin the sizes). Activation
// blocks (BlockQ8A, BlockQ8KA) are sparrow's own: they only live in scratch memory.
//
// Value layouts (element i of a block):
//   Q8_0  x[i] = d * qs[i]                                      32 values, 34 bytes
//   Q4_0  x[i] = d * ((qs[i%16] >> 4*(i/16)) & 15) - 8)         32 values, 18 bytes
//   Q4_K  256 values in 8 sub-blocks of 32, each with a 6-bit scale sc[j] and min m[j]:
//         x[i] = d * sc[j] * q[i] - dmin * m[j], j = i/32, q[i] 4 bits:
//         byte qs[32*(i/64) + i%32], low nibble when (i/32) is even, else high nibble.
//         (sc, m) packed in scales[12]: for j < 4, sc = scales[j] & 63, m = scales[j+4] & 63;
//         for j >= 4, sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
//                     m  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4.
//   Q5_K  as Q4_K, plus a fifth bit: bit (i/32) of qh[i%32] adds 16 to q[i].    176 bytes
//   Q6_K  256 values in 16 sub-blocks of 16 with int8 scales: x[i] = d * sc[i/16] * (q[i] - 32),
//         q[i] 6 bits: i = 128*h + 32*k + l (h < 2, k < 4, l < 32):
//         low 4 bits = nibble (k/2 ? high : low) of ql[64*h + 32*(k&1) + l],
//         high 2 bits = bits 2k..2k+1 of qh[32*h + l].                           210 bytes
//   Q4_1  x[i] = d * q[i] + m, q[i] = (qs[i%16] >> 4*(i/16)) & 15              32 values, 20 bytes
//   Q5_0  x[i] = d * (q[i] - 16), q[i] = the Q4 nibble | bit i of qh (a little-endian
//         uint32) << 4                                                    32 values, 22 bytes
//   Q5_1  x[i] = d * q[i] + m, q[i] as Q5_0                              32 values, 24 bytes
//   IQ4_NL x[i] = d * kIQ4NL[nibble i] (nibbles as Q4_0)                   32 values, 18 bytes
//   MXFP4 x[i] = 2^(e-128) * kMXFP4[nibble i] (nibbles as Q4_0; e an E8M0 exponent, so
//         2^(e-128) is half of the block's power-of-two scale)           32 values, 17 bytes
//   Q2_K  256 values in 16 sub-blocks of 16: x[i] = d * (sc[j] & 15) * q[i] - dmin * (sc[j] >> 4),
//         j = i/16, q[i] = (qs[32*(i/128) + i%32] >> 2*((i/32)%4)) & 3.             84 bytes
//   Q3_K  16 sub-blocks of 16: x[i] = d * (s[j] - 32) * (q[i] - 4), j = i/16, q[i] = the
//         Q2_K 2-bit value | bit (i/32) of hmask[i%32] << 2; the 6-bit s[j]: low 4 bits =
//         scales[j%8] >> 4*(j/8) & 15, high 2 bits = scales[8 + j%4] >> 2*(j/4) & 3.  110 bytes
//   IQ4_XS 8 sub-blocks of 32: x[i] = d * (ls[j] - 32) * kIQ4NL[q], j = i/32, q = nibble
//         (i%32)/16 of qs[16*j + i%16]; ls[j] = (scales_l[j/2] >> 4*(j%2) & 15) |
//         (scales_h >> 2*j & 3) << 4.                                               136 bytes
#pragma once
#include <cstddef>
#include <cstdint>

namespace sparrow {

constexpr int QK = 32;    // Q4_0 / Q8_0 block
constexpr int QK_K = 256; // K-quant super-block

struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block");
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block");
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block");
struct BlockQ4_1 { uint16_t d; uint16_t m; uint8_t qs[16]; };
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockQ5_1 { uint16_t d; uint16_t m; uint8_t qh[4]; uint8_t qs[16]; };
struct BlockIQ4_NL { uint16_t d; uint8_t qs[16]; };
struct BlockMXFP4 { uint8_t e; uint8_t qs[16]; };
struct BlockQ2_K { uint8_t scales[16]; uint8_t qs[64]; uint16_t d; uint16_t dmin; };
struct BlockQ3_K { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; };
struct BlockIQ4_XS { uint16_t d; uint16_t scales_h; uint8_t scales_l[4]; uint8_t qs[128]; };
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block");
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block");
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block");
static_assert(sizeof(BlockIQ4_NL) == 18, "IQ4_NL block");
static_assert(sizeof(BlockMXFP4) == 17, "MXFP4 block");
static_assert(sizeof(BlockQ2_K) == 84, "Q2_K block");
static_assert(sizeof(BlockQ3_K) == 110, "Q3_K block");
static_assert(sizeof(BlockIQ4_XS) == 136, "IQ4_XS block");

// The non-linear 4-bit codebooks: IQ4_NL / IQ4_XS values, and MXFP4's E2M1 values times 2.
extern const int8_t kIQ4NL[16];
extern const int8_t kMXFP4[16];
// 2^(e-128) for an E8M0 exponent byte (exact, including the subnormal e = 0 and 1).
float e8m0_half(uint8_t e);

// Activations for Q4_0 / Q8_0 weights: x[i] ~= d * qs[i], |qs| <= 127, sum = sum of qs.
struct BlockQ8A { float d; int32_t sum; int8_t qs[32]; };
// Activations for K-quant weights: 256 values, bsums[k] = sum of qs[16k..16k+15],
// bsums32[k] = sum of qs[32k..32k+31].
struct BlockQ8KA { float d; int16_t bsums[16]; int16_t bsums32[8]; int8_t qs[256]; };
static_assert(sizeof(BlockQ8A) == 40, "Q8A block");
static_assert(sizeof(BlockQ8KA) == 308, "Q8KA block");

// Types sparrow computes with (ggml ids): F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7,
// Q8_0 8, Q2_K 10, Q3_K 11, Q4_K 12, Q5_K 13, Q6_K 14, IQ4_NL 20, IQ4_XS 23, BF16 30,
// MXFP4 39.
bool quant_supported(uint32_t type);
// Elements per block and bytes per block for a supported type (F32/F16/BF16: 1 element).
int64_t quant_block_size(uint32_t type);
size_t quant_block_bytes(uint32_t type);
size_t quant_row_bytes(uint32_t type, int64_t n);  // n must be a multiple of the block size

// Reference dequantization of n values (n a multiple of the block size).
void dequantize_row(uint32_t type, const void* src, float* dst, int64_t n);
// Reference quantization. Q4_1, Q5_0, Q5_1 and MXFP4 as ggml's reference quantizers
// (quantize_row_*_ref: the same rounding, so the same bytes); the others round to
// nearest with a simple min/max fit, good enough for tests and synthetic files (not
// ggml's search-based quantizers).
void quantize_row(uint32_t type, const float* src, void* dst, int64_t n);

// The 6-bit (scale, min) pair j (0..7) of a Q4_K / Q5_K block.
void kquant_scale_min(const uint8_t scales[12], int j, uint8_t* sc, uint8_t* m);
// Integer contents of one K-quant block: q[256] in 0..15 (Q4_K), 0..31 (Q5_K), 0..63 (Q6_K).
void unpack_q4_k(const BlockQ4_K& b, uint8_t q[256], uint8_t sc[8], uint8_t m[8]);
void unpack_q5_k(const BlockQ5_K& b, uint8_t q[256], uint8_t sc[8], uint8_t m[8]);
void unpack_q6_k(const BlockQ6_K& b, uint8_t q[256]);
// The 32 integer values of a Q4_1 / Q5_0 / Q5_1 block, unsigned (0..15 or 0..31).
void unpack_legacy(uint32_t type, const uint8_t* block, uint8_t q[32]);
// Signed integer values and integer scales/mins of the small K-quants and IQ4_XS, per
// sub-block of 16 (IQ4_XS: each scale twice): x[i] = d * sc[i/16] * v[i] - dmin * m[i/16].
void unpack_small_k(uint32_t type, const uint8_t* block, int8_t v[256], int8_t sc[16], int8_t m[16], float* d,
                    float* dmin);

// Activation quantizers: n values (a multiple of 32 / 256).
void quantize_row_q8a(const float* x, BlockQ8A* y, int64_t n);
void quantize_row_q8ka(const float* x, BlockQ8KA* y, int64_t n);

}  // namespace sparrow
