#include "session_runner.h"

#include <vector>

#include "core/error.h"
#include "model/session.h"

namespace sparrow {

namespace {
Session& session_of(const Request& r) {
  if (!r.slot || !r.slot->session) throw sparrow_error("ERR_INTERNAL", "a scheduled request has no session");
  return *r.slot->session;
}
}  // namespace

void SessionRunner::evaluate(Request& r, size_t count) {
  session_of(r).evaluate_part(r.tokens.data(), r.tokens.size(), r.evaluated, count, r.all_logits, r.logits, &r.slot->cancel);
}

void SessionRunner::decode_batch(Request* const* rs, size_t n) {
  std::vector<Session*> sessions(n);
  std::vector<int32_t> tokens(n);
  std::vector<float*> logits(n);
  for (size_t i = 0; i < n; i++) {
    Request& r = *rs[i];
    Session& s = session_of(r);
    r.logits.resize(size_t(s.output_width()));
    sessions[i] = &s;
    tokens[i] = r.tokens.at(0);
    logits[i] = r.logits.data();
  }
  Session::decode_batch(sessions.data(), tokens.data(), n, logits.data());
}

void SessionRunner::shift(Request& r) {
  Session& s = session_of(r);
  s.shift(r.shift_keep, r.shift_drop);
  r.shift_kept = s.tokens().size();
}

}  // namespace sparrow
