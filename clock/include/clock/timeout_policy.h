// The timeout policy: every timeout, lease term and renewal moment in the stack is derived here
// from light-time bounds, contact waits, clock error and a processing margin, never hard-coded.
// Each figure carries a one-line explanation of its arithmetic, for logs and operator tools.
#pragma once

#include <expected>
#include <string>

#include "clock/light_time.h"
#include "clock/time.h"

namespace ics::clock {

// A derived duration and how it was derived, e.g.
// "2 x max OWLT 1260s + 2 x contact wait 0s + processing 5s = 2525s".
struct Explained {
  Duration value{0};
  std::string why;
};

// What is known of the path between a requester (a rover) and the coordinator.
struct PathBounds {
  OwltBound owlt;                // one-way light time, either direction
  Duration contact_wait_max{0};  // worst wait for the next contact, for a message in either direction
};

struct PolicyInputs {
  PathBounds path;
  ClockErrorBound requester;      // the rover's clock
  ClockErrorBound coordinator;    // the coordinator's clock
  Duration processing_margin{0};  // queueing and processing at both ends and relays, per round trip

  // The most the requester's and the coordinator's clocks may read apart from their skew bounds
  // alone: |requester skew| + |coordinator skew|. Drift since synchronisation is bounded
  // separately (ClockErrorBound::DriftOver). A time stamped on one clock, moved by this much, is
  // a bound on the other clock (requester deadlines at the coordinator, reply times at the agent).
  Duration SkewSumMax() const {
    const auto abs = [](Duration d) { return d < Duration(0) ? -d : d; };
    return abs(requester.skew) + abs(coordinator.skew);
  }
};

// Pure arithmetic over PolicyInputs; cheap to copy. All durations are rounded up to the
// millisecond so every bound stays conservative.
class TimeoutPolicy {
 public:
  // REQUIRES: 0 <= owlt.min <= owlt.max, contact_wait_max >= 0, processing_margin >= 0,
  // 0 <= drift_ppm < 1e6 on both clocks. Aborts otherwise (validate configuration before).
  explicit TimeoutPolicy(PolicyInputs inputs);
  const PolicyInputs& inputs() const { return in_; }

  // Worst one-way trip: max OWLT + contact wait.
  Explained OneWayMax() const;
  // Worst request/answer round trip: 2 x (max OWLT + contact wait) + processing margin.
  Explained RoundTripMax() const;
  // How long a requester waits for an answer before it may assume the request or answer lost:
  // round trip + the requester's drift over that span.
  Explained RequestTimeout() const;
  // How long without word before a peer may be suspected failed. Never below 2 x max OWLT:
  // max(2 x max OWLT, request timeout) + processing margin.
  Explained SuspicionTimeout() const;

  // The lease term granted for a requested one: the requested term if the holder keeps usable
  // time after the worst round trip and its own drift shortening; otherwise an error whose `why`
  // explains the shortfall ("no usable time: term 30s < round trip 2525s + ...").
  // Refused exactly when requested <= 0, HolderView(requested) <= RoundTripMax() or
  // RenewAt(requested) < 0; the refusal names the shortfall and the shortest usable term.
  // Both sides carry `value` = requested.
  std::expected<Explained, Explained> LeaseTerm(Duration requested) const;
  // The holder's conservative view of a term, counted from when it sent the request:
  // term - holder drift over the term - coordinator drift over the term. Ends, in true time,
  // before the coordinator's view of the same lease ends.
  Explained HolderView(Duration term) const;
  // After the coordinator's view of a lease ends, how long it still waits before re-granting:
  // the drift of both clocks over the term (rounded up), plus 1 ms.
  Explained RegrantMargin(Duration term) const;
  // When, counted from the start of the holder's view, the holder must send its renewal so the
  // renewal can make the worst round trip before its view ends: HolderView(term) - RoundTripMax
  // - requester drift over the round trip. Negative means the lease cannot be renewed in time.
  Explained RenewAt(Duration term) const;

  // The figures alone, without formatting their explanations (for callers on a hot path that
  // need only the duration): each equals the `value` of the method of the same name above.
  Duration OneWayMaxValue() const;
  Duration RoundTripMaxValue() const;
  Duration RequestTimeoutValue() const;
  Duration SuspicionTimeoutValue() const;
  Duration HolderViewValue(Duration term) const;
  Duration RenewAtValue(Duration term) const;
  Duration RegrantMarginValue(Duration term) const;

  // The bundle lifetime of a lease message on this path: long enough to wait out the worst
  // suspicion timeout twice, and at least an hour: max(1 h, 2 x SuspicionTimeout). The
  // coordinator and the agents (daemons and replayer alike) give their messages this lifetime;
  // the agent's unanswered back-off is bounded by half of it.
  Duration MessageLifetimeValue() const;

  // A multi-line summary of every figure (for logs and `--explain` output).
  std::string Describe(Duration term) const;

 private:
  PolicyInputs in_;
};

}  // namespace ics::clock
