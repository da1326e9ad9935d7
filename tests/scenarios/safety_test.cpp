// Goal: the safety checker finds each kind of violation and passes clean histories. Method: feed
// it fabricated histories with planted violations (overlapping holds, a token going backwards at
// a guard, a grant in an old epoch) and their near misses (touching holds, equal tokens).
#include <doctest/doctest.h>

#include "scenarios/safety.h"

namespace ics::scenarios {
namespace {

clock::DtnTime T(std::int64_t s) { return clock::DtnTime::FromMillis(800'000'000'000 + s * 1000); }
const coordinator::ResourceName kPad{"mars", "pad"};

HoldInterval Hold(std::string rover, clock::NodeNumber id, coordinator::FencingToken token, std::int64_t from, std::int64_t until) {
  return {std::move(rover), id, kPad, token, 1, T(from), T(until)};
}

TEST_CASE("safety: a clean history has no violations") {
  History h;
  h.holds = {Hold("a", 2, 1, 0, 100), Hold("b", 3, 2, 100, 200), Hold("a", 2, 3, 250, 300)};
  h.acceptances = {{"g", kPad, 1, 2, T(10)}, {"g", kPad, 1, 2, T(20)}, {"g", kPad, 2, 3, T(110)}};
  h.grants = {{1, kPad, 1, 2, T(0)}, {2, kPad, 2, 3, T(100)}};
  h.epochs = {{1, T(-1)}, {2, T(50)}};
  CHECK(CheckSafety(h).empty());
}

TEST_CASE("safety: overlapping holds of two rovers are caught, with both holders named") {
  History h;
  h.holds = {Hold("a", 2, 1, 0, 100), Hold("b", 3, 2, 99, 200)};
  const auto v = CheckSafety(h);
  REQUIRE(v.size() == 1);
  CHECK(v[0].kind == ViolationKind::kOverlappingHolds);
  CHECK(v[0].at == T(99));
  CHECK(v[0].detail.find("a believed") != std::string::npos);
  CHECK(v[0].detail.find("b believed") != std::string::npos);
}

TEST_CASE("safety: an overlap hidden behind a long hold of the same rover is caught") {
  History h;
  // a holds twice; b starts inside a's first (long) hold, after a's second (short) one.
  h.holds = {Hold("a", 2, 1, 0, 1000), Hold("a", 2, 2, 10, 20), Hold("b", 3, 3, 500, 600)};
  const auto v = CheckSafety(h);
  REQUIRE(v.size() == 1);
  CHECK(v[0].at == T(500));
}

TEST_CASE("safety: a token going backwards at a guard is caught; equal tokens are fine") {
  History h;
  h.acceptances = {{"g", kPad, 5, 2, T(1)}, {"g", kPad, 5, 2, T(2)}, {"g", kPad, 4, 3, T(3)},
                   {"other-guard", kPad, 1, 3, T(4)}};
  const auto v = CheckSafety(h);
  REQUIRE(v.size() == 1);
  CHECK(v[0].kind == ViolationKind::kTokenBackwards);
  CHECK(v[0].at == T(3));
}

TEST_CASE("safety: a grant in an epoch after a later epoch started is caught") {
  History h;
  h.epochs = {{1, T(0)}, {2, T(100)}};
  h.grants = {{1, kPad, 1, 2, T(50)}, {1, kPad, 2, 2, T(150)}, {2, kPad, 3, 2, T(160)}};
  const auto v = CheckSafety(h);
  REQUIRE(v.size() == 1);
  CHECK(v[0].kind == ViolationKind::kGrantInOldEpoch);
  CHECK(v[0].at == T(150));
}

}  // namespace
}  // namespace ics::scenarios
