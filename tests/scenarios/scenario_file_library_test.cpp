// Goal: every scenario in scenarios/library/ parses, and the library holds the nine situations
// of the design with the properties each one is there to exercise. Method: load every .toml
// file found beside this source tree (derived from __FILE__) and check each file's model.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>

#include "dtn/contact_plan.h"
#include "scenarios/scenario_file.h"

namespace ics::scenarios {
namespace {

using namespace std::chrono_literals;

std::filesystem::path LibraryDir() {
  // tests/scenarios/this_file.cpp -> the source root
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "scenarios" / "library";
}

std::map<std::string, Scenario> LoadLibrary() {
  std::map<std::string, Scenario> out;
  for (const auto& entry : std::filesystem::directory_iterator(LibraryDir())) {
    if (entry.path().extension() != ".toml") continue;
    auto s = LoadScenarioFile(entry.path());
    REQUIRE_MESSAGE(s.has_value(), s.error().ToString());
    out.emplace(entry.path().filename().string(), std::move(*s));
  }
  return out;
}

std::size_t CountRole(const Scenario& s, Role role) {
  return static_cast<std::size_t>(
      std::ranges::count_if(s.nodes, [&](const NodeSpec& n) { return n.role == role; }));
}

TEST_CASE("scenario library: every file parses and describes its situation and claim") {
  const auto library = LoadLibrary();
  const std::vector<std::string> expected = {"mars-rovers.toml",        "earth-commanded-rovers.toml",
                                             "swarm-charging-pad.toml", "campus-3d-printer.toml",
                                             "build-laptops.toml",      "schema-migration.toml",
                                             "two-tenants.toml",        "ar-headsets.toml",
                                             "bulk-science-data.toml"};
  for (const auto& name : expected) {
    INFO(name);
    REQUIRE(library.count(name) == 1);
    const Scenario& s = library.at(name);
    CHECK(s.name + ".toml" == name);
    CHECK(s.description.size() > 200);
    CHECK(s.claim.size() > 100);
    CHECK(s.Coordinator() != nullptr);
    CHECK(CountRole(s, Role::kGuard) >= 1);
    CHECK((!s.random_workloads.empty() || !s.requests.empty()));
    CHECK(s.fuzz.crashes_max >= 1);  // fuzz always has something to vary
    // The plan parses as the replayer will parse it.
    auto plan = dtn::ParseContactPlan(s.plan_text, s.plan_source, s.start);
    CHECK_MESSAGE(plan.has_value(), (plan ? "" : plan.error().ToString()));
    CHECK(!plan->contacts().empty());
  }
  // The acceptance check takes the first path containing "mars" as the default scenario.
  std::size_t with_mars = 0;
  for (const auto& [name, s] : library) {
    if (name.find("mars") != std::string::npos) ++with_mars;
  }
  CHECK(with_mars == 1);
}

TEST_CASE("scenario library: mars-rovers has three rovers, a lander, an orbiter, conjunction and a crash") {
  auto s = LoadScenarioFile(LibraryDir() / "mars-rovers.toml");
  REQUIRE_MESSAGE(s.has_value(), s.error().ToString());
  CHECK(s->Coordinator()->name == "lander");
  CHECK(s->orbital_ranges);
  std::size_t mars_rovers = 0;
  for (const auto& n : s->nodes) {
    if (n.role == Role::kRover && n.body == clock::Body::kMars) ++mars_rovers;
  }
  CHECK(mars_rovers == 3);
  CHECK(s->FindNode("orbiter")->role == Role::kRelay);
  // A partition of Earth from Mars lasting 14 days, inside the scenario.
  REQUIRE(s->partitions.size() == 1);
  CHECK(s->partitions[0].until - s->partitions[0].from == 14 * 24h);
  REQUIRE(s->crashes.size() == 1);
  CHECK(s->FindNode(s->crashes[0].node)->role == Role::kRover);
  // Orbiter passes: 10 minutes every 118 minutes between the orbiter and rover-2 (node 3).
  auto plan = dtn::ParseContactPlan(s->plan_text, s->plan_source, s->start);
  REQUIRE(plan.has_value());
  const auto passes = plan->ContactsBetween(5, 3);
  REQUIRE(passes.size() > 500);
  CHECK(passes[0].end - passes[0].start == 10min);
  CHECK(passes[1].start - passes[0].start == 118min);
  CHECK(s->duration <= 60 * 24h);  // the acceptance test fuzzes it over 200 seeds
}

TEST_CASE(
    "scenario library: earth-commanded-rovers spans 3 to 22 minutes of light time and has a too-short term") {
  auto s = LoadScenarioFile(LibraryDir() / "earth-commanded-rovers.toml");
  REQUIRE_MESSAGE(s.has_value(), s.error().ToString());
  CHECK(s->Coordinator()->body == clock::Body::kEarth);
  auto plan = dtn::ParseContactPlan(s->plan_text, s->plan_source, s->start);
  REQUIRE(plan.has_value());
  const auto bound = plan->range_table().Bound(1, 2, s->start, s->start + s->duration - 1ms);
  REQUIRE(bound.has_value());
  CHECK(bound->min >= 3min);
  CHECK(bound->min < 4min);
  CHECK(bound->max > 21min);
  CHECK(bound->max <= 22min);
  // rover-c's term is shorter than the round trip even at the smallest light time.
  const NodeSpec* c = s->FindNode("rover-c");
  REQUIRE(c != nullptr);
  REQUIRE(c->lease_term.has_value());
  CHECK(*c->lease_term < 2 * bound->min);
  CHECK(*s->FindNode("rover-a")->lease_term > 2 * bound->max);
}

TEST_CASE("scenario library: each situation has the faults it is about") {
  const auto library = LoadLibrary();
  CHECK(library.at("swarm-charging-pad.toml").partitions.size() >= 1);
  CHECK(CountRole(library.at("swarm-charging-pad.toml"), Role::kRover) == 8);
  const Scenario& printer = library.at("campus-3d-printer.toml");
  REQUIRE(!printer.partitions.empty());
  CHECK(printer.partitions[0].side_a == std::vector<std::string>{printer.Coordinator()->name});
  const Scenario& laptops = library.at("build-laptops.toml");
  CHECK(std::ranges::all_of(laptops.crashes, [](const Crash& c) { return c.kind == CrashKind::kSleep; }));
  CHECK(laptops.crashes.size() >= 4);
  const Scenario& schema = library.at("schema-migration.toml");
  std::size_t coordinator_restarts = 0;
  for (const auto& c : schema.crashes) {
    if (c.node == schema.Coordinator()->name) ++coordinator_restarts;
  }
  CHECK(coordinator_restarts == 1);
  CHECK(schema.crashes.size() == 9);  // two rolling restarts of four services, and the coordinator
  const Scenario& tenants = library.at("two-tenants.toml");
  CHECK(tenants.replays.size() == 2);
  REQUIRE(tenants.random_workloads.size() == 2);
  CHECK(tenants.random_workloads[0].resources[0].resource ==
        tenants.random_workloads[1].resources[0].resource);
  CHECK(tenants.random_workloads[0].resources[0].tenant != tenants.random_workloads[1].resources[0].tenant);
  const Scenario& ar = library.at("ar-headsets.toml");
  auto ar_plan = dtn::ParseContactPlan(ar.plan_text, ar.plan_source, ar.start);
  REQUIRE(ar_plan.has_value());
  CHECK(ar_plan->OwltAt(1, 2, ar.start) == 2ms);
  const Scenario& bulk = library.at("bulk-science-data.toml");
  CHECK(bulk.bulk.size() == 2);
}

}  // namespace
}  // namespace ics::scenarios

