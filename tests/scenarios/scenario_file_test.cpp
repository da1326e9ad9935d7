// Goal: the scenario file parser reads every key of format version 1 into the model exactly, and
// refuses every kind of bad file with an error naming the line, the key and what would be valid.
// Method: a complete reference file (kFull, line numbers fixed) is parsed and checked field by
// field; each error test changes one line of it with Edit() and checks the error's position and text.
#include "scenarios/scenario_file.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ics::scenarios {
namespace {

using namespace std::chrono_literals;

// Line numbers matter: the error tests below point into this text.
constexpr std::string_view kFull = R"(format_version = 1
name = "test-scenario"
description = "A test."
claim = "Nothing breaks."
start = "2027-02-01T00:00:00Z"
duration = "10d"
processing_margin = "3s"

[light_time]
orbital = true
step = "2h"

[[node]]
name = "lander"
id = 1
role = "coordinator"
body = "mars"
drift_ppm = 5
skew = "50ms"

[[node]]
name = "rover-1"
id = 2
role = "rover"
body = "mars"
drift_ppm = 20.5
skew = 1
actual_drift_ppm = -10
lease_term = "2h"
guards = ["pad-guard"]

[[node]]
name = "pad-guard"
id = 3
role = "guard"
body = "mars"

[[node]]
name = "orbiter"
id = 4
role = "relay"
body = "mars"

[[node]]
name = "earth"
id = 5
role = "relay"
body = "earth"

[plan]
text = """
a contact +0 +864000 1 2 100000   # lander to rover
a contact +0 +864000 2 1 100000
a range +0 +864000 1 2 0.005
"""

[[pass_schedule]]
relay = "orbiter"
nodes = ["lander", "rover-1"]
first = "1h"
every = "2h"
length = "10m"
rate = 250000
owlt = "10ms"
until = "5h"

[[request]]
rover = "rover-1"
resource = "mars/charging-pad"
at = "1h"
hold = "3h"
wait = "12h"
use_every = "10m"

[[workload]]
rovers = ["rover-1"]
resources = ["mars/charging-pad", "mars/drill"]
mean_interarrival = "4h"
hold = ["1h", "4h"]
wait = "12h"
from = "1d"
until = "9d"

[[partition]]
a = ["rover-1"]
b = ["orbiter", "lander"]
from = "3d"
until = "2027-02-05T00:00:00Z"

[[crash]]
node = "rover-1"
kind = "sleep"
at = "5d"
down_for = "6h"

[[crash]]
node = "lander"
at = 86400
down_for = "90s"

[[link_faults]]
nodes = ["rover-1"]
loss = 0.01
duplication = 0
reorder = 0.02
reorder_delay_max = "30s"

[[clock_fault]]
node = "rover-1"
at = "6d"
drift_ppm = 40
step = "-2s"

[[replay]]
from_node = "rover-1"
capture_from = "1h"
capture_until = "2h"
replay_at = "20h"

[[bulk]]
node = "rover-1"
to = "earth"
size = 50000000
at = "2h"
every = "1d"
count = 3

[fuzz]
loss_max = 0.05
duplication_max = 0.05
reorder_max = 0.05
reorder_delay_max = "1m"
partitions_max = 2
partition_length_max = "2d"
crashes_max = 2
down_for_max = "12h"
drift_ppm_max = 20
)";

// kFull with the one line `from` replaced by `to` (the line must occur exactly once).
std::string Edit(std::string_view from, std::string_view to) {
  std::string text(kFull);
  const auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "not in kFull: " << from);
  REQUIRE_MESSAGE(text.find(from, at + 1) == std::string::npos, "twice in kFull: " << from);
  text.replace(at, from.size(), to);
  return text;
}

ScenarioError ErrorOf(std::string_view text) {
  auto s = ParseScenario(text, "t.toml");
  REQUIRE_MESSAGE(!s.has_value(), "parsed, but an error was expected");
  INFO(s.error().ToString());
  return s.error();
}

void CheckError(std::string_view text, int line, std::string_view key, std::string_view message_part) {
  const ScenarioError e = ErrorOf(text);
  INFO("error: " << e.ToString());
  CHECK(e.file == "t.toml");
  CHECK(e.line == line);
  CHECK(e.key == key);
  CHECK(e.message.find(message_part) != std::string::npos);
}

DtnTime Utc(std::string_view text) { return *DtnTime::ParseIso8601(text); }

