// A tiny link simulator for the node tests: Node cores wired back to back, driven by explicit
// simulated time, with per-message loss, duplication and delay jitter (reordering) from a seeded
// generator. It is the driver: it commits each store BEFORE performing the node's actions.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "dtn/bundle_store.h"
#include "dtn/node.h"
#include "dtn/sqlite_bundle_store.h"

namespace ics::dtn::test {

struct SimDelivery {
  NodeNumber node;
  Deliver deliver;
};

class Sim {
 public:
  struct Options {
    clock::Duration owlt{1000};
    double loss = 0.0;         // probability a message (bundle or ack) is lost
    double duplicate = 0.0;    // probability a message is delivered twice
    clock::Duration jitter{0}; // extra delay, uniform in [0, jitter]: reorders messages
    bool auto_confirm = true;  // the applications confirm every delivery at once
  };

  Sim(std::uint64_t seed, Options options, clock::DtnTime start)
      : rng_(seed), options_(options), now_(start) {}

  // A node over `store`. `sqlite_path` (optional) lets Restart() reopen it.
  Node& Add(NodeConfig config, std::unique_ptr<BundleStore> store, std::string sqlite_path = {}) {
    const NodeNumber n = config.node;
    Member& m = nodes_[n];
    m.config = config;
    m.store = std::move(store);
    m.sqlite_path = std::move(sqlite_path);
    m.node = std::make_unique<Node>(config, *m.store);
    return *m.node;
  }
  Node& node(NodeNumber n) { return *nodes_.at(n).node; }
  BundleStore& store(NodeNumber n) { return *nodes_.at(n).store; }
  clock::DtnTime now() const { return now_; }
  const std::vector<SimDelivery>& deliveries() const { return deliveries_; }
  std::vector<BundleEvent>& events() { return events_; }

  // Link a<->b usable or not (both directions; both nodes are told).
  void SetLink(NodeNumber a, NodeNumber b, bool up) {
    auto key = std::minmax(a, b);
    if (up) {
      links_.insert(key);
      node(a).OnContactStart(b, now_);
      node(b).OnContactStart(a, now_);
    } else {
      links_.erase(key);
      node(a).OnContactEnd(b, now_);
      node(b).OnContactEnd(a, now_);
    }
  }
  bool LinkUp(NodeNumber a, NodeNumber b) const { return links_.contains(std::minmax(a, b)); }

