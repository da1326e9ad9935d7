// The timeout policy for a path, from the contact plan: the driver-side PolicySource the lease
// core and the rover agent core take. The plan gives the OWLT and contact-wait bounds
// (dtn::PathBoundsBetween) over a horizon from `now`; configuration gives the clock errors and
// the processing margin. Results are cached per peer and recomputed once `now` has moved past a
// quarter of the horizon, so the bounds always cover at least 3/4 of a horizon ahead. The sweeps
// behind the bounds share a dtn::PathBoundsCache, so a recomputation costs about two route
// searches per direction rather than one per pass in the horizon (same results).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "clock/light_time.h"
#include "clock/timeout_policy.h"
#include "dtn/contact_plan.h"
#include "dtn/routing.h"

namespace ics::coordinator {

struct PlanPolicyConfig {
  clock::NodeNumber self = 0;                 // this node (the coordinator, or the rover)
  clock::ClockErrorBound self_clock;          // this node's clock error
  clock::ClockErrorBound peer_clock;          // the clock error assumed for every peer
  clock::Duration processing_margin = std::chrono::seconds(2);
  clock::Duration horizon = std::chrono::hours(24);
  std::uint64_t message_bytes = 1024;         // a lease message, for transmission time
  // The contact wait assumed when the plan has no route over the horizon: long enough that any
  // lease term is refused with that explanation rather than granted blindly.
  clock::Duration no_route_wait = std::chrono::hours(24 * 365);
};

// Not thread-safe (it caches). `plan` must outlive it and stay unchanged while it is used.
class PlanPolicy {
 public:
  PlanPolicy(const dtn::ContactPlan& plan, PlanPolicyConfig config) : plan_(plan), config_(config) {}
  // The policy between `peer` and this node at `now`. When this node is the coordinator the
  // requester is `peer`; when it is a rover the requester is this node: `self_is_requester`.
  clock::TimeoutPolicy For(clock::NodeNumber peer, clock::DtnTime now, bool self_is_requester);
  // The last error met while bounding a path (no route), for logs; empty when none.
  const std::string& last_error() const { return last_error_; }

 private:
  struct Cached {
    clock::DtnTime computed_at;
    clock::PathBounds bounds;
  };
  const dtn::ContactPlan& plan_;
  PlanPolicyConfig config_;
  std::map<clock::NodeNumber, Cached> cache_;
  dtn::PathBoundsCache bounds_cache_;
  std::string last_error_;
};

}  // namespace ics::coordinator
