// Test hooks for quant/ and kernels/, on the internal object (`addon.internal`, not public API).
//   _quantize(type, Float32Array) -> Uint8Array               reference quantizer
//   _dequantize(type, Uint8Array, n) -> Float32Array          reference dequantizer
//   _matmul(isa, type, w: Uint8Array, rows, cols, x: Float32Array, n, r0?, r1?) -> Float32Array
//        y (n x rows, row-major) through make_matrix with `isa` forced for the call;
//        rows outside [r0, r1) stay 0
//   _matmulReference(type, w, rows, cols, x, n) -> Float64Array  dequantize, multiply in double
//   _dotF16(isa, a: Uint16Array, b: Float32Array) -> number
//   _axpyF16(isa, a, x: Uint16Array, y: Float32Array) -> Float32Array (a copy of y, updated)
//   _quantizeActivations(isa, block: 32 | 256, x: Float32Array) -> Uint8Array
//        BlockQ8A / BlockQ8KA blocks (quant/quant.h) from that path's quantizer
//   _convertF16(isa, 'to' | 'round', x: Float32Array) -> Uint16Array | Float32Array
//   _convertF16(isa, 'from', x: Uint16Array) -> Float32Array
//   _sparseMatmul(isa, type, w, rows, cols, x, n, r0?, r1?) -> { y, read, dense }
//        as _matmul through the channel-major SparseMatrix (sparse/sparse_matrix.h);
//        read: the weight bytes its kernels read, dense: those a dense pass reads
//   _sparseGetRow(type, w, rows, cols, r) -> Float32Array   row r of the SparseMatrix
//   _sparseInfo() -> { types: ggml type ids with a sparse layout, kernelIsas: ISA names
//        with sparse kernels (the others compute through the dense kernel) }
//   _sparseModelRun(path, sparsity, threads, prompt: Int32Array, decode: Int32Array)
//        -> { logits, batched, promptRead, promptDense, decodeRead, decodeDense }
//        loads the model with ModelOptions::sparsity, evaluates the prompt, then decodes
//        the tokens one at a time (logits: the prompt's last row then one row per step)
//        and, in two other sessions, batched two at a time (batched: two rows per step);
//        the byte counts of the model's channel-major matrices (0 for a dense model)
//   _matrixInfo(type, rows, cols) -> { rowAlign, inputBytesPerToken }
//        the ggml type names make_matrix computes with, and the architectures the model
//        loader knows (for `sparrow inspect`)
#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "addon.h"
#include "core/error.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "core/ggml_types.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "model/session.h"
#include "quant/quant.h"
#include "sparse/sparse_kernels.h"
#include "sparse/sparse_matrix.h"

namespace {

using sparrow::Isa;
using sparrow::addon::arg_number;
using sparrow::addon::arg_string;

// SPARROW_GUARD as a function (the bodies here hold commas a macro argument cannot).
template <typename F>
Napi::Value guard(Napi::Env env, F body) {
  SPARROW_GUARD(env, { return body(); })
}

Isa arg_isa(const Napi::CallbackInfo& info, size_t i) {
  std::string name = arg_string(info, i, "isa");
  Isa isa;
  if (!sparrow::isa_from_name(name.c_str(), &isa) || !sparrow::isa_supported(isa))
    throw sparrow::addon::js_error(info.Env(), "ERR_ISA_UNSUPPORTED", "isa '" + name + "' is not supported here");
  return isa;
}

uint32_t arg_type(const Napi::CallbackInfo& info, size_t i) {
  auto t = uint32_t(arg_number(info, i, "type"));
  if (!sparrow::quant_supported(t))
    throw sparrow::addon::js_error(info.Env(), "ERR_UNSUPPORTED_TYPE", "type " + std::to_string(t) + " is not supported");
  return t;
}

template <typename T>
T arg_typed(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsTypedArray())
    throw sparrow::addon::js_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a typed array");
  return info[i].As<T>();
}

