// The evaluation scheduler (native/runtime/scheduler.h) on its own, with a fake runner
// that records what each job ran: ordering, batching of waiting decode steps, a long
// prompt interleaved with decode steps, cancel, dispose, the queue limit. Built and run
// by test/runtime/scheduler.test.ts; prints "ok: N scheduler checks" when all pass.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/scheduler.h"

using namespace sparrow;
using Outcome = Request::Outcome;

namespace {

int checks = 0, failures = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    checks++;                                                                  \
    if (!(cond)) {                                                             \
      failures++;                                                              \
      std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
    }                                                                          \
  } while (0)

// A session of the fake engine: a name for the log and the tokens it has committed.
struct FakeSession {
  std::string name;
  std::vector<int32_t> tokens;
};

std::string code_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return err.code();
  } catch (...) {
    return "?";
  }
}

// Records each call as text ("A[0,8)", "batch A B", "shift A"); token ids < 0 are bad
// tokens; a set cancel flag stops an evaluation as a session does (ERR_CANCELLED).
// Logits: one float per request, the sum of the tokens evaluated so far.
struct FakeRunner : Runner {
  std::vector<std::string> log;
  std::map<const SessionSlot*, FakeSession> sessions;

  FakeSession& of(const Request& r) { return sessions.at(r.slot.get()); }

  void evaluate(Request& r, size_t count) override {
    FakeSession& s = of(r);
    log.push_back(s.name + "[" + std::to_string(r.evaluated) + "," + std::to_string(r.evaluated + count) + ")");
    if (r.slot->cancel.load()) throw sparrow_error("ERR_CANCELLED", "cancelled");
    for (size_t i = r.evaluated; i < r.evaluated + count; i++)
      if (r.tokens[i] < 0) throw sparrow_error("ERR_INVALID_TOKEN", "bad token");
    if (r.evaluated == 0) r.logits.assign(1, 0.0f);
    for (size_t i = r.evaluated; i < r.evaluated + count; i++) r.logits[0] += float(r.tokens[i]);
    if (r.evaluated + count == r.tokens.size()) s.tokens.insert(s.tokens.end(), r.tokens.begin(), r.tokens.end());
  }
  void decode_batch(Request* const* rs, size_t n) override {
    std::string line = "batch";
    for (size_t i = 0; i < n; i++) line += " " + of(*rs[i]).name;
    log.push_back(line);
    for (size_t i = 0; i < n; i++)
      if (rs[i]->tokens[0] < 0) throw sparrow_error("ERR_INVALID_TOKEN", "bad token");  // nothing changed
    for (size_t i = 0; i < n; i++) {
      rs[i]->logits.assign(1, float(rs[i]->tokens[0]));
      of(*rs[i]).tokens.push_back(rs[i]->tokens[0]);
    }
  }
  void shift(Request& r) override {
    FakeSession& s = of(r);
    log.push_back("shift " + s.name);
    s.tokens.erase(s.tokens.begin() + long(r.shift_keep), s.tokens.begin() + long(r.shift_keep + r.shift_drop));
  }
};

struct Fixture {
  std::shared_ptr<FakeRunner> runner = std::make_shared<FakeRunner>();
  Scheduler sched;
  explicit Fixture(SchedulerOptions o) : sched(runner, o) {}

  std::shared_ptr<SessionSlot> session(const std::string& name) {
    auto slot = std::make_shared<SessionSlot>();
    runner->sessions[slot.get()] = FakeSession{name, {}};
    return slot;
  }
  void submit(const std::shared_ptr<SessionSlot>& s, std::vector<int32_t> tokens, bool all = false) {
    sched.submit(std::make_unique<Request>(s, std::move(tokens), all));
  }
  std::string submit_error(const std::shared_ptr<SessionSlot>& s, std::vector<int32_t> tokens) {
    try {
      submit(s, std::move(tokens));
      return "";
    } catch (...) {
      return code_of(std::current_exception());
    }
  }
  // Runs one job to its end; returns the requests it settled.
  Scheduler::Requests step() {
    auto job = sched.next();
    if (!job) return {};
    Scheduler::run(*job);
    return sched.finish(std::move(job));
  }
  // Runs jobs until the queue is empty; returns every settled request in order.
  Scheduler::Requests drain() {
    Scheduler::Requests all;
    while (sched.has_work())
      for (auto& r : step()) all.push_back(std::move(r));
    return all;
  }
  std::vector<std::string> take_log() { return std::move(runner->log); }
};

