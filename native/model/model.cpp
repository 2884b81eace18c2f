#include "model.h"

#include "backend/cpu_backend.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <utility>

#include "core/error.h"
#include "core/ggml_types.h"
#include "quant/fp16.h"

#if !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace sparrow {

const char* file_type_name(int ftype) {
  switch (ftype) {  // llama.cpp's llama_ftype
    case 0: return "F32";
    case 1: return "F16";
    case 2: return "Q4_0";
    case 3: return "Q4_1";
    case 7: return "Q8_0";
    case 8: return "Q5_0";
    case 9: return "Q5_1";
    case 10: return "Q2_K";
    case 11: return "Q3_K_S";
    case 12: return "Q3_K_M";
    case 13: return "Q3_K_L";
    case 14: return "Q4_K_S";
    case 15: return "Q4_K_M";
    case 16: return "Q5_K_S";
    case 17: return "Q5_K_M";
    case 18: return "Q6_K";
    case 32: return "BF16";
    default: return "unknown";
  }
}

// ---------------------------------------------------------------------------------
// Loading helpers.

namespace {

// Quantized matrices are repacked into their own memory at load (kernels/matrix.cpp) and
// never read from the mapping again; F32/F16/BF16 ones are used in place.
bool repacked_at_load(uint32_t type) {
  switch (GGMLType(type)) {
    case GGMLType::F32:
    case GGMLType::F16:
    case GGMLType::BF16: return false;
    default: return true;
  }
}

// Drops the resident pages of a tensor the engine no longer reads, so that resident
// memory is about one copy of the weights (they stay in the page cache; a later read
// would simply fault them back in). Called right after each tensor is read, so the peak
// during a load is the repacked weights plus the one tensor in flight. Only the pages
// wholly inside the tensor go: a page shared with the next tensor is kept.
void release_pages(const GGUFTensor& t) {
#if !defined(_WIN32)
  static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  uintptr_t begin = (uintptr_t(t.data) + page - 1) / page * page;
  uintptr_t end = (uintptr_t(t.data) + t.bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
#else
  (void)t;
#endif
}

// Reports a load's progress (bytes of tensors prepared out of all tensor bytes) and stops
// it between tensors when cancelled. Without a LoadControl it does nothing.
class LoadTracker {
 public:
  LoadTracker(const GGUFFile& f, const LoadControl* ctl) : ctl_(ctl) {
    for (const GGUFTensor& t : f.tensors()) total_ += double(t.bytes);
  }
  // Before a slow step: throws ERR_ABORTED once the load has been cancelled.
  void check() const {
    if (ctl_ && ctl_->cancel && ctl_->cancel->load(std::memory_order_relaxed))
      throw sparrow_error("ERR_ABORTED", "loadModel was aborted");
  }
  // After a tensor has been prepared.
  void done(const GGUFTensor& t) {
    done_ += double(t.bytes);
    if (ctl_ && ctl_->progress && total_ > 0) ctl_->progress(std::min(done_ / total_, 0.999));
    check();
  }
  void finish() const {
    check();
    if (ctl_ && ctl_->progress) ctl_->progress(1.0);
  }

 private:
  const LoadControl* ctl_;
  double total_ = 0, done_ = 0;
};

class Loader {
 public:
  Loader(const GGUFFile& f, const std::string& prefix, LoadTracker* tracker = nullptr, ParallelFor par = {})
      : f_(f), prefix_(prefix), tracker_(tracker), par_(std::move(par)) {}

  // With stats set, layer_matrix and split_rows(..., true) store the matrices whose type
  // has a channel-major layout as SparseMatrix (sparse/sparse_matrix.h), counting into stats.
  void set_sparse(std::shared_ptr<SparseStats> stats) { sparse_ = std::move(stats); }

  const GGUFTensor* tensor(const std::string& name, bool required) const {
    const GGUFTensor* t = f_.tensor(name);
    if (!t && required)
      throw sparrow_error("ERR_MISSING_TENSOR", "tensor '" + name + "' is missing from the model (architecture '" +
                                                    prefix_ + "')");
    return t;
  }

  static std::string shape_str(const GGUFTensor& t) {
    std::string s = "[";
    for (uint32_t d = 0; d < t.n_dims; d++) s += (d ? ", " : "") + std::to_string(t.ne[d]);
    return s + "]";
  }

  // A weight matrix of ne = [cols, rows].
  std::unique_ptr<Matrix> matrix(const std::string& name, int64_t cols, int64_t rows, Need need = Need::Required) const {
    if (need == Need::Absent) return nullptr;
    const GGUFTensor* t = tensor(name, need == Need::Required);
    if (!t) return nullptr;
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
      throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" +
                                                      std::to_string(cols) + ", " + std::to_string(rows) + "]");
    return make(*t);
  }

  // A layer's projection (q, k, v, output, gate, up, down): channel-major when sparse.
  std::unique_ptr<Matrix> layer_matrix(const std::string& name, int64_t cols, int64_t rows) const {
    const GGUFTensor* t = tensor(name, true);
    if (!sparse_ || !sparse_supported(t->type)) return matrix(name, cols, rows);
    if (t->ne[0] != cols || t->ne[1] != rows || t->ne[2] != 1 || t->ne[3] != 1)
      throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" +
                                                      std::to_string(cols) + ", " + std::to_string(rows) + "]");
    return make(*t, true);
  }

