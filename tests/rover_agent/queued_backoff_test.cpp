// Goal: an agent whose request is queued at the coordinator retransmits its Acquire with an
// exponential back-off (a logarithmic number of sends over a long wait, not one per request
// timeout), still counts a grant conservatively from a proof it holds, and recovers when the
// coordinator restarts while it waits. Method: AgentCore on a direct-link policy (request timeout
// 3,001 ms, hand-computed in agent_test_support.h) with explicit simulated time, the coordinator
// played by hand; then two agents and the real coordinator LeaseCore back to back with instant
// delivery, the coordinator rebuilt from its lease table in a new epoch mid-wait.
#include <doctest/doctest.h>

#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "coordinator/lease_core.h"
#include "rover_agent/agent_core.h"
#include "rover_agent/agent_test_support.h"

namespace ics::rover_agent {
namespace {

using namespace testing;

// The proof a Queued arriving at `arrival` gives on the direct path: one worst one-way trip (1 s)
// and our drift over it (ceil(1,000 x 20e-6) = 1 ms) before it arrived.
DtnTime ProofOf(DtnTime arrival) { return arrival - Duration(1'001); }

co::Queued QueuedFor(const co::Acquire& a, co::Epoch epoch, std::uint32_t position) {
  return co::Queued{FromCoordinator(a.h.resource, epoch, a.h.request_id), position};
}

// Steps `core` deadline by deadline until `until` (or it gives up), answering every Acquire it
// sends with Queued (epoch 1, position 1) `reply_after` later when `answer` is set. Returns the
// send times of the retransmissions.
std::vector<DtnTime> WaitQueued(AgentCore& core, const co::Acquire& a, DtnTime until, bool answer = true,
                                Duration reply_after = Duration(0)) {
  std::vector<DtnTime> sends;
  for (int steps = 0; steps < 100'000; ++steps) {
    auto next = core.NextDeadline();
    REQUIRE(next);
    if (*next >= until) return sends;
    core.Tick(*next);
    AgentOutput out = Drain(core);
    if (Find(out, Outcome::kGaveUp)) return sends;
    auto acquires = Sent<co::Acquire>(out);
    REQUIRE(acquires.size() == 1);
    CHECK(acquires[0].h.request_id == a.h.request_id);
    sends.push_back(*next);
    if (answer) {
      core.OnMessage(QueuedFor(a, 1, 1), kCoordinator, *next + reply_after, *next + reply_after);
      Drain(core);
    }
  }
  FAIL("the agent never stopped retransmitting");
  return sends;
}

TEST_CASE(
    "queued back-off: a queued acquire is retransmitted after T, 2T, 4T ...: 11 sends in an hour, not "
    "1,200") {
  AgentCore core(DirectConfig(), {}, kT0);
  CHECK(core.QueuedRetryMax() == kDirectQueuedRetryMax);
  CHECK(core.RenewOffset() == kDirectRenewOffset);
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 1h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  core.OnMessage(QueuedFor(a, 1, 1), kCoordinator, kT0, kT0);
  REQUIRE(Find(Drain(core), Outcome::kQueued));
  const std::vector<DtnTime> sends = WaitQueued(core, a, kT0 + 2h);
  // Retransmission k at (2^k - 1) x 3,001 ms: the tenth at 1,023 x 3,001 = 3,070,023 ms; the
  // eleventh would be at 2,047 x 3,001 = 6,143,047 ms, past the one-hour wait deadline.
  REQUIRE(sends.size() == 10);
  for (std::size_t k = 0; k < sends.size(); ++k) {
    CHECK(sends[k] == kT0 + ((std::int64_t{2} << k) - 1) * kDirectRequestTimeout);
  }
  CHECK(core.counters().retransmissions == 10);
  CHECK(core.counters().queued_retransmissions == 10);
  CHECK(core.counters().gave_up == 1);
  // Retransmitting every request timeout, as before, would have sent 1 + floor(3,599,999 / 3,001)
  // = 1,200 Acquires in the same hour.
}

TEST_CASE("queued back-off: the interval stops growing at the policy's maximum (26 sends in a day)") {
  AgentCore core(DirectConfig(), {}, kT0);
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 24h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  core.OnMessage(QueuedFor(a, 1, 3), kCoordinator, kT0, kT0);
  Drain(core);
  const std::vector<DtnTime> sends = WaitQueued(core, a, kT0 + 48h);
  // Intervals T, 2T, ..., 1,024T (1,024 x 3,001 = 3,073,024 <= 5,394,783), then the maximum
  // 5,394,783 ms: the eleventh retransmission at 2,047T = 6,143,047 ms, then 14 more at the
  // maximum up to 6,143,047 + 14 x 5,394,783 = 81,670,009 ms < 24 h.
  REQUIRE(sends.size() == 25);
  CHECK(sends[10] == kT0 + 2047 * kDirectRequestTimeout);
  for (std::size_t k = 11; k < sends.size(); ++k) CHECK(sends[k] - sends[k - 1] == kDirectQueuedRetryMax);
  CHECK(sends.back() == kT0 + Duration(81'670'009));
}

TEST_CASE(
    "queued back-off: a grant after a long back-off counts from the last proof, not from a retransmission") {
  AgentCore core(DirectConfig(), {}, kT0);
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 24h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  // Queued replies take 500 ms.
  core.OnMessage(QueuedFor(a, 1, 1), kCoordinator, kT0 + 500ms, kT0 + 500ms);
  Drain(core);
  const std::vector<DtnTime> sends = WaitQueued(core, a, kT0 + 1h, true, 500ms);
  REQUIRE(sends.size() == 10);
  const DtnTime last = sends.back();  // 3,070,023 ms; the next is 1,024T = 3,073,024 ms later
  CHECK(core.NextDeadline() == last + 1024 * kDirectRequestTimeout);
  // The coordinator grants at the last moment before the next retransmission would go out.
  const DtnTime arrival = last + 1024 * kDirectRequestTimeout - 1ms;
  core.OnMessage(GrantFor(a, 1, 9, arrival + kDirectTerm), kCoordinator, arrival);
  AgentOutput out = Drain(core);
  auto granted = Find(out, Outcome::kGranted);
  REQUIRE(granted);
  // Counted from the last proof: 500 ms after the last send, less 1,001 ms; the coordinator cannot
  // have granted before it sent that Queued, so its term starts later still.
  const DtnTime proof = ProofOf(last + 500ms);
  CHECK(granted->valid_until == proof + kDirectHolderView);
  const LeaseRecord& r = std::get<PersistLease>(out.to_persist.back()).lease;
  CHECK(r.view_start == proof);
  // Even after that longest wait the grant arrived well before its renewal point (the back-off
  // maximum is chosen so): renewal at proof + 10,793,566 ms, and the arrival is 3,073,524 ms
  // after the proof.
  CHECK(arrival - proof == Duration(3'073'524));
  CHECK(core.NextDeadline() == arrival + 30min);  // the hold ends first: no renewal needed
}

TEST_CASE("queued back-off: with the later Queued replies lost, a grant counts from the earliest proof") {
  AgentCore core(DirectConfig(), {}, kT0);
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 24h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  core.OnMessage(QueuedFor(a, 1, 2), kCoordinator, kT0 + 1500ms, kT0 + 1500ms);  // proof: kT0 + 499 ms
  Drain(core);
  // Six retransmissions, none answered (lost); the grant answers one of them (whichever: the
  // coordinator does not say) and arrives after the sixth.
  const std::vector<DtnTime> sends = WaitQueued(core, a, kT0 + 63 * kDirectRequestTimeout + 1ms, false);
  REQUIRE(sends.size() == 6);
  const DtnTime arrival = sends.back() + 2s;
  core.OnMessage(GrantFor(a, 1, 4, arrival + kDirectTerm), kCoordinator, arrival);
  auto granted = Find(Drain(core), Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->valid_until == ProofOf(kT0 + 1500ms) + kDirectHolderView);
  CHECK(granted->valid_until == kT0 + 499ms + kDirectHolderView);
}

TEST_CASE("queued back-off: a newer epoch learned from any message resends the queued acquire at once") {
  AgentCore core(DirectConfig(), {}, kT0);
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 24h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  core.OnMessage(QueuedFor(a, 1, 1), kCoordinator, kT0, kT0);
  Drain(core);
  REQUIRE(WaitQueued(core, a, kT0 + 10min).size() == 7);  // 127T = 381,127 ms; next at 255T
  CHECK(core.NextDeadline() == kT0 + 255 * kDirectRequestTimeout);
  // The coordinator restarted: the agent hears epoch 2 in a Deny about another resource.
  const DtnTime heard = kT0 + 11min;
  core.OnMessage(co::Deny{FromCoordinator(Pad("mars", "drill"), 2, 999), co::DenyReason::kBadRequest, "x"},
                 kCoordinator, heard);
  Drain(core);
  CHECK(core.epoch() == 2);
  CHECK(core.NextDeadline() <= heard);  // due now
  core.Tick(heard);
  auto resent = Sent<co::Acquire>(Drain(core));
  REQUIRE(resent.size() == 1);
  CHECK(resent[0].h.epoch == 2);
  CHECK(resent[0].h.request_id == a.h.request_id);
  // Unqueued until the coordinator answers in epoch 2: an unanswered copy is retried after T ...
  CHECK(core.NextDeadline() == heard + kDirectRequestTimeout);
  // ... and its Queued in epoch 2 starts the back-off afresh from T.
  core.OnMessage(QueuedFor(a, 2, 1), kCoordinator, heard + 1s, heard + 1s);
  Drain(core);
  CHECK(core.NextDeadline() == heard + kDirectRequestTimeout);
  core.Tick(heard + kDirectRequestTimeout);
  REQUIRE(Sent<co::Acquire>(Drain(core)).size() == 1);
  CHECK(core.NextDeadline() == heard + 3 * kDirectRequestTimeout);
}

TEST_CASE("queued back-off: a StaleEpoch restarts the back-off after the resend") {
  AgentCore core(DirectConfig(), {}, kT0);
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 24h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  core.OnMessage(QueuedFor(a, 1, 1), kCoordinator, kT0, kT0);
  Drain(core);
  const std::vector<DtnTime> sends = WaitQueued(core, a, kT0 + 10min, false);
  REQUIRE(sends.size() == 7);
  const DtnTime stale_at = sends.back() + 1s;
  core.OnMessage(co::StaleEpoch{FromCoordinator(Pad(), 1, a.h.request_id), 2}, kCoordinator, stale_at);
  auto resent = Sent<co::Acquire>(Drain(core));
  REQUIRE(resent.size() == 1);
  CHECK(resent[0].h.epoch == 2);
  CHECK(core.NextDeadline() == stale_at + kDirectRequestTimeout);
}

TEST_CASE(
    "unanswered back-off: an acquire with no answer at all (a partition) is resent after T, 2T, 4T ... up to "
    "the maximum, and an answer ends it") {
  AgentCore core(DirectConfig(), {}, kT0);
  core.Acquire(AcquireRequest{Pad(), 30min, kT0 + 24h}, kT0);
  const co::Acquire a = Sent<co::Acquire>(Drain(core)).at(0);
  // Messages live max(1 h, 2 x suspicion timeout (a few seconds here)) = 1 h, so the interval
  // stops at half of that, below the queued maximum (5,394,783 ms): a copy sent then is still
  // waiting on the way when the next leaves.
  CHECK(core.MessageLifetime() == 1h);
  CHECK(core.UnansweredRetryMax() == 30min);
  // No reply ever: intervals T, 2T, ..., 512T (512 x 3,001 = 1,536,512 ms <= 30 min), the tenth
  // retransmission at 1,023T = 3,070,023 ms, then every 30 min: 46 more before the one-day wait
  // deadline (3,070,023 + 46 x 1,800,000 = 85,870,023 ms). 56 sends, instead of
  // floor((24 h - 1 ms) / 3,001 ms) = 28,790 at one per request timeout.
  const std::vector<DtnTime> sends = WaitQueued(core, a, kT0 + 48h, false);
  REQUIRE(sends.size() == 56);
  for (std::size_t k = 0; k < 10; ++k) {
    CHECK(sends[k] == kT0 + ((std::int64_t{2} << k) - 1) * kDirectRequestTimeout);
  }
  for (std::size_t k = 10; k < sends.size(); ++k) CHECK(sends[k] - sends[k - 1] == 30min);
  CHECK(sends.back() == kT0 + Duration(85'870'023));
  CHECK(core.counters().retransmissions == 56);
  CHECK(core.counters().queued_retransmissions == 0);
  CHECK(core.counters().gave_up == 1);

  // An answer ends it: after a StaleEpoch resend the next retransmission is one T later.
  AgentCore other(DirectConfig(), {}, kT0);
  other.Acquire(AcquireRequest{Pad(), 30min, kT0 + 24h}, kT0);
  const co::Acquire b = Sent<co::Acquire>(Drain(other)).at(0);
  REQUIRE(WaitQueued(other, b, kT0 + 10min, false).size() == 7);
  CHECK(other.NextDeadline() == kT0 + 255 * kDirectRequestTimeout);
  const DtnTime stale_at = kT0 + 10min;
  other.OnMessage(co::StaleEpoch{FromCoordinator(Pad(), 1, b.h.request_id), 2}, kCoordinator, stale_at);
  REQUIRE(Sent<co::Acquire>(Drain(other)).size() == 1);
  CHECK(other.NextDeadline() == stale_at + kDirectRequestTimeout);
}

// Two agents and the real coordinator core, every message delivered at once.
class BackToBack {
 public:
  BackToBack() {
    for (clock::NodeNumber n : {kHolder, kWaiter}) agents_.emplace(n, AgentCore(DirectConfig(n), {}, kT0));
    StartCoordinator(1, {}, kT0);
  }
  static constexpr clock::NodeNumber kHolder = 20;
  static constexpr clock::NodeNumber kWaiter = 21;

  AgentCore& agent(clock::NodeNumber n) { return agents_.at(n); }
  coordinator::LeaseCore& coordinator() { return *coord_; }
  std::vector<Notification>& notes(clock::NodeNumber n) { return notes_[n]; }
  std::size_t acquires_sent(clock::NodeNumber n) { return acquires_[n]; }

  void StartCoordinator(co::Epoch epoch, coordinator::LeaseTable table, DtnTime now) {
    coordinator::LeaseCoreConfig config;
    config.self = kCoordinator;
    config.epoch = epoch;
    coord_.reset();
    coord_.emplace(
        config, std::move(table), [](clock::NodeNumber, DtnTime) { return DirectPolicy(); }, now);
  }
  // The coordinator dies and comes back from its lease table in the next epoch.
  void RestartCoordinator(DtnTime now) {
    coordinator::LeaseTable table = coord_->Snapshot();
    const co::Epoch next = coord_->epoch() + 1;
    StartCoordinator(next, std::move(table), now);
  }

  // Delivers every output at `now` until nothing is left.
  void Pump(DtnTime now) {
    for (int rounds = 0; rounds < 1000; ++rounds) {
      bool any = false;
      for (auto& [n, core] : agents_) {
        AgentOutput out = core.TakeOutput();
        for (const Outgoing& o : out.to_send) {
          if (std::holds_alternative<co::Acquire>(o.message)) ++acquires_[n];
          coord_->Receive(coordinator::Inbound{n, o.message}, now);
          any = true;
        }
        for (Notification& note : out.notifications) notes_[n].push_back(std::move(note));
      }
      coordinator::Output out = coord_->TakeOutput();
      for (const coordinator::Outbound& o : out.to_send) {
        agents_.at(o.to).OnMessage(o.message, kCoordinator, now, now);
        any = true;
      }
      if (!any) return;
    }
    FAIL("messages kept bouncing");
  }

  // Runs every deadline up to `until`.
  void RunUntil(DtnTime until) {
    for (int steps = 0; steps < 100'000; ++steps) {
      std::optional<DtnTime> next = coord_->NextDeadline();
      for (auto& [n, core] : agents_) {
        if (auto d = core.NextDeadline(); d && (!next || *d < *next)) next = d;
      }
      if (!next || *next > until) return;
      for (auto& [n, core] : agents_) core.Tick(*next);
      coord_->Tick(*next);
      Pump(*next);
    }
    FAIL("the simulation did not settle");
  }

 private:
  std::map<clock::NodeNumber, AgentCore> agents_;
  std::optional<coordinator::LeaseCore> coord_;
  std::map<clock::NodeNumber, std::vector<Notification>> notes_;
  std::map<clock::NodeNumber, std::size_t> acquires_;
};

std::optional<Notification> Last(const std::vector<Notification>& notes, Outcome outcome) {
  std::optional<Notification> found;
  for (const Notification& n : notes) {
    if (n.outcome == outcome) found = n;
  }
  return found;
}

TEST_CASE("queued back-off: a waiter queued across a coordinator restart is granted in the new epoch") {
  BackToBack net;
  constexpr auto kHolder = BackToBack::kHolder;
  constexpr auto kWaiter = BackToBack::kWaiter;
  net.agent(kHolder).Acquire(AcquireRequest{Pad(), 2h, kT0 + 1h}, kT0);
  net.Pump(kT0);
  auto held = Last(net.notes(kHolder), Outcome::kGranted);
  REQUIRE(held);
  CHECK(held->token == 1);
  net.agent(kWaiter).Acquire(AcquireRequest{Pad(), 30min, kT0 + 5h}, kT0 + 1s);
  net.Pump(kT0 + 1s);
  REQUIRE(Last(net.notes(kWaiter), Outcome::kQueued));
  // The waiter backs off for 40 minutes: sends at 1 s + (2^k - 1) x 3,001 ms, k = 0..9 (the tenth
  // retransmission, at 1,023T, falls after 40 min).
  net.RunUntil(kT0 + 40min);
  CHECK(net.acquires_sent(kWaiter) == 10);
  // The coordinator restarts: epoch 2, the lease and the waiter restored from its table.
  net.RestartCoordinator(kT0 + 40min);
  net.Pump(kT0 + 40min);
  // The holder releases at 45 min (before the waiter's next retransmission, at 1 s + 1,023T =
  // 51 min): its release of epoch 1 is refused StaleEpoch and resent in epoch 2, and the restored
  // waiter is granted by the coordinator itself.
  net.RunUntil(kT0 + 45min);
  net.agent(kHolder).Release(Pad(), kT0 + 45min);
  net.Pump(kT0 + 45min);
  CHECK(Last(net.notes(kHolder), Outcome::kReleased));
  auto granted = Last(net.notes(kWaiter), Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->token == 2);
  CHECK(granted->epoch == 2);
  CHECK(net.agent(kWaiter).epoch() == 2);
  // Conservative: the waiter's view ends before the coordinator's expiry (same clock here).
  const coordinator::LeaseTable table = net.coordinator().Snapshot();
  const auto& lease = table.resources.at(Pad()).lease;
  REQUIRE(lease.has_value());
  CHECK(lease->holder == kWaiter);
  REQUIRE(granted->valid_until);
  CHECK(*granted->valid_until < lease->expires);
  // No retransmission was needed across the restart: 10 sends in 45 minutes (about 900 before).
  CHECK(net.acquires_sent(kWaiter) == 10);
  CHECK(net.agent(kWaiter).MayUse(Pad(), kT0 + 1h));
}

TEST_CASE("queued back-off: a waiter whose retransmission meets the restarted coordinator is re-queued") {
  BackToBack net;
  constexpr auto kHolder = BackToBack::kHolder;
  constexpr auto kWaiter = BackToBack::kWaiter;
  net.agent(kHolder).Acquire(AcquireRequest{Pad(), 2h, kT0 + 1h}, kT0);
  net.agent(kWaiter).Acquire(AcquireRequest{Pad(), 30min, kT0 + 5h}, kT0);
  net.Pump(kT0);
  net.RunUntil(kT0 + 5min);  // sends at 0, T, 3T, ..., 63T = 189,063 ms; the next at 127T
  CHECK(net.acquires_sent(kWaiter) == 7);
  net.RestartCoordinator(kT0 + 5min);
  // The next retransmission (epoch 1) is refused StaleEpoch, resent at once in epoch 2 and queued
  // again: the back-off restarts from T.
  const DtnTime next = kT0 + 127 * kDirectRequestTimeout;
  REQUIRE(net.agent(kWaiter).NextDeadline() == next);
  net.RunUntil(next);
  CHECK(net.acquires_sent(kWaiter) == 9);
  CHECK(net.agent(kWaiter).counters().stale_epoch_resent == 1);
  CHECK(net.agent(kWaiter).epoch() == 2);
  CHECK(net.agent(kWaiter).NextDeadline() == next + kDirectRequestTimeout);
  net.RunUntil(kT0 + 20min);
  net.agent(kHolder).Release(Pad(), kT0 + 20min);
  net.Pump(kT0 + 20min);
  auto granted = Last(net.notes(kWaiter), Outcome::kGranted);
  REQUIRE(granted);
  CHECK(granted->epoch == 2);
  CHECK(granted->token == 2);
}

}  // namespace
}  // namespace ics::rover_agent
