// What the two daemons of ics-rover-agent (the agent, `run`, and the resource guard, `guard`)
// share at start-up and when they speak: the command line of the embedded bundle node, the node
// itself, their SQLite store in the data directory (opened at full durability and loaded), error
// lines on stderr, and sending a lease-protocol message as an expedited bundle.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdio>
#include <expected>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "coordinator/protocol.h"
#include "dtn/zmq/daemon_cli.h"
#include "dtn/zmq/node_daemon.h"

namespace ics::rover_agent::app {

// Exit statuses of the daemons: 1 for a failure at run time, 2 for a bad command line.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Prints "COMMAND: MESSAGE" on stderr and returns `exit_status`.
int Fail(std::string_view command, int exit_status, std::string_view message);

// A daemon's command line: `cli` carries the daemon's own options; this adds the bundle node's
// (the same flags as `ics-dtn node`, with --app). Parse() returns the node options, or the exit
// status when the process must stop (help printed, or a bad option: the error is printed).
class DaemonCommandLine {
 public:
  DaemonCommandLine(CLI::App& cli, std::string command);
  std::expected<dtn::zmq::DaemonOptions, int> Parse(int argc, char** argv);
  const std::string& command() const { return command_; }

 private:
  CLI::App& cli_;
  std::string command_;
  dtn::zmq::DaemonCli daemon_cli_;
};

// Opens the embedded bundle node, named `node_name` in its log lines. On error: printed, and the
// exit status returned.
std::expected<std::unique_ptr<dtn::zmq::NodeDaemon>, int> OpenNode(const DaemonCommandLine& command_line,
                                                                   dtn::zmq::DaemonOptions options,
                                                                   std::string node_name);

// The daemon's store DATA/`file`, opened by `open(path)` (an OpenSqlite*Store, at its default full
// durability: a daemon never runs without fsync) and loaded. On error: printed, exit status.
template <typename Store>
struct LoadedStore {
  std::unique_ptr<Store> store;
  typename std::remove_cvref_t<decltype(std::declval<Store&>().Load())>::value_type loaded;
};
template <typename Store, typename Open>
std::expected<LoadedStore<Store>, int> OpenStore(const DaemonCommandLine& command_line,
                                                 const dtn::zmq::NodeDaemon& node, std::string_view file,
                                                 Open open) {
  const std::string path = (std::filesystem::path(node.options().data_dir) / file).string();
  auto store = open(path);
  if (!store) return std::unexpected(Fail(command_line.command(), kExitFailure, store.error()));
  auto loaded = (*store)->Load();
  if (!loaded) return std::unexpected(Fail(command_line.command(), kExitFailure, loaded.error()));
  return LoadedStore<Store>{std::move(*store), std::move(*loaded)};
}

// Hands `message` to the node as an expedited bundle from `source` to `destination` (coordination
// traffic goes ahead of bulk data). Error: a line naming the destination and why.
std::expected<void, std::string> SendExpedited(dtn::zmq::NodeDaemon& node, const dtn::Eid& source,
                                               const dtn::Eid& destination, clock::Duration lifetime,
                                               const coordinator::Message& message);

}  // namespace ics::rover_agent::app
