// The DTN node core: store-and-forward with hop-by-hop custody, as a sans-I/O state machine.
//
// Events in (each with the current time `now`, which must never go backwards): a bundle received
// from a neighbour (raw bytes), an application send, a contact start / end per neighbour (its
// link is usable / no longer), an acknowledgement from a neighbour, a timer tick, an endpoint
// registration, a delivery confirmed by the application. Actions out (TakeOutput): Transmit,
// Acknowledge, Deliver (node_events.h), with lifecycle events beside them. No sockets, threads,
// sleeps or clock reads: the same object runs under tests, the ZeroMQ daemon and the replayer.
//
// THE DRIVER'S CONTRACT (persist before send):
//   after one or more calls, the driver calls store.Commit() BEFORE it performs the actions of
//   TakeOutput() (acknowledgements, transmissions, deliveries). If Commit fails, the driver
//   performs none of them and must discard this Node and reopen the store (restart).
// Hence an Acknowledge is only ever sent for a bundle that is stored AND committed, and a Deliver
// only after its delivered_once mark is durable. The driver arms one timer at NextDeadline() and
// calls OnTick when it fires (calling OnTick early or late is harmless).
//
// Custody. A bundle transmitted to a neighbour stays stored, counted "in flight" to that
// neighbour, until the neighbour acknowledges it (then it is deleted: kAcknowledged). A bundle is
// sent only while fewer than config.window_per_neighbour bundles (and, if set, fewer than
// config.window_bytes_per_neighbour encoded bytes) of its own or a more urgent priority are in
// flight to that neighbour, so back-pressure stays in the store and bulk bundles in flight never
// hold an expedited one back (at most 3 windows are in flight, one per class). Retransmission
// timeout of the n-th transmission (n = 0, 1, ...) of a bundle to neighbour N:
//     base     = 2 x OWLT(self, N, at the departure) + config.retransmit_margin
//     timeout  = min(base x 2^n, config.retransmit_cap)
//     deadline = departure + timeout
// where OWLT is the contact plan's range (ContactPlan::OwltAt), else config.owlt_if_no_range, and
// the departure is when the bundle is expected to have left: the link sends one bundle at a time
// at the rate of the plan's contact open now, so a bundle handed to it leaves after the bundles
// handed to it before that are at least as urgent (less urgent ones wait behind it), plus its own
// transmission time (encoded size / rate, rounded up to the ms). The expected backlog is reset at
// every contact start and end. Without a plan, or without a contact in it now, the departure is
// the Transmit action's time.
// On timeout the bundle is queued again in its place (priority, age) and re-sent by the normal
// dispatch: a retry never overtakes a more urgent bundle. A contact end puts that neighbour's
// in-flight bundles back in the queue at once (their backoff counts are kept). Acknowledgements
// are accepted from any neighbour for any stored bundle in transit (after a restart the node no
// longer knows to whom it sent what): the acknowledging neighbour holds it now.
//
// Routing: for each queued bundle, the next hop is the Router's (contact graph routing over the
// plan with earliest arrival before the bundle's expiry, else static routes), else the destination
// itself when its contact is open. A bundle is sent only while its next hop's contact is open;
// otherwise it waits in the store and is routed again at every contact change, tick or new bundle.
// Destinations in the dtn: scheme have no node number: they are delivered when local and
// otherwise wait (until expiry) for static routing support.
//
// Bundles in flight are marked so in the store (BundleStore::SetInFlight) and so stay out of the
// dispatch's queue walk, which visits only bundles waiting to be sent.
//
// Priorities: each neighbour's window is filled expedited first, then normal, then bulk, oldest
// first within a class, across all destinations routed through it.
//
// Forwarding updates the bundle: previous node := ipn:self.0; hop count += 1 (a bundle whose
// count would exceed its limit is dropped: kDropped/kHopLimit); the bundle age (when the block is
// present or the creation time is 0) := age on arrival + time spent here.
//
// Expiry: created.time + lifetime, or (creation time 0) arrival - age on arrival + lifetime.
// A bundle is expired once now >= that instant: it is deleted at the next tick (kExpired), and
// never transmitted or delivered after it.
//
// Duplicates: a bundle whose ID is stored or seen (the store remembers accepted IDs until their
// expiry, across restarts) is acknowledged (so the sender drops it) and not stored again.
//
// Exactly once, precisely. For each bundle ID:
//  (1) it is stored at most once per node until its expiry (dedup above), and removed only after
//      its delivery is confirmed, so the node hands it to the application at most once per run:
//      a second Deliver in the same run never happens;
//  (2) every Deliver is preceded by a durable delivered_once mark (the driver's contract);
//  (3) after ConfirmDelivery and the next Commit, the bundle is gone and its ID stays seen until
//      expiry: it is never delivered again, even if a copy arrives later or the node restarts.
// So a Deliver with possible_redelivery == false is certainly the first. The only repeated
// deliveries are after a crash between a Deliver and the Commit following its ConfirmDelivery;
// they carry possible_redelivery == true and the same bundle ID. An application that needs
// exactly-once processing records the IDs it has processed (atomically with its own effects)
// and skips a possible_redelivery it has seen: then each ADU is processed exactly once.
// Deliveries to an endpoint are made in order of arrival at this node.
//
// Not thread-safe: one driver owns it. The store (and plan, if any) must outlive the node.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "clock/time.h"
#include "dtn/bundle.h"
#include "dtn/bundle_store.h"
#include "dtn/codec.h"
#include "dtn/contact_plan.h"
#include "dtn/eid.h"
#include "dtn/node_events.h"
#include "dtn/routing.h"

