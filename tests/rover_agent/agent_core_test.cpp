// Goal: the rover agent core keeps a conservative, drift-shortened view of each lease counted from
// the send time, renews, retransmits, gives up and follows epochs exactly as DESIGN.md §5 says.
// Method: one AgentCore driven with explicit simulated time on a Mars-like policy (OWLT 600 s,
// 50 ppm), playing the coordinator by hand and checking against hand-computed figures.
#include "rover_agent/agent_core.h"

#include <doctest/doctest.h>

#include "rover_agent/agent_test_support.h"

namespace ics::rover_agent {
namespace {

using namespace testing;

// Acquires `Pad()` at kT0 and returns the Acquire that was sent.
co::Acquire Request(AgentCore& core, Duration hold, DtnTime deadline = kT0 + 24h) {
  core.Acquire(AcquireRequest{Pad(), hold, deadline}, kT0);
  AgentOutput out = Drain(core);
  auto acquires = Sent<co::Acquire>(out);
  REQUIRE(acquires.size() == 1);
  REQUIRE(Find(out, Outcome::kRequested));
  return acquires[0];
}

TEST_CASE("agent: the first acquire is persisted, reserves ids and carries term and deadline") {
  AgentCore core(MarsConfig(), {}, kT0);
  CHECK(Drain(core).empty());
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 2h}, kT0);
  AgentOutput out = Drain(core);
  REQUIRE(out.to_persist.size() == 2);
  CHECK(std::get<ReserveRequestIds>(out.to_persist[0]).through == 64);
  const LeaseRecord& r = std::get<PersistLease>(out.to_persist[1]).lease;
  CHECK(r.state == LeaseState::kRequesting);
  CHECK(r.first_sent_at == kT0);
  auto acquires = Sent<co::Acquire>(out);
  REQUIRE(acquires.size() == 1);
  CHECK(acquires[0].h.request_id == 1);
  CHECK(acquires[0].h.epoch == 0);
  CHECK(acquires[0].h.sender == kRover);
  CHECK(acquires[0].term == kTerm);
  CHECK(acquires[0].deadline == kT0 + 2h);
  CHECK(core.NextDeadline() == kT0 + kRequestTimeout);
}

TEST_CASE("agent: valid-until is the send time plus the term less both drifts, whatever the delay") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min);
  // The grant takes 1,205 s to come back; the view still counts from the send at kT0.
  const DtnTime arrival = kT0 + 1205s;
  core.OnMessage(GrantFor(a, 1, 7, kT0 + 4800s), kCoordinator, arrival);
  AgentOutput out = Drain(core);
  auto granted = Find(out, Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->token == 7);
  CHECK(granted->epoch == 1);
  CHECK(granted->valid_until == kT0 + kHolderView);  // kT0 + 3,599,640 ms
  CHECK(core.epoch() == 1);
  AgentStatus status = core.Status(arrival);
  REQUIRE(status.leases.size() == 1);
  CHECK(status.leases[0].state == LeaseState::kHeld);
  CHECK(status.leases[0].remaining == Duration(3'599'640 - 1'205'000));
  CHECK(core.MayUse(Pad(), kT0 + kHolderView - 1ms));
  CHECK_FALSE(core.MayUse(Pad(), kT0 + kHolderView));
  // The hold (30 min from the grant's arrival) ends before the view: no renewal is planned.
  CHECK(core.NextDeadline() == arrival + 30min);
  core.Tick(arrival + 30min);
  out = Drain(core);
  CHECK(Find(out, Outcome::kReleased));
  auto releases = Sent<co::Release>(out);
  REQUIRE(releases.size() == 1);
  CHECK(releases[0].token == 7);
  CHECK(releases[0].h.epoch == 1);
  CHECK_FALSE(core.MayUse(Pad(), arrival + 30min));
}

