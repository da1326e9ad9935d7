// Crash safety of the relay: the middle daemon of a three-node chain is SIGKILLed and restarted
// several times while a few thousand ADUs cross it; each must arrive exactly once and nothing the
// rover's daemon acknowledged (stored) may be lost. Method: real daemons, `ics-dtn send` (exit 0 =
// every ADU durable at node 1), `ics-dtn recv --json` at node 3; kills are triggered by delivery
// progress (bounded waits on recv's output), and the lander's log must show one delivery per ID.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>

#include <map>
#include <set>

#include "live/live_net.h"

namespace ics::live {
namespace {

TEST_CASE("crash: a relay SIGKILLed repeatedly mid-transfer loses nothing and duplicates nothing") {
  const double slow = Slowdown();
  const auto count = static_cast<std::uint64_t>(test::EnvNumber("ICS_LIVE_CRASH_BUNDLES", 3000));
  constexpr int kKills = 4;
  const auto timeout = [slow](double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 * slow));
  };

  LiveNetOptions options;
  options.plan = test::AlwaysUpPlan({{1, 2, 0}, {2, 3, 0}});
  LiveNet net("crash", options, {1, 2, 3}, {{1, 2}, {2, 3}});
  test::KeepUnlessPassed keep(net);
  net.StartAll();
  net.WaitLinksUp(timeout(10));

  Child recv = net.Recv(3, "ipn:3.7", count, 100 * slow, "crash");
  Child send = net.Send(1, "ipn:3.7", {"--count", std::to_string(count), "--size", "1024", "--timeout", "100"}, "crash");
  LineFollower delivered(net.dir() / "recv-crash");
  for (int k = 1; k <= kKills; ++k) {
    // Kill once the lander has seen k / (kKills + 1) of the ADUs: always mid-transfer.
    const std::size_t progress = count * static_cast<std::size_t>(k) / (kKills + 1);
    REQUIRE_MESSAGE(delivered.WaitForCount([](std::string_view) { return true; }, progress, timeout(60)),
                    fmt::format("kill {}: only {} of {} ADUs delivered", k, delivered.lines().size(), progress));
    const auto killed = net.node(2).child().Kill();
    CHECK_MESSAGE((!killed.exited && killed.signal == SIGKILL), killed.ToString());
    MESSAGE(fmt::format("kill {}: relay SIGKILLed after {} deliveries", k, delivered.lines().size()));
    net.node(2).Start();
  }

  auto sent = send.Wait(timeout(100));
  REQUIRE_MESSAGE((sent && sent->Success()), fmt::format("send: {} {}", sent ? sent->ToString() : "still running",
                                                         test::Tail(net.dir() / "send-crash")));
  auto received = recv.Wait(timeout(100));
  REQUIRE_MESSAGE((received && received->Success()),
                  fmt::format("recv: {} {}", received ? received->ToString() : "still running",
                              test::Tail(net.dir() / "recv-crash.err")));

  const auto got = ReadReceived(net.dir() / "recv-crash");
  REQUIRE(got.size() == count);
  std::set<std::uint64_t> sequences;
  for (const auto& r : got) CHECK_MESSAGE(sequences.insert(r.sequence).second, fmt::format("#{} twice", r.sequence));
  CHECK(sequences.size() == count);
  CHECK(*sequences.rbegin() == count - 1);

  // recv hides a redelivery of an ID it has printed; the lander's own log does not.
  std::map<std::string, int> deliveries;
  for (const auto& line : test::ReadLines(net.node(3).log_path())) {
    if (line.find("\"event\":\"delivered\"") == std::string::npos) continue;
    if (auto j = ParseLine(line)) ++deliveries[j->value("id", std::string())];
  }
  CHECK(deliveries.size() == count);
  for (const auto& [id, n] : deliveries) CHECK_MESSAGE(n == 1, fmt::format("{} delivered {} times", id, n));

  // Custody ends everywhere: every bundle acknowledged hop by hop and confirmed at the lander.
  for (clock::NodeNumber n : {1, 2, 3}) {
    json counters;
    const bool drained = test::WaitUntil(
        [&] {
          counters = net.node(n).Counters();
          return counters["store"]["bundles"].get<std::uint64_t>() == 0;
        },
        timeout(20), std::chrono::milliseconds(100));
    CHECK_MESSAGE(drained, fmt::format("node {} still stores bundles: {}", n, counters.dump()));
  }
  keep.Passed();
}

}  // namespace
}  // namespace ics::live
