// A partition longer than some bundles' lifetimes: short-lived bundles must expire at the rover's
// daemon (reported as "expired" lifecycle events) and never be forwarded, while long-lived ones
// queued beside them cross the chain once the contact opens. Method: real daemons at
// --time-scale 10 with a plan whose rover -> orbiter contact opens after 4 wall seconds; short-
// lived ADUs go as expedited, long-lived as bulk, so the two are told apart in every log.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <set>

#include "live/live_net.h"

namespace ics::live {
namespace {

TEST_CASE("expiry: bundles whose lifetime ends during a partition expire, the others arrive") {
  const double slow = Slowdown();
  constexpr double kScale = 10;
  constexpr std::uint64_t kShort = 200, kLong = 300;
  constexpr double kShortLifetimeS = 5;  // mission seconds: 0.5 s of wall time
  const double gap_wall_s = 2 + 2 * slow;
  const double contact_s = gap_wall_s * kScale;
  const auto timeout = [slow](double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 * slow));
  };

  LiveNetOptions options;
  options.time_scale = kScale;
  options.emulate_light_time = true;
  options.plan = fmt::format(
      "a contact +{} +1000000 1 2 100000000\na contact +0 +1000000 2 1 100000000\n"
      "a contact +0 +1000000 2 3 100000000\na contact +0 +1000000 3 2 100000000\n"
      "a range +0 +1000000 1 2 0.2\na range +0 +1000000 2 3 0.1\n",
      contact_s);
  LiveNet net("expiry", options, {1, 2, 3}, {{1, 2}, {2, 3}});
  test::KeepUnlessPassed keep(net);
  net.StartAll();
  net.WaitLinksUp(timeout(10));
  const clock::DtnTime contact_start = net.PlanTime(contact_s);

  Child recv = net.Recv(3, "ipn:3.9", kLong, gap_wall_s + 60 * slow, "expiry");
  for (auto [priority, n, lifetime] : {std::tuple{"expedited", kShort, kShortLifetimeS},
                                       std::tuple{"bulk", kLong, 86400.0}}) {
    Child send = net.Send(1, "ipn:3.9",
                          {"--count", std::to_string(n), "--size", "100", "--priority", priority, "--lifetime",
                           fmt::format("{}", lifetime)},
                          priority);
    auto status = send.Wait(timeout(30));
    REQUIRE_MESSAGE((status && status->Success()), fmt::format("send {}: {}", priority, test::Tail(net.dir() / fmt::format("send-{}", priority))));
  }
  REQUIRE_MESSAGE(net.MissionNow() < contact_start, "sending took longer than the partition");

  auto status = recv.Wait(timeout(gap_wall_s + 60));
  REQUIRE_MESSAGE((status && status->Success()), fmt::format("recv: {}", test::Tail(net.dir() / "recv-expiry.err")));
  const auto got = ReadReceived(net.dir() / "recv-expiry");
  REQUIRE(got.size() == kLong);
  std::set<std::uint64_t> sequences;
  for (const auto& r : got) {
    CHECK(r.priority == "bulk");
    CHECK(sequences.insert(r.sequence).second);
  }
  CHECK(sequences.size() == kLong);

  // The rover's daemon reported every short-lived bundle expired, before the contact, and never
  // forwarded one; nothing long-lived expired.
  std::set<std::string> expired, forwarded_short;
  std::size_t expired_long = 0;
  for (const auto& line : test::ReadLines(net.node(1).log_path())) {
    auto j = ParseLine(line);
    if (!j) continue;
    const std::string event = j->value("event", std::string());
    const std::string priority = j->value("priority", std::string());
    if (event == "expired") {
      if (priority != "expedited") ++expired_long;
      expired.insert(j->value("id", std::string()));
      // The bundle ID is "source/created_ms.seq": expired no earlier than created + lifetime.
      const std::string id = j->value("id", std::string());
      const auto slash = id.find('/'), dot = id.rfind('.');
      REQUIRE((slash != std::string::npos && dot != std::string::npos && dot > slash));
      const std::int64_t created_ms = std::stoll(id.substr(slash + 1, dot - slash - 1));
      CHECK(TsMillis(*j) >= created_ms + static_cast<std::int64_t>(kShortLifetimeS * 1000));
      CHECK(TsMillis(*j) < contact_start.millis());
    } else if (event == "forwarded" && priority == "expedited") {
      forwarded_short.insert(j->value("id", std::string()));
    }
  }
  CHECK(expired.size() == kShort);
  CHECK(expired_long == 0);
  CHECK(forwarded_short.empty());
  const json counters = net.node(1).Counters();
  CHECK(counters["bundles"]["expired"].get<std::uint64_t>() == kShort);
  keep.Passed();
}

}  // namespace
}  // namespace ics::live
