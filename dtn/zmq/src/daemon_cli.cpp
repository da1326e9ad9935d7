#include "dtn/zmq/daemon_cli.h"

#include <fmt/format.h>

#include <charconv>

namespace ics::dtn::zmq {

std::expected<NodeNumber, std::string> ParseNodeId(std::string_view text) {
  if (auto n = ParseRoutingId(text)) return *n;
  if (auto eid = Eid::Parse(text); eid && eid->scheme() == Eid::Scheme::kIpn && eid->node() > 0) return eid->node();
  NodeNumber n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc() && ptr == text.data() + text.size() && n > 0) return n;
  return std::unexpected(fmt::format("'{}' is not a node id (ipn:N)", text));
}

void DaemonCli::AddTo(CLI::App& cli, bool with_app) {
  cli.add_option("--id", id_, "this node, ipn:N")->required();
  cli.add_option("--data", o_.data_dir, "data directory (its SQLite files)")->required();
  cli.add_option("--plan", o_.plan_path, "ION-style contact plan (a contact / a range lines)")->required();
  cli.add_option("--listen", o_.listen, "where neighbours reach this node: tcp://127.0.0.1:PORT or ipc://PATH")
      ->required();
  cli.add_option("--neighbour,--neighbor", neighbours_, "ipn:M=ENDPOINT, a neighbour's --listen (repeatable)");
  if (with_app) {
    cli.add_option("--app", o_.app_endpoint, "local application interface (ipc://PATH or tcp://127.0.0.1:PORT)");
  }
  cli.add_option("--time-scale", o_.time_scale, "mission seconds per wall second (600: 10 min of light in 1 s)")
      ->check(CLI::PositiveNumber);
  cli.add_option("--time-origin", origin_text_,
                 "ISO-8601 wall instant at which mission time equals wall time; give every process the same one");
  cli.add_option("--plan-epoch", epoch_text_, "ISO-8601 instant the plan's +0 means (default: the time origin)");
  cli.add_flag("--emulate-light-time", o_.emulate_light_time,
               "hold every bundle and ack for the plan's OWLT (light-time rehearsal)");
  cli.add_option("--quota-mb", quota_mb_, "bundle store quota in MiB")->check(CLI::PositiveNumber);
  cli.add_option("--max-bundle-bytes", o_.max_bundle_bytes, "largest bundle accepted from a neighbour");
  cli.add_option("--window", o_.window_per_neighbour,
                 "bundles in flight (unacknowledged) per neighbour, per priority class; size it to rate x round trip")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  cli.add_option("--window-mb", window_mb_, "and at most this many MiB in flight per neighbour, per priority class")
      ->check(CLI::PositiveNumber);
  cli.add_flag("--quiet", quiet_, "do not log bundle lifecycle events");
}

std::expected<DaemonOptions, std::string> DaemonCli::Finish() const {
  DaemonOptions o = o_;
  auto node = ParseNodeId(id_);
  if (!node) return std::unexpected("--id: " + node.error());
  o.node = *node;
  for (const auto& n : neighbours_) {
    auto parsed = ParseNeighbour(n);
    if (!parsed) return std::unexpected(parsed.error());
    o.neighbours[parsed->first] = parsed->second;
  }
  if (!origin_text_.empty()) {
    auto t = clock::DtnTime::ParseIso8601(origin_text_);
    if (!t) return std::unexpected("--time-origin: " + t.error());
    o.time_origin = *t;
  }
  if (!epoch_text_.empty()) {
    auto t = clock::DtnTime::ParseIso8601(epoch_text_);
    if (!t) return std::unexpected("--plan-epoch: " + t.error());
    o.plan_epoch = *t;
  }
  o.limits.max_bytes = static_cast<std::uint64_t>(quota_mb_ * 1024 * 1024);
  o.window_bytes_per_neighbour = static_cast<std::uint64_t>(window_mb_ * 1024 * 1024);
  o.log_events = !quiet_;
  return o;
}

}  // namespace ics::dtn::zmq
