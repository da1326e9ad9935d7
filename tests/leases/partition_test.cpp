// A partition longer than the lease: the holder is cut off, stops by its own clock, the
// coordinator re-grants only after expiry plus its drift margin, and when the partition heals the
// old holder's late renew, release and use are all refused. Method: real daemons on 127.0.0.1
// (coordinator ipn:1; rover ipn:2 behind relay ipn:10, rover ipn:3 behind relay ipn:11; the pad's
// guard ipn:20 next to both relays) at --time-scale 40 with emulated light time; relay 10 is
// SIGKILLed to cut rover 2 off (its bundles wait in its own store) and restarted to heal.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>

#include "leases/lease_net.h"

namespace ics::leases {
namespace {

constexpr const char* kPad = "mars/charging-pad";

// Relays are 20 s of light from the coordinator; rovers and the guard 1 s from their relays.
std::string PartitionPlan() {
  return test::AlwaysUpPlan({{1, 10, 20}, {1, 11, 20}, {10, 2, 1}, {11, 3, 1}, {10, 20, 1}, {11, 20, 1}});
}


// The agent's status: is `resource` held (in its own view)?
bool Holds(const json& status, const std::string& resource) {
  if (!status.contains("leases") || !status["leases"].is_array()) return false;
  return std::any_of(status["leases"].begin(), status["leases"].end(), [&](const json& l) {
    return l.value("resource", std::string()) == resource && l.value("state", std::string()) == "held" &&
           l.value("remaining_ms", std::int64_t{0}) > 0;
  });
}

std::optional<LogEvent> Find(const std::vector<LogEvent>& events,
                             const std::function<bool(const LogEvent&)>& want) {
  for (const auto& e : events) {
    if (want(e)) return e;
  }
  return std::nullopt;
}

TEST_CASE("a holder cut off longer than its lease stops by its own clock and its late messages are refused") {
  NetOptions options{.time_scale = 40, .emulate_light_time = true, .plan = PartitionPlan()};
  LeaseNet net("partition", options, {{1, 10}, {1, 11}, {10, 2}, {11, 3}, {10, 20}, {11, 20}});
  test::KeepUnlessPassed keep(net);

  // Round trip 2 x 21 s + 2 s = 44 s (1.1 s of wall time); a 400 s term is 10 s of wall time.
  Daemon& coordinator = net.AddCoordinator(1);
  Daemon& relay = net.AddRelay(10);
  net.AddRelay(11);
  Daemon& rover2 = net.AddAgent(2, 1, {"--lease-term", "400s"});
  Daemon& rover3 = net.AddAgent(3, 1, {"--lease-term", "400s"});
  Daemon& guard = net.AddGuard(20, {kPad});
  net.StartAll();
  const std::string epoch_log = (std::filesystem::path(coordinator.data_dir()) / "epochlog.db").string();

  ClientResult g2 =
      net.Client(2, "acquire", {kPad, "--for", "36000s", "--wait", "--deadline", "3600s"}, Wall(30));
  REQUIRE_MESSAGE(g2.status.Success(), Show(g2));
  const std::int64_t t1 = Int(g2.answer, "token");
  const std::int64_t view1_end = Int(g2.answer, "valid_until_dtn_ms");
  REQUIRE(t1 > 0);
  ClientResult u1 = net.Client(2, "use", {kPad, "--guard", "ipn:20", "--operation", "charge"}, Wall(30));
  REQUIRE_MESSAGE(u1.status.Success(), Show(u1));

  Child wait3 =
      net.StartClient(3, "acquire", {kPad, "--for", "36000s", "--wait", "--deadline", "36000s"}, "acquire3");
  LineFollower coordinator_log(coordinator.log_path());
  REQUIRE_MESSAGE(coordinator_log
                      .WaitForLine(
                          [](std::string_view l) {
                            auto j = ParseLine(l);
                            return j && j->value("kind", std::string()) == "queued" &&
                                   j->value("rover", 0) == 3;
                          },
                          Wall(30))
                      .has_value(),
                  fmt::format("rover 3 was never queued: {}", test::Tail(coordinator.log_path())));

  // The partition: rover 2's only relay dies. Rover 2 still believes it holds the pad and uses it;
  // that use (and its renewal, and later its release) wait in rover 2's own bundle store.
  relay.Kill();
  REQUIRE_MESSAGE(net.MissionNow().millis() < view1_end, "the lease view ended before the partition began");
  const std::string late_use = "use-cut-off";
  Child late =
      net.StartClient(2, "use", {kPad, "--guard", "ipn:20", "--operation", "charge (cut off)"}, late_use);

  // Rover 2 stops by its own clock: its status shows the lease gone once its view has ended.
  const bool stopped = test::WaitUntil(
      [&] {
        ClientResult s = net.Client(2, "status", {}, Wall(10));
        return s.status.Success() && !Holds(s.answer, kPad);
      },
      Wall(40), std::chrono::milliseconds(200));
  REQUIRE_MESSAGE(stopped,
                  fmt::format("rover 2 never stopped using the pad: {}", test::Tail(rover2.log_path())));
  CHECK(net.MissionNow().millis() >= view1_end);
  ClientResult status2 = net.Client(2, "status", {}, Wall(10));
  CHECK(Int(status2.answer, "lapsed") >= 1);
  std::optional<std::int64_t> lapsed_at;
  for (const auto& line : rover2.Lines("lease")) {
    const json& n = line["notification"];
    if (n.value("outcome", std::string()) == "lapsed" && n.value("token", std::int64_t{0}) == t1) {
      if (auto at = clock::DtnTime::ParseIso8601(line.value("ts", std::string()))) lapsed_at = at->millis();
    }
  }
  REQUIRE_MESSAGE(lapsed_at.has_value(),
                  fmt::format("no lapsed notification for t1: {}", test::Tail(rover2.log_path())));
  CHECK(*lapsed_at >= view1_end);

  // The coordinator re-grants to rover 3, but only after t1's expiry plus the re-grant margin.
  ClientResult g3 = net.Finish(wait3, "acquire3", Wall(40));
  REQUIRE_MESSAGE(g3.status.Success(), Show(g3));
  const std::int64_t t2 = Int(g3.answer, "token");
  CHECK(t2 > t1);
  const auto events = ReadEpochLog(epoch_log);
  auto expiry = Find(events, [&](const LogEvent& e) { return e.kind == "expiry" && e.token == t1; });
  auto grant1 = Find(events, [&](const LogEvent& e) { return e.kind == "grant" && e.token == t1; });
  auto grant2 = Find(events, [&](const LogEvent& e) { return e.kind == "grant" && e.token == t2; });
  REQUIRE_MESSAGE(expiry.has_value(), "no expiry of t1 in the epoch log");
  REQUIRE((grant1 && grant2));
  REQUIRE((expiry->expires_ms && expiry->regrant_at_ms && grant1->expires_ms));
  CHECK(*expiry->expires_ms == *grant1->expires_ms);  // never renewed: the partition came first
  CHECK(*expiry->regrant_at_ms > *expiry->expires_ms);
  CHECK_MESSAGE(grant2->at_ms >= *expiry->regrant_at_ms,
                fmt::format("t2 granted at {} ms, before t1's re-grant instant {}", grant2->at_ms,
                            *expiry->regrant_at_ms));
  CHECK(grant2->rover == 3);
  // The cut-off holder stopped before the coordinator's view of its lease ended.
  CHECK_MESSAGE(*lapsed_at < *expiry->expires_ms,
                fmt::format("rover 2 stopped at {} ms, the coordinator's lease ended at {}", *lapsed_at,
                            *expiry->expires_ms));
  CHECK(view1_end < *grant1->expires_ms);

  ClientResult u3 = net.Client(3, "use", {kPad, "--guard", "ipn:20", "--operation", "charge"}, Wall(30));
  REQUIRE_MESSAGE(u3.status.Success(), Show(u3));
  CHECK(Int(u3.answer, "token") == t2);

  // The partition heals: rover 2's late use is rejected by the guard, and its late renew/release
  // are refused by the coordinator.
  relay.Start();
  ClientResult late_answer = net.Finish(late, late_use, Wall(40));
  CHECK(late_answer.status.exited);
  CHECK(late_answer.status.code == 1);
  CHECK_MESSAGE(Str(late_answer.answer, "outcome") == "use-rejected", Show(late_answer));
  CHECK(Int(late_answer.answer, "token") == t1);
  const auto decisions = guard.Lines("use");
  auto late_decision = std::find_if(decisions.begin(), decisions.end(), [&](const json& d) {
    return d.value("token", std::int64_t{0}) == t1 && d.value("rover", 0) == 2 && !d.value("accepted", true);
  });
  REQUIRE_MESSAGE(late_decision != decisions.end(), test::Tail(guard.log_path()));
  CHECK(late_decision->value("highest", std::int64_t{0}) == t2);
  std::int64_t highest_accepted = 0;
  for (const auto& d : decisions) {
    if (!d.value("accepted", false)) continue;
    const auto token = d.value("token", std::int64_t{0});
    CHECK_MESSAGE(token >= highest_accepted,
                  fmt::format("guard accepted {} after {}", token, highest_accepted));
    highest_accepted = std::max(highest_accepted, token);
  }

  std::optional<LogEvent> refused;
  const bool coordinator_refused = test::WaitUntil(
      [&] {
        refused = Find(ReadEpochLog(epoch_log), [&](const LogEvent& e) {
          return e.kind == "deny" && e.rover == 2 && e.token == t1 && e.seq > grant2->seq;
        });
        return refused.has_value();
      },
      Wall(30), std::chrono::milliseconds(100));
  REQUIRE_MESSAGE(coordinator_refused,
                  fmt::format("the coordinator never refused rover 2's late messages: {}",
                              test::Tail(coordinator.log_path())));
  CHECK_MESSAGE((refused->reason.starts_with("expired:") || refused->reason.starts_with("not_holder:")),
                refused->reason);
  // Rover 3 still holds t2: nothing rover 2 sent late took it away.
  const auto after = ReadEpochLog(epoch_log);
  CHECK_FALSE(Find(after, [&](const LogEvent& e) {
                return (e.kind == "release" || e.kind == "renew") && e.token == t1 && e.seq > grant2->seq;
              }).has_value());
  MESSAGE(fmt::format(
      "t1 {} expired at {} ms (re-grant at {}), rover 2 stopped {} ms before; t2 {} granted at {}; "
      "late: guard '{}', coordinator '{}'",
      t1, *expiry->expires_ms, *expiry->regrant_at_ms, *expiry->expires_ms - *lapsed_at, t2, grant2->at_ms,
      late_decision->value("reason", std::string()), refused->reason));
  (void)rover3;
  keep.Passed();
}

}  // namespace
}  // namespace ics::leases