// Checks that a weight buffer holds rows x cols of `type`.
void check_weights(const Napi::CallbackInfo& info, uint32_t type, size_t bytes, int64_t rows, int64_t cols) {
  int64_t bs = sparrow::quant_block_size(type);
  if (rows <= 0 || cols <= 0 || cols % bs != 0 || bytes != size_t(rows) * sparrow::quant_row_bytes(type, cols))
    throw sparrow::addon::js_error(info.Env(), "ERR_INVALID_ARG", "weight bytes do not match rows x cols for this type");
}

Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = arg_type(info, 0);
  auto x = arg_typed<Napi::Float32Array>(info, 1, "x");
  int64_t n = int64_t(x.ElementLength());
  if (n % sparrow::quant_block_size(type) != 0)
    throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "length must be a multiple of the block size");
  auto out = Napi::Uint8Array::New(env, sparrow::quant_row_bytes(type, n));
  sparrow::quantize_row(type, x.Data(), out.Data(), n);
  return out;
}

Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = arg_type(info, 0);
  auto bytes = arg_typed<Napi::Uint8Array>(info, 1, "bytes");
  auto n = int64_t(arg_number(info, 2, "n"));
  if (n < 0 || n % sparrow::quant_block_size(type) != 0 || bytes.ByteLength() < sparrow::quant_row_bytes(type, n))
    throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "n does not fit the bytes given");
  auto out = Napi::Float32Array::New(env, size_t(n));
  sparrow::dequantize_row(type, bytes.Data(), out.Data(), n);
  return out;
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Isa isa = arg_isa(info, 0);
    uint32_t type = arg_type(info, 1);
    auto w = arg_typed<Napi::Uint8Array>(info, 2, "w");
    auto rows = int64_t(arg_number(info, 3, "rows")), cols = int64_t(arg_number(info, 4, "cols"));
    auto x = arg_typed<Napi::Float32Array>(info, 5, "x");
    auto n = int64_t(arg_number(info, 6, "n"));
    int64_t r0 = info.Length() > 7 ? int64_t(arg_number(info, 7, "r0")) : 0;
    int64_t r1 = info.Length() > 8 ? int64_t(arg_number(info, 8, "r1")) : rows;
    check_weights(info, type, w.ByteLength(), rows, cols);
    if (n < 0 || x.ElementLength() != size_t(n * cols))
      throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "x must hold n x cols floats");
    auto m = sparrow::make_matrix(type, w.Data(), rows, cols, "test");
    std::vector<uint8_t> xq(m->input_bytes(n) + 64);
    m->quantize_input(x.Data(), n, xq.data());
    auto y = Napi::Float32Array::New(env, size_t(n * rows));
    std::memset(y.Data(), 0, y.ByteLength());
    Isa saved = sparrow::current_isa();
    sparrow::set_isa(isa);
    try {
      m->mul(xq.data(), n, y.Data(), rows, r0, r1);
    } catch (...) {
      sparrow::set_isa(saved);
      throw;
    }
    sparrow::set_isa(saved);
    return y;
  });
}