TEST_CASE("agent: renews one request timeout before RenewAt (at most half of it) while the hold lasts") {
  AgentCore core(MarsConfig(), {}, kT0);
  CHECK(core.RenewOffset() == kRenewOffset);
  const co::Acquire a = Request(core, 3h);
  core.OnMessage(GrantFor(a, 1, 7, kT0 + 4800s), kCoordinator, kT0 + 600s);
  Drain(core);
  // Renewal due at kT0 + 1,194,789 ms: not a millisecond earlier.
  CHECK(core.NextDeadline() == kT0 + kRenewOffset);
  core.Tick(kT0 + kRenewOffset - 1ms);
  CHECK(Drain(core).to_send.empty());
  const DtnTime renew_sent = kT0 + kRenewOffset;
  core.Tick(renew_sent);
  AgentOutput out = Drain(core);
  auto renews = Sent<co::Renew>(out);
  REQUIRE(renews.size() == 1);
  CHECK(renews[0].token == 7);
  CHECK(renews[0].term == kTerm);
  CHECK(renews[0].h.epoch == 1);
  CHECK(renews[0].h.request_id == 2);
  REQUIRE(out.to_persist.size() == 1);  // the renewal's send time, persisted before it is sent
  CHECK(std::get<PersistLease>(out.to_persist[0]).lease.renew_first_sent_at == renew_sent);
  // The worst round trip later the answer arrives, well before the old view ends.
  const DtnTime answer = renew_sent + 1210s;
  CHECK(answer < kT0 + kHolderView);
  core.OnMessage(co::Renewed{FromCoordinator(Pad(), 1, 2), 7, kTerm, answer + 3600s, ""}, kCoordinator,
                 answer);
  out = Drain(core);
  auto renewed = Find(out, Outcome::kRenewed);
  REQUIRE(renewed);
  CHECK(renewed->valid_until == renew_sent + kHolderView);
  CHECK(core.NextDeadline() == renew_sent + kRenewOffset);
}

