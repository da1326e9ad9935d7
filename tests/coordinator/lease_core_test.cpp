// Goal: the lease core keeps DESIGN.md §5's promises (FIFO grants with rising fencing tokens,
// on-time expiry with the drift hold-off, deadlines, epochs, idempotent duplicates, restart, bounds).
// Method: drive one core through the test harness with explicit times and hand-built policies,
// jumping straight to deadlines, and compare every message and log record with hand-computed values.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core_harness.h"

namespace ics::coordinator::testing {
namespace {

const ResourceName kPad{"mars", "charging_pad"};
const DtnTime kFar = kT0 + Duration(86'400'000);  // a deadline a day away

TEST_CASE("lease core: contention is served first in first out with queue positions") {
  Harness h;
  const Grant g1 = Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  CHECK(g1.token == 1);
  CHECK(g1.expires == kT0 + 60s);
  CHECK(g1.term == 60s);
  CHECK(g1.policy.find("granted") != std::string::npos);
  CHECK(Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0 + 1s), 3).position == 1);
  CHECK(Only<Queued>(h.AcquireAt(4, 1, kPad, 60s, kFar, kT0 + 2s), 4).position == 2);
  CHECK(Only<Queued>(h.AcquireAt(5, 9, kPad, 60s, kFar, kT0 + 3s), 5).position == 3);

  // The holder releases: Released to it first, then the grant to the first waiter.
  const auto out = h.ReleaseAt(2, 1, kPad, 1, kT0 + 10s);
  REQUIRE(out.size() == 2);
  CHECK(out[0].to == 2);
  CHECK(std::get<Released>(out[0].message).token == 1);
  CHECK(out[1].to == 3);
  const Grant g2 = std::get<Grant>(out[1].message);
  CHECK(g2.token == 2);
  CHECK(g2.expires == kT0 + 70s);
  // Positions moved up.
  CHECK(Only<Queued>(h.AcquireAt(4, 1, kPad, 60s, kFar, kT0 + 11s), 4).position == 1);
  CHECK(Only<Queued>(h.AcquireAt(5, 9, kPad, 60s, kFar, kT0 + 11s), 5).position == 2);
  CHECK(std::get<Grant>(h.ReleaseAt(3, 1, kPad, 2, kT0 + 20s)[1].message).token == 3);
  CHECK(h.log->LoadState().value() == h.core->Snapshot());
}

TEST_CASE("lease core: renewal extends the coordinator's view and never shortens it") {
  Harness h;
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  const Renewed r = Only<Renewed>(h.RenewAt(2, 1, kPad, 1, 60s, kT0 + 30s), 2);
  CHECK(r.token == 1);
  CHECK(r.expires == kT0 + 90s);
  CHECK(h.core->NextDeadline() == kT0 + 90s);
  // A shorter renewal keeps the later expiry.
  CHECK(Only<Renewed>(h.RenewAt(2, 1, kPad, 1, 30s, kT0 + 40s), 2).expires == kT0 + 90s);
  REQUIRE(h.last_persisted.size() == 1);
  CHECK(h.last_persisted[0].kind == EventKind::kRenew);
  CHECK(h.last_persisted[0].lease_expires == kT0 + 90s);
  // Nothing happens at the old expiry.
  CHECK(h.TickAt(kT0 + 60s).empty());
  // Wrong token, wrong node: not the holder; the lease is unchanged.
  CHECK(Only<Deny>(h.RenewAt(2, 1, kPad, 7, 60s, kT0 + 61s), 2).reason == DenyReason::kNotHolder);
  CHECK(Only<Deny>(h.RenewAt(3, 1, kPad, 1, 60s, kT0 + 61s), 3).reason == DenyReason::kNotHolder);
  // A term with no usable time is refused with the policy's explanation; the lease is unchanged.
  const Deny d = Only<Deny>(h.RenewAt(2, 1, kPad, 1, 20s, kT0 + 62s), 2);
  CHECK(d.reason == DenyReason::kTermTooShort);
  CHECK(d.detail.find("no usable time") != std::string::npos);
  CHECK(h.core->NextDeadline() == kT0 + 90s);
  CHECK(h.log->LoadState().value() == h.core->Snapshot());
}

