// The scheduler's runner for real sessions: each request's slot holds a sparrow::Session.
#pragma once
#include "runtime/scheduler.h"

namespace sparrow {

class SessionRunner : public Runner {
 public:
  void evaluate(Request& r, size_t count) override;
  void decode_batch(Request* const* rs, size_t n) override;
  void shift(Request& r) override;
};

}  // namespace sparrow
