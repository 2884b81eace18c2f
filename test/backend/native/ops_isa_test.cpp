// The CPU backend's operations on one kernel path against the same operations on the
// generic path (the reference twins), as a plain C++ program (no Node): built with an
// AArch64 cross compiler and run under qemu-user by test/backend/neon-qemu.test.ts, so the
// NEON path gets the per-op checks that test/backend/ops.test.ts runs natively for x86.
// Also checks that attention gives the same bits on 1 and 3 threads and for a chunk of
// tokens as within the whole prompt. Exits non-zero on the first failure.
//   ops_isa_test <isa>     (neon, avx2, avx512)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu_backend.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/matmul.h"
#include "quant/quant.h"
#include "runtime/kv_cache.h"

using namespace sparrow;

static int checks = 0, failures = 0;
static std::mt19937 gen(1234);

static std::vector<float> random(size_t n, float scale = 1.0f) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen) * scale;
  return v;
}

// |a - b| <= rel * scale_of(b) + abs, value by value.
static void compare(const char* what, const std::vector<float>& a, const std::vector<float>& b, double rel, double abs) {
  checks++;
  double mag = 0;
  for (float x : b) mag = std::max(mag, double(std::fabs(x)));
  for (size_t i = 0; i < a.size(); i++)
    if (!(std::fabs(double(a[i]) - b[i]) <= rel * mag + abs)) {
      std::printf("MISMATCH %s: value %zu is %g, generic %g\n", what, i, double(a[i]), double(b[i]));
      failures++;
      return;
    }
}

static void same_bits(const char* what, const std::vector<float>& a, const std::vector<float>& b) {
  checks++;
  if (a.size() != b.size() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0) {
    std::printf("MISMATCH %s: the bits differ\n", what);
    failures++;
  }
}

struct Pass {
  CpuBackend be;
  std::vector<SeqSpan> seqs;
  explicit Pass(int threads, std::vector<SeqSpan> s) : be(threads), seqs(std::move(s)) { be.begin(seqs.data(), int(seqs.size())); }
  Act in(const std::vector<float>& v, int width) {
    Act a = be.alloc(width);
    be.write(a, v.data());
    return a;
  }
  std::vector<float> out(Act a) {
    std::vector<float> v(size_t(a.rows) * a.width);
    be.read(a, v.data());
    return v;
  }
};

// Runs fn on the generic path and on `isa`, compares the results.
template <class F>
static void both(Isa isa, const char* what, double rel, double abs, F fn) {
  set_isa(Isa::Generic);
  std::vector<float> ref = fn();
  set_isa(isa);
  std::vector<float> got = fn();
  compare(what, got, ref, rel, abs);
}

static std::vector<uint8_t> quantized(uint32_t type, int64_t rows, int64_t cols) {
  std::vector<float> f = random(size_t(rows * cols));
  size_t rb = quant_row_bytes(type, cols);
  std::vector<uint8_t> w(size_t(rows) * rb);
  for (int64_t r = 0; r < rows; r++) quantize_row(type, f.data() + r * cols, w.data() + r * rb, cols);
  return w;
}

// Attention of seqs (each with positions [0, pos0 + n) of k/v) on `threads` threads.
static std::vector<float> attention(int threads, bool flash, const AttnParams& p, KVType kvt, int ctx,
                                    std::vector<SeqSpan> seqs, const std::vector<float>& q, const std::vector<float>& k,
                                    const std::vector<float>& v) {
  const int KVD = p.n_head_kv * p.head_dim, QD = p.n_head * p.head_dim;
  std::vector<std::unique_ptr<KVCache>> caches;
  std::vector<float> nk, nv;
  CpuBackend be(threads);
  size_t off = 0;
  for (SeqSpan& s : seqs) {
    caches.push_back(std::make_unique<KVCache>(1, ctx, p.n_head_kv, p.head_dim, kvt));
    s.kv = caches.back().get();
    s.flash_attn = flash;
    if (s.pos0 > 0) {  // the history, in a pass of its own
      SeqSpan h{s.kv, 0, s.pos0, false};
      be.begin(&h, 1);
      Act a = be.alloc(KVD), b = be.alloc(KVD);
      be.write(a, k.data() + off * KVD);
      be.write(b, v.data() + off * KVD);
      be.kv_store(0, a, b);
    }
    nk.insert(nk.end(), k.begin() + long((off + s.pos0) * KVD), k.begin() + long((off + s.pos0 + s.n) * KVD));
    nv.insert(nv.end(), v.begin() + long((off + s.pos0) * KVD), v.begin() + long((off + s.pos0 + s.n) * KVD));
    off += size_t(s.pos0 + s.n);
  }
  be.begin(seqs.data(), int(seqs.size()));
  Act qa = be.alloc(QD), ka = be.alloc(KVD), va = be.alloc(KVD), out = be.alloc(QD);
  be.write(qa, q.data());
  be.write(ka, nk.data());
  be.write(va, nv.data());
  be.kv_store(0, ka, va);
  std::vector<int> all;
  for (size_t i = 0; i < seqs.size(); i++) all.push_back(int(i));
  if (flash) be.attention_flash(0, qa, out, p, all);
  else be.attention(0, qa, out, p, all);
  std::vector<float> r(size_t(out.rows) * QD);
  be.read(out, r.data());
  return r;
}

