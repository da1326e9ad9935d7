#include "clock/light_time.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numbers>

#include "int128.h"

namespace ics::clock {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fputs(message.c_str(), stderr);
  std::fputc('\n', stderr);
  std::abort();
}

constexpr double kAuKm = 149'597'870.7;
constexpr double kLightKmPerS = 299'792.458;
constexpr double kSecondsPerDay = 86'400.0;
constexpr double kMsPerDay = 86'400'000.0;
constexpr double kTwoPi = 2.0 * std::numbers::pi;
// Bound samples the distance once per kSampleGapMs of the interval (so its cost is proportional
// to the interval's length, and its widening, at most v x kSampleGapMs / 2, does not depend on
// it), but at most kMaxGaps gaps (kMaxGaps + 1 evaluations) however long the interval.
constexpr std::int64_t kSampleGapMs = 60'000;
constexpr std::int64_t kMaxGaps = 4096;
// Spans up to this many ms times any i <= kMaxGaps fit in 64 bits.
constexpr std::int64_t kSpanMsMax64 = std::numeric_limits<std::int64_t>::max() / kMaxGaps;

struct Orbit {
  double radius_km;
  double period_days;
  double mean_longitude_j2000_deg;  // at DTN time 0 (2000-01-01T00:00Z; J2000 is 12 h later,
                                    // which is well inside the accuracy of circular orbits)
};

constexpr Orbit kEarthOrbit{1.0 * kAuKm, 365.256, 100.464};      // about the Sun
constexpr Orbit kMarsOrbit{1.523679 * kAuKm, 686.980, 355.453};  // about the Sun
constexpr Orbit kMoonOrbit{384'400.0, 27.321662, 218.316};       // about the Earth

double OrbitalSpeedKmPerS(const Orbit& o) { return kTwoPi * o.radius_km / (o.period_days * kSecondsPerDay); }

struct Vec2 {
  double x;
  double y;
};

double AngleOnOrbit(const Orbit& o, std::int64_t dtn_ms) {
  // Reduce to a fraction of a revolution before going to radians so precision does not decay
  // with the distance from J2000.
  const double revolutions = static_cast<double>(dtn_ms) / kMsPerDay / o.period_days;
  const double fraction = revolutions - std::floor(revolutions);
  return (o.mean_longitude_j2000_deg / 360.0 + fraction) * kTwoPi;
}

Vec2 OnOrbit(const Orbit& o, std::int64_t dtn_ms) {
  const double angle = AngleOnOrbit(o, dtn_ms);
  return Vec2{o.radius_km * std::cos(angle), o.radius_km * std::sin(angle)};
}

// The heliocentric orbit of a body that has one of its own (not the Moon).
const Orbit* SunOrbit(Body body) {
  switch (body) {
    case Body::kEarth:
      return &kEarthOrbit;
    case Body::kMars:
      return &kMarsOrbit;
    case Body::kMoon:
      return nullptr;
  }
  return nullptr;
}

// Heliocentric position in km.
Vec2 Position(Body body, std::int64_t dtn_ms) {
  switch (body) {
    case Body::kEarth:
      return OnOrbit(kEarthOrbit, dtn_ms);
    case Body::kMars:
      return OnOrbit(kMarsOrbit, dtn_ms);
    case Body::kMoon: {
      const Vec2 e = OnOrbit(kEarthOrbit, dtn_ms);
      const Vec2 m = OnOrbit(kMoonOrbit, dtn_ms);
      return Vec2{e.x + m.x, e.y + m.y};
    }
  }
  Die("light_time: unknown Body");
}

// The most a body's heliocentric speed can be (the Moon adds its speed about the Earth).
double MaxSpeedKmPerS(Body body) {
  switch (body) {
    case Body::kEarth:
      return OrbitalSpeedKmPerS(kEarthOrbit);
    case Body::kMars:
      return OrbitalSpeedKmPerS(kMarsOrbit);
    case Body::kMoon:
      return OrbitalSpeedKmPerS(kEarthOrbit) + OrbitalSpeedKmPerS(kMoonOrbit);
  }
  Die("light_time: unknown Body");
}

// The range of a body's distance from the Sun.
std::array<double, 2> HelioRadiusRangeKm(Body body) {
  switch (body) {
    case Body::kEarth:
      return {kEarthOrbit.radius_km, kEarthOrbit.radius_km};
    case Body::kMars:
      return {kMarsOrbit.radius_km, kMarsOrbit.radius_km};
    case Body::kMoon:
      return {kEarthOrbit.radius_km - kMoonOrbit.radius_km, kEarthOrbit.radius_km + kMoonOrbit.radius_km};
  }
  Die("light_time: unknown Body");
}

bool IsEarthMoon(Body a, Body b) {
  return (a == Body::kEarth && b == Body::kMoon) || (a == Body::kMoon && b == Body::kEarth);
}

double DistanceKm(Body a, Body b, std::int64_t dtn_ms) {
  if (a == b) return 0.0;
  if (IsEarthMoon(a, b)) return kMoonOrbit.radius_km;  // exactly, on a circular orbit
  if (const Orbit *oa = SunOrbit(a), *ob = SunOrbit(b); oa != nullptr && ob != nullptr) {
    // Two circular heliocentric orbits: the law of cosines, one cosine instead of a sine and a
    // cosine per body (the Bound of a year-long plan evaluates this about a million times). The
    // distance never falls below 0.5 AU against radii of 1 and 1.5 AU, so the subtraction keeps
    // about 15 significant digits (within a micrometre, against the 5 ms widening of Bound).
    const double ra = oa->radius_km, rb = ob->radius_km;
    const double cos_between = std::cos(AngleOnOrbit(*oa, dtn_ms) - AngleOnOrbit(*ob, dtn_ms));
    return std::sqrt(std::max(0.0, ra * ra + rb * rb - 2.0 * ra * rb * cos_between));
  }
  const Vec2 pa = Position(a, dtn_ms);
  const Vec2 pb = Position(b, dtn_ms);
  // Coordinates are below 3e8 km, so the squares cannot overflow: plain sqrt, not hypot (which
  // guards against that at several times the cost; the Bound of a long plan calls this ~1e6 times).
  const double dx = pa.x - pb.x;
  const double dy = pa.y - pb.y;
  return std::sqrt(dx * dx + dy * dy);
}

OwltBound OutwardBound(double min_km, double max_km) {
  const double min_ms = std::floor(min_km / kLightKmPerS * 1000.0);
  const double max_ms = std::ceil(max_km / kLightKmPerS * 1000.0);
  return OwltBound{Duration(static_cast<std::int64_t>(std::max(0.0, min_ms))),
                   Duration(static_cast<std::int64_t>(max_ms))};
}

// How far apart two bodies can be at all: their heliocentric radii bound it whatever the phase.
std::array<double, 2> GeometricDistanceRangeKm(Body a, Body b) {
  const auto ra = HelioRadiusRangeKm(a);
  const auto rb = HelioRadiusRangeKm(b);
  return {std::max({0.0, rb[0] - ra[1], ra[0] - rb[1]}), ra[1] + rb[1]};
}

}  // namespace

