// inspectGGUF(path): the header of a GGUF file as a plain JS object. Reads metadata and
// tensor infos only; tensor data is never touched (the file is mapped, not read).
#include <cmath>

#include "addon.h"
#include "core/ggml_types.h"
#include "core/gguf.h"

namespace {

using sparrow::GGUFType;
using sparrow::GGUFValue;

constexpr double kMaxSafe = 9007199254740991.0;  // Number.MAX_SAFE_INTEGER

template <class T>
T load(const uint8_t* p) {
  T v;
  memcpy(&v, p, sizeof(T));
  return v;
}

// Converts the value of type `t` at `p` and returns the bytes it took.
size_t to_js(Napi::Env env, GGUFType t, const uint8_t* p, Napi::Value* out) {
  switch (t) {
    case GGUFType::UINT8: *out = Napi::Number::New(env, load<uint8_t>(p)); return 1;
    case GGUFType::INT8: *out = Napi::Number::New(env, load<int8_t>(p)); return 1;
    case GGUFType::UINT16: *out = Napi::Number::New(env, load<uint16_t>(p)); return 2;
    case GGUFType::INT16: *out = Napi::Number::New(env, load<int16_t>(p)); return 2;
    case GGUFType::UINT32: *out = Napi::Number::New(env, load<uint32_t>(p)); return 4;
    case GGUFType::INT32: *out = Napi::Number::New(env, load<int32_t>(p)); return 4;
    case GGUFType::FLOAT32: *out = Napi::Number::New(env, load<float>(p)); return 4;
    case GGUFType::FLOAT64: *out = Napi::Number::New(env, load<double>(p)); return 8;
    case GGUFType::BOOL: *out = Napi::Boolean::New(env, load<uint8_t>(p) != 0); return 1;
    case GGUFType::UINT64: {
      uint64_t v = load<uint64_t>(p);
      *out = double(v) <= kMaxSafe ? Napi::Value(Napi::Number::New(env, double(v))) : Napi::Value(Napi::BigInt::New(env, v));
      return 8;
    }
    case GGUFType::INT64: {
      int64_t v = load<int64_t>(p);
      *out = std::fabs(double(v)) <= kMaxSafe ? Napi::Value(Napi::Number::New(env, double(v))) : Napi::Value(Napi::BigInt::New(env, v));
      return 8;
    }
    case GGUFType::STRING: {
      uint64_t len = load<uint64_t>(p);
      *out = Napi::String::New(env, reinterpret_cast<const char*>(p + 8), size_t(len));
      return 8 + size_t(len);
    }
    case GGUFType::ARRAY: {
      GGUFType et = GGUFType(load<uint32_t>(p));
      uint64_t n = load<uint64_t>(p + 4);
      Napi::Array arr = Napi::Array::New(env, size_t(n));
      size_t off = 12;
      for (uint64_t i = 0; i < n; i++) {
        Napi::Value v;
        off += to_js(env, et, p + off, &v);
        arr.Set(uint32_t(i), v);
      }
      *out = arr;
      return off;
    }
  }
  *out = env.Undefined();
  return 0;
}

Napi::Object to_object(Napi::Env env, const std::shared_ptr<sparrow::GGUFFile>& f) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", f->version());
  out.Set("alignment", f->alignment());
  out.Set("dataOffset", double(f->data_offset()));
  out.Set("fileSize", double(f->file_size()));

  Napi::Object meta = Napi::Object::New(env);
  for (const auto& [key, v] : f->metadata()) {
    Napi::Value js;
    // Arrays point at their body; rebuild from the header 12 bytes before it.
    to_js(env, v.type, v.type == GGUFType::ARRAY ? v.data - 12 : v.data, &js);
    meta.Set(key, js);
  }
  out.Set("metadata", meta);

  const auto& ts = f->tensors();
  Napi::Array tensors = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) {
    const sparrow::GGUFTensor& t = ts[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", t.name);
    o.Set("type", sparrow::type_name(t.type));
    o.Set("typeId", t.type);
    Napi::Array shape = Napi::Array::New(env, t.n_dims);
    for (uint32_t d = 0; d < t.n_dims; d++) shape.Set(d, double(t.ne[d]));
    o.Set("shape", shape);
    o.Set("offset", double(f->data_offset() + t.offset));
    o.Set("bytes", double(t.bytes));
    tensors.Set(uint32_t(i), o);
  }
  out.Set("tensors", tensors);
  return out;
}

Napi::Value InspectGGUF(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = sparrow::addon::arg_string(info, 0, "path");
  std::shared_ptr<sparrow::GGUFFile> f;
  SPARROW_GUARD(env, { f = sparrow::GGUFFile::open(path); })
  return to_object(env, f);
}

// inspectGGUFBuffer(bytes: Uint8Array): the same for a file already in memory.
Napi::Value InspectGGUFBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw sparrow::addon::js_error(env, "ERR_INVALID_ARG", "bytes must be a Uint8Array");
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  std::shared_ptr<sparrow::GGUFFile> f;
  // The buffer is only read during this call, so no copy is needed.
  SPARROW_GUARD(env, { f = sparrow::GGUFFile::parse(bytes.Data(), bytes.ByteLength()); })
  return to_object(env, f);
}

}  // namespace

Napi::Value sparrow::addon::gguf_value_to_js(Napi::Env env, const GGUFValue& v) {
  Napi::Value js;
  to_js(env, v.type, v.type == GGUFType::ARRAY ? v.data - 12 : v.data, &js);
  return js;
}

SPARROW_BINDING(gguf) {
  exports.Set("inspectGGUF", Napi::Function::New(env, InspectGGUF, "inspectGGUF"));
  exports.Set("inspectGGUFBuffer", Napi::Function::New(env, InspectGGUFBuffer, "inspectGGUFBuffer"));
}
