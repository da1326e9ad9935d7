// The node daemon: a Node core, its SQLite bundle store, ZeroMQ links to the neighbours and the
// local application interface, driven by one loop. `ics-dtn node` runs it as a relay; the
// coordinator and rover agent daemons embed it and attach their cores as in-process endpoints.
//
// One turn of the loop:
//   1. poll the link, application and embedder sockets and the signal fd, with a timeout at the
//      earliest of: the node's deadline, an embedder timer, a held (in-light-time) frame, the next
//      heartbeat, the next contact-plan boundary;
//   2. feed everything that arrived to the Node (and embedder callbacks);
//   3. open or close each neighbour's contact: open iff the plan has a contact self -> neighbour
//      now AND the neighbour answers heartbeats;
//   4. tick the node, take its output, COMMIT THE STORE (one group commit for the whole turn), and
//      only then perform the output: transmissions, acknowledgements (one acks frame per
//      neighbour for the turn), deliveries (the node's "persist before send" contract), and log
//      the lifecycle events as JSON lines on stdout.
//
// Light-time rehearsal (`emulate_light_time`): every received bundle, ack or acks frame is held until
// the sender's send time + the plan's OWLT at that time before the node sees it, and contact
// windows gate transmission, all in the (scaled) mission time of the daemon's clock. Processes
// that share --time-origin and --time-scale agree on mission time.
//
// Signals: SIGTERM/SIGINT stop the loop after the current turn (everything stored stays stored,
// in-flight bundles are retransmitted after a restart); SIGUSR1 prints the counters as a JSON
// line on stderr. Not thread-safe: Run() owns everything.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "clock/clock.h"
#include "dtn/bundle_store.h"
#include "dtn/contact_plan.h"
#include "dtn/node.h"
#include "dtn/zmq/link_set.h"

namespace ics::dtn::zmq {

struct DaemonOptions {
  NodeNumber node = 0;
  std::string data_dir;      // holds bundles.db
  std::string plan_path;     // ION-style contact plan
  std::string listen;
  std::map<NodeNumber, std::string> neighbours;
  std::string app_endpoint;  // empty: no local application interface
  double time_scale = 1.0;
  std::optional<clock::DtnTime> time_origin;  // wall instant shared by cooperating processes
  std::optional<clock::DtnTime> plan_epoch;   // "+0" of the plan; default: the time origin
  bool emulate_light_time = false;
  StoreLimits limits;
  std::size_t max_bundle_bytes = 16u << 20;
  // Bundles in flight (sent, not yet acknowledged) per neighbour: NodeConfig::window_per_neighbour.
  // Throughput per link is at most window / round trip (light time both ways plus a store commit
  // at each end), so a long light time or a fast link needs a larger window. 1,024 covers
  // 30,000 bundles/s over a loopback round trip of up to ~30 ms (two fsyncs on a busy disk); it
  // is also how far an expedited bundle can queue behind bundles already handed to the link.
  std::size_t window_per_neighbour = 1024;
  // And at most this many bytes in flight per neighbour (NodeConfig::window_bytes_per_neighbour):
  // 1,024 bundles of 16 MiB would otherwise be 16 GiB queued in memory for one link.
  std::uint64_t window_bytes_per_neighbour = 64ull << 20;
  bool log_events = true;
  std::string name = "ics-dtn";  // for log lines
};

// An in-process application endpoint's handler: it must call NodeDaemon::Confirm once it has
// processed (and, if needed, persisted) the ADU.
using LocalDelivery = std::function<void(const Deliver&)>;

class NodeDaemon {
 public:
  // Opens the store (creating the data directory), parses the plan, binds the sockets.
  // Errors are one line naming what failed.
  static std::expected<std::unique_ptr<NodeDaemon>, std::string> Open(DaemonOptions options);
  ~NodeDaemon();

  // ---- for embedders (coordinator, rover agent daemons) ----
  void RegisterLocal(const Eid& endpoint, LocalDelivery handler);
  std::expected<BundleId, SendError> Send(const SendRequest& request);
  void Confirm(const Eid& endpoint, const BundleId& id);
  // A socket the embedder owns; `on_readable` runs in the loop when it has input.
  void AddSocket(::zmq::socket_t& socket, std::function<void()> on_readable);
  // A timer: `next` is asked every turn; `fire(now)` runs when that instant has come.
  void AddTimer(std::function<std::optional<clock::DtnTime>()> next, std::function<void(clock::DtnTime)> fire);
  // Runs before the store commit of every turn, so an embedder can stage its own durable writes
  // in the same turn (its messages then go out after both are committed).
  void AddBeforeCommit(std::function<void()> hook);