  // The Matrix of tensor t, repacked on the load's threads; the tensor's pages of the
  // mapping are dropped as soon as they have been read (see release_pages).
  std::unique_ptr<Matrix> make(const GGUFTensor& t, bool sparse = false) const {
    if (tracker_) tracker_->check();
    std::unique_ptr<Matrix> m = sparse ? make_sparse_matrix(t.type, t.data, t.ne[1], t.ne[0], t.name.c_str(), sparse_, par_)
                                       : make_matrix(t, par_);
    if (repacked_at_load(t.type)) release_pages(t);
    if (tracker_) tracker_->done(t);
    return m;
  }

  // The Matrices of consecutive row ranges of a weight of ne = [cols, sum(rows)] (a fused
  // QKV or gate/up tensor): each a view of its rows of the tensor, prepared as a matrix of
  // its own (rows of a GGUF matrix are stored one after the other, whole blocks each).
  std::vector<std::unique_ptr<Matrix>> split_rows(const GGUFTensor& t, int64_t cols, const std::vector<int64_t>& rows,
                                                  bool layer = false) const {
    const bool sparse = layer && sparse_ && sparse_supported(t.type);
    int64_t total = 0;
    for (int64_t r : rows) total += r;
    if (t.ne[0] != cols || t.ne[1] != total || t.ne[2] != 1 || t.ne[3] != 1)
      throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor '" + t.name + "' has shape " + shape_str(t) + ", expected [" +
                                                      std::to_string(cols) + ", " + std::to_string(total) + "]");
    const TypeInfo* ti = type_info(t.type);
    if (!ti || cols % ti->block_size != 0)
      throw sparrow_error("ERR_UNSUPPORTED_TYPE", "tensor '" + t.name + "' has type " + type_name(t.type) +
                                                      ", whose blocks do not divide its rows");
    const uint64_t row_bytes = uint64_t(cols / ti->block_size) * ti->type_size;
    if (tracker_) tracker_->check();
    std::vector<std::unique_ptr<Matrix>> out;
    int64_t r0 = 0;
    for (int64_t r : rows) {
      GGUFTensor part = t;
      part.name = t.name + " rows [" + std::to_string(r0) + ", " + std::to_string(r0 + r) + ")";
      part.ne[1] = r;
      part.offset = t.offset + uint64_t(r0) * row_bytes;
      part.data = t.data + uint64_t(r0) * row_bytes;
      part.bytes = uint64_t(r) * row_bytes;
      out.push_back(sparse ? make_sparse_matrix(part.type, part.data, r, cols, part.name.c_str(), sparse_, par_)
                           : make_matrix(part, par_));
      r0 += r;
    }
    if (repacked_at_load(t.type)) release_pages(t);
    if (tracker_) tracker_->done(t);
    return out;
  }

