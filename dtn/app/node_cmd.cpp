// ics-dtn node / send / recv: the node daemon and the two local application clients.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <unordered_set>
#include <zmq.hpp>

#include "command.h"
#include "dtn/bundle_store.h"
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

// A DEALER connected to a node daemon's application interface (dtn/zmq/app_protocol.h). The
// per-ADU messages (send, stored, deliver, confirm) use binary headers; the rest are JSON.
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
  void SendJson(std::string_view verb, const json& header) { Send(verb, header.dump(-1, ' ', false, kReplace)); }
  void Send(std::string_view verb, std::string_view header) {
    socket_.send(::zmq::buffer(verb), ::zmq::send_flags::sndmore);
    socket_.send(::zmq::buffer(header), ::zmq::send_flags::none);
  }
  // The payload message is handed to ZeroMQ as it is (built in place by the caller: no copy).
  void Send(std::string_view verb, std::string_view header, ::zmq::message_t& payload) {
    socket_.send(::zmq::buffer(verb), ::zmq::send_flags::sndmore);
    socket_.send(::zmq::buffer(header), ::zmq::send_flags::sndmore);
    socket_.send(payload, ::zmq::send_flags::none);
  }
  struct Reply {
    ::zmq::message_t verb, header, payload;  // payload: empty when the reply has none
    std::size_t parts = 0;
    std::string_view verb_text() const { return verb.to_string_view(); }
    std::string_view header_text() const { return header.to_string_view(); }
    std::span<const std::uint8_t> payload_bytes() const {
      return {static_cast<const std::uint8_t*>(payload.data()), payload.size()};
    }
  };
  // Reads one reply into `r`: at once if one is queued (no poll: a busy client drains its socket
  // without a system call per reply), else waiting up to `timeout`. False if none came.
  bool Receive(Reply& r, std::chrono::milliseconds timeout) {
    if (!ReadParts(r, ::zmq::recv_flags::dontwait)) {
      if (timeout.count() <= 0) return false;
      std::vector<::zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
      if (::zmq::poll(items, timeout) == 0) return false;
      if (!ReadParts(r, ::zmq::recv_flags::dontwait)) return false;
    }
    return true;
  }

 private:
  bool ReadParts(Reply& r, ::zmq::recv_flags flags) {
    if (!socket_.recv(r.verb, flags)) return false;
    r.parts = 1;
    r.header.rebuild(0);
    r.payload.rebuild(0);
    bool more = r.verb.more();
    ::zmq::message_t* next[] = {&r.header, &r.payload};
    for (auto* part : next) {
      if (!more) break;
      (void)socket_.recv(*part, ::zmq::recv_flags::none);  // the rest of a message is there already
      more = part->more();
      ++r.parts;
    }
    while (more) {  // more parts than the protocol has: drop them
      ::zmq::message_t rest;
      (void)socket_.recv(rest, ::zmq::recv_flags::none);
      more = rest.more();
    }
    return true;
  }

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
  zmq::SendHeader header;
  if (auto eid = Eid::Parse(to); !eid) {
    std::fprintf(stderr, "ics-dtn send: --to: %s\n", eid.error().c_str());
    return 2;
  } else {
    header.to = std::move(*eid);
  }
  if (!from.empty()) {
    auto eid = Eid::Parse(from);
    if (!eid || eid->is_none()) {
      std::fprintf(stderr, "ics-dtn send: --from: %s\n", eid ? "dtn:none is not a source" : eid.error().c_str());
      return 2;
    }
    header.from = std::move(*eid);
  }
  header.priority = ParsePriority(priority).value_or(Priority::kNormal);
  header.lifetime_ms = static_cast<std::int64_t>(lifetime_s * 1000);
  // ADU i (generated, --count) or the one ADU read from stdin, built in the message that carries
  // it when it is sent: memory stays at the ADUs queued in ZeroMQ however many are sent.
  std::vector<std::uint8_t> stdin_adu;
  std::uint64_t total = 1;
  const std::uint64_t run = static_cast<std::uint64_t>(::getpid()) << 32;  // unique across runs
  if (count > 0) {
    if (size < 8) size = 8;
    total = count;
  } else {
    stdin_adu.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  auto make_adu = [&](std::uint64_t i) {
    if (count == 0) return ::zmq::message_t(stdin_adu.data(), stdin_adu.size());
    ::zmq::message_t m(size);
    auto* adu = static_cast<std::uint8_t*>(m.data());
    for (int b = 0; b < 8; ++b) adu[b] = static_cast<std::uint8_t>(i >> (56 - 8 * b));
    const auto base = static_cast<std::uint8_t>((run >> 32) + i);
    for (std::size_t b = 8; b < size; ++b) adu[b] = static_cast<std::uint8_t>(base + b);
    return m;
  };
  AppClient client(via);
  constexpr std::size_t kWindow = 1024;  // requests outstanding at once
  std::uint64_t next = 0, stored = 0;
  std::string header_bytes;
  AppClient::Reply reply;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  while (stored < total) {
    while (next < total && next - stored < kWindow) {
      header.tag = next;
      header_bytes.clear();
      zmq::AppendSendHeader(header_bytes, header);
      auto adu = make_adu(next);
      if (adu.size() == 0) {  // an empty ADU: no payload part
        client.Send("send", header_bytes);
      } else {
        client.Send("send", header_bytes, adu);
      }
      ++next;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      std::fprintf(stderr, "ics-dtn send: timed out: %llu of %llu ADUs stored\n", static_cast<unsigned long long>(stored),
                   static_cast<unsigned long long>(total));
      return 1;
    }
    // Take every reply that is queued before sending more (one poll per batch, not per reply).
    if (!client.Receive(reply, std::min(left, std::chrono::milliseconds(1000)))) continue;
    do {
      if (reply.verb_text() == "stored" && zmq::IsBinaryHeader(reply.header_text())) {
        if (auto h = zmq::ParseStoredHeader(reply.header_text()); !h) {
          std::fprintf(stderr, "ics-dtn send: bad reply from the daemon: %s\n", h.error().c_str());
          return 1;
        }
        ++stored;
      } else if (reply.verb_text() == "stored") {
        ++stored;  // a daemon that answers in JSON
      } else {
        std::fprintf(stderr, "ics-dtn send: %.*s: %.*s\n", static_cast<int>(reply.verb_text().size()),
                     reply.verb_text().data(), static_cast<int>(std::min<std::size_t>(reply.header_text().size(), 4096)),
                     reply.header_text().data());
        return 1;
      }
    } while (stored < total && client.Receive(reply, std::chrono::milliseconds(0)));
  }
  std::fprintf(stderr, "ics-dtn send: %llu ADUs stored\n", static_cast<unsigned long long>(stored));
  return 0;
}

