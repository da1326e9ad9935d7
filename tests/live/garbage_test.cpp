// A node daemon's --listen port under hostile input: random bytes, truncated ZMTP greetings and
// frames, a ZMTP frame header announcing a 2 GiB message, and a real ZeroMQ DEALER that takes a
// neighbour's routing id and sends malformed convergence-layer frames. The daemon must stay up,
// count and log what it rejected, and keep forwarding bundles. Method: two real daemons; raw TCP
// sockets speak hand-made ZMTP 3.0 (rfc.zeromq.org/spec/23: 64-byte greeting, NULL mechanism
// READY command, then frames of flags + 1- or 8-byte size); the random bytes come from a seeded
// generator whose seed is printed.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <set>
#include <zmq.hpp>

#include "live/live_net.h"

namespace ics::live {
namespace {

using Bytes = std::vector<std::uint8_t>;

// A raw TCP connection to 127.0.0.1:port.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    REQUIRE_MESSAGE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0,
                    fmt::format("connect 127.0.0.1:{}: {}", port, std::strerror(errno)));
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Writes what the peer accepts (it may have closed already: that is not an error here).
  void Write(const Bytes& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }
  // True once the peer has closed the connection (EOF or reset), reading and discarding what it
  // sends meanwhile (its greeting); false if it is still open after `timeout`.
  bool WaitClosedByPeer(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::uint8_t buffer[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return true;
    }
    return false;
  }

 private:
  int fd_ = -1;
};

// ZMTP 3.0 greeting: signature, version 3.0, mechanism "NULL", as-server 0, filler.
Bytes Greeting() {
  Bytes g{0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 0};
  const std::string mechanism = "NULL";
  for (std::size_t i = 0; i < 20; ++i) g.push_back(i < mechanism.size() ? static_cast<std::uint8_t>(mechanism[i]) : 0);
  g.push_back(0);
  g.resize(64, 0);
  return g;
}

// The NULL mechanism's READY command announcing a DEALER (short command frame).
Bytes Ready() {
  Bytes body{5, 'R', 'E', 'A', 'D', 'Y'};
  const std::string name = "Socket-Type", value = "DEALER";
  body.push_back(static_cast<std::uint8_t>(name.size()));
  body.insert(body.end(), name.begin(), name.end());
  for (int shift : {24, 16, 8, 0}) body.push_back(static_cast<std::uint8_t>(value.size() >> shift));
  body.insert(body.end(), value.begin(), value.end());
  Bytes frame{0x04, static_cast<std::uint8_t>(body.size())};
  frame.insert(frame.end(), body.begin(), body.end());
  return frame;
}