TEST_CASE("agent: a renewal that meets a coordinator restart still comes back before the view ends") {
  // A 2 h term on the Mars path leaves room for two worst round trips before the view ends:
  //   holder view  = 7,200,000 - 360 - 360          = 7,199,280 ms
  //   renew at     = 7,199,280 - 1,210,000 - 61     = 5,989,219 ms
  //   renew offset = 5,989,219 - 1,210,061          = 4,779,158 ms (more than half of renew at)
  AgentConfig config = MarsConfig();
  config.lease_term = 2h;
  AgentCore core(config, AgentSnapshot{.leases = {}, .reserved_through = 0, .epoch = 1}, kT0);
  CHECK(core.RenewOffset() == Duration(4'779'158));
  core.Acquire(AcquireRequest{Pad(), 5h, kT0 + 1h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  core.OnMessage(GrantFor(a, 1, 7, kT0 + 2h), kCoordinator, kT0 + 1210s);
  REQUIRE(Find(Drain(core), Outcome::kGranted));
  const DtnTime renew_sent = kT0 + Duration(4'779'158);
  CHECK(core.NextDeadline() == renew_sent);
  core.Tick(renew_sent);
  auto renews = Sent<co::Renew>(Drain(core));
  REQUIRE(renews.size() == 1);
  CHECK(renews[0].h.epoch == 1);
  // The coordinator restarted meanwhile: the renewal comes back StaleEpoch after a worst round
  // trip, is resent at once in epoch 2, and that answer takes a worst round trip too.
  const DtnTime stale_at = renew_sent + 1210s;
  core.OnMessage(co::StaleEpoch{FromCoordinator(Pad(), 1, renews[0].h.request_id), 2}, kCoordinator,
                 stale_at);
  auto resent = Sent<co::Renew>(Drain(core));
  REQUIRE(resent.size() == 1);
  CHECK(resent[0].h.epoch == 2);
  CHECK(resent[0].h.request_id == renews[0].h.request_id);
  const DtnTime renewed_at = stale_at + 1210s;  // 7,199,158 ms after kT0
  CHECK(renewed_at < kT0 + Duration(7'199'280));
  CHECK(core.MayUse(Pad(), renewed_at));
  core.OnMessage(co::Renewed{FromCoordinator(Pad(), 2, renews[0].h.request_id), 7, 2h, renewed_at + 2h, ""},
                 kCoordinator, renewed_at);
  auto renewed = Find(Drain(core), Outcome::kRenewed);
  REQUIRE(renewed);
  // Counted from the FIRST send of the renewal (in epoch 1), as always.
  CHECK(renewed->valid_until == renew_sent + Duration(7'199'280));
  CHECK(core.counters().lapsed == 0);
}

TEST_CASE("agent: stops at the end of its own view when no renewal answer comes") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 5h);
  core.OnMessage(GrantFor(a, 1, 7, kT0 + 4800s), kCoordinator, kT0 + 600s);
  Drain(core);
  core.Tick(kT0 + kRenewOffset);
  REQUIRE(Sent<co::Renew>(Drain(core)).size() == 1);
  // Unanswered: retransmitted once, a request timeout later (1,194,789 + 1,210,061 = 2,404,850
  // ms); the next one would fall after the view's end (3,614,911 > 3,599,640 ms), so the agent
  // stops there and says so, and releases, instead of retransmitting.
  CHECK(core.NextDeadline() == kT0 + kRenewOffset + kRequestTimeout);
  core.Tick(kT0 + kRenewOffset + kRequestTimeout);
  REQUIRE(Sent<co::Renew>(Drain(core)).size() == 1);
  CHECK(kRenewOffset + 2 * kRequestTimeout > kHolderView);
  CHECK(core.NextDeadline() == kT0 + kHolderView);
  CHECK(core.MayUse(Pad(), kT0 + kHolderView - 1ms));
  core.Tick(kT0 + kHolderView);
  AgentOutput out = Drain(core);
  CHECK(Find(out, Outcome::kLapsed));
  CHECK(Sent<co::Renew>(out).empty());
  CHECK(Sent<co::Release>(out).size() == 1);
  CHECK_FALSE(core.MayUse(Pad(), kT0 + kHolderView));
  CHECK_FALSE(core.MakeUse(Pad(), "dock", kT0 + kHolderView));
  // A Renewed that limps in afterwards does not resurrect the lease.
  core.OnMessage(co::Renewed{FromCoordinator(Pad(), 1, 2), 7, kTerm, kT0 + 9000s, ""}, kCoordinator,
                 kT0 + kHolderView + 1s);
  out = Drain(core);
  CHECK_FALSE(Find(out, Outcome::kRenewed));
  CHECK_FALSE(core.MayUse(Pad(), kT0 + kHolderView + 1s));
  AgentStatus status = core.Status(kT0 + kHolderView + 1s);
  REQUIRE(status.leases.size() == 1);
  CHECK(status.leases[0].state == LeaseState::kReleasing);
}

TEST_CASE("agent: retransmits an unanswered acquire after the request timeout with the same id") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min);
  CHECK(core.NextDeadline() == kT0 + kRequestTimeout);  // kT0 + 1,210,061 ms
  core.Tick(kT0 + kRequestTimeout - 1ms);
  CHECK(Drain(core).to_send.empty());
  core.Tick(kT0 + kRequestTimeout);
  auto again = Sent<co::Acquire>(Drain(core));
  REQUIRE(again.size() == 1);
  CHECK(again[0].h.request_id == a.h.request_id);
  CHECK(again[0].deadline == a.deadline);
  CHECK(core.counters().retransmissions == 1);
  // A grant for it still counts from the FIRST send.
  core.OnMessage(GrantFor(a, 1, 3, kT0), kCoordinator, kT0 + kRequestTimeout + 1300s);
  auto granted = Find(Drain(core), Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->valid_until == kT0 + kHolderView);
}