  // The n_expert matrices of a 3-D expert tensor of ne = [cols, rows, n_expert]: each a
  // view of its slice (the experts are stored one after the other).
  std::vector<std::unique_ptr<Matrix>> split_experts(const GGUFTensor& t, int64_t cols, int64_t rows, int64_t n_expert) const {
    if (t.ne[0] != cols || t.ne[1] != rows || t.ne[2] != n_expert || t.ne[3] != 1)
      throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor '" + t.name + "' has shape " + shape_str(t) + ", expected [" +
                                                      std::to_string(cols) + ", " + std::to_string(rows) + ", " +
                                                      std::to_string(n_expert) + "]");
    const TypeInfo* ti = type_info(t.type);
    if (!ti || cols % ti->block_size != 0)
      throw sparrow_error("ERR_UNSUPPORTED_TYPE", "tensor '" + t.name + "' has type " + type_name(t.type) +
                                                      ", whose blocks do not divide its rows");
    const uint64_t bytes = uint64_t(cols / ti->block_size) * ti->type_size * uint64_t(rows);
    if (tracker_) tracker_->check();
    std::vector<std::unique_ptr<Matrix>> out;
    for (int64_t e = 0; e < n_expert; e++) {
      GGUFTensor part = t;
      part.name = t.name + " expert " + std::to_string(e);
      part.ne[2] = 1;
      part.n_dims = 2;
      part.offset = t.offset + uint64_t(e) * bytes;
      part.data = t.data + uint64_t(e) * bytes;
      part.bytes = bytes;
      out.push_back(make_matrix(part, par_));
    }
    if (repacked_at_load(t.type)) release_pages(t);
    if (tracker_) tracker_->done(t);
    return out;
  }

  // A 2-D tensor of ne = [n, n_expert] (per-expert biases) as n_expert vectors of n floats
  // (empty when an Optional tensor is absent).
  std::vector<std::vector<float>> expert_vecs(const std::string& name, int64_t n, int64_t n_expert, Need need) const {
    if (need == Need::Absent) return {};
    const GGUFTensor* t = tensor(name, need == Need::Required);
    if (!t) return {};
    if (t->ne[0] != n || t->ne[1] != n_expert || t->ne[2] != 1 || t->ne[3] != 1)
      throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" +
                                                      std::to_string(n) + ", " + std::to_string(n_expert) + "]");
    std::vector<float> all = floats(*t, name, n * n_expert);
    std::vector<std::vector<float>> out;
    for (int64_t e = 0; e < n_expert; e++) out.emplace_back(all.begin() + e * n, all.begin() + (e + 1) * n);
    return out;
  }

  // A 1-D tensor of n values (norm weights, biases, rope factors) as floats.
  std::vector<float> vec(const std::string& name, int64_t n, Need need = Need::Required) const {
    if (need == Need::Absent) return {};
    const GGUFTensor* t = tensor(name, need == Need::Required);
    if (!t) return {};
    if (int64_t(t->elements()) != n || t->ne[0] != n)
      throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor '" + name + "' has shape " + shape_str(*t) + ", expected [" +
                                                      std::to_string(n) + "]");
    return floats(*t, name, n);
  }

  // The n values of tensor t (F32, F16 or BF16) as floats.
  std::vector<float> floats(const GGUFTensor& tt, const std::string& name, int64_t n) const {
    const GGUFTensor* t = &tt;
    std::vector<float> out(static_cast<size_t>(n));
    const uint8_t* p = t->data;
    for (int64_t i = 0; i < n; i++) {
      uint16_t h;
      switch (GGMLType(t->type)) {
        case GGMLType::F32: std::memcpy(&out[i], p + 4 * i, 4); break;
        case GGMLType::F16: std::memcpy(&h, p + 2 * i, 2); out[i] = fp16_to_fp32(h); break;
        case GGMLType::BF16: std::memcpy(&h, p + 2 * i, 2); out[i] = bf16_to_fp32(h); break;
        default:
          throw sparrow_error("ERR_UNSUPPORTED_TYPE", "tensor '" + name + "' has type " + type_name(t->type) +
                                                          " (a vector must be F32, F16 or BF16)");
      }
    }
    release_pages(*t);
    if (tracker_) tracker_->done(*t);
    return out;
  }

 private:
  const GGUFFile& f_;
  std::string prefix_;
  LoadTracker* tracker_;
  ParallelFor par_;
  std::shared_ptr<SparseStats> sparse_;
};

