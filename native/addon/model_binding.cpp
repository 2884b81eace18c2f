// Models and sessions for JS. Loading and evaluation run on libuv worker threads
// (AsyncWorker -> Promise); everything else is cheap and synchronous.
//
//   loadModel(path, { threads?, batchSize? })          -> Promise<ModelHandle>
//   modelInfo(model) / modelDispose(model)
//   sessionCreate(model, { contextSize?, kvCacheType? }) -> SessionHandle
//   sessionEvaluate(session, Int32Array, allLogits)    -> Promise<Float32Array>
//   sessionReset / sessionTruncate(n) / sessionTokens / sessionContextSize
//   sessionSaveState -> Uint8Array / sessionRestoreState(Uint8Array) / sessionDispose
//
// Handles are Externals owning a shared_ptr; a job in flight owns one too, so disposing
// a handle mid-job only drops the JS side's reference and the memory goes when the job ends.
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "core/error.h"
#include "model/session.h"

namespace {

using sparrow::addon::js_error;

struct ModelHolder {
  std::shared_ptr<sparrow::Model> model;
};

struct SessionState {
  explicit SessionState(std::shared_ptr<sparrow::Model> m, const sparrow::SessionOptions& o) : session(std::move(m), o) {}
  sparrow::Session session;
  std::atomic<bool> busy{false};    // an evaluate is in flight (set and cleared on the JS thread)
  std::atomic<bool> cancel{false};  // disposed: a job in flight stops at the next layer
  std::vector<int32_t> tokens;      // the JS thread's copy of session.tokens(), never raced
};

struct SessionHolder {
  std::shared_ptr<SessionState> s;
};

template <class T>
T* handle(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsExternal())
    throw js_error(info.Env(), "ERR_INVALID_ARG", std::string(what) + " handle expected");
  return info[i].As<Napi::External<T>>().Data();
}

std::shared_ptr<sparrow::Model> live_model(const Napi::CallbackInfo& info, size_t i) {
  ModelHolder* h = handle<ModelHolder>(info, i, "model");
  if (!h->model) throw js_error(info.Env(), "ERR_DISPOSED", "the model has been disposed");
  return h->model;
}

std::shared_ptr<SessionState> live_session(const Napi::CallbackInfo& info, size_t i, bool idle = false) {
  SessionHolder* h = handle<SessionHolder>(info, i, "session");
  if (!h->s) throw js_error(info.Env(), "ERR_DISPOSED", "the session has been disposed");
  if (idle && h->s->busy.load())
    throw js_error(info.Env(), "ERR_SESSION_BUSY", "the session is evaluating; wait for evaluate() to finish");
  return h->s;
}

// An optional integer option in [lo, hi]; `dflt` when absent (undefined / null).
int int_option(Napi::Env env, const Napi::Value& opts, const char* name, int dflt, double lo, double hi) {
  if (!opts.IsObject()) return dflt;
  Napi::Value v = opts.As<Napi::Object>().Get(name);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!v.IsNumber() || !std::isfinite(d) || std::floor(d) != d || d < lo || d > hi)
    throw js_error(env, "ERR_INVALID_ARG", std::string(name) + " must be an integer from " + std::to_string(int64_t(lo)) +
                                               " to " + std::to_string(int64_t(hi)));
  return int(d);
}

void check_options_object(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsUndefined() && !v.IsNull() && !v.IsObject())
    throw js_error(env, "ERR_INVALID_ARG", std::string(what) + " must be an object");
}