Napi::Value SparseMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Isa isa = arg_isa(info, 0);
    uint32_t type = arg_type(info, 1);
    auto w = arg_typed<Napi::Uint8Array>(info, 2, "w");
    auto rows = int64_t(arg_number(info, 3, "rows")), cols = int64_t(arg_number(info, 4, "cols"));
    auto x = arg_typed<Napi::Float32Array>(info, 5, "x");
    auto n = int64_t(arg_number(info, 6, "n"));
    int64_t r0 = info.Length() > 7 ? int64_t(arg_number(info, 7, "r0")) : 0;
    int64_t r1 = info.Length() > 8 ? int64_t(arg_number(info, 8, "r1")) : rows;
    check_weights(info, type, w.ByteLength(), rows, cols);
    if (n < 0 || x.ElementLength() != size_t(n * cols))
      throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "x must hold n x cols floats");
    auto stats = std::make_shared<sparrow::SparseStats>();
    auto m = sparrow::make_sparse_matrix(type, w.Data(), rows, cols, "test", stats);
    std::vector<uint8_t> xq(m->input_bytes(n) + 64);
    m->quantize_input(x.Data(), n, xq.data());
    auto y = Napi::Float32Array::New(env, size_t(n * rows));
    std::memset(y.Data(), 0, y.ByteLength());
    Isa saved = sparrow::current_isa();
    sparrow::set_isa(isa);
    try {
      m->mul(xq.data(), n, y.Data(), rows, r0, r1);
    } catch (...) {
      sparrow::set_isa(saved);
      throw;
    }
    sparrow::set_isa(saved);
    Napi::Object o = Napi::Object::New(env);
    o.Set("y", y);
    o.Set("read", Napi::Number::New(env, double(stats->read.load())));
    o.Set("dense", Napi::Number::New(env, double(stats->dense.load())));
    return o;
  });
}

Napi::Value SparseModelRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::string path = arg_string(info, 0, "path");
    sparrow::ModelOptions o;
    o.sparsity = float(arg_number(info, 1, "sparsity"));
    o.threads = int(arg_number(info, 2, "threads"));
    auto prompt = arg_typed<Napi::Int32Array>(info, 3, "prompt");
    auto decode = arg_typed<Napi::Int32Array>(info, 4, "decode");
    auto m = sparrow::Model::load(path, o);
    sparrow::SparseStats* st = m->sparse_stats();
    sparrow::SessionOptions so;
    so.context_size = 256;
    sparrow::Session a(m, so), b(m, so), c(m, so);
    const size_t V = size_t(a.output_width()), np = prompt.ElementLength(), nd = decode.ElementLength();
    auto logits = Napi::Float32Array::New(env, V * (nd + 1));
    auto batched = Napi::Float32Array::New(env, 2 * V * nd);
    std::vector<float> out = a.evaluate(prompt.Data(), np, false, nullptr);
    std::memcpy(logits.Data(), out.data() + out.size() - V, V * 4);
    const double p_read = st ? double(st->read.load()) : 0, p_dense = st ? double(st->dense.load()) : 0;
    if (st) st->reset();
    for (size_t i = 0; i < nd; i++) {
      out = a.evaluate(decode.Data() + i, 1, false, nullptr);
      std::memcpy(logits.Data() + V * (i + 1), out.data() + out.size() - V, V * 4);
    }
    const double d_read = st ? double(st->read.load()) : 0, d_dense = st ? double(st->dense.load()) : 0;
    b.evaluate(prompt.Data(), np, false, nullptr);
    c.evaluate(prompt.Data(), np, false, nullptr);
    for (size_t i = 0; i < nd; i++) {
      sparrow::Session* ss[2] = {&b, &c};
      int32_t toks[2] = {decode.Data()[i], decode.Data()[i]};
      float* dst[2] = {batched.Data() + 2 * V * i, batched.Data() + 2 * V * i + V};
      sparrow::Session::decode_batch(ss, toks, 2, dst);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("logits", logits);
    r.Set("batched", batched);
    r.Set("promptRead", p_read);
    r.Set("promptDense", p_dense);
    r.Set("decodeRead", d_read);
    r.Set("decodeDense", d_dense);
    return r;
  });
}

Napi::Value SparseGetRow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    uint32_t type = arg_type(info, 0);
    auto w = arg_typed<Napi::Uint8Array>(info, 1, "w");
    auto rows = int64_t(arg_number(info, 2, "rows")), cols = int64_t(arg_number(info, 3, "cols"));
    auto r = int64_t(arg_number(info, 4, "r"));
    check_weights(info, type, w.ByteLength(), rows, cols);
    if (r < 0 || r >= rows) throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "r is out of range");
    auto m = sparrow::make_sparse_matrix(type, w.Data(), rows, cols, "test", nullptr);
    auto out = Napi::Float32Array::New(env, size_t(cols));
    m->get_row(r, out.Data());
    return out;
  });
}

