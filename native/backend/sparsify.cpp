#include "sparsify.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

namespace sparrow {

namespace {
inline uint32_t magnitude_bits(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u & 0x7fffffffu;
}

// The bin of a histogram of `n` counts where the r-th (1-based) smallest falls; r becomes
// its rank inside that bin.
inline uint32_t find_bin(const uint32_t* hist, uint32_t n, uint32_t& r) {
  for (uint32_t b = 0; b < n; b++) {
    if (r <= hist[b]) return b;
    r -= hist[b];
  }
  return n - 1;  // not reached: the counts add up to at least r
}
}  // namespace

int sparsify_count(float frac, int width) {
  if (!(frac > 0) || width <= 0) return 0;
  const double k = std::floor(double(frac) * double(width));
  return k >= width ? width : int(k);
}

void sparsify_row(float* x, int width, int k, uint32_t* scratch) {
  if (k <= 0 || width <= 0) return;
  if (k >= width) {
    for (int i = 0; i < width; i++) x[i] = 0.0f;
    return;
  }
  // The key of the k-th smallest (T) and how many entries equal to T are to be zeroed (r).
  // Digits: bits 30..20, 19..10, 9..0 (bit 31 is clear).
  uint32_t hist[2048];
  uint32_t r = uint32_t(k);
  std::memset(hist, 0, sizeof hist);
  for (int i = 0; i < width; i++) hist[magnitude_bits(x[i]) >> 20]++;
  const uint32_t b1 = find_bin(hist, 2048, r);
  uint32_t m = 0;  // candidates: the keys whose first digit is b1
  for (int i = 0; i < width; i++) {
    const uint32_t u = magnitude_bits(x[i]);
    if ((u >> 20) == b1) scratch[m++] = u;
  }
  std::memset(hist, 0, 1024 * sizeof(uint32_t));
  for (uint32_t j = 0; j < m; j++) hist[(scratch[j] >> 10) & 1023u]++;
  const uint32_t b2 = find_bin(hist, 1024, r);
  uint32_t m2 = 0;
  for (uint32_t j = 0; j < m; j++)
    if (((scratch[j] >> 10) & 1023u) == b2) scratch[m2++] = scratch[j];
  std::memset(hist, 0, 1024 * sizeof(uint32_t));
  for (uint32_t j = 0; j < m2; j++) hist[scratch[j] & 1023u]++;
  const uint32_t b3 = find_bin(hist, 1024, r);
  const uint32_t T = (b1 << 20) | (b2 << 10) | b3;
  // Zero everything below T and the first r entries equal to T.
  for (int i = 0; i < width; i++) {
    const uint32_t u = magnitude_bits(x[i]);
    if (u < T) {
      x[i] = 0.0f;
    } else if (u == T && r > 0) {
      x[i] = 0.0f;
      r--;
    }
  }
}

void sparsify_row_reference(float* x, int width, int k) {
  if (k <= 0 || width <= 0) return;
  std::vector<int> idx(static_cast<size_t>(width));
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) {
    const uint32_t ua = magnitude_bits(x[a]), ub = magnitude_bits(x[b]);
    return ua != ub ? ua < ub : a < b;
  });
  for (int i = 0; i < std::min(k, width); i++) x[idx[size_t(i)]] = 0.0f;
}

}  // namespace sparrow
