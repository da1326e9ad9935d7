// The rover agent daemon: a bundle node (the same link flags as `ics-dtn node`), the agent's
// SQLite store (DATA/agent.db), the sans-I/O AgentCore, and a control socket (ZeroMQ ROUTER on
// --control, JSON requests) for on-board software and the client verbs.
//
// Ordering: in the node's before-commit hook the core's records are applied to the agent store
// (atomically, fsynced), then its messages are handed to the bundle node (expedited, to the
// coordinator's lease service) and its notifications to control clients; the node commits its
// store before transmitting. So a reboot never forgets a grant it has acted on.
//
// Control protocol (one JSON object per request, one per reply):
//   {"verb":"acquire","resource":"T/R","for_ms":N,"wait":bool,"deadline_ms":N|null}
//       wait=false: answered once the request is sent (outcome "requested") or refused;
//       wait=true:  answered when granted, or denied, or the wait deadline passes ("gave-up").
//   {"verb":"release","resource":"T/R"}   answered "released" (or "refused": not held)
//   {"verb":"status"}                     the agent's leases in its own conservative view
//   {"verb":"use","resource":"T/R","guard":"ipn:G","operation":TEXT}
//       presents the lease's fencing token to the guard ipn:G.65, only while the lease is valid in
//       the agent's own view (else "refused": "not held in the agent's view"); answered when the
//       guard's reply arrives ("use-accepted" / "use-rejected", with the guard's reason).
// Replies: {"outcome", "resource", "token", "epoch", "valid_until", "valid_until_dtn_ms",
// "queue_position", "reason"}.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "coordinator/plan_policy.h"
#include "coordinator/protocol.h"
#include "coordinator/services.h"
#include "daemon_start.h"
#include "dtn/zmq/daemon_cli.h"
#include "dtn/zmq/node_daemon.h"
#include "rover_agent/agent_core.h"
#include "rover_agent/agent_store.h"

namespace ics::rover_agent::app {
namespace {

using nlohmann::json;
constexpr auto kReplace = json::error_handler_t::replace;
constexpr std::size_t kMaxControlBytes = 4096;
constexpr std::size_t kMaxUsesAwaiting = 1024;  // uses sent and not yet answered by their guard

json NotificationJson(const Notification& n) {
  json j{{"outcome", OutcomeName(n.outcome)}, {"resource", n.resource.ToString()}, {"token", n.token},
         {"epoch", n.epoch}};
  if (n.valid_until) {
    j["valid_until"] = n.valid_until->ToIso8601();
    j["valid_until_dtn_ms"] = n.valid_until->millis();
  }
  if (n.queue_position) j["queue_position"] = n.queue_position;
  if (!n.reason.empty()) j["reason"] = n.reason;
  return j;
}

struct Waiting {
  std::string client;
  bool wait = false;
};

class AgentDaemon {
 public:
  AgentDaemon(dtn::zmq::NodeDaemon& node, std::unique_ptr<AgentStore> store, AgentConfig config,
              AgentSnapshot snapshot, const std::string& control)
      : node_(node),
        store_(std::move(store)),
        core_(config, std::move(snapshot), node.Now()),
        service_(dtn::Eid::Ipn(config.self, coordinator::kLeaseService)),
        coordinator_(config.coordinator),
        policy_(config.policy),
        control_(node.context(), ::zmq::socket_type::router) {
    control_.set(::zmq::sockopt::linger, 0);
    control_.set(::zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(kMaxControlBytes));
    control_.bind(control);
  }

  void Attach() {
    node_.RegisterLocal(service_, [this](const dtn::Deliver& d) { OnDeliver(d); });
    node_.AddSocket(control_, [this] { OnControl(); });
    node_.AddTimer([this] { return core_.NextDeadline(); }, [this](clock::DtnTime now) { core_.Tick(now); });
    node_.AddBeforeCommit([this] { Flush(); });
  }
  bool failed() const { return failed_; }

 private:
  void OnDeliver(const dtn::Deliver& d) {
    to_confirm_.push_back(d.id);
    auto message = coordinator::Decode(d.payload);
    if (!message) {
      fmt::print("{}\n", json{{"ts", node_.Now().ToIso8601()}, {"event", "lease-refused"},
                              {"from", d.source.ToString()}, {"reason", message.error().message}}
                             .dump(-1, ' ', false, kReplace));
      return;
    }
    if (d.source.scheme() != dtn::Eid::Scheme::kIpn) return;
    core_.OnMessage(*message, d.source.node(), node_.Now(), d.created.time);
  }

