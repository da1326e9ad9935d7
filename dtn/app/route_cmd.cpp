// `ics-dtn route`: the contact-graph route a bundle would take, for operators checking a plan.
// Exit status: 0 a route was found, 1 no route before expiry, 2 bad arguments or a bad plan.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "clock/time.h"
#include "command.h"
#include "dtn/contact_plan.h"
#include "dtn/routing.h"

namespace ics::dtn::app {
namespace {

// "+13.100s" / "-2.000s": a time relative to the plan epoch.
std::string Relative(DtnTime t, DtnTime epoch) {
  std::int64_t ms = (t - epoch).count();
  std::int64_t abs_ms = ms < 0 ? -ms : ms;
  return fmt::format("{}{}.{:03}s", ms < 0 ? '-' : '+', abs_ms / 1000, abs_ms % 1000);
}

std::string Both(DtnTime t, DtnTime epoch) {
  if (t >= DtnTime::Max()) return "never";
  return fmt::format("{} ({})", t.ToIso8601(), Relative(t, epoch));
}

nlohmann::json TimeJson(DtnTime t, DtnTime epoch) {
  if (t >= DtnTime::Max()) return nullptr;
  return {{"utc", t.ToIso8601()}, {"dtn_ms", t.millis()}, {"relative_ms", (t - epoch).count()}};
}

// "+SECONDS" (or "+10m": any clock::ParseDuration text) from the epoch, or ISO-8601 UTC.
std::expected<DtnTime, std::string> ParseAt(const std::string& text, DtnTime epoch) {
  if (!text.empty() && text[0] == '+') {
    auto d = clock::ParseDuration(std::string_view(text).substr(1));
    if (!d) return std::unexpected(d.error());
    return epoch + *d;
  }
  return DtnTime::ParseIso8601(text);
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "ics-dtn route: %s\n", message.c_str());
  return 2;
}

int RunRoute(int argc, char** argv) {
  CLI::App cli{
      "Print the contact-graph route (earliest arrival) of a bundle over an ION-style contact plan.\n"
      "Exit status: 0 route found, 1 no route before expiry, 2 bad arguments or plan.",
      "ics-dtn route"};
  std::string plan_path;
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::string at_text;
  std::uint64_t size_bytes = 0;
  std::string lifetime_text;
  std::string epoch_text = "2000-01-01T00:00:00Z";
  bool json = false;
  cli.add_option("--plan", plan_path, "contact plan file (a contact / a range lines)")->required();
  cli.add_option("--from", from, "source node number")->required();
  cli.add_option("--to", to, "destination node number")->required();
  cli.add_option("--at", at_text, "when the bundle is ready: +SECONDS from the plan epoch, or ISO-8601 UTC")
      ->required();
  cli.add_option("--size", size_bytes, "bundle size in bytes (default 0)");
  cli.add_option("--lifetime", lifetime_text,
                 "bundle lifetime from --at: seconds, or 90s/10m/2h/1d (default: none)");
  cli.add_option("--plan-epoch", epoch_text,
                 "what +N times in the plan count from (default 2000-01-01T00:00:00Z)");
  cli.add_flag("--json", json, "print one JSON object");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(e.what());
  }
  if (from == 0 || to == 0) return Fail("--from and --to must be node numbers > 0");

  auto epoch = DtnTime::ParseIso8601(epoch_text);
  if (!epoch) return Fail(fmt::format("--plan-epoch: {}", epoch.error()));
  auto at = ParseAt(at_text, *epoch);
  if (!at) return Fail(fmt::format("--at: {}", at.error()));
  DtnTime expiry = DtnTime::Max();
  if (!lifetime_text.empty()) {
    auto lifetime = clock::ParseDuration(lifetime_text);
    if (!lifetime) return Fail(fmt::format("--lifetime: {}", lifetime.error()));
    expiry = *at + *lifetime;
  }
  auto plan = LoadContactPlan(plan_path, *epoch);
  if (!plan) return Fail(plan.error().ToString());

  std::optional<Route> route = FindRoute(*plan, from, to, *at, size_bytes, expiry);

  if (json) {
    nlohmann::json out = {{"from", from},
                          {"to", to},
                          {"at", TimeJson(*at, *epoch)},
                          {"size_bytes", size_bytes},
                          {"expiry", TimeJson(expiry, *epoch)}};
    if (!route) {
      out["route"] = nullptr;
      out["reason"] = "no route before expiry";
    } else {
      nlohmann::json hops = nlohmann::json::array();
      for (const RouteHop& hop : route->hops) {
        hops.push_back({{"from", hop.contact.from},
                        {"to", hop.contact.to},
                        {"contact",
                         {{"start", TimeJson(hop.contact.start, *epoch)},
                          {"end", TimeJson(hop.contact.end, *epoch)},
                          {"rate_bytes_per_s", hop.contact.rate_bytes_per_s}}},
                        {"departure", TimeJson(hop.departure, *epoch)},
                        {"arrival", TimeJson(hop.arrival, *epoch)},
                        {"owlt_ms", hop.owlt.count()}});
      }
      out["route"] = {{"next_hop", route->next_hop},
                      {"hops", std::move(hops)},
                      {"arrival", TimeJson(route->arrival, *epoch)},
                      {"delay_ms", route->delay.count()},
                      {"owlt_ms", route->OwltSum().count()}};
    }
    std::printf("%s\n", out.dump().c_str());
    return route ? 0 : 1;
  }

  std::printf("bundle %llu -> %llu, %llu bytes, ready %s, expires %s\n",
              static_cast<unsigned long long>(from), static_cast<unsigned long long>(to),
              static_cast<unsigned long long>(size_bytes), Both(*at, *epoch).c_str(),
              Both(expiry, *epoch).c_str());
  if (!route) {
    std::printf("no route before expiry\n");
    return 1;
  }
  std::size_t n = 1;
  for (const RouteHop& hop : route->hops) {
    std::printf("hop %zu: %llu -> %llu on contact [%s, %s) at %llu B/s\n", n++,
                static_cast<unsigned long long>(hop.contact.from),
                static_cast<unsigned long long>(hop.contact.to), Relative(hop.contact.start, *epoch).c_str(),
                Relative(hop.contact.end, *epoch).c_str(),
                static_cast<unsigned long long>(hop.contact.rate_bytes_per_s));
    std::printf("  departs %s\n  arrives %s (OWLT %s)\n", Both(hop.departure, *epoch).c_str(),
                Both(hop.arrival, *epoch).c_str(), clock::FormatDuration(hop.owlt).c_str());
  }
  Duration owlt = route->OwltSum();
  std::printf("next hop %llu, arrival %s\n", static_cast<unsigned long long>(route->next_hop),
              Both(route->arrival, *epoch).c_str());
  std::printf("total delay %s (light time %s, waiting and transmission %s)\n",
              clock::FormatDuration(route->delay).c_str(), clock::FormatDuration(owlt).c_str(),
              clock::FormatDuration(route->delay - owlt).c_str());
  return 0;
}

const Registration kReg{"route", "the contact-graph route of a bundle over a contact plan", RunRoute};

}  // namespace
}  // namespace ics::dtn::app