uint64_t fnv1a(uint64_t h, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

std::shared_ptr<Model> Model::load(const std::string& path, const ModelOptions& opts, const LoadControl* ctl) {
  if (!(opts.sparsity >= 0.0f && opts.sparsity <= 0.9f))
    throw sparrow_error("ERR_INVALID_ARG", "sparsity must be a number from 0 to 0.9 (got " + std::to_string(opts.sparsity) + ")");
  std::shared_ptr<Model> m(new Model());
  if (ctl && ctl->cancel && ctl->cancel->load()) throw sparrow_error("ERR_ABORTED", "loadModel was aborted");
  m->file_ = GGUFFile::open(path);
  const GGUFFile& f = *m->file_;
  LoadTracker tracker(f, ctl);

  std::string arch = f.get_string("general.architecture", "");
  if (arch.empty()) throw sparrow_error("ERR_BAD_MODEL", "model metadata is missing 'general.architecture'");
  m->arch_ = find_arch(arch);
  if (!m->arch_)
    throw sparrow_error("ERR_UNSUPPORTED_ARCH",
                        "model architecture '" + arch + "' is not supported (supported: " + supported_archs() + ")");
  m->name_ = f.get_string("general.name", "");
  if (const GGUFValue* v = f.find("general.file_type"); v && v->is_integer()) m->file_type_ = int(v->as_i64("general.file_type"));

  // The GPU device, chosen first so that a missing one fails before the work of loading.
  const int gpu_index = gpu_choose(opts.gpu, opts.gpu_device);

  // The compute threads exist from the start: they repack the quantized weights (row
  // groups of one tensor at a time, so progress and abort stay per tensor).
  int threads = opts.threads > 0 ? opts.threads : ThreadPool::default_threads();
  m->backend_ = std::make_unique<CpuBackend>(threads);
  ThreadPool* pool = &m->backend_->pool();
  ParallelFor par = [pool](int64_t n, const std::function<void(int64_t)>& fn) {
    pool->run(int(n), [&fn](int task, int) { fn(task); });
  };

  // Hyper-parameters (hparams.cpp).
  Loader L(f, arch, &tracker, par);
  if (opts.sparsity > 0) {
    m->sparse_stats_ = std::make_shared<SparseStats>();
    L.set_sparse(m->sparse_stats_);
  }
  HParams& hp = m->hp_;
  hp = read_hparams(f, *m->arch_);

  // Weights. The vocabulary size is the embedding's row count.
  const GGUFTensor* embd = L.tensor("token_embd.weight", true);
  if (embd->ne[0] != hp.n_embd || embd->ne[2] != 1 || embd->ne[3] != 1 || embd->ne[1] < 1)
    throw sparrow_error("ERR_BAD_TENSOR_SHAPE", "tensor 'token_embd.weight' has shape " + Loader::shape_str(*embd) +
                                                    ", expected [" + std::to_string(hp.n_embd) + ", n_vocab]");
  if (embd->ne[1] > (int64_t(1) << 30))
    throw sparrow_error("ERR_BAD_MODEL", "tensor 'token_embd.weight' has " + std::to_string(embd->ne[1]) +
                                             " rows (expected 1.." + std::to_string(1 << 30) + ")");
  hp.n_vocab = int(embd->ne[1]);
  m->tok_embd_ = L.make(*embd);
  const ArchSpec& A = *m->arch_;
  m->output_ = L.matrix("output.weight", hp.n_embd, hp.n_vocab, A.output);  // absent: tied to the embedding
  m->output_norm_ = L.vec("output_norm.weight", hp.n_embd);
  m->rope_freqs_ = L.vec("rope_freqs.weight", hp.rope_dim / 2, A.rope_freqs);
  if (m->rope_freqs_.empty() && hp.rope_scaling == "llama3") m->rope_freqs_ = llama3_rope_factors(f, arch, hp);
  if (A.longrope != Need::Absent) {
    // LongRoPE: the short factors in place of rope_freqs, the long ones beside them.
    m->rope_freqs_ = L.vec("rope_factors_short.weight", hp.rope_dim / 2, A.longrope);
    m->rope_long_ = L.vec("rope_factors_long.weight", hp.rope_dim / 2, A.longrope);
  }

  const int64_t D = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), FF = hp.n_ff;
  m->layers_.resize(size_t(hp.n_layer));
  for (int l = 0; l < hp.n_layer; l++) {
    LayerWeights& w = m->layers_[size_t(l)];
    std::string b = "blk." + std::to_string(l) + ".";
    w.attn_norm = L.vec(b + "attn_norm.weight", D);
    if (const GGUFTensor* qkv = A.attn_qkv != Need::Absent ? L.tensor(b + "attn_qkv.weight", false) : nullptr) {
      if (L.tensor(b + "attn_qkv.bias", false))
        throw sparrow_error("ERR_BAD_MODEL", "tensor '" + b + "attn_qkv.bias' is not supported (architecture '" + arch + "')");
      auto parts = L.split_rows(*qkv, D, {Q, KV, KV}, true);
      w.wq = std::move(parts[0]), w.wk = std::move(parts[1]), w.wv = std::move(parts[2]);
    } else {
      w.wq = L.layer_matrix(b + "attn_q.weight", D, Q);
      w.wk = L.layer_matrix(b + "attn_k.weight", D, KV);
      w.wv = L.layer_matrix(b + "attn_v.weight", D, KV);
    }
    w.wo = L.layer_matrix(b + "attn_output.weight", Q, D);
    w.bq = L.vec(b + "attn_q.bias", Q, A.qkv_bias);
    w.bk = L.vec(b + "attn_k.bias", KV, A.qkv_bias);
    w.bv = L.vec(b + "attn_v.bias", KV, A.qkv_bias);
    w.bo = L.vec(b + "attn_output.bias", D, A.out_bias);
    w.q_norm = L.vec(b + "attn_q_norm.weight", hp.head_dim, A.qk_norm);
    w.k_norm = L.vec(b + "attn_k_norm.weight", hp.head_dim, A.qk_norm);
    w.attn_post_norm = L.vec(b + "post_attention_norm.weight", D, A.post_norms);
    w.attn_sinks = L.vec(b + "attn_sinks.weight", hp.n_head, A.attn_sinks);
    w.ffn_norm = L.vec(b + A.ffn_norm + ".weight", D);
    if (hp.n_expert > 0) {
      auto moe = std::make_unique<MoeWeights>();
      const int64_t E = hp.n_expert, FE = hp.n_ff_exp;
      moe->router = L.matrix(b + "ffn_gate_inp.weight", D, E);
      moe->gate = L.split_experts(*L.tensor(b + "ffn_gate_exps.weight", true), D, FE, E);
      moe->up = L.split_experts(*L.tensor(b + "ffn_up_exps.weight", true), D, FE, E);
      moe->down = L.split_experts(*L.tensor(b + "ffn_down_exps.weight", true), FE, D, E);
      moe->ffn.router = moe->router.get();
      for (int64_t e = 0; e < E; e++) {
        moe->ffn.gate.push_back(moe->gate[size_t(e)].get());
        moe->ffn.up.push_back(moe->up[size_t(e)].get());
        moe->ffn.down.push_back(moe->down[size_t(e)].get());
      }
      if (A.moe_bias != Need::Absent) {
        moe->router_bias = L.vec(b + "ffn_gate_inp.bias", E, A.moe_bias);
        moe->gate_b = L.expert_vecs(b + "ffn_gate_exps.bias", FE, E, A.moe_bias);
        moe->up_b = L.expert_vecs(b + "ffn_up_exps.bias", FE, E, A.moe_bias);
        moe->down_b = L.expert_vecs(b + "ffn_down_exps.bias", D, E, A.moe_bias);
        moe->ffn.router_bias = &moe->router_bias;
        for (size_t e = 0; e < moe->gate_b.size(); e++) moe->ffn.gate_bias.push_back(&moe->gate_b[e]);
        for (size_t e = 0; e < moe->up_b.size(); e++) moe->ffn.up_bias.push_back(&moe->up_b[e]);
        for (size_t e = 0; e < moe->down_b.size(); e++) moe->ffn.down_bias.push_back(&moe->down_b[e]);
      }
      moe->ffn.n_used = hp.n_expert_used;
      // Softmax-weighted gating takes the chosen experts' softmax as it is.
      moe->ffn.weight_softmax = A.moe_weight_softmax;
      moe->ffn.norm = !A.moe_weight_softmax;
      moe->ffn.act = A.ffn_act;
      w.moe = std::move(moe);
    } else if (A.ffn_up_gate) {  // ffn_up: the gate rows, then the up rows
      auto parts = L.split_rows(*L.tensor(b + "ffn_up.weight", true), D, {FF, FF}, true);
      w.w_gate = std::move(parts[0]), w.w_up = std::move(parts[1]);
    } else {
      w.w_gate = L.layer_matrix(b + "ffn_gate.weight", D, FF);
      w.w_up = L.layer_matrix(b + "ffn_up.weight", D, FF);
    }
    if (!w.moe) w.w_down = L.layer_matrix(b + "ffn_down.weight", FF, D);
    w.ffn_post_norm = L.vec(b + "post_ffw_norm.weight", D, A.post_norms);
  }

  // Pages of what was read (repacked matrices, copied vectors) went as each was done.
  for (const GGUFTensor& t : f.tensors()) m->n_params_ += t.elements();

  // Fingerprint: the header (metadata, tensor table) and the first and last 4 KiB of data.
  const uint8_t* base = f.mapping() ? f.mapping()->data() : nullptr;
  uint64_t h = 0xcbf29ce484222325ull;
  if (base) {
    size_t size = f.file_size(), data = size_t(f.data_offset());
    h = fnv1a(h, base, data);
    size_t n = std::min<size_t>(4096, size - data);
    h = fnv1a(h, base + data, n);
    h = fnv1a(h, base + size - n, n);
  }
  m->fingerprint_ = h;

  m->batch_size_ = opts.batch_size > 0 ? opts.batch_size : 512;
  m->sparsity_ = opts.sparsity;

  // The GPU backend, with every weight uploaded now (out of device memory fails here). With
  // gpu 'auto', a model the GPU backend cannot run (a head dimension above 256) stays
  // on the CPU, as does one loaded with sparsity > 0; with gpu 'vulkan' that is an error.
  if (gpu_index >= 0) {
    try {
      // Activation sparsity runs on the CPU backend only (its matrices are repacked for it).
      if (opts.sparsity > 0)
        throw sparrow_error("ERR_GPU_UNSUPPORTED", "the Vulkan backend does not run with sparsity > 0 (load with gpu: false)");
      auto gpu = gpu_make_backend(gpu_index);
      gpu_prepare_model(*gpu, *m);
      m->gpu_ = std::move(gpu);
      m->gpu_device_ = gpu_devices()[size_t(gpu_index)];
    } catch (const Error& e) {
      if (opts.gpu != GpuMode::Auto || e.code() != "ERR_GPU_UNSUPPORTED") throw;
    }
  }
  tracker.finish();
  return m;
}

namespace {
double matrix_bytes(const Matrix* w) {
  if (!w) return 0;
  const TypeInfo* t = type_info(w->type());
  if (!t) return 0;
  return double(w->rows()) * double(w->cols()) / t->block_size * t->type_size;
}
}  // namespace

double Model::site_bytes(int layer, int site) const {
  if (layer < 0 || size_t(layer) >= layers_.size()) return 0;
  const LayerWeights& w = layers_[size_t(layer)];
  switch (site) {
    case kSiteQKV: return matrix_bytes(w.wq.get()) + matrix_bytes(w.wk.get()) + matrix_bytes(w.wv.get());
    case kSiteO: return matrix_bytes(w.wo.get());
    case kSiteGateUp: return w.moe ? 0 : matrix_bytes(w.w_gate.get()) + matrix_bytes(w.w_up.get());
    case kSiteDown: return w.moe ? 0 : matrix_bytes(w.w_down.get());
    default: return 0;
  }
}

}  // namespace sparrow
