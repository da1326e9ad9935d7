// The timeline of a log: one pass in seq order, one lane per resource. Bars and spans are bounded
// (kMaxTimelineLanes, kMaxTimelineItems) because a picture of ten million leases is not readable
// anyway; the footnote says how much was left out and how to zoom (--resource, --since/--until).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "epochlog/commands.h"

namespace ics::epochlog {
namespace {

using clock::DtnTime;
using coordinator::EventKind;

struct LaneState {
  std::size_t lane = 0;
  struct Open {
    std::int64_t token = 0, rover = 0, from = 0, seq = 0;
  };
  std::optional<Open> open;
  std::optional<std::int64_t> last_end;
};

}  // namespace

std::expected<TimelineModel, Error> BuildTimeline(LogReader& reader, const TimelineQuery& query) {
  EventFilter filter;
  filter.resource = query.resource;
  filter.since_ms = query.since_ms;
  filter.until_ms = query.until_ms;
  auto cursor = reader.Events(filter);
  if (!cursor) return std::unexpected(cursor.error());

  TimelineModel model;
  model.title = fmt::format("Epoch log {}", reader.path());
  std::map<std::string, LaneState> lanes;
  std::size_t items = 0, dropped_items = 0, dropped_lanes = 0;
  std::optional<std::int64_t> first, last;
  std::string name;

  const auto add_item = [&]() {
    if (items >= kMaxTimelineItems) {
      ++dropped_items;
      return false;
    }
    ++items;
    return true;
  };

  for (;;) {
    auto next = cursor->Next();
    if (!next) return std::unexpected(next.error());
    const EventRow* r = *next;
    if (r == nullptr) break;
    if (!first) first = r->at_ms;
    last = std::max(last.value_or(r->at_ms), r->at_ms);
    if (!r->kind) continue;
    if (*r->kind == EventKind::kEpochStart) {
      if (model.epochs.size() < kMaxTimelineLanes * 10) {
        model.epochs.push_back({DtnTime::FromMillis(r->at_ms), fmt::format("epoch {}", r->epoch),
                                fmt::format("epoch {} started: {}", r->epoch, OneLine(ValidUtf8(r->reason.substr(0, 200))))});
      }
      continue;
    }
    if (!r->has_resource) continue;
    name.assign(r->tenant);
    name += '/';
    name.append(r->resource);
    auto it = lanes.find(name);
    if (it == lanes.end()) {
      if (model.lanes.size() >= kMaxTimelineLanes) {
        ++dropped_lanes;
        continue;
      }
      it = lanes.emplace(name, LaneState{model.lanes.size(), std::nullopt, std::nullopt}).first;
      model.lanes.push_back(TimelineLane{ValidUtf8(name), {}, {}, {}});
    }
    LaneState& s = it->second;
    TimelineLane& lane = model.lanes[s.lane];
    const std::int64_t rover = r->rover.value_or(0);
    switch (*r->kind) {
      case EventKind::kGrant:
        if (!r->token) break;
        if (s.last_end && *s.last_end < r->at_ms && add_item()) {
          lane.spans.push_back({DtnTime::FromMillis(*s.last_end), DtnTime::FromMillis(r->at_ms),
                                TimelineSpan::Style::kGap,
                                fmt::format("no holder for {}", clock::FormatDuration(clock::Duration(r->at_ms - *s.last_end)))});
        }
        s.open = LaneState::Open{*r->token, rover, r->at_ms, r->seq};
        break;
      case EventKind::kRestore:
        if (r->token) {
          if (!s.open) s.open = LaneState::Open{*r->token, rover, query.since_ms.value_or(r->at_ms), r->seq};
          if (add_item()) {
            lane.markers.push_back({DtnTime::FromMillis(r->at_ms), TimelineMarker::Style::kRestore,
                                    fmt::format("token {} of rover {} restored in epoch {}", *r->token, rover, r->epoch)});
          }
        }
        break;
      case EventKind::kRelease:
      case EventKind::kExpiry: {
        if (!r->token) break;
        const bool expired = *r->kind == EventKind::kExpiry;
        const std::int64_t from = s.open && s.open->token == *r->token ? s.open->from
                                                                        : query.since_ms.value_or(r->at_ms);
        if (add_item()) {
          lane.bars.push_back({DtnTime::FromMillis(from), DtnTime::FromMillis(r->at_ms),
                               fmt::format("rover {} #{}", rover, *r->token),
                               fmt::format("rover {}, token {}: {} to {}, {} ({})", rover, *r->token, FormatUtc(from),
                                           FormatUtc(r->at_ms), expired ? "expired" : "released",
                                           clock::FormatDuration(clock::Duration(r->at_ms - from))),
                               static_cast<std::uint64_t>(rover), false});
        }
        if (r->regrant_at_ms && *r->regrant_at_ms > r->at_ms && add_item()) {
          lane.spans.push_back({DtnTime::FromMillis(r->at_ms), DtnTime::FromMillis(*r->regrant_at_ms),
                                TimelineSpan::Style::kHoldOff,
                                fmt::format("regrant hold-off until {}", FormatUtc(*r->regrant_at_ms))});
        }
        if (s.open && s.open->token == *r->token) s.open.reset();
        s.last_end = r->regrant_at_ms ? std::max(r->at_ms, *r->regrant_at_ms) : r->at_ms;
        break;
      }
      case EventKind::kDeny:
      case EventKind::kStaleEpoch:
        if (add_item()) {
          lane.markers.push_back({DtnTime::FromMillis(r->at_ms),
                                  *r->kind == EventKind::kDeny ? TimelineMarker::Style::kDeny
                                                               : TimelineMarker::Style::kRefusal,
                                  fmt::format("rover {} request {}: {}", rover, r->request_id.value_or(0),
                                              OneLine(ValidUtf8(r->reason.substr(0, 300))))});
        }
        break;
      default: break;
    }
  }
  const std::int64_t from = query.since_ms.value_or(first.value_or(0));
  const std::int64_t to = query.until_ms.value_or(last.value_or(from));
  model.from = DtnTime::FromMillis(from);
  model.to = DtnTime::FromMillis(std::max(to, from));
  for (auto& [lane_name, s] : lanes) {
    if (s.open && add_item()) {
      model.lanes[s.lane].bars.push_back({DtnTime::FromMillis(s.open->from), model.to,
                                          fmt::format("rover {} #{}", s.open->rover, s.open->token),
                                          fmt::format("rover {}, token {}: from {}, still held at the end of the log",
                                                      s.open->rover, s.open->token, FormatUtc(s.open->from)),
                                          static_cast<std::uint64_t>(s.open->rover), true});
    }
  }
  std::sort(model.lanes.begin(), model.lanes.end(),
            [](const TimelineLane& a, const TimelineLane& b) { return a.name < b.name; });
  if (dropped_items > 0 || dropped_lanes > 0) {
    model.footnote = fmt::format("left out: {} bars/marks beyond the first {}, and {} events of resources beyond the "
                                 "first {}; narrow with --resource or --since/--until",
                                 dropped_items, kMaxTimelineItems, dropped_lanes, kMaxTimelineLanes);
  }
  return model;
}

}  // namespace ics::epochlog