// One delivery as recv reads it, from a binary or a JSON deliver header.
struct Delivery {
  BundleId id;
  Priority priority = Priority::kNormal;
};

std::expected<Delivery, std::string> ReadDelivery(std::string_view header_text) {
  if (zmq::IsBinaryHeader(header_text)) {
    auto h = zmq::ParseDeliverHeader(header_text);
    if (!h) return std::unexpected(h.error());
    return Delivery{std::move(h->id), h->priority};
  }
  // A daemon that answers in JSON (one that ignores "binary" in register).
  const json header = json::parse(header_text, nullptr, false);
  if (!header.is_object()) return std::unexpected("deliver header is neither binary nor a JSON object");
  auto id = zmq::ParseBundleId(header.value("id", std::string()));
  if (!id) return std::unexpected(id.error());
  return Delivery{std::move(*id), ParsePriority(header.value("priority", std::string())).value_or(Priority::kNormal)};
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
  auto endpoint_eid = Eid::Parse(endpoint);
  if (!endpoint_eid) {
    std::fprintf(stderr, "ics-dtn recv: --endpoint: %s\n", endpoint_eid.error().c_str());
    return 2;
  }
  AppClient client(via);
  const json register_header{{"endpoint", endpoint}, {"binary", true}};
  client.SendJson("register", register_header);
  const auto start = std::chrono::steady_clock::now();
  const auto limit = std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  // A possible redelivery already printed is confirmed, not printed again.
  std::unordered_set<BundleId, BundleIdHash> seen;
  std::uint64_t got = 0;
  bool registered = false;
  // Deliveries are confirmed cumulatively: everything that has arrived (and been printed) when
  // the socket runs dry goes back in one binary confirm (at most kMaxConfirmIds IDs each).
  std::vector<BundleId> to_confirm;
  const std::size_t confirm_header_base = 2 + zmq::BinaryEidBytes(*endpoint_eid) + 2;
  std::size_t confirm_bytes = confirm_header_base;  // the binary confirm's size so far
  std::string confirm_header;
  auto flush_confirms = [&] {
    if (to_confirm.empty()) return;
    std::fflush(stdout);  // what is confirmed has been written out first
    confirm_header.clear();
    zmq::AppendConfirmHeader(confirm_header, *endpoint_eid, to_confirm);
    client.Send("confirm", confirm_header);
    to_confirm.clear();
    confirm_bytes = confirm_header_base;
  };
  AppClient::Reply reply;
  fmt::memory_buffer line;
  while (count == 0 || got < count) {
    auto wait = std::chrono::milliseconds(1000);
    if (timeout_s > 0) {
      const auto left = limit - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
      if (left.count() <= 0) break;
      wait = std::min(wait, left);
    }
    const bool draining = !to_confirm.empty();
    if (!client.Receive(reply, draining ? std::chrono::milliseconds(0) : wait)) {
      flush_confirms();
      if (!registered && !draining) client.SendJson("register", register_header);  // daemon not up yet
      continue;
    }
    const std::string_view verb = reply.verb_text();
    if (verb == "registered") {
      registered = true;
      continue;
    }
    if (verb == "error") {
      std::fprintf(stderr, "ics-dtn recv: %.*s\n", static_cast<int>(std::min<std::size_t>(reply.header_text().size(), 4096)),
                   reply.header_text().data());
      return 1;
    }
    if (verb != "deliver" || reply.parts < 2) continue;
    auto delivery = ReadDelivery(reply.header_text());
    if (!delivery) {
      std::fprintf(stderr, "ics-dtn recv: bad deliver header from the daemon: %s\n", delivery.error().c_str());
      return 1;
    }
    const auto payload = reply.payload_bytes();
    if (seen.insert(delivery->id).second) {
      ++got;
      const std::string id = delivery->id.ToString();
      if (as_json) {
        json out{{"source", delivery->id.source.ToString()},
                 {"id", id},
                 {"created_ms", delivery->id.created.time.millis()},
                 {"created", delivery->id.created.time.ToIso8601()},
                 {"priority", PriorityName(delivery->priority)},
                 {"size", payload.size()},
                 {"payload_hex", Hex(payload)}};
        std::fputs((out.dump(-1, ' ', false, kReplace) + "\n").c_str(), stdout);
      } else {
        line.clear();
        fmt::format_to(std::back_inserter(line), "{} {} bytes: ", id, payload.size());
        line.append(reinterpret_cast<const char*>(payload.data()), reinterpret_cast<const char*>(payload.data()) + payload.size());
        line.push_back('\n');
        std::fwrite(line.data(), 1, line.size(), stdout);
      }
    }
    // The confirm must stay within the daemon's header bound and ID count.
    const std::size_t id_bytes = zmq::BinaryIdBytes(delivery->id);
    if (to_confirm.size() >= zmq::kMaxConfirmIds || confirm_bytes + id_bytes > zmq::kMaxHeaderBytes) flush_confirms();
    confirm_bytes += id_bytes;
    to_confirm.push_back(std::move(delivery->id));
  }
  client.SetLinger(std::chrono::milliseconds(1000));  // the last confirm must reach the daemon
  flush_confirms();
  client.SendJson("unregister", json{{"endpoint", endpoint}});
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
