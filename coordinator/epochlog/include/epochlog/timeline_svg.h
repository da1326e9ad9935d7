// The timeline picture: one lane per resource, the holders' lease windows as coloured bars
// labelled with rover and fencing token, gaps (no holder) and spans (hold-offs, partitions,
// contacts ...) as shaded or hatched ranges, point markers (denials, refusals), epoch boundaries
// as vertical lines across all lanes, and a UTC time axis.
//
// The drawing model is plain data so that any producer draws the same picture: ics-epochlog builds
// it from an epoch log, the replayer from its own run. RenderTimelineSvg is pure: model in, SVG
// text out (no I/O). Sizes are bounded: at most kMaxTimelineLanes lanes and kMaxTimelineItems bars,
// spans and markers in total are drawn; beyond that the picture says how many were left out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "clock/time.h"

namespace ics::epochlog {

inline constexpr std::size_t kMaxTimelineLanes = 500;
inline constexpr std::size_t kMaxTimelineItems = 50'000;

// A lease window (or any "held by" interval).
struct TimelineBar {
  clock::DtnTime start;
  clock::DtnTime end;          // REQUIRES: end >= start (a shorter one is drawn as a sliver)
  std::string label;           // short, drawn inside the bar when it fits: "rover 7 #12"
  std::string tooltip;         // longer text shown on hover (<title>)
  std::uint64_t colour_key = 0;  // bars with the same key share a colour (e.g. the rover number)
  bool open = false;           // still held at the end of the data: drawn with a ragged end
};

// A shaded range in a lane: a gap between holders, a regrant hold-off, a partition ...
struct TimelineSpan {
  enum class Style { kGap, kHoldOff, kOutage };
  clock::DtnTime start;
  clock::DtnTime end;
  Style style = Style::kGap;
  std::string tooltip;
};

// A point event in a lane: a denial, a stale-epoch refusal, a restore ...
struct TimelineMarker {
  enum class Style { kDeny, kRefusal, kRestore, kInfo };
  clock::DtnTime at;
  Style style = Style::kInfo;
  std::string tooltip;
};

struct TimelineLane {
  std::string name;  // "mars/drill-site-3"
  std::vector<TimelineBar> bars;
  std::vector<TimelineSpan> spans;
  std::vector<TimelineMarker> markers;
};

// A vertical line across every lane.
struct TimelineEpoch {
  clock::DtnTime at;
  std::string label;    // "epoch 3"
  std::string tooltip;  // "restart after crash: 2 leases restored"
};

struct TimelineModel {
  std::string title;
  clock::DtnTime from;  // the axis range; REQUIRES: to >= from (equal is widened by 1 s)
  clock::DtnTime to;
  std::vector<TimelineLane> lanes;
  std::vector<TimelineEpoch> epochs;
  std::string footnote;  // e.g. "1,204 bars left out (limit 200,000)"
};

struct TimelineStyle {
  int width_px = 1600;        // the whole picture
  int label_width_px = 220;   // lane names on the left
  int lane_height_px = 28;
  int axis_ticks = 8;         // about this many time labels along the axis
};

// The SVG document (UTF-8 text, escaped), readable in a browser.
std::string RenderTimelineSvg(const TimelineModel& model, const TimelineStyle& style = {});

}  // namespace ics::epochlog
