// The checker sorts and sweeps; it never trusts the order the simulator recorded things in,
// except for guard acceptances, whose order of processing is the order the guard saw them.
#include "scenarios/safety.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <fmt/format.h>

namespace ics::scenarios {

std::string_view ViolationKindName(ViolationKind kind) {
  switch (kind) {
    case ViolationKind::kTokenBackwards: return "token_backwards";
    case ViolationKind::kOverlappingHolds: return "overlapping_holds";
    case ViolationKind::kGrantInOldEpoch: return "grant_in_old_epoch";
  }
  return "unknown";
}

std::vector<Violation> CheckSafety(const History& history) {
  std::vector<Violation> out;

  // 1. Fencing at each guard.
  std::map<std::pair<std::string, coordinator::ResourceName>, const GuardAcceptance*> last;
  for (const auto& a : history.acceptances) {
    auto& prev = last[{a.guard, a.resource}];
    if (prev != nullptr && a.token < prev->token) {
      out.push_back({ViolationKind::kTokenBackwards, a.at, a.resource,
                     fmt::format("guard {} accepted token {} from node {} at {} after token {} from node {} at {}",
                                 a.guard, a.token, a.source, a.at.ToIso8601(), prev->token, prev->source,
                                 prev->at.ToIso8601())});
    }
    if (prev == nullptr || a.token >= prev->token) prev = &a;
  }

  // 2. Mutual exclusion: per resource, sweep the intervals by start; any interval that starts
  // before the latest end seen so far of ANOTHER rover overlaps it.
  std::map<coordinator::ResourceName, std::vector<const HoldInterval*>> by_resource;
  for (const auto& h : history.holds) {
    if (h.until > h.from) by_resource[h.resource].push_back(&h);
  }
  for (auto& [resource, list] : by_resource) {
    std::sort(list.begin(), list.end(), [](const HoldInterval* a, const HoldInterval* b) {
      return std::tie(a->from, a->until, a->rover_id, a->token) < std::tie(b->from, b->until, b->rover_id, b->token);
    });
    // The two latest-ending intervals of distinct rovers seen so far suffice to find an overlap.
    const HoldInterval* best = nullptr;    // latest end
    const HoldInterval* second = nullptr;  // latest end among rovers other than best's
    for (const HoldInterval* h : list) {
      const HoldInterval* other = (best != nullptr && best->rover_id != h->rover_id) ? best : second;
      if (other != nullptr && other->until > h->from) {
        out.push_back({ViolationKind::kOverlappingHolds, h->from, resource,
                       fmt::format("{} believed it held {} (token {}, epoch {}) over [{}, {}) while {} believed it "
                                   "held it (token {}, epoch {}) over [{}, {})",
                                   h->rover, resource.ToString(), h->token, h->epoch, h->from.ToIso8601(),
                                   h->until.ToIso8601(), other->rover, other->token, other->epoch,
                                   other->from.ToIso8601(), other->until.ToIso8601())});
      }
      if (best == nullptr || h->until > best->until) {
        if (best != nullptr && best->rover_id != h->rover_id) second = best;
        best = h;
      } else if (h->rover_id != best->rover_id && (second == nullptr || h->until > second->until)) {
        second = h;
      }
    }
  }

  // 3. Grants in an epoch after a later epoch started.
  std::vector<EpochStarted> epochs = history.epochs;
  std::sort(epochs.begin(), epochs.end(),
            [](const EpochStarted& a, const EpochStarted& b) { return std::tie(a.at, a.epoch) < std::tie(b.at, b.epoch); });
  for (const auto& g : history.grants) {
    for (const auto& e : epochs) {
      if (e.at > g.at) break;
      if (e.epoch > g.epoch) {
        out.push_back({ViolationKind::kGrantInOldEpoch, g.at, g.resource,
                       fmt::format("grant of {} token {} to node {} in epoch {} at {}, after epoch {} started at {}",
                                   g.resource.ToString(), g.token, g.holder, g.epoch, g.at.ToIso8601(), e.epoch,
                                   e.at.ToIso8601())});
        break;
      }
    }
  }

  std::sort(out.begin(), out.end(), [](const Violation& a, const Violation& b) {
    return std::tie(a.at, a.kind, a.resource, a.detail) < std::tie(b.at, b.kind, b.resource, b.detail);
  });
  return out;
}

}  // namespace ics::scenarios