// ---------------------------------------------------------------------------------
// loadModel

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, sparrow::ModelOptions opts)
      : Napi::AsyncWorker(env, "sparrow.loadModel"), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)), opts_(opts) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      model_ = sparrow::Model::load(path_, opts_);
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (error_) return deferred_.Reject(js_error(env, error_).Value());
    auto* h = new ModelHolder{std::move(model_)};
    deferred_.Resolve(Napi::External<ModelHolder>::New(env, h, [](Napi::Env, ModelHolder* p) { delete p; }));
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  sparrow::ModelOptions opts_;
  std::shared_ptr<sparrow::Model> model_;
  std::exception_ptr error_;
};

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = sparrow::addon::arg_string(info, 0, "path");
  Napi::Value opts = info.Length() > 1 ? info[1] : env.Undefined();
  check_options_object(env, opts, "options");
  sparrow::ModelOptions o;
  o.threads = int_option(env, opts, "threads", 0, 1, 256);
  o.batch_size = int_option(env, opts, "batchSize", 512, 1, 65536);
  auto* w = new LoadWorker(env, std::move(path), o);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value ModelInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<sparrow::Model> m = live_model(info, 0);
  const sparrow::HParams& hp = m->hp();
  Napi::Object o = Napi::Object::New(env);
  o.Set("architecture", m->arch().name);
  o.Set("name", m->name());
  o.Set("parameterCount", double(m->n_params()));
  o.Set("fileType", sparrow::file_type_name(m->file_type()));
  o.Set("fileTypeId", m->file_type());
  o.Set("fileSize", double(m->file().file_size()));
  o.Set("contextLength", hp.n_ctx_train);
  o.Set("vocabSize", hp.n_vocab);
  o.Set("embeddingLength", hp.n_embd);
  o.Set("layerCount", hp.n_layer);
  o.Set("headCount", hp.n_head);
  o.Set("headCountKv", hp.n_head_kv);
  o.Set("headDim", hp.head_dim);
  o.Set("feedForwardLength", hp.n_ff);
  o.Set("ropeDim", hp.rope_dim);
  o.Set("ropeFreqBase", hp.rope_base);
  o.Set("ropeFreqScale", hp.rope_freq_scale);
  o.Set("rmsEpsilon", hp.rms_eps);
  o.Set("tiedOutput", !m->file().tensor("output.weight"));
  o.Set("threads", m->threads());
  o.Set("batchSize", m->batch_size());
  return o;
}

Napi::Value ModelDispose(const Napi::CallbackInfo& info) {
  handle<ModelHolder>(info, 0, "model")->model.reset();  // sessions and jobs keep their own references
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------
// Sessions

Napi::Value SessionCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<sparrow::Model> m = live_model(info, 0);
  Napi::Value opts = info.Length() > 1 ? info[1] : env.Undefined();
  check_options_object(env, opts, "options");
  sparrow::SessionOptions o;
  o.context_size = int_option(env, opts, "contextSize", 0, 1, 1 << 30);
  if (opts.IsObject()) {
    Napi::Value t = opts.As<Napi::Object>().Get("kvCacheType");
    if (!t.IsUndefined() && !t.IsNull()) {
      if (!t.IsString() || !sparrow::kv_type_from_name(t.As<Napi::String>().Utf8Value(), &o.kv_type))
        throw js_error(env, "ERR_INVALID_ARG", "kvCacheType must be 'f16' or 'q8_0'");
    }
  }
  std::shared_ptr<SessionState> s;
  SPARROW_GUARD(env, { s = std::make_shared<SessionState>(m, o); })
  auto* h = new SessionHolder{std::move(s)};
  // Garbage collection only drops the handle's reference: a job in flight (whose
  // promise someone may still await) keeps the state and finishes normally.
  return Napi::External<SessionHolder>::New(env, h, [](Napi::Env, SessionHolder* p) { delete p; });
}

class EvaluateWorker : public Napi::AsyncWorker {
 public:
  EvaluateWorker(Napi::Env env, std::shared_ptr<SessionState> s, std::vector<int32_t> tokens, bool all)
      : Napi::AsyncWorker(env, "sparrow.evaluate"),
        deferred_(Napi::Promise::Deferred::New(env)),
        s_(std::move(s)),
        tokens_(std::move(tokens)),
        all_(all) {}
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      logits_ = s_->session.evaluate(tokens_.data(), tokens_.size(), all_, &s_->cancel);
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    s_->busy.store(false);
    if (s_->cancel.load())
      return deferred_.Reject(js_error(env, "ERR_DISPOSED", "the session was disposed during evaluate()").Value());
    if (error_) return deferred_.Reject(js_error(env, error_).Value());
    s_->tokens.insert(s_->tokens.end(), tokens_.begin(), tokens_.end());
    // Copied into a V8-owned buffer (external buffers are not allowed in Electron).
    Napi::Float32Array out = Napi::Float32Array::New(env, logits_.size());
    std::memcpy(out.Data(), logits_.data(), logits_.size() * sizeof(float));
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<SessionState> s_;
  std::vector<int32_t> tokens_;
  bool all_;
  std::vector<float> logits_;
  std::exception_ptr error_;
};

