// Models and sessions for JS. Loading and evaluation run on libuv worker threads
// (AsyncWorker -> Promise); everything else is cheap and synchronous.
//
//   loadModel(path, { threads?, batchSize?, maxQueue?, sparsity?, gpu?: 'auto' | 'vulkan' | false,
//             gpuDevice? }, onProgress?, abortFlag?)
//                                                      -> Promise<[ModelHandle, metadata]>
//   abortFlagCreate() -> AbortFlag / abortFlagSet(flag)  (stops a load between tensors)
//   modelInfo(model) / modelDispose(model)
//   sessionCreate(model, { contextSize?, kvCacheType?, flashAttention?, fullWindowCache?, embeddings?, sparsity?,
//                 sparsityAllocation? (Float32Array), sparsePrompt? }) -> SessionHandle
//   modelSparsitySites(model) -> Float64Array / modelFingerprint(model) -> string (src/sparsity)
//   sessionEvaluate(session, Int32Array, allLogits)    -> Promise<Float32Array>
//   modelStats(model) -> { evaluations, batchedSteps, batchedTokens, maxBatch, queued }
//   sessionReset / sessionTruncate(n) / sessionTokens / sessionContextSize / sessionCacheBytes
//   sessionShift(session, keep, drop) -> Promise<void>: a context shift, queued like an
//        evaluation (it moves and re-rotates cached keys on a worker thread)
//   sessionSaveState -> Uint8Array / sessionRestoreState(Uint8Array) / sessionDispose
//   sessionCancel(session): the evaluate in flight stops at its next layer (ERR_ABORTED)
//
// Handles are Externals owning a shared_ptr; a job in flight owns one too, so disposing
// a handle mid-job only drops the JS side's reference and the memory goes when the job ends.
//
// Evaluations of one model's sessions go through that model's sparrow::Scheduler
// (native/runtime/scheduler.h: the queue, the batching of decode steps, the interleaving
// of long prompts, the queue limit). This file only submits requests, runs each job the
// scheduler hands out on a worker thread and settles the promises of the requests it
// hands back. Jobs start from setImmediate, so the sessions woken by the job that just
// ended queue their next tokens first and join the next batch.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "core/error.h"
#include "model/session.h"
#include "runtime/scheduler.h"
#include "runtime/session_runner.h"

namespace {

using sparrow::addon::js_error;

// One sessionEvaluate (or sessionShift) call: the scheduler's request and its promise.
struct JsRequest : sparrow::Request {
  JsRequest(Napi::Env env, std::shared_ptr<sparrow::SessionSlot> s, std::vector<int32_t> t, bool all)
      : sparrow::Request(std::move(s), std::move(t), all), deferred(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise::Deferred deferred;
};

// A model's scheduler, shared by the model handle and its sessions (it outlives dispose).
// Used on the JS thread only.
struct ModelQueue {
  explicit ModelQueue(const sparrow::SchedulerOptions& o) : sched(std::make_shared<sparrow::SessionRunner>(), o) {}
  sparrow::Scheduler sched;
  bool dispatch_pending = false;  // a setImmediate will start the next job
};

struct ModelHolder {
  std::shared_ptr<sparrow::Model> model;
  std::shared_ptr<ModelQueue> queue;
};

struct SessionHolder {
  std::shared_ptr<sparrow::SessionSlot> s;  // slot->session is the sparrow::Session
  std::shared_ptr<ModelQueue> queue;
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

SessionHolder& live_session(const Napi::CallbackInfo& info, size_t i, bool idle = false) {
  SessionHolder* h = handle<SessionHolder>(info, i, "session");
  if (!h->s) throw js_error(info.Env(), "ERR_DISPOSED", "the session has been disposed");
  if (idle && h->s->busy)
    throw js_error(info.Env(), "ERR_SESSION_BUSY", "the session is evaluating; wait for evaluate() to finish");
  return *h;
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

// An optional number option in [lo, hi]; `dflt` when absent (undefined / null).
float number_option(Napi::Env env, const Napi::Value& opts, const char* name, float dflt, double lo, double hi) {
  if (!opts.IsObject()) return dflt;
  Napi::Value v = opts.As<Napi::Object>().Get(name);
  if (v.IsUndefined() || v.IsNull()) return dflt;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!v.IsNumber() || !std::isfinite(d) || d < lo || d > hi) {
    char range[64];
    std::snprintf(range, sizeof range, " must be a number from %g to %g", lo, hi);
    throw js_error(env, "ERR_INVALID_ARG", std::string(name) + range);
  }
  return float(d);
}

void check_options_object(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsUndefined() && !v.IsNull() && !v.IsObject())
    throw js_error(env, "ERR_INVALID_ARG", std::string(what) + " must be an object");
}

// Decode steps per batched forward pass. SPARROW_MAX_BATCH (1..64) overrides it, for
// benchmarks (1 turns batching off).
size_t max_batch() {
  static const size_t n = [] {
    const char* e = std::getenv("SPARROW_MAX_BATCH");
    const long v = e ? std::strtol(e, nullptr, 10) : 0;
    return v >= 1 && v <= 64 ? size_t(v) : size_t(16);
  }();
  return n;
}

// ---------------------------------------------------------------------------------
// loadModel

using AbortFlag = std::shared_ptr<std::atomic<bool>>;

// The metadata of a loaded model for JS, prepared on the worker thread: large string arrays
// (the vocabulary, the merges) become one UTF-8 buffer and offsets, large 32-bit numeric
// arrays typed arrays, so that the JS thread never creates hundreds of thousands of values
// in one go (src/model.ts unpacks them in slices).
struct PackedMetadata {
  struct Entry {
    const std::string* key = nullptr;
    const sparrow::GGUFValue* value = nullptr;
    bool packed_strings = false;
    std::string bytes;               // packed strings, one after another
    std::vector<uint32_t> offsets;   // count + 1 offsets into `bytes`
  };
  std::vector<Entry> entries;
  static constexpr uint64_t kMinPacked = 256;  // smaller arrays are converted as they are