TEST_CASE("scenario file: a complete file fills every field of the model") {
  auto parsed = ParseScenario(kFull, "dir/t.toml");
  REQUIRE_MESSAGE(parsed.has_value(), parsed.error().ToString());
  const Scenario& s = *parsed;
  CHECK(s.format_version == 1);
  CHECK(s.name == "test-scenario");
  CHECK(s.description == "A test.");
  CHECK(s.claim == "Nothing breaks.");
  CHECK(s.source == "dir/t.toml");
  CHECK(s.start == Utc("2027-02-01T00:00:00Z"));
  CHECK(s.duration == 240h);
  CHECK(s.processing_margin == 3s);
  CHECK(s.orbital_ranges);
  CHECK(s.orbital_range_step == 2h);

  REQUIRE(s.nodes.size() == 5);
  const NodeSpec& lander = s.nodes[0];
  CHECK(lander.name == "lander");
  CHECK(lander.id == 1);
  CHECK(lander.role == Role::kCoordinator);
  CHECK(lander.body == clock::Body::kMars);
  CHECK(lander.clock.drift_ppm == 5.0);
  CHECK(lander.clock.skew == 50ms);
  CHECK_FALSE(lander.actual_drift_ppm.has_value());
  CHECK_FALSE(lander.lease_term.has_value());
  const NodeSpec& rover = s.nodes[1];
  CHECK(rover.role == Role::kRover);
  CHECK(rover.clock.drift_ppm == 20.5);
  CHECK(rover.clock.skew == 1s);
  CHECK(rover.actual_drift_ppm == -10.0);
  CHECK(rover.lease_term == 2h);
  CHECK(rover.guards == std::vector<std::string>{"pad-guard"});
  CHECK(s.nodes[2].role == Role::kGuard);
  CHECK(s.nodes[3].role == Role::kRelay);
  CHECK(s.nodes[4].body == clock::Body::kEarth);
  CHECK(s.FindNode("orbiter") == &s.nodes[3]);
  CHECK(s.FindNode(NodeNumber{5}) == &s.nodes[4]);
  CHECK(s.FindNode("nobody") == nullptr);
  CHECK(s.FindNode(NodeNumber{99}) == nullptr);
  CHECK(s.Coordinator() == &s.nodes[0]);

  // The inline plan, then the passes of [[pass_schedule]] at 1h and 3h (until 5h, every 2h):
  // each a contact both ways with each node, plus the owlt range.
  CHECK(s.plan_source == "dir/t.toml:plan");
  CHECK(s.plan_text.starts_with("a contact +0 +864000 1 2 100000   # lander to rover\n"));
  CHECK(s.plan_text.find("a contact +3600 +4200 4 1 250000\n") != std::string::npos);
  CHECK(s.plan_text.find("a contact +3600 +4200 1 4 250000\n") != std::string::npos);
  CHECK(s.plan_text.find("a contact +10800 +11400 4 2 250000\n") != std::string::npos);
  CHECK(s.plan_text.find("a range +10800 +11400 4 2 0.010\n") != std::string::npos);
  CHECK(s.plan_text.find("+18000") == std::string::npos);

  REQUIRE(s.requests.size() == 1);
  const Request& r = s.requests[0];
  CHECK(r.rover == "rover-1");
  CHECK(r.resource.ToString() == "mars/charging-pad");
  CHECK(r.at == 1h);
  CHECK(r.hold == 3h);
  CHECK(r.wait == 12h);
  CHECK(r.use_every == 10min);

  REQUIRE(s.random_workloads.size() == 1);
  const RandomWorkload& w = s.random_workloads[0];
  CHECK(w.rovers == std::vector<std::string>{"rover-1"});
  REQUIRE(w.resources.size() == 2);
  CHECK(w.resources[1].ToString() == "mars/drill");
  CHECK(w.mean_interarrival == 4h);
  CHECK(w.hold_min == 1h);
  CHECK(w.hold_max == 4h);
  CHECK(w.wait == 12h);
  CHECK(w.from == 24h);
  CHECK(w.until == 216h);
  CHECK(w.use_every == 0ms);
  CHECK(w.seed_salt == 0);

  REQUIRE(s.partitions.size() == 1);
  CHECK(s.partitions[0].side_a == std::vector<std::string>{"rover-1"});
  CHECK(s.partitions[0].side_b == std::vector<std::string>{"orbiter", "lander"});
  CHECK(s.partitions[0].from == 72h);
  CHECK(s.partitions[0].until == 96h);  // an absolute time, as an offset from start

  REQUIRE(s.crashes.size() == 2);
  CHECK(s.crashes[0].kind == CrashKind::kSleep);
  CHECK(s.crashes[0].at == 120h);
  CHECK(s.crashes[0].down_for == 6h);
  CHECK(s.crashes[1].node == "lander");
  CHECK(s.crashes[1].kind == CrashKind::kCrash);
  CHECK(s.crashes[1].at == 24h);
  CHECK(s.crashes[1].down_for == 90s);

  REQUIRE(s.link_faults.size() == 1);
  CHECK(s.link_faults[0].nodes == std::vector<std::string>{"rover-1"});
  CHECK(s.link_faults[0].loss == 0.01);
  CHECK(s.link_faults[0].duplication == 0.0);
  CHECK(s.link_faults[0].reorder == 0.02);
  CHECK(s.link_faults[0].reorder_delay_max == 30s);

  REQUIRE(s.clock_faults.size() == 1);
  CHECK(s.clock_faults[0].at == 144h);
  CHECK(s.clock_faults[0].drift_ppm == 40.0);
  CHECK(s.clock_faults[0].step == -2s);

  REQUIRE(s.replays.size() == 1);
  CHECK(s.replays[0].from_node == "rover-1");
  CHECK(s.replays[0].capture_from == 1h);
  CHECK(s.replays[0].capture_until == 2h);
  CHECK(s.replays[0].replay_at == 20h);

  REQUIRE(s.bulk.size() == 1);
  CHECK(s.bulk[0].node == "rover-1");
  CHECK(s.bulk[0].to == "earth");
  CHECK(s.bulk[0].size_bytes == 50'000'000);
  CHECK(s.bulk[0].at == 2h);
  CHECK(s.bulk[0].every == 24h);
  CHECK(s.bulk[0].count == 3);

  CHECK(s.fuzz.loss_max == 0.05);
  CHECK(s.fuzz.duplication_max == 0.05);
  CHECK(s.fuzz.reorder_max == 0.05);
  CHECK(s.fuzz.reorder_delay_max == 1min);
  CHECK(s.fuzz.partitions_max == 2);
  CHECK(s.fuzz.partition_length_max == 48h);
  CHECK(s.fuzz.crashes_max == 2);
  CHECK(s.fuzz.down_for_max == 12h);
  CHECK(s.fuzz.drift_ppm_max == 20.0);
}

