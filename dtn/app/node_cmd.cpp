// ics-dtn node / send / recv: the node daemon and the two local application clients.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <zmq.hpp>

#include "command.h"
#include "dtn/zmq/app_protocol.h"
#include "dtn/zmq/daemon_cli.h"
#include "dtn/zmq/node_daemon.h"

namespace ics::dtn::app {
namespace {

using nlohmann::json;
constexpr auto kReplace = json::error_handler_t::replace;

int RunNode(int argc, char** argv) {
  CLI::App cli("Run a store-and-forward bundle node (a relay: an orbiter, a lander)", "ics-dtn node");
  zmq::DaemonCli options;
  options.AddTo(cli, /*with_app=*/true);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  auto o = options.Finish();
  if (!o) {
    std::fprintf(stderr, "ics-dtn node: %s\n", o.error().c_str());
    return 2;
  }
  auto daemon = zmq::NodeDaemon::Open(*o);
  if (!daemon) {
    std::fprintf(stderr, "ics-dtn node: %s\n", daemon.error().c_str());
    return 1;
  }
  return (*daemon)->Run();
}

// A DEALER connected to a node daemon's application interface.
class AppClient {
 public:
  explicit AppClient(const std::string& endpoint) : socket_(context_, ::zmq::socket_type::dealer) {
    socket_.set(::zmq::sockopt::linger, 0);
    socket_.set(::zmq::sockopt::sndhwm, 100000);
    socket_.set(::zmq::sockopt::rcvhwm, 100000);
    socket_.connect(endpoint);
  }
  // How long the last messages may take to leave at exit (0: dropped at once).
  void SetLinger(std::chrono::milliseconds linger) { socket_.set(::zmq::sockopt::linger, static_cast<int>(linger.count())); }
  void Send(std::string_view verb, const json& header, std::span<const std::uint8_t> payload = {}) {
    const std::string h = header.dump(-1, ' ', false, kReplace);
    socket_.send(::zmq::buffer(verb), ::zmq::send_flags::sndmore);
    socket_.send(::zmq::buffer(h), payload.empty() ? ::zmq::send_flags::none : ::zmq::send_flags::sndmore);
    if (!payload.empty()) socket_.send(::zmq::buffer(payload.data(), payload.size()), ::zmq::send_flags::none);
  }
  struct Reply {
    std::string verb;
    json header;
    ::zmq::message_t payload_message;  // empty when the reply has no payload
    std::span<const std::uint8_t> payload() const {
      return {static_cast<const std::uint8_t*>(payload_message.data()), payload_message.size()};
    }
  };
  // Waits up to `timeout` for one reply.
  std::optional<Reply> Receive(std::chrono::milliseconds timeout) {
    std::vector<::zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    if (::zmq::poll(items, timeout) == 0) return std::nullopt;
    std::vector<::zmq::message_t> parts;
    bool more = true;
    while (more) {
      ::zmq::message_t part;
      if (!socket_.recv(part, ::zmq::recv_flags::none)) break;
      more = part.more();
      parts.push_back(std::move(part));
    }
    Reply r;
    if (parts.size() < 2) return r;
    r.verb = parts[0].to_string();
    r.header = json::parse(parts[1].to_string_view(), nullptr, false);
    if (parts.size() >= 3) r.payload_message = std::move(parts[2]);
    return r;
  }