  static bool packs_numbers(const sparrow::GGUFValue& v) {
    using T = sparrow::GGUFType;
    return v.type == T::ARRAY && v.count >= kMinPacked && (v.elem == T::FLOAT32 || v.elem == T::INT32 || v.elem == T::UINT32);
  }

  explicit PackedMetadata(const sparrow::GGUFFile& f) {
    for (const auto& [key, v] : f.metadata()) {
      Entry e;
      e.key = &key;
      e.value = &v;
      if (v.type == sparrow::GGUFType::ARRAY && v.elem == sparrow::GGUFType::STRING && v.count >= kMinPacked &&
          v.size < (uint64_t(1) << 32)) {
        e.packed_strings = true;
        e.offsets.reserve(size_t(v.count) + 1);
        e.bytes.reserve(v.size);
        const uint8_t* p = v.data;  // the file was validated: each string is (u64 length, bytes)
        for (uint64_t i = 0; i < v.count; i++) {
          uint64_t len;
          std::memcpy(&len, p, 8);
          e.offsets.push_back(uint32_t(e.bytes.size()));
          e.bytes.append(reinterpret_cast<const char*>(p + 8), size_t(len));
          p += 8 + len;
        }
        e.offsets.push_back(uint32_t(e.bytes.size()));
      }
      entries.push_back(std::move(e));
    }
  }

