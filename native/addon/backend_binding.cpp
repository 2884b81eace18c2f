// Test access to the backend operations, under the addon's one internal object:
//   internal.backends() -> string[]                 the backends this build can run
//   internal.backendOp(op, spec) -> Float32Array | Float32Array[]
//   internal.pvF16(isa, w, v, out, rows, np, hd) -> Float32Array   attention's P V kernel alone
// Not public API: it exists for the per-op test suite (test/backend/), which runs every
// operation of every backend on every ISA path against plain references. Each call makes
// a fresh backend, runs one pass of the operation over the tokens of `spec.seqs` and
// returns the result. spec (all ops): backend ('cpu', or 'vulkan' with gpuDevice: the GPU suite
// test/gpu/ compares the two; backends() lists only the bit-exact CPU), isa (a kernels path, forced for the
// call), threads (1), seqs ([{ pos0, n }], default: one sequence at 0 of all the rows).
// Per op (arrays are row-major, one row per token):
//   embed       { type, w: Uint8Array, rows, cols, tokens: Int32Array }
//   rmsnorm     { x, width, w, eps }
//   rmsnormHeads { x, width, headDim, w (headDim floats), eps }   in place, per head
//   matmul      { inputs: Float32Array[], mats: [{ type, w, rows, cols, input }] } -> one y per mat
//   addBias     { y, width, b }
//   rope        { x, width, nHeads, headDim, ropeDim, base, freqScale, style, factors?, attnFactor? }
//   glu         { kind: 'swiglu' | 'geglu', gate, up, width }
//   add         { x, y, width }
//   scale       { x, width, s }
//   sparsify    { x, width, frac: Float32Array (one per row), reference? }  in place; reference:
//               the plain twin (sparsify.h) instead of the backend's op
//   moe         { x, width, nExpert, nUsed, ff, norm?, act?, router: Float32Array (nExpert x width),
//                 type, gate, up (Uint8Array: nExpert matrices ff x width), down (nExpert x width x ff) }
//   attention   { route: 'default' | 'flash', nHead, nHeadKv, headDim, scale, softcap?, window?, sinks?, kvType, ctx, q,
//                 k, v: per sequence its positions [0, pos0 + n) (history, then its tokens) }
//   logits      { x, width, norm, eps, type, w, rows, cols, select: Int32Array, scatter?, softcap? }
//   ropeCache   { k (len rows), nLayer, nHeadKv, headDim, ropeDim, base, freqScale, style, factors?,
//                 factorsLong?, longAbove? (the long factors when ctx > longAbove), attnFactor?,
//                 layerBases? (nLayer floats: each layer its own base), kvType, ctx, p0, p1, delta }
//                 -> the cached keys afterwards, [layer][head][len][headDim]
#include <cstring>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "addon.h"
#include "backend/cpu_backend.h"
#include "backend/sparsify.h"
#include "core/error.h"
#include "gpu/gpu.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "quant/quant.h"
#include "runtime/kv_cache.h"

