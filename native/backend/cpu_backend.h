// The CPU backend: activations are host floats, the products run the SIMD kernels of the
// current ISA (kernels/kernels.h) on the backend's thread pool, attention reads the host
// KV cache in place. Its scratch memory grows to the largest batch seen and is reused.
#pragma once
#include <memory>
#include <vector>

#include "backend.h"
#include "runtime/thread_pool.h"

namespace sparrow {

class CpuBackend final : public Backend {
 public:
  // A backend with a pool of `threads` threads (its own).
  explicit CpuBackend(int threads);
  ~CpuBackend() override;

  const char* name() const override { return "cpu"; }
  ThreadPool& pool() { return *pool_; }
  int threads() const { return pool_->size(); }

  void begin(const SeqSpan* seqs, int n_seq) override;
  int tokens() const override { return n_; }
  Act alloc(int width, int rows = 0) override;

  void embed(const Matrix& table, const int32_t* tokens, Act out) override;
  void rmsnorm(Act x, const std::vector<float>& w, float eps, Act out) override;
  void rmsnorm_heads(Act x, int head_dim, const std::vector<float>& w, float eps) override;
  void matmul(const std::vector<MatMul>& group) override;
  void add_bias(Act y, const std::vector<float>& b) override;
  void rope(Act x, int n_heads, const RopeParams& p) override;
  void kv_store(int layer, Act k, Act v) override;
  void attention(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) override;
  void attention_flash(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) override;
  void glu(GluKind kind, Act gate, Act up, Act out) override;
  void add(Act x, Act y) override;
  void scale(Act x, float s) override;
  void sparsify(Act x, const std::vector<float>& frac) override;
  void moe(Act x, const MoeFfn& m, Act out) override;
  void read_hidden(Act x, const std::vector<float>& norm, float eps, const std::vector<int>& rows,
                   float* const* dest) override;
  void read_logits(Act x, const std::vector<float>& norm, float eps, const Matrix& output, const std::vector<int>& rows,
                   float* const* dest, float softcap = 0.0f) override;
  void rope_cache(KVCache& kv, int p0, int p1, int delta, const std::vector<RopeParams>& layers) override;

  void write(Act a, const float* src) override;
  void read(Act a, float* dst) override;

 private:
  float* ptr(Act a);
  // The matmul group on explicit host buffers (n rows each).
  struct HostMatMul {
    const Matrix* w;
    const float* x;
    float* y;
  };
  void matmul_host(int n, const std::vector<HostMatMul>& jobs);
  // cos/sin of every rotated pair of every token of the batch for these parameters
  // (computed once per pass and parameter set).
  void rope_table(const RopeParams& p);
  void attend(int layer, float* q, float* out, const AttnParams& p, const std::vector<int>& seqs, bool flash);

  std::unique_ptr<ThreadPool> pool_;
  // The batch.
  int n_ = 0;
  std::vector<SeqSpan> seqs_;
  std::vector<int> seq_of_, pos_of_, seq_t0_;
  // Activation buffers, by Act::id; the next one alloc() hands out.
  std::vector<std::vector<float>> bufs_;
  int next_ = 0;
  // Scratch: quantized matmul inputs (one per distinct input of a group), per-thread
  // attention scratch, the normed rows of read_logits and their logits.
  std::vector<std::vector<uint8_t>> xq_;
  std::vector<std::vector<float>> per_thread_;
  std::vector<float> out_rows_, logits_;
  // Mixture of experts: router logits, gathered inputs and outputs of one expert, the
  // expert outputs of every (token, choice).
  std::vector<float> moe_logits_, moe_x_, moe_g_, moe_u_, moe_y_, moe_r_;
  // RoPE angles of the current batch and the parameters they were computed for.
  std::vector<float> cos_, sin_;
  bool rope_valid_ = false;
  RopeParams rope_key_;
};

}  // namespace sparrow