  // Destroys node n (its Node and store: as a crash after the last commit) and reopens it from
  // its SQLite file; its open links are announced again, endpoints re-registered.
  void Restart(NodeNumber n, const std::vector<Eid>& endpoints) {
    Member& m = nodes_.at(n);
    REQUIRE(!m.sqlite_path.empty());
    m.node.reset();
    m.store.reset();
    auto store = SqliteBundleStore::Open(m.sqlite_path, SqliteBundleStoreOptions{{}, storage::Durability::kOff});
    REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error().message));
    m.store = std::move(*store);
    m.node = std::make_unique<Node>(m.config, *m.store);
    for (const auto& [a, b] : links_) {
      if (a == n) m.node->OnContactStart(b, now_);
      if (b == n) m.node->OnContactStart(a, now_);
    }
    for (const Eid& e : endpoints) m.node->RegisterEndpoint(e, now_);
    Pump();
  }

  // Commits every store, then performs every node's actions, until no node has output.
  void Pump() {
    for (int round = 0; round < 10'000; ++round) {
      bool any = false;
      for (auto& [n, m] : nodes_) {
        auto committed = m.store->Commit();
        REQUIRE_MESSAGE(committed.has_value(), (committed ? "" : committed.error().message));
        NodeOutput out = m.node->TakeOutput();
        // Anything the dispatch staged (a hop-limit drop) is committed with the next round.
        if (out.empty()) continue;
        any = true;
        for (BundleEvent& e : out.events) events_.push_back(std::move(e));
        for (NodeAction& a : out.actions) Perform(n, std::move(a));
      }
      if (!any) return;
    }
    FAIL("Pump: the nodes never went quiet");
  }

  // Runs events in time order up to `until`: message arrivals and node deadlines.
  void RunUntil(clock::DtnTime until) {
    Pump();
    while (true) {
      std::optional<clock::DtnTime> next;
      if (!in_transit_.empty()) next = clock::DtnTime::FromMillis(in_transit_.begin()->first.first);
      for (auto& [n, m] : nodes_) {
        if (auto d = m.node->NextDeadline(); d && (!next || *d < *next)) next = d;
      }
      if (!next || *next > until) break;
      now_ = std::max(now_, *next);
      while (!in_transit_.empty() && in_transit_.begin()->first.first <= now_.millis()) {
        auto [to, msg] = std::move(in_transit_.begin()->second);
        in_transit_.erase(in_transit_.begin());
        Arrive(to, std::move(msg));
      }
      for (auto& [n, m] : nodes_) {
        if (auto d = m.node->NextDeadline(); d && *d <= now_) m.node->OnTick(now_);
      }
      Pump();
    }
    now_ = std::max(now_, until);
    for (auto& [n, m] : nodes_) m.node->OnTick(now_);
    Pump();
  }
  void RunFor(clock::Duration d) { RunUntil(now_ + d); }

  std::size_t messages_lost() const { return lost_; }
  std::size_t in_transit() const { return in_transit_.size(); }

 private:
  struct AckMsg {
    NodeNumber from;
    BundleId id;
  };
  struct BundleMsg {
    NodeNumber from;
    std::vector<std::uint8_t> bytes;
  };
  using Msg = std::variant<BundleMsg, AckMsg>;
  struct Member {
    NodeConfig config;
    std::unique_ptr<BundleStore> store;
    std::unique_ptr<Node> node;
    std::string sqlite_path;
  };

  void Send(NodeNumber from, NodeNumber to, const Msg& msg) {
    if (!LinkUp(from, to)) return;  // the link is down: the message never leaves
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    if (unit(rng_) < options_.loss) {
      ++lost_;
      return;
    }
    const int copies = unit(rng_) < options_.duplicate ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      std::uniform_int_distribution<std::int64_t> jitter(0, options_.jitter.count());
      const std::int64_t at = (now_ + options_.owlt).millis() + jitter(rng_);
      in_transit_.emplace(std::make_pair(at, next_msg_++), std::make_pair(to, msg));
    }
  }

  void Perform(NodeNumber n, NodeAction action) {
    if (auto* t = std::get_if<Transmit>(&action)) {
      Send(n, t->neighbour, BundleMsg{n, std::move(t->bytes)});
    } else if (auto* a = std::get_if<Acknowledge>(&action)) {
      Send(n, a->neighbour, AckMsg{n, a->id});
    } else if (auto* d = std::get_if<Deliver>(&action)) {
      deliveries_.push_back(SimDelivery{n, *d});
      if (options_.auto_confirm) node(n).ConfirmDelivery(d->endpoint, d->id, now_);
    }
  }

  void Arrive(NodeNumber to, Msg msg) {
    if (!nodes_.contains(to)) return;
    if (auto* b = std::get_if<BundleMsg>(&msg)) {
      node(to).OnBundleReceived(b->from, b->bytes, now_);
    } else {
      const auto& a = std::get<AckMsg>(msg);
      node(to).OnAcknowledged(a.from, a.id, now_);
    }
  }

  std::mt19937_64 rng_;
  Options options_;
  clock::DtnTime now_;
  std::map<NodeNumber, Member> nodes_;
  std::set<std::pair<NodeNumber, NodeNumber>> links_;
  std::map<std::pair<std::int64_t, std::uint64_t>, std::pair<NodeNumber, Msg>> in_transit_;
  std::uint64_t next_msg_ = 0;
  std::size_t lost_ = 0;
  std::vector<SimDelivery> deliveries_;
  std::vector<BundleEvent> events_;
};

}  // namespace ics::dtn::test