RangeTable::RangeTable(std::vector<RangeEntry> entries) {
  entries_.reserve(entries.size());
  for (const RangeEntry& e : entries) Add(e);
}

void RangeTable::Add(const RangeEntry& entry) {
  if (entry.owlt < Duration(0) || entry.end < entry.start) {
    Die(fmt::format(
        "RangeTable::Add: malformed range {} -> {} nodes {} {} owlt {} ms (need start <= end, owlt >= 0)",
        entry.start.ToIso8601(), entry.end.ToIso8601(), entry.a, entry.b, entry.owlt.count()));
  }
  entries_.push_back(entry);
}

std::optional<OwltBound> RangeTable::Bound(NodeNumber a, NodeNumber b, DtnTime from, DtnTime to) const {
  if (to < from) {
    Die(fmt::format("RangeTable::Bound: interval ends before it starts ({} > {})", from.ToIso8601(),
                    to.ToIso8601()));
  }
  std::optional<OwltBound> bound;
  for (const RangeEntry& e : entries_) {
    const bool same_pair = (e.a == a && e.b == b) || (e.a == b && e.b == a);
    // [e.start, e.end) meets [from, to].
    const bool overlaps = e.start <= to && e.end > from;
    if (!same_pair || !overlaps) continue;
    if (!bound) {
      bound = OwltBound{e.owlt, e.owlt};
    } else {
      bound->min = std::min(bound->min, e.owlt);
      bound->max = std::max(bound->max, e.owlt);
    }
  }
  return bound;
}

std::string_view BodyName(Body body) {
  switch (body) {
    case Body::kEarth:
      return "Earth";
    case Body::kMoon:
      return "Moon";
    case Body::kMars:
      return "Mars";
  }
  return "?";
}

std::optional<Body> ParseBody(std::string_view name) {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "earth") return Body::kEarth;
  if (lower == "moon") return Body::kMoon;
  if (lower == "mars") return Body::kMars;
  return std::nullopt;
}

void OrbitalModel::Place(NodeNumber node, Body body) { placement_[node] = body; }

