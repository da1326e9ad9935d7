// chain_probe: end-to-end latency of single ADUs through running ics-dtn daemons, for
// dtn/bench/chain-bench.sh. It speaks the application protocol (dtn/zmq/app_protocol.h) to two
// daemons at once: it registers --endpoint at --recv-via, then, one ADU at a time, sends it through
// --send-via and waits for its delivery, timing each with one steady clock (so no clock offsets
// between processes enter the figures). Prints one JSON line:
//   {"count":N,"size":B,"median_us":...,"p90_us":...,"p99_us":...,"max_us":...}
//
//   chain_probe --send-via ipc://A1 --recv-via ipc://A3 --to ipn:3.7 [--count 2000] [--size 64]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <zmq.hpp>

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Reply {
  std::string verb;
  json header;
};

void Send(zmq::socket_t& s, std::string_view verb, const json& header, const std::vector<std::uint8_t>& payload = {}) {
  const std::string h = header.dump();
  s.send(zmq::buffer(verb), zmq::send_flags::sndmore);
  s.send(zmq::buffer(h), payload.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
  if (!payload.empty()) s.send(zmq::buffer(payload), zmq::send_flags::none);
}

std::optional<Reply> Receive(zmq::socket_t& s, std::chrono::milliseconds timeout) {
  std::vector<zmq::pollitem_t> items{{s.handle(), 0, ZMQ_POLLIN, 0}};
  if (zmq::poll(items, timeout) == 0) return std::nullopt;
  std::vector<zmq::message_t> parts;
  bool more = true;
  while (more) {
    zmq::message_t m;
    if (!s.recv(m, zmq::recv_flags::none)) break;
    more = m.more();
    parts.push_back(std::move(m));
  }
  if (parts.size() < 2) return Reply{};
  return Reply{parts[0].to_string(), json::parse(parts[1].to_string_view(), nullptr, false)};
}

int Fail(const std::string& why) {
  std::fprintf(stderr, "chain_probe: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string send_via, recv_via, to;
  std::size_t count = 2000, size = 64, warmup = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--send-via") send_via = value;
    else if (key == "--recv-via") recv_via = value;
    else if (key == "--to") to = value;
    else if (key == "--count") count = std::stoul(value);
    else if (key == "--size") size = std::max<std::size_t>(8, std::stoul(value));
    else if (key == "--warmup") warmup = std::stoul(value);
    else return Fail("unknown option " + key);
  }
  if (send_via.empty() || recv_via.empty() || to.empty() || count == 0) {
    return Fail("usage: chain_probe --send-via EP --recv-via EP --to ipn:N.S [--count N] [--size B] [--warmup N]");
  }
  zmq::context_t context;
  zmq::socket_t sender(context, zmq::socket_type::dealer), receiver(context, zmq::socket_type::dealer);
  for (auto* s : {&sender, &receiver}) s->set(zmq::sockopt::linger, 0);
  sender.connect(send_via);
  receiver.connect(recv_via);
  Send(receiver, "register", json{{"endpoint", to}});
  for (bool registered = false; !registered;) {
    auto r = Receive(receiver, std::chrono::seconds(10));
    if (!r) return Fail("no answer to register from " + recv_via);
    if (r->verb == "error") return Fail("register: " + r->header.dump());
    registered = r->verb == "registered";
  }

  std::vector<double> samples_us;
  std::vector<std::uint8_t> payload(size, 0x5a);
  for (std::size_t i = 0; i < warmup + count; ++i) {
    for (int b = 0; b < 8; ++b) payload[b] = static_cast<std::uint8_t>(i >> (56 - 8 * b));
    const auto t0 = Clock::now();
    Send(sender, "send", json{{"to", to}, {"priority", "expedited"}, {"lifetime_ms", 3'600'000}, {"tag", i}}, payload);
    bool stored = false, delivered = false;
    std::string id;
    std::optional<Clock::time_point> t1;
    while (!stored || !delivered) {
      std::vector<zmq::pollitem_t> items{{sender.handle(), 0, ZMQ_POLLIN, 0}, {receiver.handle(), 0, ZMQ_POLLIN, 0}};
      if (zmq::poll(items, std::chrono::seconds(10)) == 0) return Fail(fmt::format("ADU {} timed out", i));
      if (items[1].revents & ZMQ_POLLIN) {
        auto r = Receive(receiver, std::chrono::milliseconds(0));
        if (r && r->verb == "deliver") {
          t1 = Clock::now();
          delivered = true;
          id = r->header.value("id", std::string());
          Send(receiver, "confirm", json{{"endpoint", to}, {"id", id}});
        }
      }
      if (items[0].revents & ZMQ_POLLIN) {
        auto r = Receive(sender, std::chrono::milliseconds(0));
        if (!r) continue;
        if (r->verb != "stored") return Fail("send: " + r->verb + " " + r->header.dump());
        stored = true;
      }
    }
    if (i >= warmup) samples_us.push_back(std::chrono::duration<double, std::micro>(*t1 - t0).count());
  }
  std::sort(samples_us.begin(), samples_us.end());
  auto at = [&](double q) {
    return samples_us[std::min(samples_us.size() - 1, static_cast<std::size_t>(q * static_cast<double>(samples_us.size())))];
  };
  std::printf("%s\n", json{{"count", count},
                           {"size", size},
                           {"median_us", at(0.5)},
                           {"p90_us", at(0.9)},
                           {"p99_us", at(0.99)},
                           {"max_us", samples_us.back()}}
                          .dump()
                          .c_str());
  return 0;
}
