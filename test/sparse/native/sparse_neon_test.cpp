// The NEON sparse kernels as a plain C++ program (no Node): built with an AArch64 cross
// compiler and run under qemu-user by test/sparse/neon-qemu.test.ts. For every type with a
// channel-major layout, random weights and awkward sizes, inputs with 0/50/90/100% of the
// channels zero and n = 1..8 (and 9: the dense route): the SparseMatrix on the NEON path
// must give the dense NEON matrix's bits, and read as many weight bytes as the generic twin
// counts (fewer than dense when channels are zero).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/isa.h"
#include "kernels/matmul.h"
#include "quant/quant.h"
#include "sparse/layout.h"
#include "sparse/sparse_kernels.h"
#include "sparse/sparse_matrix.h"

using namespace sparrow;

static int failures = 0, checks = 0;

static void check(uint32_t type, const char* name, int64_t rows, int64_t cols, int64_t n, double zero, std::mt19937& gen) {
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> wf(size_t(rows * cols)), x(size_t(n * cols));
  for (int64_t r = 0; r < rows; r++) {
    const float scale = (r % 3 == 0) ? 0.01f : (r % 3 == 1 ? 1.f : 20.f);
    for (int64_t c = 0; c < cols; c++) wf[size_t(r * cols + c)] = dist(gen) * scale;
  }
  std::vector<char> off(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; c++) off[size_t(c)] = (dist(gen) + 1) / 2 < zero;
  for (int64_t t = 0; t < n; t++)
    for (int64_t c = 0; c < cols; c++) x[size_t(t * cols + c)] = off[size_t(c)] ? 0.f : dist(gen) * 3;
  const size_t rb = quant_row_bytes(type, cols);
  std::vector<uint8_t> w(size_t(rows) * rb);
  for (int64_t r = 0; r < rows; r++) quantize_row(type, wf.data() + r * cols, w.data() + r * rb, cols);
  auto dense = make_matrix(type, w.data(), rows, cols, name);
  auto stats = std::make_shared<SparseStats>();
  auto sparse = make_sparse_matrix(type, w.data(), rows, cols, name, stats);
  std::vector<float> y0(size_t(n * rows)), y1(size_t(n * rows), -1.f), y2(size_t(n * rows));
  if (!set_isa(Isa::NEON)) {
    std::printf("NEON not available\n");
    std::exit(2);
  }
  std::vector<uint8_t> xq(dense->input_bytes(n)), xs(sparse->input_bytes(n));
  dense->quantize_input(x.data(), n, xq.data());
  sparse->quantize_input(x.data(), n, xs.data());
  dense->mul(xq.data(), n, y0.data(), rows, 0, rows);
  sparse->mul(xs.data(), n, y1.data(), rows, 0, rows);
  const uint64_t read_neon = stats->read, dense_bytes = stats->dense;
  stats->reset();
  set_isa(Isa::Generic);
  sparse->mul(xs.data(), n, y2.data(), rows, 0, rows);
  const uint64_t read_generic = stats->read;
  const bool kernel = n <= kSparseMaxTokens;  // NEON has a sparse kernel for every type
  checks++;
  if (std::memcmp(y0.data(), y1.data(), y0.size() * 4) != 0) {
    failures++;
    std::printf("FAIL %s %lldx%lld n=%lld zero=%.1f: NEON sparse differs from dense NEON\n", name, (long long)rows,
                (long long)cols, (long long)n, zero);
  }
  if (read_neon != (kernel ? read_generic : dense_bytes)) {
    failures++;
    std::printf("FAIL %s %lldx%lld n=%lld zero=%.1f: read %llu, expected %llu\n", name, (long long)rows, (long long)cols,
                (long long)n, zero, (unsigned long long)read_neon, (unsigned long long)(kernel ? read_generic : dense_bytes));
  }
  if (kernel && zero >= 0.5 && read_neon >= dense_bytes) {
    failures++;
    std::printf("FAIL %s: nothing skipped at zero=%.1f\n", name, zero);
  }
}

int main() {
  std::mt19937 gen(42);
  const struct { uint32_t type; const char* name; int block; } types[] = {
      {2, "Q4_0", 32}, {8, "Q8_0", 32}, {3, "Q4_1", 32}, {6, "Q5_0", 32}, {7, "Q5_1", 32},
      {20, "IQ4_NL", 32}, {39, "MXFP4", 32}, {12, "Q4_K", 256}, {13, "Q5_K", 256}, {14, "Q6_K", 256}};
  const int64_t shapes[][2] = {{1, 1}, {127, 2}, {200, 3}, {300, 5}};
  for (const auto& t : types)
    for (const auto& s : shapes)
      for (double zero : {0.0, 0.5, 0.9, 1.0})
        for (int64_t n : {1, 2, 3, 5, 8, 9}) check(t.type, t.name, s[0], s[1] * t.block, n, zero, gen);
  if (failures) {
    std::printf("%d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("ok: %d NEON sparse checks\n", checks);
  return 0;
}
