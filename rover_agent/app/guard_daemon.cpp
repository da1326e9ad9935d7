// The resource guard daemon (`ics-rover-agent guard`): a bundle node (the same link flags as
// `ics-dtn node`), the guard's SQLite store (DATA/guard.db) and the sans-I/O GuardCore fronting
// the --resource names, registered on ipn:G.65 (coordinator::kGuardService).
//
// Ordering, the guard's contract: every Use delivered in a turn goes to the core; in the node's
// before-commit hook the new highest tokens are applied to the guard store (one transaction,
// fsynced) and only then are the decisions logged, the UseAccepted / UseRejected replies handed
// to the bundle node (expedited, to the sender's lease service ipn:R.64, which the agent daemon
// registers) and the deliveries confirmed. So after a crash the guard can never accept a token
// lower than one it has already let through, and a Use whose decision was lost is redelivered.
//
// Output: one JSON line per decision on stdout,
//   {"ts","event":"use","resource","rover","token","accepted":bool,"highest":N,"operation"[,"reason"]}
// where "highest" is the highest token the guard had seen for the resource after the decision.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "coordinator/protocol.h"
#include "coordinator/services.h"
#include "daemon_start.h"
#include "dtn/zmq/daemon_cli.h"
#include "dtn/zmq/node_daemon.h"
#include "rover_agent/guard_core.h"
#include "rover_agent/guard_store.h"

namespace ics::rover_agent::app {
namespace {

using nlohmann::json;
constexpr auto kReplace = json::error_handler_t::replace;

class GuardDaemon {
 public:
  GuardDaemon(dtn::zmq::NodeDaemon& node, std::unique_ptr<GuardStore> store, GuardConfig config,
              const std::map<ResourceName, FencingToken>& highest, clock::Duration reply_lifetime)
      : node_(node),
        store_(std::move(store)),
        core_(std::move(config), highest),
        service_(dtn::Eid::Ipn(node.options().node, coordinator::kGuardService)),
        reply_lifetime_(reply_lifetime) {}

  void Attach() {
    node_.RegisterLocal(service_, [this](const dtn::Deliver& d) { OnDeliver(d); });
    node_.AddBeforeCommit([this] { Flush(); });
  }
  bool failed() const { return failed_; }

 private:
  void OnDeliver(const dtn::Deliver& d) {
    const clock::DtnTime now = node_.Now();
    to_confirm_.push_back(d.id);
    auto message = coordinator::Decode(d.payload);
    if (!message) {
      lines_.push_back(json{{"ts", now.ToIso8601()},
                            {"event", "guard-refused"},
                            {"from", d.source.ToString()},
                            {"reason", message.error().message}});
      return;
    }
    if (d.source.scheme() != dtn::Eid::Scheme::kIpn) {
      lines_.push_back(
          json{{"ts", now.ToIso8601()},
               {"event", "guard-refused"},
               {"from", d.source.ToString()},
               {"reason", "a use must come from an ipn: endpoint (the reply goes to its node)"}});
      return;
    }
    const auto* use = std::get_if<coordinator::Use>(&*message);
    if (use == nullptr) {
      core_.OnMessage(*message, d.source.node(), now);  // counted as dropped
      lines_.push_back(
          json{{"ts", now.ToIso8601()},
               {"event", "guard-refused"},
               {"from", d.source.ToString()},
               {"reason", fmt::format("a {} is not for a guard", coordinator::MessageName(*message))}});
      return;
    }
    core_.OnUse(*use, d.source.node(), now);
    // Take the decision now, while Highest() still describes it; it is acted upon in Flush().
    GuardOutput out = core_.TakeOutput();
    bool accepted = false;
    std::string reason;
    for (const auto& o : out.to_send) {
      if (std::holds_alternative<coordinator::UseAccepted>(o.message)) accepted = true;
      if (const auto* r = std::get_if<coordinator::UseRejected>(&o.message)) reason = r->detail;
    }
    json line{{"ts", now.ToIso8601()},
              {"event", "use"},
              {"resource", use->h.resource.ToString()},
              {"rover", d.source.node()},
              {"token", use->token},
              {"accepted", accepted},
              {"highest", core_.Highest(use->h.resource)},
              {"operation", use->operation}};
    if (!accepted) line["reason"] = reason;
    lines_.push_back(std::move(line));
    for (auto& r : out.to_persist) pending_.to_persist.push_back(std::move(r));
    for (auto& s : out.to_send) pending_.to_send.push_back(std::move(s));
  }

