// NEON kernels vs their generic twins, as a plain C++ program (no Node): built with an
// AArch64 cross compiler and run under qemu-user by test/kernels/neon-qemu.test.ts.
// Every matmul type goes through make_matrix with the ISA forced, on random weights and
// awkward sizes; exits non-zero on the first mismatch.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/matmul.h"
#include "quant/fp16.h"
#include "quant/quant.h"

using namespace sparrow;

static int failures = 0;

static void check_matmul(uint32_t type, const char* name, int64_t rows, int64_t cols, int64_t n, std::mt19937& gen) {
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> wf(size_t(rows * cols)), x(size_t(n * cols));
  for (int64_t r = 0; r < rows; r++) {
    float scale = (r % 3 == 0) ? 0.01f : (r % 3 == 1 ? 1.f : 20.f);
    for (int64_t c = 0; c < cols; c++) wf[size_t(r * cols + c)] = dist(gen) * scale;
  }
  for (float& v : x) v = dist(gen) * 3;
  size_t rb = quant_row_bytes(type, cols);
  std::vector<uint8_t> w(size_t(rows) * rb);
  for (int64_t r = 0; r < rows; r++) quantize_row(type, wf.data() + r * cols, w.data() + r * rb, cols);
  auto m = make_matrix(type, w.data(), rows, cols, name);
  std::vector<uint8_t> xq(m->input_bytes(n));
  m->quantize_input(x.data(), n, xq.data());
  std::vector<float> y0(size_t(n * rows)), y1(size_t(n * rows), -1.f);
  set_isa(Isa::Generic);
  m->mul(xq.data(), n, y0.data(), rows, 0, rows);
  if (!set_isa(Isa::NEON)) {
    std::printf("NEON (with dotprod) is not supported on this CPU\n");
    std::exit(2);
  }
  // two row slices, as the threads of the forward pass would split them
  int64_t mid = std::min(rows, m->row_align() * ((rows / 2 + m->row_align() - 1) / m->row_align()));
  m->mul(xq.data(), n, y1.data(), rows, 0, mid);
  m->mul(xq.data(), n, y1.data(), rows, mid, rows);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; r++) {
    m->get_row(r, row.data());
    double mag = 0;
    for (int64_t t = 0; t < n; t++) {
      mag = 0;
      for (int64_t c = 0; c < cols; c++) mag += std::fabs(double(row[size_t(c)]) * x[size_t(t * cols + c)]);
      // same integer arithmetic as the twin: only float rounding differs (and the K-quant
      // scale/min split can cancel: allow 1e-4 of the magnitude sum)
      double tol = 1e-4 * mag + 1e-6;
      float a = y0[size_t(t * rows + r)], b = y1[size_t(t * rows + r)];
      if (!(std::fabs(double(a) - b) <= tol)) {
        std::printf("MISMATCH %s %lldx%lld n=%lld: y[%lld][%lld] neon %g generic %g (tol %g)\n", name, (long long)rows,
                    (long long)cols, (long long)n, (long long)t, (long long)r, b, a, tol);
        if (++failures > 10) std::exit(1);
      }
    }
  }
}