TEST_CASE("agent: gives up at the wait deadline and releases a grant that arrives later") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min, kT0 + 1000s);
  CHECK(core.NextDeadline() == kT0 + 1000s);
  core.Tick(kT0 + 1000s);
  AgentOutput out = Drain(core);
  CHECK(Find(out, Outcome::kGaveUp));
  REQUIRE(out.to_persist.size() == 1);
  CHECK(std::get<ForgetLease>(out.to_persist[0]).acquire_request_id == a.h.request_id);
  CHECK_FALSE(core.NextDeadline());
  core.OnMessage(GrantFor(a, 1, 11, kT0 + 4000s), kCoordinator, kT0 + 1250s);
  out = Drain(core);
  CHECK_FALSE(Find(out, Outcome::kGranted));
  auto releases = Sent<co::Release>(out);
  REQUIRE(releases.size() == 1);
  CHECK(releases[0].token == 11);
  CHECK(releases[0].h.resource == Pad());
  CHECK(releases[0].h.epoch == 1);
  CHECK(core.counters().unexpected_released == 1);
  CHECK_FALSE(core.MayUse(Pad(), kT0 + 1250s));
}

TEST_CASE("agent: a grant already over on arrival is released and asked for again before the deadline") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min, kT0 + 5h);
  const DtnTime late = kT0 + kHolderView + 1s;
  core.OnMessage(GrantFor(a, 1, 4, kT0), kCoordinator, late);
  AgentOutput out = Drain(core);
  CHECK(out.notifications.empty());  // the requester is still waiting
  auto releases = Sent<co::Release>(out);
  REQUIRE(releases.size() == 1);
  CHECK(releases[0].token == 4);
  auto again = Sent<co::Acquire>(out);
  REQUIRE(again.size() == 1);
  CHECK(again[0].h.request_id > a.h.request_id);
  CHECK(again[0].deadline == kT0 + 5h);
  CHECK(core.counters().rerequested == 1);
  // The next grant counts from the new send.
  core.OnMessage(GrantFor(again[0], 1, 5, late), kCoordinator, late + 1200s);
  auto granted = Find(Drain(core), Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->valid_until == late + kHolderView);
}

TEST_CASE("agent: a grant already over on arrival past the deadline is never used and is released") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min, kT0 + kHolderView);
  // No reply for a long time: the grant arrives after kT0 + holder view (and the deadline).
  core.OnMessage(GrantFor(a, 1, 4, kT0), kCoordinator, kT0 + kHolderView + 1s);
  AgentOutput out = Drain(core);
  CHECK_FALSE(Find(out, Outcome::kGranted));
  CHECK(Find(out, Outcome::kLapsed));
  CHECK(Sent<co::Release>(out).size() == 1);
}

