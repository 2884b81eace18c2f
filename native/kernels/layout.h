// The interleaved ("repacked") weight layouts the quantized kernels read. Constants only
// (no code), so the per-ISA files may include it.
//
// Quantized weights are repacked at load in groups of 16 rows. Within a group, per block
// (Q4_0/Q8_0: 32 columns; K-quants: 256 columns), the quants of the 16 rows are
// interleaved 4 bytes at a time: a 64-byte "chunk" holds, in its 32-bit lane r, four
// consecutive quant bytes of row r. One 512-bit load (or two 256-bit, four 128-bit) thus
// serves 16 rows, and an int8 dot product of a lane with 4 broadcast activation bytes
// (vpdpbusd / pmaddubsw / sdot) accumulates each row's dot product in its own lane: no
// horizontal sums. A last partial group is padded with zero rows.
//
// Q4_0, per block of 32 columns (288 bytes):
//   [0, 32)    d[16]: fp16 scale of each row
//   [32, 288)  4 chunks; chunk k lane r = original qs[4k..4k+3] of row r, i.e. the low
//              nibbles are values 4k..4k+3 and the high nibbles values 16+4k..16+4k+3
//              (unsigned 0..15; the value is nibble - 8)
// Q8_0, per block (544 bytes):
//   [0, 32)    d[16]
//   [32, 544)  8 chunks; chunk k lane r = qs[4k..4k+3] of row r XOR 0x80 (stored as
//              unsigned q + 128, so it can be the unsigned operand of vpdpbusd)
// Q4_K, per super-block of 256 columns (2368 bytes):
//   [0, 32)    d[16] fp16        [32, 64) dmin[16] fp16
//   [64, 192)  sc: byte 64 + 16j + r = 6-bit scale of sub-block j (0..7) of row r
//   [192, 320) m: byte 192 + 32p + 2r + e = 6-bit min of sub-block 2p+e of row r
//              (pairs, so that a zero-extension to int16 gives (m[2p], m[2p+1]) per lane)
//   [320, 2368) 32 chunks; chunk 8c+k (c < 4, k < 8) lane r = 4 bytes whose low nibbles
//              are q[64c + 4k ..] (sub-block 2c) and high nibbles q[64c + 32 + 4k ..]
//              (sub-block 2c+1) of row r
// Q5_K: the Q4_K layout (low 4 bits), then (2880 bytes in all)
//   [2368, 2880) 8 chunks; chunk k lane r = 4 bytes h[4k..4k+3], bit j of h[l] = bit 4
//              of q[32j + l]
// Q6_K, per super-block (3360 bytes):
//   [0, 32)    d[16] fp16
//   [32, 288)  sc: byte 32 + 32p + 2r + e = int8 scale of sub-block 2p+e (16 columns) of row r
//   [288, 2336) 32 chunks; chunk c lane r byte b = (q[8c + b] & 15) | (q[8c + 4 + b] & 15) << 4
//   [2336, 3360) 16 chunks; chunk s lane r byte b = sum over i < 4 of
//              ((q[16s + 4i + b] >> 4) & 3) << 2i
//   (q unsigned 0..63; the value is q - 32)
// Q4_1 / Q5_0 / Q5_1, per block of 32 columns (320 / 352 / 384 bytes):
//   [0, 32)    d[16] fp16
//   [32, 64)   m[16] fp16 (Q4_1 and Q5_1 only; the offsets below move down 32 for Q5_0)
//   [64, 320)  4 chunks of nibbles exactly as Q4_0 (values 4k.. low, 16+4k.. high)
//   [320, 384) (Q5_*) 1 chunk; lane r = 32 bits of row r: bit 8b + k is the fifth bit of
//              value 4k + b and bit 8b + 4 + k that of value 16 + 4k + b (k, b < 4), so a
//              shift of the lane by a constant lines up the fifth bits of chunk k
//   (q unsigned 0..15 / 0..31; the value is d q + m, or d (q - 16) for Q5_0)
// IQ4_NL and MXFP4, per block of 32 columns (288 bytes): the Q4_0 layout with codebook
// indices in the nibbles (values kIQ4NL[i] / kMXFP4[i] of quant/quant.h);
//   [0, 32)    IQ4_NL: d[16] fp16; MXFP4: e[16] E8M0 exponent bytes, then 16 zero bytes
//   [32, 288)  4 chunks as Q4_0
// IQ4_XS, per super-block of 256 columns (2208 bytes: the file's 2176 plus the scales as bytes):
//   [0, 32)    d[16] fp16
//   [32, 160)  sc: byte 32 + 16j + r = int8 scale ls - 32 of sub-block j (0..7, 32 columns) of row r
//   [160, 2208) 32 chunks; chunk 8c+k (c < 4, k < 8) lane r = 4 bytes whose low nibbles are
//              the codebook indices of values 64c + 4k .. (sub-block 2c) and high nibbles
//              those of 64c + 32 + 4k .. (sub-block 2c+1) of row r (as Q4_K's nibbles)
// Q3_K, per super-block (1824 bytes: the file's 1760 plus the scales as bytes):
//   [0, 32)    d[16] fp16
//   [32, 288)  sc: byte 32 + 32p + 2r + e = int8 scale s - 32 of sub-block 2p+e (16 columns) of row r
//   [288, 1312) 16 chunks; chunk s lane r byte b, bits 2i..2i+1 (i < 4) = the low 2 bits of
//              value 16s + 4i + b of row r
//   [1312, 1824) 8 chunks; chunk t lane r byte b, bit i + 4e = the third bit of value
//              16(2t + e) + 4i + b (e < 2)
//   (q = low | third << 2 in 0..7; the value is d * sc * (q - 4))
// Q2_K, per super-block (1344 bytes, as the file):
//   [0, 32)    d[16] fp16        [32, 64) dmin[16] fp16
//   [64, 320)  byte 64 + 32p + 2r + e = the file's scale byte of sub-block 2p+e of row r
//              (low nibble sc, high nibble m)
//   [320, 1344) 16 chunks of 2-bit values, as Q3_K's low bits
//   (the value is d * sc * q - dmin * m)
//
// Activations are quantized per token (row): BlockQ8A (40 bytes per 32 values) for
// Q4_0/Q8_0 and BlockQ8KA (308 bytes per 256) for the K-quants, see quant/quant.h.
// The later 32-column types take BlockQ8A too (Q4_1 / Q5_1 with the float s = fp16(d sum)
// in place of the sum: ggml's Q8_1, see InputFormat::Q8A1), the 256-column ones BlockQ8KA.
#pragma once

namespace sparrow {

constexpr int kGroupRows = 16;

constexpr int kQ4_0GroupBlock = 288;
constexpr int kQ8_0GroupBlock = 544;
constexpr int kQ4_KGroupBlock = 2368;
constexpr int kQ5_KGroupBlock = 2880;
constexpr int kQ6_KGroupBlock = 3360;
constexpr int kQ4_1GroupBlock = 320;
constexpr int kQ5_0GroupBlock = 352;
constexpr int kQ5_1GroupBlock = 384;
constexpr int kCodebookGroupBlock = 288;  // IQ4_NL, MXFP4
constexpr int kIQ4_XSGroupBlock = 2208;
constexpr int kQ3_KGroupBlock = 1824;
constexpr int kQ2_KGroupBlock = 1344;

constexpr int kQ8ABytes = 40;    // float d, int32 sum, int8 qs[32]
constexpr int kQ8KABytes = 308;  // float d, int16 bsums[16], int16 bsums32[8], int8 qs[256]
constexpr int kQ8KABsums = 4, kQ8KABsums32 = 36, kQ8KAQs = 52;

}  // namespace sparrow
