#include "addon.h"

#include <new>
#include <vector>

#include "core/error.h"

namespace sparrow::addon {

namespace {
struct Entry {
  const char* name;
  Registrar fn;
  bool internal;
};
std::vector<Entry>& registry() {
  static std::vector<Entry> r;
  return r;
}
}  // namespace

Binding::Binding(const char* name, Registrar fn, bool internal) { registry().push_back({name, fn, internal}); }

AddonData& data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

static Napi::Error make(Napi::Env env, Napi::FunctionReference& cls, const char* code, const std::string& msg) {
  Napi::Object err;
  if (!cls.IsEmpty()) {
    err = cls.New({Napi::String::New(env, msg)});
  } else {
    err = Napi::Error::New(env, msg).Value();
  }
  err.Set("code", Napi::String::New(env, code));
  return Napi::Error(env, err);
}

Napi::Error js_error(Napi::Env env, const char* code, const std::string& message) {
  return make(env, data(env).sparrow_error, code, message);
}

Napi::Error js_error(Napi::Env env, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const sparrow::Error& err) {
    AddonData& d = data(env);
    return make(env, err.kind() == sparrow::Error::Kind::GGUF ? d.gguf_error : d.sparrow_error, err.code().c_str(),
                err.what());
  } catch (const std::bad_alloc&) {
    return js_error(env, "ERR_OUT_OF_MEMORY", "out of memory");
  } catch (const std::exception& err) {
    return js_error(env, "ERR_INTERNAL", std::string("internal error: ") + err.what());
  } catch (...) {
    return js_error(env, "ERR_INTERNAL", "internal error: unknown exception");
  }
}

std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsString())
    throw js_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

double arg_number(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw js_error(info.Env(), "ERR_INVALID_ARG", std::string(name) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

// setErrorClasses({ GGUFError, SparrowError }): the TS layer hands over its classes once.
static Napi::Value SetErrorClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "expected { GGUFError, SparrowError }");
  Napi::Object o = info[0].As<Napi::Object>();
  AddonData& d = data(env);
  if (o.Get("GGUFError").IsFunction()) d.gguf_error = Napi::Persistent(o.Get("GGUFError").As<Napi::Function>());
  if (o.Get("SparrowError").IsFunction()) d.sparrow_error = Napi::Persistent(o.Get("SparrowError").As<Napi::Function>());
  return env.Undefined();
}

Napi::Object init_module(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("setErrorClasses", Napi::Function::New(env, SetErrorClasses, "setErrorClasses"));
  Napi::Object internal = Napi::Object::New(env);
  for (const Entry& e : registry()) e.fn(env, e.internal ? internal : exports);
  exports.Set("internal", internal);
  return exports;
}

}  // namespace sparrow::addon

static Napi::Object SparrowInit(Napi::Env env, Napi::Object exports) {
  return sparrow::addon::init_module(env, exports);
}

NODE_API_MODULE(sparrow, SparrowInit)
