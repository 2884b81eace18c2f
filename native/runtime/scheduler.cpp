#include "scheduler.h"

#include <algorithm>
#include <iterator>
#include <string>

#include "core/error.h"

namespace sparrow {

std::unique_ptr<Request> Request::shift(std::shared_ptr<SessionSlot> s, size_t keep, size_t drop) {
  auto r = std::make_unique<Request>(std::move(s), std::vector<int32_t>(), false);
  r->shift_keep = keep;
  r->shift_drop = drop;
  return r;
}

Scheduler::Scheduler(std::shared_ptr<Runner> runner, const SchedulerOptions& options)
    : runner_(std::move(runner)), opts_(options) {
  if (!runner_) throw sparrow_error("ERR_INVALID_ARG", "scheduler: a runner is required");
  if (opts_.batch_size < 1) throw sparrow_error("ERR_INVALID_ARG", "scheduler: batch_size must be at least 1");
  if (opts_.max_batch < 1) throw sparrow_error("ERR_INVALID_ARG", "scheduler: max_batch must be at least 1");
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s = stats_;
  s.queued = queue_.size();
  return s;
}

void Scheduler::submit(std::unique_ptr<Request> r) {
  if (!r || !r->slot) throw sparrow_error("ERR_INVALID_ARG", "scheduler: a request needs a session");
  SessionSlot& s = *r->slot;
  if (s.disposed) throw sparrow_error("ERR_DISPOSED", "the session has been disposed");
  if (s.busy) throw sparrow_error("ERR_SESSION_BUSY", "the session is evaluating; wait for evaluate() to finish");
  if (!r->is_shift() && r->tokens.empty()) throw sparrow_error("ERR_INVALID_ARG", "tokens must not be empty");
  if (opts_.max_queue > 0 && !r->is_step()) {
    const auto waiting = size_t(std::count_if(queue_.begin(), queue_.end(), [](const auto& q) { return !q->is_step(); }));
    if (waiting >= opts_.max_queue)
      throw sparrow_error("ERR_QUEUE_FULL", "the model's queue is full: " + std::to_string(waiting) +
                                                " prompt evaluations wait (maxQueue " + std::to_string(opts_.max_queue) + ")");
  }
  s.aborted = false;  // a previous cancel() is spent: the session was idle
  s.cancel.store(false);
  s.busy = true;
  r->outcome = Request::Outcome::Pending;
  queue_.push_back(std::move(r));
}

std::unique_ptr<Scheduler::Job> Scheduler::next() {
  if (running_ || queue_.empty()) return nullptr;
  auto job = std::make_unique<Job>();
  job->runner_ = runner_;
  job->batch_size_ = opts_.batch_size;
  auto& q = queue_;
  // A prompt that has just run a part lets the decode steps queued meanwhile go first.
  const bool steps_first = q.front()->yield_ && std::any_of(q.begin(), q.end(), [](const auto& r) { return r->is_step(); });
  if (!steps_first && !q.front()->is_step()) {  // a prompt (its next part) or a shift: alone
    q.front()->yield_ = false;
    job->requests_.push_back(std::move(q.front()));
    q.pop_front();
  } else {
    if (steps_first) q.front()->yield_ = false;
    for (auto it = q.begin(); it != q.end() && job->requests_.size() < opts_.max_batch;) {
      if ((*it)->is_step()) {
        job->requests_.push_back(std::move(*it));
        it = q.erase(it);
      } else {
        ++it;
      }
    }
  }
  running_ = true;
  return job;
}

namespace {

// One request on its own: a shift, or the next part of an evaluation. Errors stay in the request.
void run_alone(Runner& runner, Request& r, size_t batch_size) {
  try {
    if (r.is_shift()) {
      runner.shift(r);
      r.done = true;
      return;
    }
    const size_t n = r.tokens.size(), part = std::min(n - r.evaluated, batch_size);
    runner.evaluate(r, part);
    r.evaluated += part;
    r.done = r.evaluated == n;
  } catch (...) {
    r.error = std::current_exception();
  }
}

}  // namespace

void Scheduler::run(Job& job) {
  auto& rs = job.requests_;
  if (rs.size() == 1) return run_alone(*job.runner_, *rs[0], job.batch_size_);
  std::vector<Request*> batch;
  batch.reserve(rs.size());
  for (auto& r : rs) batch.push_back(r.get());
  try {
    job.runner_->decode_batch(batch.data(), batch.size());
    for (auto& r : rs) {
      r->evaluated = 1;
      r->done = true;
    }
    job.batched_ = true;
  } catch (...) {
    // The batch changed no session: each request runs alone, so an error stays its own.
    for (auto& r : rs) run_alone(*job.runner_, *r, job.batch_size_);
  }
}

// The outcome of a request handed back to the owner; a completed one commits its tokens
// to the slot's copy.
void Scheduler::settle(Request& r) {
  SessionSlot& s = *r.slot;
  s.busy = false;
  using O = Request::Outcome;
  const bool completed = r.done && !r.error;
  if (s.aborted && !completed) {
    r.outcome = O::Aborted;  // cancel() before it completed: the session is unchanged
  } else if (s.disposed) {
    r.outcome = O::Disposed;
  } else if (r.error) {
    r.outcome = O::Failed;
  } else if (!r.done) {
    r.outcome = s.aborted ? O::Aborted : O::Disposed;  // stopped before it ran
  } else {
    r.outcome = O::Done;
    if (r.is_shift()) {
      auto& t = s.tokens;
      const size_t keep = std::min(r.shift_keep, t.size()), end = std::min(r.shift_keep + r.shift_drop, t.size());
      t.erase(t.begin() + std::ptrdiff_t(keep), t.begin() + std::ptrdiff_t(end));
      // A session with sliding-window layers may have kept fewer (Session::shift).
      if (r.shift_kept < t.size()) t.resize(r.shift_kept);
    } else {
      s.tokens.insert(s.tokens.end(), r.tokens.begin(), r.tokens.end());
    }
  }
}

Scheduler::Requests Scheduler::finish(std::unique_ptr<Job> job) {
  Requests out;
  if (!job) return out;
  running_ = false;
  stats_.evaluations++;
  if (job->batched_) {
    stats_.batched_steps++;
    stats_.batched_tokens += double(job->requests_.size());
    stats_.max_batch = std::max(stats_.max_batch, double(job->requests_.size()));
  }
  for (auto& r : job->requests_) {
    if (!r->done && !r->error && !r->slot->cancel.load()) {
      // A prompt with parts left goes back to the head of the queue (behind the decode
      // steps that waited for this part, see next()).
      r->yield_ = true;
      queue_.push_front(std::move(r));
      continue;
    }
    settle(*r);
    out.push_back(std::move(r));
  }
  return out;
}

Scheduler::Requests Scheduler::remove_queued(const SessionSlot& slot) {
  Requests out;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if ((*it)->slot.get() != &slot) {
      ++it;
      continue;
    }
    out.push_back(std::move(*it));
    it = queue_.erase(it);
  }
  for (auto& r : out) settle(*r);
  return out;
}

Scheduler::Requests Scheduler::cancel(SessionSlot& slot) {
  if (!slot.busy) return {};
  slot.aborted = true;
  slot.cancel.store(true);
  return remove_queued(slot);
}

Scheduler::Requests Scheduler::dispose(SessionSlot& slot) {
  slot.disposed = true;
  slot.cancel.store(true);  // a job in flight stops at its next layer and owns the session until then
  return remove_queued(slot);
}

}  // namespace sparrow