using Log = std::vector<std::string>;

void test_order_and_batching() {
  Fixture f({8, 3, 0});
  auto a = f.session("A"), b = f.session("B"), c = f.session("C"), d = f.session("D"), e = f.session("E"), p = f.session("P");
  // Queue order decides: the head's kind of job runs next; steps run as batches of at
  // most max_batch, taken in queue order.
  f.submit(a, {1});
  f.submit(p, {5, 6, 7});
  f.submit(b, {2});
  f.submit(c, {3});
  f.submit(d, {4});
  f.submit(e, {9});
  CHECK(f.sched.stats().queued == 6);
  auto done = f.drain();
  CHECK(f.take_log() == (Log{"batch A B C", "P[0,3)", "batch D E"}));
  CHECK(done.size() == 6);
  for (auto& r : done) CHECK(r->outcome == Outcome::Done);
  CHECK(a->tokens == std::vector<int32_t>{1});
  CHECK(p->tokens == (std::vector<int32_t>{5, 6, 7}));
  CHECK(!p->busy && !a->busy);
  auto st = f.sched.stats();
  CHECK(st.evaluations == 3 && st.batched_steps == 2 && st.batched_tokens == 5 && st.max_batch == 3 && st.queued == 0);

  // A prompt at the head runs first, alone; the steps behind it then run together.
  f.submit(p, {1, 1});
  f.submit(a, {2});
  f.submit(b, {3});
  f.drain();
  CHECK(f.take_log() == (Log{"P[0,2)", "batch A B"}));
  // One step alone is not a batch.
  f.submit(c, {4});
  f.drain();
  CHECK(f.take_log() == (Log{"C[0,1)"}));
  CHECK(f.sched.stats().batched_steps == 3);

  // max_batch 1: steps take turns.
  Fixture g({8, 1, 0});
  auto x = g.session("X"), y = g.session("Y");
  g.submit(x, {1});
  g.submit(y, {2});
  g.drain();
  CHECK(g.take_log() == (Log{"X[0,1)", "Y[0,1)"}));
  CHECK(g.sched.stats().batched_steps == 0);
}

void test_one_job_at_a_time() {
  Fixture f({8, 16, 0});
  auto a = f.session("A"), b = f.session("B");
  f.submit(a, {1});
  auto job = f.sched.next();
  CHECK(job && job->requests().size() == 1);
  CHECK(f.sched.running() && !f.sched.next());  // one job at a time
  f.submit(b, {2});                              // queued meanwhile
  Scheduler::run(*job);
  auto out = f.sched.finish(std::move(job));
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Done && out[0]->logits == std::vector<float>{1});
  CHECK(f.sched.has_work());
  f.drain();
  CHECK(f.take_log() == (Log{"A[0,1)", "B[0,1)"}));
}

void test_busy_and_arguments() {
  Fixture f({8, 16, 0});
  auto a = f.session("A");
  f.submit(a, {1, 2});
  CHECK(f.submit_error(a, {3}) == "ERR_SESSION_BUSY");
  CHECK(f.sched.stats().queued == 1);
  f.drain();
  CHECK(f.submit_error(a, {}) == "ERR_INVALID_ARG");
  CHECK(!a->busy);
  CHECK(f.submit_error(a, {3}) == "");
  f.drain();
  CHECK(a->tokens == (std::vector<int32_t>{1, 2, 3}));
}

void test_interleaving() {
  Fixture f({8, 16, 0});
  auto l = f.session("L"), x = f.session("X"), y = f.session("Y");
  std::vector<int32_t> prompt(20);
  for (int i = 0; i < 20; i++) prompt[size_t(i)] = i + 1;
  f.submit(l, prompt, true);
  auto job = f.sched.next();  // L's first part
  f.submit(x, {100});         // decode steps arrive while it runs
  f.submit(y, {200});
  Scheduler::run(*job);
  CHECK(f.sched.finish(std::move(job)).empty());  // L has parts left: back in the queue
  CHECK(l->busy && l->tokens.empty());
  auto out = f.step();  // the steps that waited go first, batched
  CHECK(out.size() == 2);
  // X's next step arrives before the next job: L's turn comes first.
  f.submit(x, {101});
  out = f.step();
  CHECK(out.empty());
  out = f.step();  // then X, which waited for that part
  CHECK(out.size() == 1 && out[0]->slot == x);
  out = f.step();  // L's last part
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Done);
  CHECK(f.take_log() == (Log{"L[0,8)", "batch X Y", "L[8,16)", "X[0,1)", "L[16,20)"}));
  CHECK(out[0]->logits == std::vector<float>{210});  // 1 + ... + 20
  CHECK(l->tokens == prompt);
  CHECK(x->tokens == (std::vector<int32_t>{100, 101}));
  CHECK(f.runner->sessions[l.get()].tokens == prompt);

  // With nothing waiting, a long prompt runs part after part.
  auto m = f.session("M");
  f.submit(m, prompt);
  f.drain();
  CHECK(f.take_log() == (Log{"M[0,8)", "M[8,16)", "M[16,20)"}));
}

