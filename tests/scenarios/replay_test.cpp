// Goal: the replayer drives the real cores deterministically and its safety verdicts hold up under
// partitions, crashes and bundle faults, and a broken agent is caught. Method: a small scenario
// built in code (a coordinator, two rovers and a guard, all in contact, 1 s OWLT, 5-minute leases,
// two rovers contending for one pad) replayed with faults, checking report figures, the history
// and the violations against hand-derived expectations.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "scenarios/replay.h"

namespace ics::scenarios {
namespace {

const coordinator::ResourceName kPad{"base", "pad"};

Scenario Small() {
  Scenario s;
  s.name = "small";
  s.source = "<test>";
  s.start = *DtnTime::ParseIso8601("2026-01-01T00:00:00Z");
  s.duration = std::chrono::hours(3);
  auto node = [](std::string name, NodeNumber id, Role role) {
    NodeSpec n;
    n.name = std::move(name);
    n.id = id;
    n.role = role;
    n.clock.drift_ppm = 50;
    n.clock.skew = std::chrono::milliseconds(100);
    if (role == Role::kRover) {
      n.lease_term = std::chrono::minutes(5);
      n.guards = {"guard"};
    }
    return n;
  };
  s.nodes = {node("coord", 1, Role::kCoordinator), node("rover-a", 2, Role::kRover), node("rover-b", 3, Role::kRover),
             node("guard", 4, Role::kGuard)};
  for (int a = 1; a <= 4; ++a) {
    for (int b = 1; b <= 4; ++b) {
      if (a == b) continue;
      s.plan_text += "a contact +0 +400000 " + std::to_string(a) + " " + std::to_string(b) + " 100000\n";
      if (a < b) s.plan_text += "a range +0 +400000 " + std::to_string(a) + " " + std::to_string(b) + " 1\n";
    }
  }
  s.plan_source = "<test>:plan";
  s.requests = {{"rover-a", kPad, std::chrono::minutes(1), std::chrono::minutes(20), std::chrono::hours(1),
                 std::chrono::seconds(30)},
                {"rover-b", kPad, std::chrono::minutes(2), std::chrono::minutes(10), std::chrono::hours(2),
                 std::chrono::seconds(30)}};
  return s;
}

ReplayResult Run(const Scenario& s, std::uint64_t seed = 1, Duration extension = Duration(0)) {
  ReplayOptions o;
  o.seed = seed;
  o.belief_extension = extension;
  auto r = RunReplay(s, o);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error()));
  return std::move(*r);
}

// Tokens granted per resource strictly increase in the order of issue.
void CheckTokensIncrease(const ReplayResult& r) {
  coordinator::FencingToken last = 0;
  for (const auto& g : r.history.grants) {
    CHECK(g.token > last);
    last = g.token;
  }
}

TEST_CASE("replay: two runs with the same seed give identical outputs; another seed may differ") {
  Scenario s = Small();
  s.link_faults.push_back({{}, 0.1, 0.1, 0.1, std::chrono::seconds(5)});
  const ReplayResult a = Run(s, 7), b = Run(s, 7);
  CHECK(ReportJson(a) == ReportJson(b));
  CHECK(a.event_lines == b.event_lines);
  CHECK(a.timeline_svg == b.timeline_svg);
  CHECK(a.events > 100);
  CHECK(a.timeline_svg.find("<svg") != std::string::npos);
}

TEST_CASE("replay: contention is served in turn, uses reach the guard, no violation") {
  const ReplayResult r = Run(Small());
  INFO(SummaryText(r));
  CHECK(r.violations.empty());
  CHECK(r.requests == 2);
  CHECK(r.granted == 2);
  CHECK(r.epochs == 1);
  CHECK(r.uses_accepted > 10);
  CHECK(r.uses_rejected == 0);
  // rover-a asked first: it is granted within a round trip (2 x 1 s OWLT + processing).
  REQUIRE(r.history.holds.size() >= 2);
  CHECK(r.history.holds[0].rover == "rover-a");
  CHECK(r.history.holds[0].from - (Small().start + std::chrono::minutes(1)) < std::chrono::seconds(5));
  CheckTokensIncrease(r);
}

