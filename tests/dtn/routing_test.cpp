// Goal: contact graph routing picks the earliest-arrival route (not the fewest hops) under rate,
// OWLT and expiry limits, static routes and the Router fall back as documented, and the path
// bounds cover every departure. Method: small hand-built plans with hand-computed times in ms,
// plus a seeded random plan where the bounds are checked against FindRoute at sampled instants.
#include "dtn/routing.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <map>
#include <random>

#include "dtn/contact_plan.h"

namespace {

using ics::clock::DtnTime;
using ics::clock::Duration;
using ics::dtn::Contact;
using ics::dtn::ContactPlan;
using ics::dtn::FindRoute;
using ics::dtn::Route;
using ics::dtn::RouteOptions;

DtnTime Ms(std::int64_t ms) { return DtnTime::FromMillis(ms); }
DtnTime S(std::int64_t s) { return DtnTime::FromMillis(s * 1000); }
const DtnTime kNever = DtnTime::Max();

// 1 -> 3 directly only late (t = 1000 s); 1 -> 2 -> 3 early. All rates 1000 B/s.
// OWLT 1-2: 2 s, 2-3: 3 s, 1-3: 1 s.
ContactPlan RelayPlan() {
  auto plan = ics::dtn::ParseContactPlan(
      "a contact +1000 +2000 1 3 1000\n"
      "a contact +0 +100 1 2 1000\n"
      "a contact +10 +100 2 3 1000\n"
      "a range +0 +2000 1 2 2\n"
      "a range +0 +2000 2 3 3\n"
      "a range +0 +2000 1 3 1\n",
      "relay.txt", DtnTime());
  REQUIRE_MESSAGE(plan.has_value(), plan.error().ToString());
  return *plan;
}

}  // namespace

