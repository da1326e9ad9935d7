// SVG by hand (no library): the picture is a few rectangles, lines and texts per lease, and the
// text must be escaped and valid UTF-8 whatever the producer put in labels. Tick spacing is picked
// from "round" durations (1 s ... 30 d) so the axis reads naturally at any zoom.
#include "epochlog/timeline_svg.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "epochlog/output.h"

namespace ics::epochlog {
namespace {

std::string Xml(std::string_view text) {
  const std::string valid = ValidUtf8(text);
  std::string out;
  out.reserve(valid.size());
  for (char c : valid) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += ' ';  // not allowed in XML 1.0
        } else {
          out += c;
        }
    }
  }
  return out;
}

constexpr std::array<const char*, 12> kPalette = {"#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948",
                                                  "#e15759", "#9c755f", "#bab0ac", "#1f77b4", "#8cd17d", "#ff9da7"};

// "2026-11-29 04:54:55" style axis labels, shortened to what the tick spacing needs.
std::string TickLabel(std::int64_t ms, std::int64_t step_ms) {
  const std::string iso = FormatUtc(ms);  // 2026-11-29T04:54:55.123Z
  if (iso.size() != 24) return iso;
  if (step_ms >= 86'400'000) return iso.substr(0, 10);
  if (step_ms >= 60'000) return iso.substr(0, 10) + " " + iso.substr(11, 5);
  if (step_ms >= 1'000) return iso.substr(11, 8);
  return iso.substr(11, 12);
}

}  // namespace

std::string RenderTimelineSvg(const TimelineModel& model, const TimelineStyle& style) {
  const std::int64_t from = model.from.millis();
  std::int64_t to = model.to.millis();
  if (to <= from) to = from + 1'000;
  const double span = static_cast<double>(to - from);
  const int width = std::max(style.width_px, style.label_width_px + 200);
  const int plot_x = style.label_width_px;
  const int plot_w = width - plot_x - 20;
  const int top = 70;  // title and axis labels
  const std::size_t lane_count = std::min(model.lanes.size(), kMaxTimelineLanes);
  const int lane_h = std::max(style.lane_height_px, 12);
  const int plot_h = static_cast<int>(lane_count) * lane_h;
  const int height = top + plot_h + 70;
  const auto x_of = [&](clock::DtnTime t) {
    const double x = plot_x + (static_cast<double>(t.millis() - from) / span) * plot_w;
    return std::clamp(x, static_cast<double>(plot_x), static_cast<double>(plot_x + plot_w));
  };

  std::string svg;
  svg += fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      width, height);
  svg += "<defs><pattern id=\"gap\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
         "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#bbb\" "
         "stroke-width=\"2\"/></pattern></defs>\n";
  svg += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"white\"/>\n", width, height);
  svg += fmt::format("<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n", Xml(model.title));
  svg += fmt::format("<text x=\"10\" y=\"38\" fill=\"#555\">{} to {} (UTC)</text>\n", FormatUtc(from), FormatUtc(to));

  // Time axis: ticks at round steps, with grid lines.
  constexpr std::array<std::int64_t, 20> kSteps = {
      1,         10,        100,       1'000,      5'000,      10'000,      30'000,
      60'000,    300'000,   600'000,   1'800'000,  3'600'000,  10'800'000,  21'600'000,
      43'200'000, 86'400'000, 604'800'000, 2'592'000'000, 31'536'000'000, 315'360'000'000};
  const std::int64_t want = std::max<std::int64_t>(1, (to - from) / std::max(style.axis_ticks, 1));
  std::int64_t step = kSteps.back();
  for (std::int64_t s : kSteps) {
    if (s >= want) {
      step = s;
      break;
    }
  }
  const std::int64_t first_tick = from % step == 0 ? from : from + (step - ((from % step) + step) % step);
  int ticks = 0;
  for (std::int64_t t = first_tick; t <= to && ticks < 200; t += step, ++ticks) {
    const double x = x_of(clock::DtnTime::FromMillis(t));
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>\n", x, top - 4,
                       top + plot_h);
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>\n", x, top - 8,
                       TickLabel(t, step));
  }

  // Lanes.
  for (std::size_t i = 0; i < lane_count; ++i) {
    const TimelineLane& lane = model.lanes[i];
    const int y = top + static_cast<int>(i) * lane_h;
    svg += fmt::format("<g><rect x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", y, width, lane_h,
                       i % 2 == 0 ? "#fafafa" : "#f2f2f2");
    svg += fmt::format("<text x=\"8\" y=\"{}\" fill=\"#222\">{}</text>\n", y + lane_h / 2 + 4, Xml(lane.name));
    for (const TimelineSpan& s : lane.spans) {
      const double x1 = x_of(s.start), x2 = x_of(s.end);
      const char* fill = s.style == TimelineSpan::Style::kGap       ? "url(#gap)"
                         : s.style == TimelineSpan::Style::kHoldOff ? "#fde2c4"
                                                                    : "#f4cccc";
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>\n", x1,
          y + 4, std::max(x2 - x1, 0.5), lane_h - 8, fill, Xml(s.tooltip));
    }
    for (const TimelineBar& b : lane.bars) {
      const double x1 = x_of(b.start), x2 = x_of(std::max(b.end, b.start));
      const double w = std::max(x2 - x1, 1.0);
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{}\" width=\"{:.1f}\" height=\"{}\" fill=\"{}\" stroke=\"#333\" stroke-width=\"0.5\"{}>"
          "<title>{}</title></rect>\n",
          x1, y + 5, w, lane_h - 10, kPalette[b.colour_key % kPalette.size()],
          b.open ? " stroke-dasharray=\"4 2\"" : "", Xml(b.tooltip.empty() ? b.label : b.tooltip));
      if (!b.label.empty() && w > 6.5 * static_cast<double>(b.label.size()) + 6) {
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" fill=\"white\" font-size=\"10\">{}</text>\n", x1 + 3,
                           y + lane_h / 2 + 4, Xml(b.label));
      }
      if (b.open) {
        svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" fill=\"#333\">&#8594;</text>\n", x1 + w + 1, y + lane_h / 2 + 4);
      }
    }
    for (const TimelineMarker& m : lane.markers) {
      const double x = x_of(m.at);
      const int cy = y + lane_h / 2;
      const char* colour = m.style == TimelineMarker::Style::kDeny      ? "#d62728"
                           : m.style == TimelineMarker::Style::kRefusal ? "#7b3294"
                           : m.style == TimelineMarker::Style::kRestore ? "#2ca02c"
                                                                        : "#555";
      svg += fmt::format(
          "<path d=\"M{0:.1f} {1} l4 -6 l-8 0 z\" fill=\"{2}\" transform=\"translate(0 {3})\"><title>{4}</title></path>\n",
          x, cy, colour, -(lane_h / 2) + 8, Xml(m.tooltip));
    }
    svg += "</g>\n";
  }

  // Epoch boundaries across all lanes.
  for (const TimelineEpoch& e : model.epochs) {
    const double x = x_of(e.at);
    svg += fmt::format(
        "<g><line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#c00\" stroke-width=\"1.5\" "
        "stroke-dasharray=\"6 3\"/><text x=\"{3:.1f}\" y=\"{4}\" fill=\"#c00\" font-size=\"10\">{5}</text>"
        "<title>{6}</title></g>\n",
        x, top - 20, top + plot_h, x + 3, top - 22, Xml(e.label), Xml(e.tooltip));
  }

  // Legend and footnote.
  const int ly = top + plot_h + 24;
  svg += fmt::format(
      "<g font-size=\"10\"><rect x=\"{0}\" y=\"{1}\" width=\"18\" height=\"10\" fill=\"{2}\"/>"
      "<text x=\"{3}\" y=\"{4}\">lease (rover #token)</text>"
      "<rect x=\"{5}\" y=\"{1}\" width=\"18\" height=\"10\" fill=\"url(#gap)\"/><text x=\"{6}\" y=\"{4}\">no holder</text>"
      "<rect x=\"{7}\" y=\"{1}\" width=\"18\" height=\"10\" fill=\"#fde2c4\"/><text x=\"{8}\" y=\"{4}\">regrant "
      "hold-off</text>"
      "<line x1=\"{9}\" y1=\"{1}\" x2=\"{9}\" y2=\"{10}\" stroke=\"#c00\" stroke-dasharray=\"6 3\"/>"
      "<text x=\"{11}\" y=\"{4}\">epoch start</text>"
      "<path d=\"M{12} {10} l4 -8 l-8 0 z\" fill=\"#d62728\"/><text x=\"{13}\" y=\"{4}\">deny</text>"
      "<path d=\"M{14} {10} l4 -8 l-8 0 z\" fill=\"#7b3294\"/><text x=\"{15}\" y=\"{4}\">stale epoch</text>"
      "<path d=\"M{16} {10} l4 -8 l-8 0 z\" fill=\"#2ca02c\"/><text x=\"{17}\" y=\"{4}\">restore</text></g>\n",
      plot_x, ly, kPalette[0], plot_x + 22, ly + 9, plot_x + 160, plot_x + 182, plot_x + 260, plot_x + 282,
      plot_x + 390, ly + 10, plot_x + 396, plot_x + 480, plot_x + 488, plot_x + 530, plot_x + 538, plot_x + 610,
      plot_x + 618);
  std::string foot = model.footnote;
  if (model.lanes.size() > lane_count) {
    foot += fmt::format("{}{} lanes not drawn (limit {})", foot.empty() ? "" : "; ", model.lanes.size() - lane_count,
                        kMaxTimelineLanes);
  }
  if (!foot.empty()) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"#a00\">{}</text>\n", plot_x, ly + 30, Xml(foot));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace ics::epochlog