  void OnControl() {
    for (int i = 0; i < 256; ++i) {
      ::zmq::message_t id, body;
      if (!control_.recv(id, ::zmq::recv_flags::dontwait)) return;
      if (!id.more() || !control_.recv(body, ::zmq::recv_flags::dontwait)) continue;
      while (body.more()) {  // drain extra parts
        ::zmq::message_t rest;
        if (!control_.recv(rest, ::zmq::recv_flags::dontwait)) break;
        body = std::move(rest);
      }
      Handle(id.to_string(), json::parse(body.to_string_view(), nullptr, false));
    }
  }

  void Reply(const std::string& client, const json& j) {
    const std::string text = j.dump(-1, ' ', false, kReplace);
    try {
      control_.send(::zmq::buffer(client), ::zmq::send_flags::sndmore | ::zmq::send_flags::dontwait);
      control_.send(::zmq::buffer(text), ::zmq::send_flags::dontwait);
    } catch (const ::zmq::error_t&) {
    }
  }

  void Handle(const std::string& client, const json& request) {
    const clock::DtnTime now = node_.Now();
    auto refuse = [&](const std::string& why) { Reply(client, json{{"outcome", "refused"}, {"reason", why}}); };
    if (!request.is_object() || !request.contains("verb") || !request["verb"].is_string()) {
      return refuse("a request is a JSON object with a \"verb\"");
    }
    const std::string verb = request["verb"];
    if (verb == "status") {
      const AgentStatus status = core_.Status(now);
      json leases = json::array();
      for (const auto& l : status.leases) {
        json j{{"resource", l.resource.ToString()}, {"state", l.state == LeaseState::kHeld ? "held" : "pending"},
               {"request_id", l.request_id}, {"token", l.token}, {"epoch", l.epoch},
               {"remaining_ms", l.remaining.count()}, {"queue_position", l.queue_position}};
        if (l.valid_until) j["valid_until"] = l.valid_until->ToIso8601();
        if (l.state != LeaseState::kHeld) j["deadline"] = l.deadline.ToIso8601();
        leases.push_back(std::move(j));
      }
      Reply(client, json{{"outcome", "status"}, {"now", now.ToIso8601()}, {"epoch", status.epoch}, {"leases", leases},
                         {"retransmissions", status.counters.retransmissions},
                         {"queued_retransmissions", status.counters.queued_retransmissions},
                         {"lapsed", status.counters.lapsed}});
      return;
    }
    if (!request.contains("resource") || !request["resource"].is_string()) return refuse("missing \"resource\"");
    auto resource = coordinator::ParseResourceName(request["resource"].get<std::string>());
    if (!resource) return refuse(resource.error());
    if (verb == "acquire") {
      if (!request.contains("for_ms") || !request["for_ms"].is_number_integer() || request["for_ms"].get<std::int64_t>() <= 0) {
        return refuse("\"for_ms\" must be a positive integer");
      }
      const bool wait = request.value("wait", false);
      // The default wait: long enough for several worst round trips, and at least ten minutes.
      clock::Duration deadline_in = std::max<clock::Duration>(std::chrono::minutes(10), 3 * policy_.RequestTimeout().value);
      if (auto it = request.find("deadline_ms"); it != request.end() && it->is_number_integer()) {
        deadline_in = clock::Duration(it->get<std::int64_t>());
      }
      waiting_[*resource].push_back({client, wait});
      core_.Acquire(AcquireRequest{*resource, clock::Duration(request["for_ms"].get<std::int64_t>()), now + deadline_in},
                    now);
    } else if (verb == "release") {
      waiting_[*resource].push_back({client, true});
      core_.Release(*resource, now);
    } else if (verb == "use") {
      HandleUse(client, request, *resource, now);
    } else {
      refuse(fmt::format("unknown verb '{}'", verb));
    }
  }

  // A use is presented only while the agent's own view says the lease is valid: after that the
  // holder must stop, whatever the network or the guard would say.
  void HandleUse(const std::string& client, const json& request, const coordinator::ResourceName& resource,
                 clock::DtnTime now) {
    auto refuse = [&](const std::string& why) {
      Reply(client, json{{"outcome", "refused"}, {"resource", resource.ToString()}, {"reason", why}});
    };
    if (!request.contains("guard") || !request["guard"].is_string()) {
      return refuse("missing \"guard\" (ipn:G)");
    }
    auto guard = dtn::zmq::ParseNodeId(request["guard"].get<std::string>());
    if (!guard) return refuse("\"guard\": " + guard.error());
    std::string operation;
    if (auto it = request.find("operation"); it != request.end()) {
      if (!it->is_string()) return refuse("\"operation\" must be a string");
      operation = it->get<std::string>();
    }
    if (operation.size() > coordinator::kMaxReasonBytes) {
      return refuse(fmt::format("\"operation\" is longer than {} bytes", coordinator::kMaxReasonBytes));
    }
    if (uses_awaiting_ >= kMaxUsesAwaiting) {
      return refuse(fmt::format("{} uses already await their guard's answer", kMaxUsesAwaiting));
    }
    auto use = core_.MakeUse(resource, std::move(operation), now);
    if (!use) return refuse("not held in the agent's view");
    use_waiting_[{resource, use->token}].push_back(client);
    ++uses_awaiting_;
    uses_to_send_.emplace_back(*guard, std::move(*use));
  }