Napi::Value SessionEvaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<SessionState> s = live_session(info, 0, true);
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw js_error(env, "ERR_INVALID_ARG", "tokens must be an Int32Array");
  Napi::Int32Array t = info[1].As<Napi::Int32Array>();
  std::vector<int32_t> tokens(t.Data(), t.Data() + t.ElementLength());  // the JS array may change meanwhile
  bool all = info.Length() > 2 && info[2].ToBoolean().Value();
  // Argument errors are reported now (synchronously thrown by the TS layer as a rejection).
  const int vocab = s->session.model().hp().n_vocab;
  if (tokens.empty()) throw js_error(env, "ERR_INVALID_ARG", "tokens must not be empty");
  for (size_t i = 0; i < tokens.size(); i++)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      throw js_error(env, "ERR_INVALID_TOKEN", "tokens[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                                                   " is not a token id of this model (0.." + std::to_string(vocab - 1) + ")");
  if (s->tokens.size() + tokens.size() > size_t(s->session.context_size()))
    throw js_error(env, "ERR_CONTEXT_FULL", "the context is full: " + std::to_string(s->tokens.size()) + " tokens + " +
                                                std::to_string(tokens.size()) + " new > contextSize " +
                                                std::to_string(s->session.context_size()));
  s->busy.store(true);
  auto* w = new EvaluateWorker(env, s, std::move(tokens), all);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

Napi::Value SessionReset(const Napi::CallbackInfo& info) {
  std::shared_ptr<SessionState> s = live_session(info, 0, true);
  s->session.reset();
  s->tokens.clear();
  return info.Env().Undefined();
}

Napi::Value SessionTruncate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<SessionState> s = live_session(info, 0, true);
  double n = sparrow::addon::arg_number(info, 1, "n");
  if (!(n >= 0) || std::floor(n) != n || n > double(s->tokens.size()))
    throw js_error(env, "ERR_INVALID_ARG", "truncate: n must be an integer from 0 to the number of tokens (" +
                                               std::to_string(s->tokens.size()) + ")");
  SPARROW_GUARD(env, { s->session.truncate(size_t(n)); })
  s->tokens.resize(size_t(n));
  return env.Undefined();
}

Napi::Value SessionTokens(const Napi::CallbackInfo& info) {
  std::shared_ptr<SessionState> s = live_session(info, 0);
  Napi::Int32Array out = Napi::Int32Array::New(info.Env(), s->tokens.size());
  if (!s->tokens.empty()) std::memcpy(out.Data(), s->tokens.data(), s->tokens.size() * 4);
  return out;
}

Napi::Value SessionContextSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), live_session(info, 0)->session.context_size());
}

Napi::Value SessionSaveState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<SessionState> s = live_session(info, 0, true);
  std::vector<uint8_t> bytes;
  SPARROW_GUARD(env, { bytes = s->session.save_state(); })
  Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
  if (!bytes.empty()) std::memcpy(out.Data(), bytes.data(), bytes.size());
  return out;
}

Napi::Value SessionRestoreState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<SessionState> s = live_session(info, 0, true);
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw js_error(env, "ERR_INVALID_ARG", "state must be a Uint8Array");
  Napi::Uint8Array b = info[1].As<Napi::Uint8Array>();
  SPARROW_GUARD(env, { s->session.restore_state(b.Data(), b.ElementLength()); })
  s->tokens = s->session.tokens();
  return env.Undefined();
}

Napi::Value SessionDispose(const Napi::CallbackInfo& info) {
  SessionHolder* h = handle<SessionHolder>(info, 0, "session");
  if (h->s) {
    h->s->cancel.store(true);  // a job in flight stops at its next layer and owns the state until then
    h->s.reset();
  }
  return info.Env().Undefined();
}

}  // namespace

SPARROW_BINDING(model) {
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("modelInfo", Napi::Function::New(env, ModelInfo, "modelInfo"));
  exports.Set("modelDispose", Napi::Function::New(env, ModelDispose, "modelDispose"));
  exports.Set("sessionCreate", Napi::Function::New(env, SessionCreate, "sessionCreate"));
  exports.Set("sessionEvaluate", Napi::Function::New(env, SessionEvaluate, "sessionEvaluate"));
  exports.Set("sessionReset", Napi::Function::New(env, SessionReset, "sessionReset"));
  exports.Set("sessionTruncate", Napi::Function::New(env, SessionTruncate, "sessionTruncate"));
  exports.Set("sessionTokens", Napi::Function::New(env, SessionTokens, "sessionTokens"));
  exports.Set("sessionContextSize", Napi::Function::New(env, SessionContextSize, "sessionContextSize"));
  exports.Set("sessionSaveState", Napi::Function::New(env, SessionSaveState, "sessionSaveState"));
  exports.Set("sessionRestoreState", Napi::Function::New(env, SessionRestoreState, "sessionRestoreState"));
  exports.Set("sessionDispose", Napi::Function::New(env, SessionDispose, "sessionDispose"));
}
