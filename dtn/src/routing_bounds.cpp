// PathBoundsBetween (declared in dtn/contact_plan.h): light-time and contact-wait bounds from the
// earliest-arrival routes. It lives with routing because it is computed by FindRoute.
#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "dtn/contact_plan.h"
#include "dtn/routing.h"

namespace ics::dtn {
namespace {

// The latest departure from the source at which `route` is still usable with every hop in the
// same contact and inside the same range interval as now (so each hop's OWLT and transmission
// time stay what they are). Backward pass: hop i must depart by
//   min(contact end - max(tx, 1 ms), next range change after its departure - 1 ms,
//       latest departure of hop i+1 - tx - OWLT).
// Times are whole milliseconds, so "before the end" is "at most end - 1 ms".
DtnTime LatestDeparture(const ContactPlan& plan, const Route& route, std::uint64_t size_bytes) {
  DtnTime latest = DtnTime::Max();
  for (std::size_t i = route.hops.size(); i-- > 0;) {
    const RouteHop& hop = route.hops[i];
    Duration tx = *TransmissionTime(size_bytes, hop.contact.rate_bytes_per_s);
    DtnTime limit = hop.contact.end - std::max(tx, Duration(1));
    if (std::optional<DtnTime> change =
            plan.ContactRangeStateAt(hop.contact_index, hop.departure).next_change) {
      limit = std::min(limit, *change - Duration(1));
    }
    if (i + 1 < route.hops.size()) limit = std::min(limit, latest - tx - hop.owlt);
    latest = limit;
  }
  return latest;
}

struct Accumulator {
  std::optional<Duration> owlt_min;
  Duration owlt_max{0};
  Duration wait_max{0};
  void Add(Duration owlt, Duration delay) {
    owlt_min = owlt_min ? std::min(*owlt_min, owlt) : owlt;
    owlt_max = std::max(owlt_max, owlt);
    wait_max = std::max(wait_max, delay - owlt);
  }
};

// One step of a sweep: the route at departure t, reduced to what the bounds need.
struct SweepStep {
  bool found = false;
  bool local = false;
  Duration owlt{0};
  Duration delay{0};
  DtnTime latest;
};

SweepStep ComputeStep(const ContactPlan& plan, NodeNumber src, NodeNumber dst, DtnTime t,
                      std::uint64_t size_bytes, RouteWorkspace& ws) {
  std::optional<Route> route = FindRoute(plan, src, dst, t, size_bytes, DtnTime::Max(), RouteOptions{}, ws);
  if (!route) return SweepStep{};
  if (route->hops.empty()) return SweepStep{true, true, route->OwltSum(), route->delay, t};
  return SweepStep{true, false, route->OwltSum(), route->delay,
                   std::max(LatestDeparture(plan, *route, size_bytes), t)};
}

// Sweeps departures [from, to] from src to dst; `step` gives the step at a departure.
template <typename StepAt>
std::expected<void, std::string> Sweep(NodeNumber src, NodeNumber dst, DtnTime from, DtnTime to,
                                       std::size_t& routes, Accumulator& acc, StepAt&& step_at) {
  DtnTime t = from;
  while (true) {
    if (++routes > kPathBoundsRoutesMax) {
      return std::unexpected(fmt::format("path bounds {} <-> {}: more than {} routes over the interval", src,
                                         dst, kPathBoundsRoutesMax));
    }
    const SweepStep step = step_at(t);
    if (!step.found) {
      return std::unexpected(
          fmt::format("no route from node {} to node {} in the contact plan for a message sent at {}", src,
                      dst, t.ToIso8601()));
    }
    acc.Add(step.owlt, step.delay);
    if (step.local || step.latest >= to) return {};
    t = step.latest + Duration(1);
  }
}

std::expected<void, std::string> CheckInterval(NodeNumber a, NodeNumber b, DtnTime from, DtnTime to) {
  if (from > to) {
    return std::unexpected(fmt::format("path bounds {} <-> {}: interval start {} is after its end {}", a, b,
                                       from.ToIso8601(), to.ToIso8601()));
  }
  return {};
}

clock::PathBounds BoundsOf(const Accumulator& acc) {
  clock::PathBounds bounds;
  bounds.owlt = clock::OwltBound{acc.owlt_min.value_or(Duration(0)), acc.owlt_max};
  bounds.contact_wait_max = acc.wait_max;
  return bounds;
}

}  // namespace

std::expected<clock::PathBounds, std::string> PathBoundsBetween(const ContactPlan& plan, NodeNumber a,
                                                                NodeNumber b, DtnTime from, DtnTime to,
                                                                std::uint64_t size_bytes) {
  if (auto ok = CheckInterval(a, b, from, to); !ok) return std::unexpected(ok.error());
  RouteWorkspace ws;
  Accumulator acc;
  std::size_t routes = 0;
  // Plain variables, not a structured binding: clang 14 (the fuzz build) cannot capture those.
  for (const auto& path : {std::pair{a, b}, std::pair{b, a}}) {
    const NodeNumber src = path.first, dst = path.second;
    auto ok = Sweep(src, dst, from, to, routes, acc,
                    [&](DtnTime t) { return ComputeStep(plan, src, dst, t, size_bytes, ws); });
    if (!ok) return std::unexpected(ok.error());
  }
  return BoundsOf(acc);
}

std::expected<clock::PathBounds, std::string> PathBoundsBetween(const ContactPlan& plan, NodeNumber a,
                                                                NodeNumber b, DtnTime from, DtnTime to,
                                                                std::uint64_t size_bytes,
                                                                PathBoundsCache& cache) {
  if (auto ok = CheckInterval(a, b, from, to); !ok) return std::unexpected(ok.error());
  Accumulator acc;
  std::size_t routes = 0;
  for (const auto& path : {std::pair{a, b}, std::pair{b, a}}) {
    const NodeNumber src = path.first, dst = path.second;
    using Entry = PathBoundsCache::Entry;
    const PathBoundsCache::Path key{src, dst, size_bytes};
    std::vector<Entry>* steps = &cache.paths_[key];
    auto before = [](const Entry& e, std::int64_t ms) { return e.departure_ms < ms; };
    // Steps of this path departing before `from` are behind every later query.
    const auto first_kept = std::lower_bound(steps->begin(), steps->end(), from.millis(), before);
    cache.size_ -= static_cast<std::size_t>(first_kept - steps->begin());
    steps->erase(steps->begin(), first_kept);
    std::size_t cursor = 0;  // the sweep's departures increase: search on from the last one
    auto ok = Sweep(src, dst, from, to, routes, acc, [&](DtnTime t) {
      const std::int64_t t_ms = t.millis();
      cursor = static_cast<std::size_t>(
          std::lower_bound(steps->begin() + static_cast<std::ptrdiff_t>(cursor), steps->end(), t_ms, before) -
          steps->begin());
      if (cursor < steps->size() && (*steps)[cursor].departure_ms == t_ms) {
        ++cache.hits_;
        const PathBoundsCache::Step& s = (*steps)[cursor].step;
        return SweepStep{s.found, s.local, s.owlt, s.delay, s.latest};
      }
      ++cache.misses_;
      const SweepStep step = ComputeStep(plan, src, dst, t, size_bytes, RouteWorkspace::ForThisThread());
      if (cache.size_ >= PathBoundsCache::kStepsMax) {
        cache.Clear();
        steps = &cache.paths_[key];
        cursor = 0;
      }
      steps->insert(
          steps->begin() + static_cast<std::ptrdiff_t>(cursor),
          Entry{t_ms, PathBoundsCache::Step{step.found, step.local, step.owlt, step.delay, step.latest}});
      ++cache.size_;
      return step;
    });
    if (!ok) return std::unexpected(ok.error());
  }
  return BoundsOf(acc);
}

}  // namespace ics::dtn