namespace ics::dtn {

struct NodeConfig {
  NodeNumber node = 0;  // this node is ipn:node.0. REQUIRES: > 0
  const ContactPlan* plan = nullptr;  // may be null (static routes only)
  StaticRoutes static_routes;
  DecodeLimits decode_limits;  // for received bundles
  // Bundles in flight (sent, not yet acknowledged) per neighbour: a bundle goes while fewer than
  // this many of its own priority and the more urgent ones are in flight, so less urgent bundles
  // in flight never hold back more urgent ones, and up to 3 x this many (one window per
  // priority) can be in flight to one neighbour.
  std::size_t window_per_neighbour = 64;
  // Also at most this many encoded bytes in flight, counted the same way (0: no byte bound); a
  // bundle larger than the bound still goes when nothing of its or a more urgent priority is in
  // flight.
  std::uint64_t window_bytes_per_neighbour = 0;
  clock::Duration retransmit_margin = std::chrono::seconds(2);
  clock::Duration retransmit_cap = std::chrono::hours(1);
  clock::Duration owlt_if_no_range{0};
  // False: TakeOutput's events stay empty (a driver that logs nothing saves building them; the
  // counters still count everything).
  bool record_events = true;
  // Free bytes at the start of each Transmit's `bytes`, before the encoded bundle: room for the
  // driver's own frame header, so that it can hand the buffer to its transport as one frame
  // without copying the bundle (the ZeroMQ daemon's link frames).
  std::size_t transmit_headroom = 0;
  // Bundles this node creates (Send):
  std::uint64_t hop_limit = 32;  // 0: no hop-count block
  CrcType crc = CrcType::kCrc32c;
};

struct SendRequest {
  Eid source;  // the sending endpoint; dtn:none means the node itself (ipn:node.0)
  Eid destination;
  clock::Duration lifetime{0};
  Priority priority = Priority::kNormal;
  std::vector<std::uint8_t> payload;
};

enum class SendError : std::uint8_t {
  kBadDestination,   // dtn:none
  kBadLifetime,      // <= 0
  kPayloadTooLarge,  // over config.decode_limits.max_payload_bytes (a peer would refuse it)
  kBadPriority,      // not one of the three Priority values
  kQuotaBundles,
  kQuotaBytes,
  kStoreError,
};
std::string_view SendErrorName(SendError error);

struct NodeCounters {
  std::uint64_t received = 0;        // bundles (bytes) received from neighbours
  std::uint64_t malformed = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t stored = 0;          // received and sent bundles accepted into the store
  std::uint64_t refused = 0;         // received bundles not accepted (malformed included)
  std::uint64_t sent = 0;            // application sends accepted
  std::uint64_t transmissions = 0;   // Transmit actions (retransmissions included)
  std::uint64_t retransmissions = 0;
  std::uint64_t acknowledged = 0;    // custody released by a neighbour's acknowledgement
  std::uint64_t unknown_acks = 0;    // acknowledgements for bundles not stored here
  std::uint64_t delivered = 0;       // Deliver actions
  std::uint64_t confirmed = 0;
  std::uint64_t expired = 0;
  std::uint64_t dropped = 0;         // hop limit, unreadable stored bundle
  std::uint64_t store_errors = 0;
};

class Node {
 public:
  // Builds the node over `store`, restoring what it holds: queued bundles (sent as contacts
  // open), pending deliveries (made when their endpoints register), the creation sequence.
  Node(NodeConfig config, BundleStore& store);
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  void OnBundleReceived(NodeNumber from, std::span<const std::uint8_t> bytes, clock::DtnTime now);
  // Creates a bundle with creation timestamp [now, sequence] (the sequence is persisted with the
  // bundle and never repeats, across restarts) and stores it. Returns its ID. The payload becomes
  // the bundle's: pass the request as an rvalue to move it there instead of copying it.
  std::expected<BundleId, SendError> Send(SendRequest request, clock::DtnTime now);
  void OnContactStart(NodeNumber neighbour, clock::DtnTime now);
  void OnContactEnd(NodeNumber neighbour, clock::DtnTime now);
  void OnAcknowledged(NodeNumber neighbour, const BundleId& id, clock::DtnTime now);
  void OnTick(clock::DtnTime now);
  // Registers a local endpoint (ipn:N.S with N == config.node, or any dtn: EID) and delivers what
  // waits for it, oldest first. Deliveries to an unregistered endpoint wait (until expiry).
  void RegisterEndpoint(const Eid& endpoint, clock::DtnTime now);
  void UnregisterEndpoint(const Eid& endpoint);
  // The application has processed the ADU: the bundle is deleted (kDeliveryConfirmed).
  // Unknown (already confirmed) IDs are ignored.
  void ConfirmDelivery(const Eid& endpoint, const BundleId& id, clock::DtnTime now);
  // The contact plan changed (or appeared): routes are recomputed.
  void SetPlan(const ContactPlan* plan, clock::DtnTime now);