  Napi::Object to_js(Napi::Env env) const {
    Napi::Object meta = Napi::Object::New(env);
    for (const Entry& e : entries) {
      const sparrow::GGUFValue& v = *e.value;
      if (e.packed_strings) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("bytes", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(e.bytes.data()), e.bytes.size()));
        Napi::Uint32Array off = Napi::Uint32Array::New(env, e.offsets.size());
        std::memcpy(off.Data(), e.offsets.data(), e.offsets.size() * 4);
        o.Set("offsets", off);
        meta.Set(*e.key, o);
      } else if (packs_numbers(v)) {
        // A typed array of the element type, filled with the file's bytes.
        auto typed = [&](auto array) -> Napi::Value {
          std::memcpy(array.Data(), v.data, size_t(v.count) * 4);
          return array;
        };
        const size_t n = size_t(v.count);
        meta.Set(*e.key, v.elem == sparrow::GGUFType::FLOAT32 ? typed(Napi::Float32Array::New(env, n))
                         : v.elem == sparrow::GGUFType::INT32 ? typed(Napi::Int32Array::New(env, n))
                                                              : typed(Napi::Uint32Array::New(env, n)));
      } else {
        meta.Set(*e.key, sparrow::addon::gguf_value_to_js(env, v));
      }
    }
    return meta;
  }
};

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, sparrow::ModelOptions opts, size_t max_queue, Napi::Value on_progress,
             AbortFlag abort)
      : Napi::AsyncWorker(env, "sparrow.loadModel"),
        deferred_(Napi::Promise::Deferred::New(env)),
        path_(std::move(path)),
        opts_(opts),
        max_queue_(max_queue),
        abort_(abort ? std::move(abort) : std::make_shared<std::atomic<bool>>(false)) {
    if (on_progress.IsFunction())
      progress_ = Napi::ThreadSafeFunction::New(env, on_progress.As<Napi::Function>(), "sparrow.loadProgress", 0, 1);
  }
  ~LoadWorker() override {
    if (progress_) progress_.Release();
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    sparrow::LoadControl ctl;
    ctl.cancel = abort_.get();
    double last = -1;
    if (progress_) {
      // Reports at most about 200 steps; JS keeps the values increasing and ends with 1.
      ctl.progress = [this, &last](double f) {
        if (f < 1.0 && f - last < 0.005) return;
        last = f;
        progress_.NonBlockingCall(new double(f), [](Napi::Env env, Napi::Function cb, double* d) {
          double v = *d;
          delete d;
          if (env != nullptr && cb != nullptr) cb.Call({Napi::Number::New(env, v)});
        });
      };
    }
    try {
      model_ = sparrow::Model::load(path_, opts_, &ctl);
      if (abort_->load()) throw sparrow::sparrow_error("ERR_ABORTED", "loadModel was aborted");
      meta_ = std::make_unique<PackedMetadata>(model_->file());
    } catch (...) {
      model_.reset();
      meta_.reset();
      error_ = std::current_exception();
    }
    if (progress_) {
      progress_.Release();
      progress_ = Napi::ThreadSafeFunction();
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (error_) return deferred_.Reject(js_error(env, error_).Value());
    Napi::Value meta;
    try {
      meta = meta_->to_js(env);
    } catch (const Napi::Error& e) {
      return deferred_.Reject(e.Value());
    }
    meta_.reset();
    sparrow::SchedulerOptions so;
    so.batch_size = size_t(model_->batch_size());
    so.max_batch = max_batch();
    so.max_queue = max_queue_;
    std::shared_ptr<ModelQueue> queue;
    try {
      queue = std::make_shared<ModelQueue>(so);
    } catch (...) {
      return deferred_.Reject(js_error(env, std::current_exception()).Value());
    }
    auto* h = new ModelHolder{std::move(model_), std::move(queue)};
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(uint32_t(0), Napi::External<ModelHolder>::New(env, h, [](Napi::Env, ModelHolder* p) { delete p; }));
    out.Set(uint32_t(1), meta);
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  sparrow::ModelOptions opts_;
  size_t max_queue_;
  AbortFlag abort_;
  Napi::ThreadSafeFunction progress_;
  std::shared_ptr<sparrow::Model> model_;
  std::unique_ptr<PackedMetadata> meta_;
  std::exception_ptr error_;
};

Napi::Value AbortFlagCreate(const Napi::CallbackInfo& info) {
  auto* flag = new AbortFlag(std::make_shared<std::atomic<bool>>(false));
  return Napi::External<AbortFlag>::New(info.Env(), flag, [](Napi::Env, AbortFlag* p) { delete p; });
}

Napi::Value AbortFlagSet(const Napi::CallbackInfo& info) {
  (*handle<AbortFlag>(info, 0, "abort flag"))->store(true);
  return info.Env().Undefined();
}

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = sparrow::addon::arg_string(info, 0, "path");
  Napi::Value opts = info.Length() > 1 ? info[1] : env.Undefined();
  check_options_object(env, opts, "options");
  sparrow::ModelOptions o;
  o.threads = int_option(env, opts, "threads", 0, 1, 256);
  o.batch_size = int_option(env, opts, "batchSize", 512, 1, 65536);
  o.sparsity = number_option(env, opts, "sparsity", 0, 0, 0.9);
  const int max_queue = int_option(env, opts, "maxQueue", 0, 1, 1 << 30);  // 0 (absent): no limit
  // Where the forward pass runs (gpu/gpu.h): 'auto' (absent), 'vulkan' or false.
  o.gpu = sparrow::GpuMode::Auto;
  if (opts.IsObject()) {
    Napi::Value g = opts.As<Napi::Object>().Get("gpu");
    if (g.IsBoolean() && !g.As<Napi::Boolean>().Value()) o.gpu = sparrow::GpuMode::Off;
    else if (g.IsString() && g.As<Napi::String>().Utf8Value() == "auto") o.gpu = sparrow::GpuMode::Auto;
    else if (g.IsString() && g.As<Napi::String>().Utf8Value() == "vulkan") o.gpu = sparrow::GpuMode::Vulkan;
    else if (!g.IsUndefined()) throw js_error(env, "ERR_INVALID_ARG", "gpu must be 'auto', 'vulkan' or false");
  }
  o.gpu_device = int_option(env, opts, "gpuDevice", -1, 0, 64);
  Napi::Value on_progress = info.Length() > 2 ? info[2] : env.Undefined();
  if (!on_progress.IsUndefined() && !on_progress.IsFunction())
    throw js_error(env, "ERR_INVALID_ARG", "onProgress must be a function");
  AbortFlag abort;
  if (info.Length() > 3 && !info[3].IsUndefined()) abort = *handle<AbortFlag>(info, 3, "abort flag");
  auto* w = new LoadWorker(env, std::move(path), o, size_t(max_queue), on_progress, std::move(abort));
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
  // Where the forward pass runs: null for the CPU, else the device.
  if (const sparrow::GpuDevice* g = m->gpu()) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("api", g->api);
    d.Set("index", g->index);
    d.Set("name", g->name);
    d.Set("type", g->type);
    d.Set("memory", double(g->memory));
    o.Set("gpu", d);
  } else {
    o.Set("gpu", env.Null());
  }
  o.Set("sparsity", m->sparsity());
  return o;
}

