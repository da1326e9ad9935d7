// PathBoundsBetween (declared in dtn/contact_plan.h): light-time and contact-wait bounds from the
// earliest-arrival routes. It lives with routing because it is computed by FindRoute.
#include <fmt/format.h>

#include <algorithm>

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
            plan.NextRangeChange(hop.contact.from, hop.contact.to, hop.departure)) {
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
  void Add(const Route& route) {
    Duration owlt = route.OwltSum();
    owlt_min = owlt_min ? std::min(*owlt_min, owlt) : owlt;
    owlt_max = std::max(owlt_max, owlt);
    wait_max = std::max(wait_max, route.delay - owlt);
  }
};

std::expected<void, std::string> Sweep(const ContactPlan& plan, NodeNumber src, NodeNumber dst, DtnTime from,
                                       DtnTime to, std::uint64_t size_bytes, RouteWorkspace& ws,
                                       std::size_t& routes, Accumulator& acc) {
  DtnTime t = from;
  while (true) {
    if (++routes > kPathBoundsRoutesMax) {
      return std::unexpected(fmt::format("path bounds {} <-> {}: more than {} routes over the interval", src,
                                         dst, kPathBoundsRoutesMax));
    }
    std::optional<Route> route = FindRoute(plan, src, dst, t, size_bytes, DtnTime::Max(), RouteOptions{}, ws);
    if (!route) {
      return std::unexpected(
          fmt::format("no route from node {} to node {} in the contact plan for a message sent at {}", src,
                      dst, t.ToIso8601()));
    }
    acc.Add(*route);
    if (route->hops.empty()) return {};
    DtnTime latest = std::max(LatestDeparture(plan, *route, size_bytes), t);
    if (latest >= to) return {};
    t = latest + Duration(1);
  }
}

}  // namespace

std::expected<clock::PathBounds, std::string> PathBoundsBetween(const ContactPlan& plan, NodeNumber a,
                                                                NodeNumber b, DtnTime from, DtnTime to,
                                                                std::uint64_t size_bytes) {
  if (from > to) {
    return std::unexpected(fmt::format("path bounds {} <-> {}: interval start {} is after its end {}", a, b,
                                       from.ToIso8601(), to.ToIso8601()));
  }
  RouteWorkspace ws;
  Accumulator acc;
  std::size_t routes = 0;
  if (auto ok = Sweep(plan, a, b, from, to, size_bytes, ws, routes, acc); !ok)
    return std::unexpected(ok.error());
  if (auto ok = Sweep(plan, b, a, from, to, size_bytes, ws, routes, acc); !ok)
    return std::unexpected(ok.error());
  clock::PathBounds bounds;
  bounds.owlt = clock::OwltBound{acc.owlt_min.value_or(Duration(0)), acc.owlt_max};
  bounds.contact_wait_max = acc.wait_max;
  return bounds;
}

}  // namespace ics::dtn
