// One-way light time (OWLT) between nodes: from a table of ranges (ION contact plans' `a range`
// lines) or from a circular-coplanar-orbit model of Earth, Moon and Mars.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clock/time.h"

namespace ics::clock {

// A node is named by its ipn node number (RFC 9758 / RFC 9171 `ipn:N.S`).
using NodeNumber = std::uint64_t;

// Bounds of the OWLT over an interval. Invariant: min <= max.
struct OwltBound {
  Duration min{0};
  Duration max{0};
  bool operator==(const OwltBound&) const = default;
};

// Thread-safety: const methods are safe to call concurrently.
class LightTimeModel {
 public:
  virtual ~LightTimeModel() = default;
  // The OWLT bounds between a and b for every instant of [from, to] (from <= to).
  // nullopt when the model knows nothing of that pair over any part of the interval.
  virtual std::optional<OwltBound> Bound(NodeNumber a, NodeNumber b, DtnTime from, DtnTime to) const = 0;
};

// One `a range +START +END A B OWLT` line. As in ION, a range holds in both directions.
struct RangeEntry {
  DtnTime start;
  DtnTime end;  // exclusive
  NodeNumber a = 0;
  NodeNumber b = 0;
  Duration owlt{0};
};

// Ranges as a table. Where several entries overlap the interval, the bound spans all of them.
class RangeTable final : public LightTimeModel {
 public:
  RangeTable() = default;
  explicit RangeTable(std::vector<RangeEntry> entries);
  // REQUIRES: entry.start <= entry.end and entry.owlt >= 0 (aborts otherwise: validate when parsing).
  void Add(const RangeEntry& entry);
  // An entry counts when [start, end) meets [from, to]. Aborts if to < from.
  std::optional<OwltBound> Bound(NodeNumber a, NodeNumber b, DtnTime from, DtnTime to) const override;
  const std::vector<RangeEntry>& entries() const { return entries_; }

 private:
  std::vector<RangeEntry> entries_;
};

enum class Body { kEarth, kMoon, kMars };
std::string_view BodyName(Body body);
std::optional<Body> ParseBody(std::string_view name);  // "earth", "moon", "mars" (any case)

// Earth and Mars on circular, coplanar heliocentric orbits, the Moon on a circular orbit about
// the Earth, all at mean motion from their J2000 (DTN time 0) mean longitudes. Earth–Mars OWLT
// then ranges over about 261 s to 1,260 s (the real extremes with eccentric orbits are about
// 182 s and 1,342 s: use a range table where that matters); Earth–Moon is about 1.28 s.
// Nodes are placed on bodies; two nodes on one body have OWLT 0 (surface distances ignored).
class OrbitalModel final : public LightTimeModel {
 public:
  OrbitalModel() = default;
  void Place(NodeNumber node, Body body);
  std::optional<Body> BodyOf(NodeNumber node) const;
  // The OWLT between two bodies at an instant, rounded to the nearest millisecond.
  static Duration Owlt(Body a, Body b, DtnTime t);
  // Bound over an interval: the extremes of the sampled distance, widened by the most the
  // distance can change between samples, so the bound holds for every instant in the interval.
  // Samples at least once a minute (cost proportional to the interval: 361 evaluations for six
  // hours), so the widening is at most the bodies' greatest relative speed x 30 s (Earth–Mars:
  // 54 km/s x 30 s ~ 5.4 ms of light time); at most 4097 evaluations for intervals longer than
  // 4096 minutes (sparser, widened more, and clamped to what the orbits' radii allow). min
  // rounded down and max rounded up to the millisecond. nullopt when either node is not placed.
  // Aborts if to < from.
  std::optional<OwltBound> Bound(NodeNumber a, NodeNumber b, DtnTime from, DtnTime to) const override;

 private:
  std::map<NodeNumber, Body> placement_;
};

// A node's clock error: its rate error (drift, in parts per million) and its offset from true
// time at the last synchronisation (skew). Configuration, not measurement.
struct ClockErrorBound {
  double drift_ppm = 0.0;
  Duration skew{0};
  // The most a span of `elapsed` measured on this clock can differ from true time, rounded up
  // to the next millisecond: ceil(|elapsed| * |drift_ppm| / 1e6). Exact in integers when drift_ppm
  // is a whole number of parts per billion.
  Duration DriftOver(Duration elapsed) const;
};

}  // namespace ics::clock