// Internal (src/sparsity): the bytes of the weights behind each sparsity site,
// n_layer x 4 (model.h SparsitySite order), and the model file's fingerprint as 16 hex
// digits (what a calibration file is bound to).
Napi::Value ModelSparsitySites(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<sparrow::Model> m = live_model(info, 0);
  const int n_layer = m->hp().n_layer;
  Napi::Float64Array out = Napi::Float64Array::New(env, size_t(n_layer) * sparrow::kSparsitySites);
  for (int l = 0; l < n_layer; l++)
    for (int s = 0; s < sparrow::kSparsitySites; s++) out[size_t(l) * sparrow::kSparsitySites + size_t(s)] = m->site_bytes(l, s);
  return out;
}

Napi::Value ModelFingerprint(const Napi::CallbackInfo& info) {
  std::shared_ptr<sparrow::Model> m = live_model(info, 0);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(m->fingerprint()));
  return Napi::String::New(info.Env(), hex);
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
    Napi::Value fa = opts.As<Napi::Object>().Get("flashAttention");
    if (!fa.IsUndefined() && !fa.IsNull()) {
      if (!fa.IsBoolean()) throw js_error(env, "ERR_INVALID_ARG", "flashAttention must be a boolean");
      o.flash_attn = fa.As<Napi::Boolean>().Value();
    }
    Napi::Value fw = opts.As<Napi::Object>().Get("fullWindowCache");
    if (!fw.IsUndefined() && !fw.IsNull()) {
      if (!fw.IsBoolean()) throw js_error(env, "ERR_INVALID_ARG", "fullWindowCache must be a boolean");
      o.full_window_cache = fw.As<Napi::Boolean>().Value();
    }
    Napi::Value em = opts.As<Napi::Object>().Get("embeddings");
    if (!em.IsUndefined() && !em.IsNull()) {
      if (!em.IsBoolean()) throw js_error(env, "ERR_INVALID_ARG", "embeddings must be a boolean");
      o.embeddings = em.As<Napi::Boolean>().Value();
    }
    o.sparsity = number_option(env, opts, "sparsity", 0, 0, 0.9);
    Napi::Value al = opts.As<Napi::Object>().Get("sparsityAllocation");
    if (!al.IsUndefined() && !al.IsNull()) {
      if (!al.IsTypedArray() || al.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
        throw js_error(env, "ERR_INVALID_ARG", "sparsityAllocation must be a Float32Array");
      Napi::Float32Array a = al.As<Napi::Float32Array>();
      o.sparsity_alloc.assign(a.Data(), a.Data() + a.ElementLength());
    }
    Napi::Value sp = opts.As<Napi::Object>().Get("sparsePrompt");
    if (!sp.IsUndefined() && !sp.IsNull()) {
      if (!sp.IsBoolean()) throw js_error(env, "ERR_INVALID_ARG", "sparsePrompt must be a boolean");
      o.sparse_prompt = sp.As<Napi::Boolean>().Value();
    }
  }
  std::shared_ptr<sparrow::SessionSlot> s;
  SPARROW_GUARD(env, { s = std::make_shared<sparrow::SessionSlot>(std::make_shared<sparrow::Session>(m, o)); })
  auto* h = new SessionHolder{std::move(s), handle<ModelHolder>(info, 0, "model")->queue};
  // Garbage collection only drops the handle's reference: a job in flight (whose
  // promise someone may still await) keeps the state and finishes normally.
  return Napi::External<SessionHolder>::New(env, h, [](Napi::Env, SessionHolder* p) { delete p; });
}

