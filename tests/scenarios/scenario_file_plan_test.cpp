// Goal: contact plan errors point at the scenario file's own line and column when the plan is
// inline (and at the plan file's when it is not), and the file-level rules hold: versions, TOML
// syntax, size bounds, plan files relative to the scenario, pass schedules. Method: small
// scenarios written here (and into a mkdtemp directory for files), each error checked for its
// exact position, key and text.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "scenarios/scenario_file.h"

namespace ics::scenarios {
namespace {

using namespace std::chrono_literals;

// Nodes 1 (c, coordinator) and 2 (r, rover) over one day; `rest` is appended (line 12 on).
std::string Small(std::string_view rest) {
  return fmt::format(R"(format_version = 1
name = "small"
start = "2030-01-01T00:00:00Z"
duration = "1d"
[[node]]
name = "c"
id = 1
role = "coordinator"
[[node]]
name = "r"
id = 2
role = "rover"
{})",
                     rest);
}

ScenarioError ErrorOf(const std::string& text) {
  auto s = ParseScenario(text, "s.toml");
  REQUIRE_MESSAGE(!s.has_value(), "parsed, but an error was expected");
  return s.error();
}

std::filesystem::path TempDir() {
  std::string pattern = "/tmp/ics-scenario-file-XXXXXX";
  REQUIRE(mkdtemp(pattern.data()) != nullptr);
  return pattern;
}

void Write(const std::filesystem::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

TEST_CASE("scenario file: an inline plan's error is reported at the scenario file's line and column") {
  // Line 14 opens the string, so plan line 2 is file line 16; the rate token is in column 25.
  const ScenarioError e = ErrorOf(Small(R"([plan]
text = """
a contact +0 +86400 1 2 1000
a contact +0 +86400 2 1 0
"""
)"));
  INFO(e.ToString());
  CHECK(e.file == "s.toml");
  CHECK(e.line == 16);
  CHECK(e.column == 25);
  CHECK(e.key == "plan.text");
  CHECK(e.message.starts_with("contact plan: "));
  CHECK(e.message.find("RATE must be > 0") != std::string::npos);
}

TEST_CASE("scenario file: a plan starting on the delimiter's line keeps its columns") {
  // `text = '''` puts the opening quote in column 8; the text starts in column 11.
  const ScenarioError e = ErrorOf(Small("[plan]\ntext = '''a contact +0 +86400 1 2 0\n'''\n"));
  INFO(e.ToString());
  CHECK(e.line == 14);
  CHECK(e.column == 11 + 25 - 1);  // the rate is the plan's column 25
  const ScenarioError single = ErrorOf(Small("[plan]\ntext = \"a range +0 +x 1 2 1\"\n"));
  INFO(single.ToString());
  CHECK(single.line == 14);
  CHECK(single.column == 9 + 12 - 1);  // "+x" is the plan's column 12; the text starts in column 9
}

TEST_CASE("scenario file: a plan naming a node number no [[node]] has is refused, listing the known ones") {
  const ScenarioError e = ErrorOf(
      Small("[plan]\ntext = \"\"\"\na contact +0 +86400 1 2 1000\na range +0 +86400 2 7 1\n\"\"\"\n"));
  INFO(e.ToString());
  CHECK(e.line == 16);
  CHECK(e.column == 21);
  CHECK(e.message == "contact plan: node 7 is not a [[node]]'s id (known: 1 c, 2 r)");
}

TEST_CASE("scenario file: a plan file is read relative to the scenario file, and its errors name it") {
  const auto dir = TempDir();
  std::filesystem::create_directories(dir / "plans");
  Write(dir / "plans" / "good.plan", "# a plan\na contact +0 +86400 1 2 1000\n");
  Write(dir / "good.toml", Small("[plan]\nfile = \"plans/good.plan\"\n"));
  auto s = LoadScenarioFile(dir / "good.toml");
  REQUIRE_MESSAGE(s.has_value(), s.error().ToString());
  CHECK(s->plan_text == "# a plan\na contact +0 +86400 1 2 1000\n");
  CHECK(s->plan_source == (dir / "plans" / "good.plan").string());
  CHECK(s->source == (dir / "good.toml").string());

  Write(dir / "plans" / "bad.plan", "a contact +0 +86400 1 2 1000\n\na contact +5 +1 1 2 1000\n");
  Write(dir / "bad.toml", Small("[plan]\nfile = \"plans/bad.plan\"\n"));
  auto bad = LoadScenarioFile(dir / "bad.toml");
  REQUIRE_FALSE(bad.has_value());
  INFO(bad.error().ToString());
  CHECK(bad.error().file == (dir / "plans" / "bad.plan").string());
  CHECK(bad.error().line == 3);
  CHECK(bad.error().key == "plan.file");

  Write(dir / "missing.toml", Small("[plan]\nfile = \"nope.plan\"\n"));
  auto missing = LoadScenarioFile(dir / "missing.toml");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().line == 14);
  CHECK(missing.error().message.find("cannot read the plan file") != std::string::npos);

  const ScenarioError both = ErrorOf(Small("[plan]\ntext = \"\"\nfile = \"x.plan\"\n"));
  CHECK(both.key == "plan.file");
  CHECK(both.message.find("not both") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("scenario file: pass schedules expand into contacts both ways, bounded and checked") {
  auto s = ParseScenario(Small(R"([[node]]
name = "orbiter"
id = 3
role = "relay"
[[pass_schedule]]
relay = "orbiter"
nodes = ["c", "r"]
first = "30m"
every = "118m"
length = "10m 30s"
rate = 32000
)"),
                         "s.toml");
  REQUIRE_MESSAGE(s.has_value(), s.error().ToString());
  // Passes at 30m, 148m, ... until 2 days past the 1-day scenario (the default: the timeout
  // policy looks ahead): (4320 - 30) / 118 rounds up to 37 passes.
  std::size_t contacts = 0;
  for (std::size_t at = s->plan_text.find("a contact"); at != std::string::npos;
       at = s->plan_text.find("a contact", at + 1)) {
    ++contacts;
  }
  CHECK(contacts == 37 * 2 * 2);
  CHECK(s->plan_text.find("a contact +256680 +257310 3 2 32000\n") != std::string::npos);  // the 37th
  CHECK(s->plan_text.find("a contact +1800 +2430 3 1 32000\n") != std::string::npos);
  CHECK(s->plan_text.find("a contact +8880 +9510 2 3 32000\n") != std::string::npos);
  CHECK(s->plan_text.find("a range") == std::string::npos);

  const std::string nodes = "[[node]]\nname = \"orbiter\"\nid = 3\nrole = \"relay\"\n";
  const ScenarioError longer = ErrorOf(Small(nodes + "[[pass_schedule]]\nrelay = \"orbiter\"\nnodes = "
                                                     "[\"r\"]\nevery = \"1h\"\nlength = \"2h\"\nrate = 1\n"));
  CHECK(longer.key == "pass_schedule[0].length");
  CHECK(longer.line == 21);
  const ScenarioError self =
      ErrorOf(Small(nodes + "[[pass_schedule]]\nrelay = \"orbiter\"\nnodes = [\"orbiter\"]\nevery = "
                            "\"1h\"\nlength = \"1m\"\nrate = 1\n"));
  CHECK(self.message.find("itself") != std::string::npos);
  const ScenarioError many =
      ErrorOf(Small(nodes + "[[pass_schedule]]\nrelay = \"orbiter\"\nnodes = [\"r\"]\nevery = "
                            "\"10ms\"\nlength = \"1ms\"\nrate = 1\n"));
  CHECK(many.message.find("at most 1000000") != std::string::npos);
}

TEST_CASE(
    "scenario file: format_version: required, and a newer one is refused saying which this build reads") {
  std::string newer = Small("");
  newer.replace(0, std::string_view("format_version = 1").size(), "format_version = 2");
  const ScenarioError e = ErrorOf(newer);
  CHECK(e.line == 1);
  CHECK(e.key == "format_version");
  CHECK(e.message.find("format_version 2 is newer than this build reads (format_version 1)") !=
        std::string::npos);

  std::string missing = Small("");
  missing.replace(0, std::string_view("format_version = 1").size(), "");
  const ScenarioError m = ErrorOf(missing);
  CHECK(m.line == 0);
  CHECK(m.key == "format_version");
  CHECK(m.ToString() ==
        "s.toml: format_version: missing required key 'format_version' (this build reads "
        "format_version = 1)");
}

TEST_CASE("scenario file: TOML syntax errors carry toml++'s position") {
  const ScenarioError e = ErrorOf(Small("[[request]]\nrover = \"r\nresource = \"a/b\"\n"));
  INFO(e.ToString());
  CHECK(e.line == 14);
  CHECK(e.column > 0);
  CHECK(e.key.empty());
  CHECK(e.message.starts_with("TOML syntax: "));
  const ScenarioError table = ErrorOf(Small("[crash]\nnode = \"r\"\n"));
  CHECK(table.key == "crash");
  CHECK(table.message.find("write each entry as [[crash]]") != std::string::npos);
}

TEST_CASE("scenario file: sizes are bounded and unreadable files say why") {
  const std::string huge(kScenarioFileBytesMax + 1, '#');
  auto e = ParseScenario(huge, "huge.toml");
  REQUIRE_FALSE(e.has_value());
  CHECK(e.error().line == 0);
  CHECK(e.error().message.find("at most 4194304") != std::string::npos);

  auto missing = LoadScenarioFile("/nonexistent/x.toml");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().ToString().starts_with("/nonexistent/x.toml: cannot open: "));
}

TEST_CASE("scenario file: workloads get distinct default seed salts and run to the end by default") {
  auto s = ParseScenario(Small(R"([[workload]]
rovers = "r"
resources = "t/a"
mean_interarrival = "1h"
hold = "10m"
wait = "1h"
[[workload]]
rovers = "r"
resources = "t/b"
mean_interarrival = "1h"
hold = "10m"
wait = "1h"
seed_salt = 77
)"),
                         "s.toml");
  REQUIRE_MESSAGE(s.has_value(), s.error().ToString());
  CHECK(s->random_workloads[0].seed_salt == 0);
  CHECK(s->random_workloads[0].until == 24h);
  CHECK(s->random_workloads[1].seed_salt == 77);
}

TEST_CASE("scenario file: error text and suggestions") {
  CHECK(ScenarioError{"f.toml", 12, 3, "node[2].role", "unknown role 'rovr'"}.ToString() ==
        "f.toml:12:3: node[2].role: unknown role 'rovr'");
  CHECK(ScenarioError{"f.toml", 0, 0, "", "cannot open"}.ToString() == "f.toml: cannot open");
  const std::vector<std::string> keys = {"drift_ppm", "skew", "lease_term", "guards"};
  CHECK(SuggestClosest("drift_pmm", keys) == "drift_ppm");
  CHECK(SuggestClosest("Skew", keys) == "skew");
  CHECK(SuggestClosest("guard", keys) == "guards");
  CHECK(SuggestClosest("colour", keys) == std::nullopt);
  CHECK(ParseRole("relay") == Role::kRelay);
  CHECK(ParseRole("Relay") == std::nullopt);
  CHECK(RoleName(Role::kGuard) == "guard");
  CHECK(ParseCrashKind("sleep") == CrashKind::kSleep);
  CHECK(CrashKindName(CrashKind::kCrash) == "crash");
}

}  // namespace
}  // namespace ics::scenarios
