// The evaluation scheduler of one model: its sessions' requests (evaluations and context
// shifts) queue here and run one job at a time. Plain C++, no Node types: the addon
// submits requests, starts each job that next() hands out on a worker thread, and
// settles the requests that finish() and cancel() / dispose() hand back.
//
// Policy:
//   - One request per session at a time (a second one is ERR_SESSION_BUSY).
//   - A job is either one request alone (a prompt part, a context shift), or up to
//     max_batch decode steps (single-token evaluations) of different sessions, batched
//     into one forward pass. Queue order is kept: the first request decides the kind of
//     job; a batch of steps takes the queued steps in order.
//   - A prompt longer than batch_size tokens runs one batch per job. After each part it
//     goes back to the head of the queue, but the decode steps queued meanwhile run
//     first, so a long prompt delays other sessions' next tokens by one batch.
//   - At most max_queue prompts and shifts wait (ERR_QUEUE_FULL beyond); decode steps
//     are never refused, so that a generation in progress is never cut off by the limit.
//
// Threads: every method is called on one thread (the owner: the JS thread for the
// addon), except run(), which runs a job on any thread. A job touches only its own
// requests and their sessions, which are busy (the owner leaves them alone) until
// finish() hands the job's requests back.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <vector>

namespace sparrow {

class Session;

// A session as the scheduler sees it.
struct SessionSlot {
  explicit SessionSlot(std::shared_ptr<Session> s = nullptr) : session(std::move(s)) {}
  std::shared_ptr<Session> session;  // what the runner evaluates (a test runner may use none)
  std::vector<int32_t> tokens;       // the committed tokens, as the owner thread sees them (never raced)
  std::atomic<bool> cancel{false};   // cancelled or disposed: a job in flight stops at its next layer
  bool busy = false;                 // a request is queued or running (owner thread only)
  bool aborted = false;              // cancel() (not dispose()) set `cancel`; cleared by the next submit
  bool disposed = false;
};

// One evaluation or context shift, from submit() to its settlement. The addon derives
// from it to carry its promise.
struct Request {
  enum class Outcome { Pending, Done, Failed, Aborted, Disposed };

  Request(std::shared_ptr<SessionSlot> s, std::vector<int32_t> t, bool all) : slot(std::move(s)), tokens(std::move(t)), all_logits(all) {}
  // A context shift: drops tokens [keep, keep + drop).
  static std::unique_ptr<Request> shift(std::shared_ptr<SessionSlot> s, size_t keep, size_t drop);
  virtual ~Request() = default;

  std::shared_ptr<SessionSlot> slot;
  std::vector<int32_t> tokens;
  bool all_logits = false;
  size_t shift_keep = 0, shift_drop = 0;  // a shift (no tokens) when shift_drop > 0
  size_t shift_kept = SIZE_MAX;            // the runner: tokens the session holds after the shift

  bool is_shift() const { return shift_drop > 0; }
  bool is_step() const { return !is_shift() && tokens.size() == 1; }

  // Progress, written by the job that runs it.
  size_t evaluated = 0;       // tokens evaluated so far (a long prompt runs as several jobs)
  bool done = false;          // ran to the end: the session changed
  std::vector<float> logits;  // the result, or
  std::exception_ptr error;

  // Set when the request is handed back to the owner. Done: `logits` is the result and
  // slot->tokens has been updated. Failed: `error`. Aborted: cancel() stopped it (the
  // session is unchanged). Disposed: its session was disposed.
  Outcome outcome = Outcome::Pending;

 private:
  friend class Scheduler;
  bool yield_ = false;  // a part of it ran: the decode steps queued meanwhile go first
};

// The engine calls a job makes. SessionRunner (session_runner.h) calls the sessions;
// tests substitute their own.
class Runner {
 public:
  virtual ~Runner() = default;
  // Evaluates tokens [r.evaluated, r.evaluated + count) of r.tokens into r.logits (see
  // Session::evaluate_part): the session changes when the last part has run. Throws on error.
  virtual void evaluate(Request& r, size_t count) = 0;
  // One decode step of each of n requests of distinct sessions, in one pass, all or
  // nothing: on a throw no session changed (the scheduler then runs each one alone).
  virtual void decode_batch(Request* const* rs, size_t n) = 0;
  virtual void shift(Request& r) = 0;
};

struct SchedulerOptions {
  size_t batch_size = 512;  // prompt tokens per job
  size_t max_batch = 16;    // decode steps per batched job
  size_t max_queue = 0;     // prompts and shifts that may wait; 0: no limit
};

struct SchedulerStats {
  double evaluations = 0;     // jobs run
  double batched_steps = 0;   // jobs that ran several decode steps as one pass
  double batched_tokens = 0;  // the steps in them
  double max_batch = 0;       // the largest such job
  size_t queued = 0;          // requests waiting now
};

class Scheduler {
 public:
  using Requests = std::vector<std::unique_ptr<Request>>;

  // A job: the requests that run together (several only for a batch of decode steps).
  class Job {
   public:
    const Requests& requests() const { return requests_; }
    bool batched() const { return batched_; }

   private:
    friend class Scheduler;
    Requests requests_;
    std::shared_ptr<Runner> runner_;
    size_t batch_size_ = 0;
    bool batched_ = false;
  };

  Scheduler(std::shared_ptr<Runner> runner, const SchedulerOptions& options);

  const SchedulerOptions& options() const { return opts_; }
  SchedulerStats stats() const;

  // Queues r. Throws, leaving r's session as it was: ERR_DISPOSED (the session was
  // disposed), ERR_SESSION_BUSY (it has a request queued or running), ERR_INVALID_ARG
  // (no tokens), ERR_QUEUE_FULL (max_queue prompts and shifts already wait).
  void submit(std::unique_ptr<Request> r);

  // The next job, when none is running and requests wait; else null. The caller runs it
  // (run(), on any thread) and hands it back to finish().
  std::unique_ptr<Job> next();
  bool running() const { return running_; }
  bool has_work() const { return !running_ && !queue_.empty(); }

  // Runs a job: on any thread, while the owner goes on with other sessions.
  static void run(Job& job);

  // Takes back a job that ran. Returns its requests that ended, with their outcomes;
  // the part-run prompts go back to the queue.
  Requests finish(std::unique_ptr<Job> job);

  // Cancels the session's request: a queued one is returned at once (Aborted); one in
  // a running job stops at its next layer and comes back from finish() (Aborted, unless
  // it had completed: then Done). Nothing happens when the session is idle.
  Requests cancel(SessionSlot& slot);
  // Like cancel(), but the request ends as Disposed, and the session refuses new ones.
  Requests dispose(SessionSlot& slot);

 private:
  void settle(Request& r);
  Requests remove_queued(const SessionSlot& slot);

  std::shared_ptr<Runner> runner_;
  SchedulerOptions opts_;
  std::deque<std::unique_ptr<Request>> queue_;
  bool running_ = false;
  SchedulerStats stats_;
};

}  // namespace sparrow
