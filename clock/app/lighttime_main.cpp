// ics-lighttime: prints the light-time table of the orbital model and the timeout policy it
// implies. Only parses options; the table is clock::LightTimeReport.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "clock/light_time_report.h"
#include "clock/time.h"

int main(int argc, char** argv) {
  namespace clk = ics::clock;
  clk::LightTimeReportOptions options;
  std::string from = "2026-01-01";
  std::string term = "1h";
  std::string processing = "5s";
  std::string contact_wait = "0s";

  CLI::App app{
      "Light-time table (Earth-Mars, Earth-Moon) from the circular orbit model, with the timeout policy"};
  app.add_option("--from", from, "First row, UTC ISO-8601 (e.g. 2026-01-01 or 2026-01-01T12:00:00Z)")
      ->capture_default_str();
  app.add_option("--days", options.days, "Span in days")->capture_default_str();
  app.add_option("--step-days", options.step_days, "Days between rows")->capture_default_str();
  app.add_option("--term", term, "Lease term for the policy figures (e.g. 1h, 30m, 2d)")
      ->capture_default_str();
  app.add_option("--drift-ppm", options.drift_ppm, "Clock drift bound of rover and coordinator, ppm")
      ->capture_default_str();
  app.add_option("--processing", processing, "Processing margin per round trip")->capture_default_str();
  app.add_option("--contact-wait", contact_wait, "Worst wait for the next contact (e.g. 14d at conjunction)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const auto parsed_from = clk::DtnTime::ParseIso8601(from);
  const auto parsed_term = clk::ParseDuration(term);
  const auto parsed_processing = clk::ParseDuration(processing);
  const auto parsed_wait = clk::ParseDuration(contact_wait);
  for (const std::string* error :
       {parsed_from ? nullptr : &parsed_from.error(), parsed_term ? nullptr : &parsed_term.error(),
        parsed_processing ? nullptr : &parsed_processing.error(),
        parsed_wait ? nullptr : &parsed_wait.error()}) {
    if (error != nullptr) {
      fmt::print(stderr, "ics-lighttime: {}\n", *error);
      return 2;
    }
  }
  options.from = *parsed_from;
  options.term = *parsed_term;
  options.processing_margin = *parsed_processing;
  options.contact_wait_max = *parsed_wait;

  const auto report = clk::LightTimeReport(options);
  if (!report) {
    fmt::print(stderr, "ics-lighttime: {}\n", report.error());
    return 2;
  }
  std::fputs(report->c_str(), stdout);
  return 0;
}