TEST_CASE("scenario file: a minimal file takes the documented defaults") {
  constexpr std::string_view kMinimal = R"(format_version = 1
name = "tiny"
start = 2027-02-01T00:00:00Z
duration = 3600
[[node]]
name = "c"
id = 1
role = "coordinator"
)";
  auto s = ParseScenario(kMinimal, "tiny.toml");
  REQUIRE_MESSAGE(s.has_value(), s.error().ToString());
  CHECK(s->start == Utc("2027-02-01T00:00:00Z"));  // a TOML date-time works as well as a string
  CHECK(s->duration == 1h);
  CHECK(s->description.empty());
  CHECK(s->processing_margin == 2s);
  CHECK_FALSE(s->orbital_ranges);
  CHECK(s->orbital_range_step == 6h);
  CHECK(s->plan_text.empty());
  CHECK(s->nodes[0].clock.drift_ppm == 0.0);
  CHECK(s->nodes[0].clock.skew == 0ms);
  CHECK_FALSE(s->nodes[0].body.has_value());
  CHECK(s->fuzz.partitions_max == 0);
}

TEST_CASE("scenario file: durations and times take every documented form") {
  CHECK(ParseScenario(Edit("at = \"1h\"\nhold", "at = \"1h30m\"\nhold"), "t")->requests[0].at == 90min);
  CHECK(ParseScenario(Edit("at = \"1h\"\nhold", "at = 5400\nhold"), "t")->requests[0].at == 90min);
  CHECK(ParseScenario(Edit("at = \"1h\"\nhold", "at = \"1h 02m 03.5s\"\nhold"), "t")->requests[0].at ==
        3723500ms);
  CHECK(
      ParseScenario(Edit("at = \"1h\"\nhold", "at = \"2027-02-02T01:00:00Z\"\nhold"), "t")->requests[0].at ==
      25h);
  CHECK(
      ParseScenario(Edit("at = \"1h\"\nhold", "at = 2027-02-02T01:00:00+01:00\nhold"), "t")->requests[0].at ==
      24h);
  CHECK(ParseScenario(Edit("duration = \"10d\"", "duration = \"14d\""), "t")->duration == 336h);
  CHECK(ParseScenario(Edit("step = \"-2s\"", "step = 3"), "t")->clock_faults[0].step == 3s);
  CHECK(ParseScenario(Edit("skew = \"50ms\"", "skew = \"250ms\""), "t")->nodes[0].clock.skew == 250ms);
  // hold: a single duration means min == max
  auto s = ParseScenario(Edit("hold = [\"1h\", \"4h\"]", "hold = \"2h\""), "t");
  REQUIRE(s.has_value());
  CHECK(s->random_workloads[0].hold_min == 2h);
  CHECK(s->random_workloads[0].hold_max == 2h);
  // a single string is a list of one
  CHECK(ParseScenario(Edit("guards = [\"pad-guard\"]", "guards = \"pad-guard\""), "t")->nodes[1].guards ==
        std::vector<std::string>{"pad-guard"});
}

