// The deterministic replayer: a discrete-event simulation that runs the real cores of every node
// of a scenario (dtn::Node over a BundleStore on every node; coordinator::LeaseCore over a
// LeaseLog on the coordinator; rover_agent::AgentCore over an AgentStore on rovers;
// rover_agent::GuardCore over a GuardStore on guards) over simulated links and clocks.
//
// Time. Events are ordered by (true time, sequence number), so a run is a pure function of the
// scenario and the seed. Each node sees its own LOCAL clock:
//     local(t) = start + skew + (t - start) x (1 + drift)
// (drift: the node's actual_drift_ppm, or one chosen per seed within its bound; a clock fault
// changes the drift or steps the clock from its instant on; a local clock never goes backwards:
// a backward step holds it still until true time catches up). Core deadlines (local) are turned
// back into the first true instant whose local time reaches them.
//
// Links. Each directed pair of nodes with contacts in the plan is a link, usable while a contact
// of the plan is open and no partition cuts it. A transmission occupies the link for
// size / rate (one bundle at a time per direction) and arrives one OWLT later (the plan's range,
// or the orbital model's when scenario.orbital_ranges); it is lost when the link closes before it
// has been sent, or with the link's loss probability; it may be duplicated or delayed (reordered).
// Acknowledgements travel back over the reverse link (lost when it is down). Each Node is told
// OnContactStart / OnContactEnd as its links open and close.
//
// Drivers. Each node runs its cores in the order of the live daemons: an application's output is
// persisted (its store Apply / the lease log Append) before its messages are handed to the Node
// (Send, expedited priority, ipn:N.64 lease service, ipn:N.65 guard service); the Node's store
// is committed before its actions (transmit, acknowledge, deliver) are performed; a delivery is
// confirmed once the application has persisted what it did with it.
//
// Faults. A crash or sleep destroys every core object of the node (memory lost) and rebuilds them
// from their stores at restart / wake (the real recovery path); a coordinator restart starts a new
// epoch (LeaseLog::StartEpoch) and rebuilds the LeaseCore from LoadState().
//
// Stores. kMemory (default): MemoryBundleStore, InMemoryAgentStore, InMemoryGuardStore and
// InMemoryLeaseLog, all of which outlive the cores they back exactly as files do; kSqlite: the
// SQLite implementations in a private temp directory, all without fsync (the files are scratch;
// the daemons keep full durability). Either
// way the epoch log is exported at the end into `out_dir/epochlog.db` with
// coordinator::SqliteLeaseLog (same schema as the real coordinator's).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clock/time.h"
#include "scenarios/safety.h"
#include "scenarios/scenario.h"

