// Goal: an agent rebuilt from its SQLite store after a reboot or sleep never forgets a grant or a
// request, never reuses a request id, and releases what may have ended while it slept.
// Method: drive an AgentCore that persists into a real SQLite file in a temp dir, drop it, reopen
// the file and build a new core from it at a later simulated time.
#include "rover_agent/agent_store.h"

#include <doctest/doctest.h>

#include <fstream>

#include "rover_agent/agent_core.h"
#include "rover_agent/agent_test_support.h"
#include "rover_agent/guard_store.h"

namespace ics::rover_agent {
namespace {

using namespace testing;

std::unique_ptr<AgentStore> Open(const std::string& path) {
  auto store = OpenSqliteAgentStore(path);
  REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error()));
  return std::move(*store);
}

AgentSnapshot LoadFrom(AgentStore& store) {
  auto snapshot = store.Load();
  REQUIRE_MESSAGE(snapshot.has_value(), (snapshot ? "" : snapshot.error()));
  return *snapshot;
}

TEST_CASE("agent store: records round-trip through the SQLite file") {
  TempDir dir;
  LeaseRecord r;
  r.acquire_request_id = 7;
  r.resource = Pad("tenant-a", "drill");
  r.state = LeaseState::kHeld;
  r.term = 3600s;
  r.hold = 2h;
  r.deadline = kT0 + 1h;
  r.first_sent_at = kT0;
  r.count_from = kT0 + 1s;
  r.token = 99;
  r.epoch = 3;
  r.view_start = kT0;
  r.view_end = kT0 + kHolderView;
  r.hold_until = kT0 + 2h;
  r.renew_request_id = 9;
  r.renew_first_sent_at = kT0 + kRenewAt;
  LeaseRecord gone = r;
  gone.acquire_request_id = 8;
  {
    auto store = Open(dir.File("agent.db"));
    const std::vector<AgentRecord> records{ReserveRequestIds{64}, LearnEpoch{3},  PersistLease{r},
                                           PersistLease{gone},    ForgetLease{8}, ReserveRequestIds{10},
                                           LearnEpoch{2}};
    REQUIRE(store->Apply(records).has_value());
  }
  auto store = Open(dir.File("agent.db"));
  AgentSnapshot snapshot = LoadFrom(*store);
  CHECK(snapshot.reserved_through == 64);  // never lowered
  CHECK(snapshot.epoch == 3);
  REQUIRE(snapshot.leases.size() == 1);
  CHECK(snapshot.leases[0] == r);
}

TEST_CASE("agent and guard stores opened without fsync (for simulations) keep the same contents") {
  TempDir dir;
  const SqliteStoreOptions no_fsync{.durability = StoreDurability::kNone};
  LeaseRecord r;
  r.acquire_request_id = 3;
  r.resource = Pad();
  r.term = kTerm;
  r.hold = 1h;
  r.deadline = kT0 + 2h;
  r.first_sent_at = kT0;
  r.count_from = kT0;
  {
    auto agent = OpenSqliteAgentStore(dir.File("agent.db"), no_fsync);
    REQUIRE_MESSAGE(agent.has_value(), (agent ? "" : agent.error()));
    const std::vector<AgentRecord> records{ReserveRequestIds{64}, LearnEpoch{2}, PersistLease{r}};
    REQUIRE((*agent)->Apply(records).has_value());
    auto guard = OpenSqliteGuardStore(dir.File("guard.db"), no_fsync);
    REQUIRE_MESSAGE(guard.has_value(), (guard ? "" : guard.error()));
    const std::vector<GuardRecord> highest{{Pad(), 5}, {Pad(), 4}};
    REQUIRE((*guard)->Apply(highest).has_value());
  }
  // Reopened at full durability (the default), as a daemon would: the same file, the same contents.
  AgentSnapshot snapshot = LoadFrom(*Open(dir.File("agent.db")));
  CHECK(snapshot.reserved_through == 64);
  CHECK(snapshot.epoch == 2);
  REQUIRE(snapshot.leases.size() == 1);
  CHECK(snapshot.leases[0] == r);
  auto guard = OpenSqliteGuardStore(dir.File("guard.db"));
  REQUIRE(guard.has_value());
  auto highest = (*guard)->Load();
  REQUIRE(highest.has_value());
  CHECK(highest->at(Pad()) == 5);
}

