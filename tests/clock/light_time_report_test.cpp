// Checks the ics-lighttime report: its table rows, span bounds and policy section for the default
// options, and that out-of-range options are refused with the option's name. The text is built in
// memory, so the test reads it directly.
#include "clock/light_time_report.h"

#include <doctest/doctest.h>

#include <algorithm>

namespace ics::clock {
namespace {

TEST_CASE("light_time_report: the default table covers 780 days of Earth-Mars and Earth-Moon") {
  const auto report = LightTimeReport(LightTimeReportOptions{});
  REQUIRE(report.has_value());
  const std::string& text = *report;
  CHECK(text.find("From 2026-01-01 for 780 days (2028-02-20), a row every 30 days.") != std::string::npos);
  // 27 rows: days 0, 30, ..., 780.
  CHECK(text.find("\n2026-01-01  ") != std::string::npos);
  CHECK(text.find("\n2028-02-20  ") != std::string::npos);
  std::size_t rows = 0;
  for (std::size_t pos = text.find("\n20"); pos != std::string::npos; pos = text.find("\n20", pos + 1))
    ++rows;
  CHECK(rows == 27);
  CHECK(text.find("Earth-Mars OWLT  min 261.318 s") != std::string::npos);
  CHECK(text.find("Earth-Moon OWLT  min 1.282 s") != std::string::npos);
  CHECK(text.find("lease term 1h 00m 00s, clock drift 10 ppm") != std::string::npos);
  CHECK(text.find("renew at:") != std::string::npos);
  CHECK(text.find("granted") != std::string::npos);
}

TEST_CASE("light_time_report: a conjunction-length contact wait refuses the 1 h lease in the report") {
  LightTimeReportOptions o;
  o.contact_wait_max = std::chrono::days(14);
  o.days = 30;
  o.step_days = 10;
  const auto report = LightTimeReport(o);
  REQUIRE(report.has_value());
  CHECK(report->find("REFUSED") != std::string::npos);
  CHECK(report->find("contact wait up to 14d 00h 00m") != std::string::npos);
}

TEST_CASE("light_time_report: out-of-range options are refused by name") {
  LightTimeReportOptions o;
  o.step_days = 0;
  CHECK(LightTimeReport(o).error().find("--step-days") != std::string::npos);
  o = {};
  o.days = -1;
  CHECK(LightTimeReport(o).error().find("--days") != std::string::npos);
  o = {};
  o.days = 36000;
  o.step_days = 1;
  CHECK(LightTimeReport(o).error().find("--step-days") != std::string::npos);
  o = {};
  o.term = std::chrono::milliseconds(0);
  CHECK(LightTimeReport(o).error().find("--term") != std::string::npos);
  o = {};
  o.drift_ppm = -3;
  CHECK(LightTimeReport(o).error().find("--drift-ppm") != std::string::npos);
}

}  // namespace
}  // namespace ics::clock