Napi::Value SparseInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array types = Napi::Array::New(env);
  for (uint32_t t = 0; t < 64; t++)
    if (sparrow::sparse_supported(t)) types.Set(types.Length(), Napi::Number::New(env, t));
  Napi::Array isas = Napi::Array::New(env);
  for (Isa i : {Isa::Generic, Isa::AVX2, Isa::AVX512, Isa::NEON}) {
    const sparrow::SparseKernels& sk = sparrow::sparse_kernels_for(i);
    if (sparrow::isa_compiled(i) && sk.smm_q4_0) isas.Set(isas.Length(), Napi::String::New(env, sparrow::isa_name(i)));
  }
  o.Set("types", types);
  o.Set("kernelIsas", isas);
  return o;
}

Napi::Value MatmulReference(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = arg_type(info, 0);
  auto w = arg_typed<Napi::Uint8Array>(info, 1, "w");
  auto rows = int64_t(arg_number(info, 2, "rows")), cols = int64_t(arg_number(info, 3, "cols"));
  auto x = arg_typed<Napi::Float32Array>(info, 4, "x");
  auto n = int64_t(arg_number(info, 5, "n"));
  check_weights(info, type, w.ByteLength(), rows, cols);
  if (n < 0 || x.ElementLength() != size_t(n * cols))
    throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "x must hold n x cols floats");
  auto y = Napi::Float64Array::New(env, size_t(n * rows));
  std::vector<float> row(static_cast<size_t>(cols));
  size_t rb = sparrow::quant_row_bytes(type, cols);
  for (int64_t r = 0; r < rows; r++) {
    sparrow::dequantize_row(type, w.Data() + r * rb, row.data(), cols);
    for (int64_t t = 0; t < n; t++) {
      double s = 0;
      for (int64_t c = 0; c < cols; c++) s += double(row[c]) * double(x.Data()[t * cols + c]);
      y.Data()[t * rows + r] = s;
    }
  }
  return y;
}

Napi::Value DotF16(const Napi::CallbackInfo& info) {
  Isa isa = arg_isa(info, 0);
  auto a = arg_typed<Napi::Uint16Array>(info, 1, "a");
  auto b = arg_typed<Napi::Float32Array>(info, 2, "b");
  if (a.ElementLength() != b.ElementLength())
    throw sparrow::addon::js_error(info.Env(), "ERR_INVALID_ARG", "a and b must have the same length");
  return Napi::Number::New(info.Env(), sparrow::kernels_for(isa).dot_f16_f32(a.Data(), b.Data(), int64_t(a.ElementLength())));
}

Napi::Value AxpyF16(const Napi::CallbackInfo& info) {
  Isa isa = arg_isa(info, 0);
  auto a = float(arg_number(info, 1, "a"));
  auto x = arg_typed<Napi::Uint16Array>(info, 2, "x");
  auto y = arg_typed<Napi::Float32Array>(info, 3, "y");
  if (x.ElementLength() != y.ElementLength())
    throw sparrow::addon::js_error(info.Env(), "ERR_INVALID_ARG", "x and y must have the same length");
  auto out = Napi::Float32Array::New(info.Env(), y.ElementLength());
  if (y.ByteLength()) std::memcpy(out.Data(), y.Data(), y.ByteLength());  // an empty array may have no buffer
  sparrow::kernels_for(isa).axpy_f16(a, x.Data(), out.Data(), int64_t(x.ElementLength()));
  return out;
}

