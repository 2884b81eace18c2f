// The backend interface: the operations a transformer layer is made of, each over a whole
// batch of tokens. The forward pass (model/forward.cpp) is a sequence of these calls and
// nothing else; a backend decides where the numbers live and how they are computed. The
// CPU backend (cpu_backend.h) keeps them in host memory and runs the SIMD kernels on its
// thread pool; a GPU backend would record the same calls into a command buffer.
//
// Activations are backend buffers named by handles (Act): `rows` tokens of `width` floats.
// The forward pass never reads one: the only data that comes back is the logits (read_logits)
// or, for sessions that output embeddings, the final normed hidden state (read_hidden).
// Weights are the loaded Matrix objects and the model's float vectors (norm weights, biases,
// RoPE factors); a device backend uploads them once and finds them again by address.
//
// The KV cache is still the host KVCache of runtime/ (a session owns it; SeqSpan points to
// it): a device backend will need its own cache type, made through the backend. A layer
// with a sliding window may hold only its window (KVCache::first(layer) on, addressed with
// k_at / v_at): attention reads no position before the first one a token sees (rounded
// down to a multiple of 4), and the forward pass has the cache make room before a pass.
//
// A pass starts with begin(): the batch's sequences (each a run of consecutive tokens of one
// session, with its KV cache and first position). Token t of the batch then has a known
// sequence and position, which rope, kv_store and the attention routes use.
#pragma once
#include <cstdint>
#include <vector>

