// Goal: the Node core does store-and-forward with hop-by-hop custody correctly: exactly-once
// delivery through relays under loss, duplication, reordering, partitions and restarts; expedited
// before bulk; retransmission 2 x OWLT + margin after a bundle has left the link; expiry; quota
// refusal; bad input refused.
// Method: Node cores wired back to back through the in-test link simulator (node_test_sim.h) or
// driven directly, all in simulated time (no sleeps), with hand-computed expected times; the
// randomized runs print their seed (reproduce with ICS_TEST_SEED=<seed>).
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bundle_store_test_util.h"
#include "dtn/codec.h"
#include "dtn/contact_plan.h"
#include "dtn/node.h"
#include "dtn/sqlite_bundle_store.h"
#include "node_test_sim.h"

namespace ics::dtn {
namespace {

using clock::DtnTime;
using clock::Duration;
using std::chrono::seconds;

const DtnTime kT0 = DtnTime::FromMillis(800'000'000'000);

NodeConfig Config(NodeNumber n) {
  NodeConfig c;
  c.node = n;
  c.retransmit_margin = seconds(2);
  c.owlt_if_no_range = seconds(1);
  return c;
}

// Node 1's link to node 2 for two hours from kT0, at `rate` bytes/s with `owlt` each way.
ContactPlan TwoHourLink(std::uint64_t rate, Duration owlt) {
  ContactPlan plan;
  plan.AddContact(Contact{kT0, kT0 + std::chrono::hours(2), 1, 2, rate});
  plan.AddRange(clock::RangeEntry{kT0, kT0 + std::chrono::hours(2), 1, 2, owlt});
  return plan;
}

SendRequest Request(const Eid& destination, Priority priority, std::uint8_t tag, Duration lifetime = std::chrono::hours(1)) {
  SendRequest r;
  r.destination = destination;
  r.priority = priority;
  r.lifetime = lifetime;
  r.payload = std::vector<std::uint8_t>(64, tag);
  return r;
}

std::vector<std::uint64_t> Seeds() {
  if (const char* s = std::getenv("ICS_TEST_SEED")) return {std::strtoull(s, nullptr, 10)};
  return {1, 2, 3, 4, 5};
}

std::vector<Transmit> Transmits(NodeOutput& out) {
  std::vector<Transmit> t;
  for (NodeAction& a : out.actions) {
    if (auto* x = std::get_if<Transmit>(&a)) t.push_back(*x);
  }
  return t;
}

std::size_t CountEvents(const std::vector<BundleEvent>& events, BundleEventKind kind) {
  std::size_t n = 0;
  for (const BundleEvent& e : events) n += e.kind == kind;
  return n;
}

// Checks that node `at` got each of `sent` exactly once, never flagged as a possible redelivery.
void CheckExactlyOnce(const test::Sim& sim, NodeNumber at, const std::vector<BundleId>& sent) {
  std::map<std::string, int> got;
  for (const test::SimDelivery& d : sim.deliveries()) {
    CHECK(d.node == at);
    CHECK_FALSE(d.deliver.possible_redelivery);
    ++got[d.deliver.id.ToString()];
  }
  CHECK(got.size() == sent.size());
  for (const BundleId& id : sent) CHECK_MESSAGE(got[id.ToString()] == 1, id.ToString());
}

TEST_CASE("node: three nodes deliver every bundle exactly once under loss, duplication and reordering") {
  for (std::uint64_t seed : Seeds()) {
    std::printf("node relay test: seed=%llu\n", static_cast<unsigned long long>(seed));
    CAPTURE(seed);
    test::Sim::Options options;
    options.owlt = seconds(5);
    options.loss = 0.2;
    options.duplicate = 0.15;
    options.jitter = seconds(3);
    test::Sim sim(seed, options, kT0);
    NodeConfig c1 = Config(1);
    c1.static_routes.Set(3, 2);
    c1.window_per_neighbour = 8;
    NodeConfig c2 = Config(2);
    c2.window_per_neighbour = 8;
    sim.Add(c1, std::make_unique<MemoryBundleStore>());
    sim.Add(c2, std::make_unique<MemoryBundleStore>());
    sim.Add(Config(3), std::make_unique<MemoryBundleStore>());
    sim.node(3).RegisterEndpoint(Eid::Ipn(3, 1), sim.now());
    sim.SetLink(1, 2, true);
    std::vector<BundleId> sent;
    for (int i = 0; i < 60; ++i) {
      const Priority p = static_cast<Priority>(i % 3);
      sent.push_back(sim.node(1).Send(Request(Eid::Ipn(3, 1), p, static_cast<std::uint8_t>(i)), sim.now()).value());
    }
    sim.RunFor(seconds(30));  // 2-3 not up yet: node 2 holds what it got
    CHECK(sim.deliveries().empty());
    sim.SetLink(2, 3, true);
    sim.RunFor(seconds(40));
    sim.SetLink(1, 2, false);  // a partition mid-stream
    sim.RunFor(seconds(120));
    sim.SetLink(1, 2, true);
    sim.RunFor(std::chrono::minutes(30));
    CheckExactlyOnce(sim, 3, sent);
    for (NodeNumber n : {1, 2, 3}) {
      CAPTURE(n);
      CHECK(sim.store(n).usage().bundles == 0);  // every custody released, every delivery confirmed
    }
    CHECK(sim.node(3).counters().delivered == 60);
    CHECK(sim.messages_lost() > 0);
  }
}

TEST_CASE("node: expedited bundles go first when a contact opens, then normal, then bulk, oldest first") {
  MemoryBundleStore store;
  NodeConfig c = Config(1);
  c.window_per_neighbour = 4;
  Node node(c, store);
  std::vector<BundleId> bulk, normal, expedited;
  for (int i = 0; i < 5; ++i) bulk.push_back(node.Send(Request(Eid::Ipn(2, 1), Priority::kBulk, 1), kT0).value());
  for (int i = 0; i < 2; ++i) normal.push_back(node.Send(Request(Eid::Ipn(2, 1), Priority::kNormal, 2), kT0).value());
  expedited.push_back(node.Send(Request(Eid::Ipn(2, 7), Priority::kExpedited, 3), kT0).value());
  REQUIRE(store.Commit());
  NodeOutput out = node.TakeOutput();
  CHECK(Transmits(out).empty());  // no contact: everything waits in the store
  CHECK(CountEvents(out.events, BundleEventKind::kStored) == 8);

  node.OnContactStart(2, kT0 + seconds(10));
  REQUIRE(store.Commit());
  out = node.TakeOutput();
  std::vector<Transmit> t = Transmits(out);
  REQUIRE(t.size() == 4);  // the window
  CHECK(t[0].id == expedited[0]);
  CHECK(t[0].priority == Priority::kExpedited);
  CHECK(t[1].id == normal[0]);
  CHECK(t[2].id == normal[1]);
  CHECK(t[3].id == bulk[0]);
  CHECK(node.in_flight(2) == 4);
  // The forwarded copy carries this node as previous node and one hop more.
  Bundle sent = Decode(t[0].bytes).value();
  CHECK(sent.previous_node() == Eid::Ipn(1, 0));
  CHECK(sent.hop_count() == HopCount{32, 1});

  // A new expedited bundle overtakes the queued bulk ones as soon as the window has room.
  const BundleId late = node.Send(Request(Eid::Ipn(2, 1), Priority::kExpedited, 4), kT0 + seconds(11)).value();
  node.OnAcknowledged(2, bulk[0], kT0 + seconds(12));
  REQUIRE(store.Commit());
  out = node.TakeOutput();
  t = Transmits(out);
  REQUIRE(t.size() == 1);
  CHECK(t[0].id == late);
}

TEST_CASE("node: a relay with a full window forwards later arrivals in later turns, updated; events are optional") {
  // The sender makes three bundles for ipn:3.1; relays A (events recorded) and B (not) take the
  // same input with a window of 1, so two arrivals wait for acknowledgements over later turns.
  MemoryBundleStore sender_store;
  Node sender(Config(1), sender_store);
  std::vector<BundleId> ids;
  for (std::uint8_t i = 0; i < 3; ++i) ids.push_back(sender.Send(Request(Eid::Ipn(3, 1), Priority::kNormal, i), kT0).value());
  sender.OnContactStart(3, kT0);  // only to produce the wire bytes, fed to the relays as from ipn:1
  REQUIRE(sender_store.Commit());
  NodeOutput sent = sender.TakeOutput();
  const std::vector<Transmit> wire = Transmits(sent);
  REQUIRE(wire.size() == 3);

  struct Relay {
    MemoryBundleStore store;
    std::unique_ptr<Node> node;
  };
  Relay a, b;
  NodeConfig ca = Config(2);
  ca.window_per_neighbour = 1;
  NodeConfig cb = ca;
  cb.record_events = false;
  a.node = std::make_unique<Node>(ca, a.store);
  b.node = std::make_unique<Node>(cb, b.store);
  std::vector<NodeOutput> outs_a, outs_b;
  auto turn = [&](auto&& feed) {
    for (Relay* r : {&a, &b}) {
      feed(*r->node);
      REQUIRE(r->store.Commit());
      (r == &a ? outs_a : outs_b).push_back(r->node->TakeOutput());
    }
  };
  turn([&](Node& n) {
    n.OnContactStart(3, kT0 + seconds(1));
    for (const Transmit& t : wire) n.OnBundleReceived(1, t.bytes, kT0 + seconds(1));
  });
  turn([&](Node& n) { n.OnAcknowledged(3, ids[0], kT0 + seconds(2)); });
  turn([&](Node& n) { n.OnAcknowledged(3, ids[1], kT0 + seconds(3)); });

  std::vector<Transmit> forwarded;
  for (std::size_t i = 0; i < outs_a.size(); ++i) {
    std::vector<Transmit> ta = Transmits(outs_a[i]), tb = Transmits(outs_b[i]);
    REQUIRE(ta.size() == 1);  // the window: one per turn
    REQUIRE(tb.size() == 1);
    CHECK(ta[0].id == ids[i]);
    CHECK(ta[0].bytes == tb[0].bytes);
    CHECK(outs_a[i].actions.size() == outs_b[i].actions.size());
    CHECK_FALSE(outs_a[i].events.empty());
    CHECK(outs_b[i].events.empty());
    forwarded.push_back(ta[0]);
  }
  CHECK(CountEvents(outs_a[0].events, BundleEventKind::kStored) == 3);
  CHECK(a.node->counters().stored == 3);
  CHECK(b.node->counters().stored == 3);
  CHECK(b.node->counters().acknowledged == 2);
  for (std::size_t i = 0; i < forwarded.size(); ++i) {
    const Bundle got = Decode(forwarded[i].bytes).value();
    CHECK(got.previous_node() == Eid::Ipn(2, 0));
    CHECK(got.hop_count() == HopCount{32, 2});  // one hop at the sender, one here
    CHECK(got.FindBlock(block_type::kPayload)->data == std::vector<std::uint8_t>(64, static_cast<std::uint8_t>(i)));
  }
}

TEST_CASE("node: the byte window bounds what is in flight, but one oversized bundle still goes") {
  auto run = [](std::uint64_t bytes_window, std::size_t sends) {
    MemoryBundleStore store;
    NodeConfig c = Config(1);
    c.window_per_neighbour = 100;
    c.window_bytes_per_neighbour = bytes_window;
    Node node(c, store);
    std::vector<BundleId> ids;
    for (std::size_t i = 0; i < sends; ++i) {
      ids.push_back(node.Send(Request(Eid::Ipn(2, 1), Priority::kNormal, static_cast<std::uint8_t>(i)), kT0).value());
    }
    node.OnContactStart(2, kT0);
    REQUIRE(store.Commit());
    NodeOutput out = node.TakeOutput();
    const std::size_t first = Transmits(out).size();
    node.OnAcknowledged(2, ids[0], kT0 + seconds(1));
    REQUIRE(store.Commit());
    out = node.TakeOutput();
    return std::pair{first, Transmits(out).size()};
  };
  // Every bundle here encodes to the same size s (same header fields, 64-byte payload).
  MemoryBundleStore sizing;
  Node sizer(Config(1), sizing);
  const std::uint64_t s = sizing.Find(sizer.Send(Request(Eid::Ipn(2, 1), Priority::kNormal, 0), kT0).value())->size_bytes;
  CHECK(run(0, 5) == std::pair<std::size_t, std::size_t>{5, 0});          // no byte bound
  CHECK(run(3 * s, 5) == std::pair<std::size_t, std::size_t>{3, 1});      // 3 fit; an ack frees one
  CHECK(run(3 * s + s / 2, 5) == std::pair<std::size_t, std::size_t>{3, 1});
  CHECK(run(s / 2, 3) == std::pair<std::size_t, std::size_t>{1, 1});      // oversized: one at a time
}

// The transmission time of `bytes` at `rate` bytes/s, rounded up to the millisecond.
Duration TxTime(std::size_t bytes, std::uint64_t rate) {
  return Duration(static_cast<std::int64_t>((bytes * 1000 + rate - 1) / rate));
}

TEST_CASE("node: bulk bundles filling the window do not hold back an expedited or normal bundle") {
  MemoryBundleStore store;
  NodeConfig c = Config(1);
  c.window_per_neighbour = 2;
  Node node(c, store);
  for (std::uint8_t i = 0; i < 3; ++i) REQUIRE(node.Send(Request(Eid::Ipn(2, 66), Priority::kBulk, i), kT0));
  node.OnContactStart(2, kT0);
  REQUIRE(store.Commit());
  NodeOutput out = node.TakeOutput();
  CHECK(Transmits(out).size() == 2);  // the bulk window is full; the third waits
  const BundleId urgent = node.Send(Request(Eid::Ipn(2, 1), Priority::kExpedited, 7), kT0 + Duration(1)).value();
  const BundleId normal = node.Send(Request(Eid::Ipn(2, 1), Priority::kNormal, 8), kT0 + Duration(1)).value();
  REQUIRE(store.Commit());
  out = node.TakeOutput();
  std::vector<Transmit> t = Transmits(out);
  REQUIRE(t.size() == 2);  // both go at once, the bulk one still waits
  CHECK(t[0].id == urgent);
  CHECK(t[1].id == normal);
  CHECK(node.in_flight(2) == 4);
  // The bulk class counts every bundle in flight: acknowledging the expedited and the normal one
  // leaves its two bulk bundles in flight, so the third keeps waiting.
  node.OnAcknowledged(2, urgent, kT0 + Duration(2));
  REQUIRE(store.Commit());
  CHECK(Transmits(out = node.TakeOutput()).empty());
  node.OnAcknowledged(2, normal, kT0 + Duration(3));
  REQUIRE(store.Commit());
  CHECK(Transmits(out = node.TakeOutput()).empty());
  CHECK(node.in_flight(2) == 2);
}

TEST_CASE("custody: retransmits after 2 x OWLT plus margin from the departure, doubling, until acknowledged") {
  const ContactPlan plan = TwoHourLink(100'000, seconds(10));
  MemoryBundleStore store;
  NodeConfig c = Config(1);
  c.plan = &plan;
  c.retransmit_margin = seconds(2);
  c.retransmit_cap = seconds(60);
  Node node(c, store);
  const BundleId id = node.Send(Request(Eid::Ipn(2, 1), Priority::kNormal, 1), kT0).value();
  node.OnContactStart(2, kT0);
  REQUIRE(store.Commit());
  NodeOutput out = node.TakeOutput();
  REQUIRE(Transmits(out).size() == 1);
  CHECK(Transmits(out)[0].attempt == 0);
  // The bundle leaves after its transmission time at 100,000 B/s (2 ms for its 101 to 200 bytes).
  const Duration tx = TxTime(Transmits(out)[0].bytes.size(), 100'000);
  CHECK(tx == Duration(2));
  // Departure + 2 x 10 s + 2 s.
  CHECK(node.NextDeadline() == kT0 + tx + seconds(22));
  node.OnTick(kT0 + tx + seconds(22) - Duration(1));
  REQUIRE(store.Commit());
  CHECK(Transmits(out = node.TakeOutput()).empty());
  const DtnTime first_timeout = kT0 + tx + seconds(22);
  node.OnTick(first_timeout);
  REQUIRE(store.Commit());
  out = node.TakeOutput();
  std::vector<Transmit> t = Transmits(out);
  REQUIRE(t.size() == 1);
  CHECK(t[0].id == id);
  CHECK(t[0].attempt == 1);
  CHECK(CountEvents(out.events, BundleEventKind::kRetransmitTimeout) == 1);
  const DtnTime second_timeout = first_timeout + TxTime(t[0].bytes.size(), 100'000) + seconds(44);  // doubled
  CHECK(node.NextDeadline() == second_timeout);
  node.OnTick(second_timeout);
  out = node.TakeOutput();
  REQUIRE(Transmits(out).size() == 1);
  // 88 s capped at 60 s.
  CHECK(node.NextDeadline() == second_timeout + TxTime(Transmits(out)[0].bytes.size(), 100'000) + seconds(60));
  node.OnAcknowledged(2, id, second_timeout + seconds(4));
  REQUIRE(store.Commit());
  out = node.TakeOutput();
  CHECK(CountEvents(out.events, BundleEventKind::kAcknowledged) == 1);
  CHECK(store.usage().bundles == 0);
  CHECK_FALSE(node.NextDeadline().has_value());
  CHECK(node.counters().retransmissions == 2);
}

TEST_CASE("custody: a bundle queued behind others on the link is not retransmitted before it leaves") {
  // Five 2,000-byte bulk bundles handed to a 1,000 B/s link at once leave one after the other,
  // about 2 s apart; the neighbour, 1 s away, acknowledges each as it arrives. The timeout is
  // 2 x 1 s + 2 s = 4 s from each bundle's own departure, so none times out. (Counted from the
  // hand-over, bundles 2 to 5 would all time out at 4 s, before some of them have even left.)
  constexpr std::uint64_t kRate = 1000;
  const ContactPlan plan = TwoHourLink(kRate, seconds(1));
  MemoryBundleStore store;
  NodeConfig c = Config(1);
  c.plan = &plan;
  c.retransmit_margin = seconds(2);
  Node node(c, store);
  for (std::uint8_t i = 0; i < 5; ++i) {
    SendRequest r = Request(Eid::Ipn(2, 66), Priority::kBulk, i, std::chrono::hours(2));
    r.payload.assign(2000, i);
    REQUIRE(node.Send(r, kT0));
  }
  node.OnContactStart(2, kT0);
  REQUIRE(store.Commit());
  NodeOutput out = node.TakeOutput();
  std::vector<Transmit> sent = Transmits(out);
  REQUIRE(sent.size() == 5);
  // Departures (bundle k has left once bundles 0..k have been transmitted) and acknowledgements.
  std::vector<std::pair<DtnTime, BundleId>> acks;
  DtnTime left = kT0;
  for (const Transmit& t : sent) {
    left += TxTime(t.bytes.size(), kRate);
    acks.emplace_back(left + seconds(2), t.id);  // there and back
  }
  CHECK(acks.back().first - kT0 > seconds(10));  // the last one leaves long after a 4 s timeout
  // The first deadline is the first bundle's departure + 4 s.
  CHECK(node.NextDeadline() == acks.front().first + seconds(2));
  // An expedited bundle handed over now waits for no bulk bundle: its timer starts after its own
  // transmission only.
  const BundleId urgent = node.Send(Request(Eid::Ipn(2, 1), Priority::kExpedited, 9), kT0 + Duration(10)).value();
  REQUIRE(store.Commit());
  out = node.TakeOutput();
  REQUIRE(Transmits(out).size() == 1);
  const Duration urgent_tx = TxTime(Transmits(out)[0].bytes.size(), kRate);
  CHECK(node.NextDeadline() == kT0 + Duration(10) + urgent_tx + seconds(4));
  node.OnAcknowledged(2, urgent, kT0 + Duration(10) + urgent_tx + seconds(2));
  for (const auto& [at, id] : acks) {
    node.OnTick(at - Duration(1));
    REQUIRE(store.Commit());
    out = node.TakeOutput();
    CHECK(Transmits(out).empty());
    CHECK(CountEvents(out.events, BundleEventKind::kRetransmitTimeout) == 0);
    node.OnAcknowledged(2, id, at);
    REQUIRE(store.Commit());
    out = node.TakeOutput();
  }
  CHECK(node.counters().retransmissions == 0);
  CHECK(node.counters().acknowledged == 6);
  CHECK(store.usage().bundles == 0);
}

TEST_CASE("custody: on a link faster than planned, the departure estimate never runs ahead of what is in flight") {
  // The plan says 1,000 B/s, but the neighbour acknowledges every 2,000-byte bundle 10 ms after
  // it is handed over (a faster link). The estimate of when each bundle leaves must not add up
  // the planned 2 s per bundle forever: it is bounded by the bytes actually in flight, so the
  // timer of the 50th bundle still runs from about one transmission time after its hand-over.
  constexpr std::uint64_t kRate = 1000;
  const ContactPlan plan = TwoHourLink(kRate, seconds(1));
  MemoryBundleStore store;
  NodeConfig c = Config(1);
  c.plan = &plan;
  c.retransmit_margin = seconds(2);
  c.window_per_neighbour = 1;
  Node node(c, store);
  node.OnContactStart(2, kT0);
  DtnTime now = kT0;
  Duration tx{0};
  for (std::uint8_t i = 0; i < 50; ++i) {
    SendRequest r = Request(Eid::Ipn(2, 66), Priority::kBulk, i, std::chrono::hours(2));
    r.payload.assign(2000, i);
    const BundleId id = node.Send(r, now).value();
    REQUIRE(store.Commit());
    NodeOutput out = node.TakeOutput();
    REQUIRE(Transmits(out).size() == 1);
    tx = TxTime(Transmits(out)[0].bytes.size(), kRate);
    // Alone in flight: it leaves one transmission time after the hand-over, and times out
    // 2 x 1 s + 2 s after that (50 x 2 s = 100 s later without the bound).
    CHECK(node.NextDeadline() == now + tx + seconds(4));
    now += Duration(10);
    node.OnAcknowledged(2, id, now);
    REQUIRE(store.Commit());
    node.TakeOutput();
  }
  CHECK(tx > seconds(2));
  CHECK(node.counters().retransmissions == 0);
}

TEST_CASE("node: bundles expire during a partition and are never sent after") {
  MemoryBundleStore store;
  Node node(Config(1), store);
  const BundleId id = node.Send(Request(Eid::Ipn(2, 1), Priority::kNormal, 1, seconds(60)), kT0).value();
  REQUIRE(store.Commit());
  (void)node.TakeOutput();
  CHECK(node.NextDeadline() == kT0 + seconds(60));
  node.OnTick(kT0 + seconds(60));
  REQUIRE(store.Commit());
  NodeOutput out = node.TakeOutput();
  REQUIRE(CountEvents(out.events, BundleEventKind::kExpired) == 1);
  CHECK(out.events.back().id == id);
  CHECK(store.usage().bundles == 0);
  node.OnContactStart(2, kT0 + seconds(61));
  CHECK(Transmits(out = node.TakeOutput()).empty());
  CHECK(node.counters().expired == 1);
}

TEST_CASE("node: a full store refuses with a clear status, unacknowledged, and accepts once there is room") {
  test::Sim::Options options;
  options.owlt = seconds(1);
  test::Sim sim(7, options, kT0);
  sim.Add(Config(1), std::make_unique<MemoryBundleStore>());
  sim.Add(Config(2), std::make_unique<MemoryBundleStore>(StoreLimits{2, 1 << 20}));
  std::vector<BundleId> sent;
  for (int i = 0; i < 3; ++i) {
    sent.push_back(sim.node(1).Send(Request(Eid::Ipn(2, 1), Priority::kNormal, static_cast<std::uint8_t>(i)), sim.now()).value());
  }
  sim.SetLink(1, 2, true);
  sim.RunFor(seconds(3));
  CHECK(sim.store(2).usage().bundles == 2);
  CHECK(sim.store(1).usage().bundles == 1);  // the third stays with its sender
  std::size_t quota_refusals = 0;
  for (const BundleEvent& e : sim.events()) {
    if (e.kind == BundleEventKind::kRefused && e.reason == RefusalReason::kQuotaBundles) {
      ++quota_refusals;
      CHECK(e.id == sent[2]);
      CHECK(FormatEvent(e).find("quota-bundles") != std::string::npos);
    }
  }
  CHECK(quota_refusals >= 1);
  sim.node(2).RegisterEndpoint(Eid::Ipn(2, 1), sim.now());  // deliveries free the store
  sim.RunFor(std::chrono::minutes(5));
  CheckExactlyOnce(sim, 2, sent);
  CHECK(sim.store(1).usage().bundles == 0);
}

TEST_CASE("node: malformed bytes are refused, counted and reported; duplicates acknowledged, not stored") {
  MemoryBundleStore store;
  Node node(Config(2), store);
  const std::vector<std::uint8_t> garbage = {0x9f, 0x88, 0x07, 0x00, 0xff};
  node.OnBundleReceived(1, garbage, kT0);
  NodeOutput out = node.TakeOutput();
  CHECK(out.actions.empty());
  REQUIRE(out.events.size() == 1);
  CHECK(out.events[0].kind == BundleEventKind::kRefused);
  CHECK(out.events[0].reason == RefusalReason::kMalformed);
  CHECK_FALSE(out.events[0].detail.empty());
  CHECK(node.counters().malformed == 1);

  test::TestBundle b = test::MakeTestBundle(1, kT0.millis(), 9, Eid::Ipn(3, 1), Priority::kBulk, kT0.millis() + 60'000);
  node.OnBundleReceived(1, b.bytes, kT0);
  node.OnBundleReceived(1, b.bytes, kT0 + Duration(5));
  REQUIRE(store.Commit());
  out = node.TakeOutput();
  std::size_t acks = 0;
  for (const NodeAction& a : out.actions) acks += std::holds_alternative<Acknowledge>(a);
  CHECK(acks == 2);
  CHECK(CountEvents(out.events, BundleEventKind::kDuplicate) == 1);
  CHECK(store.usage().bundles == 1);

  test::TestBundle old = test::MakeTestBundle(1, kT0.millis() - 10'000, 1, Eid::Ipn(3, 1), Priority::kBulk, kT0.millis());
  node.OnBundleReceived(1, old.bytes, kT0 + Duration(6));
  out = node.TakeOutput();
  CHECK(out.actions.empty());
  CHECK(out.events.back().reason == RefusalReason::kExpired);
}

TEST_CASE("node: a relay restarted from its SQLite store mid-stream loses nothing and duplicates nothing") {
  for (std::uint64_t seed : Seeds()) {
    std::printf("node restart test: seed=%llu\n", static_cast<unsigned long long>(seed));
    CAPTURE(seed);
    test::TempDir dir;
    test::Sim::Options options;
    options.owlt = seconds(2);
    options.loss = 0.1;
    options.duplicate = 0.1;
    options.jitter = seconds(1);
    test::Sim sim(seed, options, kT0);
    NodeConfig c1 = Config(1);
    c1.static_routes.Set(3, 2);
    auto open = [&](const std::string& name) {
      return SqliteBundleStore::Open(dir.File(name), SqliteBundleStoreOptions{{}, storage::Durability::kOff}).value();
    };
    sim.Add(c1, open("n1.db"), dir.File("n1.db"));
    sim.Add(Config(2), open("n2.db"), dir.File("n2.db"));
    sim.Add(Config(3), open("n3.db"), dir.File("n3.db"));
    sim.node(3).RegisterEndpoint(Eid::Ipn(3, 1), sim.now());
    sim.SetLink(1, 2, true);
    sim.SetLink(2, 3, true);
    std::vector<BundleId> sent;
    for (int i = 0; i < 40; ++i) {
      sent.push_back(sim.node(1).Send(Request(Eid::Ipn(3, 1), static_cast<Priority>(i % 3), 1), sim.now()).value());
    }
    sim.RunFor(seconds(5));
    sim.Restart(2, {});
    sim.RunFor(seconds(7));
    sim.Restart(3, {Eid::Ipn(3, 1)});
    sim.RunFor(seconds(3));
    sim.Restart(1, {});
    for (int i = 0; i < 10; ++i) {
      sent.push_back(sim.node(1).Send(Request(Eid::Ipn(3, 1), Priority::kNormal, 2), sim.now()).value());
    }
    sim.RunFor(std::chrono::minutes(30));
    CheckExactlyOnce(sim, 3, sent);
    // The creation sequence continued across node 1's restart.
    CHECK(sent[40].created.sequence == 40);
    for (NodeNumber n : {1, 2, 3}) CHECK(sim.store(n).usage().bundles == 0);
  }
}

TEST_CASE("node: a restart redelivers only unconfirmed deliveries, flagged as possible redeliveries") {
  test::TempDir dir;
  const std::string path = dir.File("n2.db");
  test::TestBundle a = test::MakeTestBundle(1, kT0.millis(), 1, Eid::Ipn(2, 1), Priority::kNormal, kT0.millis() + 600'000);
  test::TestBundle b = test::MakeTestBundle(1, kT0.millis(), 2, Eid::Ipn(2, 1), Priority::kNormal, kT0.millis() + 600'000);
  {
    auto store = SqliteBundleStore::Open(path).value();
    Node node(Config(2), *store);
    node.RegisterEndpoint(Eid::Ipn(2, 1), kT0);
    node.OnBundleReceived(1, a.bytes, kT0);
    node.OnBundleReceived(1, b.bytes, kT0);
    // Delivered in the turn they arrive: each is stored already marked delivered (one write each,
    // no separate mark).
    CHECK(store->staged() == 2);
    REQUIRE(store->Commit());
    NodeOutput out = node.TakeOutput();
    std::vector<Deliver> d;
    for (NodeAction& x : out.actions) {
      if (auto* y = std::get_if<Deliver>(&x)) d.push_back(*y);
    }
    REQUIRE(d.size() == 2);
    CHECK(d[0].id == a.info.id);  // order of arrival
    CHECK_FALSE(d[0].possible_redelivery);
    node.ConfirmDelivery(Eid::Ipn(2, 1), a.info.id, kT0 + Duration(1));
    REQUIRE(store->Commit());
    // Crash: b delivered but not confirmed.
  }
  auto store = SqliteBundleStore::Open(path).value();
  Node node(Config(2), *store);
  node.OnBundleReceived(1, a.bytes, kT0 + Duration(2));  // a copy of the confirmed one arrives again
  node.RegisterEndpoint(Eid::Ipn(2, 1), kT0 + Duration(3));
  REQUIRE(store->Commit());
  NodeOutput out = node.TakeOutput();
  std::vector<Deliver> d;
  for (NodeAction& x : out.actions) {
    if (auto* y = std::get_if<Deliver>(&x)) d.push_back(*y);
  }
  REQUIRE(d.size() == 1);
  CHECK(d[0].id == b.info.id);
  CHECK(d[0].possible_redelivery);
  CHECK(CountEvents(out.events, BundleEventKind::kDuplicate) == 1);
}

TEST_CASE("node: an application send to a local endpoint is delivered once registered") {
  MemoryBundleStore store;
  Node node(Config(5), store);
  const BundleId id = node.Send(Request(Eid::Ipn(5, 3), Priority::kExpedited, 9), kT0).value();
  CHECK(id.source == Eid::Ipn(5, 0));
  CHECK(id.created.time == kT0);
  CHECK(node.Send(Request(Eid::None(), Priority::kNormal, 1), kT0).error() == SendError::kBadDestination);
  CHECK(node.Send(Request(Eid::Ipn(5, 3), Priority::kNormal, 1, Duration(0)), kT0).error() == SendError::kBadLifetime);
  REQUIRE(store.Commit());
  CHECK(node.TakeOutput().actions.empty());
  node.RegisterEndpoint(Eid::Ipn(5, 3), kT0 + Duration(1));
  REQUIRE(store.Commit());
  NodeOutput out = node.TakeOutput();
  REQUIRE(out.actions.size() == 1);
  const Deliver& d = std::get<Deliver>(out.actions[0]);
  CHECK(d.id == id);
  CHECK(d.payload == std::vector<std::uint8_t>(64, 9));
  CHECK(d.priority == Priority::kExpedited);
  node.ConfirmDelivery(Eid::Ipn(5, 3), id, kT0 + Duration(2));
  CHECK(store.usage().bundles == 0);
}

}  // namespace
}  // namespace ics::dtn

namespace ics::dtn {
namespace {

TEST_CASE("node: a stored bundle whose segment bytes are damaged is dropped, not a store failure") {
  // A store failure stops the daemon, and after a restart the same damaged record would stop it
  // again; the bundle's bytes are gone either way, so the node drops that one and goes on.
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  std::vector<BundleId> ids;
  {
    auto store = SqliteBundleStore::Open(path);
    REQUIRE(store);
    Node node(Config(1), **store);
    for (std::uint8_t tag : {1, 2}) {
      SendRequest r = Request(Eid::Ipn(2, 1), Priority::kNormal, tag);
      r.payload.assign(20'000, tag);  // large enough for a segment record
      ids.push_back(node.Send(r, kT0).value());
    }
    REQUIRE((*store)->Commit());
    REQUIRE((*store)->segment_files() == 1);
  }
  {
    // One byte inside the first record's bundle (after its 16-byte record header).
    std::FILE* f = std::fopen((path + ".segments/00000001.seg").c_str(), "r+b");
    REQUIRE(f != nullptr);
    REQUIRE(std::fseek(f, 16 + 1000, SEEK_SET) == 0);
    const int byte = std::fgetc(f);
    REQUIRE(std::fseek(f, 16 + 1000, SEEK_SET) == 0);
    std::fputc(byte ^ 0x5a, f);
    std::fclose(f);
  }
  auto store = SqliteBundleStore::Open(path);
  REQUIRE(store);
  Node node(Config(1), **store);
  node.OnContactStart(2, kT0 + seconds(1));
  REQUIRE((*store)->Commit());
  NodeOutput out = node.TakeOutput();
  CHECK_FALSE(node.store_error());
  std::vector<Transmit> t = Transmits(out);
  REQUIRE(t.size() == 1);
  CHECK(t[0].id == ids[1]);
  bool dropped = false;
  for (const BundleEvent& e : out.events) {
    if (e.kind == BundleEventKind::kDropped && e.id == ids[0]) {
      dropped = true;
      CHECK(e.reason == RefusalReason::kMalformed);
      CHECK(e.detail.find("stored copy unreadable") == 0);
      CHECK(e.detail.find("CRC-32C mismatch") != std::string::npos);
    }
  }
  CHECK(dropped);
  CHECK((*store)->usage().bundles == 1);
}

}  // namespace
}  // namespace ics::dtn