int main(int argc, char** argv) {
  Isa isa;
  if (argc < 2 || !isa_from_name(argv[1], &isa)) {
    std::printf("usage: ops_isa_test neon|avx2|avx512\n");
    return 2;
  }
  if (!set_isa(isa)) {
    std::printf("%s is not supported on this CPU\n", argv[1]);
    return 2;
  }
  const int n = 7, d = 96;

  both(isa, "rmsnorm", 1e-6, 1e-7, [&] {
    static auto x = random(size_t(n) * d, 3), w = random(d);
    Pass P(2, {{nullptr, 0, n, false}});
    Act a = P.in(x, d), o = P.be.alloc(d);
    P.be.rmsnorm(a, w, 1e-5f, o);
    return P.out(o);
  });
  both(isa, "glu", 1e-6, 1e-7, [&] {
    static auto g = random(size_t(n) * d, 6), u = random(size_t(n) * d);
    Pass P(2, {{nullptr, 0, n, false}});
    Act a = P.in(g, d), b = P.in(u, d), o = P.be.alloc(d);
    P.be.glu(GluKind::SwiGLU, a, b, o);
    return P.out(o);
  });
  both(isa, "glu (GeGLU)", 1e-6, 1e-7, [&] {
    static auto g = random(size_t(n) * d, 12), u = random(size_t(n) * d);
    Pass P(2, {{nullptr, 0, n, false}});
    Act a = P.in(g, d), b = P.in(u, d), o = P.be.alloc(d);
    P.be.glu(GluKind::GeGLU, a, b, o);
    return P.out(o);
  });
  both(isa, "rmsnorm_heads + scale", 1e-6, 1e-7, [&] {
    static auto x = random(size_t(n) * 256, 3), w = random(128);
    Pass P(2, {{nullptr, 0, n, false}});
    Act a = P.in(x, 256);
    P.be.rmsnorm_heads(a, 128, w, 1e-6f);
    P.be.scale(a, 0.37f);
    return P.out(a);
  });
  // Mixture of experts (Q8_0 experts: the int8 kernels of the path), and a token alone vs
  // in the batch (the grouping by expert must not change its bits).
  {
    const int D = 64, E = 5, K = 2, F = 96;
    static auto router = random(size_t(E) * D, 0.5f);
    static auto rb = quantized(0, E, D);
    std::memcpy(rb.data(), router.data(), rb.size());
    static auto gw = quantized(8, E * F, D), uw = quantized(8, E * F, D), dw = quantized(8, E * D, F);
    const size_t gs = gw.size() / E, ds = dw.size() / E;
    static auto rm = make_matrix(0, rb.data(), E, D, "router");
    std::vector<std::unique_ptr<Matrix>> keep;
    MoeFfn m;
    m.router = rm.get();
    m.n_used = K;
    for (int e = 0; e < E; e++) {
      keep.push_back(make_matrix(8, gw.data() + gs * e, F, D, "gate"));
      m.gate.push_back(keep.back().get());
      keep.push_back(make_matrix(8, uw.data() + gs * e, F, D, "up"));
      m.up.push_back(keep.back().get());
      keep.push_back(make_matrix(8, dw.data() + ds * e, D, F, "down"));
      m.down.push_back(keep.back().get());
    }
    static auto x = random(size_t(n) * D, 2);
    auto run = [&](int first, int count) {
      Pass P(2, {{nullptr, 0, count, false}});
      Act a = P.in(std::vector<float>(x.begin() + first * D, x.begin() + (first + count) * D), D), o = P.be.alloc(D);
      P.be.moe(a, m, o);
      return P.out(o);
    };
    both(isa, "moe", 2e-3, 1e-5, [&] { return run(0, n); });
    set_isa(isa);
    const auto all = run(0, n);
    same_bits("moe, token 4 alone vs in the batch", run(4, 1), std::vector<float>(all.begin() + 4 * D, all.begin() + 5 * D));
  }
  both(isa, "add_bias + add", 0, 0, [&] {
    static auto x = random(size_t(n) * d), y = random(size_t(n) * d), b = random(d);
    Pass P(2, {{nullptr, 0, n, false}});
    Act a = P.in(x, d), c = P.in(y, d);
    P.be.add_bias(a, b);
    P.be.add(a, c);
    return P.out(a);
  });
  for (RopeStyle style : {RopeStyle::Normal, RopeStyle::NeoX})
    both(isa, "rope", 0, 0, [&] {
      static auto x = random(size_t(n) * 256);
      RopeParams p;
      p.head_dim = 128, p.rope_dim = 96, p.base = 1e6f, p.style = style;
      Pass P(2, {{nullptr, 4000, 3, false}, {nullptr, 5, 4, false}});
      Act a = P.in(x, 256);
      P.be.rope(a, 2, p);
      return P.out(a);
    });
  // Matmul groups of every type (the kernels differ per ISA: int8 dot products in another
  // order, so float rounding only).
  for (uint32_t type : {0u, 1u, 30u, 8u, 2u, 12u, 13u, 14u}) {
    const int64_t cols = 512;
    auto w1 = quantized(type, 53, cols), w2 = quantized(type, 16, cols), w3 = quantized(type, 40, cols);
    auto m1 = make_matrix(type, w1.data(), 53, cols, "a"), m2 = make_matrix(type, w2.data(), 16, cols, "b"),
         m3 = make_matrix(type, w3.data(), 40, cols, "c");
    auto x = random(size_t(n) * cols, 2);
    for (int which = 0; which < 3; which++)
      both(isa, (std::string("matmul group, type ") + std::to_string(type)).c_str(), 2e-3, 1e-5, [&] {
        Pass P(3, {{nullptr, 0, n, false}});
        Act a = P.in(x, int(cols));
        std::vector<MatMul> g = {{m1.get(), a, P.be.alloc(53)}, {m2.get(), a, P.be.alloc(16)}, {m3.get(), a, P.be.alloc(40)}};
        P.be.matmul(g);
        return P.out(g[size_t(which)].y);
      });
  }
  both(isa, "embed", 0, 0, [&] {
    static auto w = quantized(2, 37, 160);
    static auto m = make_matrix(2, w.data(), 37, 160, "embd");
    Pass P(2, {{nullptr, 0, 5, false}});
    const int32_t tokens[5] = {36, 0, 5, 5, 17};
    Act o = P.be.alloc(160);
    P.be.embed(*m, tokens, o);
    return P.out(o);
  });
  both(isa, "read_logits", 1e-4, 1e-6, [&] {
    static auto w = quantized(0, 45, 64);
    static auto m = make_matrix(0, w.data(), 45, 64, "out");
    static auto x = random(size_t(n) * 64), norm = random(64);
    Pass P(2, {{nullptr, 0, n, false}});
    Act a = P.in(x, 64);
    std::vector<float> logits(3 * 45);
    float* dest[3] = {logits.data() + 90, logits.data(), logits.data() + 45};
    P.be.read_logits(a, norm, 1e-6f, *m, {6, 2, 0}, dest);
    return logits;
  });
  both(isa, "rope_cache", 2e-3, 1e-4, [&] {
    static auto k = random(21 * 128, 2);
    KVCache kv(2, 32, 2, 64, KVType::F16);
    CpuBackend be(2);
    SeqSpan s{&kv, 0, 21, false};
    be.begin(&s, 1);
    Act a = be.alloc(128);
    be.write(a, k.data());
    be.kv_store(0, a, a);
    be.kv_store(1, a, a);
    RopeParams p;
    p.head_dim = 64, p.rope_dim = 64, p.style = RopeStyle::NeoX;
    RopeParams p1 = p;
    p1.base = 1000.0f;  // the second layer turns with its own base (Gemma 3's local layers)
    be.rope_cache(kv, 5, 17, -4, {p, p1});
    std::vector<float> out(size_t(2) * 2 * 21 * 64);
    for (int l = 0; l < 2; l++)
      for (int h = 0; h < 2; h++) kv.read_k(l, h, 0, 21, out.data() + size_t(l * 2 + h) * 21 * 64);
    return out;
  });

  // The P V kernel alone, with tails (hd not a multiple of the vector): vs generic, and
  // each row alone with the same bits as within a block of rows.
  for (int hd : {13, 36, 64, 72}) {
    const int rows = 9, np = 37;
    auto w = random(size_t(rows) * np), vf = random(size_t(np) * hd, 3), out0 = random(size_t(rows) * hd);
    for (float& x : w) x = std::fabs(x);
    std::vector<uint16_t> v(vf.size());
    kernels_for(Isa::Generic).f32_to_f16(vf.data(), v.data(), int64_t(v.size()));
    both(isa, "pv_f16", 1e-5, 1e-5, [&] {
      auto out = out0;
      kernels().pv_f16(w.data(), np, v.data(), hd, np, out.data(), hd, rows, hd);
      return out;
    });
    auto all = out0;
    kernels_for(isa).pv_f16(w.data(), np, v.data(), hd, np, all.data(), hd, rows, hd);
    for (int r = 0; r < rows; r++) {
      std::vector<float> one(out0.begin() + r * hd, out0.begin() + (r + 1) * hd);
      kernels_for(isa).pv_f16(w.data() + r * np, np, v.data(), hd, np, one.data(), hd, 1, hd);
      same_bits("pv_f16, a row alone vs among 9", one, std::vector<float>(all.begin() + r * hd, all.begin() + (r + 1) * hd));
    }
  }

  // Attention: every head size and cache type, both routes, vs generic; then bit-identity.
  struct Shape {
    int n_head, n_head_kv, head_dim;
    KVType kvt;
    int ctx;
    std::vector<SeqSpan> seqs;
  };
  std::vector<Shape> shapes = {
      {4, 4, 64, KVType::F16, 64, {{nullptr, 0, 1, false}}},
      {8, 2, 64, KVType::F16, 64, {{nullptr, 20, 13, false}}},
      {6, 1, 80, KVType::F16, 203, {{nullptr, 196, 7, false}}},
      {8, 2, 128, KVType::Q8_0, 160, {{nullptr, 150, 10, false}, {nullptr, 3, 5, false}}},
      {4, 2, 128, KVType::F16, 96, {{nullptr, 5, 70, false}}},
      // Gemma: soft-capped logits and a sliding window (the last two shapes).
      {4, 2, 128, KVType::F16, 96, {{nullptr, 5, 70, false}}},
      {2, 1, 256, KVType::F16, 64, {{nullptr, 30, 9, false}}},
  };
  for (size_t si = 0; si < shapes.size(); si++) {
    const Shape& s = shapes[si];
    AttnParams p;
    p.n_head = s.n_head, p.n_head_kv = s.n_head_kv, p.head_dim = s.head_dim, p.scale = 1.0f / std::sqrt(float(s.head_dim));
    if (si + 2 >= shapes.size()) p.softcap = 2.0f, p.window = si + 1 == shapes.size() ? 16 : 10;
    int N = 0, P = 0;
    for (const SeqSpan& q : s.seqs) N += q.n, P += q.pos0 + q.n;
    auto q = random(size_t(N) * p.n_head * p.head_dim, 2), k = random(size_t(P) * p.n_head_kv * p.head_dim, 2),
         v = random(size_t(P) * p.n_head_kv * p.head_dim);
    for (bool flash : {false, true}) {
      if (flash && s.kvt != KVType::F16) continue;
      const std::string what = std::string(flash ? "flash" : "default") + " attention hd" + std::to_string(s.head_dim);
      both(isa, what.c_str(), 2e-3, 1e-4, [&] { return attention(2, flash, p, s.kvt, s.ctx, s.seqs, q, k, v); });
      set_isa(isa);
      same_bits((what + ", 1 vs 3 threads").c_str(), attention(1, flash, p, s.kvt, s.ctx, s.seqs, q, k, v),
                attention(3, flash, p, s.kvt, s.ctx, s.seqs, q, k, v));
    }
  }
  {  // chunking: the last 7 of 40 tokens as their own chunk, and one token
    set_isa(isa);
    AttnParams p;
    p.n_head = 8, p.n_head_kv = 2, p.head_dim = 64, p.scale = 0.125f;
    const int QD = 512;
    auto q = random(40 * QD, 2), k = random(40 * 128, 2), v = random(40 * 128);
    auto whole = attention(2, false, p, KVType::F16, 80, {{nullptr, 0, 40, false}}, q, k, v);
    auto tail = attention(2, false, p, KVType::F16, 80, {{nullptr, 33, 7, false}},
                          std::vector<float>(q.begin() + 33 * QD, q.end()), k, v);
    same_bits("attention, a chunk of 7 vs the whole prompt", tail, std::vector<float>(whole.begin() + 33 * QD, whole.end()));
  }

  if (failures) {
    std::printf("%d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("ok: %d backend checks on %s agree with the generic path\n", checks, argv[1]);
  return 0;
}
