#include "kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
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

KVCache::KVCache(int n_layer, int n_ctx, int kv_dim, KVType type)
    : n_layer_(n_layer), n_ctx_(n_ctx), kv_dim_(kv_dim), type_(type), data_(nullptr, std::free) {
  if (type == KVType::Q8_0) {
    if (kv_dim % kQ8Block != 0)
      throw sparrow_error("ERR_INVALID_ARG", "kvCacheType 'q8_0' needs key/value rows that are a multiple of 32 (this model's are " +
                                                 std::to_string(kv_dim) + "); use 'f16'");
    row_bytes_ = size_t(kv_dim / kQ8Block) * kQ8BlockBytes;
  } else {
    row_bytes_ = size_t(kv_dim) * 2;
  }
  // malloc, not new[]{}: pages stay untouched (not resident) until a position is written.
  void* p = std::malloc(bytes());
  if (!p) throw sparrow_error("ERR_OUT_OF_MEMORY", "cannot allocate the KV cache (" + std::to_string(bytes() >> 20) + " MiB)");
  data_.reset(static_cast<uint8_t*>(p));
}

void KVCache::quantize_row(const float* x, uint8_t* out) const {
  for (int b = 0; b < kv_dim_ / kQ8Block; b++, x += kQ8Block, out += kQ8BlockBytes) {
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
  for (int t = 0; t < n; t++) {
    uint8_t* kr = k_row(layer, pos + t);
    uint8_t* vr = v_row(layer, pos + t);
    const float* kt = k + t * ld;
    const float* vt = v + t * ld;
    if (type_ == KVType::F16) {
      uint16_t* kh = reinterpret_cast<uint16_t*>(kr);
      uint16_t* vh = reinterpret_cast<uint16_t*>(vr);
      for (int i = 0; i < kv_dim_; i++) {
        kh[i] = fp32_to_fp16(kt[i]);
        vh[i] = fp32_to_fp16(vt[i]);
      }
    } else {
      quantize_row(kt, kr);
      quantize_row(vt, vr);
    }
  }
}

void KVCache::read(const uint8_t* rows, int p0, int p1, int c0, int len, float* out) const {
  if (type_ == KVType::F16) {
    const float* tab = f16_table();
    for (int p = p0; p < p1; p++, out += len) {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(rows + size_t(p) * row_bytes_) + c0;
      for (int j = 0; j < len; j++) out[j] = tab[h[j]];
    }
    return;
  }
  const float* tab = f16_table();
  for (int p = p0; p < p1; p++, out += len) {
    const uint8_t* row = rows + size_t(p) * row_bytes_;
    for (int j = 0; j < len;) {  // one block (or the part of it inside the range) at a time
      int i = c0 + j, b = i / kQ8Block, in = i % kQ8Block;
      int m = std::min(len - j, kQ8Block - in);
      const uint8_t* blk = row + size_t(b) * kQ8BlockBytes;
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      float d = tab[dh];
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2) + in;
      for (int e = 0; e < m; e++) out[j + e] = d * q[e];
      j += m;
    }
  }
}

}  // namespace sparrow
