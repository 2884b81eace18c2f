// Node-API glue shared by the binding files. Each binding file registers its functions
// with SPARROW_BINDING(name) { ... } and is picked up by the module init automatically.
// Test and benchmark hooks (reference kernels, micro-benchmarks) register with
// SPARROW_INTERNAL_BINDING(name) { ... } instead: their `exports` is the one internal
// object, `addon.internal`, which is not part of the API.
// No maths here: bindings convert values, start work on worker threads, map errors.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

namespace sparrow::addon {

using Registrar = void (*)(Napi::Env env, Napi::Object exports);
struct Binding {
  Binding(const char* name, Registrar fn, bool internal = false);
};

// Per-environment data (main thread and every worker thread get their own).
struct AddonData {
  Napi::FunctionReference gguf_error;     // the TS GGUFError class
  Napi::FunctionReference sparrow_error;  // the TS SparrowError class
};
AddonData& data(Napi::Env env);

// The JS error for an exception thrown by the C++ core: sparrow::Error becomes a
// GGUFError / SparrowError with its `code`; bad_alloc becomes ERR_OUT_OF_MEMORY; any
// other exception ERR_INTERNAL.
Napi::Error js_error(Napi::Env env, std::exception_ptr e);
Napi::Error js_error(Napi::Env env, const char* code, const std::string& message);  // a SparrowError

// Argument helpers that throw a SparrowError (ERR_INVALID_ARG) naming the argument.
std::string arg_string(const Napi::CallbackInfo& info, size_t i, const char* name);
double arg_number(const Napi::CallbackInfo& info, size_t i, const char* name);

}  // namespace sparrow::addon

namespace sparrow {
struct GGUFValue;
}

namespace sparrow::addon {

// A GGUF metadata value as inspectGGUF gives it (gguf_binding.cpp).
Napi::Value gguf_value_to_js(Napi::Env env, const GGUFValue& v);

}  // namespace sparrow::addon

#define SPARROW_BINDING_CAT2(a, b) a##b
#define SPARROW_BINDING_CAT(a, b) SPARROW_BINDING_CAT2(a, b)
#define SPARROW_BINDING_IMPL(name, internal)                                                   \
  static void SPARROW_BINDING_CAT(sparrow_binding_, name)(Napi::Env env, Napi::Object exports); \
  static ::sparrow::addon::Binding SPARROW_BINDING_CAT(sparrow_binding_reg_, name)(         \
      #name, SPARROW_BINDING_CAT(sparrow_binding_, name), internal);                      \
  static void SPARROW_BINDING_CAT(sparrow_binding_, name)(Napi::Env env, Napi::Object exports)
#define SPARROW_BINDING(name) SPARROW_BINDING_IMPL(name, false)
#define SPARROW_INTERNAL_BINDING(name) SPARROW_BINDING_IMPL(name, true)

// Runs `body`, turning any C++ exception into the matching JS error.
#define SPARROW_GUARD(env, body)                 \
  try {                                          \
    body                                         \
  } catch (const Napi::Error&) {                 \
    throw;                                       \
  } catch (...) {                                \
    throw ::sparrow::addon::js_error(env, std::current_exception()); \
  }
