// Where "now" comes from. Every core takes a Clock (or a `now` argument); none reads the wall
// clock itself, so the same code runs live, under test and in the replayer.
#pragma once

#include <chrono>
#include <memory>

#include "clock/time.h"

namespace ics::clock {

// Thread-safety: Now() may be called from any thread on the implementations here.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual DtnTime Now() const = 0;
};

// The host's UTC clock (std::chrono::system_clock).
class SystemClock final : public Clock {
 public:
  DtnTime Now() const override;
};

// Time that moves only when its owner moves it: for tests and the replayer.
// Not thread-safe. Invariant: time never goes backwards (AdvanceTo aborts if asked to).
class SimulatedClock final : public Clock {
 public:
  explicit SimulatedClock(DtnTime start = DtnTime()) : now_(start) {}
  DtnTime Now() const override { return now_; }
  void AdvanceTo(DtnTime t);
  void Advance(Duration d) { AdvanceTo(now_ + d); }

 private:
  DtnTime now_;
};

// Mission time running `scale` mission seconds per wall second from a shared origin:
//   now = mission_origin + (wall_now - wall_origin) * scale.
// Processes given the same origins and scale agree on mission time to within their wall clocks'
// agreement, so real daemons can rehearse a Mars pass on one machine (scale 600: a 10-minute light
// time takes one wall second). The wall time comes from `wall` (the system clock by default) and is
// read through steady_clock in between so a wall-clock step does not make mission time jump.
// REQUIRES: scale > 0 and finite (the constructor aborts otherwise).
class ScaledClock final : public Clock {
 public:
  struct Origin {
    DtnTime wall;     // a wall-clock instant every process agrees on
    DtnTime mission;  // the mission time at that instant
  };
  ScaledClock(Origin origin, double scale);
  DtnTime Now() const override;
  double scale() const { return scale_; }
  const Origin& origin() const { return origin_; }
  // Wall time that corresponds to a mission-time span (for sleeping until a mission deadline),
  // rounded up to the nanosecond so a sleeper never wakes early; saturates at nanoseconds::max().
  std::chrono::nanoseconds WallSpan(Duration mission_span) const;

 private:
  Origin origin_;
  double scale_;
  DtnTime wall_at_start_;
  std::chrono::steady_clock::time_point steady_at_start_;
};

}  // namespace ics::clock