 private:
  ::zmq::context_t context_;
  ::zmq::socket_t socket_;
};

std::string Hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

int RunSend(int argc, char** argv) {
  CLI::App cli("Send stdin as one ADU, or N generated ADUs, through a local node daemon", "ics-dtn send");
  std::string via, to, priority = "normal", from;
  double lifetime_s = 86400;
  std::uint64_t count = 0, size = 0;
  double timeout_s = 600;
  cli.add_option("--via", via, "the daemon's application endpoint (its --app)")->required();
  cli.add_option("--to", to, "destination endpoint, ipn:M.S")->required();
  cli.add_option("--from", from, "source endpoint (default ipn:N.0 of the daemon)");
  cli.add_option("--priority", priority, "expedited, normal or bulk")
      ->check(CLI::IsMember({"expedited", "normal", "bulk"}));
  cli.add_option("--lifetime", lifetime_s, "bundle lifetime in seconds")->check(CLI::PositiveNumber);
  cli.add_option("--count", count, "send N generated ADUs instead of stdin");
  cli.add_option("--size", size, "bytes per generated ADU (>= 8: the first 8 hold its sequence number)");
  cli.add_option("--timeout", timeout_s, "give up after this many seconds without every ADU stored");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (auto eid = Eid::Parse(to); !eid) {
    std::fprintf(stderr, "ics-dtn send: --to: %s\n", eid.error().c_str());
    return 2;
  }
  // ADU i (generated, --count) or the one ADU read from stdin, built when it is sent: memory stays
  // at one ADU however many are sent.
  std::vector<std::uint8_t> adu;
  std::uint64_t total = 1;
  const std::uint64_t run = static_cast<std::uint64_t>(::getpid()) << 32;  // unique across runs
  if (count > 0) {
    if (size < 8) size = 8;
    total = count;
    adu.resize(size);
  } else {
    adu.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  auto make_adu = [&](std::uint64_t i) {
    if (count == 0) return;
    for (int b = 0; b < 8; ++b) adu[b] = static_cast<std::uint8_t>(i >> (56 - 8 * b));
    for (std::size_t b = 8; b < adu.size(); ++b) adu[b] = static_cast<std::uint8_t>((run >> 32) + i + b);
  };
  AppClient client(via);
  const std::int64_t lifetime_ms = static_cast<std::int64_t>(lifetime_s * 1000);
  constexpr std::size_t kWindow = 1024;  // requests outstanding at once
  std::uint64_t next = 0, stored = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  while (stored < total) {
    while (next < total && next - stored < kWindow) {
      json h{{"to", to}, {"priority", priority}, {"lifetime_ms", lifetime_ms}, {"tag", next}};
      if (!from.empty()) h["from"] = from;
      make_adu(next);
      client.Send("send", h, adu);
      ++next;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      std::fprintf(stderr, "ics-dtn send: timed out: %llu of %llu ADUs stored\n", static_cast<unsigned long long>(stored),
                   static_cast<unsigned long long>(total));
      return 1;
    }
    auto reply = client.Receive(std::min(left, std::chrono::milliseconds(1000)));
    if (!reply) continue;
    if (reply->verb == "stored") {
      ++stored;
    } else {
      std::fprintf(stderr, "ics-dtn send: %s: %s\n", reply->verb.c_str(),
                   reply->header.dump(-1, ' ', false, kReplace).c_str());
      return 1;
    }
  }
  std::fprintf(stderr, "ics-dtn send: %llu ADUs stored\n", static_cast<unsigned long long>(stored));
  return 0;
}

int RunRecv(int argc, char** argv) {
  CLI::App cli("Receive ADUs for a local endpoint from a node daemon", "ics-dtn recv");
  std::string via, endpoint;
  std::uint64_t count = 0;
  double timeout_s = 0;
  bool as_json = false;
  cli.add_option("--via", via, "the daemon's application endpoint (its --app)")->required();
  cli.add_option("--endpoint", endpoint, "the endpoint to receive for, ipn:N.S")->required();
  cli.add_option("--count", count, "exit after N ADUs");
  cli.add_option("--timeout", timeout_s, "exit after this many seconds (non-zero if fewer than --count arrived)");
  cli.add_flag("--json", as_json, "one JSON object per ADU");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  AppClient client(via);
  client.Send("register", json{{"endpoint", endpoint}});
  const auto start = std::chrono::steady_clock::now();
  const auto limit = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  std::set<std::string> seen;  // a possible redelivery already printed is confirmed, not printed again
  std::uint64_t got = 0;
  bool registered = false;
  // Deliveries are confirmed cumulatively: everything that has arrived (and been printed) when
  // the socket runs dry goes back in one confirm, bounded to fit the daemon's header limit.
  std::vector<std::string> to_confirm;
  std::size_t confirm_bytes = 0;
  auto flush_confirms = [&] {
    if (to_confirm.empty()) return;
    std::fflush(stdout);  // what is confirmed has been written out first
    client.Send("confirm", json{{"endpoint", endpoint}, {"ids", to_confirm}});
    to_confirm.clear();
    confirm_bytes = 0;
  };
  while (count == 0 || got < count) {
    auto wait = std::chrono::milliseconds(1000);
    if (timeout_s > 0) {
      const auto left = limit - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      if (left.count() <= 0) break;
      wait = std::min(wait, left);
    }
    const bool draining = !to_confirm.empty();
    auto reply = client.Receive(draining ? std::chrono::milliseconds(0) : wait);
    if (!reply) {
      flush_confirms();
      if (!registered && !draining) client.Send("register", json{{"endpoint", endpoint}});  // daemon not up yet
      continue;
    }
    if (reply->verb == "registered") {
      registered = true;
      continue;
    }
    if (reply->verb == "error") {
      std::fprintf(stderr, "ics-dtn recv: %s\n", reply->header.dump(-1, ' ', false, kReplace).c_str());
      return 1;
    }
    if (reply->verb != "deliver" || !reply->header.is_object()) continue;
    const std::string id = reply->header.value("id", std::string());
    if (seen.insert(id).second) {
      ++got;
      if (as_json) {
        json line{{"source", reply->header.value("source", std::string())},
                  {"id", id},
                  {"created_ms", reply->header.value("created_ms", std::int64_t{0})},
                  {"created", clock::DtnTime::FromMillis(reply->header.value("created_ms", std::int64_t{0})).ToIso8601()},
                  {"priority", reply->header.value("priority", std::string())},
                  {"size", reply->payload().size()},
                  {"payload_hex", Hex(reply->payload())}};
        std::fputs((line.dump(-1, ' ', false, kReplace) + "\n").c_str(), stdout);
      } else {
        const auto payload = reply->payload();
        fmt::print("{} {} bytes: {}\n", id, payload.size(), std::string(payload.begin(), payload.end()));
      }
    }
    confirm_bytes += id.size() + 3;
    to_confirm.push_back(id);
    if (confirm_bytes > zmq::kMaxHeaderBytes / 2) flush_confirms();
  }
  client.SetLinger(std::chrono::milliseconds(1000));  // the last confirm must reach the daemon
  flush_confirms();
  client.Send("unregister", json{{"endpoint", endpoint}});
  if (count > 0 && got < count) {
    std::fprintf(stderr, "ics-dtn recv: %llu of %llu ADUs arrived before the timeout\n",
                 static_cast<unsigned long long>(got), static_cast<unsigned long long>(count));
    return 1;
  }
  return 0;
}

const Registration kNode{"node", "run a store-and-forward bundle node daemon", RunNode};
const Registration kSend{"send", "send ADUs through a local node daemon", RunSend};
const Registration kRecv{"recv", "receive ADUs from a local node daemon", RunRecv};

}  // namespace
}  // namespace ics::dtn::app