// Determinism: the bits of y[t][r] on the NEON path are those of a call with token t
// alone (n = 1), whatever n (GEMV, GEMM tiles, remainders) and whatever the row slice.
static void check_determinism(uint32_t type, const char* name, int64_t cols, std::mt19937& gen) {
  const int64_t rows = 53, nmax = 33;
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> wf(size_t(rows * cols)), x(size_t(nmax * cols));
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) wf[size_t(r * cols + c)] = dist(gen) * (r % 3 == 0 ? 0.02f : r % 3 == 1 ? 1.f : 40.f);
  for (size_t i = 0; i < x.size(); i++) x[i] = dist(gen) * (i % 5 == 0 ? 1000.f * std::fabs(dist(gen)) : 1.f);
  size_t rb = quant_row_bytes(type, cols);
  std::vector<uint8_t> w(size_t(rows) * rb);
  for (int64_t r = 0; r < rows; r++) quantize_row(type, wf.data() + r * cols, w.data() + r * rb, cols);
  auto m = make_matrix(type, w.data(), rows, cols, name);
  const size_t xb = m->input_bytes(1);
  std::vector<uint8_t> xq(m->input_bytes(nmax));
  m->quantize_input(x.data(), nmax, xq.data());
  set_isa(Isa::NEON);
  std::vector<float> single(size_t(nmax * rows));
  for (int64_t t = 0; t < nmax; t++) m->mul(xq.data() + t * xb, 1, single.data() + t * rows, rows, 0, rows);
  const int64_t slices[][2] = {{0, rows}, {0, 16}, {16, 48}, {48, rows}};
  for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33})
    for (const auto& s : slices) {
      std::vector<float> y(size_t(n * rows), 0.f);
      m->mul(xq.data(), n, y.data(), rows, s[0], s[1]);
      for (int64_t t = 0; t < n; t++)
        for (int64_t r = s[0]; r < s[1]; r++)
          if (std::memcmp(&y[size_t(t * rows + r)], &single[size_t(t * rows + r)], 4) != 0) {
            std::printf("MISMATCH determinism %s n=%lld rows [%lld, %lld): y[%lld][%lld] differs from n=1\n", name,
                        (long long)n, (long long)s[0], (long long)s[1], (long long)t, (long long)r);
            if (++failures > 10) std::exit(1);
            return;
          }
    }
}