TEST_CASE("routing: the earliest arrival wins over the fewest hops") {
  ContactPlan plan = RelayPlan();
  // 100 bytes at 1000 B/s: 100 ms per hop. Hop 1 leaves at 0, arrives 0.1 + 2 = 2.1 s; hop 2
  // waits for its contact at 10 s, arrives 10.1 + 3 = 13.1 s. The direct contact would arrive at
  // 1000 + 0.1 + 1 = 1001.1 s.
  std::optional<Route> route = FindRoute(plan, 1, 3, S(0), 100, kNever);
  REQUIRE(route.has_value());
  CHECK(route->next_hop == 2);
  REQUIRE(route->hops.size() == 2);
  CHECK(route->hops[0].contact.from == 1);
  CHECK(route->hops[0].contact.to == 2);
  CHECK(route->hops[0].departure == S(0));
  CHECK(route->hops[0].arrival == Ms(2'100));
  CHECK(route->hops[0].owlt == Duration(2'000));
  CHECK(route->hops[1].contact.to == 3);
  CHECK(route->hops[1].departure == S(10));
  CHECK(route->hops[1].arrival == Ms(13'100));
  CHECK(route->hops[1].owlt == Duration(3'000));
  CHECK(route->arrival == Ms(13'100));
  CHECK(route->delay == Duration(13'100));
  CHECK(route->OwltSum() == Duration(5'000));
  CHECK(plan.contacts()[route->hops[0].contact_index] == route->hops[0].contact);
}

TEST_CASE("routing: once the relay path has closed the late direct contact is used") {
  ContactPlan plan = RelayPlan();
  std::optional<Route> route = FindRoute(plan, 1, 3, S(100), 100, kNever);
  REQUIRE(route.has_value());
  CHECK(route->next_hop == 3);
  REQUIRE(route->hops.size() == 1);
  CHECK(route->hops[0].departure == S(1000));
  CHECK(route->arrival == Ms(1'001'100));
  CHECK(route->delay == Ms(1'001'100) - S(100));
}

TEST_CASE("routing: a bundle too large to finish within a contact cannot use it") {
  ContactPlan plan = RelayPlan();
  // 100,000 bytes take exactly 100 s: hop 1 fits [0, 100) exactly, arriving at 102 s, after the
  // 2 -> 3 contact closed at 100 s, so the direct contact carries it: 1000 + 100 + 1 = 1101 s.
  std::optional<Route> route = FindRoute(plan, 1, 3, S(0), 100'000, kNever);
  REQUIRE(route.has_value());
  CHECK(route->hops.size() == 1);
  CHECK(route->arrival == S(1101));
  // To node 2, 100,000 bytes just fit; one byte more does not.
  std::optional<Route> to2 = FindRoute(plan, 1, 2, S(0), 100'000, kNever);
  REQUIRE(to2.has_value());
  CHECK(to2->arrival == S(102));
  CHECK_FALSE(FindRoute(plan, 1, 2, S(0), 100'001, kNever).has_value());
  // A bundle bigger than any contact can carry goes nowhere.
  CHECK_FALSE(FindRoute(plan, 1, 3, S(0), 2'000'000, kNever).has_value());
}

TEST_CASE("routing: a route arriving after the bundle's expiry is not taken") {
  ContactPlan plan = RelayPlan();
  CHECK_FALSE(FindRoute(plan, 1, 3, S(0), 100, Ms(13'099)).has_value());
  std::optional<Route> route = FindRoute(plan, 1, 3, S(0), 100, Ms(13'100));  // arrival == expiry is in time
  REQUIRE(route.has_value());
  CHECK(route->arrival == Ms(13'100));
  CHECK_FALSE(FindRoute(plan, 1, 3, S(100), 100, S(1000)).has_value());
  CHECK_FALSE(FindRoute(plan, 1, 3, S(5000), 100, kNever).has_value());  // after the plan ends
}

TEST_CASE("routing: the OWLT of each hop is the range in force at its departure") {
  ContactPlan plan;
  plan.AddContact({S(0), S(100), 1, 2, 1'000'000});
  plan.AddContact({S(0), S(1000), 2, 3, 1'000'000});
  plan.AddRange({S(0), S(1000), 1, 2, Duration(20'000)});
  plan.AddRange({S(0), S(30), 2, 3, Duration(5'000)});
  plan.AddRange({S(30), S(1000), 3, 2, Duration(7'000)});  // written the other way round
  // 1000 bytes at 1 MB/s: 1 ms. Hop 1: 0 -> 20.001 s. Hop 2 leaves at 20.001 s (range 5 s) and
  // arrives at 25.002 s.
  std::optional<Route> early = FindRoute(plan, 1, 3, S(0), 1000, kNever);
  REQUIRE(early.has_value());
  CHECK(early->hops[1].departure == Ms(20'001));
  CHECK(early->hops[1].owlt == Duration(5'000));
  CHECK(early->arrival == Ms(25'002));
  // Leaving at 15 s, hop 2 departs at 35.001 s, under the 7 s range: 42.002 s.
  std::optional<Route> late = FindRoute(plan, 1, 3, S(15), 1000, kNever);
  REQUIRE(late.has_value());
  CHECK(late->hops[1].owlt == Duration(7'000));
  CHECK(late->arrival == Ms(42'002));
  CHECK(late->OwltSum() == Duration(27'000));
}

TEST_CASE("routing: a contact without a range is unusable unless an OWLT is assumed") {
  ContactPlan plan;
  plan.AddContact({S(0), S(100), 1, 2, 1000});
  CHECK_FALSE(FindRoute(plan, 1, 2, S(0), 10, kNever).has_value());
  RouteOptions options;
  options.owlt_if_no_range = Duration(0);
  std::optional<Route> route = FindRoute(plan, 1, 2, S(5), 10, kNever, options);
  REQUIRE(route.has_value());
  CHECK(route->arrival == Ms(5'010));
}

TEST_CASE("routing: excluded nodes and contacts are avoided, and the hop limit holds") {
  ContactPlan plan = RelayPlan();
  RouteOptions no_relay;
  no_relay.excluded_nodes = {2};
  std::optional<Route> route = FindRoute(plan, 1, 3, S(0), 100, kNever, no_relay);
  REQUIRE(route.has_value());
  CHECK(route->next_hop == 3);
  CHECK(route->arrival == Ms(1'001'100));

  std::optional<Route> best = FindRoute(plan, 1, 3, S(0), 100, kNever);
  REQUIRE(best.has_value());
  RouteOptions no_contact;
  no_contact.excluded_contacts = {best->hops[1].contact_index};
  route = FindRoute(plan, 1, 3, S(0), 100, kNever, no_contact);
  REQUIRE(route.has_value());
  CHECK(route->hops.size() == 1);

  no_relay.excluded_contacts = {route->hops[0].contact_index};
  CHECK_FALSE(FindRoute(plan, 1, 3, S(0), 100, kNever, no_relay).has_value());

  RouteOptions one_hop;
  one_hop.hops_max = 1;
  route = FindRoute(plan, 1, 3, S(0), 100, kNever, one_hop);
  REQUIRE(route.has_value());
  CHECK(route->hops.size() == 1);

  RouteOptions no_destination;
  no_destination.excluded_nodes = {3};
  CHECK_FALSE(FindRoute(plan, 1, 3, S(0), 100, kNever, no_destination).has_value());
}

TEST_CASE("routing: routing to oneself is local delivery with no hops") {
  ContactPlan plan = RelayPlan();
  std::optional<Route> route = FindRoute(plan, 4, 4, S(7), 100, kNever);
  REQUIRE(route.has_value());
  CHECK(route->hops.empty());
  CHECK(route->next_hop == 4);
  CHECK(route->arrival == S(7));
  CHECK(route->delay == Duration(0));
}

TEST_CASE("routing: loopback contacts and cycles through the source are ignored") {
  ContactPlan plan;
  plan.AddContact({S(0), S(100), 1, 1, 1000});
  plan.AddContact({S(0), S(100), 1, 2, 1000});
  plan.AddContact({S(0), S(100), 2, 1, 1000});
  plan.AddContact({S(50), S(100), 2, 3, 1000});
  plan.AddRange({S(0), S(100), 1, 1, Duration(0)});
  plan.AddRange({S(0), S(100), 1, 2, Duration(1000)});
  plan.AddRange({S(0), S(100), 2, 3, Duration(1000)});
  std::optional<Route> route = FindRoute(plan, 1, 3, S(0), 0, kNever);
  REQUIRE(route.has_value());
  REQUIRE(route->hops.size() == 2);
  CHECK(route->hops[0].contact.to == 2);
  CHECK(route->arrival == S(51));
}

TEST_CASE("routing: transmission time rounds up to the millisecond without overflow") {
  CHECK(ics::dtn::TransmissionTime(0, 1000) == Duration(0));
  CHECK(ics::dtn::TransmissionTime(1, 1000) == Duration(1));
  CHECK(ics::dtn::TransmissionTime(1001, 1000) == Duration(1001));
  CHECK(ics::dtn::TransmissionTime(1, UINT64_MAX) == Duration(1));
  CHECK(ics::dtn::TransmissionTime(UINT64_MAX, UINT64_MAX) == Duration(1000));
  CHECK_FALSE(ics::dtn::TransmissionTime(UINT64_MAX, 1).has_value());
}

TEST_CASE("routing: static routes give the destination's next hop, else the default") {
  ics::dtn::StaticRoutes routes;
  CHECK_FALSE(routes.NextHop(5).has_value());
  routes.Set(5, 2);
  routes.Set(6, 3);
  CHECK(routes.NextHop(5) == 2u);
  CHECK_FALSE(routes.NextHop(7).has_value());
  routes.SetDefault(9);
  CHECK(routes.NextHop(7) == 9u);
  routes.Remove(5);
  CHECK(routes.NextHop(5) == 9u);

  auto parsed = ics::dtn::ParseStaticRoutes("# lab\nroute 5 2\n\ndefault 4 # uplink\n", "routes.txt");
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().ToString());
  CHECK(parsed->NextHop(5) == 2u);
  CHECK(parsed->NextHop(8) == 4u);
  auto bad = ics::dtn::ParseStaticRoutes("route 5 2\nroute 5 0\n", "routes.txt");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().ToString() == "routes.txt:2:9: node number must be an integer > 0 (got '0')");
  auto missing = ics::dtn::ParseStaticRoutes("route 5\n", "routes.txt");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().column == 8);
  auto unknown = ics::dtn::ParseStaticRoutes("via 5 2\n", "routes.txt");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().column == 1);
}

TEST_CASE("routing: the router tries the contact graph, then static routes as configured") {
  ContactPlan plan = RelayPlan();
  ics::dtn::StaticRoutes statics;
  statics.Set(3, 3);
  statics.Set(8, 2);
  ics::dtn::Router router(1, &plan, statics);

  auto to3 = router.Decide(3, S(0), 100, kNever);
  REQUIRE(to3.has_value());
  CHECK(to3->source == ics::dtn::RouteSource::kContactGraph);
  CHECK(to3->next_hop == 2);
  // Node 3 is in the plan: when CGR says "not before expiry" the bundle stays stored.
  CHECK_FALSE(router.Decide(3, S(0), 100, Ms(13'000)).has_value());
  // Node 8 is unknown to the plan: the static route is used.
  auto to8 = router.Decide(8, S(0), 100, kNever);
  REQUIRE(to8.has_value());
  CHECK(to8->source == ics::dtn::RouteSource::kStatic);
  CHECK(to8->next_hop == 2);
  CHECK_FALSE(router.Decide(9, S(0), 100, kNever).has_value());
  auto local = router.Decide(1, S(0), 100, kNever);
  REQUIRE(local.has_value());
  CHECK(local->source == ics::dtn::RouteSource::kLocal);

  ics::dtn::Router eager(1, &plan, statics, ics::dtn::StaticFallback::kWhenNoRoute);
  auto fallback = eager.Decide(3, S(0), 100, Ms(13'000));
  REQUIRE(fallback.has_value());
  CHECK(fallback->source == ics::dtn::RouteSource::kStatic);
  CHECK(fallback->next_hop == 3);

  ics::dtn::Router planless(1, nullptr, statics);
  auto plain = planless.Decide(3, S(0), 100, Ms(1));
  REQUIRE(plain.has_value());
  CHECK(plain->source == ics::dtn::RouteSource::kStatic);
}

TEST_CASE("routing: the router's NextHop is Decide's next hop, through the same cache") {
  ContactPlan plan = RelayPlan();
  ics::dtn::StaticRoutes statics;
  statics.Set(3, 3);
  statics.Set(8, 2);
  for (auto fallback : {ics::dtn::StaticFallback::kWhenUnknownToPlan, ics::dtn::StaticFallback::kWhenNoRoute}) {
    ics::dtn::Router deciding(1, &plan, statics, fallback);
    ics::dtn::Router hopping(1, &plan, statics, fallback);
    for (std::int64_t t : {0, 0, 100, 400, 999, 1000, 1001, 2500, 2600}) {
      for (ics::clock::NodeNumber to : {1, 2, 3, 8, 9}) {
        for (DtnTime expiry : {kNever, Ms(13'000), S(1000), S(3000)}) {
          CAPTURE(t);
          CAPTURE(to);
          CAPTURE(expiry.millis());
          const auto decision = deciding.Decide(to, S(t), 100, expiry);
          const auto next = hopping.NextHop(to, S(t), 100, expiry);
          REQUIRE(decision.has_value() == next.has_value());
          if (next) CHECK(decision->next_hop == *next);
        }
      }
    }
    CHECK(deciding.cache_hits() == hopping.cache_hits());
    CHECK(deciding.cache_misses() == hopping.cache_misses());
  }
}

TEST_CASE("routing: the router's cache answers exactly what a fresh search would") {
  ContactPlan plan = RelayPlan();
  ics::dtn::Router router(1, &plan, {});
  // At 0 s the route departs at once, so the answer holds only for t = 0.
  auto first = router.Decide(3, S(0), 100, kNever);
  auto again = router.Decide(3, S(0), 100, kNever);
  REQUIRE(first.has_value());
  REQUIRE(again.has_value());
  CHECK(router.cache_hits() == 1);
  CHECK(again->route->arrival == first->route->arrival);
  // From 100 s the direct contact departing at 1000 s holds until 1000 s.
  auto late = router.Decide(3, S(100), 100, kNever);
  REQUIRE(late.has_value());
  std::uint64_t hits = router.cache_hits();
  for (std::int64_t t : {100, 400, 999, 1000}) {
    auto cached = router.Decide(3, S(t), 100, kNever);
    auto fresh = FindRoute(plan, 1, 3, S(t), 100, kNever);
    REQUIRE(cached.has_value());
    REQUIRE(fresh.has_value());
    CHECK(cached->route->arrival == fresh->arrival);
    CHECK(cached->route->delay == fresh->delay);
  }
  CHECK(router.cache_hits() == hits + 4);
  // The same cached route is too late for a short expiry.
  CHECK_FALSE(router.Decide(3, S(500), 100, S(1000)).has_value());
  // A "no route" answer is reused for later times and earlier expiries, not for later expiries.
  hits = router.cache_hits();
  CHECK_FALSE(router.Decide(3, S(2500), 100, S(4000)).has_value());
  CHECK_FALSE(router.Decide(3, S(2600), 100, S(3000)).has_value());
  CHECK(router.cache_hits() == hits + 1);
}

TEST_CASE("routing: path bounds take the longest gap between contacts as the contact wait") {
  // 1 -> 2 open [0,100), [300,400), [1000,1100); 2 -> 1 open [0,100), [500,600), [900,1200).
  // OWLT 10 s until 500 s, then 20 s. Size 0, departures over [0, 1000 s]:
  //   1 -> 2: t=0 waits 0 (owlt 10); t=100 waits 200 until 300 (owlt 10); t=400 waits 600 until
  //           1000 (owlt 20), usable until 1100 - 1 ms, past the interval.
  //   2 -> 1: t=0 waits 0; t=100 waits 400 until 500 (owlt 20); t=600 waits 300 until 900.
  auto plan = ics::dtn::ParseContactPlan(
      "a contact +0 +100 1 2 1000\n"
      "a contact +300 +400 1 2 1000\n"
      "a contact +1000 +1100 1 2 1000\n"
      "a contact +0 +100 2 1 1000\n"
      "a contact +500 +600 2 1 1000\n"
      "a contact +900 +1200 2 1 1000\n"
      "a range +0 +500 1 2 10\n"
      "a range +500 +2000 1 2 20\n",
      "gaps.txt", DtnTime());
  REQUIRE(plan.has_value());
  auto bounds = ics::dtn::PathBoundsBetween(*plan, 1, 2, S(0), S(1000));
  REQUIRE_MESSAGE(bounds.has_value(), bounds.error());
  CHECK(bounds->contact_wait_max == Duration(600'000));
  CHECK(bounds->owlt.min == Duration(10'000));
  CHECK(bounds->owlt.max == Duration(20'000));

  // Over [0, 50 s] both directions have an open contact throughout.
  auto open = ics::dtn::PathBoundsBetween(*plan, 1, 2, S(0), S(50));
  REQUIRE(open.has_value());
  CHECK(open->contact_wait_max == Duration(0));
  CHECK(open->owlt.max == Duration(10'000));

  // A departure after the last contact has no route: an error, not a made-up bound.
  auto beyond = ics::dtn::PathBoundsBetween(*plan, 1, 2, S(0), S(1200));
  REQUIRE_FALSE(beyond.has_value());
  CHECK(beyond.error().find("no route from node 1 to node 2") != std::string::npos);
  CHECK_FALSE(ics::dtn::PathBoundsBetween(*plan, 1, 2, S(10), S(0)).has_value());
}

TEST_CASE("routing: path bounds count waits at relays and transmission time as contact wait") {
  // 1 -> 2 [0,10) then 2 -> 3 [50,60), OWLT 1 s each; 3 -> 1 direct [0,1000), OWLT 1 s.
  // 1 -> 3 sent at 0 with 1000 B at 1000 B/s: 0 + 1 + 1 = 2 s at node 2, departs 50, + 1 + 1 =
  // 52 s; OWLT 2 s, so 50 s of waiting and transmission. It stays usable until departure 9 s.
  auto plan = ics::dtn::ParseContactPlan(
      "a contact +0 +10 1 2 1000\n"
      "a contact +50 +60 2 3 1000\n"
      "a contact +0 +1000 3 1 1000\n"
      "a range +0 +1000 1 2 1\n"
      "a range +0 +1000 2 3 1\n"
      "a range +0 +1000 1 3 1\n",
      "relay.txt", DtnTime());
  REQUIRE(plan.has_value());
  auto bounds = ics::dtn::PathBoundsBetween(*plan, 1, 3, S(0), S(5), 1000);
  REQUIRE_MESSAGE(bounds.has_value(), bounds.error());
  CHECK(bounds->owlt.min == Duration(1'000));
  CHECK(bounds->owlt.max == Duration(2'000));
  CHECK(bounds->contact_wait_max == Duration(50'000));
}

TEST_CASE("routing: path bounds cover the delay of every sampled departure on a random plan") {
  // ICS_TEST_SEED=<seed> reproduces a run.
  const char* seed_text = std::getenv("ICS_TEST_SEED");
  const std::uint64_t seed =
      seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : std::random_device{}();
  MESSAGE("reproduce with ICS_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    ContactPlan plan;
    for (ics::clock::NodeNumber a = 1; a <= 4; ++a) {
      for (ics::clock::NodeNumber b = a + 1; b <= 4; ++b) {
        plan.AddRange({S(0), S(1000), a, b, Duration(std::uniform_int_distribution<int>(0, 20'000)(rng))});
        plan.AddRange({S(1000), S(3000), a, b, Duration(std::uniform_int_distribution<int>(0, 20'000)(rng))});
      }
    }
    for (int i = 0; i < 30; ++i) {
      ics::clock::NodeNumber from = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 4)(rng);
      ics::clock::NodeNumber to = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 4)(rng);
      std::int64_t start = std::uniform_int_distribution<std::int64_t>(0, 2'500'000)(rng);
      std::int64_t length = std::uniform_int_distribution<std::int64_t>(1'000, 300'000)(rng);
      plan.AddContact({Ms(start), Ms(start + length), from, to,
                       std::uniform_int_distribution<std::uint64_t>(10, 5000)(rng)});
    }
    // Long-lived contacts 1 <-> 4 ensure there is always some route for departures up to 2000 s.
    plan.AddContact({S(2500), S(3000), 1, 4, 1000});
    plan.AddContact({S(2500), S(3000), 4, 1, 1000});
    auto bounds = ics::dtn::PathBoundsBetween(plan, 1, 4, S(0), S(2000), 500);
    REQUIRE_MESSAGE(bounds.has_value(), bounds.error());
    Duration one_way_max = bounds->owlt.max + bounds->contact_wait_max;
    for (int k = 0; k < 200; ++k) {
      DtnTime t = Ms(std::uniform_int_distribution<std::int64_t>(0, 2'000'000)(rng));
      for (auto [a, b] : {std::pair{1, 4}, std::pair{4, 1}}) {
        auto route = FindRoute(plan, a, b, t, 500, kNever);
        REQUIRE(route.has_value());
        CHECK(route->delay <= one_way_max);
        CHECK(route->OwltSum() >= Duration(0));
      }
    }
  }
}

TEST_CASE("routing: the search finds the same earliest arrival as a brute-force relaxation") {
  // Bellman-Ford over nodes, independent of FindRoute's contact-graph search: with one constant
  // range per pair, the earliest arrival at each node is the fixpoint of relaxing every contact.
  const char* seed_text = std::getenv("ICS_TEST_SEED");
  const std::uint64_t seed =
      seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : std::random_device{}();
  MESSAGE("reproduce with ICS_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  constexpr int kNodes = 6;
  for (int round = 0; round < 50; ++round) {
    CAPTURE(round);
    ContactPlan plan;
    std::int64_t owlt_ms[kNodes + 1][kNodes + 1];
    for (int a = 1; a <= kNodes; ++a) {
      for (int b = a; b <= kNodes; ++b) {
        owlt_ms[a][b] = owlt_ms[b][a] = std::uniform_int_distribution<int>(0, 10'000)(rng);
        plan.AddRange({S(0), S(100'000), static_cast<ics::clock::NodeNumber>(a),
                       static_cast<ics::clock::NodeNumber>(b), Duration(owlt_ms[a][b])});
      }
    }
    for (int i = 0; i < 60; ++i) {
      auto from = std::uniform_int_distribution<ics::clock::NodeNumber>(1, kNodes)(rng);
      auto to = std::uniform_int_distribution<ics::clock::NodeNumber>(1, kNodes)(rng);
      std::int64_t start = std::uniform_int_distribution<std::int64_t>(0, 1'000'000)(rng);
      std::int64_t length = std::uniform_int_distribution<std::int64_t>(1, 60'000)(rng);
      plan.AddContact({Ms(start), Ms(start + length), from, to,
                       std::uniform_int_distribution<std::uint64_t>(1, 2000)(rng)});
    }
    std::uint64_t size = std::uniform_int_distribution<std::uint64_t>(0, 20'000)(rng);
    DtnTime at = Ms(std::uniform_int_distribution<std::int64_t>(0, 500'000)(rng));
    std::int64_t best[kNodes + 1];
    std::fill(std::begin(best), std::end(best), INT64_MAX);
    best[1] = at.millis();
    for (int pass = 0; pass < kNodes; ++pass) {
      for (const Contact& c : plan.contacts()) {
        if (c.from == c.to || best[c.from] == INT64_MAX) continue;
        std::int64_t dep = std::max(best[c.from], c.start.millis());
        std::int64_t tx = ics::dtn::TransmissionTime(size, c.rate_bytes_per_s)->count();
        if (dep >= c.end.millis() || dep + tx > c.end.millis()) continue;
        best[c.to] = std::min(best[c.to], dep + tx + owlt_ms[c.from][c.to]);
      }
    }
    for (int dest = 2; dest <= kNodes; ++dest) {
      CAPTURE(dest);
      auto route = FindRoute(plan, 1, static_cast<ics::clock::NodeNumber>(dest), at, size, kNever);
      if (best[dest] == INT64_MAX) {
        CHECK_FALSE(route.has_value());
      } else {
        REQUIRE(route.has_value());
        CHECK(route->arrival.millis() == best[dest]);
        // The hops chain: each departs from where the previous arrived, no earlier than it arrived.
        for (std::size_t k = 1; k < route->hops.size(); ++k) {
          CHECK(route->hops[k].contact.from == route->hops[k - 1].contact.to);
          CHECK(route->hops[k].departure >= route->hops[k - 1].arrival);
        }
      }
    }
  }
}

// ---- Plan indexes, lazy search, sweep memo (replay speed, issue 6) ----------------------------

TEST_CASE("contact plan: the contacts of a sender not ended by t start at the first that may be open") {
  ContactPlan plan;
  plan.AddContact({S(0), S(100), 1, 2, 1000});    // index 0; end_max 100
  plan.AddContact({S(10), S(20), 1, 3, 1000});    // 1; 100
  plan.AddContact({S(30), S(500), 1, 2, 1000});   // 2; 500
  plan.AddContact({S(40), S(50), 1, 3, 1000});    // 3; 500
  plan.AddContact({S(600), S(700), 1, 2, 1000});  // 4; 700
  plan.AddContact({S(0), S(10), 2, 1, 1000});     // 5 (another sender)
  CHECK(plan.ContactsFromBegin(1) == 0);
  CHECK(plan.ContactsFromEnd(1) == 5);
  CHECK(plan.ContactsFromNotEndedBy(1, S(5)) == 0);
  CHECK(plan.ContactsFromNotEndedBy(1, Ms(99'999)) == 0);
  // At 100 s the first two have ended; [40, 50) has too but sits behind the open [30, 500).
  CHECK(plan.ContactsFromNotEndedBy(1, S(100)) == 2);
  CHECK(plan.ContactsFromNotEndedBy(1, S(500)) == 4);
  CHECK(plan.ContactsFromNotEndedBy(1, S(700)) == 5);
  CHECK(plan.ContactsFromNotEndedBy(2, S(0)) == 5);
  CHECK(plan.ContactsFromNotEndedBy(2, S(10)) == 6);
  // A node that sends nothing: an empty range where its contacts would be.
  CHECK(plan.ContactsFromNotEndedBy(3, S(0)) == plan.ContactsFromEnd(3));
  CHECK(plan.ContactsFrom(3).empty());
  // The lookups built on it.
  CHECK(plan.ContactAt(1, 2, S(450))->start == S(30));
  CHECK(plan.ContactAt(1, 3, S(45)).has_value());
  CHECK_FALSE(plan.ContactAt(1, 3, S(50)).has_value());
  CHECK(plan.NextContactStart(1, 2, S(550)) == S(600));
  CHECK(plan.HasContactsTo(1));
  CHECK(plan.HasContactsTo(3));
  CHECK_FALSE(plan.HasContactsTo(4));
}

namespace {

// The earliest arrival by brute force: Bellman-Ford over contacts to a fixed point, with the
// departure rule of dtn/routing.h (depart at max(ready, start) or at a later range change within
// the contact; the bundle must be fully sent before the contact ends). No hop limit.
std::optional<DtnTime> ReferenceArrival(const ContactPlan& plan, ics::clock::NodeNumber from,
                                        ics::clock::NodeNumber to, DtnTime at, std::uint64_t size,
                                        DtnTime expiry) {
  std::map<ics::clock::NodeNumber, DtnTime> ready{{from, at}};
  for (bool changed = true; changed;) {
    changed = false;
    for (const Contact& c : plan.contacts()) {
      if (c.from == c.to || c.to == from || !ready.contains(c.from)) continue;
      const Duration tx = *ics::dtn::TransmissionTime(size, c.rate_bytes_per_s);
      std::optional<DtnTime> best;
      for (DtnTime d = std::max(ready[c.from], c.start); d < c.end && tx <= c.end - d;) {
        if (auto owlt = plan.OwltAt(c.from, c.to, d); owlt && (!best || d + tx + *owlt < *best)) best = d + tx + *owlt;
        auto change = plan.NextRangeChange(c.from, c.to, d);
        if (!change) break;
        d = *change;
      }
      if (!best || *best > expiry) continue;
      if (auto it = ready.find(c.to); it == ready.end() || *best < it->second) {
        ready[c.to] = *best;
        changed = true;
      }
    }
  }
  if (auto it = ready.find(to); it != ready.end()) return it->second;
  return std::nullopt;
}

// A random plan over `nodes` nodes and `horizon_s` seconds: ranges that change every 200 s, and
// `contacts` contacts of random sender, receiver, start, length and rate.
ContactPlan RandomPlan(std::mt19937_64& rng, ics::clock::NodeNumber nodes, std::int64_t horizon_s, int contacts) {
  ContactPlan plan;
  for (ics::clock::NodeNumber a = 1; a <= nodes; ++a) {
    for (ics::clock::NodeNumber b = a + 1; b <= nodes; ++b) {
      for (std::int64_t t = 0; t < horizon_s; t += 200) {
        plan.AddRange({S(t), S(t + 200), a, b, Duration(std::uniform_int_distribution<int>(0, 30'000)(rng))});
      }
    }
  }
  std::vector<Contact> list;
  for (int i = 0; i < contacts; ++i) {
    const auto from = std::uniform_int_distribution<ics::clock::NodeNumber>(1, nodes)(rng);
    const auto to = std::uniform_int_distribution<ics::clock::NodeNumber>(1, nodes)(rng);
    const std::int64_t start = std::uniform_int_distribution<std::int64_t>(0, horizon_s * 1000 - 1000)(rng);
    // Mostly short passes, some long links (which make the index keep ended contacts behind them).
    const std::int64_t length = std::uniform_int_distribution<int>(0, 9)(rng) == 0
                                    ? std::uniform_int_distribution<std::int64_t>(100'000, 2'000'000)(rng)
                                    : std::uniform_int_distribution<std::int64_t>(1'000, 60'000)(rng);
    list.push_back({Ms(start), Ms(start + length), from, to, std::uniform_int_distribution<std::uint64_t>(10, 5000)(rng)});
  }
  for (const Contact& c : list) plan.AddContact(c);
  return plan;
}

}  // namespace

TEST_CASE("routing: with range changes, expiries and a reused workspace the search finds the brute-force arrival") {
  // ICS_TEST_SEED=<seed> reproduces a run.
  const char* seed_text = std::getenv("ICS_TEST_SEED");
  const std::uint64_t seed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : std::random_device{}();
  MESSAGE("reproduce with ICS_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 10; ++round) {
    CAPTURE(round);
    const ContactPlan plan = RandomPlan(rng, 5, 3000, 120);
    ics::dtn::RouteWorkspace shared;  // reused across queries: only what a search touched is reset
    for (int q = 0; q < 60; ++q) {
      const auto from = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 5)(rng);
      const auto to = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 5)(rng);
      const DtnTime at = Ms(std::uniform_int_distribution<std::int64_t>(0, 3'000'000)(rng));
      const std::uint64_t size = std::uniform_int_distribution<std::uint64_t>(0, 20'000)(rng);
      const DtnTime expiry = q % 3 == 0 ? at + Duration(std::uniform_int_distribution<std::int64_t>(0, 600'000)(rng)) : kNever;
      CAPTURE(from);
      CAPTURE(to);
      CAPTURE(at.millis());
      CAPTURE(size);
      RouteOptions options;
      if (q % 7 == 0) options.excluded_contacts = {static_cast<std::size_t>(q) % plan.contacts().size()};
      std::optional<Route> reused = FindRoute(plan, from, to, at, size, expiry, options, shared);
      std::optional<Route> fresh = FindRoute(plan, from, to, at, size, expiry, options);
      REQUIRE(reused.has_value() == fresh.has_value());
      if (fresh) {
        CHECK(reused->arrival == fresh->arrival);
        REQUIRE(reused->hops.size() == fresh->hops.size());
        for (std::size_t h = 0; h < fresh->hops.size(); ++h) CHECK(reused->hops[h].contact_index == fresh->hops[h].contact_index);
      }
      if (!options.excluded_contacts.empty() || from == to) continue;
      const std::optional<DtnTime> reference = ReferenceArrival(plan, from, to, at, size, expiry);
      REQUIRE(fresh.has_value() == reference.has_value());
      if (!fresh) continue;
      CHECK(fresh->arrival == *reference);
      // The route is one the rules allow: hop by hop, within contacts, after the previous arrival.
      DtnTime ready = at;
      for (const auto& hop : fresh->hops) {
        CHECK(hop.departure >= ready);
        CHECK(hop.departure >= hop.contact.start);
        CHECK(hop.arrival - hop.owlt <= hop.contact.end);
        CHECK(plan.OwltAt(hop.contact.from, hop.contact.to, hop.departure) == hop.owlt);
        ready = hop.arrival;
      }
      CHECK(ready == fresh->arrival);
    }
  }
}

TEST_CASE("routing: a route found on a long plan is the one found on the plan's relevant part") {
  // The same pass pattern repeated for 300 periods: a search at period k must not depend on the
  // contacts of the other periods (they are skipped by the index and by the lazy expansion).
  std::vector<Contact> contacts;
  std::vector<ics::clock::RangeEntry> ranges{{S(0), S(400'000), 1, 2, Duration(1'000)},
                                             {S(0), S(400'000), 2, 3, Duration(2'000)}};
  for (std::int64_t k = 0; k < 300; ++k) {
    const std::int64_t base = k * 1000;
    contacts.push_back({S(base + 100), S(base + 200), 1, 2, 1000});
    contacts.push_back({S(base + 500), S(base + 600), 2, 3, 1000});
  }
  const ContactPlan plan(contacts, ranges);
  for (std::int64_t k : {0, 1, 150, 298}) {
    CAPTURE(k);
    std::optional<Route> route = FindRoute(plan, 1, 3, S(k * 1000 + 150), 1000, kNever);
    REQUIRE(route.has_value());
    // Departs at once (150 s into the pass), 1 s on air + 1 s light, waits for the 2 -> 3 pass.
    CHECK(route->hops[0].departure == S(k * 1000 + 150));
    CHECK(route->hops[1].departure == S(k * 1000 + 500));
    CHECK(route->arrival == S(k * 1000 + 503));
  }
  // After the last pass of 1 -> 2: nothing.
  CHECK_FALSE(FindRoute(plan, 1, 3, S(299 * 1000 + 200), 1000, kNever).has_value());
}

TEST_CASE("routing: path bounds with a sweep memo equal those without, as time moves on") {
  const char* seed_text = std::getenv("ICS_TEST_SEED");
  const std::uint64_t seed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : std::random_device{}();
  MESSAGE("reproduce with ICS_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    ContactPlan plan = RandomPlan(rng, 4, 4000, 150);
    // Long links 1 <-> 4 keep a route available for most departures.
    plan.AddContact({S(0), S(4000), 1, 4, 100});
    plan.AddContact({S(0), S(4000), 4, 1, 100});
    ics::dtn::PathBoundsCache cache;
    DtnTime now = S(0);
    for (int q = 0; q < 40; ++q) {
      now = now + Duration(std::uniform_int_distribution<std::int64_t>(0, 60'000)(rng));
      const auto peer = std::uniform_int_distribution<ics::clock::NodeNumber>(2, 4)(rng);
      CAPTURE(now.millis());
      CAPTURE(peer);
      auto plain = ics::dtn::PathBoundsBetween(plan, 1, peer, now, now + Duration(900'000), 500);
      auto memo = ics::dtn::PathBoundsBetween(plan, 1, peer, now, now + Duration(900'000), 500, cache);
      REQUIRE(plain.has_value() == memo.has_value());
      if (plain) {
        CHECK(memo->owlt.min == plain->owlt.min);
        CHECK(memo->owlt.max == plain->owlt.max);
        CHECK(memo->contact_wait_max == plain->contact_wait_max);
      } else {
        CHECK(memo.error() == plain.error());
      }
    }
  }
}

TEST_CASE("routing: the sweep memo answers the steps a later sweep shares with an earlier one") {
  // Passes 1 -> 2 every 1000 s, [k*1000 + 100, k*1000 + 200), and 2 -> 1 always open: bounding
  // [t, t + 5000 s] for t = 0, 10, 20 ... recomputes only the first step of each direction.
  std::vector<Contact> contacts{{S(0), S(20'000), 2, 1, 1000}};
  for (std::int64_t k = 0; k < 20; ++k) contacts.push_back({S(k * 1000 + 100), S(k * 1000 + 200), 1, 2, 1000});
  const ContactPlan plan(contacts, {{S(0), S(20'000), 1, 2, Duration(500)}});
  ics::dtn::PathBoundsCache cache;
  for (std::int64_t t = 0; t <= 50; t += 10) {
    auto bounds = ics::dtn::PathBoundsBetween(plan, 1, 2, S(t), S(t + 5000), 100, cache);
    REQUIRE_MESSAGE(bounds.has_value(), bounds.error());
    // The longest wait: just after a pass closes (199.9 s) until the next opens (1100 s), less
    // the 0.1 s on air... departing at 199.901 s the bundle no longer fits: it waits 900.1 s for
    // the next pass and takes 0.1 s to send.
    CHECK(bounds->owlt.max == Duration(500));
    CHECK(bounds->contact_wait_max == Duration(1'100'000 - 199'901 + 100));
    auto plain = ics::dtn::PathBoundsBetween(plan, 1, 2, S(t), S(t + 5000), 100);
    REQUIRE(plain.has_value());
    CHECK(plain->contact_wait_max == bounds->contact_wait_max);
    CHECK(plain->owlt.min == bounds->owlt.min);
    CHECK(plain->owlt.max == bounds->owlt.max);
  }
  // Over [0, 5000 s], 1 -> 2 departs at 0, 199.901, 1199.901, ... 4199.901 s (6 steps: the last
  // is usable past 5000 s) and 2 -> 1 once. Each later interval [t, t + 5000 s] computes its
  // first step in each direction and finds the other five 1 -> 2 steps in the memo.
  CHECK(cache.misses() == 7 + 5 * 2);
  CHECK(cache.hits() == 5 * 5);
}

TEST_CASE("contact plan: RangeStateAt answers OwltAt and NextRangeChange at once, with overlapping ranges") {
  const char* seed_text = std::getenv("ICS_TEST_SEED");
  const std::uint64_t seed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : std::random_device{}();
  MESSAGE("reproduce with ICS_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  ContactPlan plan = RandomPlan(rng, 4, 2000, 50);
  // Long ranges over the 200 s ones, some nested, so several entries cover an instant.
  for (int i = 0; i < 40; ++i) {
    const auto a = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 4)(rng);
    const auto b = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 4)(rng);
    const std::int64_t start = std::uniform_int_distribution<std::int64_t>(-100'000, 2'000'000)(rng);
    const std::int64_t length = std::uniform_int_distribution<std::int64_t>(0, 900'000)(rng);
    plan.AddRange({Ms(start), Ms(start + length), a, b, Duration(std::uniform_int_distribution<int>(0, 40'000)(rng))});
  }
  for (int q = 0; q < 3000; ++q) {
    const auto a = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 5)(rng);  // 5: no ranges
    const auto b = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 5)(rng);
    // Often exactly on a 200 s boundary, where one range ends and the next starts.
    const DtnTime t = q % 4 == 0 ? S(std::uniform_int_distribution<std::int64_t>(-1, 11)(rng) * 200)
                                 : Ms(std::uniform_int_distribution<std::int64_t>(-200'000, 3'000'000)(rng));
    CAPTURE(a);
    CAPTURE(b);
    CAPTURE(t.millis());
    const ContactPlan::RangeState state = plan.RangeStateAt(a, b, t);
    CHECK(state.owlt == plan.OwltAt(a, b, t));
    CHECK(state.next_change == plan.NextRangeChange(a, b, t));
  }
  // A contact's own pair index (built with the plan, kept through AddRange and AddContact) gives
  // the same answers as the lookup by node numbers.
  plan.AddContact(Contact{S(50), S(60), 5, 1, 1000});  // a pair without ranges
  plan.AddRange({Ms(0), Ms(1'000'000), 2, 3, Duration(123)});
  for (int q = 0; q < 3000; ++q) {
    const std::size_t i = std::uniform_int_distribution<std::size_t>(0, plan.contacts().size() - 1)(rng);
    const Contact& c = plan.contacts()[i];
    const DtnTime t = Ms(std::uniform_int_distribution<std::int64_t>(-200'000, 3'000'000)(rng));
    CAPTURE(i);
    CAPTURE(t.millis());
    const ContactPlan::RangeState by_pair = plan.RangeStateAt(c.from, c.to, t);
    const ContactPlan::RangeState by_contact = plan.ContactRangeStateAt(i, t);
    CHECK(by_contact.owlt == by_pair.owlt);
    CHECK(by_contact.next_change == by_pair.next_change);
  }
}

TEST_CASE("contact plan: contacts given in any order are sorted by sender, start, receiver, end, rate") {
  // Many contacts share a sender and a start (one sender to many receivers at once, periods
  // repeated): the order must be the full key's, whatever the input order.
  std::mt19937_64 rng(5);
  std::vector<Contact> contacts;
  for (int i = 0; i < 4000; ++i) {
    const auto from = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 4)(rng);
    const auto to = std::uniform_int_distribution<ics::clock::NodeNumber>(1, 6)(rng);
    const std::int64_t start = std::uniform_int_distribution<std::int64_t>(0, 30)(rng) * 100;
    const std::int64_t length = std::uniform_int_distribution<std::int64_t>(1, 3)(rng) * 50;
    const std::uint64_t rate = std::uniform_int_distribution<std::uint64_t>(1, 3)(rng) * 1000;
    contacts.push_back(Contact{S(start), S(start + length), from, to, rate, i % 2 == 0 ? 1.0 : 0.5});
  }
  // Sorted runs first (a plan written period by period), then shuffled.
  for (int shuffled = 0; shuffled < 2; ++shuffled) {
    std::vector<Contact> input = contacts;
    if (shuffled == 1) {
      std::shuffle(input.begin(), input.end(), rng);
    } else {
      std::sort(input.begin(), input.begin() + 2000, [](const Contact& x, const Contact& y) {
        return std::tie(x.from, x.start) < std::tie(y.from, y.start);
      });
    }
    const ContactPlan plan(input, {});
    std::vector<Contact> expected = contacts;
    std::sort(expected.begin(), expected.end(), [](const Contact& x, const Contact& y) {
      return std::tie(x.from, x.start, x.to, x.end, x.rate_bytes_per_s, x.confidence) <
             std::tie(y.from, y.start, y.to, y.end, y.rate_bytes_per_s, y.confidence);
    });
    CHECK(plan.contacts() == expected);
  }
}

TEST_CASE("routing: a copied workspace searches like the one it was copied from") {
  std::mt19937_64 rng(11);
  const ContactPlan plan = RandomPlan(rng, 5, 3000, 120);
  ics::dtn::RouteWorkspace used;
  const std::optional<Route> first = FindRoute(plan, 1, 4, S(10), 500, kNever, RouteOptions{}, used);
  ics::dtn::RouteWorkspace copy = used;  // copies the last search's state, which the next one resets
  ics::dtn::RouteWorkspace empty;
  copy = used;
  for (ics::clock::NodeNumber to = 2; to <= 5; ++to) {
    const std::optional<Route> a = FindRoute(plan, 1, to, S(700), 800, kNever, RouteOptions{}, copy);
    const std::optional<Route> b = FindRoute(plan, 1, to, S(700), 800, kNever, RouteOptions{}, empty);
    REQUIRE(a.has_value() == b.has_value());
    if (a) {
      CHECK(a->arrival == b->arrival);
      CHECK(a->hops.size() == b->hops.size());
    }
  }
  CHECK(first.has_value() == FindRoute(plan, 1, 4, S(10), 500, kNever).has_value());
}

TEST_CASE("contact plan: NextNotEndedBy finds the first contact still open, skipping ended blocks") {
  const char* seed_text = std::getenv("ICS_TEST_SEED");
  const std::uint64_t seed = seed_text != nullptr ? std::strtoull(seed_text, nullptr, 10) : std::random_device{}();
  MESSAGE("reproduce with ICS_TEST_SEED=" << seed);
  std::mt19937_64 rng(seed);
  // Node 1: a few long contacts among hundreds of short passes (the case the blocks are for);
  // node 2: only short passes; node 3: one contact.
  std::vector<Contact> list;
  for (int i = 0; i < 700; ++i) {
    const std::int64_t start = std::uniform_int_distribution<std::int64_t>(0, 10'000'000)(rng);
    const bool long_one = i % 97 == 0;
    const std::int64_t length = long_one ? 4'000'000 : std::uniform_int_distribution<std::int64_t>(1, 30'000)(rng);
    list.push_back({Ms(start), Ms(start + length), static_cast<ics::clock::NodeNumber>(1 + i % 2), 9, 1000});
  }
  list.push_back({Ms(5'000), Ms(6'000), 3, 9, 1000});
  const ContactPlan plan(list, {});
  const auto& contacts = plan.contacts();
  for (int q = 0; q < 4000; ++q) {
    const std::size_t i = std::uniform_int_distribution<std::size_t>(0, contacts.size())(rng);
    const std::size_t end = std::uniform_int_distribution<std::size_t>(i, contacts.size())(rng);
    const DtnTime t = Ms(std::uniform_int_distribution<std::int64_t>(-1, 14'100'000)(rng));
    std::size_t expected = i;
    while (expected < end && contacts[expected].end <= t) ++expected;
    CAPTURE(i);
    CAPTURE(end);
    CAPTURE(t.millis());
    CHECK(plan.NextNotEndedBy(i, end, t) == expected);
  }
  // By hand: node 3's only contact ends at 6 s.
  const std::size_t three = plan.ContactsFromBegin(3);
  CHECK(plan.NextNotEndedBy(three, three + 1, Ms(5'999)) == three);
  CHECK(plan.NextNotEndedBy(three, three + 1, Ms(6'000)) == three + 1);
}