std::optional<Body> OrbitalModel::BodyOf(NodeNumber node) const {
  const auto it = placement_.find(node);
  if (it == placement_.end()) return std::nullopt;
  return it->second;
}

Duration OrbitalModel::Owlt(Body a, Body b, DtnTime t) {
  const double seconds = DistanceKm(a, b, t.millis()) / kLightKmPerS;
  return Duration(std::llround(seconds * 1000.0));
}

std::optional<OwltBound> OrbitalModel::Bound(NodeNumber a, NodeNumber b, DtnTime from, DtnTime to) const {
  if (to < from) {
    Die(fmt::format("OrbitalModel::Bound: interval ends before it starts ({} > {})", from.ToIso8601(),
                    to.ToIso8601()));
  }
  const std::optional<Body> body_a = BodyOf(a);
  const std::optional<Body> body_b = BodyOf(b);
  if (!body_a || !body_b) return std::nullopt;
  if (*body_a == *body_b) return OwltBound{};
  if (IsEarthMoon(*body_a, *body_b)) return OutwardBound(kMoonOrbit.radius_km, kMoonOrbit.radius_km);

  // The distance is Lipschitz with constant v = the most the two bodies' relative speed can be.
  // Between two samples d_i (at t_i) and d_j (at t_j = t_i + h), every instant t satisfies
  //   d(t) >= d_i - v (t - t_i)  and  d(t) >= d_j - v (t_j - t),
  // whose lower envelope is lowest where the two lines cross: (d_i + d_j - v h) / 2. Likewise
  // d(t) <= (d_i + d_j + v h) / 2. So these per-gap figures bound every instant, not only the
  // sampled ones, with a widening of at most v h / 2.
  const double v = MaxSpeedKmPerS(*body_a) + MaxSpeedKmPerS(*body_b);
  const std::int64_t span_ms = (to - from).count();
  // One gap per started minute (0 for an instant); a six-hour step costs 361 evaluations, not
  // 4,097, for a widening of at most 54 km/s x 30 s ~ 1,600 km (5.4 ms) between Earth and Mars.
  const std::int64_t gaps =
      std::min<std::int64_t>(kMaxGaps, span_ms / kSampleGapMs + (span_ms % kSampleGapMs != 0 ? 1 : 0));
  double min_km = DistanceKm(*body_a, *body_b, from.millis());
  double max_km = min_km;
  double prev_km = min_km;
  std::int64_t prev_ms = from.millis();
  for (std::int64_t i = 1; i <= gaps; ++i) {
    // from + span * i / gaps without overflow (span may reach DtnTime::Max()); in 64 bits when
    // the product fits (every span below about 71,000 years), which is the same quotient.
    const std::int64_t offset_ms =
        span_ms <= kSpanMsMax64 ? span_ms * i / gaps
                                : static_cast<std::int64_t>(static_cast<Int128>(span_ms) * i / gaps);
    const std::int64_t t_ms = from.millis() + offset_ms;
    const double d_km = DistanceKm(*body_a, *body_b, t_ms);
    const double h_s = static_cast<double>(t_ms - prev_ms) / 1000.0;
    min_km = std::min({min_km, d_km, (prev_km + d_km - v * h_s) / 2.0});
    max_km = std::max({max_km, d_km, (prev_km + d_km + v * h_s) / 2.0});
    prev_km = d_km;
    prev_ms = t_ms;
  }
  // Long intervals with sparse samples would widen past what the geometry allows; clamp to it.
  const auto geometric = GeometricDistanceRangeKm(*body_a, *body_b);
  min_km = std::max(min_km, geometric[0]);
  max_km = std::min(max_km, geometric[1]);
  return OutwardBound(min_km, max_km);
}

Duration ClockErrorBound::DriftOver(Duration elapsed) const {
  const std::int64_t ms = elapsed.count() < 0 ? -elapsed.count() : elapsed.count();
  const double ppm = std::fabs(drift_ppm);
  // Configured drifts are usually round figures ("10 ppm", "0.5 ppm"): when the rate is a whole
  // number of parts per billion, compute exactly in integers so a hand-computed ceil agrees.
  const double ppb = ppm * 1000.0;
  if (std::fabs(ppb - std::round(ppb)) < 1e-6 && ppb < 1e12) {
    const Int128 num = static_cast<Int128>(ms) * static_cast<Int128>(std::llround(ppb));
    const Int128 den = 1'000'000'000;
    return Duration(static_cast<std::int64_t>((num + den - 1) / den));
  }
  return Duration(static_cast<std::int64_t>(std::ceil(static_cast<long double>(ms) * ppm / 1e6L)));
}

}  // namespace ics::clock
