// The light-time table printed by `ics-lighttime`: OWLT and round-trip light time for Earth–Mars
// and Earth–Moon from the orbital model, the bounds over the span, and the timeout policy for an
// Earth–Mars path over that span. Pure: builds text, prints nothing.
#pragma once

#include <expected>
#include <string>

#include "clock/time.h"

namespace ics::clock {

struct LightTimeReportOptions {
  DtnTime from = DtnTime::FromUnixMillis(1'767'225'600'000);  // 2026-01-01T00:00:00Z
  std::int64_t days = 780;                                    // span; about one Earth–Mars synodic period
  std::int64_t step_days = 30;                                // one table row every step_days
  Duration term = std::chrono::hours(1);                      // lease term the policy section evaluates
  double drift_ppm = 10.0;  // drift bound of both the rover's and the coordinator's clock
  Duration processing_margin = std::chrono::seconds(5);
  Duration contact_wait_max{0};
};

// Limits so a typo cannot ask for a table of millions of rows.
inline constexpr std::int64_t kLightTimeReportMaxDays = 100 * 366;
inline constexpr std::int64_t kLightTimeReportMaxRows = 10'000;

// Error: a message naming the option that is out of range.
std::expected<std::string, std::string> LightTimeReport(const LightTimeReportOptions& options);

}  // namespace ics::clock