Napi::Value QuantizeActivations(const Napi::CallbackInfo& info) {
  Isa isa = arg_isa(info, 0);
  const int block = int(arg_number(info, 1, "block"));
  auto x = arg_typed<Napi::Float32Array>(info, 2, "x");
  if ((block != 32 && block != 256) || x.ElementLength() % size_t(block) != 0)
    throw sparrow::addon::js_error(info.Env(), "ERR_INVALID_ARG", "block must be 32 or 256 and divide the length of x");
  const size_t blocks = x.ElementLength() / size_t(block);
  const auto& k = sparrow::kernels_for(isa);
  auto out = Napi::Uint8Array::New(info.Env(), blocks * (block == 32 ? sparrow::kQ8ABytes : sparrow::kQ8KABytes));
  if (blocks) (block == 32 ? k.quantize_q8a : k.quantize_q8ka)(x.Data(), out.Data(), int64_t(x.ElementLength()));
  return out;
}

Napi::Value ConvertF16(const Napi::CallbackInfo& info) {
  Isa isa = arg_isa(info, 0);
  const std::string op = arg_string(info, 1, "op");
  const auto& k = sparrow::kernels_for(isa);
  if (op == "from") {
    auto x = arg_typed<Napi::Uint16Array>(info, 2, "x");
    auto out = Napi::Float32Array::New(info.Env(), x.ElementLength());
    k.f16_to_f32(x.Data(), out.Data(), int64_t(x.ElementLength()));
    return out;
  }
  auto x = arg_typed<Napi::Float32Array>(info, 2, "x");
  if (op == "to") {
    auto out = Napi::Uint16Array::New(info.Env(), x.ElementLength());
    k.f32_to_f16(x.Data(), out.Data(), int64_t(x.ElementLength()));
    return out;
  }
  if (op != "round") throw sparrow::addon::js_error(info.Env(), "ERR_INVALID_ARG", "op must be 'to', 'from' or 'round'");
  auto out = Napi::Float32Array::New(info.Env(), x.ElementLength());
  k.round_f16(x.Data(), out.Data(), int64_t(x.ElementLength()));
  return out;
}

Napi::Value GetRow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    uint32_t type = arg_type(info, 0);
    auto w = arg_typed<Napi::Uint8Array>(info, 1, "w");
    auto rows = int64_t(arg_number(info, 2, "rows")), cols = int64_t(arg_number(info, 3, "cols"));
    auto r = int64_t(arg_number(info, 4, "r"));
    check_weights(info, type, w.ByteLength(), rows, cols);
    if (r < 0 || r >= rows) throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "row out of range");
    auto m = sparrow::make_matrix(type, w.Data(), rows, cols, "test");
    auto out = Napi::Float32Array::New(env, size_t(cols));
    m->get_row(r, out.Data());
    return out;
  });
}

Napi::Value MakeMatrix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto type = uint32_t(arg_number(info, 0, "type"));
    auto rows = int64_t(arg_number(info, 1, "rows")), cols = int64_t(arg_number(info, 2, "cols"));
    std::string name = arg_string(info, 3, "name");
    std::vector<uint8_t> zeros;
    if (sparrow::quant_supported(type)) zeros.resize(size_t(rows) * sparrow::quant_row_bytes(type, cols - cols % sparrow::quant_block_size(type)) + 1024);
    auto m = sparrow::make_matrix(type, zeros.data(), rows, cols, name.c_str());
    Napi::Object o = Napi::Object::New(env);
    o.Set("rowAlign", Napi::Number::New(env, double(m->row_align())));
    o.Set("inputBytesPerToken", Napi::Number::New(env, double(m->input_bytes(1))));
    return o;
  });
}