// ---------------------------------------------------------------------------------
// Evaluation: requests go to the model's scheduler; its jobs run on worker threads.

// Resolves or rejects the promise of a request the scheduler handed back.
void settle(Napi::Env env, sparrow::Request& req) {
  auto& r = static_cast<JsRequest&>(req);
  using O = sparrow::Request::Outcome;
  try {
    switch (r.outcome) {
      case O::Done:
        if (r.is_shift()) return r.deferred.Resolve(env.Undefined());
        {
          // Copied into a V8-owned buffer (external buffers are not allowed in Electron).
          Napi::Float32Array out = Napi::Float32Array::New(env, r.logits.size());
          std::memcpy(out.Data(), r.logits.data(), r.logits.size() * sizeof(float));
          return r.deferred.Resolve(out);
        }
      case O::Failed:
        return r.deferred.Reject(js_error(env, r.error).Value());
      case O::Aborted:
        return r.deferred.Reject(js_error(env, "ERR_ABORTED", "evaluate() was aborted").Value());
      case O::Disposed:
      case O::Pending:
        return r.deferred.Reject(js_error(env, "ERR_DISPOSED", "the session was disposed during evaluate()").Value());
    }
  } catch (const Napi::Error& e) {
    r.deferred.Reject(e.Value());
  }
}

void settle_all(Napi::Env env, sparrow::Scheduler::Requests& done) {
  for (auto& r : done) settle(env, *r);
}

void schedule(Napi::Env env, const std::shared_ptr<ModelQueue>& q);

// Runs one job of the scheduler on a worker thread.
class EvaluateWorker : public Napi::AsyncWorker {
 public:
  EvaluateWorker(Napi::Env env, std::shared_ptr<ModelQueue> q, std::unique_ptr<sparrow::Scheduler::Job> job)
      : Napi::AsyncWorker(env, "sparrow.evaluate"), q_(std::move(q)), job_(std::move(job)) {}

  void Execute() override { sparrow::Scheduler::run(*job_); }  // keeps every error in its request
  void OnOK() override {
    Napi::Env env = Env();
    sparrow::Scheduler::Requests done = q_->sched.finish(std::move(job_));
    schedule(env, q_);
    settle_all(env, done);
  }

 private:
  std::shared_ptr<ModelQueue> q_;
  std::unique_ptr<sparrow::Scheduler::Job> job_;
};

// Starts the scheduler's next job, if any, on a worker thread.
void dispatch(Napi::Env env, const std::shared_ptr<ModelQueue>& q) {
  std::unique_ptr<sparrow::Scheduler::Job> job = q->sched.next();
  if (job) (new EvaluateWorker(env, q, std::move(job)))->Queue();
}

// Arranges for dispatch() to run after the current callbacks and their promise reactions.
void schedule(Napi::Env env, const std::shared_ptr<ModelQueue>& q) {
  if (q->dispatch_pending || !q->sched.has_work()) return;
  Napi::Value set_immediate = env.Global().Get("setImmediate");
  if (!set_immediate.IsFunction()) return dispatch(env, q);
  q->dispatch_pending = true;
  std::shared_ptr<ModelQueue> keep = q;
  Napi::Function run = Napi::Function::New(
      env,
      [keep](const Napi::CallbackInfo& info) {
        keep->dispatch_pending = false;
        dispatch(info.Env(), keep);
      },
      "sparrowDispatch");
  set_immediate.As<Napi::Function>().Call({run});
}