TEST_CASE("agent: after a Queued reply the view counts from one worst one-way trip before it arrived") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min);
  core.OnMessage(co::Queued{FromCoordinator(Pad(), 1, a.h.request_id), 2}, kCoordinator, kT0 + 1200s,
                 kT0 + 1200s);
  AgentOutput out = Drain(core);
  auto queued = Find(out, Outcome::kQueued);
  REQUIRE(queued);
  CHECK(queued->queue_position == 2);
  // Proof the request was still waiting: 1,200,000 - 600,000 - ceil(600,000 x 50e-6) = 599,970 ms.
  REQUIRE(out.to_persist.size() == 2);  // the epoch learned, and the proof
  CHECK(std::get<LearnEpoch>(out.to_persist[0]).epoch == 1);
  CHECK(std::get<PersistLease>(out.to_persist[1]).lease.count_from == kT0 + Duration(599'970));
  // Still queued, the agent keeps asking (same id), so the proof stays fresh.
  core.Tick(kT0 + kRequestTimeout);
  REQUIRE(Sent<co::Acquire>(Drain(core)).size() == 1);
  // Granted later: valid until 599,970 + 3,599,640 = 4,199,610 ms after kT0, not 3,599,640.
  core.OnMessage(GrantFor(a, 1, 4, kT0), kCoordinator, kT0 + 4000s);
  auto granted = Find(Drain(core), Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->valid_until == kT0 + Duration(4'199'610));
}

TEST_CASE("agent: a Queued reply held in a store past a one-way trip proves only its creation time") {
  // A relay's outage (or our own restart before we confirmed it) can hold a Queued reply for much
  // longer than a one-way trip; the coordinator may have granted meanwhile. The proof must then
  // come from the bundle's creation time (coordinator clock), less both clocks' skew bounds.
  clock::PolicyInputs in = MarsPolicy().inputs();
  in.requester.skew = 2s;
  in.coordinator.skew = -3s;  // a bound: its sign does not matter
  AgentConfig config = MarsConfig();
  config.policy = clock::TimeoutPolicy(in);
  AgentCore core(config, {}, kT0);
  const co::Acquire a = Request(core, 30min);
  // Created at kT0 + 100 s, delivered at kT0 + 5 h. The trip bound alone would give
  // 5 h - 600,030 ms = 17,399,970 ms, hours after a grant the coordinator may have made.
  core.OnMessage(co::Queued{FromCoordinator(Pad(), 1, a.h.request_id), 1}, kCoordinator, kT0 + 5h, kT0 + 100s);
  AgentOutput out = Drain(core);
  REQUIRE(out.to_persist.size() == 2);
  // 100,000 - 2,000 - 3,000 = 95,000 ms after kT0.
  CHECK(std::get<PersistLease>(out.to_persist[1]).lease.count_from == kT0 + Duration(95'000));
}

TEST_CASE("agent: a Queued reply without a creation time moves no count") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min);
  core.OnMessage(co::Queued{FromCoordinator(Pad(), 1, a.h.request_id), 1}, kCoordinator, kT0 + 1200s);
  AgentOutput out = Drain(core);
  REQUIRE(Find(out, Outcome::kQueued));
  for (const auto& record : out.to_persist) CHECK_FALSE(std::holds_alternative<PersistLease>(record));
  // The grant then counts from the Acquire's first send.
  core.OnMessage(GrantFor(a, 1, 4, kT0), kCoordinator, kT0 + 1300s);
  auto granted = Find(Drain(core), Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->valid_until == kT0 + Duration(3'599'640));
}

TEST_CASE("agent: adopts the epoch of a StaleEpoch and resends the refused message with it") {
  AgentSnapshot snapshot;
  snapshot.epoch = 3;
  AgentCore core(MarsConfig(), snapshot, kT0);
  const co::Acquire a = Request(core, 30min);
  CHECK(a.h.epoch == 3);
  core.OnMessage(co::StaleEpoch{FromCoordinator(Pad(), 3, a.h.request_id), 4}, kCoordinator, kT0 + 1200s);
  AgentOutput out = Drain(core);
  REQUIRE(out.to_persist.size() == 1);
  CHECK(std::get<LearnEpoch>(out.to_persist[0]).epoch == 4);
  auto resent = Sent<co::Acquire>(out);
  REQUIRE(resent.size() == 1);
  CHECK(resent[0].h.epoch == 4);
  CHECK(resent[0].h.request_id == a.h.request_id);
  CHECK(core.epoch() == 4);
  CHECK(core.counters().stale_epoch_resent == 1);
  // A StaleEpoch naming an older "current" epoch is not acted upon.
  core.OnMessage(co::StaleEpoch{FromCoordinator(Pad(), 3, a.h.request_id), 2}, kCoordinator, kT0 + 1300s);
  CHECK(Drain(core).empty());
  CHECK(core.counters().old_epoch_dropped == 1);
}

TEST_CASE("agent: never acts on a message from an epoch older than the one it knows") {
  AgentSnapshot snapshot;
  snapshot.epoch = 5;
  AgentCore core(MarsConfig(), snapshot, kT0);
  const co::Acquire a = Request(core, 30min);
  core.OnMessage(GrantFor(a, 4, 9, kT0 + 4800s), kCoordinator, kT0 + 1200s);
  CHECK(Drain(core).empty());
  CHECK(core.counters().old_epoch_dropped == 1);
  CHECK_FALSE(core.MayUse(Pad(), kT0 + 1200s));
  core.OnMessage(co::Deny{FromCoordinator(Pad(), 4, a.h.request_id), co::DenyReason::kOverloaded, "old"},
                 kCoordinator, kT0 + 1201s);
  CHECK(Drain(core).empty());
  CHECK(core.counters().old_epoch_dropped == 2);
  // The same grant in the current epoch is taken.
  core.OnMessage(GrantFor(a, 5, 9, kT0 + 4800s), kCoordinator, kT0 + 1202s);
  CHECK(Find(Drain(core), Outcome::kGranted));
}

TEST_CASE("agent: drops coordinator messages from another node or with a forged sender") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min);
  core.OnMessage(GrantFor(a, 1, 9, kT0 + 4800s), /*source=*/77, kT0 + 1200s);
  co::Grant forged = GrantFor(a, 1, 9, kT0 + 4800s);
  forged.h.sender = 77;
  core.OnMessage(forged, kCoordinator, kT0 + 1200s);
  CHECK(Drain(core).empty());
  CHECK(core.counters().foreign_dropped == 2);
  CHECK_FALSE(core.MayUse(Pad(), kT0 + 1200s));
}

