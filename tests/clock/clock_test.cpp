// Checks the three Clock implementations: the system clock against std::chrono, the simulated
// clock's only-forward rule (a backwards step aborts, checked in a forked child), and the scaled
// clock's arithmetic with an injected origin, bracketing its reads with steady-clock readings.
#include "clock/clock.h"

#include <doctest/doctest.h>

#include <chrono>

#include "test_support.h"

namespace ics::clock {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

std::int64_t UnixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_CASE("clock: the system clock reads UTC as DTN time") {
  const std::int64_t before = UnixNowMs();
  const DtnTime now = SystemClock().Now();
  const std::int64_t after = UnixNowMs();
  CHECK(now.unix_millis() >= before);
  CHECK(now.unix_millis() <= after);
  CHECK(now > DtnTime::ParseIso8601("2024-01-01").value());
}

TEST_CASE("clock: the simulated clock moves only when its owner moves it") {
  SimulatedClock c(DtnTime::FromMillis(1000));
  CHECK(c.Now() == DtnTime::FromMillis(1000));
  CHECK(c.Now() == DtnTime::FromMillis(1000));
  c.Advance(20min);
  CHECK(c.Now() == DtnTime::FromMillis(1000) + 20min);
  c.AdvanceTo(c.Now());  // standing still is allowed
  c.AdvanceTo(DtnTime::FromMillis(5'000'000));
  CHECK(c.Now() == DtnTime::FromMillis(5'000'000));
  CHECK(SimulatedClock().Now() == DtnTime());
}

TEST_CASE("clock: the simulated clock aborts with a message rather than go backwards") {
  const std::string message = testing::AbortMessage([] {
    SimulatedClock c(DtnTime::FromMillis(1000));
    c.AdvanceTo(DtnTime::FromMillis(999));
  });
  CHECK(message.find("backwards") != std::string::npos);
  CHECK(message.find("2000-01-01T00:00:01.000Z") != std::string::npos);
  CHECK(message.find("2000-01-01T00:00:00.999Z") != std::string::npos);
}

TEST_CASE("clock: a scaled clock starts at the mission origin when the origin is now") {
  const DtnTime mission = DtnTime::ParseIso8601("2026-11-29T04:00:00Z").value();
  const auto before = Steady::now();
  const ScaledClock c({.wall = SystemClock().Now(), .mission = mission}, 600.0);
  const DtnTime first = c.Now();
  const auto after = Steady::now();
  // Between the origin's wall read and the first Now() at most (after - before) wall time passed,
  // plus up to 1 ms lost to the wall clock's millisecond truncation; mission time is 600x that.
  const auto wall_ms_max = std::chrono::duration_cast<std::chrono::milliseconds>(after - before) + 2ms;
  CHECK(first >= mission - 600ms);
  CHECK(first <= mission + 600 * wall_ms_max);
  CHECK(c.scale() == 600.0);
  CHECK(c.origin().mission == mission);
}

TEST_CASE("clock: a scaled clock at scale 600 moves 600 mission ms per wall ms") {
  const DtnTime mission = DtnTime::FromMillis(123'456'789);
  const ScaledClock c({.wall = SystemClock().Now(), .mission = mission}, 600.0);
  // Bracket the clock's two reads with steady-clock reads: the outer pair bounds the elapsed
  // time from above, the inner pair from below.
  const auto outer_start = Steady::now();
  const DtnTime t0 = c.Now();
  const auto inner_start = Steady::now();
  // Wait (by condition, not a sleep) until 2 ms of wall time have passed.
  while (Steady::now() - inner_start < 2ms) {
  }
  const auto inner_end = Steady::now();
  const DtnTime t1 = c.Now();
  const auto outer_end = Steady::now();
  using Ns = std::chrono::nanoseconds;
  const double lo_ms = std::chrono::duration_cast<Ns>(inner_end - inner_start).count() * 600.0 / 1e6;
  const double hi_ms = std::chrono::duration_cast<Ns>(outer_end - outer_start).count() * 600.0 / 1e6;
  const auto moved = static_cast<double>((t1 - t0).count());
  INFO("mission ms moved: ", moved, " expected within [", lo_ms, ", ", hi_ms, "]");
  // +-1 ms for each read's floor to the millisecond.
  CHECK(moved >= lo_ms - 1.0);
  CHECK(moved <= hi_ms + 1.0);
  CHECK(moved >= 1200.0 - 1.0);
}

TEST_CASE("clock: a scaled clock whose origin lies in the past has run scale times as far") {
  const DtnTime mission = DtnTime::FromMillis(0);
  const auto before = Steady::now();
  const DtnTime wall = SystemClock().Now() - 10s;
  const ScaledClock c({.wall = wall, .mission = mission}, 2.0);
  const DtnTime now = c.Now();
  const auto after = Steady::now();
  const auto slack = std::chrono::duration_cast<std::chrono::milliseconds>(after - before) + 2ms;
  // 10 s of wall time at scale 2 is 20 s of mission time.
  CHECK(now >= mission + 20s - 2 * 1ms);
  CHECK(now <= mission + 20s + 2 * slack);
}

TEST_CASE("clock: a scaled clock never runs backwards between reads") {
  const ScaledClock c({.wall = SystemClock().Now(), .mission = DtnTime()}, 1000.0);
  DtnTime last = c.Now();
  for (int i = 0; i < 10'000; ++i) {
    const DtnTime t = c.Now();
    REQUIRE(t >= last);
    last = t;
  }
}

TEST_CASE("clock: WallSpan converts mission spans to wall time, rounding up") {
  const ScaledClock c({.wall = DtnTime(), .mission = DtnTime()}, 600.0);
  CHECK(c.WallSpan(600s) == std::chrono::nanoseconds(1'000'000'000));
  CHECK(c.WallSpan(10min) == 1s);
  CHECK(c.WallSpan(0ms) == 0ns);
  const ScaledClock third({.wall = DtnTime(), .mission = DtnTime()}, 3.0);
  CHECK(third.WallSpan(1ms) == 333'334ns);  // 333'333.3 ns rounded up
  const ScaledClock slow({.wall = DtnTime(), .mission = DtnTime()}, 0.5);
  CHECK(slow.WallSpan(1s) == 2s);
  CHECK(slow.WallSpan(DtnTime::Max() - DtnTime()) == std::chrono::nanoseconds::max());
}

TEST_CASE("clock: a scaled clock refuses a scale that is not positive") {
  CHECK(testing::AbortMessage([] {
          ScaledClock c({.wall = DtnTime(), .mission = DtnTime()}, 0.0);
        }).find("scale must be") != std::string::npos);
  CHECK(testing::AbortMessage([] {
          ScaledClock c({.wall = DtnTime(), .mission = DtnTime()}, -2.0);
        }).find("scale must be") != std::string::npos);
}

}  // namespace
}  // namespace ics::clock
