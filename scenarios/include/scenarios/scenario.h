// The scenario model: what a scenario file (TOML, format version 1; see scenarios/FORMAT.md)
// says, as plain data. The parser (scenario_file.h) fills it; the replayer (replay.h) runs it.
//
// All times in a scenario are offsets from the scenario's start (`start`, an absolute UTC
// instant, DTN time); durations are clock::Duration. Node names are unique; node numbers are ipn
// node numbers, unique. The contact plan uses the same offsets (`+SECONDS` relative to start).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "coordinator/protocol.h"

namespace ics::scenarios {

using clock::Duration;
using clock::DtnTime;
using clock::NodeNumber;

enum class Role : std::uint8_t {
  kCoordinator,  // runs the lease core (exactly one per scenario)
  kRover,        // runs an agent core (rovers, robots, laptops, services, headsets ...)
  kRelay,        // a bundle node only (an orbiter, a lander relay)
  kGuard,        // runs a guard core fronting resources (rovers present tokens to it)
};

struct NodeSpec {
  std::string name;
  NodeNumber id = 0;
  Role role = Role::kRover;
  clock::ClockErrorBound clock;       // drift_ppm bound and initial skew
  // The drift actually applied in the simulation, in ppm (|actual| <= bound unless a fault says
  // otherwise); nullopt: chosen per seed within the bound.
  std::optional<double> actual_drift_ppm;
  std::optional<clock::Body> body;    // for the orbital light-time model
  std::optional<Duration> lease_term;  // rovers: the term asked for (default: derived by policy)
  std::vector<std::string> guards;    // rovers: guards it presents tokens to (names)
};

// One request: `rover` wants `resource` at `at`, to hold it for `hold`, waiting up to `wait`.
struct Request {
  std::string rover;
  coordinator::ResourceName resource;
  Duration at{0};
  Duration hold{0};
  Duration wait{0};
  // While held, the rover uses the resource through its guard every `use_every` (0: never).
  Duration use_every{0};
};

// Poisson arrivals of requests from the listed rovers for the listed resources.
struct RandomWorkload {
  std::vector<std::string> rovers;
  std::vector<coordinator::ResourceName> resources;
  Duration mean_interarrival{0};
  Duration hold_min{0}, hold_max{0};
  Duration wait{0};
  Duration from{0}, until{0};
  Duration use_every{0};
  std::uint64_t seed_salt = 0;  // mixed with the run's seed
};

// The link between two nodes (both directions) is cut during [from, until).
struct Partition {
  std::vector<std::string> side_a;  // every link between a node of side_a and one of side_b
  std::vector<std::string> side_b;
  Duration from{0}, until{0};
};

enum class CrashKind : std::uint8_t {
  kCrash,  // the process dies at `at` (memory lost, disk kept) and restarts after `down_for`
  kSleep,  // the machine sleeps at `at` and wakes after `down_for` with its memory lost, disk kept
};
struct Crash {
  std::string node;
  CrashKind kind = CrashKind::kCrash;
  Duration at{0};
  Duration down_for{0};
};

// Bundle-level faults on every link (or on the links of `nodes`, when given).
struct LinkFaults {
  std::vector<std::string> nodes;  // empty: all links
  double loss = 0;                 // probability a bundle transmission is lost
  double duplication = 0;          // probability it is delivered twice
  double reorder = 0;              // probability it is delayed by up to reorder_delay_max
  Duration reorder_delay_max{0};
};

// A clock fault on a node: from `at`, its drift becomes `drift_ppm` and/or it steps by `step`.
struct ClockFault {
  std::string node;
  Duration at{0};
  std::optional<double> drift_ppm;
  Duration step{0};
};

// Old messages captured earlier and replayed into the network later (the two-tenants scenario):
// every lease message sent by `from_node` during [capture_from, capture_until) is re-injected,
// unchanged, at `replay_at`.
struct Replay {
  std::string from_node;
  Duration capture_from{0}, capture_until{0};
  Duration replay_at{0};
};

// Bulk data (science files, logs, build artifacts) that `node` sends to `to`: `count` transfers
// of `size_bytes` each, the first at `at`, then one every `every` (0 when count == 1). Bulk
// bundles travel at bulk priority, behind coordination traffic (DESIGN.md §4), so a lease message
// never waits behind them. (Added by the scenario-format engineer for the bulk-science-data
// scenario; the file's [[bulk]] table, scenarios/FORMAT.md.)
struct BulkTransfer {
  std::string node;
  std::string to;
  std::uint64_t size_bytes = 0;
  Duration at{0};
  Duration every{0};
  int count = 1;
};

// What `ics-replay fuzz` may randomise, per seed, within these bounds.
struct FuzzBounds {
  double loss_max = 0;
  double duplication_max = 0;
  double reorder_max = 0;
  Duration reorder_delay_max{0};
  int partitions_max = 0;
  Duration partition_length_max{0};
  int crashes_max = 0;        // of rovers, relays and the coordinator
  Duration down_for_max{0};
  double drift_ppm_max = 0;   // actual drifts chosen within +/- min(this, each node's bound)
};

struct Scenario {
  int format_version = 1;
  std::string name;
  std::string description;  // the real situation, one paragraph
  std::string claim;        // what the run checks
  std::string source;       // the file it came from (for messages)
  DtnTime start;
  Duration duration{0};
  std::vector<NodeSpec> nodes;
  // ION-style plan text, `+SECONDS` relative to `start` (inline `plan = """..."""` or `plan_file`).
  std::string plan_text;
  std::string plan_source;  // file name or "<scenario>:plan"
  // When set, ranges come from the orbital model (nodes' `body`), sampled every
  // orbital_range_step, instead of (or in addition to) the plan's `a range` lines.
  bool orbital_ranges = false;
  Duration orbital_range_step = std::chrono::hours(6);
  Duration processing_margin = std::chrono::seconds(2);
  std::vector<Request> requests;
  std::vector<RandomWorkload> random_workloads;
  std::vector<Partition> partitions;
  std::vector<Crash> crashes;
  std::vector<LinkFaults> link_faults;
  std::vector<ClockFault> clock_faults;
  std::vector<Replay> replays;
  std::vector<BulkTransfer> bulk;  // [[bulk]]: see BulkTransfer
  FuzzBounds fuzz;

  const NodeSpec* FindNode(std::string_view node_name) const;
  const NodeSpec* FindNode(NodeNumber id) const;
  const NodeSpec* Coordinator() const;
};

}  // namespace ics::scenarios