TEST_CASE("agent store: a file of another kind is refused untouched") {
  TempDir dir;
  {
    std::ofstream f(dir.File("not-a-db"));
    f << "this is not a database, it is a shopping list\n";
  }
  auto store = OpenSqliteAgentStore(dir.File("not-a-db"));
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().find("not-a-db") != std::string::npos);
  REQUIRE(OpenSqliteGuardStore(dir.File("guard.db")).has_value());
  auto foreign = OpenSqliteAgentStore(dir.File("guard.db"));
  REQUIRE_FALSE(foreign.has_value());
}

TEST_CASE(
    "agent store: after a long sleep a possibly-ended lease is released and a pending request resumed") {
  TempDir dir;
  const co::ResourceName pad = Pad("mars", "charging-pad");
  const co::ResourceName arm = Pad("mars", "robot-arm");
  const co::ResourceName drill = Pad("mars", "drill");
  co::RequestId highest_id = 0;
  co::Acquire arm_acquire;
  {
    auto store = Open(dir.File("agent.db"));
    AgentCore core(MarsConfig(), LoadFrom(*store), kT0);
    Drain(core, store.get());
    core.Acquire(AcquireRequest{pad, 3h, kT0 + 1h}, kT0);
    core.Acquire(AcquireRequest{arm, 1h, kT0 + 10h}, kT0);
    core.Acquire(AcquireRequest{drill, 1h, kT0 + 2h}, kT0);
    AgentOutput out = Drain(core, store.get());
    auto acquires = Sent<co::Acquire>(out);
    REQUIRE(acquires.size() == 3);
    arm_acquire = acquires[1];
    for (const auto& a : acquires) highest_id = std::max(highest_id, a.h.request_id);
    core.OnMessage(GrantFor(acquires[0], 2, 17, kT0 + 4800s), kCoordinator, kT0 + 1200s);
    out = Drain(core, store.get());
    REQUIRE(Find(out, Outcome::kGranted));
    CHECK(core.MayUse(pad, kT0 + 1200s));
    // The rover sleeps here: memory lost, the store is all that is left.
  }
  // Wakes 3 hours later: the pad's view (ends kT0 + 3,599,640 ms) has ended, the arm's request
  // (deadline kT0 + 10 h) is still live, the drill's (deadline kT0 + 2 h) has passed.
  const DtnTime wake = kT0 + 3h;
  auto store = Open(dir.File("agent.db"));
  AgentSnapshot snapshot = LoadFrom(*store);
  CHECK(snapshot.epoch == 2);
  REQUIRE(snapshot.leases.size() == 3);
  AgentCore core(MarsConfig(), snapshot, wake);
  AgentOutput out = Drain(core, store.get());
  auto releases = Sent<co::Release>(out);
  REQUIRE(releases.size() == 1);
  CHECK(releases[0].token == 17);
  CHECK(releases[0].h.resource == pad);
  CHECK(releases[0].h.epoch == 2);
  CHECK(releases[0].h.request_id > highest_id);  // fresh ids continue above the reservation
  CHECK(releases[0].h.request_id == 65);
  auto lapsed = Find(out, Outcome::kLapsed);
  REQUIRE(lapsed);
  CHECK(lapsed->resource == pad);
  auto gave_up = Find(out, Outcome::kGaveUp);
  REQUIRE(gave_up);
  CHECK(gave_up->resource == drill);
  auto resumed = Sent<co::Acquire>(out);
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0].h.resource == arm);
  CHECK(resumed[0].h.request_id == arm_acquire.h.request_id);  // same request, same id
  CHECK(resumed[0].h.epoch == 2);
  CHECK_FALSE(core.MayUse(pad, wake));

  // A grant for the resumed request still counts from the FIRST send, before the sleep: it is
  // already over (kT0 + view < wake), so it is released and the arm requested afresh.
  core.OnMessage(GrantFor(arm_acquire, 2, 5, wake + 3600s), kCoordinator, wake + 1s);
  out = Drain(core, store.get());
  CHECK_FALSE(Find(out, Outcome::kGranted));
  CHECK_FALSE(core.MayUse(arm, wake + 1s));
  auto released = Sent<co::Release>(out);
  REQUIRE(released.size() == 1);
  CHECK(released[0].token == 5);
  auto asked_again = Sent<co::Acquire>(out);
  REQUIRE(asked_again.size() == 1);
  CHECK(asked_again[0].h.request_id > 65);

  // New requests get ids above everything used before the sleep.
  core.Acquire(AcquireRequest{drill, 1h, wake + 2h}, wake + 2s);
  out = Drain(core, store.get());
  auto fresh = Sent<co::Acquire>(out);
  REQUIRE(fresh.size() == 1);
  CHECK(fresh[0].h.request_id > asked_again[0].h.request_id);
}