Napi::Value ModelStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const sparrow::SchedulerStats st = handle<ModelHolder>(info, 0, "model")->queue->sched.stats();
  Napi::Object o = Napi::Object::New(env);
  o.Set("evaluations", st.evaluations);
  o.Set("batchedSteps", st.batched_steps);
  o.Set("batchedTokens", st.batched_tokens);
  o.Set("maxBatch", st.max_batch);
  o.Set("queued", double(st.queued));
  // Weight bytes read by the channel-major layer matrices (loadModel's sparsity > 0),
  // and those a dense pass would have read: their ratio is the measured skipped fraction.
  if (const auto& m = handle<ModelHolder>(info, 0, "model")->model; m && m->sparse_stats()) {
    o.Set("sparseBytesRead", double(m->sparse_stats()->read.load()));
    o.Set("sparseBytesDense", double(m->sparse_stats()->dense.load()));
  }
  return o;
}

// Submits a request (ERR_SESSION_BUSY, ERR_QUEUE_FULL, ... are thrown now) and returns its promise.
Napi::Promise submit(Napi::Env env, SessionHolder& h, std::unique_ptr<JsRequest> r) {
  Napi::Promise p = r->deferred.Promise();
  SPARROW_GUARD(env, { h.queue->sched.submit(std::move(r)); })
  schedule(env, h.queue);
  return p;
}

// The token ids are checked by the TS layer, and again by the session when it runs
// (Session::evaluate_part, decode_batch): ERR_INVALID_TOKEN, ERR_CONTEXT_FULL.
Napi::Value SessionEvaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionHolder& h = live_session(info, 0, true);
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw js_error(env, "ERR_INVALID_ARG", "tokens must be an Int32Array");
  Napi::Int32Array t = info[1].As<Napi::Int32Array>();
  std::vector<int32_t> tokens(t.Data(), t.Data() + t.ElementLength());  // the JS array may change meanwhile
  bool all = info.Length() > 2 && info[2].ToBoolean().Value();
  return submit(env, h, std::make_unique<JsRequest>(env, h.s, std::move(tokens), all));
}

Napi::Value SessionShift(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionHolder& h = live_session(info, 0, true);
  const double n = double(h.s->tokens.size());
  const double keep = sparrow::addon::arg_number(info, 1, "keep"), drop = sparrow::addon::arg_number(info, 2, "drop");
  if (!(keep >= 0) || std::floor(keep) != keep || !(drop >= 1) || std::floor(drop) != drop || keep + drop > n)
    throw js_error(env, "ERR_INVALID_ARG", "shift: keep and drop must be integers, drop >= 1, keep + drop <= the number of tokens (" +
                                               std::to_string(h.s->tokens.size()) + ")");
  auto r = std::make_unique<JsRequest>(env, h.s, std::vector<int32_t>(), false);
  r->shift_keep = size_t(keep);
  r->shift_drop = size_t(drop);
  return submit(env, h, std::move(r));
}

Napi::Value SessionReset(const Napi::CallbackInfo& info) {
  SessionHolder& h = live_session(info, 0, true);
  h.s->session->reset();
  h.s->tokens.clear();
  return info.Env().Undefined();
}

Napi::Value SessionTruncate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionHolder& h = live_session(info, 0, true);
  double n = sparrow::addon::arg_number(info, 1, "n");
  if (!(n >= 0) || std::floor(n) != n || n > double(h.s->tokens.size()))
    throw js_error(env, "ERR_INVALID_ARG", "truncate: n must be an integer from 0 to the number of tokens (" +
                                               std::to_string(h.s->tokens.size()) + ")");
  SPARROW_GUARD(env, { h.s->session->truncate(size_t(n)); })
  // A session with sliding-window layers may keep fewer (Session::truncate).
  h.s->tokens.resize(h.s->session->tokens().size());
  return env.Undefined();
}

