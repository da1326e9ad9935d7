// The ZeroMQ convergence layer: frame parsing on hostile input, and two real LinkSets on
// 127.0.0.1 exchanging bundles, acks and heartbeats. Sockets are real; waits are bounded loops
// that poll until the expected event arrives, never fixed sleeps.
#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>
#include <zmq.hpp>

#include "dtn/zmq/frame.h"
#include "dtn/zmq/link_set.h"

namespace {

using namespace ics;
using namespace ics::dtn::zmq;
using Clock = std::chrono::steady_clock;

LinkSetConfig Config(NodeNumber self, int port, std::map<NodeNumber, int> neighbours) {
  LinkSetConfig c;
  c.self = self;
  c.listen = fmt::format("tcp://127.0.0.1:{}", port);
  for (auto [node, p] : neighbours) c.neighbours[node] = fmt::format("tcp://127.0.0.1:{}", p);
  c.ping_interval = std::chrono::milliseconds(20);
  return c;
}

int FreePortBase() {
  // Spread test runs over a port range so parallel CTest jobs do not collide.
  std::random_device rd;
  return 30000 + static_cast<int>(rd() % 20000);
}

// Polls both link sets until `done` holds or 5 s pass; returns the events seen on each.
template <typename Pred>
bool PumpUntil(LinkSet& a, LinkSet& b, std::vector<LinkEvent>& ea, std::vector<LinkEvent>& eb, Pred done) {
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    std::vector<zmq::pollitem_t> items;
    a.AppendPollItems(items);
    b.AppendPollItems(items);
    zmq::poll(items, std::chrono::milliseconds(10));
    const auto now = Clock::now();
    const auto mission = clock::DtnTime::FromMillis(1000);
    a.Receive(mission, now, ea);
    b.Receive(mission, now, eb);
    a.Heartbeat(mission, now, ea);
    b.Heartbeat(mission, now, eb);
    if (done()) return true;
  }
  return false;
}

bool Has(const std::vector<LinkEvent>& events, LinkEvent::Kind kind) {
  for (const auto& e : events)
    if (e.kind == kind) return true;
  return false;
}

}  // namespace

TEST_CASE("link frames: ack round trip keeps the bundle id") {
  AckFrame ack;
  ack.sent = clock::DtnTime::FromMillis(123456);
  ack.status = AckStatus::kDuplicate;
  ack.id.source = dtn::Eid::Ipn(2, 7);
  ack.id.created = {clock::DtnTime::FromMillis(815000000123), 42};
  auto parsed = ParseFrame(MakeAckFrame(ack));
  REQUIRE(parsed);
  auto* got = std::get_if<AckFrame>(&*parsed);
  REQUIRE(got != nullptr);
  CHECK(got->sent == ack.sent);
  CHECK(got->status == AckStatus::kDuplicate);
  CHECK(got->id == ack.id);
}

TEST_CASE("link frames: every truncation of an ack is refused with the offset named") {
  AckFrame ack;
  ack.id.source = dtn::Eid::Ipn(9, 1);
  ack.id.fragment_offset = 10;
  ack.id.fragment_length = 20;
  const auto bytes = MakeAckFrame(ack);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto parsed = ParseFrame(std::span(bytes.data(), n));
    CHECK_FALSE(parsed);
    if (!parsed) CHECK(parsed.error().find("bad frame at byte") == 0);
  }
  CHECK(ParseFrame(bytes));
}

namespace {

AckFrame AckOf(dtn::Eid source, std::int64_t created_ms, std::uint64_t seq, AckStatus status = AckStatus::kStored) {
  AckFrame a;
  a.status = status;
  a.id.source = std::move(source);
  a.id.created = {clock::DtnTime::FromMillis(created_ms), seq};
  return a;
}

}  // namespace

TEST_CASE("link frames: an acks frame carries every bundle id, status and fragment in order") {
  std::vector<AckFrame> acks{AckOf(dtn::Eid::Ipn(1, 1), 1000, 0), AckOf(dtn::Eid::Ipn(1, 1), 1000, 1),
                             AckOf(dtn::Eid::Ipn(3, 2), 2000, 7, AckStatus::kDuplicate)};
  acks[1].id.fragment_offset = 100;
  acks[1].id.fragment_length = 50;
  const auto bytes = MakeAcksFrame(clock::DtnTime::FromMillis(555), acks);
  // header 11 + count 2 + (20 + "ipn:1.1") + (20 + 7 + 16 fragment) + (20 + "ipn:3.2")
  CHECK(bytes.size() == 11 + 2 + 27 + 43 + 27);
  CHECK(bytes[2] == 5);
  auto parsed = ParseFrame(bytes);
  REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error()));
  auto* got = std::get_if<AcksFrame>(&*parsed);
  REQUIRE(got != nullptr);
  CHECK(got->sent == clock::DtnTime::FromMillis(555));
  REQUIRE(got->acks.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(got->acks[i].id == acks[i].id);
    CHECK(got->acks[i].status == acks[i].status);
    CHECK(got->acks[i].sent == clock::DtnTime::FromMillis(555));
  }
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto cut = ParseFrame(std::span(bytes.data(), n));
    CHECK_FALSE(cut);
    if (!cut) CHECK(cut.error().find("bad frame at byte") == 0);
  }
  auto longer = bytes;
  longer.push_back(0);
  CHECK_FALSE(ParseFrame(longer));
}

