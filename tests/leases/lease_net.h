// Helpers for the live lease tests: real ics-coordinator, ics-rover-agent (run / guard) and
// ics-dtn node daemons on 127.0.0.1 in one temp dir, sharing a contact plan and a scaled mission
// clock; the agent's client verbs; readers for the daemons' JSON lines and the epoch log.
//
// Mission time. Every daemon of a LeaseNet gets the same --time-origin O (the test's wall clock
// when the net was made), --plan-epoch O and --time-scale S, so mission time is O + (wall - O) x S
// in every process (MissionNow() computes the same) and the plan's "+X" is the instant O + X.
// Every wait is bounded and scaled by Slowdown() (Debug and AddressSanitizer builds are slower).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "support/process.h"

namespace ics::leases {

using clock::NodeNumber;
using nlohmann::json;
using test::Child;
using test::LineFollower;

const std::string& CoordinatorExe();
const std::string& AgentExe();
const std::string& DtnExe();
// ics-epochlog, when the build has it.
std::optional<std::string> EpochlogExe();

using test::Slowdown;
// `seconds` of wall time, scaled by Slowdown().
std::chrono::milliseconds Wall(double seconds);

// One JSON object per line; nullopt for a line that is not one.
std::optional<json> ParseLine(std::string_view line);
// Every JSON line of a file whose "event" is `event` (all JSON lines when `event` is empty).
std::vector<json> JsonLines(const std::filesystem::path& path, std::string_view event = {});

struct NetOptions {
  double time_scale = 1.0;
  bool emulate_light_time = false;
  std::string plan;  // ION contact plan text ("+SECONDS" relative to the origin)
};

enum class Kind { kCoordinator, kRelay, kAgent, kGuard };

class LeaseNet;

// One daemon. Its stdout goes to dir/logN, its stderr to dir/errN (appended across restarts);
// its data directory is dir/nN.
class Daemon {
 public:
  Daemon(LeaseNet& net, Kind kind, NodeNumber id, std::vector<std::string> extra);

  NodeNumber id() const { return id_; }
  Kind kind() const { return kind_; }
  std::string log_path() const;
  std::string err_path() const;
  std::string data_dir() const;
  std::string control() const;  // agents: ipc://dir/ctlN
  std::string app() const;      // relays and guards: ipc://dir/appN
  Child& child() { return child_; }

  // Spawns it and waits (bounded) until its node logs {"event":"start"}; REQUIRE-fails with its
  // stderr otherwise.
  void Start();
  // SIGKILL and reap.
  void Kill() { child_.Kill(); }
  // Its stdout's JSON lines with this "event" (all if empty), read afresh.
  std::vector<json> Lines(std::string_view event = {}) const { return JsonLines(log_path(), event); }

 private:
  LeaseNet& net_;
  Kind kind_;
  NodeNumber id_;
  std::vector<std::string> extra_;
  Child child_;
  std::size_t starts_ = 0;
};

// What a client verb answered.
struct ClientResult {
  test::ExitStatus status;
  json answer;         // its last JSON line (null if none)
  std::string output;  // stdout and stderr, for failure messages
};

// A client's exit status and output, for failure messages.
std::string Show(const ClientResult& r);
// j[key] as an integer (-1 if absent or not a number), as a string ("" if absent or not one).
std::int64_t Int(const json& j, const char* key);
std::string Str(const json& j, const char* key);

class LeaseNet {
 public:
  // `links`: the neighbour pairs (both directions get --neighbour); ports are picked for every
  // node named in them.
  LeaseNet(std::string_view name, NetOptions options, std::vector<std::pair<NodeNumber, NodeNumber>> links);
  ~LeaseNet();
  LeaseNet(const LeaseNet&) = delete;
  LeaseNet& operator=(const LeaseNet&) = delete;

  Daemon& AddCoordinator(NodeNumber id, std::vector<std::string> extra = {});
  Daemon& AddRelay(NodeNumber id, std::vector<std::string> extra = {});
  Daemon& AddAgent(NodeNumber id, NodeNumber coordinator, std::vector<std::string> extra = {});
  Daemon& AddGuard(NodeNumber id, std::vector<std::string> resources, std::vector<std::string> extra = {});
  Daemon& node(NodeNumber id);
  void StartAll();

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string plan_path() const { return (dir() / "plan").string(); }
  const NetOptions& options() const { return options_; }
  clock::DtnTime origin() const { return origin_; }
  int port(NodeNumber id) const { return ports_.at(id); }
  std::vector<NodeNumber> neighbours(NodeNumber id) const;
  // The mission time every daemon's clock shows now.
  clock::DtnTime MissionNow() const;

  // `ics-rover-agent VERB ARGS --via CONTROL(agent) --json`, waited for at most `timeout` (then
  // killed; status then shows the signal).
  ClientResult Client(NodeNumber agent, const std::string& verb, std::vector<std::string> args,
                      std::chrono::milliseconds timeout);
  // The same in the background: stdout to dir/NAME.out, stderr to dir/NAME.err.
  Child StartClient(NodeNumber agent, const std::string& verb, std::vector<std::string> args,
                    const std::string& name);
  // The answer of a background client once it has ended.
  ClientResult Finish(Child& client, const std::string& name, std::chrono::milliseconds timeout);

  // Keep the directory (logs, databases) if `failed` (or ICS_KEEP_LEASE_NET is set, to read the
  // daemons' logs of a passing run), and say where it is.
  void KeepOnFailure(bool failed);

 private:
  std::vector<std::string> LinkArgs(NodeNumber id, const std::string& data_dir) const;
  friend class Daemon;

  test::TempDir dir_;
  NetOptions options_;
  clock::DtnTime origin_;
  std::vector<std::pair<NodeNumber, NodeNumber>> links_;
  std::map<NodeNumber, int> ports_;
  std::map<NodeNumber, std::unique_ptr<Daemon>> nodes_;
  int clients_ = 0;
};

// ---- the coordinator's epoch log (DATA/epochlog.db, read-only) ----

struct LogEvent {
  std::int64_t seq = 0;
  std::int64_t at_ms = 0;
  std::int64_t epoch = 0;
  std::string kind;
  std::string resource;  // "tenant/resource", "" for epoch_start
  std::int64_t rover = 0;
  std::int64_t token = 0;
  std::optional<std::int64_t> expires_ms;
  std::optional<std::int64_t> regrant_at_ms;
  std::string reason;
};
// Every event, in seq order. REQUIRE-fails naming the file on error.
std::vector<LogEvent> ReadEpochLog(const std::filesystem::path& db);
// The epochs table (the authority for which epochs exist), ascending.
std::vector<std::int64_t> ReadEpochs(const std::filesystem::path& db);

}  // namespace ics::leases