TEST_CASE("agent: a denied request is reported and forgotten") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min);
  core.OnMessage(
      co::Deny{FromCoordinator(Pad(), 1, a.h.request_id), co::DenyReason::kTermTooShort, "too short"},
      kCoordinator, kT0 + 1200s);
  AgentOutput out = Drain(core);
  auto denied = Find(out, Outcome::kDenied);
  REQUIRE(denied);
  CHECK(denied->reason.find("too short") != std::string::npos);
  CHECK(core.Status(kT0 + 1200s).leases.empty());
}

TEST_CASE("agent: refuses control requests it cannot honour, sending nothing") {
  AgentCore core(MarsConfig(), {}, kT0);
  core.Acquire(AcquireRequest{Pad("", "x"), 1h, kT0 + 1h}, kT0);
  core.Acquire(AcquireRequest{Pad(), 0s, kT0 + 1h}, kT0);
  core.Acquire(AcquireRequest{Pad(), 1h, kT0}, kT0);
  core.Release(Pad(), kT0);
  AgentOutput out = Drain(core);
  CHECK(out.to_send.empty());
  CHECK(out.to_persist.empty());
  REQUIRE(out.notifications.size() == 4);
  for (const Notification& n : out.notifications) CHECK(n.outcome == Outcome::kRefused);
  Request(core, 1h);
  core.Acquire(AcquireRequest{Pad(), 1h, kT0 + 1h}, kT0);
  auto again = Find(Drain(core), Outcome::kRefused);
  REQUIRE(again);
  CHECK(again->reason.find("already requested") != std::string::npos);
}

TEST_CASE("agent: the use helper presents the lease's fencing token while the view lasts") {
  AgentCore core(MarsConfig(), {}, kT0);
  CHECK_FALSE(core.MakeUse(Pad(), "dock", kT0));
  const co::Acquire a = Request(core, 30min);
  core.OnMessage(GrantFor(a, 2, 41, kT0 + 4800s), kCoordinator, kT0 + 1200s);
  Drain(core);
  auto use = core.MakeUse(Pad(), "dock", kT0 + 1200s);
  REQUIRE(use);
  CHECK(use->token == 41);
  CHECK(use->operation == "dock");
  CHECK(use->h.resource == Pad());
  CHECK(use->h.sender == kRover);
  CHECK(use->h.epoch == 2);
  // A guard that has seen a higher token ends the lease at once.
  core.OnMessage(co::UseRejected{co::Header{Pad(), 2, a.h.request_id, 30}, 41, 42, "superseded"}, 30,
                 kT0 + 1201s);
  AgentOutput out = Drain(core);
  CHECK(Find(out, Outcome::kUseRejected));
  CHECK(Find(out, Outcome::kLapsed));
  CHECK_FALSE(core.MayUse(Pad(), kT0 + 1201s));
}