TEST_CASE("replay: a partition longer than the lease: the holder lapses, the coordinator re-grants, no overlap") {
  Scenario s = Small();
  // rover-a is cut off from everyone from 3 min to 40 min, far beyond its 5-minute lease.
  s.partitions.push_back({{"rover-a"}, {"coord", "rover-b", "guard"}, std::chrono::minutes(3), std::chrono::minutes(40)});
  const ReplayResult r = Run(s);
  INFO(SummaryText(r));
  CHECK(r.violations.empty());
  CHECK(r.lapsed >= 1);
  // rover-b was granted while rover-a was still partitioned away.
  bool b_granted_during_partition = false;
  for (const auto& h : r.history.holds) {
    if (h.rover == "rover-b" && h.from < s.start + std::chrono::minutes(40)) b_granted_during_partition = true;
  }
  CHECK(b_granted_during_partition);
  CheckTokensIncrease(r);
}

TEST_CASE("replay: a coordinator restart starts a new epoch and tokens continue; a rover restart recovers") {
  Scenario s = Small();
  s.crashes.push_back({"coord", CrashKind::kCrash, std::chrono::minutes(3), std::chrono::minutes(2)});
  s.crashes.push_back({"rover-b", CrashKind::kSleep, std::chrono::minutes(10), std::chrono::minutes(3)});
  s.requests.push_back({"rover-b", kPad, std::chrono::minutes(50), std::chrono::minutes(5), std::chrono::hours(1),
                        Duration(0)});
  const ReplayResult r = Run(s);
  INFO(SummaryText(r));
  CHECK(r.violations.empty());
  CHECK(r.epochs == 2);
  REQUIRE(r.history.epochs.size() == 2);
  CHECK(r.history.epochs[1].epoch == 2);
  CHECK(r.history.epochs[1].at == s.start + std::chrono::minutes(5));
  CheckTokensIncrease(r);
  // Some grant happened in epoch 2 (the later requests), with a token above epoch 1's.
  bool epoch2_grant = false;
  for (const auto& g : r.history.grants) epoch2_grant = epoch2_grant || g.epoch == 2;
  CHECK(epoch2_grant);
  CHECK(r.granted >= 2);
}

TEST_CASE("replay: SQLite stores recover a crash and a sleep exactly as the memory stores do") {
  // The real SQLite agent, guard, bundle stores and epoch log (opened without fsync for the
  // simulation) must hold exactly what the in-memory stores hold, or a restart would diverge.
  Scenario s = Small();
  s.crashes.push_back({"coord", CrashKind::kCrash, std::chrono::minutes(3), std::chrono::minutes(2)});
  s.crashes.push_back({"rover-b", CrashKind::kSleep, std::chrono::minutes(10), std::chrono::minutes(3)});
  ReplayOptions o;
  o.seed = 3;
  const auto memory = RunReplay(s, o);
  o.stores = StoreKind::kSqlite;
  const auto sqlite = RunReplay(s, o);
  REQUIRE_MESSAGE(memory.has_value(), (memory ? "" : memory.error()));
  REQUIRE_MESSAGE(sqlite.has_value(), (sqlite ? "" : sqlite.error()));
  CHECK(sqlite->epochs == 2);
  CHECK(sqlite->violations.empty());
  CHECK(ReportJson(*sqlite) == ReportJson(*memory));
  CHECK(sqlite->event_lines == memory->event_lines);
}

TEST_CASE("replay: bundle loss, duplication and reordering: every lease still ends, no violation") {
  for (std::uint64_t seed : {1, 2, 3}) {
    Scenario s = Small();
    s.link_faults.push_back({{}, 0.3, 0.3, 0.3, std::chrono::seconds(10)});
    const ReplayResult r = Run(s, seed);
    INFO("seed " << seed << "\n" << SummaryText(r));
    CHECK(r.violations.empty());
    CHECK(r.bundles_lost > 0);
    CHECK(r.bundles_duplicated > 0);
    CHECK(r.granted + r.denied + r.gave_up == r.requests);
    // Every belief ended well before the end of the run (3 h): leases end, nothing stays stuck.
    for (const auto& h : r.history.holds) CHECK(h.until < s.start + std::chrono::hours(2));
    CheckTokensIncrease(r);
  }
}

TEST_CASE("replay: the checker fails the run when an agent believes its lease longer than its view") {
  const ReplayResult r = Run(Small(), 1, std::chrono::hours(1));
  REQUIRE_FALSE(r.violations.empty());
  CHECK(r.violations[0].kind == ViolationKind::kOverlappingHolds);
  CHECK(SummaryText(r).find("--seed 1") != std::string::npos);
}