TEST_CASE("scenario file: bad durations and times name the key and the valid forms") {
  CheckError(Edit("hold = \"3h\"", "hold = \"3 hours\""), 71, "request[0].hold", "\"1h30m\"");
  CheckError(Edit("hold = \"3h\"", "hold = -5"), 71, "request[0].hold", "must not be negative");
  CheckError(Edit("hold = \"3h\"", "hold = \"0s\""), 71, "request[0].hold", "longer than 0");
  CheckError(Edit("hold = \"3h\"", "hold = true"), 71, "request[0].hold", "got true");
  CheckError(Edit("at = \"1h\"\nhold", "at = \"11d\"\nhold"), 70, "request[0].at",
             "not within the scenario (duration 10d");
  CheckError(Edit("at = \"1h\"\nhold", "at = \"2027-01-01T00:00:00Z\"\nhold"), 70, "request[0].at",
             "before the scenario's start");
  CheckError(Edit("until = \"9d\"", "until = \"10d 1s\""), 82, "workload[0].until",
             "after the scenario's end");
  CheckError(Edit("start = \"2027-02-01T00:00:00Z\"", "start = \"2027-02-30T00:00:00Z\""), 5, "start",
             "2027-02-30");
  CheckError(Edit("duration = \"10d\"", "duration = \"0s\""), 6, "duration", "longer than 0");
  CheckError(Edit("duration = \"10d\"", "duration = \"200000d\""), 6, "duration", "100 years");
}

TEST_CASE("scenario file: unknown keys are errors with a did-you-mean suggestion") {
  CheckError(Edit("drift_ppm = 5", "drift_pmm = 5"), 18, "node[0].drift_pmm",
             "unknown key 'drift_pmm'; did you mean 'drift_ppm'?");
  CheckError(Edit("name = \"test-scenario\"", "name = \"test-scenario\"\ncolour = \"red\""), 3, "colour",
             "unknown key 'colour' (valid here: format_version, name,");
  CheckError(Edit("[[request]]", "[[requests]]"), 67, "requests", "did you mean 'request'?");
  CheckError(Edit("loss_max = 0.05", "los_max = 0.05"), 129, "fuzz.los_max", "did you mean 'loss_max'?");
  CheckError(Edit("text = \"\"\"", "txt = \"\"\""), 51, "plan.txt", "did you mean 'text'?");
  CheckError(Edit("[light_time]", "[[light_time]]"), 9, "light_time", "expected a table");
}

TEST_CASE("scenario file: enumerations list their valid values") {
  CheckError(Edit("role = \"rover\"", "role = \"rovr\""), 24, "node[1].role",
             "unknown role 'rovr' (valid: coordinator, rover, relay, guard)");
  CheckError(Edit("kind = \"sleep\"", "kind = \"nap\""), 92, "crash[0].kind", "(valid: crash, sleep)");
  CheckError(Edit("body = \"earth\"", "body = \"venus\""), 48, "node[4].body", "(valid: earth, moon, mars)");
  CheckError(Edit("resource = \"mars/charging-pad\"", "resource = \"charging-pad\""), 69,
             "request[0].resource", "tenant/resource");
}