namespace {

using sparrow::Act;
using sparrow::Backend;
using sparrow::sparrow_error;

[[noreturn]] void bad(const std::string& msg) { throw sparrow_error("ERR_INVALID_ARG", "backendOp: " + msg); }

struct Spec {
  Napi::Object o;
  bool has(const char* k) const { return o.Has(k) && !o.Get(k).IsUndefined(); }
  double num(const char* k) const {
    if (!o.Get(k).IsNumber()) bad(std::string(k) + " must be a number");
    return o.Get(k).As<Napi::Number>().DoubleValue();
  }
  double num(const char* k, double dflt) const { return has(k) ? num(k) : dflt; }
  int integer(const char* k) const { return int(num(k)); }
  int integer(const char* k, int dflt) const { return has(k) ? integer(k) : dflt; }
  std::string str(const char* k, const char* dflt) const {
    if (!has(k)) return dflt;
    if (!o.Get(k).IsString()) bad(std::string(k) + " must be a string");
    return o.Get(k).As<Napi::String>().Utf8Value();
  }
  std::vector<float> f32(const char* k) const {
    if (!o.Get(k).IsTypedArray() || o.Get(k).As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      bad(std::string(k) + " must be a Float32Array");
    auto a = o.Get(k).As<Napi::Float32Array>();
    return std::vector<float>(a.Data(), a.Data() + a.ElementLength());
  }
  std::vector<int32_t> i32(const char* k) const {
    if (!o.Get(k).IsTypedArray() || o.Get(k).As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      bad(std::string(k) + " must be an Int32Array");
    auto a = o.Get(k).As<Napi::Int32Array>();
    return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
  }
  std::vector<uint8_t> u8(const char* k) const {
    if (!o.Get(k).IsTypedArray() || o.Get(k).As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      bad(std::string(k) + " must be a Uint8Array");
    auto a = o.Get(k).As<Napi::Uint8Array>();
    return std::vector<uint8_t>(a.Data(), a.Data() + a.ByteLength());
  }
};

std::unique_ptr<Backend> make_backend(const std::string& name, int threads, int gpu_device) {
  if (threads < 1 || threads > 64) bad("threads must be 1..64");
  if (name == "cpu") return std::make_unique<sparrow::CpuBackend>(threads);
  // The Vulkan backend (builds with it, where a device exists): gpuDevice, else the first device.
  if (name == "vulkan") return sparrow::gpu_make_backend(gpu_device >= 0 ? gpu_device : sparrow::gpu_choose(sparrow::GpuMode::Vulkan, -1));
  bad("unknown backend '" + name + "'");
}

// A weight matrix over bytes the caller keeps alive.
std::unique_ptr<sparrow::Matrix> matrix(uint32_t type, const std::vector<uint8_t>& w, int64_t rows, int64_t cols) {
  if (!sparrow::quant_supported(type)) bad("unsupported type " + std::to_string(type));
  if (rows <= 0 || cols <= 0 || cols % sparrow::quant_block_size(type) != 0 ||
      w.size() != size_t(rows) * sparrow::quant_row_bytes(type, cols))
    bad("weight bytes do not match rows x cols for this type");
  return sparrow::make_matrix(type, w.data(), rows, cols, "test");
}

sparrow::RopeStyle rope_style(const std::string& s) {
  if (s == "normal") return sparrow::RopeStyle::Normal;
  if (s == "neox") return sparrow::RopeStyle::NeoX;
  bad("style must be 'normal' or 'neox'");
}

sparrow::KVType kv_type(const std::string& s) {
  sparrow::KVType t;
  if (!sparrow::kv_type_from_name(s, &t)) bad("kvType must be 'f16' or 'q8_0'");
  return t;
}

// A buffer of the pass filled from a host array of rows x width.
Act input(Backend& be, const std::vector<float>& data, int width) {
  if (width <= 0 || data.size() != size_t(be.tokens()) * size_t(width))
    bad("an input holds " + std::to_string(data.size()) + " floats, expected tokens x width = " +
        std::to_string(be.tokens()) + " x " + std::to_string(width));
  Act a = be.alloc(width);
  be.write(a, data.data());
  return a;
}

Napi::Float32Array output(Napi::Env env, Backend& be, Act a) {
  auto out = Napi::Float32Array::New(env, size_t(a.rows) * size_t(a.width));
  be.read(a, out.Data());
  return out;
}

Napi::Value run(Napi::Env env, const std::string& op, const Spec& s) {
  auto be = make_backend(s.str("backend", "cpu"), s.integer("threads", 1), s.integer("gpuDevice", -1));
  // The sequences of the pass.
  std::vector<sparrow::SeqSpan> seqs;
  if (s.has("seqs")) {
    if (!s.o.Get("seqs").IsArray()) bad("seqs must be an array");
    auto arr = s.o.Get("seqs").As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Spec e{arr.Get(i).As<Napi::Object>()};
      sparrow::SeqSpan q;
      q.pos0 = e.integer("pos0", 0);
      q.n = e.integer("n");
      if (q.pos0 < 0 || q.n < 1) bad("a sequence needs pos0 >= 0 and n >= 1");
      seqs.push_back(q);
    }
  }
  auto one_seq = [&](size_t floats, int width) {
    if (seqs.empty()) {
      if (width <= 0 || floats % size_t(width) != 0) bad("width does not divide the input");
      seqs.push_back({nullptr, 0, int(floats / size_t(width)), false});
    }
    be->begin(seqs.data(), int(seqs.size()));
  };

  if (op == "embed") {
    auto w = s.u8("w");
    auto m = matrix(uint32_t(s.integer("type")), w, s.integer("rows"), s.integer("cols"));
    auto tokens = s.i32("tokens");
    for (int32_t t : tokens)
      if (t < 0 || t >= m->rows()) bad("token out of range");
    one_seq(tokens.size(), 1);
    Act out = be->alloc(int(m->cols()));
    be->embed(*m, tokens.data(), out);
    return output(env, *be, out);
  }
  if (op == "rmsnorm") {
    const int width = s.integer("width");
    auto x = s.f32("x"), w = s.f32("w");
    if (w.size() != size_t(width)) bad("w must hold width floats");
    one_seq(x.size(), width);
    Act a = input(*be, x, width), out = be->alloc(width);
    be->rmsnorm(a, w, float(s.num("eps")), out);
    return output(env, *be, out);
  }
  if (op == "rmsnormHeads") {
    const int width = s.integer("width"), hd = s.integer("headDim");
    auto x = s.f32("x"), w = s.f32("w");
    if (hd < 1 || width % hd != 0) bad("headDim must divide width");
    if (w.size() != size_t(hd)) bad("w must hold headDim floats");
    one_seq(x.size(), width);
    Act a = input(*be, x, width);
    be->rmsnorm_heads(a, hd, w, float(s.num("eps")));
    return output(env, *be, a);
  }
  if (op == "matmul") {
    if (!s.o.Get("inputs").IsArray() || !s.o.Get("mats").IsArray()) bad("inputs and mats must be arrays");
    auto ins = s.o.Get("inputs").As<Napi::Array>();
    auto ms = s.o.Get("mats").As<Napi::Array>();
    std::vector<std::vector<uint8_t>> bytes(ms.Length());
    std::vector<std::unique_ptr<sparrow::Matrix>> mats;
    std::vector<int> which;
    for (uint32_t i = 0; i < ms.Length(); i++) {
      Spec m{ms.Get(i).As<Napi::Object>()};
      bytes[i] = m.u8("w");
      mats.push_back(matrix(uint32_t(m.integer("type")), bytes[i], m.integer("rows"), m.integer("cols")));
      which.push_back(m.integer("input"));
      if (which.back() < 0 || uint32_t(which.back()) >= ins.Length()) bad("a mat's input is out of range");
    }
    if (mats.empty()) bad("mats must not be empty");
    std::vector<std::vector<float>> xs;
    for (uint32_t i = 0; i < ins.Length(); i++) {
      Napi::Object holder = Napi::Object::New(env);
      holder.Set("x", ins.Get(i));
      xs.push_back(Spec{holder}.f32("x"));
    }
    one_seq(xs[size_t(which[0])].size(), int(mats[0]->cols()));
    std::vector<Act> in_acts(xs.size());
    for (size_t m = 0; m < mats.size(); m++) {
      Act& a = in_acts[size_t(which[m])];
      if (!a.valid()) a = input(*be, xs[size_t(which[m])], int(mats[m]->cols()));
      else if (a.width != mats[m]->cols()) bad("mats sharing an input must have the same cols");
    }
    std::vector<sparrow::MatMul> group;
    for (size_t m = 0; m < mats.size(); m++) group.push_back({mats[m].get(), in_acts[size_t(which[m])], be->alloc(int(mats[m]->rows()))});
    be->matmul(group);
    auto out = Napi::Array::New(env, group.size());
    for (size_t m = 0; m < group.size(); m++) out.Set(uint32_t(m), output(env, *be, group[m].y));
    return out;
  }
  if (op == "addBias") {
    const int width = s.integer("width");
    auto y = s.f32("y"), b = s.f32("b");
    if (!b.empty() && b.size() != size_t(width)) bad("b must hold width floats (or none)");
    one_seq(y.size(), width);
    Act a = input(*be, y, width);
    be->add_bias(a, b);
    return output(env, *be, a);
  }
  if (op == "rope") {
    const int width = s.integer("width");
    auto x = s.f32("x");
    std::vector<float> factors;
    if (s.has("factors")) factors = s.f32("factors");
    sparrow::RopeParams p;
    p.head_dim = s.integer("headDim");
    p.rope_dim = s.integer("ropeDim");
    p.base = float(s.num("base"));
    p.freq_scale = float(s.num("freqScale", 1.0));
    p.style = rope_style(s.str("style", "normal"));
    p.factors = &factors;
    p.attn_factor = float(s.num("attnFactor", 1.0));
    p.ext_factor = float(s.num("extFactor", 0.0));
    p.yarn_orig_ctx = s.integer("yarnOrigCtx", 0);
    p.beta_fast = float(s.num("betaFast", 32.0));
    p.beta_slow = float(s.num("betaSlow", 1.0));
    if (p.ext_factor != 0.0f && p.yarn_orig_ctx <= 0) bad("yarnOrigCtx must be positive with extFactor");
    const int heads = s.integer("nHeads");
    if (p.rope_dim % 2 || p.rope_dim > p.head_dim || heads * p.head_dim > width) bad("bad rope shape");
    if (!factors.empty() && factors.size() != size_t(p.rope_dim / 2)) bad("factors must hold ropeDim/2 floats");
    one_seq(x.size(), width);
    Act a = input(*be, x, width);
    be->rope(a, heads, p);
    return output(env, *be, a);
  }
  if (op == "glu") {
    const int width = s.integer("width");
    const std::string kind = s.str("kind", "swiglu");
    if (kind != "swiglu" && kind != "geglu" && kind != "swiglu_oai") bad("kind must be 'swiglu', 'geglu' or 'swiglu_oai'");
    auto g = s.f32("gate"), u = s.f32("up");
    one_seq(g.size(), width);
    Act a = input(*be, g, width), b = input(*be, u, width), out = be->alloc(width);
    be->glu(kind == "geglu" ? sparrow::GluKind::GeGLU : kind == "swiglu_oai" ? sparrow::GluKind::SwiGLUOAI : sparrow::GluKind::SwiGLU, a, b,
            out);
    return output(env, *be, out);
  }
  if (op == "scale") {
    const int width = s.integer("width");
    auto x = s.f32("x");
    one_seq(x.size(), width);
    Act a = input(*be, x, width);
    be->scale(a, float(s.num("s")));
    return output(env, *be, a);
  }
  if (op == "sparsify") {
    const int width = s.integer("width");
    auto x = s.f32("x"), frac = s.f32("frac");
    one_seq(x.size(), width);
    if (frac.size() != size_t(be->tokens())) bad("frac needs one fraction per row");
    if (s.has("reference") && s.o.Get("reference").ToBoolean().Value()) {
      for (size_t t = 0; t < frac.size(); t++)
        sparrow::sparsify_row_reference(x.data() + t * size_t(width), width, sparrow::sparsify_count(frac[t], width));
      auto out = Napi::Float32Array::New(env, x.size());
      std::memcpy(out.Data(), x.data(), x.size() * sizeof(float));
      return out;
    }
    Act a = input(*be, x, width);
    be->sparsify(a, frac);
    return output(env, *be, a);
  }
  if (op == "moe") {
    const int width = s.integer("width"), E = s.integer("nExpert"), K = s.integer("nUsed"), F = s.integer("ff");
    if (E < 1 || K < 1 || K > E || F < 1) bad("bad expert counts");
    const uint32_t type = uint32_t(s.integer("type"));
    auto x = s.f32("x"), router = s.f32("router");
    if (router.size() != size_t(E) * size_t(width)) bad("router must hold nExpert x width floats");
    std::vector<uint8_t> rb(router.size() * 4);
    std::memcpy(rb.data(), router.data(), rb.size());
    auto r = matrix(0, rb, E, width);
    const auto g = s.u8("gate"), u = s.u8("up"), d = s.u8("down");
    std::vector<std::vector<uint8_t>> parts;
    std::vector<std::unique_ptr<sparrow::Matrix>> mats;
    sparrow::MoeFfn m;
    m.router = r.get();
    m.n_used = K;
    m.norm = s.has("norm") ? s.o.Get("norm").ToBoolean().Value() : true;
    const std::string act = s.str("act", "swiglu");
    m.act = act == "geglu" ? sparrow::GluKind::GeGLU : act == "swiglu_oai" ? sparrow::GluKind::SwiGLUOAI : sparrow::GluKind::SwiGLU;
    // gpt-oss: weightSoftmax (softmax over the chosen logits), routerBias (nExpert floats),
    // gateBias / upBias (nExpert x ff floats), downBias (nExpert x width).
    m.weight_softmax = s.has("weightSoftmax") && s.o.Get("weightSoftmax").ToBoolean().Value();
    std::vector<float> router_bias;
    if (s.has("routerBias")) {
      router_bias = s.f32("routerBias");
      if (router_bias.size() != size_t(E)) bad("routerBias must hold nExpert floats");
      m.router_bias = &router_bias;
    }
    std::vector<std::vector<float>> biases;
    biases.reserve(size_t(3 * E));
    for (const auto& [key, rows, dest] : {std::make_tuple("gateBias", F, &m.gate_bias), std::make_tuple("upBias", F, &m.up_bias),
                                          std::make_tuple("downBias", width, &m.down_bias)}) {
      if (!s.has(key)) continue;
      const auto all = s.f32(key);
      if (all.size() != size_t(E) * size_t(rows)) bad(std::string(key) + " must hold one bias per expert");
      for (int e = 0; e < E; e++) {
        biases.emplace_back(all.begin() + ptrdiff_t(size_t(e) * rows), all.begin() + ptrdiff_t(size_t(e + 1) * rows));
        dest->push_back(&biases.back());
      }
    }
    parts.reserve(size_t(3 * E));
    for (const auto* all : {&g, &u, &d}) {
      if (all->size() % size_t(E)) bad("expert bytes must split into nExpert matrices");
      const size_t per = all->size() / size_t(E);
      for (int e = 0; e < E; e++) {
        parts.emplace_back(all->begin() + ptrdiff_t(per * size_t(e)), all->begin() + ptrdiff_t(per * size_t(e + 1)));
        const bool is_down = all == &d;
        mats.push_back(matrix(type, parts.back(), is_down ? width : F, is_down ? F : width));
        (all == &g ? m.gate : all == &u ? m.up : m.down).push_back(mats.back().get());
      }
    }
    one_seq(x.size(), width);
    Act a = input(*be, x, width), out = be->alloc(width);
    be->moe(a, m, out);
    return output(env, *be, out);
  }
  if (op == "add") {
    const int width = s.integer("width");
    auto x = s.f32("x"), y = s.f32("y");
    one_seq(x.size(), width);
    Act a = input(*be, x, width), b = input(*be, y, width);
    be->add(a, b);
    return output(env, *be, a);
  }
  if (op == "attention") {
    sparrow::AttnParams p;
    p.n_head = s.integer("nHead");
    p.n_head_kv = s.integer("nHeadKv");
    p.head_dim = s.integer("headDim");
    p.scale = float(s.num("scale"));
    p.softcap = float(s.num("softcap", 0.0));
    p.window = s.integer("window", 0);
    if (p.softcap < 0 || p.window < 0) bad("softcap and window must not be negative");
    if (p.n_head < 1 || p.n_head_kv < 1 || p.n_head % p.n_head_kv || p.head_dim < 1) bad("bad head counts");
    std::vector<float> sinks;
    if (s.has("sinks")) {
      sinks = s.f32("sinks");
      if (sinks.size() != size_t(p.n_head)) bad("sinks must hold nHead floats");
      p.sinks = &sinks;
    }
    const int QD = p.n_head * p.head_dim, KVD = p.n_head_kv * p.head_dim, ctx = s.integer("ctx");
    const bool flash = s.str("route", "default") == "flash";
    auto q = s.f32("q"), k = s.f32("k"), v = s.f32("v");
    if (seqs.empty()) bad("attention needs seqs");
    size_t kv_rows = 0;
    for (const auto& sq : seqs) {
      if (sq.pos0 + sq.n > ctx) bad("a sequence runs past ctx");
      kv_rows += size_t(sq.pos0 + sq.n);
    }
    if (k.size() != kv_rows * KVD || v.size() != kv_rows * KVD) bad("k and v must hold every sequence's positions");
    std::vector<std::unique_ptr<sparrow::KVCache>> caches;
    for (auto& sq : seqs) {
      caches.push_back(std::make_unique<sparrow::KVCache>(1, ctx, p.n_head_kv, p.head_dim, kv_type(s.str("kvType", "f16"))));
      sq.kv = caches.back().get();
      sq.flash_attn = flash;
    }
    // The history of every sequence (positions [0, pos0)) goes to its cache in a pass of its own.
    std::vector<sparrow::SeqSpan> hist;
    std::vector<float> hk, hv, nk, nv;
    size_t off = 0;
    for (const auto& sq : seqs) {
      if (sq.pos0 > 0) hist.push_back({sq.kv, 0, sq.pos0, false});
      hk.insert(hk.end(), k.begin() + long(off * KVD), k.begin() + long((off + sq.pos0) * KVD));
      hv.insert(hv.end(), v.begin() + long(off * KVD), v.begin() + long((off + sq.pos0) * KVD));
      nk.insert(nk.end(), k.begin() + long((off + sq.pos0) * KVD), k.begin() + long((off + sq.pos0 + sq.n) * KVD));
      nv.insert(nv.end(), v.begin() + long((off + sq.pos0) * KVD), v.begin() + long((off + sq.pos0 + sq.n) * KVD));
      off += size_t(sq.pos0 + sq.n);
    }
    if (!hist.empty()) {
      be->begin(hist.data(), int(hist.size()));
      Act a = input(*be, hk, KVD), b = input(*be, hv, KVD);
      be->kv_store(0, a, b);
    }
    be->begin(seqs.data(), int(seqs.size()));
    Act qa = input(*be, q, QD), ka = input(*be, nk, KVD), va = input(*be, nv, KVD), out = be->alloc(QD);
    be->kv_store(0, ka, va);
    std::vector<int> all;
    for (size_t i = 0; i < seqs.size(); i++) all.push_back(int(i));
    if (flash) be->attention_flash(0, qa, out, p, all);
    else be->attention(0, qa, out, p, all);
    return output(env, *be, out);
  }
  if (op == "logits") {
    const int width = s.integer("width");
    auto x = s.f32("x"), norm = s.f32("norm");
    auto w = s.u8("w");
    auto m = matrix(uint32_t(s.integer("type")), w, s.integer("rows"), s.integer("cols"));
    if (m->cols() != width || norm.size() != size_t(width)) bad("norm and the matrix must have width columns");
    auto sel = s.i32("select");
    one_seq(x.size(), width);
    for (int32_t r : sel)
      if (r < 0 || r >= be->tokens()) bad("a selected row is out of range");
    Act a = input(*be, x, width);
    const size_t vocab = size_t(m->rows());
    auto out = Napi::Float32Array::New(env, sel.size() * vocab);
    std::vector<float*> dest;
    // scatter: row i of the selection goes to row (count - 1 - i) of the result, so the
    // write-out through scratch (destinations that do not follow each other) is tested too.
    const bool scatter = s.has("scatter") && s.o.Get("scatter").ToBoolean();
    for (size_t i = 0; i < sel.size(); i++) dest.push_back(out.Data() + (scatter ? sel.size() - 1 - i : i) * vocab);
    be->read_logits(a, norm, float(s.num("eps")), *m, std::vector<int>(sel.begin(), sel.end()), dest.data(),
                    float(s.num("softcap", 0.0)));
    return out;
  }
  if (op == "ropeCache") {
    sparrow::RopeParams p;
    p.head_dim = s.integer("headDim");
    p.rope_dim = s.integer("ropeDim");
    p.base = float(s.num("base"));
    p.freq_scale = float(s.num("freqScale", 1.0));
    p.style = rope_style(s.str("style", "normal"));
    std::vector<float> factors, factors_long;
    if (s.has("factors")) factors = s.f32("factors");
    if (s.has("factorsLong")) factors_long = s.f32("factorsLong");
    for (const auto* f : {&factors, &factors_long})
      if (!f->empty() && f->size() != size_t(p.rope_dim / 2)) bad("factors must hold ropeDim/2 floats");
    p.factors = &factors;
    p.factors_long = &factors_long;
    p.long_above = s.integer("longAbove", 0);
    p.attn_factor = float(s.num("attnFactor", 1.0));
    const int n_layer = s.integer("nLayer", 1), n_head_kv = s.integer("nHeadKv"), ctx = s.integer("ctx");
    const int KVD = n_head_kv * p.head_dim;
    auto k = s.f32("k");
    if (KVD <= 0 || k.size() % size_t(KVD)) bad("k must hold whole rows");
    const int len = int(k.size() / size_t(KVD));
    const int p0 = s.integer("p0"), p1 = s.integer("p1"), delta = s.integer("delta");
    if (len > ctx || p0 < 0 || p1 > len) bad("positions out of range");
    sparrow::KVCache kv(n_layer, ctx, n_head_kv, p.head_dim, kv_type(s.str("kvType", "f16")));
    sparrow::SeqSpan sq{&kv, 0, len, false};
    be->begin(&sq, 1);
    Act a = input(*be, k, KVD);
    for (int l = 0; l < n_layer; l++) be->kv_store(l, a, a);
    // Optional per-layer bases (layerBases: nLayer floats): every layer its own RoPE.
    std::vector<sparrow::RopeParams> layers{p};
    if (s.has("layerBases")) {
      const auto bases = s.f32("layerBases");
      if (bases.size() != size_t(n_layer)) bad("layerBases must hold nLayer floats");
      layers.assign(size_t(n_layer), p);
      for (int l = 0; l < n_layer; l++) layers[size_t(l)].base = bases[size_t(l)];
    }
    be->rope_cache(kv, p0, p1, delta, layers);
    auto out = Napi::Float32Array::New(env, size_t(n_layer) * size_t(n_head_kv) * size_t(len) * size_t(p.head_dim));
    for (int l = 0; l < n_layer; l++)
      for (int h = 0; h < n_head_kv; h++)
        kv.read_k(l, h, 0, len, out.Data() + (size_t(l) * n_head_kv + h) * size_t(len) * p.head_dim);
    return out;
  }
  bad("unknown op '" + op + "'");
}

Napi::Value BackendOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SPARROW_GUARD(env, {
    const std::string op = sparrow::addon::arg_string(info, 0, "op");
    if (info.Length() < 2 || !info[1].IsObject()) bad("spec must be an object");
    Spec s{info[1].As<Napi::Object>()};
    sparrow::Isa isa = sparrow::current_isa();
    if (s.has("isa")) {
      const std::string name = s.str("isa", "");
      if (!sparrow::isa_from_name(name.c_str(), &isa) || !sparrow::isa_supported(isa))
        throw sparrow_error("ERR_ISA_UNSUPPORTED", "isa '" + name + "' is not supported here");
    }
    const sparrow::Isa saved = sparrow::current_isa();
    sparrow::set_isa(isa);
    try {
      Napi::Value v = run(env, op, s);
      sparrow::set_isa(saved);
      return v;
    } catch (...) {
      sparrow::set_isa(saved);
      throw;
    }
  })
}

// pvF16(isa, w: Float32Array (rows x np), v: Uint16Array (np x hd), out: Float32Array
// (rows x hd), rows, np, hd) -> a copy of out after the kernel (kernels.h, pv_f16).
// SPARROW_GUARD as a function (the body holds commas a macro argument cannot).
template <typename F>
Napi::Value guard(Napi::Env env, F body) {
  SPARROW_GUARD(env, { return body(); })
}

Napi::Value PvF16(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object o = Napi::Object::New(env);
    const char* keys[] = {"w", "v", "out"};
    for (int i = 0; i < 3; i++) o.Set(keys[i], info.Length() > size_t(i + 1) ? info[size_t(i + 1)] : env.Undefined());
    Spec s{o};
    sparrow::Isa isa;
    const std::string name = sparrow::addon::arg_string(info, 0, "isa");
    if (!sparrow::isa_from_name(name.c_str(), &isa) || !sparrow::isa_supported(isa))
      throw sparrow_error("ERR_ISA_UNSUPPORTED", "isa '" + name + "' is not supported here");
    const auto rows = int64_t(sparrow::addon::arg_number(info, 4, "rows"));
    const auto np = int64_t(sparrow::addon::arg_number(info, 5, "np"));
    const auto hd = int64_t(sparrow::addon::arg_number(info, 6, "hd"));
    auto w = s.f32("w"), out = s.f32("out");
    if (!o.Get("v").IsTypedArray() || o.Get("v").As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array)
      bad("v must be a Uint16Array");
    auto v = o.Get("v").As<Napi::Uint16Array>();
    if (rows < 0 || np < 0 || hd < 1 || w.size() != size_t(rows * np) || v.ElementLength() != size_t(np * hd) ||
        out.size() != size_t(rows * hd))
      bad("pvF16: sizes do not match rows, np and hd");
    sparrow::kernels_for(isa).pv_f16(w.data(), np, v.Data(), hd, np, out.data(), hd, rows, hd);
    auto r = Napi::Float32Array::New(env, out.size());
    std::memcpy(r.Data(), out.data(), out.size() * sizeof(float));
    return r;
  });
}

Napi::Value Backends(const Napi::CallbackInfo& info) {
  auto out = Napi::Array::New(info.Env(), 1);
  out.Set(0u, Napi::String::New(info.Env(), "cpu"));
  return out;
}

}  // namespace

// Test hooks: registered on the addon's one internal object (`addon.internal`).
SPARROW_INTERNAL_BINDING(backend_ops) {
  exports.Set("backendOp", Napi::Function::New(env, BackendOp, "backendOp"));
  exports.Set("backends", Napi::Function::New(env, Backends, "backends"));
  exports.Set("pvF16", Napi::Function::New(env, PvF16, "pvF16"));
}