void test_cancel() {
  Fixture f({8, 16, 0});
  auto a = f.session("A"), b = f.session("B");
  CHECK(f.sched.cancel(*a).empty());  // idle: nothing happens
  CHECK(!a->aborted);

  // Queued: settled at once, Aborted; the others run.
  f.submit(a, {1});
  f.submit(b, {2});
  auto out = f.sched.cancel(*a);
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Aborted && !a->busy);
  f.drain();
  CHECK(f.take_log() == (Log{"B[0,1)"}));
  CHECK(a->tokens.empty());

  // Running: it stops (the runner sees the flag) and comes back Aborted from finish().
  f.submit(a, {3, 4});  // a new request after a cancel runs normally
  auto job = f.sched.next();
  CHECK(!a->cancel.load() && !a->aborted);
  CHECK(f.sched.cancel(*a).empty());
  Scheduler::run(*job);
  out = f.sched.finish(std::move(job));
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Aborted);
  CHECK(a->tokens.empty() && f.runner->sessions[a.get()].tokens.empty());

  // Completed before the flag was seen: it counts.
  f.submit(a, {5});
  job = f.sched.next();
  Scheduler::run(*job);
  f.sched.cancel(*a);
  out = f.sched.finish(std::move(job));
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Done && a->tokens == std::vector<int32_t>{5});

  // Between the parts of a long prompt: the session is as it was.
  f.take_log();
  f.submit(a, std::vector<int32_t>(20, 1));
  CHECK(f.step().empty());
  out = f.sched.cancel(*a);
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Aborted);
  CHECK(!f.sched.has_work() && !a->busy && a->tokens == std::vector<int32_t>{5});
  CHECK(f.take_log() == (Log{"A[0,8)"}));
}

void test_dispose() {
  Fixture f({8, 16, 0});
  auto a = f.session("A"), b = f.session("B"), c = f.session("C");
  // Queued: Disposed at once, the batch runs without it.
  f.submit(a, {1});
  f.submit(b, {2});
  f.submit(c, {3});
  auto out = f.sched.dispose(*b);
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Disposed);
  f.drain();
  CHECK(f.take_log() == (Log{"batch A C"}));
  CHECK(f.submit_error(b, {1}) == "ERR_DISPOSED");
  CHECK(f.sched.dispose(*b).empty());  // twice is harmless

  // In a running batch: the others are unaffected; it comes back Disposed.
  f.submit(a, {4});
  f.submit(c, {5});
  auto job = f.sched.next();
  CHECK(f.sched.dispose(*c).empty());
  Scheduler::run(*job);  // this fake ignores the flag in a batch: the request still ends Disposed
  out = f.sched.finish(std::move(job));
  CHECK(out.size() == 2 && out[0]->outcome == Outcome::Done && out[1]->outcome == Outcome::Disposed);
  CHECK(a->tokens == (std::vector<int32_t>{1, 4}));

  // A part-run prompt of a disposed session does not go back to the queue.
  auto d = f.session("D");
  f.submit(d, std::vector<int32_t>(20, 1));
  job = f.sched.next();
  f.sched.dispose(*d);
  Scheduler::run(*job);
  out = f.sched.finish(std::move(job));
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Disposed && !f.sched.has_work());
  CHECK(f.sched.stats().queued == 0);
}

