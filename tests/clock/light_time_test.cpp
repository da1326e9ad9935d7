// Checks the light-time models: the range table's symmetric, overlapping bounds, and the orbital
// model's OWLT figures against the circular-orbit extremes computed by hand. Bounds over random
// intervals (seeded, seed printed) must contain the OWLT of every instant sampled inside them.
#include "clock/light_time.h"

#include <doctest/doctest.h>

#include <random>

#include "test_support.h"

namespace ics::clock {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kMsPerDay = 86'400'000;

DtnTime At(std::int64_t s) { return DtnTime::FromMillis(s * 1000); }

TEST_CASE("light_time: a range table bound is the range's OWLT, either direction") {
  RangeTable table;
  table.Add({.start = At(0), .end = At(100), .a = 1, .b = 2, .owlt = 600s});
  CHECK(table.Bound(1, 2, At(10), At(20)) == OwltBound{600s, 600s});
  CHECK(table.Bound(2, 1, At(10), At(20)) == OwltBound{600s, 600s});
  CHECK(table.Bound(1, 3, At(10), At(20)) == std::nullopt);
  CHECK(table.Bound(3, 2, At(10), At(20)) == std::nullopt);
  // The end is exclusive and the interval's ends inclusive.
  CHECK(table.Bound(1, 2, At(100), At(200)) == std::nullopt);
  CHECK(table.Bound(1, 2, At(99), At(99)) == OwltBound{600s, 600s});
  CHECK(table.Bound(1, 2, At(-50), At(0)) == OwltBound{600s, 600s});
  CHECK(table.Bound(1, 2, At(-50), DtnTime::FromMillis(-1)) == std::nullopt);
}

TEST_CASE("light_time: a range table bound spans every entry overlapping the interval") {
  RangeTable table({
      {.start = At(0), .end = At(100), .a = 1, .b = 2, .owlt = 600s},
      {.start = At(100), .end = At(200), .a = 2, .b = 1, .owlt = 700s},  // listed the other way
      {.start = At(150), .end = At(300), .a = 1, .b = 2, .owlt = 650s},  // overlaps the previous
      {.start = At(0), .end = At(300), .a = 1, .b = 3, .owlt = 5s},      // another pair
  });
  CHECK(table.entries().size() == 4);
  CHECK(table.Bound(1, 2, At(50), At(120)) == OwltBound{600s, 700s});
  CHECK(table.Bound(1, 2, At(160), At(170)) == OwltBound{650s, 700s});
  CHECK(table.Bound(2, 1, At(0), At(299)) == OwltBound{600s, 700s});
  CHECK(table.Bound(1, 2, At(200), At(250)) == OwltBound{650s, 650s});
  CHECK(table.Bound(3, 1, At(0), At(1000)) == OwltBound{5s, 5s});
  CHECK(RangeTable().Bound(1, 2, At(0), At(1)) == std::nullopt);
}

TEST_CASE("light_time: a range table refuses malformed entries and reversed intervals") {
  CHECK(testing::AbortMessage([] {
          RangeTable t;
          t.Add({.start = At(10), .end = At(0), .a = 1, .b = 2, .owlt = 1s});
        }).find("malformed range") != std::string::npos);
  CHECK(testing::AbortMessage([] {
          RangeTable t;
          t.Add({.start = At(0), .end = At(10), .a = 1, .b = 2, .owlt = -1s});
        }).find("malformed range") != std::string::npos);
  CHECK(testing::AbortMessage([] {
          (void)RangeTable().Bound(1, 2, At(10), At(0));
        }).find("ends before it starts") != std::string::npos);
}

TEST_CASE("light_time: body names parse in any case") {
  CHECK(ParseBody("earth") == Body::kEarth);
  CHECK(ParseBody("MARS") == Body::kMars);
  CHECK(ParseBody("Moon") == Body::kMoon);
  CHECK(ParseBody("venus") == std::nullopt);
  CHECK(ParseBody("") == std::nullopt);
  for (Body b : {Body::kEarth, Body::kMoon, Body::kMars}) CHECK(ParseBody(BodyName(b)) == b);
  CHECK(BodyName(Body::kMars) == "Mars");
}

TEST_CASE("light_time: Earth-Mars OWLT spans the circular-orbit extremes over a synodic period") {
  // By hand: closest 1.523679 - 1 = 0.523679 AU = 78,342,383 km -> 261.3 s;
  // farthest 2.523679 AU = 377,538,124 km -> 1259.3 s.
  const DtnTime from = DtnTime::ParseIso8601("2026-01-01").value();
  Duration lo = Duration::max();
  Duration hi = Duration::min();
  for (std::int64_t hour = 0; hour <= 780 * 24; ++hour) {
    const Duration owlt = OrbitalModel::Owlt(Body::kEarth, Body::kMars, from + Duration(hour * 3'600'000));
    lo = std::min(lo, owlt);
    hi = std::max(hi, owlt);
  }
  CHECK(lo >= 255s);
  CHECK(lo <= 267s);
  CHECK(hi >= 1254s);
  CHECK(hi <= 1266s);

  OrbitalModel model;
  model.Place(1, Body::kEarth);
  model.Place(4, Body::kMars);
  const auto bound = model.Bound(1, 4, from, from + Duration(780 * kMsPerDay));
  REQUIRE(bound.has_value());
  CHECK(bound->min >= 255s);
  CHECK(bound->min <= 267s);
  CHECK(bound->max >= 1254s);
  CHECK(bound->max <= 1266s);
  CHECK(bound->min <= lo);
  CHECK(bound->max >= hi);
  CHECK(model.Bound(4, 1, from, from + Duration(780 * kMsPerDay)) == bound);
}

TEST_CASE("light_time: Earth-Moon OWLT is about 1.28 s") {
  // 384,400 km / 299,792.458 km/s = 1.2822 s.
  for (std::int64_t day = 0; day < 60; ++day) {
    const Duration owlt =
        OrbitalModel::Owlt(Body::kEarth, Body::kMoon, DtnTime() + Duration(day * kMsPerDay));
    CHECK(owlt >= 1250ms);
    CHECK(owlt <= 1310ms);
    CHECK(owlt == 1282ms);
  }
  OrbitalModel model;
  model.Place(1, Body::kEarth);
  model.Place(3, Body::kMoon);
  CHECK(model.Bound(3, 1, DtnTime(), DtnTime() + Duration(365 * kMsPerDay)) == OwltBound{1282ms, 1283ms});
}

TEST_CASE("light_time: Moon-Mars OWLT differs from Earth-Mars by at most the Earth-Moon OWLT") {
  for (std::int64_t day = 0; day < 800; day += 7) {
    const DtnTime t = DtnTime() + Duration(day * kMsPerDay);
    const auto earth_mars = OrbitalModel::Owlt(Body::kEarth, Body::kMars, t).count();
    const auto moon_mars = OrbitalModel::Owlt(Body::kMoon, Body::kMars, t).count();
    CHECK(std::abs(earth_mars - moon_mars) <= 1283 + 1);
    CHECK(OrbitalModel::Owlt(Body::kMars, Body::kMoon, t).count() == moon_mars);
  }
}

TEST_CASE("light_time: nodes on one body are 0 apart and unplaced nodes are unknown") {
  OrbitalModel model;
  model.Place(1, Body::kEarth);
  model.Place(2, Body::kEarth);
  model.Place(5, Body::kMars);
  CHECK(model.BodyOf(2) == Body::kEarth);
  CHECK(model.BodyOf(9) == std::nullopt);
  CHECK(model.Bound(1, 2, DtnTime(), DtnTime() + 1h) == OwltBound{});
  CHECK(model.Bound(1, 9, DtnTime(), DtnTime() + 1h) == std::nullopt);
  CHECK(OrbitalModel::Owlt(Body::kMars, Body::kMars, DtnTime()) == 0ms);
  model.Place(2, Body::kMars);  // moved
  CHECK(model.Bound(2, 5, DtnTime(), DtnTime() + 1h) == OwltBound{});
}

TEST_CASE("light_time: an orbital bound over an interval contains every instant's OWLT") {
  const std::uint64_t seed = testing::TestSeed();
  MESSAGE("seed=", seed, " (reproduce with ICS_SEED=", seed, ")");
  INFO("seed=", seed);
  std::mt19937_64 rng(seed);
  OrbitalModel model;
  model.Place(1, Body::kEarth);
  model.Place(2, Body::kMars);
  model.Place(3, Body::kMoon);
  std::uniform_int_distribution<std::int64_t> start(0, 40LL * 365 * kMsPerDay);
  // Interval lengths from a second to ten years, so sampling is sometimes dense, sometimes sparse.
  std::uniform_real_distribution<double> log_len(3.0, 11.5);
  const std::pair<NodeNumber, NodeNumber> pairs[] = {{1, 2}, {3, 2}, {1, 3}};
  for (int i = 0; i < 60; ++i) {
    const DtnTime from = DtnTime::FromMillis(start(rng));
    const DtnTime to = from + Duration(static_cast<std::int64_t>(std::pow(10.0, log_len(rng))));
    for (const auto& [a, b] : pairs) {
      const auto bound = model.Bound(a, b, from, to);
      REQUIRE(bound.has_value());
      INFO("interval ", from.ToIso8601(), " .. ", to.ToIso8601(), " nodes ", a, "-", b, " bound ",
           bound->min.count(), "..", bound->max.count());
      REQUIRE(bound->min <= bound->max);
      // Instants off the Bound's own sampling grid (random, plus both ends).
      std::uniform_int_distribution<std::int64_t> instant(from.millis(), to.millis());
      for (int k = 0; k < 300; ++k) {
        const DtnTime t = k == 0 ? from : k == 1 ? to : DtnTime::FromMillis(instant(rng));
        const Duration owlt = OrbitalModel::Owlt(*model.BodyOf(a), *model.BodyOf(b), t);
        CHECK(bound->min <= owlt);
        CHECK(owlt <= bound->max);
      }
    }
  }
}

TEST_CASE("light_time: an orbital bound holds at every second of its interval and is at most 6 ms wide of it") {
  // Brute force, densely: the OWLT at every second of intervals from a minute to three days
  // (the replayer asks for six-hour steps), Earth-Mars and Moon-Mars, at phases from near
  // opposition to near conjunction. The bound samples once a minute and widens by at most
  // 54 km/s x 30 s ~ 5.4 ms (+ 1 ms of rounding), so it must contain every instant's OWLT and
  // lie within 6.4 ms of the extremes the dense scan saw (7 ms with the scan's own rounding).
  const std::uint64_t seed = testing::TestSeed();
  INFO("seed=", seed);
  std::mt19937_64 rng(seed);
  OrbitalModel model;
  model.Place(1, Body::kEarth);
  model.Place(2, Body::kMars);
  model.Place(3, Body::kMoon);
  std::uniform_int_distribution<std::int64_t> start(0, 30LL * 365 * kMsPerDay);
  const std::int64_t lengths_s[] = {60, 61, 3'599, 6 * 3'600, 6 * 3'600 + 17, 3 * 86'400};
  const std::pair<NodeNumber, NodeNumber> pairs[] = {{1, 2}, {3, 2}};
  for (int i = 0; i < 8; ++i) {
    const DtnTime from = DtnTime::FromMillis(start(rng));
    for (const std::int64_t length_s : lengths_s) {
      const DtnTime to = from + Duration(length_s * 1000);
      for (const auto& [a, b] : pairs) {
        const auto bound = model.Bound(a, b, from, to);
        REQUIRE(bound.has_value());
        INFO("interval ", from.ToIso8601(), " + ", length_s, " s nodes ", a, "-", b, " bound ",
             bound->min.count(), "..", bound->max.count());
        Duration seen_min = Duration::max(), seen_max = Duration::min();
        for (std::int64_t s = 0; s <= length_s; ++s) {
          // Every second, plus a millisecond offset that moves off any whole-second grid.
          const DtnTime t = std::min(to, from + Duration(s * 1000 + (s * 7) % 1000));
          const Duration owlt = OrbitalModel::Owlt(*model.BodyOf(a), *model.BodyOf(b), t);
          seen_min = std::min(seen_min, owlt);
          seen_max = std::max(seen_max, owlt);
          if (owlt < bound->min || owlt > bound->max) {
            FAIL("OWLT ", owlt.count(), " ms at ", t.ToIso8601(), " outside the bound");
          }
        }
        CHECK(seen_min - bound->min <= 7ms);
        CHECK(bound->max - seen_max <= 7ms);
      }
    }
  }
}

TEST_CASE("light_time: a bound over a short interval is tight and one over forever stays geometric") {
  OrbitalModel model;
  model.Place(1, Body::kEarth);
  model.Place(2, Body::kMars);
  const DtnTime t = DtnTime::ParseIso8601("2027-02-20").value();
  const auto instant = model.Bound(1, 2, t, t);
  const Duration owlt = OrbitalModel::Owlt(Body::kEarth, Body::kMars, t);
  REQUIRE(instant.has_value());
  CHECK(instant->max - instant->min <= 1ms);
  CHECK(instant->min <= owlt);
  CHECK(owlt <= instant->max);
  // An hour: the distance changes by at most ~54 km/s x 3600 s ~ 0.65 light-seconds.
  const auto hour = model.Bound(1, 2, t, t + 1h);
  CHECK(hour->max - hour->min <= 700ms);
  // Until "never": the sampling is sparse, but the geometry caps the bound at 261..1260 s.
  const auto forever = model.Bound(1, 2, DtnTime(), DtnTime::Max());
  REQUIRE(forever.has_value());
  CHECK(forever->min >= 261s);
  CHECK(forever->max <= 1260s);
}

TEST_CASE("light_time: clock drift over a span rounds up to the millisecond") {
  const ClockErrorBound ten{.drift_ppm = 10.0};
  CHECK(ten.DriftOver(1h) == 36ms);           // 3,600,000 ms x 10e-6 = 36 exactly
  CHECK(ten.DriftOver(1'000'000ms) == 10ms);  // exactly 10, not 11
  CHECK(ten.DriftOver(2'689'000ms) == 27ms);  // 26.89 -> 27
  CHECK(ten.DriftOver(1ms) == 1ms);           // 0.00001 -> 1
  CHECK(ten.DriftOver(0ms) == 0ms);
  CHECK(ten.DriftOver(-1h) == 36ms);                              // a magnitude
  CHECK(ClockErrorBound{.drift_ppm = 0.5}.DriftOver(1h) == 2ms);  // 1.8 -> 2
  CHECK(ClockErrorBound{.drift_ppm = 0.0}.DriftOver(1h) == 0ms);
  CHECK(ClockErrorBound{.drift_ppm = 1.0 / 3.0}.DriftOver(3'000'000ms) == 1ms);  // 0.99999.. -> 1
  CHECK(ClockErrorBound{.drift_ppm = 100.0}.DriftOver(Duration(14 * kMsPerDay)) == 120'960ms);
}

}  // namespace
}  // namespace ics::clock