TEST_CASE("link frames: an acks frame whose count is zero, over the limit or beyond its bytes is refused") {
  const std::vector<AckFrame> one{AckOf(dtn::Eid::Ipn(1, 1), 1000, 0)};
  auto bytes = MakeAcksFrame(clock::DtnTime::FromMillis(1), one);
  auto with_count = [&](std::uint16_t count) {
    auto b = bytes;
    b[11] = static_cast<std::uint8_t>(count >> 8);
    b[12] = static_cast<std::uint8_t>(count);
    return ParseFrame(b);
  };
  CHECK(with_count(1));
  auto zero = with_count(0);
  REQUIRE_FALSE(zero);
  CHECK(zero.error().find("ack count 0 out of range") != std::string::npos);
  auto huge = with_count(static_cast<std::uint16_t>(kMaxAcksPerFrame + 1));
  REQUIRE_FALSE(huge);
  CHECK(huge.error().find("out of range") != std::string::npos);
  // 2 entries need at least 40 bytes; the frame has 27 after the count: refused before reserving.
  auto two = with_count(2);
  REQUIRE_FALSE(two);
  CHECK(two.error().find("exceeds the frame") != std::string::npos);
}

TEST_CASE("link frames: random bytes never crash the parser") {
  const unsigned seed = std::random_device{}();
  INFO("seed=" << seed);
  std::mt19937 rng(seed);
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::uint8_t> bytes(rng() % 64);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    if (!bytes.empty() && rng() % 2) bytes[0] = kFrameMagic;
    if (bytes.size() > 1 && rng() % 2) bytes[1] = kFrameVersion;
    (void)ParseFrame(bytes);
  }
}

TEST_CASE("link set: heartbeats bring the link up, bundles are acked over the same connection") {
  zmq::context_t ctx;
  const int base = FreePortBase();
  LinkSetConfig ca = Config(1, base, {{2, base + 1}});
  LinkSetConfig cb = Config(2, base + 1, {{1, base}});
  auto a = LinkSet::Create(ctx, ca);
  auto b = LinkSet::Create(ctx, cb);
  REQUIRE_MESSAGE(a, (a ? "" : a.error()));
  REQUIRE_MESSAGE(b, (b ? "" : b.error()));
  std::vector<LinkEvent> ea, eb;
  REQUIRE(PumpUntil(**a, **b, ea, eb, [&] { return (*a)->IsUp(2) && (*b)->IsUp(1); }));
  CHECK(Has(ea, LinkEvent::Kind::kUp));

  const std::vector<std::uint8_t> bundle{0x9f, 0x01, 0x02, 0xff};
  REQUIRE((*a)->SendBundle(2, clock::DtnTime::FromMillis(77), bundle) == SendResult::kSent);
  REQUIRE(PumpUntil(**a, **b, ea, eb, [&] { return Has(eb, LinkEvent::Kind::kBundle); }));
  const LinkEvent* got = nullptr;
  for (const auto& e : eb)
    if (e.kind == LinkEvent::Kind::kBundle) got = &e;
  REQUIRE(got != nullptr);
  CHECK(got->peer == 1);
  CHECK(got->sent == clock::DtnTime::FromMillis(77));
  CHECK(std::ranges::equal(got->bundle(), bundle));

  AckFrame ack;
  ack.sent = clock::DtnTime::FromMillis(78);
  ack.id.source = dtn::Eid::Ipn(1, 1);
  REQUIRE((*b)->SendAck(1, ack) == SendResult::kSent);
  REQUIRE(PumpUntil(**a, **b, ea, eb, [&] { return Has(ea, LinkEvent::Kind::kAck); }));
  for (const auto& e : ea)
    if (e.kind == LinkEvent::Kind::kAck) CHECK(e.ack.id == ack.id);

  // 5,000 acks at once, 27 bytes each: split into frames of at most kMaxAcksFrameBytes (2,427
  // acks each: 13 + 2,427 x 27 <= 65,536), all arrive in order.
  std::vector<AckFrame> many;
  for (std::uint64_t i = 0; i < 5000; ++i) many.push_back(AckOf(dtn::Eid::Ipn(1, 1), 2000, i));
  REQUIRE((*b)->SendAcks(1, clock::DtnTime::FromMillis(79), many) == SendResult::kSent);
  std::vector<dtn::BundleId> acked;
  std::size_t frames = 0;
  REQUIRE(PumpUntil(**a, **b, ea, eb, [&] {
    for (auto& e : ea) {
      if (e.kind != LinkEvent::Kind::kAcks) continue;
      ++frames;
      for (const auto& one : e.acks) acked.push_back(one.id);
      e.kind = LinkEvent::Kind::kUp;  // counted
    }
    return acked.size() >= many.size();
  }));
  CHECK(frames == 3);
  REQUIRE(acked.size() == many.size());
  for (std::size_t i = 0; i < many.size(); ++i) CHECK(acked[i] == many[i].id);
}

