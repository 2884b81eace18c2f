#include "kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
#include "kernels/kernels.h"
#include "quant/fp16.h"

namespace sparrow {

namespace {
constexpr int kQ8Block = 32;
constexpr size_t kQ8BlockBytes = 2 + kQ8Block;  // fp16 scale + 32 int8
}  // namespace

const char* kv_type_name(KVType t) { return t == KVType::Q8_0 ? "q8_0" : "f16"; }

bool kv_type_from_name(const std::string& name, KVType* out) {
  if (name == "f16" || name == "F16") *out = KVType::F16;
  else if (name == "q8_0" || name == "Q8_0") *out = KVType::Q8_0;
  else return false;
  return true;
}

const float* f16_table() {
  static const float* table = [] {
    float* t = new float[65536];
    for (uint32_t i = 0; i < 65536; i++) t[i] = fp16_to_fp32(uint16_t(i));
    return t;
  }();
  return table;
}

KVCache::KVCache(int n_layer, int n_ctx, int n_head_kv, int head_dim, KVType type)
    : n_layer_(n_layer), n_ctx_(n_ctx), n_head_kv_(n_head_kv), head_dim_(head_dim), type_(type) {
  if (type == KVType::Q8_0) {
    if (head_dim % kQ8Block != 0)
      throw sparrow_error("ERR_INVALID_ARG", "kvCacheType 'q8_0' needs a head dimension that is a multiple of 32 (this model's is " +
                                                 std::to_string(head_dim) + "); use 'f16'");
    row_bytes_ = size_t(head_dim / kQ8Block) * kQ8BlockBytes;
  } else {
    row_bytes_ = size_t(head_dim) * 2;
  }
  // Fresh pages: untouched (not resident) until a position is written, and given back
  // to the OS when the session goes.
  data_ = PageBuffer(bytes(), "the KV cache");
}

void KVCache::write_row(const float* x, uint8_t* out) const {
  if (type_ == KVType::F16) return kernels().f32_to_f16(x, reinterpret_cast<uint16_t*>(out), head_dim_);
  for (int b = 0; b < head_dim_ / kQ8Block; b++, x += kQ8Block, out += kQ8BlockBytes) {
    float amax = 0;
    for (int i = 0; i < kQ8Block; i++) amax = std::fmax(amax, std::fabs(x[i]));
    float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    uint16_t dh = fp32_to_fp16(d);
    std::memcpy(out, &dh, 2);
    int8_t* q = reinterpret_cast<int8_t*>(out + 2);
    for (int i = 0; i < kQ8Block; i++) q[i] = int8_t(std::lround(x[i] * id));
  }
}

void KVCache::store(int layer, int pos, int n, const float* k, const float* v, int64_t ld) {
  generation_++;
  for (int h = 0; h < n_head_kv_; h++)
    for (int t = 0; t < n; t++) {
      write_row(k + t * ld + size_t(h) * head_dim_, k_head(layer, h) + size_t(pos + t) * row_bytes_);
      write_row(v + t * ld + size_t(h) * head_dim_, v_head(layer, h) + size_t(pos + t) * row_bytes_);
    }
}

void KVCache::write_k(int layer, int head, int pos, const float* k) {
  generation_++;
  write_row(k, k_head(layer, head) + size_t(pos) * row_bytes_);
}

void KVCache::move(int src, int dst, int n) {
  if (n <= 0 || src == dst) return;
  generation_++;
  for (int layer = 0; layer < n_layer_; layer++)
    for (int h = 0; h < n_head_kv_; h++)
      for (uint8_t* base : {k_head(layer, h), v_head(layer, h)})
        std::memmove(base + size_t(dst) * row_bytes_, base + size_t(src) * row_bytes_, size_t(n) * row_bytes_);
}

void KVCache::read(const uint8_t* rows, int p0, int p1, float* out) const {
  if (type_ == KVType::F16) {
    kernels().f16_to_f32(reinterpret_cast<const uint16_t*>(rows) + size_t(p0) * head_dim_, out, int64_t(p1 - p0) * head_dim_);
    return;
  }
  const float* tab = f16_table();
  for (int p = p0; p < p1; p++) {
    const uint8_t* blk = rows + size_t(p) * row_bytes_;
    for (int b = 0; b < head_dim_ / kQ8Block; b++, blk += kQ8BlockBytes, out += kQ8Block) {
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const float d = tab[dh];
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
      for (int e = 0; e < kQ8Block; e++) out[e] = d * q[e];
    }
  }
}

}  // namespace sparrow