TEST_CASE("agent store: a held lease still valid on wake is kept, and its in-flight renewal resumed") {
  TempDir dir;
  {
    auto store = Open(dir.File("agent.db"));
    AgentCore core(MarsConfig(), LoadFrom(*store), kT0);
    core.Acquire(AcquireRequest{Pad(), 5h, kT0 + 1h}, kT0);
    auto a = Sent<co::Acquire>(Drain(core, store.get()));
    REQUIRE(a.size() == 1);
    core.OnMessage(GrantFor(a[0], 1, 8, kT0 + 4800s), kCoordinator, kT0 + 1200s);
    Drain(core, store.get());
    core.Tick(kT0 + kRenewAt);
    REQUIRE(Sent<co::Renew>(Drain(core, store.get())).size() == 1);
  }
  const DtnTime wake = kT0 + kRenewAt + 10min;
  auto store = Open(dir.File("agent.db"));
  AgentCore core(MarsConfig(), LoadFrom(*store), wake);
  AgentOutput out = Drain(core, store.get());
  auto renews = Sent<co::Renew>(out);
  REQUIRE(renews.size() == 1);
  CHECK(renews[0].h.request_id == 2);
  CHECK(core.MayUse(Pad(), wake));
  // The answer extends the view from the renewal's first send, before the sleep.
  core.OnMessage(co::Renewed{FromCoordinator(Pad(), 1, 2), 8, kTerm, wake + 3600s, ""}, kCoordinator,
                 wake + 1s);
  auto renewed = Find(Drain(core, store.get()), Outcome::kRenewed);
  REQUIRE(renewed);
  CHECK(renewed->valid_until == kT0 + kRenewAt + kHolderView);
}

TEST_CASE("agent store: request ids strictly increase across many restarts") {
  TempDir dir;
  co::RequestId last = 0;
  DtnTime now = kT0;
  for (int boot = 0; boot < 5; ++boot) {
    auto store = Open(dir.File("agent.db"));
    AgentCore core(MarsConfig(), LoadFrom(*store), now);
    Drain(core, store.get());
    for (int i = 0; i < 3; ++i) {
      const co::ResourceName name = Pad("t", fmt::format("r{}-{}", boot, i));
      core.Acquire(AcquireRequest{name, 1h, now + 1h}, now);
      auto a = Sent<co::Acquire>(Drain(core, store.get()));
      REQUIRE(a.size() == 1);
      CHECK(a[0].h.request_id > last);
      last = a[0].h.request_id;
      core.Release(name, now);  // cancel: keeps the store small
      Drain(core, store.get());
    }
    now += 1min;
  }
}

}  // namespace
}  // namespace ics::rover_agent
