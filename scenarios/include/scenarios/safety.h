// The safety checker: judges a replay's ground truth (true time, as the simulator saw it) against
// the three safety properties of the lease stack (DESIGN.md §5, §6):
//   1. fencing: at each guard, the tokens it accepted for a resource never go backwards;
//   2. mutual exclusion: in true time, no two rovers believe they hold the same resource at once
//      (a rover believes it holds a lease from the true instant its grant notification reached it
//      until its own view ends (valid_until on its clock, mapped to true time), or it released or
//      lapsed the lease, whichever comes first);
//   3. epochs: no grant is issued in an epoch after a later epoch has started.
// The checker is pure: a History in, the violations out (first offences first), so tests can feed
// it fabricated histories with planted violations.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "clock/time.h"
#include "coordinator/protocol.h"

namespace ics::scenarios {

// One rover's belief that it holds a lease, in true time: [from, until).
struct HoldInterval {
  std::string rover;
  clock::NodeNumber rover_id = 0;
  coordinator::ResourceName resource;
  coordinator::FencingToken token = 0;
  coordinator::Epoch epoch = 0;
  clock::DtnTime from;
  clock::DtnTime until;
};

// A guard let an operation through under `token` at true time `at`.
struct GuardAcceptance {
  std::string guard;
  coordinator::ResourceName resource;
  coordinator::FencingToken token = 0;
  clock::NodeNumber source = 0;
  clock::DtnTime at;
};

// The coordinator issued a grant (true time), in `epoch`.
struct GrantIssued {
  coordinator::Epoch epoch = 0;
  coordinator::ResourceName resource;
  coordinator::FencingToken token = 0;
  clock::NodeNumber holder = 0;
  clock::DtnTime at;
};

struct EpochStarted {
  coordinator::Epoch epoch = 0;
  clock::DtnTime at;
};

// Everything the checker needs. Acceptances in the order they happened (true time, then order of
// processing); the other vectors in any order.
struct History {
  std::vector<HoldInterval> holds;
  std::vector<GuardAcceptance> acceptances;
  std::vector<GrantIssued> grants;
  std::vector<EpochStarted> epochs;
};

enum class ViolationKind : std::uint8_t { kTokenBackwards, kOverlappingHolds, kGrantInOldEpoch };
std::string_view ViolationKindName(ViolationKind kind);  // "token_backwards", ...

struct Violation {
  ViolationKind kind = ViolationKind::kOverlappingHolds;
  clock::DtnTime at;             // true time of the offence
  coordinator::ResourceName resource;
  std::string detail;            // the offending events, for a person
};

// All violations, sorted by (at, kind, resource, detail). Empty when the history is safe.
std::vector<Violation> CheckSafety(const History& history);

}  // namespace ics::scenarios
