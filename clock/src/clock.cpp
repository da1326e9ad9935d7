#include "clock/clock.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace ics::clock {
namespace {

DtnTime ReadSystemClock() {
  const auto since_unix = std::chrono::system_clock::now().time_since_epoch();
  return DtnTime::FromUnixMillis(std::chrono::floor<std::chrono::milliseconds>(since_unix).count());
}

[[noreturn]] void Die(const std::string& message) {
  std::fputs(message.c_str(), stderr);
  std::fputc('\n', stderr);
  std::abort();
}

}  // namespace

DtnTime SystemClock::Now() const { return ReadSystemClock(); }

void SimulatedClock::AdvanceTo(DtnTime t) {
  if (t < now_) {
    Die(fmt::format("SimulatedClock::AdvanceTo: time would go backwards from {} to {}", now_.ToIso8601(),
                    t.ToIso8601()));
  }
  now_ = t;
}

ScaledClock::ScaledClock(Origin origin, double scale)
    : origin_(origin),
      scale_(scale),
      // One wall-clock read anchors this process to the shared origin; from then on only the
      // steady clock is read, so an NTP step of the wall clock cannot make mission time jump
      // (or run backwards) under a running process.
      wall_at_start_(ReadSystemClock()),
      steady_at_start_(std::chrono::steady_clock::now()) {
  if (!(scale > 0.0) || !std::isfinite(scale)) {
    Die(fmt::format("ScaledClock: scale must be a finite number > 0, got {}", scale));
  }
}

DtnTime ScaledClock::Now() const {
  const auto steady_elapsed = std::chrono::steady_clock::now() - steady_at_start_;
  const auto wall_elapsed_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall_at_start_ - origin_.wall) +
      std::chrono::duration_cast<std::chrono::nanoseconds>(steady_elapsed);
  // long double keeps sub-millisecond precision over years of wall time at large scales; floor
  // keeps Now() monotonic because the steady clock is.
  const long double mission_ms =
      std::floor(static_cast<long double>(wall_elapsed_ns.count()) * scale_ / 1e6L);
  return origin_.mission + Duration(static_cast<std::int64_t>(mission_ms));
}

std::chrono::nanoseconds ScaledClock::WallSpan(Duration mission_span) const {
  // Rounded up: a driver that sleeps this long wakes at or after the mission deadline, never before.
  // Spans beyond ~292 years of wall time saturate instead of overflowing.
  const long double ns = std::ceil(static_cast<long double>(mission_span.count()) * 1e6L / scale_);
  constexpr auto kMax = std::chrono::nanoseconds::max();
  constexpr auto kMin = std::chrono::nanoseconds::min();
  if (ns >= static_cast<long double>(kMax.count())) return kMax;
  if (ns <= static_cast<long double>(kMin.count())) return kMin;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(ns));
}

}  // namespace ics::clock