TEST_CASE("scenario file: node references must exist and have the right role") {
  CheckError(Edit("rover = \"rover-1\"", "rover = \"rover-2\""), 68, "request[0].rover",
             "unknown node 'rover-2'; did you mean 'rover-1'? (known rovers: rover-1)");
  CheckError(Edit("rover = \"rover-1\"", "rover = \"lander\""), 68, "request[0].rover",
             "node 'lander' is a coordinator, not a rover (rovers: rover-1)");
  CheckError(Edit("guards = [\"pad-guard\"]", "guards = [\"orbiter\"]"), 30, "node[1].guards",
             "node 'orbiter' is a relay, not a guard (guards: pad-guard)");
  CheckError(
      Edit("b = [\"orbiter\", \"lander\"]", "b = [\"orbiter\", \"landr\"]"), 86, "partition[0].b",
      "unknown node 'landr'; did you mean 'lander'? (known: lander, rover-1, pad-guard, orbiter, earth)");
  CheckError(Edit("b = [\"orbiter\", \"lander\"]", "b = [\"orbiter\", \"rover-1\"]"), 86, "partition[0].b",
             "node 'rover-1' is on both sides");
  CheckError(Edit("from_node = \"rover-1\"", "from_node = \"mallory\""), 115, "replay[0].from_node",
             "unknown node 'mallory'");
  CheckError(Edit("to = \"earth\"", "to = \"rover-1\""), 122, "bulk[0].to", "to itself");
  CheckError(Edit("guards = [\"pad-guard\"]\n", ""), 72, "request[0].use_every", "names no guard");
}

TEST_CASE("scenario file: node identity rules: one coordinator, unique names and ids, ids > 0") {
  CheckError(Edit("role = \"coordinator\"", "role = \"relay\""), 13, "node",
             "no node has role = \"coordinator\"");
  CheckError(Edit("id = 4\nrole = \"relay\"", "id = 4\nrole = \"coordinator\""), 13, "node",
             "2 nodes have role = \"coordinator\" (lander, orbiter); a scenario has exactly one");
  CheckError(Edit("name = \"orbiter\"", "name = \"rover-1\""), 39, "node[3].name",
             "node name 'rover-1' is already used by node[1]");
  CheckError(Edit("id = 4", "id = 2"), 40, "node[3].id", "node id 2 is already used by node[1]");
  CheckError(Edit("id = 4", "id = 0"), 40, "node[3].id", "must be > 0");
  CheckError(Edit("name = \"orbiter\"", "name = \"orbiter 2\""), 39, "node[3].name", "letters, digits");
  CheckError(Edit("name = \"orbiter\"\n", ""), 38, "node[3].name", "missing required key 'name'");
  CheckError(Edit("body = \"earth\"\n", ""), 44, "node[4].body",
             "light_time.orbital = true places every node");
  CheckError(Edit("lease_term = \"2h\"",
                  "lease_term = \"2h\"\n[[node]]\nname = \"x\"\nid = 9\nrole = \"relay\"\n"
                  "body = \"mars\"\nlease_term = \"1h\""),
             35, "node[2].lease_term", "only a rover asks for leases");
}

TEST_CASE("scenario file: numbers out of range are refused") {
  CheckError(Edit("loss = 0.01", "loss = 1.5"), 103, "link_faults[0].loss",
             "a probability must be in [0, 1]");
  CheckError(Edit("duplication_max = 0.05", "duplication_max = -0.1"), 130, "fuzz.duplication_max",
             "in [0, 1]");
  CheckError(Edit("actual_drift_ppm = -10", "actual_drift_ppm = -30"), 28, "node[1].actual_drift_ppm",
             "exceeds the node's drift bound drift_ppm = 20.5");
  CheckError(Edit("drift_ppm = 5", "drift_ppm = -5"), 18, "node[0].drift_ppm", "[0, 10000]");
  CheckError(Edit("partitions_max = 2", "partitions_max = -1"), 133, "fuzz.partitions_max", "[0, 1000]");
  CheckError(Edit("reorder_delay_max = \"30s\"", "reorder_delay_max = 0"), 106,
             "link_faults[0].reorder_delay_max", "when reorder > 0");
  CheckError(Edit("count = 3", "count = 30"), 126, "bulk[0].count", "last transfer");
  CheckError(Edit("until = \"2027-02-05T00:00:00Z\"", "until = \"2d\""), 88, "partition[0].until",
             "ends before it starts");
  CheckError(Edit("replay_at = \"20h\"", "replay_at = \"90m\""), 118, "replay[0].replay_at",
             "only after they are captured");
  CheckError(Edit("node = \"lander\"\nat = 86400", "node = \"rover-1\"\nat = \"5d 1h\""), 98, "crash[1].at",
             "node 'rover-1' is already down then");
  CheckError(Edit("drift_ppm = 40\nstep = \"-2s\"\n", ""), 108, "clock_fault[0]", "needs drift_ppm");
}

}  // namespace
}  // namespace ics::scenarios