namespace sparrow {

class KVCache;
class Matrix;

// An activation buffer of the backend: rows x width floats, valid until the next begin().
struct Act {
  int id = -1;
  int rows = 0, width = 0;
  bool valid() const { return id >= 0; }
};

enum class RopeStyle { Normal, NeoX };  // pairs (2i, 2i+1) / pairs (i, i + rope_dim/2)

// The gated activation of the feed-forward block: out = act(gate) * up.
enum class GluKind {
  SwiGLU,  // silu(g) = g / (1 + exp(-g))
  GeGLU,   // gelu(g), tanh approximation, as ggml's CPU computes it: g rounded to f16, the
           // f16 value of 0.5 g (1 + tanh(sqrt(2/pi) g (1 + 0.044715 g^2))) (0 below -10, g above 10)
  SwiGLUOAI,  // gpt-oss's clamped variant (ggml's swiglu_oai, alpha 1.702, limit 7): with
              // x = min(g, 7), y = clamp(u, -7, 7): x / (1 + exp(-1.702 x)) * (y + 1)
};

struct RopeParams {
  int head_dim = 0;
  int rope_dim = 0;              // leading dims of each head that are rotated (even)
  float base = 10000.0f;
  float freq_scale = 1.0f;       // positions are multiplied by this (linear scaling)
  RopeStyle style = RopeStyle::Normal;
  const std::vector<float>* factors = nullptr;  // empty/null or rope_dim/2 divisors of the frequencies
  // LongRoPE (Phi-3): a sequence whose cache holds more than long_above positions rotates
  // with factors_long instead of factors (llama.cpp chooses by the context size).
  const std::vector<float>* factors_long = nullptr;
  int long_above = 0;
  float attn_factor = 1.0f;  // multiplies cos and sin (rope.scaling.attn_factor)
  // YaRN (ggml's rope_yarn), when ext_factor != 0: each pair's angle blends the scaled
  // (freq_scale) and unscaled angle by a ramp over the pair index between the correction
  // dims of beta_fast and beta_slow rotations in yarn_orig_ctx positions, and cos/sin are
  // further multiplied by 1 + 0.1 ln(1 / freq_scale).
  float ext_factor = 0.0f;
  int yarn_orig_ctx = 0;
  float beta_fast = 32.0f, beta_slow = 1.0f;
};

struct AttnParams {
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 1.0f;  // multiplies Q.K (1/sqrt(head_dim), or 1 where Q comes pre-scaled)
  float softcap = 0.0f;  // > 0: each logit s becomes softcap * tanh(s / softcap) (Gemma 2)
  int window = 0;        // > 0: a token at position p sees only positions (p - window, p] (sliding window)
  // Attention sinks (gpt-oss): null/empty, or n_head learned logits; each head's softmax
  // also counts exp(sink), a position that weighs no value (ggml's soft_max sinks).
  const std::vector<float>* sinks = nullptr;
};

// One sequence of a batch: n consecutive tokens at positions [pos0, pos0 + n) of `kv`.
// The sequences take the batch's tokens in order.
struct SeqSpan {
  KVCache* kv = nullptr;
  int pos0 = 0;
  int n = 0;
  bool flash_attn = false;  // attention by the flash-attention route (see Backend)
};

// One product of a matmul group: y = W x (x: rows x W.cols(), y: rows x W.rows()).
struct MatMul {
  const Matrix* w;
  Act x, y;
};

// A mixture-of-experts feed-forward block (Mixtral-style llama, Qwen3-MoE), as llama.cpp's
// build_moe_ffn computes it with softmax gating: per token, the softmax of the router's
// logits over the experts, the n_used most probable experts (in decreasing probability),
// their probabilities divided by their sum when `norm`, and
//   out = sum_i w_i down_i(act(gate_i x) * up_i x)
// added in that order. Only the chosen experts' matrices are read; the tokens routed to an
// expert go through it together (one matrix product per expert and batch).
//
// gpt-oss's variant: `weight_softmax` chooses the n_used largest router logits (plus
// router_bias) and weighs them by the softmax of those n_used logits alone (llama.cpp's
// SOFTMAX_WEIGHT gating); the experts' gate, up and down products add their own biases.
struct MoeFfn {
  const Matrix* router = nullptr;             // n_expert x n_embd
  std::vector<const Matrix*> gate, up, down;  // one each per expert
  int n_used = 0;
  bool norm = true;
  GluKind act = GluKind::SwiGLU;
  bool weight_softmax = false;
  const std::vector<float>* router_bias = nullptr;  // null/empty, or n_expert floats
  // Empty, or one per expert: that expert's bias (rows of its matrix; null/empty: none).
  std::vector<const std::vector<float>*> gate_bias, up_bias, down_bias;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Starts a pass over the batch made of these sequences (their n add up to the batch's
  // token count). Buffers of an earlier pass become invalid.
  virtual void begin(const SeqSpan* seqs, int n_seq) = 0;
  virtual int tokens() const = 0;  // rows of the current batch
  // A buffer of `rows` x `width` floats for this pass (rows: tokens() when 0), contents
  // undefined.
  virtual Act alloc(int width, int rows = 0) = 0;

  // out[t] = row tokens[t] of the embedding matrix (tokens() rows; ids already checked).
  virtual void embed(const Matrix& table, const int32_t* tokens, Act out) = 0;
  // out[t] = x[t] / rms(x[t]) * w.
  virtual void rmsnorm(Act x, const std::vector<float>& w, float eps, Act out) = 0;
  // In place, per head: every head_dim-wide slice h of a row (x.width a multiple of
  // head_dim) becomes h / rms(h) * w, w holding head_dim weights (Qwen3's Q/K norms).
  virtual void rmsnorm_heads(Act x, int head_dim, const std::vector<float>& w, float eps) = 0;
  // y_j = W_j x_j for every product of the list, all in one go; products that read the
  // same input share its conversion to the weights' input format. Any number of products.
  virtual void matmul(const std::vector<MatMul>& group) = 0;
  // y[t] += b (no-op for an empty b).
  virtual void add_bias(Act y, const std::vector<float>& b) = 0;
  // Rotates the heads of every token by its position in its sequence.
  virtual void rope(Act x, int n_heads, const RopeParams& p) = 0;
  // Writes the keys and values of every token to its sequence's cache at its position.
  virtual void kv_store(int layer, Act k, Act v) = 0;
  // Attention of the tokens of the sequences `seqs` (indices into begin()'s list) over
  // their caches, positions [0, pos + 1) (with a window w, (pos - w, pos]): q is
  // rows x n_head*head_dim, out the same.
  // The default route is llama.cpp's (Q K^T, softmax, then P V; q and P rounded to f16).
  virtual void attention(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) = 0;
  // The flash-attention route: llama.cpp's CPU flash attention numerics (one pass over the
  // positions with an online softmax, values summed in f16; its tiled f32 route for 64 or
  // more queries of a sequence). Needs an F16 cache.
  virtual void attention_flash(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) = 0;
  // out = act(gate) * up, element by element.
  virtual void glu(GluKind kind, Act gate, Act up, Act out) = 0;
  // x += y.
  virtual void add(Act x, Act y) = 0;
  // x *= s, in place.
  virtual void scale(Act x, float s) = 0;
  // Activation sparsity, in place: in each row t, the floor(frac[t] * x.width) entries of
  // smallest magnitude become +0 (exact count; ties broken by index, NaN ranks above
  // infinity: see sparsify.h). frac holds x.rows fractions in [0, 1]; rows with 0 are left
  // as they are.
  virtual void sparsify(Act x, const std::vector<float>& frac) = 0;
  // out = the mixture-of-experts block of x (see MoeFfn); out must not be x.
  virtual void moe(Act x, const MoeFfn& m, Act out) = 0;
  // Final norm and output projection of the rows `rows` of x; the logits of row i go to
  // dest[i] (vocab floats each, host memory): the one read-back of a pass. softcap > 0:
  // each logit l becomes softcap * tanh(l / softcap) (Gemma 2's final soft-capping).
  virtual void read_logits(Act x, const std::vector<float>& norm, float eps, const Matrix& output,
                           const std::vector<int>& rows, float* const* dest, float softcap = 0.0f) = 0;
  // Final norm of the rows `rows` of x; row i goes to dest[i] (x.width floats each, host
  // memory): the read-back of a pass whose sequences output embeddings, not logits.
  virtual void read_hidden(Act x, const std::vector<float>& norm, float eps, const std::vector<int>& rows,
                           float* const* dest) = 0;
  // Re-rotates the cached keys of positions [p0, p1) of every layer and KV head by
  // `delta` positions (context shift). `layers` holds the RoPE of each layer (kv.n_layer()
  // entries: Gemma 3's local layers have their own base), or one entry for all layers.
  virtual void rope_cache(KVCache& kv, int p0, int p1, int delta, const std::vector<RopeParams>& layers) = 0;

  // For tests and tools only (the forward pass never calls them): host copies in and out.
  virtual void write(Act a, const float* src) = 0;
  virtual void read(Act a, float* dst) = 0;
};

}  // namespace sparrow