TEST_CASE("lease core: expiry is on time and re-grant waits for the drift margin at the configured bound") {
  Harness h;
  // Holder drift 100 ppm, coordinator drift 50 ppm. Over a 600 s term: ceil(600000 * 100e-6) = 60 ms
  // and ceil(600000 * 50e-6) = 30 ms, so the regrant margin is 60 + 30 + 1 = 91 ms.
  h.default_inputs.requester.drift_ppm = 100;
  h.default_inputs.coordinator.drift_ppm = 50;
  Only<Grant>(h.AcquireAt(2, 1, kPad, 600s, kFar, kT0), 2);
  Only<Queued>(h.AcquireAt(3, 1, kPad, 600s, kFar, kT0 + 1s), 3);
  CHECK(h.core->NextDeadline() == kT0 + 600s);
  CHECK(h.TickAt(kT0 + 600s - 1ms).empty());

  const ExpiredNotice n = Only<ExpiredNotice>(h.TickAt(kT0 + 600s), 2);
  CHECK(n.token == 1);
  REQUIRE(h.last_persisted.size() == 1);
  const LogRecord& expiry = h.last_persisted[0];
  CHECK(expiry.kind == EventKind::kExpiry);
  CHECK(expiry.token == 1);
  CHECK(expiry.regrant_at == kT0 + 600'091ms);
  CHECK(expiry.policy.find("regrant margin") != std::string::npos);

  CHECK(h.core->NextDeadline() == kT0 + 600'091ms);
  CHECK(h.TickAt(kT0 + 600'090ms).empty());
  const Grant g = Only<Grant>(h.TickAt(kT0 + 600'091ms), 3);
  CHECK(g.token == 2);
  CHECK(g.expires == kT0 + 600'091ms + 600s);

  // The old holder's late renew and release are refused: its lease ended by expiry.
  CHECK(Only<Deny>(h.RenewAt(2, 1, kPad, 1, 600s, kT0 + 601s), 2).reason == DenyReason::kExpired);
  CHECK(Only<Deny>(h.ReleaseAt(2, 1, kPad, 1, kT0 + 601s), 2).reason == DenyReason::kExpired);
  CHECK(h.log->LoadState().value() == h.core->Snapshot());
}

TEST_CASE("lease core: a new request during the hold-off is queued and granted when it ends") {
  Harness h;  // no drift: margin = 1 ms
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  Only<ExpiredNotice>(h.TickAt(kT0 + 60s), 2);
  CHECK(Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0 + 60s), 3).position == 1);
  CHECK(Only<Grant>(h.TickAt(kT0 + 60'001ms), 3).token == 2);
  // After the hold-off a free resource is granted at once.
  Only<Released>(h.ReleaseAt(3, 1, kPad, 2, kT0 + 70s), 3);
  CHECK(Only<Grant>(h.AcquireAt(4, 1, kPad, 60s, kFar, kT0 + 70s), 4).token == 3);
}

TEST_CASE("lease core: release is idempotent and renew after release is refused") {
  Harness h;
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  CHECK(Only<Released>(h.ReleaseAt(2, 1, kPad, 1, kT0 + 5s), 2).token == 1);
  CHECK(CountKind(h.last_persisted, EventKind::kRelease) == 1);
  // A duplicate release: Released again, nothing logged, nothing changes.
  CHECK(Only<Released>(h.ReleaseAt(2, 1, kPad, 1, kT0 + 6s), 2).token == 1);
  CHECK(h.last_persisted.empty());
  // A reordered renew arriving after the release.
  CHECK(Only<Deny>(h.RenewAt(2, 1, kPad, 1, 60s, kT0 + 7s), 2).reason == DenyReason::kNotHolder);
  // A release of a token never issued.
  CHECK(Only<Deny>(h.ReleaseAt(2, 1, kPad, 9, kT0 + 8s), 2).reason == DenyReason::kNotHolder);
  // Nothing left to expire.
  CHECK(h.TickAt(kT0 + 100s).empty());
}

TEST_CASE("lease core: duplicate acquires are answered idempotently") {
  Harness h;
  const Grant g = Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  // The same request again (a retransmission, or the bundle layer duplicating it).
  const Grant again = Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0 + 2s), 2);
  CHECK(again.token == g.token);
  CHECK(again.expires == g.expires);
  CHECK(h.last_persisted.empty());
  // A queued duplicate gets its current position, no second queue entry.
  CHECK(Only<Queued>(h.AcquireAt(3, 5, kPad, 60s, kFar, kT0 + 3s), 3).position == 1);
  CHECK(Only<Queued>(h.AcquireAt(3, 5, kPad, 60s, kFar, kT0 + 4s), 3).position == 1);
  CHECK(h.core->Snapshot().resources.at(kPad).waiters.size() == 1);
  // A denied request is denied the same way.
  const Deny d = Only<Deny>(h.AcquireAt(4, 1, kPad, 5s, kFar, kT0 + 5s), 4);
  CHECK(d.reason == DenyReason::kTermTooShort);
  const Deny d2 = Only<Deny>(h.AcquireAt(4, 1, kPad, 5s, kFar, kT0 + 6s), 4);
  CHECK(d2.reason == d.reason);
  CHECK(d2.detail == d.detail);
  CHECK(h.last_persisted.empty());
  // After the grant ended: the answer says so (no second grant).
  const auto released = h.ReleaseAt(2, 1, kPad, 1, kT0 + 10s);  // and grants token 2 to node 3
  REQUIRE(released.size() == 2);
  CHECK(std::get<Released>(released[0].message).token == 1);
  CHECK(Only<Released>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0 + 11s), 2).token == 1);
  CHECK(Only<Grant>(h.AcquireAt(3, 5, kPad, 60s, kFar, kT0 + 12s), 3).token == 2);
  // The same id for another resource is refused.
  CHECK(Only<Deny>(h.AcquireAt(3, 5, ResourceName{"mars", "drill"}, 60s, kFar, kT0 + 13s), 3).reason ==
        DenyReason::kBadRequest);
}

TEST_CASE("lease core: requester deadlines are checked conservatively on arrival") {
  Harness h;
  // Requester skew 2 s, coordinator skew 1 s: provably ahead iff now + 3 s < deadline.
  h.default_inputs.requester.skew = 2s;
  h.default_inputs.coordinator.skew = 1s;
  const Deny d = Only<Deny>(h.AcquireAt(2, 1, kPad, 60s, kT0 + 3s, kT0), 2);
  CHECK(d.reason == DenyReason::kDeadlinePassed);
  CHECK(d.detail.find("not provably ahead") != std::string::npos);
  REQUIRE(h.last_persisted.size() == 1);
  CHECK(h.last_persisted[0].kind == EventKind::kDeny);
  CHECK(h.last_persisted[0].deadline == kT0 + 3s);
  CHECK(Only<Deny>(h.AcquireAt(2, 2, kPad, 60s, kT0 - 1s, kT0), 2).reason == DenyReason::kDeadlinePassed);
  CHECK(Only<Grant>(h.AcquireAt(2, 3, kPad, 60s, kT0 + 3'001ms, kT0), 2).token == 1);
}

TEST_CASE("lease core: a waiter whose deadline passes while queued is dropped and never granted") {
  Harness h;
  h.default_inputs.requester.skew = 2s;
  h.default_inputs.coordinator.skew = 1s;
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kT0 + 30s, kT0 + 1s), 3);  // gives up at kT0 + 27 s
  Only<Queued>(h.AcquireAt(4, 1, kPad, 60s, kFar, kT0 + 2s), 4);
  CHECK(h.core->NextDeadline() == kT0 + 27s);
  CHECK(h.TickAt(kT0 + 27s - 1ms).empty());
  const Deny d = Only<Deny>(h.TickAt(kT0 + 27s), 3);
  CHECK(d.reason == DenyReason::kDeadlinePassed);
  CHECK(Only<Queued>(h.AcquireAt(4, 1, kPad, 60s, kFar, kT0 + 28s), 4).position == 1);
  // Its duplicate gets the same deny.
  CHECK(Only<Deny>(h.AcquireAt(3, 1, kPad, 60s, kT0 + 30s, kT0 + 29s), 3).reason ==
        DenyReason::kDeadlinePassed);
  const auto out = h.ReleaseAt(2, 1, kPad, 1, kT0 + 40s);
  REQUIRE(out.size() == 2);
  CHECK(out[1].to == 4);
  CHECK(h.log->LoadState().value() == h.core->Snapshot());
}

TEST_CASE("lease core: a waiter giving up at the instant the hold-off ends is not granted") {
  Harness h;  // no drift: regrant margin 1 ms
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  // Deadline exactly at the regrant instant (no skew): gives up at kT0 + 60.001 s.
  Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kT0 + 60'001ms, kT0 + 1s), 3);
  Only<ExpiredNotice>(h.TickAt(kT0 + 60s), 2);
  const auto out = h.TickAt(kT0 + 60'001ms);
  CHECK(Only<Deny>(out, 3).reason == DenyReason::kDeadlinePassed);
  CHECK_FALSE(h.core->Snapshot().resources.at(kPad).lease.has_value());
}

TEST_CASE(
    "lease core: stale epochs are refused and logged while future epochs and epoch 0 renewals are bad "
    "requests") {
  Harness h(/*epoch=*/5);
  // Epoch 0 acquire: "no epoch known yet", accepted.
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0, /*epoch=*/0), 2);
  // An old-epoch release is not acted upon, even with the right token.
  const StaleEpoch s = Only<StaleEpoch>(h.ReleaseAt(2, 1, kPad, 1, kT0 + 1s, /*epoch=*/4), 2);
  CHECK(s.current == 5);
  CHECK(s.h.epoch == 5);
  REQUIRE(h.last_persisted.size() == 1);
  CHECK(h.last_persisted[0].kind == EventKind::kStaleEpoch);
  CHECK(h.last_persisted[0].token == 1);
  CHECK(h.core->Snapshot().resources.at(kPad).lease.has_value());
  // Old-epoch acquire: refused too.
  CHECK(Only<StaleEpoch>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0 + 2s, /*epoch=*/1), 3).current == 5);
  CHECK(h.core->Snapshot().resources.at(kPad).waiters.empty());
  // A future epoch.
  const Deny f = Only<Deny>(h.RenewAt(2, 1, kPad, 1, 60s, kT0 + 3s, /*epoch=*/6), 2);
  CHECK(f.reason == DenyReason::kBadRequest);
  CHECK(f.detail.find("newer") != std::string::npos);
  // Epoch 0 outside an acquire.
  CHECK(Only<Deny>(h.RenewAt(2, 1, kPad, 1, 60s, kT0 + 4s, /*epoch=*/0), 2).reason ==
        DenyReason::kBadRequest);
  CHECK(h.core->NextDeadline() == kT0 + 60s);  // nothing renewed
}

TEST_CASE("lease core: a header sender that is not the bundle source is refused") {
  Harness h;
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  // Node 3 claims to be node 2 and releases node 2's lease.
  const auto out = h.Deliver(3, Release{h.H(2, 1, kPad), 1}, kT0 + 1s);
  CHECK(Only<Deny>(out, 3).reason == DenyReason::kBadRequest);
  CHECK(h.core->Snapshot().resources.at(kPad).lease->holder == 2);
  REQUIRE(h.last_persisted.size() == 1);
  CHECK(h.last_persisted[0].rover == 3);
  CHECK(h.last_persisted[0].reason.find("not the bundle source") != std::string::npos);
  // Messages meant for agents or guards are logged and not answered.
  CHECK(h.Deliver(2, Grant{h.H(2, 1, kPad), 1, 60s, kT0, ""}, kT0 + 2s).empty());
  CHECK(CountKind(h.last_persisted, EventKind::kDeny) == 1);
}

TEST_CASE("lease core: two tenants with the same resource name are independent") {
  Harness h;
  const ResourceName a{"tenant-a", "printer"};
  const ResourceName b{"tenant-b", "printer"};
  CHECK(Only<Grant>(h.AcquireAt(2, 1, a, 60s, kFar, kT0), 2).token == 1);
  CHECK(Only<Grant>(h.AcquireAt(3, 1, b, 60s, kFar, kT0), 3).token == 1);
  // A release in one tenant does not touch the other.
  CHECK(Only<Deny>(h.ReleaseAt(3, 1, a, 1, kT0 + 1s), 3).reason == DenyReason::kNotHolder);
  Only<Released>(h.ReleaseAt(2, 1, a, 1, kT0 + 2s), 2);
  CHECK(h.core->Snapshot().resources.at(b).lease->holder == 3);
}

TEST_CASE(
    "lease core: restart restores leases and continues tokens and re-grants only after provable expiry") {
  auto log = std::make_shared<InMemoryLeaseLog>();
  REQUIRE(log->StartEpoch("start", kT0).value() == 1);
  {
    Harness h(1, {}, {}, kT0, log);
    Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
    Only<Released>(h.ReleaseAt(2, 1, kPad, 1, kT0 + 1s), 2);       // token 1 used and gone
    Only<Grant>(h.AcquireAt(2, 2, kPad, 60s, kFar, kT0 + 2s), 2);  // token 2, expires kT0 + 62 s
    Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0 + 3s), 3);
  }  // crash: the core is gone, the log remains
  REQUIRE(log->StartEpoch("restart", kT0 + 10s).value() == 2);
  const LeaseTable restored = log->LoadState().value();
  Harness h(2, {}, restored, kT0 + 10s, log);
  CHECK(CountKind(h.last_persisted, EventKind::kRestore) == 2);
  CHECK(h.core->Snapshot() == restored);

  // The restored lease is not re-granted early: a new request queues behind the restored waiter.
  CHECK(Only<Queued>(h.AcquireAt(4, 1, kPad, 60s, kFar, kT0 + 11s), 4).position == 2);
  // The restored waiter's retransmission (epoch 0: it never heard an epoch) gets its position.
  CHECK(Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0 + 12s, /*epoch=*/0), 3).position == 1);
  // The holder's old-epoch renew is stale; resent with the current epoch it renews the restored lease.
  CHECK(Only<StaleEpoch>(h.RenewAt(2, 2, kPad, 2, 60s, kT0 + 13s, /*epoch=*/1), 2).current == 2);
  CHECK(Only<Renewed>(h.RenewAt(2, 2, kPad, 2, 60s, kT0 + 14s), 2).expires == kT0 + 74s);
  // Expiry, hold-off (1 ms), then the restored waiter gets the next token.
  Only<ExpiredNotice>(h.TickAt(kT0 + 74s), 2);
  CHECK(h.TickAt(kT0 + 74s).empty());
  const Grant g = Only<Grant>(h.TickAt(kT0 + 74'001ms), 3);
  CHECK(g.token == 3);
  CHECK(g.h.epoch == 2);
  CHECK(log->LoadState().value() == h.core->Snapshot());
}

TEST_CASE("lease core: a lease that expired while the coordinator was down still gets its hold-off") {
  auto log = std::make_shared<InMemoryLeaseLog>();
  {
    Harness h(1, {}, {}, kT0, log);
    h.default_inputs.requester.drift_ppm = 100;  // margin over 600 s: 60 ms + 0 + 1 ms = 61 ms
    Only<Grant>(h.AcquireAt(2, 1, kPad, 600s, kFar, kT0), 2);
  }
  // Restart long after the expiry (kT0 + 600 s).
  Harness h(2, {}, log->LoadState().value(), kT0 + 900s, log);
  h.default_inputs.requester.drift_ppm = 100;
  CHECK(h.core->NextDeadline() == kT0 + 600s);
  // The first event handled is the expiry; the hold-off ends at kT0 + 600.061 s, already past.
  const auto out = h.AcquireAt(3, 1, kPad, 60s, kFar, kT0 + 900s);
  REQUIRE(out.size() == 2);
  CHECK(std::get<ExpiredNotice>(out[0].message).token == 1);
  CHECK(std::get<Grant>(out[1].message).token == 2);
  const auto expiry = std::find_if(h.last_persisted.begin(), h.last_persisted.end(),
                                   [](const LogRecord& r) { return r.kind == EventKind::kExpiry; });
  REQUIRE(expiry != h.last_persisted.end());
  CHECK(expiry->regrant_at == kT0 + 600'061ms);
}

TEST_CASE("lease core: restored lease blocks a newcomer until expiry plus margin") {
  LeaseTable table;
  ResourceState& state = table.resources[kPad];
  state.last_token = 41;
  state.lease = LeaseState{2, 7, 41, 600s, kT0 + 600s, 3, "term 10m granted"};
  Harness h(4, {}, table, kT0);
  h.default_inputs.coordinator.drift_ppm = 10;  // margin: 0 + ceil(6 ms) + 1 ms = 7 ms
  CHECK(Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0 + 1s), 3).position == 1);
  Only<ExpiredNotice>(h.TickAt(kT0 + 600s), 2);
  CHECK(h.core->NextDeadline() == kT0 + 600'007ms);
  CHECK(h.TickAt(kT0 + 600'006ms).empty());
  CHECK(Only<Grant>(h.TickAt(kT0 + 600'007ms), 3).token == 42);
}

TEST_CASE("lease core: 10000 leases falling due together all end in one Tick") {
  Harness h;
  constexpr int kLeases = 10'000;
  for (int i = 0; i < kLeases; ++i) {
    const ResourceName r{"swarm", fmt::format("pad-{}", i)};
    h.core->Receive(Inbound{2, Acquire{h.H(2, static_cast<RequestId>(i + 1), r), 60s, kFar}}, kT0);
    h.core->Receive(Inbound{3, Acquire{h.H(3, static_cast<RequestId>(i + 1), r), 60s, kFar}}, kT0);
  }
  auto out = h.core->TakeOutput();
  CHECK(CountKind(out.to_persist, EventKind::kGrant) == kLeases);
  CHECK(CountKind(out.to_persist, EventKind::kQueued) == kLeases);
  CHECK(h.core->NextDeadline() == kT0 + 60s);

  h.core->Tick(kT0 + 60s);
  out = h.core->TakeOutput();
  CHECK(CountKind(out.to_persist, EventKind::kExpiry) == kLeases);
  CHECK(out.to_send.size() == static_cast<std::size_t>(kLeases));
  CHECK(h.core->NextDeadline() == kT0 + 60'001ms);
  // Every waiter is granted the moment the 1 ms hold-off ends, in one Tick too.
  h.core->Tick(kT0 + 60'001ms);
  out = h.core->TakeOutput();
  CHECK(CountKind(out.to_persist, EventKind::kGrant) == kLeases);
  for (const auto& o : out.to_send) {
    CHECK(o.to == 3);
    CHECK(std::get<Grant>(o.message).token == 2);
  }
}

TEST_CASE("lease core: reaching a bound answers overloaded") {
  Limits limits;
  limits.max_resources = 2;
  limits.max_waiters_per_resource = 2;
  limits.max_requesters = 4;
  limits.max_request_ids_per_requester = 3;
  Harness h(1, limits);
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0), 2);
  Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0), 3);
  Only<Queued>(h.AcquireAt(4, 1, kPad, 60s, kFar, kT0), 4);
  const Deny full = Only<Deny>(h.AcquireAt(5, 1, kPad, 60s, kFar, kT0), 5);
  CHECK(full.reason == DenyReason::kOverloaded);
  CHECK(full.detail.find("queue") != std::string::npos);
  // Overload is not remembered: the same request succeeds once there is room.
  CHECK(h.ReleaseAt(2, 1, kPad, 1, kT0 + 1s).size() == 2);  // Released, and the grant to node 3
  CHECK(Only<Queued>(h.AcquireAt(5, 1, kPad, 60s, kFar, kT0 + 2s), 5).position == 2);

  Only<Grant>(h.AcquireAt(2, 2, ResourceName{"mars", "drill"}, 60s, kFar, kT0 + 3s), 2);
  CHECK(Only<Deny>(h.AcquireAt(2, 3, ResourceName{"mars", "arm"}, 60s, kFar, kT0 + 3s), 2).reason ==
        DenyReason::kOverloaded);
  // A fifth requester.
  CHECK(Only<Deny>(h.AcquireAt(6, 1, ResourceName{"mars", "drill"}, 60s, kFar, kT0 + 4s), 6).reason ==
        DenyReason::kOverloaded);
  // Request ids: node 2 has 3 remembered answers at most; the oldest are forgotten and then refused.
  for (RequestId id = 10; id < 15; ++id) {
    CHECK(Only<Deny>(h.AcquireAt(2, id, kPad, 1s, kFar, kT0 + 5s), 2).reason == DenyReason::kTermTooShort);
  }
  // Remembered answers were {1 (released)}, then 10..14 (denied): with room for 3, ids 1, 10 and 11
  // were forgotten. 11 again is a late duplicate that can no longer be told from a new request, so
  // it is refused rather than decided afresh; 14 is still remembered and answered the same way.
  const Deny late = Only<Deny>(h.AcquireAt(2, 11, kPad, 60s, kFar, kT0 + 6s), 2);
  CHECK(late.reason == DenyReason::kBadRequest);
  CHECK(late.detail.find("no longer remembered") != std::string::npos);
  CHECK(Only<Deny>(h.AcquireAt(2, 14, kPad, 1s, kFar, kT0 + 6s), 2).reason == DenyReason::kTermTooShort);
}

TEST_CASE("lease core: time that goes backwards is treated as the latest time seen") {
  Harness h;
  Only<Grant>(h.AcquireAt(2, 1, kPad, 60s, kFar, kT0 + 100s), 2);
  Only<Queued>(h.AcquireAt(3, 1, kPad, 60s, kFar, kT0), 3);
  CHECK(h.core->NextDeadline() == kT0 + 160s);
  CHECK(h.TickAt(kT0).empty());
}

}  // namespace
}  // namespace ics::coordinator::testing
