// ics-coordinator: the lease coordinator daemon. It embeds a bundle node (the same link flags as
// `ics-dtn node`), keeps its epoch log in DATA/epochlog.db and its bundles in DATA/bundles.db,
// and drives the sans-I/O LeaseCore:
//
//   start:   epoch := epoch + 1, fsynced, before anything is answered; the lease table is restored
//            from the log and the core starts from it (restored leases stay held until provably
//            expired);
//   a turn:  lease ADUs delivered to ipn:C.64 go to the core; in the node's before-commit hook the
//            core's records are appended to the epoch log (one transaction, fsynced) and only then
//            are its answers handed to the bundle node, whose own commit follows; so a grant is on
//            disk before its bundle exists, and the bundle is on disk before it is transmitted;
//   timers:  the core's NextDeadline (expiries, hold-offs, waiter give-ups) is a daemon timer.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "coordinator/lease_core.h"
#include "coordinator/plan_policy.h"
#include "coordinator/protocol.h"
#include "coordinator/services.h"
#include "coordinator/sqlite_lease_log.h"
#include "dtn/zmq/daemon_cli.h"
#include "dtn/zmq/node_daemon.h"

namespace ics::coordinator {
namespace {

using nlohmann::json;
constexpr auto kReplace = json::error_handler_t::replace;
constexpr std::string_view kCleanMarker = "clean-shutdown";

struct Options {
  dtn::zmq::DaemonOptions daemon;
  double drift_ppm = 10;
  double rover_drift_ppm = 10;
  double processing_s = 2;
};

void LogRecordLine(const LogRecord& r) {
  json line{{"ts", r.at.ToIso8601()}, {"event", "lease"}, {"kind", EventKindName(r.kind)}, {"epoch", r.epoch}};
  if (!r.resource.tenant.empty()) line["resource"] = r.resource.ToString();
  if (r.rover) line["rover"] = *r.rover;
  if (r.request_id) line["request_id"] = *r.request_id;
  if (r.token) line["token"] = *r.token;
  if (r.lease_expires) line["expires"] = r.lease_expires->ToIso8601();
  if (!r.reason.empty()) line["reason"] = r.reason;
  fmt::print("{}\n", line.dump(-1, ' ', false, kReplace));
}

int Run(const Options& options) {
  auto daemon = dtn::zmq::NodeDaemon::Open(options.daemon);
  if (!daemon) {
    std::fprintf(stderr, "ics-coordinator: %s\n", daemon.error().c_str());
    return 1;
  }
  dtn::zmq::NodeDaemon& node = **daemon;
  const NodeNumber self = options.daemon.node;
  const std::filesystem::path data(options.daemon.data_dir);

  auto log = SqliteLeaseLog::OpenInDirectory(data.string());
  if (!log) {
    std::fprintf(stderr, "ics-coordinator: %s\n", log.error().message.c_str());
    return 1;
  }
  // Why this epoch starts: the first start, a restart after a clean stop (the marker file a
  // SIGTERM leaves), or a restart after a crash (no marker).
  auto previous = (*log)->CurrentEpoch();
  if (!previous) {
    std::fprintf(stderr, "ics-coordinator: %s\n", previous.error().message.c_str());
    return 1;
  }
  const auto marker = data / kCleanMarker;
  std::error_code ec;
  const bool clean = std::filesystem::exists(marker, ec);
  std::filesystem::remove(marker, ec);
  const std::string reason = *previous == 0 ? "start" : (clean ? "restart" : "restart after crash");
  auto epoch = (*log)->StartEpoch(reason, node.Now());
  if (!epoch) {
    std::fprintf(stderr, "ics-coordinator: %s\n", epoch.error().message.c_str());
    return 1;
  }
  auto table = (*log)->LoadState();
  if (!table) {
    std::fprintf(stderr, "ics-coordinator: %s\n", table.error().message.c_str());
    return 1;
  }
  fmt::print("{}\n", json{{"ts", node.Now().ToIso8601()}, {"event", "epoch"}, {"epoch", *epoch},
                          {"reason", reason}, {"restored_resources", table->resources.size()}}
                         .dump());

  PlanPolicyConfig policy_config;
  policy_config.self = self;
  policy_config.self_clock.drift_ppm = options.drift_ppm;
  policy_config.peer_clock.drift_ppm = options.rover_drift_ppm;
  policy_config.processing_margin = clock::Duration(static_cast<std::int64_t>(options.processing_s * 1000));
  PlanPolicy policy(node.plan(), policy_config);
  LeaseCoreConfig core_config;
  core_config.self = self;
  core_config.epoch = *epoch;
  LeaseCore core(core_config, std::move(*table),
                 [&policy](NodeNumber requester, clock::DtnTime now) { return policy.For(requester, now, false); },
                 node.Now());

  const dtn::Eid service = dtn::Eid::Ipn(self, kLeaseService);
  std::vector<dtn::BundleId> to_confirm;  // processed ADUs, confirmed once their effects are durable
  std::uint64_t malformed = 0;
  node.RegisterLocal(service, [&](const dtn::Deliver& d) {
    const clock::DtnTime now = node.Now();
    to_confirm.push_back(d.id);
    auto message = Decode(d.payload);
    if (!message) {
      ++malformed;
      fmt::print("{}\n", json{{"ts", now.ToIso8601()}, {"event", "lease-refused"}, {"from", d.source.ToString()},
                              {"reason", message.error().message}}
                             .dump(-1, ' ', false, kReplace));
      return;
    }
    if (d.source.scheme() != dtn::Eid::Scheme::kIpn) return;
    core.Receive(Inbound{d.source.node(), std::move(*message)}, now);
  });
  node.AddTimer([&core] { return core.NextDeadline(); }, [&core](clock::DtnTime now) { core.Tick(now); });
  bool failed = false;
  node.AddBeforeCommit([&] {
    Output out = core.TakeOutput();
    if (!out.to_persist.empty()) {
      if (auto ok = (*log)->Append(out.to_persist); !ok) {
        // Nothing the core decided may be sent: stop, and restart from the durable log.
        std::fprintf(stderr, "ics-coordinator: epoch log append failed: %s\n", ok.error().message.c_str());
        failed = true;
        node.Stop();
        return;
      }
      for (const auto& r : out.to_persist) LogRecordLine(r);
    }
    const clock::DtnTime now = node.Now();
    for (const auto& o : out.to_send) {
      dtn::SendRequest request;
      request.source = service;
      request.destination = dtn::Eid::Ipn(o.to, kLeaseService);
      request.priority = dtn::Priority::kExpedited;
      request.lifetime = policy.For(o.to, now, false).MessageLifetimeValue();
      request.payload = Encode(o.message);
      if (auto sent = node.Send(request); !sent) {
        std::fprintf(stderr, "ics-coordinator: could not store an answer to ipn:%llu: %s\n",
                     static_cast<unsigned long long>(o.to), std::string(dtn::SendErrorName(sent.error())).c_str());
      }
    }
    for (const auto& id : to_confirm) node.Confirm(service, id);
    to_confirm.clear();
  });
  const int status = node.Run();
  if (status == 0 && !failed) std::ofstream(marker) << "stopped cleanly\n";
  return failed ? 1 : status;
}

}  // namespace
}  // namespace ics::coordinator

int main(int argc, char** argv) {
  CLI::App cli("ics-coordinator: the lease coordinator daemon (embeds a bundle node)", "ics-coordinator");
  ics::coordinator::Options options;
  ics::dtn::zmq::DaemonCli daemon_options;
  daemon_options.AddTo(cli, /*with_app=*/true);
  cli.add_option("--drift-ppm", options.drift_ppm, "this coordinator's clock drift bound (ppm)");
  cli.add_option("--rover-drift-ppm", options.rover_drift_ppm, "the drift bound assumed for rovers' clocks (ppm)");
  cli.add_option("--processing", options.processing_s, "processing margin per round trip, seconds");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  auto daemon = daemon_options.Finish();
  if (!daemon) {
    std::fprintf(stderr, "ics-coordinator: %s\n", daemon.error().c_str());
    return 2;
  }
  options.daemon = *daemon;
  options.daemon.name = "ics-coordinator";
  return ics::coordinator::Run(options);
}