void test_errors_stay_alone() {
  Fixture f({8, 16, 0});
  auto a = f.session("A"), bad = f.session("Bad"), c = f.session("C");
  f.submit(a, {1});
  f.submit(bad, {-5});
  f.submit(c, {3});
  auto out = f.drain();
  // The batch failed without changing anything; each step then ran alone.
  CHECK(f.take_log() == (Log{"batch A Bad C", "A[0,1)", "Bad[0,1)", "C[0,1)"}));
  CHECK(out.size() == 3);
  CHECK(out[0]->outcome == Outcome::Done && out[2]->outcome == Outcome::Done);
  CHECK(out[1]->outcome == Outcome::Failed && code_of(out[1]->error) == "ERR_INVALID_TOKEN");
  CHECK(bad->tokens.empty() && !bad->busy && c->tokens == std::vector<int32_t>{3});
  CHECK(f.sched.stats().batched_steps == 0);
  // A failed prompt part ends the request; the session takes new ones.
  f.submit(bad, {1, 2, 3, 4, 5, 6, 7, 8, 9, -1});
  out = f.drain();
  CHECK(out.size() == 1 && out[0]->outcome == Outcome::Failed && bad->tokens.empty());
  CHECK(f.take_log() == (Log{"Bad[0,8)", "Bad[8,10)"}));
}

void test_shift() {
  Fixture f({8, 16, 0});
  auto a = f.session("A"), b = f.session("B");
  f.submit(a, {1, 2, 3, 4, 5, 6});
  f.drain();
  f.sched.submit(Request::shift(a, 1, 3));
  f.submit(b, {7});
  auto out = f.drain();
  CHECK(f.take_log() == (Log{"A[0,6)", "shift A", "B[0,1)"}));
  CHECK(out.size() == 2 && out[0]->outcome == Outcome::Done);
  CHECK(a->tokens == (std::vector<int32_t>{1, 5, 6}));
  CHECK(f.runner->sessions[a.get()].tokens == a->tokens);
}

void test_queue_limit() {
  Fixture f({8, 16, 2});
  auto p = f.session("P"), q = f.session("Q"), r = f.session("R"), s = f.session("S"), t = f.session("T");
  f.submit(p, {1, 2});
  f.submit(q, {1, 2});
  CHECK(f.submit_error(r, {1, 2}) == "ERR_QUEUE_FULL");
  CHECK(!r->busy);                           // refused: the session is idle and unchanged
  CHECK(f.submit_error(s, {1}) == "");       // decode steps are never refused
  CHECK(f.submit_error(t, {2}) == "");
  try {
    f.sched.submit(Request::shift(r, 0, 1));
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == "ERR_QUEUE_FULL");
  }
  f.step();  // P runs: one place is free
  CHECK(f.submit_error(r, {1, 2}) == "");
  CHECK(f.submit_error(p, {3, 4}) == "ERR_QUEUE_FULL");
  f.drain();
  CHECK(f.submit_error(p, {3, 4}) == "");
  f.drain();

  // A running prompt does not count; its parts go back to the queue beyond the limit.
  Fixture g({4, 16, 1});
  auto l = g.session("L"), m = g.session("M"), n = g.session("N");
  g.submit(l, std::vector<int32_t>(10, 1));
  auto job = g.sched.next();
  g.submit(m, {1, 1});
  Scheduler::run(*job);
  CHECK(g.sched.finish(std::move(job)).empty());
  CHECK(g.sched.stats().queued == 2);
  CHECK(g.submit_error(n, {1, 1}) == "ERR_QUEUE_FULL");
  auto out = g.drain();
  CHECK(out.size() == 2 && out[0]->slot == l && out[1]->slot == m);
  CHECK(l->tokens.size() == 10 && m->tokens.size() == 2);
}

void test_options() {
  auto runner = std::make_shared<FakeRunner>();
  auto bad = [&](SchedulerOptions o) {
    try {
      Scheduler s(runner, o);
      return false;
    } catch (const Error& e) {
      return e.code() == "ERR_INVALID_ARG";
    }
  };
  CHECK(bad({0, 16, 0}));
  CHECK(bad({8, 0, 0}));
  try {
    Scheduler s(nullptr, {});
    CHECK(false);
  } catch (const Error& e) {
    CHECK(e.code() == "ERR_INVALID_ARG");
  }
}

}  // namespace

int main() {
  test_order_and_batching();
  test_one_job_at_a_time();
  test_busy_and_arguments();
  test_interleaving();
  test_cancel();
  test_dispose();
  test_errors_stay_alone();
  test_shift();
  test_queue_limit();
  test_options();
  if (failures) {
    std::fprintf(stderr, "%d of %d scheduler checks failed\n", failures, checks);
    return 1;
  }
  std::printf("ok: %d scheduler checks\n", checks);
  return 0;
}