Napi::Value SessionTokens(const Napi::CallbackInfo& info) {
  const std::vector<int32_t>& tokens = live_session(info, 0).s->tokens;
  Napi::Int32Array out = Napi::Int32Array::New(info.Env(), tokens.size());
  if (!tokens.empty()) std::memcpy(out.Data(), tokens.data(), tokens.size() * 4);
  return out;
}

Napi::Value SessionContextSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), live_session(info, 0).s->session->context_size());
}

Napi::Value SessionCacheBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(live_session(info, 0).s->session->kv().bytes()));
}

Napi::Value SessionSaveState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionHolder& h = live_session(info, 0, true);
  std::vector<uint8_t> bytes;
  SPARROW_GUARD(env, { bytes = h.s->session->save_state(); })
  Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
  if (!bytes.empty()) std::memcpy(out.Data(), bytes.data(), bytes.size());
  return out;
}

Napi::Value SessionRestoreState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionHolder& h = live_session(info, 0, true);
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw js_error(env, "ERR_INVALID_ARG", "state must be a Uint8Array");
  Napi::Uint8Array b = info[1].As<Napi::Uint8Array>();
  SPARROW_GUARD(env, { h.s->session->restore_state(b.Data(), b.ElementLength()); })
  h.s->tokens = h.s->session->tokens();
  return env.Undefined();
}

// A queued request rejects now with ERR_DISPOSED; one running stops at its next layer
// (the job owns the session until then) and then rejects.
Napi::Value SessionDispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionHolder* h = handle<SessionHolder>(info, 0, "session");
  if (h->s) {
    sparrow::Scheduler::Requests done = h->queue->sched.dispose(*h->s);
    h->s.reset();
    settle_all(env, done);
  }
  return env.Undefined();
}

// Aborts the session's evaluate: one still queued rejects now with ERR_ABORTED, one running
// stops at its next layer and then rejects. Nothing happens when the session is idle.
Napi::Value SessionCancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionHolder& h = live_session(info, 0);
  sparrow::Scheduler::Requests done = h.queue->sched.cancel(*h.s);
  settle_all(env, done);
  return env.Undefined();
}

}  // namespace

SPARROW_BINDING(model) {
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel"));
  exports.Set("abortFlagCreate", Napi::Function::New(env, AbortFlagCreate, "abortFlagCreate"));
  exports.Set("abortFlagSet", Napi::Function::New(env, AbortFlagSet, "abortFlagSet"));
  exports.Set("modelInfo", Napi::Function::New(env, ModelInfo, "modelInfo"));
  exports.Set("modelDispose", Napi::Function::New(env, ModelDispose, "modelDispose"));
  exports.Set("modelStats", Napi::Function::New(env, ModelStats, "modelStats"));
  exports.Set("modelSparsitySites", Napi::Function::New(env, ModelSparsitySites, "modelSparsitySites"));
  exports.Set("modelFingerprint", Napi::Function::New(env, ModelFingerprint, "modelFingerprint"));
  exports.Set("sessionCreate", Napi::Function::New(env, SessionCreate, "sessionCreate"));
  exports.Set("sessionEvaluate", Napi::Function::New(env, SessionEvaluate, "sessionEvaluate"));
  exports.Set("sessionReset", Napi::Function::New(env, SessionReset, "sessionReset"));
  exports.Set("sessionTruncate", Napi::Function::New(env, SessionTruncate, "sessionTruncate"));
  exports.Set("sessionShift", Napi::Function::New(env, SessionShift, "sessionShift"));
  exports.Set("sessionTokens", Napi::Function::New(env, SessionTokens, "sessionTokens"));
  exports.Set("sessionContextSize", Napi::Function::New(env, SessionContextSize, "sessionContextSize"));
  exports.Set("sessionCacheBytes", Napi::Function::New(env, SessionCacheBytes, "sessionCacheBytes"));
  exports.Set("sessionSaveState", Napi::Function::New(env, SessionSaveState, "sessionSaveState"));
  exports.Set("sessionRestoreState", Napi::Function::New(env, SessionRestoreState, "sessionRestoreState"));
  exports.Set("sessionDispose", Napi::Function::New(env, SessionDispose, "sessionDispose"));
  exports.Set("sessionCancel", Napi::Function::New(env, SessionCancel, "sessionCancel"));
}
