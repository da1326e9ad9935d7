// Every figure's `why` spells out its arithmetic with the numbers in it, so a log line or an
// operator tool can show exactly where a timeout came from without reading this file.
#include "clock/timeout_policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace ics::clock {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fputs(message.c_str(), stderr);
  std::fputc('\n', stderr);
  std::abort();
}

std::string D(Duration d) { return FormatDuration(d); }

std::string Ppm(double ppm) { return fmt::format("{:g} ppm", ppm); }

// Longest lease term the refusal search considers: DtnTime arithmetic stays in range below it.
constexpr Duration kLongestTerm{std::numeric_limits<std::int64_t>::max() / 8};

}  // namespace

TimeoutPolicy::TimeoutPolicy(PolicyInputs inputs) : in_(std::move(inputs)) {
  const auto& p = in_.path;
  const bool ok = p.owlt.min >= Duration(0) && p.owlt.min <= p.owlt.max &&
                  p.contact_wait_max >= Duration(0) && in_.processing_margin >= Duration(0) &&
                  in_.requester.drift_ppm >= 0.0 && in_.requester.drift_ppm < 1e6 &&
                  in_.coordinator.drift_ppm >= 0.0 && in_.coordinator.drift_ppm < 1e6;
  if (!ok) {
    Die(
        fmt::format("TimeoutPolicy: invalid inputs: owlt {}..{} ms, contact wait {} ms, processing {} ms, "
                    "drift requester {} ppm, coordinator {} ppm (need 0 <= min <= max, waits >= 0, "
                    "0 <= drift < 1e6 ppm)",
                    p.owlt.min.count(), p.owlt.max.count(), p.contact_wait_max.count(),
                    in_.processing_margin.count(), in_.requester.drift_ppm, in_.coordinator.drift_ppm));
  }
}

// The *Value methods hold the arithmetic; the Explained methods repeat their steps to name the
// intermediate figures, and call only *Value methods so no explanation is formatted unused.
Duration TimeoutPolicy::OneWayMaxValue() const { return in_.path.owlt.max + in_.path.contact_wait_max; }

Duration TimeoutPolicy::RoundTripMaxValue() const {
  return 2 * (in_.path.owlt.max + in_.path.contact_wait_max) + in_.processing_margin;
}

Duration TimeoutPolicy::RequestTimeoutValue() const {
  const Duration rtt = RoundTripMaxValue();
  return rtt + in_.requester.DriftOver(rtt);
}

Duration TimeoutPolicy::SuspicionTimeoutValue() const {
  return std::max(2 * in_.path.owlt.max, RequestTimeoutValue()) + in_.processing_margin;
}

Duration TimeoutPolicy::MessageLifetimeValue() const {
  return std::max<Duration>(std::chrono::hours(1), 2 * SuspicionTimeoutValue());
}

Duration TimeoutPolicy::HolderViewValue(Duration term) const {
  return term - in_.requester.DriftOver(term) - in_.coordinator.DriftOver(term);
}

Duration TimeoutPolicy::RegrantMarginValue(Duration term) const {
  return in_.requester.DriftOver(term) + in_.coordinator.DriftOver(term) + Duration(1);
}

Duration TimeoutPolicy::RenewAtValue(Duration term) const {
  const Duration rtt = RoundTripMaxValue();
  return HolderViewValue(term) - rtt - in_.requester.DriftOver(rtt);
}

Explained TimeoutPolicy::OneWayMax() const {
  const Duration v = OneWayMaxValue();
  return {v, fmt::format("one way = max OWLT {} + contact wait {} = {}", D(in_.path.owlt.max),
                         D(in_.path.contact_wait_max), D(v))};
}

Explained TimeoutPolicy::RoundTripMax() const {
  const Duration v = RoundTripMaxValue();
  return {v, fmt::format("round trip = 2 x (max OWLT {} + contact wait {}) + processing {} = {}",
                         D(in_.path.owlt.max), D(in_.path.contact_wait_max), D(in_.processing_margin), D(v))};
}

Explained TimeoutPolicy::RequestTimeout() const {
  const Duration rtt = RoundTripMaxValue();
  const Duration drift = in_.requester.DriftOver(rtt);
  const Duration v = rtt + drift;
  return {v, fmt::format("request timeout = round trip {} + requester drift {} ({} of it) = {}", D(rtt),
                         D(drift), Ppm(in_.requester.drift_ppm), D(v))};
}

Explained TimeoutPolicy::SuspicionTimeout() const {
  const Duration two_owlt = 2 * in_.path.owlt.max;
  const Duration request = RequestTimeoutValue();
  const Duration v = std::max(two_owlt, request) + in_.processing_margin;
  return {v, fmt::format("suspicion = max(2 x max OWLT {} = {}, request timeout {}) + processing {} = {}",
                         D(in_.path.owlt.max), D(two_owlt), D(request), D(in_.processing_margin), D(v))};
}

