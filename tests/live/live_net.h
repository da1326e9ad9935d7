// Helpers for the live-network tests: real `ics-dtn node` daemons on 127.0.0.1 in a temp dir, a
// contact plan shared by all of them, `ics-dtn send` / `ics-dtn recv` runs, and readers for the
// JSON lines the daemons and `recv --json` print.
//
// Mission time. Every node of a LiveNet gets the same --time-origin O (the test's wall clock when
// the net was made, to the millisecond), --plan-epoch O and --time-scale S, so mission time is
// O + (wall - O) x S in every process and the plan's "+X" is the wall instant O + X / S.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "support/process.h"

namespace ics::live {

using nlohmann::json;
using test::Child;
using test::LineFollower;
using test::TempDir;

// The ics-dtn executable under test (ICS_DTN_EXE, set by the build).
const std::string& DtnExe();

using test::Slowdown;

struct LiveNetOptions {
  double time_scale = 1.0;
  bool emulate_light_time = false;
  bool quiet = false;
  std::string plan;  // the contact plan text (ION lines, "+SECONDS" relative to the origin)
};

class LiveNet;

// One `ics-dtn node` daemon. Its stdout (JSON lifecycle lines) goes to dir/logN, its stderr
// (counters on SIGUSR1, errors) to dir/errN; both files are appended to across restarts.
class LiveNode {
 public:
  LiveNode(LiveNet& net, clock::NodeNumber id, int port, std::vector<clock::NodeNumber> neighbours);

  clock::NodeNumber id() const { return id_; }
  std::string listen() const;
  std::string app() const;  // ipc://dir/aN
  std::string log_path() const;
  std::string err_path() const;
  Child& child() { return child_; }
  LineFollower& log() { return log_; }

  // Spawns the daemon and waits (bounded) until it logs {"event":"start"} (or, with --quiet,
  // until its application socket exists). REQUIRE-fails with its stderr on error.
  void Start();
  // SIGKILL and reap.
  void Kill() { child_.Kill(); }
  // SIGUSR1; waits for the counters line on stderr and returns it parsed.
  json Counters();

 private:
  LiveNet& net_;
  clock::NodeNumber id_;
  int port_;
  std::vector<clock::NodeNumber> neighbours_;
  Child child_;
  LineFollower log_;
  LineFollower err_;
  std::size_t starts_ = 0;
};

class LiveNet {
 public:
  // Picks one free port per node; `links` lists neighbour pairs (both directions are configured).
  LiveNet(std::string_view name, LiveNetOptions options, std::vector<clock::NodeNumber> nodes,
          std::vector<std::pair<clock::NodeNumber, clock::NodeNumber>> links);
  ~LiveNet();

  TempDir& dir() { return dir_; }
  LiveNode& node(clock::NodeNumber id) { return *nodes_.at(id); }
  const LiveNetOptions& options() const { return options_; }
  clock::DtnTime origin() const { return origin_; }
  std::string plan_path() const { return dir_ / "plan"; }
  int port(clock::NodeNumber id) const { return ports_.at(id); }
  // The plan's "+seconds" as a mission time.
  clock::DtnTime PlanTime(double seconds) const;
  // The mission time now (as the daemons compute it, to within a millisecond of wall time).
  clock::DtnTime MissionNow() const;
  // The wall-clock instant (steady clock) at which mission time reaches `t`.
  std::chrono::steady_clock::time_point WallAt(clock::DtnTime t) const;

  void StartAll();
  // Waits until every pair in `links` has logged link-up on both sides (heartbeats answered).
  void WaitLinksUp(std::chrono::milliseconds timeout);

  // Starts `ics-dtn send` (output to dir/send-<tag>) / `ics-dtn recv --json` (stdout to
  // dir/recv-<tag>, stderr to dir/recv-<tag>.err).
  Child Send(clock::NodeNumber via, const std::string& to, const std::vector<std::string>& extra,
             const std::string& tag);
  Child Recv(clock::NodeNumber via, const std::string& endpoint, std::uint64_t count, double timeout_s,
             const std::string& tag);
  // Keeps the temp dir (for the logs) if the test failed.
  void KeepOnFailure(bool failed) {
    if (failed) dir_.Keep();
  }

 private:
  friend class LiveNode;
  TempDir dir_;
  LiveNetOptions options_;
  clock::DtnTime origin_;
  std::chrono::steady_clock::time_point origin_steady_;
  std::map<clock::NodeNumber, int> ports_;
  std::map<clock::NodeNumber, std::unique_ptr<LiveNode>> nodes_;
  std::vector<std::pair<clock::NodeNumber, clock::NodeNumber>> links_;
};

// A node's JSON lifecycle line, or nullopt if the line is not JSON (e.g. a stray message).
std::optional<json> ParseLine(std::string_view line);
// Mission milliseconds of an event's "ts".
std::int64_t TsMillis(const json& event);

// One line of `ics-dtn recv --json`: the ADU's generator sequence (first 8 payload bytes,
// big-endian), priority, size, bundle id.
struct Received {
  std::uint64_t sequence = 0;
  std::string priority;
  std::size_t size = 0;
  std::string id;
};
std::vector<Received> ReadReceived(const std::string& path);

}  // namespace ics::live