// _benchMatmul(isa, type, rows, cols, n, iters, threads) -> { seconds, weightBytes }:
// seconds per mul() of n tokens (rows split across `threads` threads as the forward
// pass does), after one warm-up call. For bench/kernels.mjs.
Napi::Value BenchMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Isa isa = arg_isa(info, 0);
    uint32_t type = arg_type(info, 1);
    auto rows = int64_t(arg_number(info, 2, "rows")), cols = int64_t(arg_number(info, 3, "cols"));
    auto n = int64_t(arg_number(info, 4, "n")), iters = int64_t(arg_number(info, 5, "iters"));
    int threads = int(arg_number(info, 6, "threads"));
    std::mt19937 gen(42);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    std::vector<float> wf(size_t(rows * cols)), x(size_t(n * cols));
    for (float& v : wf) v = dist(gen);
    for (float& v : x) v = dist(gen);
    size_t wbytes = size_t(rows) * sparrow::quant_row_bytes(type, cols);
    std::vector<uint8_t> w(wbytes);
    for (int64_t r = 0; r < rows; r++)
      sparrow::quantize_row(type, wf.data() + r * cols, w.data() + r * sparrow::quant_row_bytes(type, cols), cols);
    // For small n (memory-bound GEMV) cycle through copies of the matrix that together
    // exceed the caches, so that the figure is a DRAM stream, as in decoding.
    size_t copies = n <= 4 ? std::max<size_t>(1, (size_t(256) << 20) / wbytes) : 1;
    std::vector<std::unique_ptr<sparrow::Matrix>> ms;
    for (size_t i = 0; i < copies; i++) ms.push_back(sparrow::make_matrix(type, w.data(), rows, cols, "bench"));
    size_t next = 0;
    const sparrow::Matrix* m = ms[0].get();
    std::vector<uint8_t> xq(m->input_bytes(n) + 64);
    std::vector<float> y(size_t(n * rows));
    Isa saved = sparrow::current_isa();
    sparrow::set_isa(isa);
    int64_t align = m->row_align();
    auto run = [&]() {
      m = ms[next++ % copies].get();
      m->quantize_input(x.data(), n, xq.data());
      std::vector<std::thread> pool;
      int64_t per = ((rows + threads - 1) / threads + align - 1) / align * align;
      for (int i = 1; i < threads; i++) {
        int64_t r0 = std::min(rows, per * i), r1 = std::min(rows, per * (i + 1));
        pool.emplace_back([&, r0, r1] { m->mul(xq.data(), n, y.data(), rows, r0, r1); });
      }
      m->mul(xq.data(), n, y.data(), rows, 0, std::min(rows, per));
      for (auto& t : pool) t.join();
    };
    run();
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; i++) run();
    double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(iters);
    sparrow::set_isa(saved);
    Napi::Object o = Napi::Object::New(env);
    o.Set("seconds", sec);
    o.Set("weightBytes", double(wbytes));
    return o;
  });
}

}  // namespace

SPARROW_INTERNAL_BINDING(kernels) {
  exports.Set("_quantize", Napi::Function::New(env, Quantize, "_quantize"));
  exports.Set("_dequantize", Napi::Function::New(env, Dequantize, "_dequantize"));
  exports.Set("_matmul", Napi::Function::New(env, Matmul, "_matmul"));
  exports.Set("_sparseMatmul", Napi::Function::New(env, SparseMatmul, "_sparseMatmul"));
  exports.Set("_sparseModelRun", Napi::Function::New(env, SparseModelRun, "_sparseModelRun"));
  exports.Set("_sparseGetRow", Napi::Function::New(env, SparseGetRow, "_sparseGetRow"));
  exports.Set("_sparseInfo", Napi::Function::New(env, SparseInfo, "_sparseInfo"));
  exports.Set("_matmulReference", Napi::Function::New(env, MatmulReference, "_matmulReference"));
  exports.Set("_dotF16", Napi::Function::New(env, DotF16, "_dotF16"));
  exports.Set("_axpyF16", Napi::Function::New(env, AxpyF16, "_axpyF16"));
  exports.Set("_convertF16", Napi::Function::New(env, ConvertF16, "_convertF16"));
  exports.Set("_quantizeActivations", Napi::Function::New(env, QuantizeActivations, "_quantizeActivations"));
  exports.Set("_getRow", Napi::Function::New(env, GetRow, "_getRow"));
  exports.Set("_benchMatmul", Napi::Function::New(env, BenchMatmul, "_benchMatmul"));
  exports.Set("_makeMatrix", Napi::Function::New(env, MakeMatrix, "_makeMatrix"));
}
