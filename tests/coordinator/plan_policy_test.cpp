// Goal: the plan-driven timeout policy (coordinator/plan_policy.h) gives the path bounds of the
// contact plan over its horizon, recomputed once a quarter horizon has passed, and its memo of
// route-search steps (dtn::PathBoundsCache) never changes a figure. Method: a relay plan with
// passes every 2 hours over a week, walked forward in time; every policy is compared with
// dtn::PathBoundsBetween computed afresh over the same window.
#include "coordinator/plan_policy.h"

#include <doctest/doctest.h>

#include <chrono>
#include <vector>

#include "dtn/contact_plan.h"

namespace {

using ics::clock::DtnTime;
using ics::clock::Duration;
using namespace std::chrono_literals;

// Node 1 (the coordinator) reaches node 3 through relay 2, whose passes of 10 minutes come every
// 2 hours for a week; node 4 is on a direct link that is always up. OWLTs 1 s (1-2), 2 s (2-3),
// 5 s (1-4).
ics::dtn::ContactPlan WeekPlan() {
  std::vector<ics::dtn::Contact> contacts;
  const DtnTime t0 = DtnTime::FromMillis(0);
  for (int k = 0; k < 7 * 12; ++k) {
    const DtnTime start = t0 + Duration(std::chrono::hours(2) * k + std::chrono::minutes(30));
    for (auto [from, to] : {std::pair{1, 2}, std::pair{2, 1}, std::pair{2, 3}, std::pair{3, 2}}) {
      contacts.push_back({start, start + Duration(10min), static_cast<ics::clock::NodeNumber>(from),
                          static_cast<ics::clock::NodeNumber>(to), 4000});
    }
  }
  contacts.push_back({t0, t0 + Duration(24h * 8), 1, 4, 4000});
  contacts.push_back({t0, t0 + Duration(24h * 8), 4, 1, 4000});
  const DtnTime end = t0 + Duration(24h * 8);
  return ics::dtn::ContactPlan(contacts, {{t0, end, 1, 2, Duration(1'000)},
                                          {t0, end, 2, 3, Duration(2'000)},
                                          {t0, end, 1, 4, Duration(5'000)}});
}

TEST_CASE("plan policy: bounds are the plan's over the horizon, recomputed each quarter horizon") {
  const ics::dtn::ContactPlan plan = WeekPlan();
  ics::coordinator::PlanPolicyConfig config;
  config.self = 1;
  config.horizon = 24h;
  config.message_bytes = 1024;
  ics::coordinator::PlanPolicy policy(plan, config);
  const DtnTime t0 = DtnTime::FromMillis(0);
  DtnTime computed_at[5] = {};
  bool computed[5] = {};
  // Every 37 minutes for five days, alternating peers: each answer is the fresh computation over
  // [computed_at, computed_at + horizon], where computed_at moves once 6 hours have passed.
  for (int k = 0; k < 5 * 24 * 60 / 37; ++k) {
    const DtnTime now = t0 + Duration(37min * k);
    const ics::clock::NodeNumber peer = k % 2 == 0 ? 3 : 4;
    CAPTURE(k);
    if (!computed[peer] || now - computed_at[peer] > Duration(6h)) {
      computed[peer] = true;
      computed_at[peer] = now;
    }
    const auto got = policy.For(peer, now, false).inputs().path;
    const auto want = ics::dtn::PathBoundsBetween(plan, 1, peer, computed_at[peer], computed_at[peer] + Duration(24h), 1024);
    REQUIRE_MESSAGE(want.has_value(), want.error());
    CHECK(got.owlt.min == want->owlt.min);
    CHECK(got.owlt.max == want->owlt.max);
    CHECK(got.contact_wait_max == want->contact_wait_max);
  }
  // The figures themselves, for the relay path: 1 + 2 s of light; the worst wait is just after a
  // pass (a departure too late to finish within it) until the next one, 1 h 50 min later, plus
  // a relay hop's wait and the transmission times.
  const auto relay = policy.For(3, t0 + Duration(24h * 5), false).inputs().path;
  CHECK(relay.owlt.min == Duration(3'000));
  CHECK(relay.owlt.max == Duration(3'000));
  CHECK(relay.contact_wait_max > Duration(110min));
  CHECK(relay.contact_wait_max < Duration(120min));
  const auto direct = policy.For(4, t0 + Duration(24h * 5), false).inputs().path;
  CHECK(direct.owlt.max == Duration(5'000));
  CHECK(direct.contact_wait_max == Duration(256));  // 1024 bytes at 4000 B/s, rounded up
  CHECK(policy.last_error().empty());
}

TEST_CASE("plan policy: a peer the plan cannot reach gets the no-route wait and an error") {
  const ics::dtn::ContactPlan plan = WeekPlan();
  ics::coordinator::PlanPolicyConfig config;
  config.self = 1;
  ics::coordinator::PlanPolicy policy(plan, config);
  const auto path = policy.For(9, DtnTime::FromMillis(0), false).inputs().path;
  CHECK(path.contact_wait_max == config.no_route_wait);
  CHECK(policy.last_error().find("no route") != std::string::npos);
}

}  // namespace