TEST_CASE("link set: acks frames larger than a small bundle limit still arrive") {
  // Nodes run with a small --max-bundle-bytes: the dealer that receives acks must still take an
  // acks frame cut at kMaxAcksFrameBytes (ZeroMQ drops the connection on an oversized message).
  zmq::context_t ctx;
  const int base = FreePortBase();
  LinkSetConfig ca = Config(1, base, {{2, base + 1}});
  LinkSetConfig cb = Config(2, base + 1, {{1, base}});
  ca.max_frame_bytes = cb.max_frame_bytes = 4096;
  auto a = LinkSet::Create(ctx, ca);
  auto b = LinkSet::Create(ctx, cb);
  REQUIRE(a);
  REQUIRE(b);
  std::vector<LinkEvent> ea, eb;
  REQUIRE(PumpUntil(**a, **b, ea, eb, [&] { return (*a)->IsUp(2) && (*b)->IsUp(1); }));
  // 3,000 acks of 27 bytes: two frames, the first about 64 KiB, 16 times the bundle limit.
  std::vector<AckFrame> many;
  for (std::uint64_t i = 0; i < 3000; ++i) many.push_back(AckOf(dtn::Eid::Ipn(1, 1), 2000, i));
  REQUIRE((*b)->SendAcks(1, clock::DtnTime::FromMillis(79), many) == SendResult::kSent);
  std::size_t acked = 0;
  REQUIRE(PumpUntil(**a, **b, ea, eb, [&] {
    for (auto& e : ea) {
      if (e.kind != LinkEvent::Kind::kAcks) continue;
      acked += e.acks.size();
      e.kind = LinkEvent::Kind::kUp;  // counted
    }
    return acked >= many.size();
  }));
  CHECK(acked == many.size());
  CHECK((*a)->IsUp(2));
}

TEST_CASE("link set: a dead neighbour is reported down, and sends back-pressure instead of queueing") {
  zmq::context_t ctx;
  const int base = FreePortBase();
  LinkSetConfig ca = Config(1, base, {{2, base + 1}});
  LinkSetConfig cb = Config(2, base + 1, {{1, base}});
  auto a = LinkSet::Create(ctx, ca);
  REQUIRE(a);
  std::vector<LinkEvent> ea, eb;
  {
    auto b = LinkSet::Create(ctx, cb);
    REQUIRE(b);
    REQUIRE(PumpUntil(**a, **b, ea, eb, [&] { return (*a)->IsUp(2); }));
  }  // b closes: its sockets go away with linger 0
  auto idle = LinkSet::Create(ctx, Config(3, base + 2, {}));
  REQUIRE(idle);
  ea.clear();
  REQUIRE(PumpUntil(**a, **idle, ea, eb, [&] { return !(*a)->IsUp(2); }));
  CHECK(Has(ea, LinkEvent::Kind::kDown));
  // With ZMQ_IMMEDIATE nothing queues towards a missing connection once it has dropped.
  REQUIRE(PumpUntil(**a, **idle, ea, eb, [&] {
    return (*a)->SendBundle(2, clock::DtnTime(), std::vector<std::uint8_t>{1, 2, 3}) == SendResult::kWouldBlock;
  }));
}

TEST_CASE("link set: garbage on the port and frames from strangers are dropped and counted") {
  zmq::context_t ctx;
  const int base = FreePortBase();
  LinkSetConfig ca = Config(1, base, {{2, base + 1}});
  ca.max_frame_bytes = 4096;
  auto a = LinkSet::Create(ctx, ca);
  REQUIRE(a);
  // A stranger (routing id of a node that is not a neighbour) and a neighbour sending garbage.
  zmq::socket_t stranger(ctx, zmq::socket_type::dealer);
  stranger.set(zmq::sockopt::linger, 0);
  stranger.set(zmq::sockopt::routing_id, "ipn:99");
  stranger.connect(ca.listen);
  zmq::socket_t liar(ctx, zmq::socket_type::dealer);
  liar.set(zmq::sockopt::linger, 0);
  liar.set(zmq::sockopt::routing_id, "ipn:2");
  liar.connect(ca.listen);
  stranger.send(zmq::str_buffer("hello"));
  liar.send(zmq::str_buffer("\x49\x01\x07garbage"));
  std::vector<std::uint8_t> big(8192, 0x49);
  liar.send(zmq::buffer(big));  // over max_frame_bytes: libzmq drops the connection, not the node
  std::vector<LinkEvent> ea;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline &&
         ((*a)->counters().unknown_peer_frames < 1 || (*a)->counters().bad_frames < 1)) {
    std::vector<zmq::pollitem_t> items;
    (*a)->AppendPollItems(items);
    zmq::poll(items, std::chrono::milliseconds(10));
    (*a)->Receive(clock::DtnTime(), Clock::now(), ea);
  }
  CHECK((*a)->counters().unknown_peer_frames >= 1);
  CHECK((*a)->counters().bad_frames >= 1);
  CHECK(Has(ea, LinkEvent::Kind::kBadFrame));
}