  void SendUses() {
    for (auto& [guard, use] : uses_to_send_) {
      if (auto sent = SendExpedited(node_, service_, dtn::Eid::Ipn(guard, coordinator::kGuardService),
                                    MessageLifetime(), coordinator::Message(use));
          !sent) {
        Notification n;
        n.outcome = Outcome::kRefused;
        n.resource = use.h.resource;
        n.token = use.token;
        n.reason = sent.error();
        AnswerUse(n);
      }
    }
    uses_to_send_.clear();
  }

  // The core's figure: its unanswered back-off is bounded by it.
  clock::Duration MessageLifetime() const { return core_.MessageLifetime(); }

  // The oldest client awaiting a guard's answer for (resource, token) gets it.
  void AnswerUse(const Notification& n) {
    auto it = use_waiting_.find({n.resource, n.token});
    if (it == use_waiting_.end()) return;
    json j = NotificationJson(n);
    Reply(it->second.front(), j);
    it->second.erase(it->second.begin());
    --uses_awaiting_;
    if (it->second.empty()) use_waiting_.erase(it);
  }

  // Persist, then send, then notify (the core's output contract).
  void Flush() {
    SendUses();
    AgentOutput out = core_.TakeOutput();
    if (!out.to_persist.empty()) {
      if (auto ok = store_->Apply(out.to_persist); !ok) {
        Fail("ics-rover-agent", kExitFailure, "agent store failed: " + ok.error());
        failed_ = true;
        node_.Stop();
        return;
      }
    }
    for (const auto& o : out.to_send) {
      const bool to_guard = std::holds_alternative<coordinator::Use>(o.message);
      const dtn::Eid destination =
          dtn::Eid::Ipn(o.destination, to_guard ? coordinator::kGuardService : coordinator::kLeaseService);
      if (auto sent = SendExpedited(node_, service_, destination, MessageLifetime(), o.message); !sent) {
        Fail("ics-rover-agent", kExitFailure, sent.error());
      }
    }
    for (const auto& n : out.notifications) {
      fmt::print("{}\n", json{{"ts", node_.Now().ToIso8601()}, {"event", "lease"}, {"notification", NotificationJson(n)}}
                             .dump(-1, ' ', false, kReplace));
      Notify(n);
    }
    for (const auto& id : to_confirm_) node_.Confirm(service_, id);
    to_confirm_.clear();
  }

  void Notify(const Notification& n) {
    if (n.outcome == Outcome::kUseAccepted || n.outcome == Outcome::kUseRejected) return AnswerUse(n);
    auto it = waiting_.find(n.resource);
    if (it == waiting_.end()) return;
    const bool final_outcome = n.outcome == Outcome::kGranted || n.outcome == Outcome::kDenied ||
                               n.outcome == Outcome::kGaveUp || n.outcome == Outcome::kRefused ||
                               n.outcome == Outcome::kReleased || n.outcome == Outcome::kLapsed;
    auto& list = it->second;
    for (auto w = list.begin(); w != list.end();) {
      const bool answer = final_outcome || (!w->wait && (n.outcome == Outcome::kRequested || n.outcome == Outcome::kQueued));
      if (answer) {
        Reply(w->client, NotificationJson(n));
        w = list.erase(w);
      } else {
        ++w;
      }
    }
    if (list.empty()) waiting_.erase(it);
  }