namespace ics::scenarios {

enum class StoreKind : std::uint8_t { kMemory, kSqlite };

struct ReplayOptions {
  std::uint64_t seed = 1;
  std::optional<Duration> until;  // stop at start + until (default: scenario.duration)
  StoreKind stores = StoreKind::kMemory;
  // Write events.jsonl (memory for every event) and keep the timeline data. Off for fuzzing.
  bool record_events = true;
  // Progress callback, called about every `progress_every_events` events with (simulated
  // offset reached, events so far). Empty: none.
  std::function<void(Duration, std::uint64_t)> progress;
  std::uint64_t progress_every_events = 200'000;
  // Mutation hook for tests of the checker: every rover believes its leases `belief_extension`
  // longer than its own view says (a broken agent). 0 in real runs.
  Duration belief_extension{0};
};

struct LatencyFigures {
  std::uint64_t count = 0;
  Duration p50{0}, p90{0}, p99{0}, max{0};
};

struct ResourceFigures {
  std::string resource;
  double utilization = 0;          // fraction of the run some rover believed it held it
  Duration held{0};
  Duration idle_while_waiting{0};  // no holder while at least one request waited
  std::uint64_t grants = 0;
};

struct NodeFigures {
  std::string name;
  std::uint64_t store_bundles_peak = 0;
  std::uint64_t store_bytes_peak = 0;
  std::uint64_t transmissions = 0;
  std::uint64_t expired = 0;
  std::uint64_t delivered = 0;
  std::uint64_t restarts = 0;
};

// [[bulk]] transfers: each split into bundles of at most 64 KiB sent at bulk priority from
// ipn:sender.66 to ipn:receiver.66 with a 24-hour lifetime.
struct BulkFigures {
  std::uint64_t transfers = 0;        // started (their time came)
  std::uint64_t transfers_lost = 0;   // the sender was down at that time
  std::uint64_t bundles_sent = 0;     // accepted by the sender's node
  std::uint64_t bundles_refused = 0;  // refused by the sender's node (store quota)
  std::uint64_t bundles_delivered = 0;
  std::uint64_t bytes_delivered = 0;
  DtnTime last_delivery;  // of any bulk bundle
};

struct ReplayResult {
  std::string scenario;
  std::uint64_t seed = 0;
  Duration simulated{0};
  std::uint64_t events = 0;  // simulation events processed
  std::uint64_t requests = 0;
  std::uint64_t granted = 0;   // acquisitions that reached a grant notification
  std::uint64_t denied = 0;
  std::uint64_t gave_up = 0;
  std::uint64_t lapsed = 0;
  std::uint64_t lease_messages = 0;  // lease/guard ADUs sent by any core
  std::uint64_t bundle_transmissions = 0;
  std::uint64_t bundles_lost = 0;
  std::uint64_t bundles_duplicated = 0;
  std::uint64_t expired_bundles = 0;
  std::uint64_t uses_accepted = 0;
  std::uint64_t uses_rejected = 0;
  std::uint64_t epochs = 0;
  BulkFigures bulk;  // all 0 without [[bulk]]
  LatencyFigures latency;
  std::vector<ResourceFigures> resources;  // by name
  std::vector<NodeFigures> nodes;          // in scenario order
  std::vector<Violation> violations;
  History history;
  // With record_events: one JSON object per line (events.jsonl), and the timeline SVG.
  std::vector<std::string> event_lines;
  std::string timeline_svg;
  // The epoch log events (for export into epochlog.db); always kept.
  std::vector<std::string> warnings;  // configuration problems met (e.g. a term the policy refused)
};

// Runs the scenario. Aborts only on a broken invariant of a core; configuration errors (an
// unknown node name, a plan that does not parse) are returned.
std::expected<ReplayResult, std::string> RunReplay(const Scenario& scenario, const ReplayOptions& options,
                                                   const std::string& epochlog_path = {});

// report.json text for a result (deterministic: fixed key order, no paths, no wall clock).
std::string ReportJson(const ReplayResult& result);
// A short, human summary (a few lines).
std::string SummaryText(const ReplayResult& result);

// Writes report.json, events.jsonl, timeline.svg into `out_dir` (created if missing); the epoch
// log is written by RunReplay (pass out_dir + "/epochlog.db"). Error names the file.
std::expected<void, std::string> WriteOutputs(const ReplayResult& result, const std::string& out_dir);

// --- fuzzing ---------------------------------------------------------------------------------

// The scenario with random faults drawn for `seed` within scenario.fuzz's bounds (partitions,
// crashes, loss/duplication/reordering, actual drifts). Deterministic in (scenario, seed).
Scenario FuzzScenario(const Scenario& scenario, std::uint64_t seed);

struct FuzzSeedResult {
  std::uint64_t seed = 0;
  std::uint64_t violations = 0;
  std::uint64_t requests = 0, granted = 0;
  Duration latency_max{0}, latency_p50{0};
  std::string first_violation;
};

struct FuzzSummary {
  std::string scenario;
  std::uint64_t seeds = 0;
  std::uint64_t violations = 0;
  std::uint64_t requests = 0, granted = 0;
  Duration latency_p50_median{0}, latency_max{0};
  std::vector<std::uint64_t> failing_seeds;  // sorted
  std::vector<FuzzSeedResult> runs;          // by seed
};

struct FuzzOptions {
  std::uint64_t seeds = 100;
  std::uint64_t first_seed = 1;
  int jobs = 1;
  int shard_index = 0;  // 0-based: runs seeds first_seed + k with k % shard_count == shard_index
  int shard_count = 1;
  std::function<void(std::uint64_t done, std::uint64_t total)> progress;
};

FuzzSummary RunFuzz(const Scenario& scenario, const FuzzOptions& options);
std::string FuzzSummaryJson(const FuzzSummary& summary);
std::expected<FuzzSummary, std::string> ParseFuzzSummaryJson(const std::string& text, const std::string& source);
// Combines shard summaries (runs deduplicated by seed); error when scenarios differ.
std::expected<FuzzSummary, std::string> MergeFuzzSummaries(const std::vector<FuzzSummary>& summaries);
std::string FuzzSummaryText(const FuzzSummary& summary);

}  // namespace ics::scenarios