TEST_CASE("replay: the epoch log is exported as a SQLite file; fuzz summaries merge across shards") {
  char tmpl[] = "/tmp/ics-replay-test.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl;
  Scenario s = Small();
  s.crashes.push_back({"coord", CrashKind::kCrash, std::chrono::minutes(3), std::chrono::minutes(2)});
  ReplayOptions o;
  auto r = RunReplay(s, o, dir + "/epochlog.db");
  REQUIRE(r.has_value());
  REQUIRE(WriteOutputs(*r, dir).has_value());
  std::ifstream f(dir + "/epochlog.db", std::ios::binary);
  std::string magic(15, '\0');
  f.read(magic.data(), 15);
  CHECK(magic == "SQLite format 3");
  CHECK(std::filesystem::file_size(dir + "/report.json") > 100);

  s.fuzz.loss_max = 0.2;
  s.fuzz.partitions_max = 2;
  s.fuzz.partition_length_max = std::chrono::minutes(20);
  s.fuzz.crashes_max = 2;
  s.fuzz.down_for_max = std::chrono::minutes(10);
  s.fuzz.drift_ppm_max = 50;
  FuzzOptions fo;
  fo.seeds = 6;
  fo.jobs = 2;
  const FuzzSummary whole = RunFuzz(s, fo);
  CHECK(whole.seeds == 6);
  CHECK(whole.violations == 0);
  fo.shard_count = 2;
  fo.shard_index = 0;
  auto s0 = ParseFuzzSummaryJson(FuzzSummaryJson(RunFuzz(s, fo)), "s0");
  fo.shard_index = 1;
  auto s1 = ParseFuzzSummaryJson(FuzzSummaryJson(RunFuzz(s, fo)), "s1");
  REQUIRE(s0.has_value());
  REQUIRE(s1.has_value());
  CHECK(s0->seeds == 3);
  auto merged = MergeFuzzSummaries({*s0, *s1});
  REQUIRE(merged.has_value());
  CHECK(FuzzSummaryJson(*merged) == FuzzSummaryJson(whole));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ics::scenarios

namespace ics::scenarios {
namespace {

TEST_CASE("replay: bulk data shares the links with lease traffic, which goes ahead of it") {
  // Small()'s links at 20,000 B/s; rover-a sends 4 MiB to the coordinator from 30 s on (about
  // 210 s of its link), and asks for the pad at 60 s, in the middle of it. Bulk bundles (64 KiB,
  // 3.3 s each on that link) leave only when no lease bundle waits, so the acquire waits at most
  // for the bulk bundle on the air: granted within the 2 s round trip plus 3.3 s plus margin.
  Scenario quiet = Small();
  for (std::size_t at = 0; (at = quiet.plan_text.find(" 100000\n")) != std::string::npos;) {
    quiet.plan_text.replace(at, 8, " 20000\n");
  }
  Scenario busy = quiet;
  busy.bulk = {{"rover-a", "coord", 4u << 20, std::chrono::seconds(30), Duration(0), 1}};
  const ReplayResult a = Run(quiet);
  const ReplayResult b = Run(busy);
  INFO(SummaryText(b));
  INFO("grant after " << (a.history.holds.at(0).from - (quiet.start + std::chrono::minutes(1))).count() << " ms without bulk, "
          << (b.history.holds.at(0).from - (quiet.start + std::chrono::minutes(1))).count() << " ms with");
  CHECK(b.violations.empty());
  CHECK(b.granted == a.granted);
  REQUIRE(!b.history.holds.empty());
  CHECK(b.history.holds[0].rover == "rover-a");
  const DtnTime asked = busy.start + std::chrono::minutes(1);
  CHECK(b.history.holds[0].from - asked < std::chrono::seconds(2 + 4));
  CHECK(b.history.holds[0].from - asked <= a.history.holds[0].from - asked + std::chrono::milliseconds(3'300));
  // The bulk data competed (still arriving when the grant came) and all of it arrived, once.
  CHECK(b.bulk.transfers == 1);
  CHECK(b.bulk.bundles_sent == 64);
  CHECK(b.bulk.bundles_delivered == 64);
  CHECK(b.bulk.bytes_delivered == 4u << 20);
  CHECK(b.bulk.last_delivery > b.history.holds[0].from);
  CHECK(b.bulk.last_delivery - (busy.start + std::chrono::seconds(30)) >= std::chrono::milliseconds(4'194'304 / 20));
  const std::string report = ReportJson(b);
  CHECK(report.find("\"bulk\"") != std::string::npos);
  CHECK(ReportJson(a).find("\"bulk\"") == std::string::npos);
  // Deterministic with bulk traffic too.
  CHECK(report == ReportJson(Run(busy)));
}

}  // namespace
}  // namespace ics::scenarios