// A long message frame header (flags LONG, 8-byte big-endian size).
Bytes LongFrameHeader(std::uint64_t size) {
  Bytes h{0x02};
  for (int shift = 56; shift >= 0; shift -= 8) h.push_back(static_cast<std::uint8_t>(size >> shift));
  return h;
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Random(std::mt19937_64& rng, std::size_t size) {
  Bytes b(size);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  return b;
}

TEST_CASE("garbage: a node survives hostile bytes on its port, counts bad frames and keeps forwarding") {
  const double slow = Slowdown();
  const auto timeout = [slow](double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 * slow));
  };
  const std::uint64_t seed = std::random_device{}();
  MESSAGE("reproduce with seed=" << seed);
  std::mt19937_64 rng(seed);

  LiveNetOptions options;
  options.plan = test::AlwaysUpPlan({{1, 2, 0}});
  LiveNet net("garbage", options, {1, 2}, {{1, 2}});
  test::KeepUnlessPassed keep(net);
  net.StartAll();
  net.WaitLinksUp(timeout(10));
  const int port = net.port(2);

  auto transfer = [&](std::uint64_t n, const std::string& tag) {
    Child recv = net.Recv(2, "ipn:2.5", n, 30 * slow, tag);
    Child send = net.Send(1, "ipn:2.5", {"--count", std::to_string(n), "--size", "256"}, tag);
    auto sent = send.Wait(timeout(30));
    REQUIRE_MESSAGE((sent && sent->Success()), test::Tail(net.dir() / fmt::format("send-{}", tag)));
    auto received = recv.Wait(timeout(35));
    REQUIRE_MESSAGE((received && received->Success()),
                    fmt::format("{}: {}", tag, test::Tail(net.dir() / fmt::format("recv-{}.err", tag))));
    std::set<std::uint64_t> sequences;
    for (const auto& r : ReadReceived(net.dir() / fmt::format("recv-{}", tag))) sequences.insert(r.sequence);
    CHECK(sequences.size() == n);
  };
  transfer(20, "before");

  // 1. Random bytes on fresh connections: not even a ZMTP signature. A first byte other than 0xFF
  //    makes libzmq read ZMTP 1.0, so some of these connections stay open waiting for the rest of
  //    a "message": they are kept open (like a slow-loris) while the node must go on serving.
  std::vector<std::unique_ptr<RawConnection>> lingering;
  for (int i = 0; i < 16; ++i) {
    lingering.push_back(std::make_unique<RawConnection>(port));
    lingering.back()->Write(Random(rng, 1 + rng() % 4096));
  }
  // 2. Truncated greetings and frames: some connections drop, some stay open mid-frame.
  for (std::size_t cut : {std::size_t{5}, std::size_t{10}, std::size_t{11}, std::size_t{40}, std::size_t{63}}) {
    RawConnection c(port);
    Bytes g = Greeting();
    g.resize(cut);
    c.Write(g);
  }
  {
    Bytes partial = LongFrameHeader(1000);
    partial.resize(4);  // a long-size field cut short
    lingering.push_back(std::make_unique<RawConnection>(port));
    lingering.back()->Write(Concat({Greeting(), Ready(), partial}));
  }
  {
    lingering.push_back(std::make_unique<RawConnection>(port));
    lingering.back()->Write(Concat({Greeting(), Ready(), Bytes{0x00, 200}, Random(rng, 50)}));  // 200 announced, 50 sent
  }
  // 3. A well-formed handshake, then a frame announcing 2 GiB: the node must drop the connection
  //    before it allocates anything for it (ZMQ_MAXMSGSIZE).
  {
    RawConnection c(port);
    c.Write(Concat({Greeting(), Ready(), LongFrameHeader(std::uint64_t{2} << 30), Random(rng, 1024)}));
    CHECK_MESSAGE(c.WaitClosedByPeer(timeout(5)), "the node kept a connection announcing 2 GiB open");
  }
  // 4. A real DEALER posing as neighbour ipn:1, sending malformed convergence-layer frames.
  std::vector<Bytes> bad_frames;
  for (int i = 0; i < 5; ++i) {
    Bytes b = Random(rng, 1 + rng() % 300);
    b[0] = 0x00;  // never the frame magic
    bad_frames.push_back(std::move(b));
  }
  bad_frames.push_back({});                                        // empty
  bad_frames.push_back({0x49, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0});      // unknown version
  bad_frames.push_back({0x49, 1, 77, 0, 0, 0, 0, 0, 0, 0, 0});     // unknown type
  bad_frames.push_back({0x49, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF});  // ack cut inside the EID length
  bad_frames.push_back({0x49, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 'i'});  // EID longer than the frame
  bad_frames.push_back({0x49, 1, 3});                                // ping cut inside the header
  Bytes bad_bundle{0x49, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};             // a bundle frame ...
  const Bytes junk = Random(rng, 200);
  bad_bundle.insert(bad_bundle.end(), junk.begin(), junk.end());  // ... holding no bundle
  const json before = net.node(2).Counters();
  {
    ::zmq::context_t context;
    ::zmq::socket_t dealer(context, ::zmq::socket_type::dealer);
    dealer.set(::zmq::sockopt::linger, 0);
    dealer.set(::zmq::sockopt::routing_id, "ipn:1");
    dealer.connect(net.node(2).listen());
    for (const auto& f : bad_frames) dealer.send(::zmq::buffer(f), ::zmq::send_flags::none);
    dealer.send(::zmq::buffer(bad_bundle), ::zmq::send_flags::none);
    const std::uint64_t bad_before = before["link"]["bad_frames"].get<std::uint64_t>();
    const std::uint64_t malformed_before = before["bundles"]["malformed"].get<std::uint64_t>();
    json now;
    const bool counted = test::WaitUntil(
        [&] {
          now = net.node(2).Counters();
          return now["link"]["bad_frames"].get<std::uint64_t>() >= bad_before + bad_frames.size() &&
                 now["bundles"]["malformed"].get<std::uint64_t>() >= malformed_before + 1;
        },
        timeout(10), std::chrono::milliseconds(50));
    CHECK_MESSAGE(counted, fmt::format("counters after the impostor's frames: {}", now.dump()));
    CHECK(now["link"]["bad_frames"].get<std::uint64_t>() == bad_before + bad_frames.size());
  }

  // Still alive, and it said why it dropped each frame.
  REQUIRE(net.node(2).child().Running());
  std::size_t logged = 0;
  for (const auto& line : test::ReadLines(net.node(2).log_path())) {
    if (line.find("\"event\":\"bad-frame\"") != std::string::npos) {
      ++logged;
      auto j = ParseLine(line);
      REQUIRE(j.has_value());
      CHECK(!j->value("reason", std::string()).empty());
    }
  }
  CHECK(logged == bad_frames.size());

  // The real neighbour's link works again once the impostor is gone (while the connections that
  // sent garbage are still open).
  transfer(100, "after");
  const json after = net.node(2).Counters();
  MESSAGE(fmt::format("relay link counters at the end: {}", after["link"].dump()));
  MESSAGE(fmt::format("rover link counters at the end: {}", net.node(1).Counters()["link"].dump()));
  lingering.clear();
  REQUIRE(net.node(2).child().Running());
  REQUIRE(net.node(1).child().Running());
  keep.Passed();
}

}  // namespace
}  // namespace ics::live
