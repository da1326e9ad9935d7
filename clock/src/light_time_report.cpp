#include "clock/light_time_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string_view>

#include "clock/light_time.h"
#include "clock/timeout_policy.h"

namespace ics::clock {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;
constexpr NodeNumber kEarthNode = 1;
constexpr NodeNumber kMarsNode = 2;
constexpr NodeNumber kMoonNode = 3;
// The bar under "Earth-Mars" is scaled to the model's largest OWLT (about 1,260 s).
constexpr double kBarFullScaleS = 1260.0;
constexpr int kBarWidth = 24;

std::string Seconds(Duration d) { return fmt::format("{:.3f} s", static_cast<double>(d.count()) / 1000.0); }

// "1293.412 s (21m 33.412s)": exact seconds for arithmetic, the human form for reading.
std::string Both(Duration d) { return fmt::format("{} ({})", Seconds(d), FormatDuration(d)); }

std::string Bar(Duration owlt) {
  const double fraction = static_cast<double>(owlt.count()) / 1000.0 / kBarFullScaleS;
  const int n = std::clamp(static_cast<int>(std::lround(fraction * kBarWidth)), 0, kBarWidth);
  return std::string(static_cast<std::size_t>(n), '#');
}

std::string Day(DtnTime t, bool date_only) {
  const std::string iso = t.ToIso8601();
  return date_only ? iso.substr(0, iso.find('T')) : iso;
}

std::string Indent(std::string_view text, std::string_view prefix) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    const std::size_t stop = end == std::string_view::npos ? text.size() : end;
    out += fmt::format("{}{}\n", prefix, text.substr(start, stop - start));
    start = stop + 1;
  }
  return out;
}

}  // namespace

std::expected<std::string, std::string> LightTimeReport(const LightTimeReportOptions& o) {
  if (o.days < 0 || o.days > kLightTimeReportMaxDays) {
    return std::unexpected(fmt::format("--days {} is out of range 0..{}", o.days, kLightTimeReportMaxDays));
  }
  if (o.step_days < 1 || o.days / o.step_days + 1 > kLightTimeReportMaxRows) {
    return std::unexpected(fmt::format("--step-days {} must be >= 1 and give at most {} rows over {} days",
                                       o.step_days, kLightTimeReportMaxRows, o.days));
  }
  if (o.term <= Duration(0))
    return std::unexpected(fmt::format("--term {} must be positive", FormatDuration(o.term)));
  if (!(o.drift_ppm >= 0.0) || o.drift_ppm >= 1e6) {
    return std::unexpected(fmt::format("--drift-ppm {} is out of range [0, 1e6)", o.drift_ppm));
  }
  if (o.processing_margin < Duration(0) || o.contact_wait_max < Duration(0)) {
    return std::unexpected(std::string("processing margin and contact wait must not be negative"));
  }
  if (o.from < DtnTime::FromMillis(-kLightTimeReportMaxDays * kMsPerDay * 100) ||
      o.from > DtnTime::FromMillis(kLightTimeReportMaxDays * kMsPerDay * 100)) {
    return std::unexpected(fmt::format("--from {} is too far from the year 2000", o.from.ToIso8601()));
  }

  OrbitalModel model;
  model.Place(kEarthNode, Body::kEarth);
  model.Place(kMarsNode, Body::kMars);
  model.Place(kMoonNode, Body::kMoon);
  const DtnTime to = o.from + Duration(o.days * kMsPerDay);
  const bool date_only = o.from.millis() % kMsPerDay == 0;

  std::string out;
  out += "One-way light time (OWLT) from the circular coplanar orbit model\n";
  out += "(Earth-Mars spans about 261 s .. 1,260 s in this model; the real extremes, with eccentric\n";
  out += " orbits, are about 182 s .. 1,342 s: use a contact plan's range entries where that matters)\n\n";
  out += fmt::format("From {} for {} days ({}), a row every {} days.\n\n", Day(o.from, date_only), o.days,
                     Day(to, date_only), o.step_days);

  const std::string date_header = date_only ? "Date (UTC)" : "Time (UTC)";
  const std::size_t date_width = date_only ? 10 : 24;
  out +=
      fmt::format("{:<{}}  {:<26}  {:<26}  {:<{}}  {:<16}  {}\n", date_header, date_width, "Earth-Mars OWLT",
                  "round trip", "0 .. 1260 s", kBarWidth, "Earth-Moon OWLT", "round trip");
  out += fmt::format("{:-<{}}\n", "", date_width + 2 + 26 + 2 + 26 + 2 + kBarWidth + 2 + 16 + 2 + 10);
  for (std::int64_t day = 0; day <= o.days; day += o.step_days) {
    const DtnTime t = o.from + Duration(day * kMsPerDay);
    const Duration mars = OrbitalModel::Owlt(Body::kEarth, Body::kMars, t);
    const Duration moon = OrbitalModel::Owlt(Body::kEarth, Body::kMoon, t);
    out += fmt::format("{:<{}}  {:<26}  {:<26}  {:<{}}  {:<16}  {}\n", Day(t, date_only), date_width,
                       Both(mars), Both(2 * mars), Bar(mars), kBarWidth, Seconds(moon), Seconds(2 * moon));
  }

  const std::optional<OwltBound> mars_bound = model.Bound(kEarthNode, kMarsNode, o.from, to);
  const std::optional<OwltBound> moon_bound = model.Bound(kEarthNode, kMoonNode, o.from, to);
  // Both nodes are placed just above, so the model always answers.
  out += fmt::format("\nOver the whole span (bounds that hold at every instant, rounded outward):\n");
  out += fmt::format("  Earth-Mars OWLT  min {:<26} max {}\n", Both(mars_bound->min), Both(mars_bound->max));
  out += fmt::format("  Earth-Mars RTLT  min {:<26} max {}\n", Both(2 * mars_bound->min),
                     Both(2 * mars_bound->max));
  out += fmt::format("  Earth-Moon OWLT  min {:<26} max {}\n", Seconds(moon_bound->min),
                     Seconds(moon_bound->max));

  const TimeoutPolicy policy(PolicyInputs{
      .path = PathBounds{.owlt = *mars_bound, .contact_wait_max = o.contact_wait_max},
      .requester = ClockErrorBound{.drift_ppm = o.drift_ppm},
      .coordinator = ClockErrorBound{.drift_ppm = o.drift_ppm},
      .processing_margin = o.processing_margin,
  });
  out += fmt::format(
      "\nTimeout policy for an Earth-Mars path over the span (lease term {}, clock drift {:g} ppm on each "
      "side,\n"
      "processing margin {}, contact wait up to {}):\n",
      FormatDuration(o.term), o.drift_ppm, FormatDuration(o.processing_margin),
      FormatDuration(o.contact_wait_max));
  out += Indent(policy.Describe(o.term), "  ");
  return out;
}

}  // namespace ics::clock