  // Persist, then log and reply, then confirm (the core's output contract).
  void Flush() {
    if (!pending_.to_persist.empty()) {
      if (auto ok = store_->Apply(pending_.to_persist); !ok) {
        // Nothing decided in this turn may leave: stop; the unconfirmed Uses are redelivered.
        Fail("ics-rover-agent guard", kExitFailure, "guard store failed: " + ok.error());
        failed_ = true;
        node_.Stop();
        return;
      }
    }
    for (const auto& line : lines_) fmt::print("{}\n", line.dump(-1, ' ', false, kReplace));
    if (!lines_.empty()) std::fflush(stdout);
    for (const auto& o : pending_.to_send) {
      if (auto sent = SendExpedited(node_, service_, dtn::Eid::Ipn(o.destination, coordinator::kLeaseService),
                                    reply_lifetime_, o.message);
          !sent) {
        Fail("ics-rover-agent guard", kExitFailure, sent.error());
      }
    }
    for (const auto& id : to_confirm_) node_.Confirm(service_, id);
    to_confirm_.clear();
    lines_.clear();
    pending_ = GuardOutput{};
  }

  dtn::zmq::NodeDaemon& node_;
  std::unique_ptr<GuardStore> store_;
  GuardCore core_;
  dtn::Eid service_;
  clock::Duration reply_lifetime_;
  GuardOutput pending_;      // this turn's records and replies, not yet durable
  std::vector<json> lines_;  // this turn's decision lines, logged once durable
  std::vector<dtn::BundleId> to_confirm_;
  bool failed_ = false;
};

}  // namespace

int RunGuard(int argc, char** argv) {
  CLI::App cli("ics-rover-agent guard: a resource guard daemon (embeds a bundle node)",
               "ics-rover-agent guard");
  DaemonCommandLine command_line(cli, "ics-rover-agent guard");
  std::vector<std::string> resource_texts;
  double reply_lifetime_s = 86400;
  cli.add_option("--resource", resource_texts, "TENANT/RESOURCE this guard fronts (repeatable)")->required();
  cli.add_option("--reply-lifetime", reply_lifetime_s, "lifetime of reply bundles, mission seconds")
      ->check(CLI::PositiveNumber);
  auto options = command_line.Parse(argc, argv);
  if (!options) return options.error();
  GuardConfig config;
  config.self = options->node;
  for (const auto& text : resource_texts) {
    auto name = coordinator::ParseResourceName(text);
    if (!name)
      return Fail(command_line.command(), kExitUsage, fmt::format("--resource '{}': {}", text, name.error()));
    config.resources.push_back(*name);
  }
  auto node = OpenNode(command_line, std::move(*options), "ics-rover-agent-guard");
  if (!node) return node.error();
  auto store = OpenStore<GuardStore>(command_line, **node, "guard.db",
                                     [](const std::string& path) { return OpenSqliteGuardStore(path); });
  if (!store) return store.error();
  const auto& highest = store->loaded;
  json fronted = json::array();
  for (const auto& r : config.resources) {
    auto it = highest.find(r);
    fronted.push_back(json{{"resource", r.ToString()}, {"highest", it == highest.end() ? 0 : it->second}});
  }
  GuardDaemon guard(**node, std::move(store->store), std::move(config), highest,
                    clock::Duration(static_cast<std::int64_t>(reply_lifetime_s * 1000)));
  guard.Attach();
  fmt::print("{}\n", json{{"ts", (*node)->Now().ToIso8601()},
                          {"event", "guard-start"},
                          {"node", (*node)->options().node},
                          {"service", coordinator::kGuardService},
                          {"resources", fronted}}
                         .dump(-1, ' ', false, kReplace));
  std::fflush(stdout);
  const int status = (*node)->Run();
  return guard.failed() ? 1 : status;
}

}  // namespace ics::rover_agent::app