  dtn::zmq::NodeDaemon& node_;
  std::unique_ptr<AgentStore> store_;
  AgentCore core_;
  dtn::Eid service_;
  NodeNumber coordinator_;
  clock::TimeoutPolicy policy_;
  ::zmq::socket_t control_;
  std::map<coordinator::ResourceName, std::vector<Waiting>> waiting_;
  std::vector<dtn::BundleId> to_confirm_;
  // Clients awaiting a guard's answer, by (resource, token), oldest first.
  std::map<std::pair<coordinator::ResourceName, coordinator::FencingToken>, std::vector<std::string>>
      use_waiting_;
  std::size_t uses_awaiting_ = 0;
  std::vector<std::pair<NodeNumber, coordinator::Use>> uses_to_send_;  // (guard node, use), sent in Flush
  bool failed_ = false;
};

}  // namespace

int RunDaemon(int argc, char** argv) {
  CLI::App cli("ics-rover-agent run: the rover agent daemon (embeds a bundle node)", "ics-rover-agent run");
  DaemonCommandLine command_line(cli, "ics-rover-agent run");
  std::string coordinator_id, control, lease_term_text;
  double drift_ppm = 10, coordinator_drift_ppm = 10, processing_s = 2;
  cli.add_option("--coordinator", coordinator_id, "the coordinator's node, ipn:C")->required();
  cli.add_option("--control", control, "control endpoint for on-board software (ipc://PATH)")->required();
  cli.add_option("--lease-term", lease_term_text,
                 "term asked for each lease and renewal (default: 4 x the worst round trip, at least 1 min)");
  cli.add_option("--drift-ppm", drift_ppm, "this rover's clock drift bound (ppm)");
  cli.add_option("--coordinator-drift-ppm", coordinator_drift_ppm, "the coordinator's clock drift bound (ppm)");
  cli.add_option("--processing", processing_s, "processing margin per round trip, seconds");
  auto options = command_line.Parse(argc, argv);
  if (!options) return options.error();
  auto coordinator = dtn::zmq::ParseNodeId(coordinator_id);
  if (!coordinator) return Fail(command_line.command(), kExitUsage, "--coordinator: " + coordinator.error());
  auto node = OpenNode(command_line, std::move(*options), "ics-rover-agent");
  if (!node) return node.error();
  auto store = OpenStore<AgentStore>(command_line, **node, "agent.db",
                                     [](const std::string& path) { return OpenSqliteAgentStore(path); });
  if (!store) return store.error();
  coordinator::PlanPolicyConfig pc;
  pc.self = (*node)->options().node;
  pc.self_clock.drift_ppm = drift_ppm;
  pc.peer_clock.drift_ppm = coordinator_drift_ppm;
  pc.processing_margin = clock::Duration(static_cast<std::int64_t>(processing_s * 1000));
  coordinator::PlanPolicy plan_policy((*node)->plan(), pc);
  AgentConfig config{.self = (*node)->options().node,
                     .coordinator = *coordinator,
                     .policy = plan_policy.For(*coordinator, (*node)->Now(), /*self_is_requester=*/true),
                     .lease_term = clock::Duration(0),
                     .max_leases = 256,
                     .max_releasing = 1024,
                     .request_id_block = 64};
  if (!plan_policy.last_error().empty()) {
    // Every bound would assume the year-long wait PlanPolicy uses for "no route": the default
    // term would be years long, and any shorter term is refused below. Say what is wrong instead.
    return Fail(command_line.command(), kExitUsage,
                fmt::format("--plan: no route from ipn:{} to the coordinator ipn:{} over the next {} from {}: "
                            "{}; the plan must cover at least that far ahead",
                            config.self, config.coordinator, clock::FormatDuration(pc.horizon),
                            (*node)->Now().ToIso8601(), plan_policy.last_error()));
  }
  if (!lease_term_text.empty()) {
    auto term = clock::ParseDuration(lease_term_text);
    if (!term) return Fail(command_line.command(), kExitUsage, "--lease-term: " + term.error());
    config.lease_term = *term;
  } else {
    const auto round_trip = config.policy.RoundTripMax().value;
    config.lease_term = std::max<clock::Duration>(std::chrono::minutes(1), 4 * round_trip);
    config.lease_term = std::chrono::ceil<std::chrono::seconds>(config.lease_term);
  }
  if (auto term = config.policy.LeaseTerm(config.lease_term); !term) {
    return Fail(command_line.command(), kExitUsage,
                fmt::format("lease term {} is not usable on the path to the coordinator: {}",
                            clock::FormatDuration(config.lease_term), term.error().why));
  }
  try {
    AgentDaemon agent(**node, std::move(store->store), config, std::move(store->loaded), control);
    agent.Attach();
    fmt::print("{}\n", json{{"ts", (*node)->Now().ToIso8601()}, {"event", "agent-start"}, {"node", config.self},
                            {"coordinator", config.coordinator}, {"lease_term_ms", config.lease_term.count()},
                            {"policy", config.policy.Describe(config.lease_term)}}
                           .dump(-1, ' ', false, kReplace));
    const int status = (*node)->Run();
    return agent.failed() ? 1 : status;
  } catch (const ::zmq::error_t& e) {
    return Fail(command_line.command(), kExitFailure, fmt::format("--control {}: {}", control, e.what()));
  }
}

}  // namespace ics::rover_agent::app
