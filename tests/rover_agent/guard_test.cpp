// Goal: the resource guard lets an operation through only under a fencing token at least as high
// as any it has seen for that resource, persists that token before accepting, and keeps tenants
// apart. Method: a GuardCore fed Use messages directly, persisting into in-memory and real SQLite
// stores that are reopened to simulate a restart.
#include <doctest/doctest.h>

#include "rover_agent/agent_test_support.h"
#include "rover_agent/guard_core.h"
#include "rover_agent/guard_store.h"

namespace ics::rover_agent {
namespace {

using namespace testing;

constexpr clock::NodeNumber kGuard = 30;

co::Use UseOf(const co::ResourceName& r, co::FencingToken token, std::string op = "charge") {
  return co::Use{co::Header{r, 1, 1, kRover}, token, std::move(op)};
}

// Feeds one Use, persists first (as the driver must), and says whether it was accepted.
bool Offer(GuardCore& guard, GuardStore& store, const co::Use& use, GuardOutput* seen = nullptr) {
  guard.OnUse(use, kRover, kT0);
  GuardOutput out = guard.TakeOutput();
  REQUIRE(store.Apply(out.to_persist).has_value());
  REQUIRE(out.to_send.size() == 1);
  CHECK(out.to_send[0].destination == kRover);
  const bool accepted = std::holds_alternative<co::UseAccepted>(out.to_send[0].message);
  CHECK(out.accepted.size() == (accepted ? 1u : 0u));
  CHECK(out.log.size() == (accepted ? 0u : 1u));
  if (seen) *seen = std::move(out);
  return accepted;
}

TEST_CASE("guard: accepts equal and higher tokens, rejects a lower one after a higher") {
  InMemoryGuardStore store;
  GuardCore guard(GuardConfig{.self = kGuard}, {});
  GuardOutput out;
  CHECK(Offer(guard, store, UseOf(Pad(), 5), &out));
  REQUIRE(out.to_persist.size() == 1);  // a new highest is persisted before the accept
  CHECK(out.to_persist[0] == GuardRecord{Pad(), 5});
  CHECK(out.accepted[0].operation == "charge");
  CHECK(Offer(guard, store, UseOf(Pad(), 5), &out));
  CHECK(out.to_persist.empty());  // equal: nothing new to persist
  CHECK(Offer(guard, store, UseOf(Pad(), 6)));
  CHECK_FALSE(Offer(guard, store, UseOf(Pad(), 5), &out));
  const auto& rejected = std::get<co::UseRejected>(out.to_send[0].message);
  CHECK(rejected.token == 5);
  CHECK(rejected.highest_seen == 6);
  CHECK(rejected.h.sender == kGuard);
  CHECK(out.log[0].find("older than the highest seen 6") != std::string::npos);
  CHECK_FALSE(Offer(guard, store, UseOf(Pad(), 0)));  // no token at all
  const GuardCounts c = guard.Counts(Pad());
  CHECK(c.highest == 6);
  CHECK(c.accepted == 3);
  CHECK(c.rejected == 2);
}

TEST_CASE("guard: the highest token survives a restart from its SQLite file") {
  TempDir dir;
  {
    auto store = OpenSqliteGuardStore(dir.File("guard.db"));
    REQUIRE(store.has_value());
    auto loaded = (*store)->Load();
    REQUIRE(loaded.has_value());
    GuardCore guard(GuardConfig{.self = kGuard}, *loaded);
    CHECK(Offer(guard, **store, UseOf(Pad(), 41)));
    CHECK(Offer(guard, **store, UseOf(Pad("other", "pad"), 3)));
  }
  auto store = OpenSqliteGuardStore(dir.File("guard.db"));
  REQUIRE(store.has_value());
  auto loaded = (*store)->Load();
  REQUIRE(loaded.has_value());
  CHECK(loaded->at(Pad()) == 41);
  GuardCore guard(GuardConfig{.self = kGuard}, *loaded);
  CHECK_FALSE(Offer(guard, **store, UseOf(Pad(), 40)));
  CHECK(Offer(guard, **store, UseOf(Pad(), 41)));
  // The stored value never goes down, even if asked to.
  const std::vector<GuardRecord> lower{{Pad(), 2}};
  REQUIRE((*store)->Apply(lower).has_value());
  CHECK((*store)->Load()->at(Pad()) == 41);
}

TEST_CASE("guard: a token of one tenant's resource never affects another tenant's") {
  InMemoryGuardStore store;
  GuardCore guard(GuardConfig{.self = kGuard}, {});
  CHECK(Offer(guard, store, UseOf(Pad("tenant-a", "pad"), 100)));
  CHECK(Offer(guard, store, UseOf(Pad("tenant-b", "pad"), 1)));  // same resource name
  CHECK(Offer(guard, store, UseOf(Pad("tenant-a", "arm"), 1)));  // same tenant, other resource
  CHECK_FALSE(Offer(guard, store, UseOf(Pad("tenant-a", "pad"), 99)));
  CHECK(guard.Highest(Pad("tenant-b", "pad")) == 1);
  CHECK(guard.Counts(Pad("tenant-b", "pad")).rejected == 0);
}

TEST_CASE("guard: refuses resources it does not front, and non-Use messages") {
  InMemoryGuardStore store;
  GuardCore guard(GuardConfig{.self = kGuard, .resources = {Pad()}}, {});
  GuardOutput out;
  CHECK_FALSE(Offer(guard, store, UseOf(Pad("mars", "drill"), 5), &out));
  CHECK(out.to_persist.empty());
  CHECK(Offer(guard, store, UseOf(Pad(), 5)));
  guard.OnMessage(co::Release{co::Header{Pad(), 1, 1, kRover}, 5}, kRover, kT0);
  CHECK(guard.TakeOutput().to_send.empty());
  CHECK(guard.dropped() == 2);
}

}  // namespace
}  // namespace ics::rover_agent