int main() {
  std::mt19937 gen(1234);
  struct T { uint32_t id; const char* name; int block; } types[] = {
      {0, "F32", 1}, {1, "F16", 1}, {30, "BF16", 1}, {8, "Q8_0", 32}, {2, "Q4_0", 32},
      {12, "Q4_K", 256}, {13, "Q5_K", 256}, {14, "Q6_K", 256}, {3, "Q4_1", 32}, {6, "Q5_0", 32},
      {7, "Q5_1", 32}, {20, "IQ4_NL", 32}, {39, "MXFP4", 32}, {10, "Q2_K", 256}, {11, "Q3_K", 256},
      {23, "IQ4_XS", 256}};
  int checks = 0;
  for (const T& t : types) {
    int64_t colsList[3] = {t.block == 1 ? 37 : t.block, t.block == 1 ? 257 : 3 * t.block, t.block == 1 ? 1 : 5 * t.block};
    for (int64_t cols : colsList)
      for (int64_t rows : {1, 15, 17, 50})
        for (int64_t n : {1, 2, 3, 5, 17}) {
          check_matmul(t.id, t.name, rows, cols, n, gen);
          checks++;
        }
  }
  for (const T& t : types) {
    check_determinism(t.id, t.name, t.block == 1 ? 77 : t.block == 32 ? 320 : 768, gen);
    checks++;
  }
  // the dot / axpy helpers
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  for (int64_t n : {0, 1, 3, 4, 7, 8, 15, 16, 17, 33, 100, 257}) {
    std::vector<float> a(static_cast<size_t>(n)), b(a), y0(a), y1;
    std::vector<uint16_t> h(static_cast<size_t>(n));
    double mag = 0;
    for (int64_t i = 0; i < n; i++) {
      a[size_t(i)] = dist(gen), b[size_t(i)] = dist(gen), y0[size_t(i)] = dist(gen);
      h[size_t(i)] = fp32_to_fp16(a[size_t(i)]);
      mag += std::fabs(a[size_t(i)] * b[size_t(i)]);
    }
    y1 = y0;
    const Kernels &g = kernels_for(Isa::Generic), &v = kernels_for(Isa::NEON);
    double tol = (double(n) + 2) * 1.2e-7 * (mag + 1) ;
    if (std::fabs(g.dot_f32(a.data(), b.data(), n) - v.dot_f32(a.data(), b.data(), n)) > tol ||
        std::fabs(g.dot_f16_f32(h.data(), b.data(), n) - v.dot_f16_f32(h.data(), b.data(), n)) > tol) {
      std::printf("MISMATCH dot n=%lld\n", (long long)n);
      failures++;
    }
    g.axpy_f16(0.5f, h.data(), y0.data(), n);
    v.axpy_f16(0.5f, h.data(), y1.data(), n);
    for (int64_t i = 0; i < n; i++)
      if (std::fabs(y0[size_t(i)] - y1[size_t(i)]) > 1e-6f) {
        std::printf("MISMATCH axpy_f16 n=%lld i=%lld\n", (long long)n, (long long)i);
        failures++;
        break;
      }
    checks += 3;
  }
  // the activation quantizers: the same bytes as the generic twins
  for (int block : {32, 256})
    for (int64_t blocks : {1, 2, 3, 7}) {
      const int64_t n = block * blocks;
      std::vector<float> x(static_cast<size_t>(n));
      for (int64_t b = 0; b < blocks; b++) {
        float scale = std::pow(10.f, float(b % 5) - 2);
        for (int64_t i = 0; i < block; i++) x[size_t(b * block + i)] = dist(gen) * scale;
        if (b % 4 == 1) std::fill(x.begin() + b * block, x.begin() + (b + 1) * block, 0.f);
        if (b % 4 == 2) {  // largest magnitude twice, opposite signs; exact .5 ties at scale 1
          for (int64_t i = 0; i < block; i++) x[size_t(b * block + i)] = float(int(dist(gen) * 100)) + 0.5f;
          x[size_t(b * block + 1)] = -127, x[size_t(b * block + block - 1)] = 127;
        }
      }
      const size_t bytes = size_t(blocks) * (block == 32 ? kQ8ABytes : kQ8KABytes);
      std::vector<uint8_t> q0(bytes), q1(bytes, 0xee);
      const Kernels &g = kernels_for(Isa::Generic), &v = kernels_for(Isa::NEON);
      (block == 32 ? g.quantize_q8a : g.quantize_q8ka)(x.data(), q0.data(), n);
      (block == 32 ? v.quantize_q8a : v.quantize_q8ka)(x.data(), q1.data(), n);
      if (q0 != q1) {
        std::printf("MISMATCH quantize block %d x %lld\n", block, (long long)blocks);
        failures++;
      }
      checks++;
    }
  // f16 conversions: bit for bit
  for (int64_t n : {1, 3, 4, 5, 17, 100}) {
    std::vector<float> x(static_cast<size_t>(n)), r0(x), r1(x), w0(x), w1(x);
    for (int64_t i = 0; i < n; i++) x[size_t(i)] = dist(gen) * std::pow(10.f, float(i % 12) - 8);  // subnormal f16 up to overflow
    std::vector<uint16_t> h0(x.size()), h1(x.size());
    const Kernels &g = kernels_for(Isa::Generic), &v = kernels_for(Isa::NEON);
    g.f32_to_f16(x.data(), h0.data(), n), v.f32_to_f16(x.data(), h1.data(), n);
    g.round_f16(x.data(), r0.data(), n), v.round_f16(x.data(), r1.data(), n);
    g.f16_to_f32(h0.data(), w0.data(), n), v.f16_to_f32(h0.data(), w1.data(), n);
    if (h0 != h1 || std::memcmp(r0.data(), r1.data(), r0.size() * 4) || std::memcmp(w0.data(), w1.data(), w0.size() * 4)) {
      std::printf("MISMATCH f16 conversions n=%lld\n", (long long)n);
      failures++;
    }
    checks += 3;
  }
  if (failures) {
    std::printf("%d mismatches\n", failures);
    return 1;
  }
  std::printf("ok: %d NEON checks agree with the generic twins\n", checks);
  return 0;
}
