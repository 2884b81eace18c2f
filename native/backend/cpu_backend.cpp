// The CPU backend (cpu_backend.h): today's kernels, thread pool and scratch behind the
// backend interface.
//
// Numerics follow llama.cpp's CPU path (without flash attention) where it changes
// results: RMSNorm sums squares in double; RoPE angles come from the same iterated
// float product; keys and values are stored as f16; the query is rounded to f16 before
// the K dot products and the softmax probabilities are rounded to f16 before they weigh
// V (ggml converts the f32 operand of an f16 matmul to f16); softmax runs in f32 with a
// double sum.
#include "cpu_backend.h"
#include "sparsify.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/ggml_types.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "quant/fp16.h"
#include "runtime/kv_cache.h"

namespace sparrow {

namespace {

// The next three are written so that the compiler vectorizes the loops that call them
// (no branches, no library calls): softmax over long contexts runs millions of them.

// exp(x) for x <= 0 (Cephes' expf polynomial, ~1 ulp); exp(x) = 0 below -87.
inline float exp_nonpositive(float x) {
  const float keep = x >= -87.0f ? 1.0f : 0.0f;
  x = std::max(x, -87.0f);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float z = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * z + r + 1.0f;
  const int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return y * scale * keep;
}

// A probability in [0, 1] rounded to the nearest f16 value (ties to even), as a float.
inline float round_prob_f16(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  b = (b + 0xfffu + ((b >> 13) & 1u)) & ~0x1fffu;  // normal f16: keep 10 mantissa bits
  float normal;
  std::memcpy(&normal, &b, 4);
  const float sub = (x + 0.5f) - 0.5f;  // below 2^-14: a multiple of 2^-24 (the float ulp of 0.5)
  return x < 6.103515625e-05f ? sub : normal;
}

// Softmax of scale * s[0, vis) in place, probabilities rounded to f16, s[vis, len) = 0.
void softmax_row(float* s, int vis, int len, float scale, const float* sink) {
  float mx = -INFINITY;
  for (int p = 0; p < vis; p++) {
    s[p] *= scale;
    mx = std::max(mx, s[p]);
  }
  if (sink) mx = std::max(mx, *sink);  // as ggml: the sink joins the maximum and the sum
  for (int p = 0; p < vis; p++) s[p] = exp_nonpositive(s[p] - mx);
  double sum0 = 0, sum1 = 0, sum2 = 0, sum3 = 0;  // double, as ggml; four chains for speed
  int p = 0;
  for (; p + 4 <= vis; p += 4) {
    sum0 += s[p];
    sum1 += s[p + 1];
    sum2 += s[p + 2];
    sum3 += s[p + 3];
  }
  for (; p < vis; p++) sum0 += s[p];
  double total = (sum0 + sum1) + (sum2 + sum3);
  if (sink) total += double(std::exp(*sink - mx));
  const float inv = float(1.0 / total);
  for (int q = 0; q < vis; q++) s[q] = round_prob_f16(s[q] * inv);
  for (int q = vis; q < len; q++) s[q] = 0.0f;
}

// ggml's GELU (tanh approximation) as its CPU backend computes it: a table over every f16
// input of the f16-rounded value of the float formula; the input is rounded to f16 to index
// it; outside (-10, 10) gelu(x) is taken as 0 or x.
const uint16_t* gelu_f16_table() {
  static const std::vector<uint16_t> table = [] {
    std::vector<uint16_t> t(65536);
    for (uint32_t i = 0; i < 65536; i++) {
      const float x = fp16_to_fp32(uint16_t(i));
      const float y = 0.5f * x * (1.0f + std::tanh(0.79788456080286535587989211986876f * x * (1.0f + 0.044715f * x * x)));
      t[i] = fp32_to_fp16(y);
    }
    return t;
  }();
  return table.data();
}

inline float gelu_ggml(float x, const uint16_t* table) {
  if (x <= -10.0f) return 0.0f;
  if (x >= 10.0f) return x;
  return fp16_to_fp32(table[fp32_to_fp16(x)]);
}

// Soft-capping as ggml computes it: scale by 1/cap, tanh, scale by cap.
inline float softcap_value(float s, float inv_cap, float cap) { return std::tanh(s * inv_cap) * cap; }

template <class V>
void grow(V& v, size_t n) {
  if (v.size() < n) v.resize(n);
}

// Calls fn(t0, t1) over [0, n) split in ranges: on the caller alone when n is small.
template <class F>
void parallel_ranges(ThreadPool& pool, int n, int min_per_task, F&& fn) {
  int tasks = std::min(pool.size() * 2, (n + min_per_task - 1) / min_per_task);
  if (tasks <= 1) {
    fn(0, n);
    return;
  }
  pool.run(tasks, [&](int task, int) {
    int t0 = int(int64_t(n) * task / tasks), t1 = int(int64_t(n) * (task + 1) / tasks);
    if (t0 < t1) fn(t0, t1);
  });
}

// out = x / rms(x) * w (ggml: sum of float squares in double, then two float multiplies).
void rmsnorm_row(const float* x, const float* w, float* out, int d, float eps) {
  double sum = 0;
  for (int i = 0; i < d; i++) sum += double(x[i] * x[i]);
  float scale = 1.0f / std::sqrt(float(sum / d) + eps);
  for (int i = 0; i < d; i++) out[i] = (x[i] * scale) * w[i];
}

// cos/sin of every rotated pair at position `pos` (rope_dim/2 entries each).
// The frequency factors of a sequence whose cache holds n_ctx positions.
const std::vector<float>* rope_factors_for(const RopeParams& p, int n_ctx) {
  if (p.factors_long && !p.factors_long->empty() && n_ctx > p.long_above) return p.factors_long;
  return p.factors;
}

void rope_angles(const RopeParams& p, int pos, float* cs, float* sn, const std::vector<float>* factors) {
  const float theta_scale = std::pow(p.base, -2.0f / float(p.rope_dim));
  const bool has_factors = factors && !factors->empty();
  // YaRN: the correction dims (ggml_rope_yarn_corr_dims) and the magnitude factor.
  float low = 0, high = 0, mscale = p.attn_factor;
  if (p.ext_factor != 0.0f) {
    auto corr_dim = [&](float n_rot) {
      return float(p.rope_dim) * std::log(float(p.yarn_orig_ctx) / (n_rot * 2 * 3.14159265358979323846f)) /
             (2 * std::log(p.base));
    };
    low = std::max(0.0f, std::floor(corr_dim(p.beta_fast)));
    high = std::min(float(p.rope_dim - 1), std::ceil(corr_dim(p.beta_slow)));
    mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
  }
  float theta = float(pos);
  for (int i = 0; i < p.rope_dim / 2; i++) {
    float ff = has_factors ? (*factors)[size_t(i)] : 1.0f;
    float extrap = theta / ff;
    float th = p.freq_scale * extrap;
    if (p.ext_factor != 0.0f) {
      float y = (float(i) - low) / std::max(0.001f, high - low);
      float mix = (1 - std::min(1.0f, std::max(0.0f, y))) * p.ext_factor;
      th = th * (1 - mix) + extrap * mix;
    }
    cs[i] = std::cos(th) * mscale;
    sn[i] = std::sin(th) * mscale;
    theta *= theta_scale;
  }
}

// Rotates the first rope_dim values of each of n_heads heads of one token.
void rope_apply(float* x, int n_heads, int head_dim, int rope_dim, RopeStyle style, const float* cs, const float* sn) {
  const int half = rope_dim / 2;
  for (int h = 0; h < n_heads; h++, x += head_dim) {
    for (int i = 0; i < half; i++) {
      int a = style == RopeStyle::Normal ? 2 * i : i;
      int b = style == RopeStyle::Normal ? 2 * i + 1 : i + half;
      float x0 = x[a], x1 = x[b];
      x[a] = x0 * cs[i] - x1 * sn[i];
      x[b] = x0 * sn[i] + x1 * cs[i];
    }
  }
}

bool same_rope(const RopeParams& a, const RopeParams& b) {
  return a.rope_dim == b.rope_dim && a.base == b.base && a.freq_scale == b.freq_scale && a.factors == b.factors &&
         a.factors_long == b.factors_long && a.long_above == b.long_above && a.attn_factor == b.attn_factor &&
         a.ext_factor == b.ext_factor && a.yarn_orig_ctx == b.yarn_orig_ctx && a.beta_fast == b.beta_fast &&
         a.beta_slow == b.beta_slow;
}

// ---------------------------------------------------------------------------------
// Attention of n new tokens over the cache, with grouped-query heads. A task is (KV
// head, a range of its query heads, a range of tokens): its rows (token x head) share
// the KV head's keys and values.
//
// Scores = Q K^T run through the matmul kernels: a head's F16 keys are a contiguous
// [positions][head_dim] matrix in the cache, used in place (Q8_0 keys are converted to
// f32 a chunk at a time). Probabilities x V: for an F16 cache, one pv_f16 kernel call
// per token and tile of positions for all its heads of the task, reading the cache in
// place; for Q8_0, a tile of values converted to f32, then a plain loop.
//
// Determinism: every output value has one order of summation whatever the tiling (so
// whatever the thread count, the prompt's chunking or the other sequences of the batch):
// a score is one dot product of the float matmul kernels, whose per-value order does not
// depend on how many rows they are given; a softmax is per row; P V adds the positions
// of a row in increasing order (pv_f16 promises it whatever its number of rows). (A GEMM
// route for P V, taken for many rows, summed in another order: it is gone.)

constexpr int kTile = 64;                       // positions converted at a time (V)
constexpr int kChunk = 4096;                    // positions of Q8_0 keys converted at a time

// The tiling of one sequence's attention: it depends on that sequence and the thread
// count (so that every thread has a few tasks); the results depend on neither.
struct AttnPlan {
  int toff, n, pos0, len_max;  // its tokens are the batch's [toff, toff + n)
  int tb, hs, n_tb, n_hs;      // tokens and query heads per task; tasks along each
  bool f16;
  size_t rows_max, scratch;    // rows per task; floats of per-thread scratch
  int task0, tasks;            // its tasks in the batch's task list
  bool flash;                  // llama.cpp's flash-attention numerics (BatchSeq::flash_attn)
};

AttnPlan plan_attention(const AttnParams& hp, int threads, const KVCache& kv, int toff, int n, int pos0) {
  AttnPlan a;
  const int HD = hp.head_dim, G = hp.n_head / hp.n_head_kv;
  a.toff = toff, a.n = n, a.pos0 = pos0, a.len_max = pos0 + n;
  a.f16 = kv.type() == KVType::F16;
  // Rows per task (tokens x heads) bounded so the scores fit in ~16 MiB per thread; then
  // split further until every thread has a few tasks.
  int tb = n, hs = G;
  const int max_rows = std::max(1, (4 << 20) / a.len_max);
  while (tb * hs > max_rows && tb > 1) tb = (tb + 1) / 2;
  while (tb * hs > max_rows && hs > 1) hs = (hs + 1) / 2;
  auto n_tasks = [&] { return hp.n_head_kv * ((n + tb - 1) / tb) * ((G + hs - 1) / hs); };
  while (n_tasks() < threads * 3 && (tb > 1 || hs > 1)) {
    if (tb > 1) tb = (tb + 1) / 2;
    else hs = (hs + 1) / 2;
  }
  a.tb = tb, a.hs = hs, a.n_tb = (n + tb - 1) / tb, a.n_hs = (G + hs - 1) / hs;
  // Per thread: scores, gathered Q rows, output rows, a V tile, Q8_0 keys.
  a.rows_max = size_t(tb) * hs;
  a.scratch = a.rows_max * a.len_max + 2 * a.rows_max * HD + size_t(kTile) * HD +
              (a.f16 ? 0 : size_t(std::min(a.len_max, kChunk)) * HD);
  a.task0 = 0;
  a.tasks = n_tasks();
  return a;
}

// llama.cpp's CPU flash attention takes a tiled route, all in f32 (q as it is, keys and
// values converted to f32, an online softmax per tile of 64 positions), when a batch
// holds at least 64 queries of a sequence and the head size is a multiple of the f32
// SIMD width (16 here); otherwise its one-query-at-a-time route with f16 sums.
bool fa_tiled(int n_queries, int head_dim) { return n_queries >= 64 && head_dim % 16 == 0; }

}  // namespace

CpuBackend::CpuBackend(int threads) : pool_(std::make_unique<ThreadPool>(threads)) {}
CpuBackend::~CpuBackend() = default;

void CpuBackend::begin(const SeqSpan* seqs, int n_seq) {
  seqs_.assign(seqs, seqs + n_seq);
  n_ = 0;
  for (int i = 0; i < n_seq; i++) n_ += seqs[i].n;
  // Token t of the batch belongs to sequence seq_of_[t] and sits at position pos_of_[t].
  seq_of_.assign(size_t(n_), 0);
  pos_of_.assign(size_t(n_), 0);
  seq_t0_.assign(size_t(n_seq) + 1, 0);
  for (int i = 0, t = 0; i < n_seq; i++) {
    seq_t0_[size_t(i)] = t;
    for (int j = 0; j < seqs[i].n; j++, t++) seq_of_[size_t(t)] = i, pos_of_[size_t(t)] = seqs[i].pos0 + j;
  }
  seq_t0_[size_t(n_seq)] = n_;
  next_ = 0;
  rope_valid_ = false;
}

Act CpuBackend::alloc(int width, int rows) {
  if (rows <= 0) rows = n_;
  if (size_t(next_) >= bufs_.size()) bufs_.resize(size_t(next_) + 1);
  grow(bufs_[size_t(next_)], size_t(rows) * size_t(width));
  Act a;
  a.id = next_++;
  a.rows = rows;
  a.width = width;
  return a;
}

float* CpuBackend::ptr(Act a) {
  if (a.id < 0 || a.id >= next_) throw sparrow_error("ERR_INTERNAL", "backend: a buffer of an earlier pass was used");
  return bufs_[size_t(a.id)].data();
}

void CpuBackend::write(Act a, const float* src) {
  std::memcpy(ptr(a), src, sizeof(float) * size_t(a.rows) * size_t(a.width));
}
void CpuBackend::read(Act a, float* dst) {
  std::memcpy(dst, ptr(a), sizeof(float) * size_t(a.rows) * size_t(a.width));
}

void CpuBackend::embed(const Matrix& table, const int32_t* tokens, Act out) {
  float* x = ptr(out);
  const int D = out.width;
  parallel_ranges(*pool_, out.rows, 16, [&](int t0, int t1) {
    for (int t = t0; t < t1; t++) table.get_row(tokens[t], x + size_t(t) * D);
  });
}

void CpuBackend::rmsnorm(Act x, const std::vector<float>& w, float eps, Act out) {
  const float* xp = ptr(x);
  float* op = ptr(out);
  const int D = x.width;
  parallel_ranges(*pool_, x.rows, 8, [&](int t0, int t1) {
    for (int t = t0; t < t1; t++) rmsnorm_row(xp + size_t(t) * D, w.data(), op + size_t(t) * D, D, eps);
  });
}

void CpuBackend::rmsnorm_heads(Act x, int head_dim, const std::vector<float>& w, float eps) {
  if (head_dim <= 0 || x.width % head_dim != 0 || w.size() != size_t(head_dim))
    throw sparrow_error("ERR_INTERNAL", "backend: rmsnorm_heads needs head_dim weights and a width that it divides");
  float* xp = ptr(x);
  const int heads = x.width / head_dim;
  // One head at a time; rmsnorm_row reads all of a head before it writes (in place is fine).
  parallel_ranges(*pool_, x.rows * heads, 32, [&](int i0, int i1) {
    for (int i = i0; i < i1; i++) {
      float* h = xp + size_t(i) * size_t(head_dim);
      rmsnorm_row(h, w.data(), h, head_dim, eps);
    }
  });
}

void CpuBackend::add_bias(Act y, const std::vector<float>& b) {
  if (b.empty()) return;
  float* yp = ptr(y);
  const int d = y.width;
  parallel_ranges(*pool_, y.rows, 8, [&](int t0, int t1) {
    for (int t = t0; t < t1; t++)
      for (int i = 0; i < d; i++) yp[size_t(t) * d + i] += b[size_t(i)];
  });
}

void CpuBackend::rope_table(const RopeParams& p) {
  if (rope_valid_ && same_rope(p, rope_key_)) return;
  const int half = p.rope_dim / 2;
  grow(cos_, size_t(n_) * half);
  grow(sin_, size_t(n_) * half);
  for (int t = 0; t < n_; t++) {
    const KVCache* kv = seqs_[size_t(seq_of_[size_t(t)])].kv;
    rope_angles(p, pos_of_[size_t(t)], &cos_[size_t(t) * half], &sin_[size_t(t) * half],
                rope_factors_for(p, kv ? kv->n_ctx() : 0));
  }
  rope_key_ = p;
  rope_valid_ = true;
}

void CpuBackend::rope(Act x, int n_heads, const RopeParams& p) {
  if (p.rope_dim == 0) return;
  rope_table(p);
  float* xp = ptr(x);
  const int W = x.width, half = p.rope_dim / 2;
  parallel_ranges(*pool_, x.rows, 8, [&](int t0, int t1) {
    for (int t = t0; t < t1; t++)
      rope_apply(xp + size_t(t) * W, n_heads, p.head_dim, p.rope_dim, p.style, &cos_[size_t(t) * half],
                 &sin_[size_t(t) * half]);
  });
}

void CpuBackend::kv_store(int layer, Act k, Act v) {
  const float* kp = ptr(k);
  const float* vp = ptr(v);
  const int KVD = k.width;
  parallel_ranges(*pool_, k.rows, 8, [&](int t0, int t1) {
    // Each sequence's part of [t0, t1) goes to its own cache.
    for (int a = t0; a < t1;) {
      const int i = seq_of_[size_t(a)], b = std::min(t1, seq_t0_[size_t(i) + 1]);
      seqs_[size_t(i)].kv->store(layer, pos_of_[size_t(a)], b - a, kp + size_t(a) * KVD, vp + size_t(a) * KVD, KVD);
      a = b;
    }
  });
}

// o[i] = act(g[i]) * u[i] for i in [i0, i1).
void glu_range(GluKind kind, const float* g, const float* u, float* o, int64_t i0, int64_t i1) {
  switch (kind) {
    case GluKind::SwiGLU:
      for (int64_t i = i0; i < i1; i++) {
        float x = g[i];
        o[i] = x / (1.0f + std::exp(-x)) * u[i];
      }
      return;
    case GluKind::GeGLU: {
      const uint16_t* table = gelu_f16_table();
      for (int64_t i = i0; i < i1; i++) o[i] = gelu_ggml(g[i], table) * u[i];
      return;
    }
    case GluKind::SwiGLUOAI: {
      constexpr float alpha = 1.702f, limit = 7.0f;
      for (int64_t i = i0; i < i1; i++) {
        const float x = std::min(g[i], limit), y = std::min(std::max(u[i], -limit), limit);
        o[i] = x / (1.0f + std::exp(alpha * -x)) * (y + 1.0f);
      }
      return;
    }
  }
  throw sparrow_error("ERR_INTERNAL", "backend: unknown gated activation");
}

void CpuBackend::glu(GluKind kind, Act gate, Act up, Act out) {
  const float* g = ptr(gate);
  const float* u = ptr(up);
  float* o = ptr(out);
  const int64_t total = int64_t(gate.rows) * gate.width;
  if (kind != GluKind::SwiGLU && kind != GluKind::GeGLU && kind != GluKind::SwiGLUOAI)
    throw sparrow_error("ERR_INTERNAL", "backend: unknown gated activation");
  parallel_ranges(*pool_, int(total), 4096, [&](int i0, int i1) { glu_range(kind, g, u, o, i0, i1); });
}

void CpuBackend::sparsify(Act x, const std::vector<float>& frac) {
  if (frac.size() != size_t(x.rows)) throw sparrow_error("ERR_INTERNAL", "backend: sparsify needs one fraction per row");
  float* p = ptr(x);
  const int w = x.width;
  parallel_ranges(*pool_, x.rows, 4, [&](int t0, int t1) {
    std::vector<uint32_t> scratch;
    for (int t = t0; t < t1; t++) {
      const int k = sparsify_count(frac[size_t(t)], w);
      if (k == 0) continue;
      if (scratch.empty()) scratch.resize(size_t(w));
      sparsify_row(p + size_t(t) * size_t(w), w, k, scratch.data());
    }
  });
}

void CpuBackend::moe(Act x, const MoeFfn& m, Act out) {
  const int n = x.rows, D = x.width, E = int(m.gate.size()), K = m.n_used;
  if (!m.router || E < 1 || K < 1 || K > E || m.up.size() != size_t(E) || m.down.size() != size_t(E) ||
      m.router->rows() != E || m.router->cols() != D || out.width != D || out.id == x.id)
    throw sparrow_error("ERR_INTERNAL", "backend: inconsistent mixture-of-experts block");
  for (const auto* b : {&m.gate_bias, &m.up_bias, &m.down_bias})
    if (!b->empty() && b->size() != size_t(E)) throw sparrow_error("ERR_INTERNAL", "backend: expert biases must be one per expert");
  if (m.router_bias && !m.router_bias->empty() && m.router_bias->size() != size_t(E))
    throw sparrow_error("ERR_INTERNAL", "backend: the router bias must hold one value per expert");
  auto bias_of = [](const std::vector<const std::vector<float>*>& b, int e) -> const float* {
    return b.empty() || !b[size_t(e)] || b[size_t(e)]->empty() ? nullptr : b[size_t(e)]->data();
  };
  const float* xp = ptr(x);
  float* op = ptr(out);
  if (n == 0) return;

  // 1. Routing: softmax of the router logits (ggml: exp in float, the sum in double, then
  //    times 1/sum), the K largest in decreasing order, renormalized by their sum.
  grow(moe_logits_, size_t(n) * E);
  matmul_host(n, {{m.router, xp, moe_logits_.data()}});
  std::vector<int> sel(size_t(n) * K);
  std::vector<float> wts(size_t(n) * K);
  parallel_ranges(*pool_, n, 16, [&](int t0, int t1) {
    std::vector<int> idx(static_cast<size_t>(E));
    for (int t = t0; t < t1; t++) {
      float* p = moe_logits_.data() + size_t(t) * E;
      if (m.router_bias && !m.router_bias->empty())
        for (int e = 0; e < E; e++) p[e] += (*m.router_bias)[size_t(e)];
      if (m.weight_softmax) {
        // gpt-oss: the K largest logits, then the softmax over those K only.
        for (int e = 0; e < E; e++) idx[size_t(e)] = e;
        std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
        float mk = -INFINITY;
        for (int i = 0; i < K; i++) mk = std::max(mk, p[idx[size_t(i)]]);
        double ksum = 0;
        for (int i = 0; i < K; i++) {
          const float w = std::exp(p[idx[size_t(i)]] - mk);
          sel[size_t(t) * K + i] = idx[size_t(i)];
          wts[size_t(t) * K + i] = w;
          ksum += double(w);
        }
        const float kinv = float(1.0 / ksum);
        for (int i = 0; i < K; i++) wts[size_t(t) * K + i] *= kinv;
        continue;
      }
      float mx = -INFINITY;
      for (int e = 0; e < E; e++) mx = std::max(mx, p[e]);
      double sum = 0;
      for (int e = 0; e < E; e++) {
        p[e] = std::exp(p[e] - mx);
        sum += double(p[e]);
      }
      const float inv = float(1.0 / sum);
      for (int e = 0; e < E; e++) p[e] *= inv;
      for (int e = 0; e < E; e++) idx[size_t(e)] = e;
      std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
      double wsum = 0;
      for (int i = 0; i < K; i++) {
        sel[size_t(t) * K + i] = idx[size_t(i)];
        wts[size_t(t) * K + i] = p[idx[size_t(i)]];
        wsum += double(p[idx[size_t(i)]]);
      }
      if (m.norm) {
        const float s = std::max(float(wsum), 6.103515625e-5f);
        for (int i = 0; i < K; i++) wts[size_t(t) * K + i] /= s;
      }
    }
  });

  // 2. Experts: the tokens routed to each go through it together; only those experts'
  //    matrices are read. Their outputs land at (token, choice).
  std::vector<std::vector<int>> slots(static_cast<size_t>(E));  // token * K + choice
  for (int t = 0; t < n; t++)
    for (int i = 0; i < K; i++) slots[size_t(sel[size_t(t) * K + i])].push_back(t * K + i);
  grow(moe_r_, size_t(n) * K * D);
  for (int e = 0; e < E; e++) {
    const std::vector<int>& s = slots[size_t(e)];
    const int c = int(s.size());
    if (c == 0) continue;
    const int F = int(m.gate[size_t(e)]->rows());
    grow(moe_x_, size_t(c) * D);
    grow(moe_g_, size_t(c) * F);
    grow(moe_u_, size_t(c) * F);
    grow(moe_y_, size_t(c) * D);
    for (int j = 0; j < c; j++)
      std::memcpy(moe_x_.data() + size_t(j) * D, xp + size_t(s[size_t(j)] / K) * D, sizeof(float) * size_t(D));
    matmul_host(c, {{m.gate[size_t(e)], moe_x_.data(), moe_g_.data()}, {m.up[size_t(e)], moe_x_.data(), moe_u_.data()}});
    auto add_rows = [&](float* y, int rows, int width, const float* b) {
      if (b)
        for (int j = 0; j < rows; j++)
          for (int i = 0; i < width; i++) y[size_t(j) * width + i] += b[i];
    };
    add_rows(moe_g_.data(), c, F, bias_of(m.gate_bias, e));
    add_rows(moe_u_.data(), c, F, bias_of(m.up_bias, e));
    const int64_t total = int64_t(c) * F;
    parallel_ranges(*pool_, int(total), 4096, [&](int i0, int i1) { glu_range(m.act, moe_g_.data(), moe_u_.data(), moe_g_.data(), i0, i1); });
    matmul_host(c, {{m.down[size_t(e)], moe_g_.data(), moe_y_.data()}});
    add_rows(moe_y_.data(), c, D, bias_of(m.down_bias, e));
    for (int j = 0; j < c; j++)
      std::memcpy(moe_r_.data() + size_t(s[size_t(j)]) * D, moe_y_.data() + size_t(j) * D, sizeof(float) * size_t(D));
  }

  // 3. out = w_0 y_0 + w_1 y_1 + ..., added left to right (as ggml's chain of adds).
  parallel_ranges(*pool_, n, 8, [&](int t0, int t1) {
    for (int t = t0; t < t1; t++) {
      float* o = op + size_t(t) * D;
      for (int i = 0; i < K; i++) {
        const float w = wts[size_t(t) * K + i];
        const float* y = moe_r_.data() + (size_t(t) * K + i) * D;
        if (i == 0)
          for (int d = 0; d < D; d++) o[d] = y[d] * w;
        else
          for (int d = 0; d < D; d++) o[d] = o[d] + y[d] * w;
      }
    }
  });
}

void CpuBackend::scale(Act x, float s) {
  float* xp = ptr(x);
  const size_t W = size_t(x.width);
  parallel_ranges(*pool_, x.rows, 8, [&](int t0, int t1) {
    for (size_t i = size_t(t0) * W; i < size_t(t1) * W; i++) xp[i] *= s;
  });
}

void CpuBackend::add(Act x, Act y) {
  float* xp = ptr(x);
  const float* yp = ptr(y);
  const size_t W = size_t(x.width);
  parallel_ranges(*pool_, x.rows, 8, [&](int t0, int t1) {
    for (size_t i = size_t(t0) * W; i < size_t(t1) * W; i++) xp[i] += yp[i];
  });
}

// ---------------------------------------------------------------------------------
// Matrix products: one parallel region computes y_j = W_j x_j for a group of matrices
// (Q, K, V together; gate and up together). Each distinct input is quantized once.

void CpuBackend::matmul(const std::vector<MatMul>& group) {
  std::vector<HostMatMul> jobs;
  jobs.reserve(group.size());
  for (const MatMul& m : group) jobs.push_back({m.w, ptr(m.x), ptr(m.y)});
  matmul_host(group.empty() ? 0 : group[0].x.rows, jobs);
}

void CpuBackend::matmul_host(int n, const std::vector<HostMatMul>& jobs) {
  ThreadPool& pool = *pool_;
  const int nj = int(jobs.size());
  if (nj == 0 || n == 0) return;
  // Quantize the inputs: jobs that read the same activations in the same input format
  // share one quantized copy. Rows of tokens are quantized independently (input_bytes is
  // linear in n), so a long prompt's quantization is split across the threads too.
  std::vector<const void*> xq(size_t(nj), nullptr);
  std::vector<int> owner(static_cast<size_t>(nj));
  struct QSlice {
    int job;
    int t0, t1;
  };
  std::vector<QSlice> qs;
  if (xq_.size() < size_t(nj)) xq_.resize(size_t(nj));
  const int per_input = std::max(1, std::min(64, std::min(n / 4, pool.size() * 2)));
  for (int j = 0; j < nj; j++) {
    owner[size_t(j)] = j;
    for (int i = 0; i < j; i++)
      if (jobs[size_t(i)].x == jobs[size_t(j)].x && jobs[size_t(i)].w->input_format() == jobs[size_t(j)].w->input_format() &&
          jobs[size_t(i)].w->cols() == jobs[size_t(j)].w->cols()) {
        owner[size_t(j)] = owner[size_t(i)];
        break;
      }
    if (owner[size_t(j)] == j) {
      grow(xq_[size_t(j)], jobs[size_t(j)].w->input_bytes(n));
      for (int c = 0; c < per_input; c++) {
        int t0 = int(int64_t(n) * c / per_input), t1 = int(int64_t(n) * (c + 1) / per_input);
        if (t0 < t1) qs.push_back({j, t0, t1});
      }
    }
  }
  for (int j = 0; j < nj; j++) xq[size_t(j)] = xq_[size_t(owner[size_t(j)])].data();
  pool.run(int(qs.size()), [&](int i, int) {
    const HostMatMul& J = jobs[size_t(qs[size_t(i)].job)];
    const size_t off = J.w->input_bytes(qs[size_t(i)].t0);
    J.w->quantize_input(J.x + size_t(qs[size_t(i)].t0) * J.w->cols(), qs[size_t(i)].t1 - qs[size_t(i)].t0,
                        xq_[size_t(qs[size_t(i)].job)].data() + off);
  });

  // Row slices: a few per thread, so a thread that is held up costs little.
  struct Slice {
    int job;
    int64_t r0, r1;
  };
  std::vector<Slice> slices;
  const int per_job = std::max(1, std::min(256 / nj, pool.size() * 4));
  for (int j = 0; j < nj; j++) {
    int64_t rows = jobs[size_t(j)].w->rows(), align = std::max<int64_t>(1, jobs[size_t(j)].w->row_align());
    int64_t chunk = (rows + per_job - 1) / per_job;
    chunk = std::max<int64_t>(align, (chunk + align - 1) / align * align);
    for (int64_t r = 0; r < rows; r += chunk) slices.push_back({j, r, std::min(rows, r + chunk)});
  }
  pool.run(int(slices.size()), [&](int s, int) {
    const Slice& S = slices[size_t(s)];
    const HostMatMul& J = jobs[size_t(S.job)];
    J.w->mul(xq[size_t(S.job)], n, J.y, J.w->rows(), S.r0, S.r1);
  });
}

void CpuBackend::read_logits(Act x, const std::vector<float>& norm, float eps, const Matrix& output,
                             const std::vector<int>& rows, float* const* dest, float softcap) {
  const float* xp = ptr(x);
  const int D = x.width, m = int(rows.size());
  if (m == 0) return;
  grow(out_rows_, size_t(m) * D);
  float* xb = out_rows_.data();
  parallel_ranges(*pool_, m, 8, [&](int t0, int t1) {
    for (int t = t0; t < t1; t++) rmsnorm_row(xp + size_t(rows[size_t(t)]) * D, norm.data(), xb + size_t(t) * D, D, eps);
  });
  // Rows whose destinations follow each other are written in place; others go through
  // a scratch copy.
  const size_t vocab = size_t(output.rows());
  bool contiguous = true;
  for (int i = 1; i < m; i++) contiguous = contiguous && dest[i] == dest[0] + size_t(i) * vocab;
  auto cap = [&] {
    if (softcap <= 0.0f) return;
    const float inv = 1.0f / softcap;
    parallel_ranges(*pool_, m, 1, [&](int r0, int r1) {
      for (int r = r0; r < r1; r++)
        for (size_t i = 0; i < vocab; i++) dest[r][i] = softcap_value(dest[r][i], inv, softcap);
    });
  };
  if (contiguous) {
    matmul_host(m, {{&output, xb, dest[0]}});
    cap();
    return;
  }
  grow(logits_, size_t(m) * vocab);
  matmul_host(m, {{&output, xb, logits_.data()}});
  for (int i = 0; i < m; i++) std::memcpy(dest[i], logits_.data() + size_t(i) * vocab, sizeof(float) * vocab);
  cap();
}

void CpuBackend::read_hidden(Act x, const std::vector<float>& norm, float eps, const std::vector<int>& rows,
                             float* const* dest) {
  const float* xp = ptr(x);
  const int D = x.width, m = int(rows.size());
  parallel_ranges(*pool_, m, 8, [&](int t0, int t1) {
    for (int t = t0; t < t1; t++) rmsnorm_row(xp + size_t(rows[size_t(t)]) * D, norm.data(), dest[t], D, eps);
  });
}

void CpuBackend::rope_cache(KVCache& kv, int p0, int p1, int delta, const std::vector<RopeParams>& layers) {
  const int n_layer = kv.n_layer();
  if (layers.size() != 1 && layers.size() != size_t(n_layer))
    throw sparrow_error("ERR_INTERNAL", "rope_cache: " + std::to_string(layers.size()) + " RoPE parameter sets for " +
                                            std::to_string(n_layer) + " layers");
  if (p1 <= p0 || delta == 0) return;
  auto params = [&](int layer) -> const RopeParams& { return layers.size() == 1 ? layers[0] : layers[size_t(layer)]; };
  // The rotation by delta of each layer (layers that share their parameters share it).
  std::vector<std::vector<float>> cs(static_cast<size_t>(n_layer)), sn(static_cast<size_t>(n_layer));
  for (int l = 0; l < n_layer; l++) {
    const RopeParams& p = params(l);
    const size_t half = size_t(p.rope_dim / 2);
    if (l > 0 && layers.size() == 1) {
      cs[size_t(l)] = cs[0];
      sn[size_t(l)] = sn[0];
      continue;
    }
    cs[size_t(l)].resize(half);
    sn[size_t(l)].resize(half);
    if (half > 0) rope_angles(p, delta, cs[size_t(l)].data(), sn[size_t(l)].data(), rope_factors_for(p, kv.n_ctx()));
  }
  const int n_head_kv = kv.n_head_kv();
  // One task per (layer, KV head): read its keys, rotate each, write them back.
  parallel_ranges(*pool_, n_layer * n_head_kv, 1, [&](int i0, int i1) {
    std::vector<float> rows;
    for (int i = i0; i < i1; i++) {
      const int layer = i / n_head_kv, head = i % n_head_kv;
      const RopeParams& p = params(layer);
      if (p.rope_dim == 0) continue;
      const int HD = p.head_dim;
      // A windowed layer holds positions from kv.first(layer) only.
      const int a = std::max(p0, kv.first(layer));
      if (a >= p1) continue;
      rows.resize(size_t(p1 - a) * size_t(HD));
      kv.read_k(layer, head, a, p1, rows.data());
      for (int q = a; q < p1; q++) {
        float* k = rows.data() + size_t(q - a) * HD;
        rope_apply(k, 1, HD, p.rope_dim, p.style, cs[size_t(layer)].data(), sn[size_t(layer)].data());
        kv.write_k(layer, head, q, k);
      }
    }
  });
}

// ---------------------------------------------------------------------------------
// Attention: both routes run through attend(), one parallel region over the tasks of the
// listed sequences.

void CpuBackend::attention(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) {
  attend(layer, ptr(q), ptr(out), p, seqs, false);
}

void CpuBackend::attention_flash(int layer, Act q, Act out, const AttnParams& p, const std::vector<int>& seqs) {
  for (int i : seqs)
    if (seqs_[size_t(i)].kv->type() != KVType::F16)
      throw sparrow_error("ERR_INVALID_ARG", "flash attention needs an f16 KV cache");
  attend(layer, ptr(q), ptr(out), p, seqs, true);
}

void CpuBackend::attend(int layer, float* q, float* out, const AttnParams& hp, const std::vector<int>& sel, bool flash) {
  const int n_seq = int(sel.size());
  if (n_seq == 0) return;
  ThreadPool& pool = *pool_;
  const int HD = hp.head_dim, QD = hp.n_head * hp.head_dim, G = hp.n_head / hp.n_head_kv;
  const float scale = hp.scale;
  const float cap = hp.softcap, inv_cap = cap > 0.0f ? 1.0f / cap : 0.0f;
  const int window = hp.window;
  const float* sinks = hp.sinks && !hp.sinks->empty() ? hp.sinks->data() : nullptr;
  // The first position a token at position pos sees.
  auto first_seen = [window](int pos) { return window > 0 ? std::max(0, pos + 1 - window) : 0; };
  const auto pv_f16 = kernels().pv_f16;
  const auto round_f16 = kernels().round_f16;

  std::vector<AttnPlan> plans(static_cast<size_t>(n_seq));
  size_t scratch = 0;
  int total_tasks = 0;
  for (int i = 0; i < n_seq; i++) {
    const SeqSpan& s = seqs_[size_t(sel[size_t(i)])];
    plans[size_t(i)] = plan_attention(hp, pool.size(), *s.kv, seq_t0_[size_t(sel[size_t(i)])], s.n, s.pos0);
    plans[size_t(i)].flash = flash;
    plans[size_t(i)].task0 = total_tasks;
    total_tasks += plans[size_t(i)].tasks;
    scratch = std::max(scratch, plans[size_t(i)].scratch);
  }
  per_thread_.resize(size_t(pool.size()));
  for (auto& s : per_thread_) grow(s, scratch);

  // The query, rounded to f16 as ggml does before an f16 matmul; not for sequences whose
  // flash attention takes llama.cpp's tiled f32 route (see fa_tiled).
  for (int i = 0; i < n_seq; i++) {
    if (plans[size_t(i)].flash && fa_tiled(plans[size_t(i)].n, HD)) continue;
    float* qs = q + size_t(plans[size_t(i)].toff) * QD;
    parallel_ranges(pool, plans[size_t(i)].n * QD, 4096, [&](int i0, int i1) { round_f16(qs + i0, qs + i0, i1 - i0); });
  }

  pool.run(total_tasks, [&](int batch_task, int thread) {
    int si = 0;
    while (si + 1 < n_seq && plans[size_t(si) + 1].task0 <= batch_task) si++;
    const AttnPlan& P = plans[size_t(si)];
    const KVCache& kv = *seqs_[size_t(sel[size_t(si)])].kv;
    const int task = batch_task - P.task0;
    const int n = P.n, pos0 = P.pos0, len_max = P.len_max, tb = P.tb, hs = P.hs, n_tb = P.n_tb, n_hs = P.n_hs;
    const bool f16 = P.f16;
    const size_t rows_max = P.rows_max, rb = kv.row_bytes();
    const float* q_seq = q + size_t(P.toff) * QD;
    float* att_seq = out + size_t(P.toff) * QD;
    const int kvh = task / (n_hs * n_tb), hsi = (task / n_tb) % n_hs, tbi = task % n_tb;
    const int t0 = tbi * tb, t1 = std::min(n, t0 + tb);
    const int h0 = kvh * G + hsi * hs, h1 = std::min(kvh * G + G, h0 + hs);
    const int nh = h1 - h0, len = pos0 + t1;  // the last token sees positions [0, len)
    const int rows = (t1 - t0) * nh;
    float* scores = per_thread_[size_t(thread)].data();
    float* qg = scores + rows_max * len_max;
    float* og = qg + rows_max * HD;
    float* tile = og + rows_max * HD;
    float* kf = tile + size_t(kTile) * HD;
    auto ri = [&](int t, int h) { return size_t((t - t0) * nh + (h - h0)); };  // row index
    // The first position any token of the task sees, down to a multiple of 4: the work
    // starts there (a windowed cache holds nothing much earlier), and sums in groups of 4
    // positions keep their grouping (the same bits as starting at 0 with zeros before).
    const int lo = window > 0 ? first_seen(pos0 + t0) & ~3 : 0;
    auto sink_of = [&](int h) { return sinks ? sinks + h : nullptr; };
    auto out_of = [&](int t, int h) { return att_seq + size_t(t) * QD + size_t(h) * HD; };

    if (P.flash) {
      // llama.cpp's CPU flash attention, step for step: per query row, one pass over the
      // visible positions; s = (K_p . q) * scale with q in f16; an online softmax (a new
      // maximum rescales the sum so far); the weighted values accumulate in f16, each
      // update rounded to f16; the result is that sum over the softmax denominator.
      // Position p's rows: base + (p - lo) * rb.
      const uint8_t* kbase = kv.k_at(layer, kvh, lo);
      const uint8_t* vbase = kv.v_at(layer, kvh, lo);
      if (fa_tiled(n, HD)) {
        // The tiled route: exact f32 attention (its tiling changes only the order of sums).
        for (int t = t0; t < t1; t++) {
          const int vis = pos0 + t + 1;
          for (int h = h0; h < h1; h++) {
            const float* qr = q_seq + size_t(t) * QD + size_t(h) * HD;
            float* s = scores;
            float M = -INFINITY;
            const int from = first_seen(pos0 + t);
            for (int p = from; p < vis; p++) {
              const uint16_t* kp = reinterpret_cast<const uint16_t*>(kbase + size_t(p - lo) * rb);
              float dot = 0;
              for (int i = 0; i < HD; i++) dot += f16_to_f32_fast(kp[i]) * qr[i];
              s[p] = cap > 0.0f ? cap * std::tanh(dot * (scale / cap)) : dot * scale;
              M = std::max(M, s[p]);
            }
            if (const float* sk = sink_of(h)) M = std::max(M, *sk);
            float* acc = og;
            std::fill(acc, acc + HD, 0.0f);
            float S = 0;
            for (int p = from; p < vis; p++) {
              const float w = std::exp(s[p] - M);
              S += w;
              const uint16_t* vp = reinterpret_cast<const uint16_t*>(vbase + size_t(p - lo) * rb);
              for (int i = 0; i < HD; i++) acc[i] += w * f16_to_f32_fast(vp[i]);
            }
            if (const float* sk = sink_of(h)) S += std::exp(*sk - M);
            float* out = out_of(t, h);
            for (int i = 0; i < HD; i++) out[i] = acc[i] / S;
          }
        }
        return;
      }
      for (int t = t0; t < t1; t++) {
        const int vis = pos0 + t + 1;
        for (int h = h0; h < h1; h++) {
          const float* qr = q_seq + size_t(t) * QD + size_t(h) * HD;
          float* acc = og;
          std::fill(acc, acc + HD, 0.0f);
          float M = -INFINITY, S = 0.0f;
          // ggml: with soft-capping, scale/cap multiplies the dot product, then cap * tanh.
          const float fa_scale = cap > 0.0f ? scale / cap : scale;
          for (int p = first_seen(pos0 + t); p < vis; p++) {
            const uint16_t* kp = reinterpret_cast<const uint16_t*>(kbase + size_t(p - lo) * rb);
            const uint16_t* vp = reinterpret_cast<const uint16_t*>(vbase + size_t(p - lo) * rb);
            double dot = 0;
            for (int i = 0; i < HD; i++) dot += double(f16_to_f32_fast(kp[i]) * qr[i]);
            const float s = cap > 0.0f ? cap * std::tanh(float(dot) * fa_scale) : float(dot) * fa_scale;
            float ms = 1.0f, vs = 1.0f;
            if (s > M) {
              const float m_old = M;
              M = s;
              ms = std::exp(m_old - M);
              for (int i = 0; i < HD; i++) acc[i] *= ms;
              round_f16(acc, acc, HD);
            } else {
              vs = std::exp(s - M);
            }
            for (int i = 0; i < HD; i++) acc[i] += f16_to_f32_fast(vp[i]) * vs;
            round_f16(acc, acc, HD);
            S = S * ms + vs;
          }
          // The sink, after the positions (the sums are f32 from here on, as in ggml).
          if (const float* sk = sink_of(h)) {
            float ms = 1.0f, vs = 1.0f;
            if (*sk > M) {
              ms = std::exp(M - *sk);
              for (int i = 0; i < HD; i++) acc[i] *= ms;
            } else {
              vs = std::exp(*sk - M);
            }
            S = S * ms + vs;
          }
          const float inv = S == 0.0f ? 0.0f : 1.0f / S;
          float* out = out_of(t, h);
          for (int i = 0; i < HD; i++) out[i] = acc[i] * inv;
        }
      }
      return;
    }

    // 1. Scores: rows x positions [lo, len), as (keys [len - lo][HD]) x (queries [rows][HD]).
    for (int t = t0; t < t1; t++)
      for (int h = h0; h < h1; h++)
        std::memcpy(qg + ri(t, h) * HD, q_seq + size_t(t) * QD + size_t(h) * HD, sizeof(float) * size_t(HD));
    if (f16) {
      // F32 and F16 matrices take their input as plain floats: no quantize_input needed.
      make_matrix(uint32_t(GGMLType::F16), kv.k_at(layer, kvh, lo), len - lo, HD, "attention keys")
          ->mul(qg, rows, scores + lo, len, 0, len - lo);
    } else {
      for (int p0 = lo; p0 < len; p0 += kChunk) {
        const int p1 = std::min(len, p0 + kChunk);
        kv.read_k(layer, kvh, p0, p1, kf);
        make_matrix(uint32_t(GGMLType::F32), kf, p1 - p0, HD, "attention keys")->mul(qg, rows, scores + p0, len, 0, p1 - p0);
      }
    }

    // 2. Softmax of scale * scores over the visible positions; probabilities rounded to
    //    f16 (as ggml's f16 PV matmul does); masked positions are 0.
    if (cap > 0.0f || window > 0)
      for (int t = t0; t < t1; t++)
        for (int h = h0; h < h1; h++) {
          float* s = scores + ri(t, h) * len;
          const int vis = pos0 + t + 1;
          const int from = first_seen(pos0 + t);
          for (int p = lo; p < from; p++) s[p] = -INFINITY;  // outside the window: probability 0
          if (cap > 0.0f)
            for (int p = from; p < vis; p++) s[p] = softcap_value(s[p], inv_cap, cap);
        }
    for (int t = t0; t < t1; t++)
      for (int h = h0; h < h1; h++) softmax_row(scores + ri(t, h) * len + lo, pos0 + t + 1 - lo, len - lo, scale, sink_of(h));

    // 3. Weighted sum of the values.
    for (int t = t0; t < t1; t++)
      for (int h = h0; h < h1; h++) std::memset(out_of(t, h), 0, sizeof(float) * size_t(HD));
    for (int p0 = lo; p0 < len; p0 += kTile) {
      const int p1 = std::min(len, p0 + kTile);
      if (!f16) kv.read_v(layer, kvh, p0, p1, tile);
      for (int t = std::max(t0, p0 - pos0); t < t1; t++) {  // tokens that see position p0
        const int pe = std::min(p1, pos0 + t + 1);
        if (f16) {
          // The token's heads in one call: their probabilities rows are len apart, their
          // outputs HD apart.
          pv_f16(scores + ri(t, h0) * len + p0, len, reinterpret_cast<const uint16_t*>(kv.v_at(layer, kvh, p0)),
                 int64_t(rb / 2), pe - p0, out_of(t, h0), HD, nh, HD);
          continue;
        }
        for (int h = h0; h < h1; h++) {
          float* out = out_of(t, h);
          const float* s = scores + ri(t, h) * len;
          for (int p = p0; p < pe; p++) {
            const float w = s[p];
            const float* v = tile + size_t(p - p0) * HD;
            for (int i = 0; i < HD; i++) out[i] += w * v[i];
          }
        }
      }
    }
  });
}

}  // namespace sparrow