TEST_CASE("agent: an explicit release stops use at once and retries until Released") {
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 3h);
  core.OnMessage(GrantFor(a, 1, 7, kT0 + 4800s), kCoordinator, kT0 + 1200s);
  Drain(core);
  core.Release(Pad(), kT0 + 1300s);
  AgentOutput out = Drain(core);
  CHECK(Find(out, Outcome::kReleased));
  auto releases = Sent<co::Release>(out);
  REQUIRE(releases.size() == 1);
  CHECK_FALSE(core.MayUse(Pad(), kT0 + 1300s));
  core.Tick(kT0 + 1300s + kRequestTimeout);
  auto again = Sent<co::Release>(Drain(core));
  REQUIRE(again.size() == 1);
  CHECK(again[0].h.request_id == releases[0].h.request_id);
  core.OnMessage(co::Released{FromCoordinator(Pad(), 1, releases[0].h.request_id), 7}, kCoordinator,
                 kT0 + 1300s + kRequestTimeout + 1s);
  out = Drain(core);
  REQUIRE(out.to_persist.size() == 1);
  CHECK(std::get<ForgetLease>(out.to_persist[0]).acquire_request_id == a.h.request_id);
  CHECK(core.Status(kT0 + 4000s).leases.empty());
  CHECK_FALSE(core.NextDeadline());
}

TEST_CASE("agent: a grant lost on the way whose lease has ended is asked for again while the wait allows") {
  // The coordinator answers a retransmitted Acquire whose grant it already ended with Released
  // (or ExpiredNotice): the lease is over and nothing needs releasing. Before the wait deadline
  // the agent asks again under a new id, counted from the new send; after it, it reports lapsed.
  AgentCore core(MarsConfig(), {}, kT0);
  const co::Acquire a = Request(core, 30min, kT0 + 24h);
  const DtnTime at = kT0 + 3h;
  core.OnMessage(co::Released{FromCoordinator(Pad(), 1, a.h.request_id), 7}, kCoordinator, at);
  AgentOutput out = Drain(core);
  CHECK_FALSE(Find(out, Outcome::kLapsed));
  CHECK(Sent<co::Release>(out).empty());
  auto again = Sent<co::Acquire>(out);
  REQUIRE(again.size() == 1);
  CHECK(again[0].h.request_id != a.h.request_id);
  CHECK(again[0].deadline == kT0 + 24h);
  CHECK(core.counters().rerequested == 1);
  CHECK(core.counters().lapsed == 0);
  // The old record is forgotten and the new one persisted, counted from now.
  bool forgot_old = false;
  bool persisted_new = false;
  for (const auto& p : out.to_persist) {
    if (const auto* f = std::get_if<ForgetLease>(&p)) forgot_old |= f->acquire_request_id == a.h.request_id;
    if (const auto* l = std::get_if<PersistLease>(&p)) {
      persisted_new |= l->lease.acquire_request_id == again[0].h.request_id && l->lease.first_sent_at == at &&
                       l->lease.count_from == at;
    }
  }
  CHECK(forgot_old);
  CHECK(persisted_new);
  // The new request is granted normally, its view counted from its own first send.
  core.OnMessage(GrantFor(again[0], 1, 8, at + 4800s), kCoordinator, at + 1200s);
  out = Drain(core);
  auto granted = Find(out, Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->token == 8);
  CHECK(core.MayUse(Pad(), at + 1200s));

  // The same answer after the wait deadline: lapsed, nothing sent.
  AgentCore late(MarsConfig(), {}, kT0);
  const co::Acquire b = Request(late, 30min, kT0 + 2h);
  late.OnMessage(co::ExpiredNotice{FromCoordinator(Pad(), 1, b.h.request_id), 7}, kCoordinator, kT0 + 2h + 1s);
  out = Drain(late);
  CHECK(Find(out, Outcome::kLapsed));
  CHECK(Sent<co::Acquire>(out).empty());
  CHECK(late.counters().rerequested == 0);
  CHECK(late.counters().lapsed == 1);
  CHECK(late.Status(kT0 + 3h).leases.empty());
}

}  // namespace
}  // namespace ics::rover_agent
