// The control client verbs of ics-rover-agent: acquire, release, status, use. Each sends one JSON
// request to the agent daemon's --control socket and prints its answer. Exit status 0 when the
// answer is what was asked for (granted, released, status, use-accepted; requested/queued without
// --wait), 1 otherwise (including no answer within --timeout), 2 for bad arguments.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "clock/time.h"

namespace ics::rover_agent::app {

using nlohmann::json;

int RunClient(int argc, char** argv) {
  const std::string verb = argv[0];
  CLI::App cli("ics-rover-agent " + verb + ": ask the agent daemon", "ics-rover-agent " + verb);
  std::string via, resource, for_text, deadline_text, guard, operation = "use";
  bool wait = false, as_json = false;
  double timeout_s = 0;
  if (verb != "status") cli.add_option("resource", resource, "TENANT/RESOURCE")->required();
  if (verb == "acquire") {
    cli.add_option("--for", for_text, "how long to hold it once granted (e.g. 600s, 10m)")->required();
    cli.add_flag("--wait", wait, "return when granted, or when the request's deadline passes (exit 1)");
    cli.add_option("--deadline", deadline_text, "give up waiting after this long (default: the agent's)");
  }
  if (verb == "use") {
    cli.add_option("--guard", guard, "the guard's node, ipn:G (its service ipn:G.65 gets the token)")
        ->required();
    cli.add_option("--operation", operation, "what to do with the resource (for the guard's log)");
  }
  cli.add_option("--via", via, "the agent daemon's --control endpoint")->required();
  cli.add_flag("--json", as_json, "print one JSON object");
  cli.add_option("--timeout", timeout_s,
                 "seconds to wait for the daemon's answer (default: no limit with --wait or for use, else 30)");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  json request{{"verb", verb}};
  if (verb != "status") request["resource"] = resource;
  if (verb == "use") {
    request["guard"] = guard;
    request["operation"] = operation;
  }
  if (verb == "acquire") {
    auto hold = clock::ParseDuration(for_text);
    if (!hold || hold->count() <= 0) {
      std::fprintf(stderr, "ics-rover-agent acquire: --for '%s': %s\n", for_text.c_str(),
                   hold ? "must be positive" : hold.error().c_str());
      return 2;
    }
    request["for_ms"] = hold->count();
    request["wait"] = wait;
    if (!deadline_text.empty()) {
      auto deadline = clock::ParseDuration(deadline_text);
      if (!deadline) {
        std::fprintf(stderr, "ics-rover-agent acquire: --deadline: %s\n", deadline.error().c_str());
        return 2;
      }
      request["deadline_ms"] = deadline->count();
    }
  }
  ::zmq::context_t context;
  ::zmq::socket_t socket(context, ::zmq::socket_type::dealer);
  socket.set(::zmq::sockopt::linger, 0);
  socket.connect(via);
  const std::string text = request.dump();
  socket.send(::zmq::buffer(text), ::zmq::send_flags::none);
  // A use is answered by the guard, across the network (light time): no default limit.
  const double limit_s = timeout_s > 0 ? timeout_s : (wait || verb == "use" ? 0 : 30);
  std::vector<::zmq::pollitem_t> items{{socket.handle(), 0, ZMQ_POLLIN, 0}};
  const long poll_ms = limit_s > 0 ? static_cast<long>(limit_s * 1000) : -1;
  if (::zmq::poll(items, std::chrono::milliseconds(poll_ms)) == 0) {
    std::fprintf(stderr, "ics-rover-agent %s: no answer from %s\n", verb.c_str(), via.c_str());
    return 1;
  }
  ::zmq::message_t reply;
  if (!socket.recv(reply, ::zmq::recv_flags::none)) return 1;
  json answer = json::parse(reply.to_string_view(), nullptr, false);
  if (!answer.is_object()) {
    std::fprintf(stderr, "ics-rover-agent %s: malformed answer\n", verb.c_str());
    return 1;
  }
  const std::string outcome = answer.value("outcome", std::string("?"));
  if (as_json) {
    fmt::print("{}\n", answer.dump());
  } else if (verb == "status") {
    fmt::print("{}\n", answer.dump(2));
  } else {
    fmt::print("{} {}", outcome, answer.value("resource", resource));
    if (answer.value("token", 0) != 0) fmt::print(" token {} epoch {}", answer.value("token", 0), answer.value("epoch", 0));
    if (answer.contains("valid_until")) fmt::print(" valid until {}", answer["valid_until"].get<std::string>());
    if (answer.contains("queue_position")) fmt::print(" queue position {}", answer["queue_position"].get<int>());
    if (answer.contains("reason")) fmt::print(" ({})", answer["reason"].get<std::string>());
    fmt::print("\n");
  }
  const bool ok = outcome == "granted" || outcome == "released" || outcome == "status" ||
                  outcome == "use-accepted" ||
                  (!wait && (outcome == "requested" || outcome == "queued"));
  return ok ? 0 : 1;
}

}  // namespace ics::rover_agent::app