Explained TimeoutPolicy::HolderView(Duration term) const {
  const Duration holder = in_.requester.DriftOver(term);
  const Duration coord = in_.coordinator.DriftOver(term);
  const Duration v = term - holder - coord;
  return {v, fmt::format("holder view = term {} - holder drift {} ({}) - coordinator drift {} ({}) = {}",
                         D(term), D(holder), Ppm(in_.requester.drift_ppm), D(coord),
                         Ppm(in_.coordinator.drift_ppm), D(v))};
}

Explained TimeoutPolicy::RegrantMargin(Duration term) const {
  const Duration holder = in_.requester.DriftOver(term);
  const Duration coord = in_.coordinator.DriftOver(term);
  const Duration v = holder + coord + Duration(1);
  return {v, fmt::format("regrant margin = holder drift {} + coordinator drift {} over term {} + 1ms = {}",
                         D(holder), D(coord), D(term), D(v))};
}

Explained TimeoutPolicy::RenewAt(Duration term) const {
  const Duration view = HolderViewValue(term);
  const Duration rtt = RoundTripMaxValue();
  const Duration drift = in_.requester.DriftOver(rtt);
  const Duration v = view - rtt - drift;
  return {v,
          fmt::format("renew at = holder view {} - round trip {} - holder drift over it {} = {}{}", D(view),
                      D(rtt), D(drift), D(v), v < Duration(0) ? " (too late: cannot renew in time)" : "")};
}

std::expected<Explained, Explained> TimeoutPolicy::LeaseTerm(Duration requested) const {
  if (requested <= Duration(0)) {
    return std::unexpected(
        Explained{requested, fmt::format("refused: term {} is not positive", D(requested))});
  }
  const Duration rtt = RoundTripMaxValue();
  const Duration rtt_drift = in_.requester.DriftOver(rtt);
  // Usable iff the holder's view outlasts the round trip (strictly) and a renewal sent at RenewAt
  // can still make the round trip: view >= rtt + max(drift over rtt, 1 ms).
  const auto usable = [&](Duration term) {
    const Duration view = HolderViewValue(term);
    return view > rtt && view - rtt - rtt_drift >= Duration(0);
  };
  if (!usable(requested)) {
    const Duration view_value = HolderViewValue(requested);
    const Duration renew_value = RenewAtValue(requested);
    // The smallest usable term, for the operator: HolderView is non-decreasing in the term (each
    // extra ms of term adds at most 1 ms of rounded drift), so usability is monotonic too.
    std::string advice;
    if (!usable(kLongestTerm)) {
      advice = "no term is usable with these clock drifts";
    } else {
      Duration lo = requested;     // not usable
      Duration hi = kLongestTerm;  // usable
      while (hi - lo > Duration(1)) {
        const Duration mid = lo + (hi - lo) / 2;
        (usable(mid) ? hi : lo) = mid;
      }
      advice = fmt::format("the shortest usable term is {}", D(hi));
    }
    const Duration needed_view = std::max(rtt + rtt_drift, rtt + Duration(1));
    return std::unexpected(Explained{
        requested,
        fmt::format("refused: no usable time: term {} gives holder view {} < round trip {} + holder drift "
                    "over it {} (short by {}; renew at would be {}); {}",
                    D(requested), D(view_value), D(rtt), D(rtt_drift), D(needed_view - view_value),
                    D(renew_value), advice)});
  }
  const Duration view = HolderViewValue(requested);
  const Duration renew = RenewAtValue(requested);
  return Explained{requested,
                   fmt::format("term {} granted: holder view {} exceeds round trip {} by {}; renew at {}",
                               D(requested), D(view), D(rtt), D(view - rtt), D(renew))};
}

std::string TimeoutPolicy::Describe(Duration term) const {
  std::string out;
  const auto line = [&out](std::string_view name, std::string_view value, std::string_view why) {
    out += fmt::format("{:<18} {:>20}   {}\n", fmt::format("{}:", name), value, why);
  };
  const auto figure = [&line](std::string_view name, const Explained& e) { line(name, D(e.value), e.why); };
  line("OWLT", fmt::format("{} .. {}", D(in_.path.owlt.min), D(in_.path.owlt.max)),
       fmt::format("light-time bound; contact wait up to {}, processing margin {}",
                   D(in_.path.contact_wait_max), D(in_.processing_margin)));
  line("clock drift", fmt::format("{} / {}", Ppm(in_.requester.drift_ppm), Ppm(in_.coordinator.drift_ppm)),
       "requester (holder) / coordinator");
  figure("one-way max", OneWayMax());
  figure("round trip max", RoundTripMax());
  figure("request timeout", RequestTimeout());
  figure("suspicion timeout", SuspicionTimeout());
  const auto lease = LeaseTerm(term);
  if (lease) {
    figure("lease term", *lease);
  } else {
    line("lease term", "REFUSED", lease.error().why);
  }
  figure("holder view", HolderView(term));
  figure("renew at", RenewAt(term));
  figure("regrant margin", RegrantMargin(term));
  return out;
}

}  // namespace ics::clock
