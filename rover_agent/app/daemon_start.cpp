// The start-up and sending code the agent and guard daemons share (see daemon_start.h).
#include "daemon_start.h"

#include <fmt/format.h>

namespace ics::rover_agent::app {

int Fail(std::string_view command, int exit_status, std::string_view message) {
  fmt::print(stderr, "{}: {}\n", command, message);
  return exit_status;
}

DaemonCommandLine::DaemonCommandLine(CLI::App& cli, std::string command)
    : cli_(cli), command_(std::move(command)) {
  daemon_cli_.AddTo(cli_, /*with_app=*/true);
}

std::expected<dtn::zmq::DaemonOptions, int> DaemonCommandLine::Parse(int argc, char** argv) {
  try {
    cli_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return std::unexpected(cli_.exit(e));
  }
  auto options = daemon_cli_.Finish();
  if (!options) return std::unexpected(Fail(command_, kExitUsage, options.error()));
  return std::move(*options);
}

std::expected<std::unique_ptr<dtn::zmq::NodeDaemon>, int> OpenNode(const DaemonCommandLine& command_line,
                                                                   dtn::zmq::DaemonOptions options,
                                                                   std::string node_name) {
  options.name = std::move(node_name);
  auto node = dtn::zmq::NodeDaemon::Open(std::move(options));
  if (!node) return std::unexpected(Fail(command_line.command(), kExitFailure, node.error()));
  return std::move(*node);
}

std::expected<void, std::string> SendExpedited(dtn::zmq::NodeDaemon& node, const dtn::Eid& source,
                                               const dtn::Eid& destination, clock::Duration lifetime,
                                               const coordinator::Message& message) {
  dtn::SendRequest request;
  request.source = source;
  request.destination = destination;
  request.priority = dtn::Priority::kExpedited;
  request.lifetime = lifetime;
  request.payload = coordinator::Encode(message);
  if (auto sent = node.Send(request); !sent) {
    return std::unexpected(fmt::format("could not store a message for {}: {}", destination.ToString(),
                                       dtn::SendErrorName(sent.error())));
  }
  return {};
}

}  // namespace ics::rover_agent::app
