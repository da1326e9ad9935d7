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
