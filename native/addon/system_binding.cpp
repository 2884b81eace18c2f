// systemInfo(), setIsa(name): which SIMD path runs, and a way to force another one.
#include "addon.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "core/ggml_types.h"
#include "gpu/gpu.h"
#include "model/arch.h"
#include "quant/quant.h"

namespace {

using sparrow::Isa;

Napi::Value SystemInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("isa", sparrow::isa_name(sparrow::current_isa()));
  o.Set("bestIsa", sparrow::isa_name(sparrow::best_isa()));
  Napi::Array compiled = Napi::Array::New(env), supported = Napi::Array::New(env);
  for (Isa i : {Isa::Generic, Isa::AVX2, Isa::AVX512, Isa::NEON}) {
    if (sparrow::isa_compiled(i)) compiled.Set(compiled.Length(), sparrow::isa_name(i));
    if (sparrow::isa_supported(i)) supported.Set(supported.Length(), sparrow::isa_name(i));
  }
  o.Set("compiledIsas", compiled);
  o.Set("supportedIsas", supported);
  const sparrow::CpuFeatures& f = sparrow::cpu_features();
  Napi::Object feat = Napi::Object::New(env);
  feat.Set("avx2", f.avx2);
  feat.Set("fma", f.fma);
  feat.Set("f16c", f.f16c);
  feat.Set("avx512f", f.avx512f);
  feat.Set("avx512bw", f.avx512bw);
  feat.Set("avx512vl", f.avx512vl);
  feat.Set("avx512dq", f.avx512dq);
  feat.Set("avx512vnni", f.avx512vnni);
  feat.Set("neon", f.neon);
  feat.Set("dotprod", f.dotprod);
  o.Set("cpuFeatures", feat);
  // What this build computes with: the weight types (ggml names) and the architectures.
  Napi::Array types = Napi::Array::New(env);
  for (uint32_t id = 0; id < 64; id++)
    if (sparrow::type_info(id) && sparrow::quant_supported(id)) types.Set(types.Length(), sparrow::type_name(id));
  o.Set("weightTypes", types);
  Napi::Array archs = Napi::Array::New(env);
  const std::string list = sparrow::supported_archs();  // "llama, qwen2"
  for (size_t pos = 0; pos < list.size();) {
    size_t end = list.find(", ", pos);
    if (end == std::string::npos) end = list.size();
    archs.Set(archs.Length(), list.substr(pos, end - pos));
    pos = end + 2;
  }
  o.Set("architectures", archs);
  // GPU devices (gpu/gpu.h): empty without the Vulkan backend, a loader or a device.
  Napi::Array gpus = Napi::Array::New(env);
  for (const sparrow::GpuDevice& g : sparrow::gpu_devices()) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", g.index);
    d.Set("api", g.api);
    d.Set("name", g.name);
    d.Set("type", g.type);
    d.Set("memory", double(g.memory));
    d.Set("maxBufferSize", double(g.max_buffer));
    d.Set("driver", g.driver);
    Napi::Array feats = Napi::Array::New(env);
    for (const std::string& s : g.features) feats.Set(feats.Length(), s);
    d.Set("features", feats);
    gpus.Set(gpus.Length(), d);
  }
  o.Set("gpus", gpus);
  o.Set("vulkan", sparrow::gpu_vulkan_compiled());
  if (gpus.Length() == 0) o.Set("gpuUnavailableReason", sparrow::gpu_unavailable_reason());
  return o;
}

const char* need_name(sparrow::Need n) {
  switch (n) {
    case sparrow::Need::Absent: return "absent";
    case sparrow::Need::Optional: return "optional";
    case sparrow::Need::Required: return "required";
  }
  return "absent";
}

// architectureTable(): the loader's architecture table, the rows' tensor fields (which
// optional tensors each architecture must, may or does not read), so that `sparrow
// inspect` names the tensors a file lacks from the same table the loader reads.
Napi::Value ArchitectureTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array rows = Napi::Array::New(env);
  const std::string list = sparrow::supported_archs();
  for (size_t pos = 0; pos < list.size();) {
    size_t end = list.find(", ", pos);
    if (end == std::string::npos) end = list.size();
    const sparrow::ArchSpec* a = sparrow::find_arch(list.substr(pos, end - pos));
    pos = end + 2;
    if (!a) continue;
    Napi::Object r = Napi::Object::New(env);
    r.Set("name", a->name);
    r.Set("qkvBias", need_name(a->qkv_bias));
    r.Set("outBias", need_name(a->out_bias));
    r.Set("output", need_name(a->output));
    r.Set("ropeFreqs", need_name(a->rope_freqs));
    r.Set("qkNorm", need_name(a->qk_norm));
    r.Set("postNorms", need_name(a->post_norms));
    r.Set("attnQkv", need_name(a->attn_qkv));
    r.Set("ffnUpGate", a->ffn_up_gate);
    r.Set("longrope", need_name(a->longrope));
    r.Set("moe", need_name(a->moe));
    r.Set("attnSinks", need_name(a->attn_sinks));
    r.Set("ffnNorm", a->ffn_norm);
    r.Set("moeBias", need_name(a->moe_bias));
    rows.Set(rows.Length(), r);
  }
  return rows;
}

Isa parse_isa(const Napi::CallbackInfo& info, size_t i) {
  std::string name = sparrow::addon::arg_string(info, i, "isa");
  Isa isa;
  if (!sparrow::isa_from_name(name.c_str(), &isa))
    throw sparrow::addon::js_error(info.Env(), "ERR_INVALID_ARG",
                                   "isa must be one of 'generic', 'avx2', 'avx512', 'neon' (got '" + name + "')");
  if (!sparrow::isa_supported(isa))
    throw sparrow::addon::js_error(info.Env(), "ERR_ISA_UNSUPPORTED",
                                   "the " + name + " kernels " +
                                       (sparrow::isa_compiled(isa) ? "cannot run on this CPU" : "are not in this build"));
  return isa;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  sparrow::set_isa(parse_isa(info, 0));
  return info.Env().Undefined();
}

// _dotF32(isa, a: Float32Array, b: Float32Array): one kernel on a chosen path (tests).
Napi::Value DotF32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Isa isa = parse_isa(info, 0);
  if (info.Length() < 3 || !info[1].IsTypedArray() || !info[2].IsTypedArray())
    throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "a and b must be Float32Arrays");
  Napi::Float32Array a = info[1].As<Napi::Float32Array>(), b = info[2].As<Napi::Float32Array>();
  if (a.ElementLength() != b.ElementLength())
    throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "a and b must have the same length");
  float r = sparrow::kernels_for(isa).dot_f32(a.Data(), b.Data(), int64_t(a.ElementLength()));
  return Napi::Number::New(env, r);
}

}  // namespace

SPARROW_BINDING(system) {
  exports.Set("systemInfo", Napi::Function::New(env, SystemInfo, "systemInfo"));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa, "setIsa"));
  exports.Set("architectureTable", Napi::Function::New(env, ArchitectureTable, "architectureTable"));
}

// A test hook (the bandwidth probe of the bench uses it too), on addon.internal.
SPARROW_INTERNAL_BINDING(system_internal) {
  exports.Set("_dotF32", Napi::Function::New(env, DotF32, "_dotF32"));
}