  ::zmq::context_t& context() { return context_; }
  const clock::Clock& clock() const { return *clock_; }
  clock::DtnTime Now() const { return clock_->Now(); }
  const ContactPlan& plan() const { return plan_; }
  const Node& node() const { return *node_; }
  const DaemonOptions& options() const { return options_; }

  // Runs until SIGTERM/SIGINT or Stop(). Returns the process exit status: 0 after a clean stop;
  // 1 (with the reason on stderr) when the store failed: a write the node reported, a turn's
  // commit (that turn's output is never performed), or the final commit.
  int Run();
  void Stop() { stop_ = true; }

 private:
  struct Held {  // a frame travelling its light time
    clock::DtnTime due;
    std::uint64_t order = 0;
    LinkEvent event;
  };
  struct AppClient;
  struct Endpoint;
  // A `stored` reply, sent after the turn's commit: binary (tag, id) or a JSON header.
  struct StoredReply {
    std::string client;
    bool binary = false;
    std::uint64_t tag = 0;
    BundleId id;
    std::string json_header;
  };

  explicit NodeDaemon(DaemonOptions options);
  std::expected<void, std::string> Init();
  void Turn();
  void HandleLinkEvent(LinkEvent event, clock::DtnTime now);
  void ApplyLinkEvent(const LinkEvent& event, clock::DtnTime now);
  void UpdateContacts(clock::DtnTime now);
  void HandleApp();
  void HandleAppMessage(const std::string& client, std::string_view verb, std::string_view header,
                        std::span<const std::uint8_t> payload);
  void HandleBinaryAppMessage(const std::string& client, std::string_view verb, std::string_view header,
                              std::span<const std::uint8_t> payload);
  // Counts, answers (JSON {"error": why[, "tag": tag_json]}) and logs a refused app request.
  void AppReject(const std::string& client, std::string_view reply, std::string_view verb, const std::string& why,
                 std::string_view tag_json = {});
  std::expected<void, std::string> CheckOwnEndpoint(const Eid& eid) const;
  void ReplyApp(const std::string& client, std::string_view verb, std::string_view header,
                std::span<const std::uint8_t> payload = {});
  void PumpDeliveries(const Eid& endpoint);
  void Perform(NodeOutput output, clock::DtnTime now);
  void LogEvent(const BundleEvent& event);
  std::string CountersJson() const;
  std::optional<clock::DtnTime> NextWake(clock::DtnTime now) const;
  void HandleSignals();

  DaemonOptions options_;
  ::zmq::context_t context_;
  std::unique_ptr<clock::Clock> clock_;
  const clock::ScaledClock* scaled_ = nullptr;
  ContactPlan plan_;
  std::unique_ptr<BundleStore> store_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<LinkSet> links_;
  std::unique_ptr<::zmq::socket_t> app_;
  int signal_fd_ = -1;
  bool stop_ = false;

  std::multimap<std::pair<std::int64_t, std::uint64_t>, LinkEvent> held_;  // (due ms, order)
  std::uint64_t held_order_ = 0;
  std::map<NodeNumber, bool> contact_;  // neighbour -> open as told to the node
  std::map<Eid, LocalDelivery> local_;
  std::map<Eid, std::unique_ptr<Endpoint>> app_endpoints_;
  std::vector<StoredReply> stored_replies_;  // sent after the turn's commit
  std::string reply_scratch_;                 // a reply header being built (reused)
  std::vector<::zmq::pollitem_t> poll_items_;  // Turn's, reused
  std::vector<LinkEvent> link_events_;         // Turn's, reused
  bool commit_failed_ = false;                 // a turn's commit failed: Run returns 1
  std::vector<std::pair<::zmq::socket_t*, std::function<void()>>> sockets_;
  std::vector<std::pair<std::function<std::optional<clock::DtnTime>()>, std::function<void(clock::DtnTime)>>> timers_;
  std::vector<std::function<void()>> before_commit_;
  std::uint64_t held_dropped_ = 0;
  std::uint64_t app_errors_ = 0;
  bool work_pending_ = false;  // a local handler may have produced work: poll without waiting
};

// Parses "ipn:M=tcp://host:port" (a --neighbour value).
std::expected<std::pair<NodeNumber, std::string>, std::string> ParseNeighbour(std::string_view text);

}  // namespace ics::dtn::zmq
