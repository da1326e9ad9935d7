#include "coordinator/plan_policy.h"

namespace ics::coordinator {

clock::TimeoutPolicy PlanPolicy::For(clock::NodeNumber peer, clock::DtnTime now, bool self_is_requester) {
  auto it = cache_.find(peer);
  if (it == cache_.end() || now < it->second.computed_at || now - it->second.computed_at > config_.horizon / 4) {
    clock::PathBounds bounds;
    if (peer == config_.self) {
      bounds = clock::PathBounds{};  // a local requester: no light time, no contact wait
    } else if (auto b = dtn::PathBoundsBetween(plan_, config_.self, peer, now, now + config_.horizon,
                                               config_.message_bytes, bounds_cache_)) {
      bounds = *b;
    } else {
      // No route over the horizon: assume the worst, so terms are refused with a reason.
      last_error_ = b.error();
      bounds.owlt = plan_.range_table().Bound(config_.self, peer, now, now + config_.horizon)
                        .value_or(clock::OwltBound{});
      bounds.contact_wait_max = config_.no_route_wait;
    }
    it = cache_.insert_or_assign(peer, Cached{now, bounds}).first;
  }
  clock::PolicyInputs in;
  in.path = it->second.bounds;
  in.requester = self_is_requester ? config_.self_clock : config_.peer_clock;
  in.coordinator = self_is_requester ? config_.peer_clock : config_.self_clock;
  in.processing_margin = config_.processing_margin;
  return clock::TimeoutPolicy(in);
}

}  // namespace ics::coordinator
