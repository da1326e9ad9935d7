// The command-line options every daemon that embeds a bundle node shares (ics-dtn node,
// ics-coordinator, ics-rover-agent run): --id --data --plan --listen --neighbour --app
// --time-scale --time-origin --plan-epoch --emulate-light-time --quota-mb --max-bundle-bytes --window
// --window-mb --quiet.
#pragma once

#include <CLI/CLI.hpp>
#include <expected>
#include <string>
#include <vector>

#include "dtn/zmq/node_daemon.h"

namespace ics::dtn::zmq {

class DaemonCli {
 public:
  // Adds the options to `cli`. `with_app`: offer --app (the local application interface).
  void AddTo(CLI::App& cli, bool with_app);
  // After cli.parse(): the options, or a one-line error naming the option.
  std::expected<DaemonOptions, std::string> Finish() const;

 private:
  DaemonOptions o_;
  std::string id_;
  std::vector<std::string> neighbours_;
  std::string origin_text_, epoch_text_;
  double quota_mb_ = 4096;
  double window_mb_ = 64;  // DaemonOptions::window_bytes_per_neighbour, in MiB
  bool quiet_ = false;
};

// "ipn:7", "ipn:7.0" or "7" -> 7.
std::expected<NodeNumber, std::string> ParseNodeId(std::string_view text);

}  // namespace ics::dtn::zmq