  // The next instant OnTick has work: a bundle expiry or a retransmission timeout. Exact after
  // TakeOutput (which starts the transmissions, and so their timeouts).
  std::optional<clock::DtnTime> NextDeadline() const;
  // The actions and events since the last call (see the driver's contract above). Transmissions
  // are decided here, once per call, so that a burst of events costs one pass over the queues:
  // the store writes this may stage (dropping a bundle over its hop limit) need no commit before
  // the Transmit actions are performed.
  NodeOutput TakeOutput();

  const NodeCounters& counters() const { return counters_; }
  const NodeConfig& config() const { return config_; }
  Eid node_eid() const { return Eid::Ipn(config_.node, 0); }
  bool contact_open(NodeNumber neighbour) const { return open_.contains(neighbour); }
  std::size_t in_flight(NodeNumber neighbour) const;
  // The last store error (the driver must restart the node when set).
  const std::optional<storage::Error>& store_error() const { return store_error_; }

 private:
  struct InFlight {
    NodeNumber neighbour = 0;
    clock::DtnTime deadline;
    std::uint64_t bytes = 0;
    Priority priority = Priority::kNormal;
  };
  static constexpr std::size_t kPriorities = 3;  // indexed by Priority (kBulk = 0)
  // In flight to one neighbour, per priority.
  struct Window {
    std::array<std::size_t, kPriorities> count{};
    std::array<std::uint64_t, kPriorities> bytes{};
  };

