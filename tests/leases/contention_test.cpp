// Two rover agents contend for one charging pad across a Mars-like light time, through a relay,
// while the coordinator is SIGKILLed and restarted mid-lease; the pad's resource guard must never
// accept a lower fencing token after a higher one, and the holder's view must end first. Method:
// real daemons on 127.0.0.1 (coordinator ipn:1, relay ipn:10, rovers ipn:2 and ipn:3, guard
// ipn:20 beside the rovers) with a 600 s OWLT compressed by --time-scale 600 and emulated light
// time; the agents' client verbs drive them, and the coordinator's epoch log, the agents' JSON
// answers and the guard's decision lines are checked against each other.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <fstream>

#include "coordinator/protocol.h"
#include "leases/lease_net.h"

namespace ics::leases {
namespace {

constexpr const char* kPad = "mars/charging-pad";

// Mars: the relay (an orbiter) is 600 s of light from the coordinator on Earth; the rovers and the
// pad's guard are 1 s from the relay. Contacts are always open (both directions).
std::string MarsPlan() { return test::AlwaysUpPlan({{1, 10, 600}, {10, 2, 1}, {10, 3, 1}, {10, 20, 1}}); }


TEST_CASE(
    "two agents contend for a pad through a relay across a coordinator SIGKILL and no token goes backwards") {
  NetOptions options{.time_scale = 600, .emulate_light_time = true, .plan = MarsPlan()};
  LeaseNet net("contention", options, {{1, 10}, {10, 2}, {10, 3}, {10, 20}});
  test::KeepUnlessPassed keep(net);

  // The agents' default lease term, 4 x the worst round trip of 2 x 601 s + 2 s = 4,816 s (8 s of
  // wall time), so rover 2 renews (every 2,408 s, one round trip earlier than RenewAt) around the
  // coordinator's restart: a renewal refused StaleEpoch is resent in the new epoch and still comes
  // back before rover 2's view ends.
  Daemon& coordinator = net.AddCoordinator(1);
  net.AddRelay(10);
  net.AddAgent(2, 1);
  net.AddAgent(3, 1);
  Daemon& guard = net.AddGuard(20, {kPad});
  net.StartAll();
  const std::string epoch_log = (std::filesystem::path(coordinator.data_dir()) / "epochlog.db").string();

  // Rover 2 gets the pad: one round trip of 2 x 601 s of light (about 2 s of wall time).
  ClientResult g2 =
      net.Client(2, "acquire", {kPad, "--for", "36000s", "--wait", "--deadline", "36000s"}, Wall(30));
  REQUIRE_MESSAGE(g2.status.Success(), Show(g2));
  REQUIRE(Str(g2.answer, "outcome") == "granted");
  const std::int64_t t1 = Int(g2.answer, "token");
  const std::int64_t view1_end = Int(g2.answer, "valid_until_dtn_ms");
  REQUIRE(t1 > 0);
  CHECK(Int(g2.answer, "epoch") == 1);

  // Rover 3 asks too and is queued behind rover 2.
  Child wait3 =
      net.StartClient(3, "acquire", {kPad, "--for", "600s", "--wait", "--deadline", "36000s"}, "acquire3");
  LineFollower coordinator_log(coordinator.log_path());
  auto queued = coordinator_log.WaitForLine(
      [](std::string_view l) {
        auto j = ParseLine(l);
        return j && j->value("kind", std::string()) == "queued" && j->value("rover", 0) == 3;
      },
      Wall(30));
  REQUIRE_MESSAGE(queued.has_value(),
                  fmt::format("rover 3 was never queued: {}", test::Tail(coordinator.log_path())));

  // Rover 2 charges under t1.
  ClientResult u1 = net.Client(2, "use", {kPad, "--guard", "ipn:20", "--operation", "charge"}, Wall(30));
  REQUIRE_MESSAGE(u1.status.Success(), Show(u1));
  CHECK(Str(u1.answer, "outcome") == "use-accepted");
  CHECK(Int(u1.answer, "token") == t1);

  // The coordinator dies mid-lease and comes back: a new epoch, the lease restored.
  const auto killed = coordinator.child().Kill();
  CHECK_MESSAGE(killed.signal == SIGKILL, killed.ToString());
  coordinator.Start();
  const auto epochs = ReadEpochs(epoch_log);
  CHECK(epochs == std::vector<std::int64_t>{1, 2});
  if (auto tool = EpochlogExe()) {
    const std::string out = (net.dir() / "epochs.json").string();
    auto child = Child::Spawn({*tool, "epochs", epoch_log, "--json"}, out, out + ".err");
    REQUIRE(child.has_value());
    auto status = child->Wait(Wall(20));
    REQUIRE_MESSAGE((status && status->Success()), test::ReadFile(out + ".err"));
    CHECK_MESSAGE(JsonLines(out).size() >= 2, test::ReadFile(out));
  }
  // The restored lease is logged in the new epoch's first turn (just after the node's start line).
  CHECK_MESSAGE(test::WaitUntil(
                    [&] {
                      const auto events = ReadEpochLog(epoch_log);
                      return std::any_of(events.begin(), events.end(), [&](const LogEvent& e) {
                        return e.kind == "restore" && e.epoch == 2 && e.token == t1;
                      });
                    },
                    Wall(10), std::chrono::milliseconds(50)),
                "the lease under t1 was not restored into epoch 2");

  // Rover 2 is done: it releases (stale epoch 1, resent in epoch 2); rover 3 gets the pad.
  ClientResult r2 = net.Client(2, "release", {kPad}, Wall(30));
  REQUIRE_MESSAGE(r2.status.Success(), Show(r2));
  CHECK(Str(r2.answer, "outcome") == "released");
  ClientResult g3 = net.Finish(wait3, "acquire3", Wall(40));
  REQUIRE_MESSAGE(g3.status.Success(), Show(g3));
  REQUIRE(Str(g3.answer, "outcome") == "granted");
  const std::int64_t t2 = Int(g3.answer, "token");
  const std::int64_t view2_end = Int(g3.answer, "valid_until_dtn_ms");
  CHECK_MESSAGE(t2 > t1, fmt::format("token went from {} to {} across a restart", t1, t2));
  CHECK(Int(g3.answer, "epoch") == 2);

  // Rover 3 charges under t2; rover 2 no longer may (its own view says so, nothing is sent).
  ClientResult u3 = net.Client(3, "use", {kPad, "--guard", "ipn:20", "--operation", "charge"}, Wall(30));
  REQUIRE_MESSAGE(u3.status.Success(), Show(u3));
  CHECK(Int(u3.answer, "token") == t2);
  ClientResult u2 = net.Client(2, "use", {kPad, "--guard", "ipn:20", "--operation", "charge"}, Wall(30));
  CHECK(u2.status.exited);
  CHECK(u2.status.code == 1);
  CHECK(Str(u2.answer, "outcome") == "refused");
  CHECK(Str(u2.answer, "reason") == "not held in the agent's view");

  // A late copy of rover 2's use under t1 (replayed through the relay) reaches the guard after t2.
  {
    coordinator::Use late{coordinator::Header{*coordinator::ParseResourceName(kPad), 1, 1, 2},
                          static_cast<coordinator::FencingToken>(t1), "charge (late copy)"};
    const auto bytes = coordinator::Encode(coordinator::Message(late));
    const auto payload = net.dir() / "late-use.adu";
    std::ofstream(payload, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    const std::string command =
        fmt::format("exec '{}' send --via '{}' --to ipn:20.65 --from ipn:10.64 --priority expedited < '{}'",
                    DtnExe(), net.node(10).app(), payload.string());
    const std::string out = (net.dir() / "late-send").string();
    auto send = Child::Spawn({"/bin/sh", "-c", command}, out);
    REQUIRE(send.has_value());
    auto sent = send->Wait(Wall(20));
    REQUIRE_MESSAGE((sent && sent->Success()), test::ReadFile(out));
  }
  LineFollower guard_log(guard.log_path());
  auto rejected = guard_log.WaitForLine(
      [&](std::string_view l) {
        auto j = ParseLine(l);
        return j && j->value("event", std::string()) == "use" && j->value("token", std::int64_t{0}) == t1 &&
               !j->value("accepted", true);
      },
      Wall(30));
  REQUIRE_MESSAGE(rejected.has_value(),
                  fmt::format("the guard never rejected the late t1: {}", test::Tail(guard.log_path())));
  CHECK(ParseLine(*rejected)->value("highest", std::int64_t{0}) == t2);

  // The guard never accepted a token lower than one it had accepted before.
  const auto decisions = guard.Lines("use");
  std::int64_t highest_accepted = 0;
  int accepted = 0;
  for (const auto& d : decisions) {
    if (!d.value("accepted", false)) continue;
    ++accepted;
    const auto token = d.value("token", std::int64_t{0});
    CHECK_MESSAGE(token >= highest_accepted,
                  fmt::format("guard accepted {} after {}", token, highest_accepted));
    highest_accepted = std::max(highest_accepted, token);
  }
  CHECK(accepted == 2);
  CHECK(highest_accepted == t2);

  // The epoch log: tokens strictly increase; each holder's view ended before the coordinator's.
  const auto events = ReadEpochLog(epoch_log);
  std::int64_t last_token = 0;
  std::map<std::int64_t, std::int64_t> expires_by_token;
  for (const auto& e : events) {
    if (e.kind != "grant") continue;
    CHECK_MESSAGE(e.token > last_token, fmt::format("grant of token {} after {}", e.token, last_token));
    last_token = e.token;
    REQUIRE(e.expires_ms.has_value());
    expires_by_token[e.token] = *e.expires_ms;
  }
  REQUIRE(expires_by_token.contains(t1));
  REQUIRE(expires_by_token.contains(t2));
  CHECK_MESSAGE(
      view1_end < expires_by_token[t1],
      fmt::format("rover 2's view ends at {} ms, the coordinator's at {}", view1_end, expires_by_token[t1]));
  CHECK_MESSAGE(
      view2_end < expires_by_token[t2],
      fmt::format("rover 3's view ends at {} ms, the coordinator's at {}", view2_end, expires_by_token[t2]));
  MESSAGE(fmt::format("tokens {} -> {}; views end {} / {} ms before the coordinator's", t1, t2,
                      expires_by_token[t1] - view1_end, expires_by_token[t2] - view2_end));
  keep.Passed();
}

}  // namespace
}  // namespace ics::leases
