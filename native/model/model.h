// A transformer model loaded from a GGUF file (the loader: model.cpp): its row of the
// architecture table (arch.h), hyper-parameters from the metadata (hparams.h), weights as
// Matrix objects over the memory-mapped tensor data, and the backend that runs it. The
// file stays mapped for the life of the Model; nothing large is copied at load.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arch.h"
#include "backend/cpu_backend.h"
#include "core/gguf.h"
#include "gpu/gpu.h"
#include "hparams.h"
#include "kernels/matmul.h"
#include "sparse/sparse_matrix.h"

namespace sparrow {

// The experts of a mixture-of-experts layer: the router and one matrix per expert (views
// of the 3-D tensors' slices), and the backend's description of the block.
struct MoeWeights {
  std::unique_ptr<Matrix> router;
  std::vector<std::unique_ptr<Matrix>> gate, up, down;
  std::vector<float> router_bias;                      // empty when none
  std::vector<std::vector<float>> gate_b, up_b, down_b;  // one per expert, or empty
  MoeFfn ffn;
};

struct LayerWeights {
  std::vector<float> attn_norm, ffn_norm;
  std::unique_ptr<Matrix> wq, wk, wv, wo, w_gate, w_up, w_down;
  std::vector<float> bq, bk, bv, bo;  // empty when the model has none
  std::vector<float> q_norm, k_norm;  // per-head RMSNorm weights (head_dim), empty when none
  std::vector<float> attn_post_norm, ffn_post_norm;  // norms of the blocks' outputs, empty when none
  std::vector<float> attn_sinks;  // one learned logit per head (gpt-oss), empty when none
  std::unique_ptr<MoeWeights> moe;  // set: a mixture-of-experts FFN (w_gate/up/down empty)
};

struct ModelOptions {
  int threads = 0;      // 0: ThreadPool::default_threads()
  int batch_size = 512;  // tokens per forward pass when evaluating a prompt
  GpuMode gpu = GpuMode::Off;  // where the forward pass runs (gpu/gpu.h)
  int gpu_device = -1;         // which GPU device (-1: the first suitable one)
  float sparsity = 0;  // loadModel's sparsity level: > 0 stores the layer matrices channel-major (native/sparse)
};

// The sites of activation sparsity in a layer (forward.cpp): the inputs of the matrix
// products, each shared by the matrices that read it. A sequence's allocation is
// kSparsitySites fractions per layer (layer-major): the share of each site's input
// channels zeroed for each decoded token (see Backend::sparsify).
enum SparsitySite { kSiteQKV = 0, kSiteO = 1, kSiteGateUp = 2, kSiteDown = 3, kSparsitySites = 4 };

// Progress and cancellation of a load (both optional). `progress` is called on the loading
// thread with the fraction of tensor bytes prepared: increasing, the last call with 1.
// `cancel` is checked between tensors: once set, the load throws ERR_ABORTED and frees
// everything it had built.
struct LoadControl {
  std::function<void(double)> progress;
  const std::atomic<bool>* cancel = nullptr;
};

class Model {
 public:
  // Opens, validates and maps the model. Throws GGUF errors for a bad file and
  // SparrowErrors (ERR_UNSUPPORTED_ARCH, ERR_MISSING_TENSOR, ERR_BAD_TENSOR_SHAPE,
  // ERR_BAD_MODEL, ERR_UNSUPPORTED_TYPE) naming the architecture, key or tensor.
  static std::shared_ptr<Model> load(const std::string& path, const ModelOptions& opts, const LoadControl* ctl = nullptr);

  const GGUFFile& file() const { return *file_; }
  const ArchSpec& arch() const { return *arch_; }
  const HParams& hp() const { return hp_; }
  const std::string& name() const { return name_; }
  uint64_t n_params() const { return n_params_; }
  int file_type() const { return file_type_; }  // general.file_type, -1 when absent
  int threads() const { return backend_->threads(); }
  int batch_size() const { return batch_size_; }
  float sparsity() const { return sparsity_; }  // ModelOptions::sparsity
  // Bytes of the weights that read the input of `site` in layer `layer` (wq+wk+wv, wo,
  // w_gate+w_up, w_down as stored); 0 for a site that is never sparsified (the FFN of a
  // mixture-of-experts layer).
  double site_bytes(int layer, int site) const;
  // A fingerprint of this model file (header bytes and a sample of the data), used to
  // check that a saved session state belongs to it.
  uint64_t fingerprint() const { return fingerprint_; }

  // Weights.
  const Matrix& tok_embd() const { return *tok_embd_; }
  const Matrix& output() const { return output_ ? *output_ : *tok_embd_; }
  const std::vector<float>& output_norm() const { return output_norm_; }
  const std::vector<float>& rope_freq_factors() const { return rope_freqs_; }  // empty or rope_dim/2
  const std::vector<float>& rope_factors_long() const { return rope_long_; }   // LongRoPE: empty or rope_dim/2
  const std::vector<LayerWeights>& layers() const { return layers_; }

  // One forward pass runs at a time per model (its backend, with its threads and
  // scratch, is shared by all of its sessions); sessions hold this lock while they evaluate.
  std::mutex& run_mutex() const { return run_mutex_; }
  Backend& backend() const { return gpu_ ? *gpu_ : static_cast<Backend&>(*backend_); }
  // The GPU device the forward pass runs on, or nullptr for the CPU.
  const GpuDevice* gpu() const { return gpu_ ? &gpu_device_ : nullptr; }
  // The weight bytes read by the channel-major layer matrices (ModelOptions::sparsity > 0),
  // against those a dense pass would read; null for a dense model.
  SparseStats* sparse_stats() const { return sparse_stats_.get(); }

 private:
  Model() = default;
  std::shared_ptr<GGUFFile> file_;
  const ArchSpec* arch_ = nullptr;
  HParams hp_;
  std::string name_;
  uint64_t n_params_ = 0;
  int file_type_ = -1;
  int batch_size_ = 512;
  float sparsity_ = 0;
  uint64_t fingerprint_ = 0;
  std::unique_ptr<Matrix> tok_embd_, output_;
  std::vector<float> output_norm_, rope_freqs_, rope_long_;
  std::vector<LayerWeights> layers_;
  std::unique_ptr<CpuBackend> backend_;
  std::unique_ptr<Backend> gpu_;  // set: the forward pass runs there (the CPU backend stays for loading)
  GpuDevice gpu_device_;
  std::shared_ptr<SparseStats> sparse_stats_;
  mutable std::mutex run_mutex_;
};

// The name llama.cpp gives a general.file_type value ("Q4_K_M"), or "unknown".
const char* file_type_name(int ftype);

}  // namespace sparrow