  void Advance(clock::DtnTime now);  // aborts if time goes backwards
  bool IsLocal(const Eid& destination) const;
  void Accept(Bundle bundle, std::span<const std::uint8_t> bytes, clock::DtnTime expires_at,
              std::optional<NodeNumber> from, clock::DtnTime now);
  void Expire(clock::DtnTime now);
  void CheckTimeouts(clock::DtnTime now);
  void Dispatch(clock::DtnTime now);
  void FillWindow(NodeNumber neighbour, const std::vector<Eid>& destinations, clock::DtnTime now);
  // Bundles in flight to `neighbour` of `priority` or a more urgent one.
  std::size_t InFlightFrom(NodeNumber neighbour, Priority priority) const;
  // True when `more` bytes of `priority` would exceed config.window_bytes_per_neighbour with the
  // bytes in flight of that priority or a more urgent one (never when none is in flight).
  bool BytesWindowFull(NodeNumber neighbour, Priority priority, std::uint64_t more) const;
  std::optional<NodeNumber> NextHop(const StoredBundleInfo& info, clock::DtnTime now);
  void TransmitBundle(const StoredBundleInfo& info, NodeNumber neighbour, clock::DtnTime now);
  // `decoded`: the bundle, when the caller has just decoded it (it is moved from).
  void TryDeliver(const StoredBundleInfo& info, clock::DtnTime now, Bundle* decoded = nullptr);
  void Drop(const StoredBundleInfo& info, RefusalReason reason, std::string detail, clock::DtnTime now);
  void Release(std::uint64_t seq);  // no longer in flight (still stored)
  void Forget(std::uint64_t seq);   // deleted: no custody or delivery state left
  void KeepFresh(const StoredBundleInfo& info, Bundle bundle);
  void DropFresh(std::uint64_t seq);
  clock::Duration RetransmitTimeout(NodeNumber neighbour, std::uint32_t attempt, clock::DtnTime now) const;
  // When a bundle of `size_bytes` handed to the link to `neighbour` now is expected to have left
  // (the custody timer starts then); records it in link_backlog_.
  clock::DtnTime ExpectedDeparture(NodeNumber neighbour, Priority priority, std::uint64_t size_bytes,
                                   clock::DtnTime now);
  void StoreFailed(const storage::Error& error, const std::optional<BundleId>& id, clock::DtnTime now);
  // A stored copy could not be read: dropped if its bytes are damaged (kCorrupt), else StoreFailed.
  void ReadFailed(const StoredBundleInfo& info, const storage::Error& error, clock::DtnTime now);
  void Event(BundleEventKind kind, clock::DtnTime now, const std::optional<BundleId>& id,
             std::optional<NodeNumber> neighbour = std::nullopt, RefusalReason reason = RefusalReason::kNone,
             std::string detail = {}, Priority priority = Priority::kNormal);

  NodeConfig config_;
  BundleStore& store_;
  Router router_;
  std::set<NodeNumber> open_;  // ordered: dispatch order is deterministic
  std::set<Eid> endpoints_;
  // Custody and delivery state, keyed by StoredBundleInfo::store_seq (unique per stored bundle).
  std::unordered_map<std::uint64_t, InFlight> in_flight_;
  std::set<std::pair<std::int64_t, std::uint64_t>> deadlines_;  // (deadline ms, seq) of in_flight_
  std::unordered_map<NodeNumber, Window> windows_;  // of in_flight_, per neighbour
  std::unordered_map<std::uint64_t, std::uint32_t> attempts_;  // transmissions so far
  // Per neighbour, per priority (indexed by Priority): when the link is expected to be free for a
  // bundle of that class, given what was handed to it since its contact started.
  struct LinkBacklog {
    static constexpr clock::DtnTime kLongAgo = clock::DtnTime::FromMillis(-(INT64_MAX / 4));
    std::array<clock::DtnTime, kPriorities> free_at{kLongAgo, kLongAgo, kLongAgo};
  };
  std::unordered_map<NodeNumber, LinkBacklog> link_backlog_;
  std::unordered_map<std::uint64_t, BundleId> ids_;            // of bundles transmitted
  std::unordered_set<std::uint64_t> delivering_;               // Deliver issued in this run
  // Bundles accepted for forwarding and not yet transmitted, decoded: the dispatch sends them
  // without reading them back from the store. Bounded by kFreshBytesMax (node.cpp): past it, a
  // bundle is read back from the store when its turn comes. Entries leave at their first
  // transmission or removal.
  struct Fresh {
    Bundle bundle;
    std::uint64_t bytes = 0;  // encoded size (StoredBundleInfo::size_bytes)
  };
  std::unordered_map<std::uint64_t, Fresh> fresh_;
  std::uint64_t fresh_bytes_ = 0;
  bool dispatch_pending_ = false;
  std::vector<NodeNumber> scratch_with_room_;           // Dispatch's, kept for its capacity
  std::vector<StoredBundleInfo> scratch_candidates_;    // FillWindow's, likewise
  clock::DtnTime now_;
  std::uint64_t next_sequence_ = 0;
  NodeOutput output_;
  NodeCounters counters_;
  std::optional<storage::Error> store_error_;
};

}  // namespace ics::dtn