namespace ics::scenarios {
namespace {

// Corrupted files exercise every error path with inputs nobody wrote by hand: the parser must
// return a value or an error with a position inside the file, never crash or hang.
TEST_CASE("scenario library: random corruptions of the library's files never crash the parser") {
  const std::uint64_t seed = 20260611;
  MESSAGE("seed = " << seed);
  std::mt19937_64 rng(seed);
  std::vector<std::string> texts;
  for (const char* name : {"swarm-charging-pad.toml", "two-tenants.toml", "bulk-science-data.toml"}) {
    std::ifstream in(LibraryDir() / name, std::ios::binary);
    texts.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    REQUIRE(!texts.back().empty());
  }
  const std::string_view alphabet = "=\"'[]{},.#\n 0123456789-+:abcdefhmsz_\\";
  int errors = 0;
  for (int i = 0; i < 300; ++i) {
    std::string text = texts[static_cast<std::size_t>(i) % texts.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = rng() % text.size();
      switch (rng() % 3) {
        case 0:
          text.erase(at, 1 + rng() % 8);
          break;
        case 1:
          text.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          text[at] = alphabet[rng() % alphabet.size()];
      }
    }
    auto s = ParseScenario(text, "corrupt.toml");
    if (!s) {
      ++errors;
      const auto lines = static_cast<int>(std::ranges::count(text, '\n')) + 1;
      CHECK_MESSAGE(s.error().line <= lines, "iteration " << i << ": " << s.error().ToString());
      CHECK(!s.error().message.empty());
    }
  }
  CHECK(errors > 100);  // most corruptions are caught
}

}  // namespace
}  // namespace ics::scenarios
