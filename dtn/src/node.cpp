#include "dtn/node.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

namespace ics::dtn {
namespace {

// The store counter holding the next creation-timestamp sequence number.
constexpr std::string_view kSequenceCounter = "creation_sequence";
// Bundles expired per store query (the loop repeats until none is left).
constexpr std::size_t kExpireBatch = 1024;
// Encoded bytes of the decoded bundles kept for the dispatch (Node::fresh_): a relay whose
// outbound window is full keeps a window's worth of arrivals decoded instead of reading each
// back from the store (a query and a decode) when the window opens.
constexpr std::uint64_t kFreshBytesMax = 32ull << 20;

using QueueKey = std::pair<int, std::uint64_t>;
QueueKey QueueKeyOf(const StoredBundleInfo& info) { return {2 - static_cast<int>(info.priority), info.store_seq}; }

}  // namespace

std::string_view BundleEventKindName(BundleEventKind kind) {
  switch (kind) {
    case BundleEventKind::kReceived: return "received";
    case BundleEventKind::kStored: return "stored";
    case BundleEventKind::kForwarded: return "forwarded";
    case BundleEventKind::kAcknowledged: return "acknowledged";
    case BundleEventKind::kDelivered: return "delivered";
    case BundleEventKind::kDeliveryConfirmed: return "delivery-confirmed";
    case BundleEventKind::kExpired: return "expired";
    case BundleEventKind::kDuplicate: return "duplicate";
    case BundleEventKind::kRefused: return "refused";
    case BundleEventKind::kRetransmitTimeout: return "retransmit-timeout";
    case BundleEventKind::kDropped: return "dropped";
  }
  return "?";
}

std::string_view RefusalReasonName(RefusalReason reason) {
  switch (reason) {
    case RefusalReason::kNone: return "none";
    case RefusalReason::kMalformed: return "malformed";
    case RefusalReason::kQuotaBundles: return "quota-bundles";
    case RefusalReason::kQuotaBytes: return "quota-bytes";
    case RefusalReason::kExpired: return "expired";
    case RefusalReason::kNoExpiry: return "no-expiry";
    case RefusalReason::kHopLimit: return "hop-limit";
    case RefusalReason::kStoreError: return "store-error";
  }
  return "?";
}

std::string_view SendErrorName(SendError error) {
  switch (error) {
    case SendError::kBadDestination: return "bad-destination";
    case SendError::kBadLifetime: return "bad-lifetime";
    case SendError::kPayloadTooLarge: return "payload-too-large";
    case SendError::kBadPriority: return "bad-priority";
    case SendError::kQuotaBundles: return "quota-bundles";
    case SendError::kQuotaBytes: return "quota-bytes";
    case SendError::kStoreError: return "store-error";
  }
  return "?";
}

std::string FormatEvent(const BundleEvent& event) {
  std::string line = fmt::format("{} {}", event.at.ToIso8601(), BundleEventKindName(event.kind));
  // fmt rather than " " + string: GCC 12 reports a false -Wrestrict on the latter at -O3.
  line += event.id ? fmt::format(" {}", event.id->ToString()) : std::string(" (undecoded)");
  if (event.kind == BundleEventKind::kStored || event.kind == BundleEventKind::kForwarded) {
    line += fmt::format(" [{}]", PriorityName(event.priority));
  }
  if (event.neighbour) {
    const bool outbound = event.kind == BundleEventKind::kForwarded || event.kind == BundleEventKind::kAcknowledged ||
                          event.kind == BundleEventKind::kRetransmitTimeout;
    line += fmt::format(" {} node {}", outbound ? "to" : "from", *event.neighbour);
  }
  if (event.endpoint) line += " at " + event.endpoint->ToString();
  if (event.reason != RefusalReason::kNone) line += fmt::format(": {}", RefusalReasonName(event.reason));
  if (!event.detail.empty()) line += (event.reason != RefusalReason::kNone ? " (" : ": ") + event.detail +
                                     (event.reason != RefusalReason::kNone ? ")" : "");
  return line;
}

Node::Node(NodeConfig config, BundleStore& store)
    : config_(std::move(config)), store_(store), router_(config_.node, config_.plan, config_.static_routes) {
  if (config_.node == 0) {
    std::fprintf(stderr, "ics::dtn::Node: node number must be > 0\n");
    std::abort();
  }
  if (config_.window_per_neighbour == 0) config_.window_per_neighbour = 1;
  next_sequence_ = store_.Counter(kSequenceCounter).value_or(0);
}

std::size_t Node::in_flight(NodeNumber neighbour) const { return InFlightFrom(neighbour, Priority::kBulk); }

std::size_t Node::InFlightFrom(NodeNumber neighbour, Priority priority) const {
  auto it = windows_.find(neighbour);
  if (it == windows_.end()) return 0;
  std::size_t n = 0;
  for (std::size_t q = static_cast<std::size_t>(priority); q < kPriorities; ++q) n += it->second.count[q];
  return n;
}

void Node::Advance(clock::DtnTime now) {
  if (now < now_) {
    std::fprintf(stderr, "ics::dtn::Node: time went backwards (%s after %s)\n", now.ToIso8601().c_str(),
                 now_.ToIso8601().c_str());
    std::abort();
  }
  now_ = now;
}

void Node::Event(BundleEventKind kind, clock::DtnTime now, const std::optional<BundleId>& id,
                 std::optional<NodeNumber> neighbour, RefusalReason reason, std::string detail, Priority priority) {
  if (!config_.record_events) return;
  BundleEvent e;
  e.kind = kind;
  e.at = now;
  e.id = id;
  e.neighbour = neighbour;
  e.reason = reason;
  e.detail = std::move(detail);
  e.priority = priority;
  output_.events.push_back(std::move(e));
}

void Node::StoreFailed(const storage::Error& error, const std::optional<BundleId>& id, clock::DtnTime now) {
  store_error_ = error;
  ++counters_.store_errors;
  Event(BundleEventKind::kRefused, now, id, std::nullopt, RefusalReason::kStoreError, error.message);
}

bool Node::IsLocal(const Eid& destination) const {
  if (destination.scheme() == Eid::Scheme::kIpn) return destination.node() == config_.node;
  return endpoints_.contains(destination);
}

void Node::OnBundleReceived(NodeNumber from, std::span<const std::uint8_t> bytes, clock::DtnTime now) {
  Advance(now);
  ++counters_.received;
  auto bundle = Decode(bytes, config_.decode_limits);
  if (!bundle) {
    ++counters_.malformed;
    ++counters_.refused;
    Event(BundleEventKind::kRefused, now, std::nullopt, from, RefusalReason::kMalformed, bundle.error().ToString());
    return;
  }
  const BundleId id = bundle->Id();
  Event(BundleEventKind::kReceived, now, id, from, RefusalReason::kNone, {}, bundle->priority());
  const std::optional<clock::DtnTime> expires_at = bundle->ExpiresAt(now);
  auto refuse = [&](RefusalReason reason, std::string detail) {
    ++counters_.refused;
    Event(BundleEventKind::kRefused, now, id, from, reason, std::move(detail));
  };
  if (!expires_at) return refuse(RefusalReason::kNoExpiry, "creation time 0 and no bundle age block");
  if (*expires_at <= now) return refuse(RefusalReason::kExpired, "expired at " + expires_at->ToIso8601());
  if (auto hops = bundle->hop_count(); hops && hops->count > hops->limit) {
    return refuse(RefusalReason::kHopLimit, fmt::format("hop count {} over limit {}", hops->count, hops->limit));
  }
  Accept(std::move(*bundle), bytes, *expires_at, from, now);
}

void Node::Accept(Bundle bundle, std::span<const std::uint8_t> bytes, clock::DtnTime expires_at,
                  std::optional<NodeNumber> from, clock::DtnTime now) {
  StoredBundleInfo info;
  info.id = bundle.Id();
  info.destination = bundle.primary.destination;
  info.priority = bundle.priority();
  info.disposition = IsLocal(info.destination) ? BundleDisposition::kDeliver : BundleDisposition::kForward;
  info.received_at = now;
  info.expires_at = expires_at;
  info.size_bytes = bytes.size();
  // A bundle for a registered local endpoint is delivered in this very turn (TryDeliver below):
  // stored already marked delivered, in the same commit, instead of a second write.
  info.delivered_once = info.disposition == BundleDisposition::kDeliver && endpoints_.contains(info.destination);
  auto status = store_.Put(info, bytes);
  if (!status) return StoreFailed(status.error(), info.id, now);
  switch (*status) {
    case PutStatus::kDuplicate:
      ++counters_.duplicates;
      Event(BundleEventKind::kDuplicate, now, info.id, from);
      // Acknowledged all the same: the sender must stop retransmitting a bundle we hold or held.
      if (from) output_.actions.emplace_back(Acknowledge{*from, info.id});
      return;
    case PutStatus::kQuotaBundles:
    case PutStatus::kQuotaBytes: {
      ++counters_.refused;
      const RefusalReason reason =
          *status == PutStatus::kQuotaBundles ? RefusalReason::kQuotaBundles : RefusalReason::kQuotaBytes;
      const StoreUsage usage = store_.usage();
      Event(BundleEventKind::kRefused, now, info.id, from, reason,
            fmt::format("store holds {} bundles, {} bytes (limits {}, {})", usage.bundles, usage.bytes,
                        store_.limits().max_bundles, store_.limits().max_bytes));
      return;
    }
    case PutStatus::kStored:
      break;
  }
  ++counters_.stored;
  Event(BundleEventKind::kStored, now, info.id, from, RefusalReason::kNone, {}, info.priority);
  if (from) output_.actions.emplace_back(Acknowledge{*from, info.id});
  if (info.disposition == BundleDisposition::kDeliver) {
    TryDeliver(info, now, &bundle);
  } else {
    KeepFresh(info, std::move(bundle));
    dispatch_pending_ = true;
  }
}

std::expected<BundleId, SendError> Node::Send(SendRequest request, clock::DtnTime now) {
  Advance(now);
  if (request.destination.is_none()) return std::unexpected(SendError::kBadDestination);
  if (request.lifetime <= clock::Duration::zero()) return std::unexpected(SendError::kBadLifetime);
  if (static_cast<std::size_t>(request.priority) >= kPriorities) return std::unexpected(SendError::kBadPriority);
  if (request.payload.size() > config_.decode_limits.max_payload_bytes) {
    return std::unexpected(SendError::kPayloadTooLarge);
  }
  const Eid source = request.source.is_none() ? node_eid() : request.source;
  const CreationTimestamp created{now, next_sequence_};
  // Persisted (staged with the bundle, committed together) before the bundle can leave the node,
  // so a restart never reuses a sequence number another node may have seen.
  ++next_sequence_;
  if (auto st = store_.SetCounter(kSequenceCounter, next_sequence_); !st) {
    StoreFailed(st.error(), std::nullopt, now);
    return std::unexpected(SendError::kStoreError);
  }
  Bundle bundle = MakeBundle(source, request.destination, created, request.lifetime, std::move(request.payload),
                             request.priority, config_.crc);
  if (config_.hop_limit > 0) bundle.set_hop_count(HopCount{config_.hop_limit, 0});
  // Creation time 0 means "no clock" to a receiver, which then needs the age block for expiry.
  if (now.millis() == 0) bundle.set_bundle_age(clock::Duration::zero());
  const std::vector<std::uint8_t> bytes = Encode(bundle);

  StoredBundleInfo info;
  info.id = bundle.Id();
  info.destination = request.destination;
  info.priority = request.priority;
  info.disposition = IsLocal(info.destination) ? BundleDisposition::kDeliver : BundleDisposition::kForward;
  info.received_at = now;
  info.expires_at = now + request.lifetime;
  info.size_bytes = bytes.size();
  auto status = store_.Put(info, bytes);
  if (!status) {
    StoreFailed(status.error(), info.id, now);
    return std::unexpected(SendError::kStoreError);
  }
  if (*status == PutStatus::kQuotaBundles) return std::unexpected(SendError::kQuotaBundles);
  if (*status == PutStatus::kQuotaBytes) return std::unexpected(SendError::kQuotaBytes);
  if (*status == PutStatus::kDuplicate) {
    // [now, sequence] is fresh by construction: a duplicate means the counter went backwards.
    std::fprintf(stderr, "ics::dtn::Node: sent bundle %s already seen (creation sequence reused)\n",
                 info.id.ToString().c_str());
    std::abort();
  }
  ++counters_.sent;
  ++counters_.stored;
  Event(BundleEventKind::kStored, now, info.id, std::nullopt, RefusalReason::kNone, {}, info.priority);
  if (info.disposition == BundleDisposition::kDeliver) {
    TryDeliver(info, now);
  } else {
    KeepFresh(info, std::move(bundle));
    dispatch_pending_ = true;
  }
  return info.id;
}

void Node::OnContactStart(NodeNumber neighbour, clock::DtnTime now) {
  Advance(now);
  open_.insert(neighbour);
  link_backlog_.erase(neighbour);  // a new contact: nothing waits on the link
  dispatch_pending_ = true;
}

void Node::OnContactEnd(NodeNumber neighbour, clock::DtnTime now) {
  Advance(now);
  open_.erase(neighbour);
  link_backlog_.erase(neighbour);  // what the link had not sent is gone with the contact
  std::vector<std::uint64_t> released;
  for (const auto& [seq, f] : in_flight_) {
    if (f.neighbour == neighbour) released.push_back(seq);
  }
  for (std::uint64_t seq : released) Release(seq);
  dispatch_pending_ = true;  // they may have another route
}

void Node::OnAcknowledged(NodeNumber neighbour, const BundleId& id, clock::DtnTime now) {
  Advance(now);
  const StoredBundleInfo* info = store_.Find(id);
  if (info == nullptr || info->disposition != BundleDisposition::kForward) {
    ++counters_.unknown_acks;  // a late or repeated acknowledgement: nothing left to release
    return;
  }
  const std::uint64_t seq = info->store_seq;
  const Priority priority = info->priority;
  auto removed = store_.Remove(id);
  if (!removed) return StoreFailed(removed.error(), id, now);
  Forget(seq);
  ++counters_.acknowledged;
  Event(BundleEventKind::kAcknowledged, now, id, neighbour, RefusalReason::kNone, {}, priority);
  dispatch_pending_ = true;
}

void Node::OnTick(clock::DtnTime now) {
  Advance(now);
  Expire(now);
  CheckTimeouts(now);
  dispatch_pending_ = true;
}

void Node::RegisterEndpoint(const Eid& endpoint, clock::DtnTime now) {
  Advance(now);
  endpoints_.insert(endpoint);
  std::vector<StoredBundleInfo> waiting;
  store_.VisitDeliveries(endpoint, [&](const StoredBundleInfo& info) {
    waiting.push_back(info);
    return true;
  });
  for (const StoredBundleInfo& info : waiting) TryDeliver(info, now);
}

void Node::UnregisterEndpoint(const Eid& endpoint) {
  endpoints_.erase(endpoint);
  // Issued but unconfirmed deliveries are made again at the next registration.
  std::vector<std::uint64_t> pending;
  store_.VisitDeliveries(endpoint, [&](const StoredBundleInfo& info) {
    if (delivering_.contains(info.store_seq)) pending.push_back(info.store_seq);
    return true;
  });
  for (std::uint64_t seq : pending) delivering_.erase(seq);
}

void Node::ConfirmDelivery(const Eid& endpoint, const BundleId& id, clock::DtnTime now) {
  Advance(now);
  const StoredBundleInfo* info = store_.Find(id);
  if (info == nullptr || info->disposition != BundleDisposition::kDeliver || info->destination != endpoint) return;
  const std::uint64_t seq = info->store_seq;
  auto removed = store_.Remove(id);
  if (!removed) return StoreFailed(removed.error(), id, now);
  Forget(seq);
  ++counters_.confirmed;
  Event(BundleEventKind::kDeliveryConfirmed, now, id);
  if (config_.record_events) output_.events.back().endpoint = endpoint;
}

void Node::SetPlan(const ContactPlan* plan, clock::DtnTime now) {
  Advance(now);
  config_.plan = plan;
  router_.SetPlan(plan);
  dispatch_pending_ = true;
}

std::optional<clock::DtnTime> Node::NextDeadline() const {
  std::optional<clock::DtnTime> next = store_.EarliestExpiry();
  if (!deadlines_.empty()) {
    const auto retransmit = clock::DtnTime::FromMillis(deadlines_.begin()->first);
    if (!next || retransmit < *next) next = retransmit;
  }
  return next;
}

NodeOutput Node::TakeOutput() {
  if (dispatch_pending_) {
    dispatch_pending_ = false;
    Dispatch(now_);
  }
  return std::exchange(output_, NodeOutput{});
}

void Node::Expire(clock::DtnTime now) {
  while (true) {
    // Expired once now >= expires_at, i.e. expires_at < now + 1 ms.
    const std::vector<StoredBundleInfo> expired = store_.ExpiringBefore(now + clock::Duration(1), kExpireBatch);
    if (expired.empty()) break;
    for (const StoredBundleInfo& info : expired) {
      auto removed = store_.Remove(info.id);
      if (!removed) return StoreFailed(removed.error(), info.id, now);
      Forget(info.store_seq);
      ++counters_.expired;
      Event(BundleEventKind::kExpired, now, info.id, std::nullopt, RefusalReason::kNone,
            "expired at " + info.expires_at.ToIso8601(), info.priority);
    }
  }
  if (auto forgotten = store_.ForgetSeenBefore(now); !forgotten) StoreFailed(forgotten.error(), std::nullopt, now);
}

void Node::CheckTimeouts(clock::DtnTime now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now.millis()) {
    const std::uint64_t seq = deadlines_.begin()->second;
    const NodeNumber neighbour = in_flight_.at(seq).neighbour;
    Release(seq);
    std::optional<BundleId> id;
    if (auto it = ids_.find(seq); it != ids_.end()) id = it->second;
    Event(BundleEventKind::kRetransmitTimeout, now, id, neighbour);
  }
}

void Node::Release(std::uint64_t seq) {
  auto it = in_flight_.find(seq);
  if (it == in_flight_.end()) return;
  // Back in its queue for the dispatch (a no-op when the bundle has just been removed).
  if (auto id = ids_.find(seq); id != ids_.end()) store_.SetInFlight(id->second, false);
  deadlines_.erase({it->second.deadline.millis(), seq});
  const NodeNumber neighbour = it->second.neighbour;
  Window& window = windows_[neighbour];
  const std::size_t p = static_cast<std::size_t>(it->second.priority);
  --window.count[p];
  window.bytes[p] -= it->second.bytes;
  if (window.count == std::array<std::size_t, kPriorities>{}) windows_.erase(neighbour);
  in_flight_.erase(it);
}

void Node::Forget(std::uint64_t seq) {
  Release(seq);
  attempts_.erase(seq);
  ids_.erase(seq);
  DropFresh(seq);
  delivering_.erase(seq);
}

void Node::KeepFresh(const StoredBundleInfo& info, Bundle bundle) {
  if (fresh_bytes_ + info.size_bytes > kFreshBytesMax) return;
  if (fresh_.emplace(info.store_seq, Fresh{std::move(bundle), info.size_bytes}).second) fresh_bytes_ += info.size_bytes;
}

void Node::DropFresh(std::uint64_t seq) {
  auto it = fresh_.find(seq);
  if (it == fresh_.end()) return;
  fresh_bytes_ -= it->second.bytes;
  fresh_.erase(it);
}

// The link model behind it: the link sends one bundle at a time at the plan's rate for the
// contact open now; a bundle waits behind those handed to the link before it that are at least as
// urgent, and delays the less urgent ones by its own transmission time. Without a plan (or a
// contact in it) the rate is unknown and the bundle is taken to leave at once (the old rule).
clock::DtnTime Node::ExpectedDeparture(NodeNumber neighbour, Priority priority, std::uint64_t size_bytes,
                                      clock::DtnTime now) {
  if (config_.plan == nullptr) return now;
  const std::optional<Contact> contact = config_.plan->ContactAt(config_.node, neighbour, now);
  if (!contact || contact->rate_bytes_per_s == 0) return now;
  const clock::Duration tx =
      TransmissionTime(size_bytes, contact->rate_bytes_per_s).value_or(contact->end - now);
  LinkBacklog& backlog = link_backlog_[neighbour];
  const std::size_t p = static_cast<std::size_t>(priority);
  // Never later than if every byte in flight to this neighbour went first: the link's queue
  // cannot hold more. Without this bound an estimate that ran ahead (a link faster than its
  // planned rate, a copy counted again on retransmission) would only grow during a contact and
  // push retransmissions of lost bundles ever later.
  std::uint64_t queued_bytes = size_bytes;
  if (auto w = windows_.find(neighbour); w != windows_.end()) {
    for (std::uint64_t b : w->second.bytes) queued_bytes += b;
  }
  const clock::DtnTime bound =
      now + TransmissionTime(queued_bytes, contact->rate_bytes_per_s).value_or(contact->end - now);
  const clock::DtnTime left = std::min(std::max(backlog.free_at[p], now) + tx, bound);
  for (std::size_t q = 0; q <= p; ++q) {  // this class and the less urgent ones (kBulk = 0)
    backlog.free_at[q] = q == p ? left : std::min(std::max(std::max(backlog.free_at[q], now) + tx, left), bound);
  }
  return left;
}

clock::Duration Node::RetransmitTimeout(NodeNumber neighbour, std::uint32_t attempt, clock::DtnTime now) const {
  std::optional<clock::Duration> owlt;
  if (config_.plan != nullptr) owlt = config_.plan->OwltAt(config_.node, neighbour, now);
  clock::Duration timeout = 2 * owlt.value_or(config_.owlt_if_no_range) + config_.retransmit_margin;
  for (std::uint32_t i = 0; i < attempt && timeout < config_.retransmit_cap; ++i) timeout *= 2;
  return std::min(timeout, config_.retransmit_cap);
}

std::optional<NodeNumber> Node::NextHop(const StoredBundleInfo& info, clock::DtnTime now) {
  if (info.destination.scheme() != Eid::Scheme::kIpn) return std::nullopt;
  const NodeNumber destination = info.destination.node();
  if (auto next = router_.NextHop(destination, now, info.size_bytes, info.expires_at); next && *next != config_.node) {
    return next;
  }
  if (open_.contains(destination)) return destination;
  return std::nullopt;
}

void Node::Dispatch(clock::DtnTime now) {
  // Member scratch vectors: a dispatch runs after nearly every event, and these allocations were
  // a visible share of its cost.
  std::vector<NodeNumber>& with_room = scratch_with_room_;
  with_room.clear();
  for (NodeNumber n : open_) {
    // Room for an expedited bundle at least (the most room any class has).
    if (InFlightFrom(n, Priority::kExpedited) < config_.window_per_neighbour &&
        !BytesWindowFull(n, Priority::kExpedited, 1)) {
      with_room.push_back(n);
    }
  }
  if (with_room.empty()) return;
  const std::vector<Eid> destinations = store_.QueuedDestinations();
  for (NodeNumber n : with_room) FillWindow(n, destinations, now);
}

// One pass per destination collects, in queue order, up to `room` bundles routed through
// `neighbour` that are not in flight; the best `room` of them across destinations are sent.
// Each pass stops at the first bundle routed elsewhere (the rest of that destination's queue
// follows the same route, bar a bundle whose expiry forbids it, which is skipped).
void Node::FillWindow(NodeNumber neighbour, const std::vector<Eid>& destinations, clock::DtnTime now) {
  // Room per priority class (with the more urgent ones), fixed for the walk: nothing is sent
  // until the candidates are chosen.
  std::array<std::size_t, kPriorities> class_room{};
  for (std::size_t p = 0; p < kPriorities; ++p) {
    const std::size_t in_flight = InFlightFrom(neighbour, static_cast<Priority>(p));
    class_room[p] = in_flight >= config_.window_per_neighbour ? 0 : config_.window_per_neighbour - in_flight;
  }
  const std::size_t room = class_room[static_cast<std::size_t>(Priority::kExpedited)];
  std::vector<StoredBundleInfo>& candidates = scratch_candidates_;
  candidates.clear();
  for (const Eid& destination : destinations) {
    std::size_t taken = 0;
    store_.VisitQueue(destination, [&](const StoredBundleInfo& info) {
      // The queue is in priority order: once this bundle's class (with the more urgent ones) has
      // no room left for what was taken, no later bundle of this destination can go either (a
      // full bulk window does not make the walk route every queued bulk bundle).
      if (taken >= class_room[static_cast<std::size_t>(info.priority)]) return false;
      if (info.expires_at <= now || in_flight_.contains(info.store_seq)) return true;
      const std::optional<NodeNumber> hop = NextHop(info, now);
      if (!hop) return true;
      if (*hop != neighbour) return false;
      candidates.push_back(info);
      return ++taken < room;
    });
  }
  if (candidates.size() > room) {
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(room), candidates.end(),
                      [](const StoredBundleInfo& a, const StoredBundleInfo& b) { return QueueKeyOf(a) < QueueKeyOf(b); });
    candidates.resize(room);
  } else {
    std::sort(candidates.begin(), candidates.end(),
              [](const StoredBundleInfo& a, const StoredBundleInfo& b) { return QueueKeyOf(a) < QueueKeyOf(b); });
  }
  // In priority order: once a class has no room, the less urgent ones have none either.
  for (const StoredBundleInfo& info : candidates) {
    if (InFlightFrom(neighbour, info.priority) >= config_.window_per_neighbour) break;
    if (BytesWindowFull(neighbour, info.priority, info.size_bytes)) break;
    TransmitBundle(info, neighbour, now);
  }
}

bool Node::BytesWindowFull(NodeNumber neighbour, Priority priority, std::uint64_t more) const {
  if (config_.window_bytes_per_neighbour == 0) return false;
  auto it = windows_.find(neighbour);
  if (it == windows_.end()) return false;
  std::uint64_t bytes = 0;
  std::size_t count = 0;
  for (std::size_t q = static_cast<std::size_t>(priority); q < kPriorities; ++q) {
    bytes += it->second.bytes[q];
    count += it->second.count[q];
  }
  if (count == 0) return false;  // one bundle always fits
  return bytes + more > config_.window_bytes_per_neighbour;
}

void Node::Drop(const StoredBundleInfo& info, RefusalReason reason, std::string detail, clock::DtnTime now) {
  auto removed = store_.Remove(info.id);
  if (!removed) return StoreFailed(removed.error(), info.id, now);
  Forget(info.store_seq);
  ++counters_.dropped;
  Event(BundleEventKind::kDropped, now, info.id, std::nullopt, reason, std::move(detail), info.priority);
}

void Node::ReadFailed(const StoredBundleInfo& info, const storage::Error& error, clock::DtnTime now) {
  // A stored copy whose bytes are damaged (a segment record cut short or failing its CRC) is
  // gone whatever we do: drop that bundle, as for a stored copy that no longer decodes, rather
  // than fail the store, which would stop the node and fail again on the same bundle after every
  // restart. Any other read error (the database itself corrupt, I/O) is the store's.
  if (error.kind == storage::Error::Kind::kDamagedRecord) {
    return Drop(info, RefusalReason::kMalformed, "stored copy unreadable: " + error.message, now);
  }
  StoreFailed(error, info.id, now);
}

void Node::TransmitBundle(const StoredBundleInfo& info, NodeNumber neighbour, clock::DtnTime now) {
  std::expected<Bundle, DecodeError> bundle;
  if (auto fresh = fresh_.find(info.store_seq); fresh != fresh_.end()) {
    // Accepted since its last transmission: decoded (and checked) once; no need to read it back.
    bundle = std::move(fresh->second.bundle);
    fresh_bytes_ -= fresh->second.bytes;
    fresh_.erase(fresh);
  } else {
    auto bytes = store_.ReadBytes(info.id);
    if (!bytes) return ReadFailed(info, bytes.error(), now);
    bundle = Decode(*bytes, config_.decode_limits);
  }
  if (!bundle) return Drop(info, RefusalReason::kMalformed, "stored copy: " + bundle.error().ToString(), now);
  if (auto hops = bundle->hop_count()) {
    if (hops->count + 1 > hops->limit) {
      return Drop(info, RefusalReason::kHopLimit,
                  fmt::format("hop count {} would exceed limit {}", hops->count + 1, hops->limit), now);
    }
    bundle->set_hop_count(HopCount{hops->limit, hops->count + 1});
  }
  bundle->set_previous_node(node_eid());
  if (bundle->FindBlock(block_type::kBundleAge) != nullptr || bundle->primary.created.time.millis() == 0) {
    const clock::Duration age = bundle->bundle_age().value_or(clock::Duration::zero()) + (now - info.received_at);
    bundle->set_bundle_age(std::max(age, clock::Duration::zero()));
  }
  const std::uint32_t attempt = attempts_[info.store_seq]++;
  ids_.try_emplace(info.store_seq, info.id);
  std::vector<std::uint8_t> bytes(config_.transmit_headroom);
  EncodeAppend(*bundle, bytes);
  // The timer runs from the expected end of this bundle's transmission, not from now: a bundle
  // queued behind others on the link (or a large one at a low rate) has not left yet, and a
  // timeout counted from now would retransmit it before it ever did.
  const clock::DtnTime left =
      ExpectedDeparture(neighbour, info.priority, bytes.size() - config_.transmit_headroom, now);
  const clock::DtnTime deadline = left + RetransmitTimeout(neighbour, attempt, left);
  in_flight_[info.store_seq] = InFlight{neighbour, deadline, info.size_bytes, info.priority};
  // Out of the dispatch's queue walk until released (acknowledged, timed out, contact ended).
  store_.SetInFlight(info.id, true);
  deadlines_.emplace(deadline.millis(), info.store_seq);
  Window& window = windows_[neighbour];
  ++window.count[static_cast<std::size_t>(info.priority)];
  window.bytes[static_cast<std::size_t>(info.priority)] += info.size_bytes;
  ++counters_.transmissions;
  if (attempt > 0) ++counters_.retransmissions;
  output_.actions.emplace_back(
      Transmit{neighbour, info.id, info.priority, std::move(bytes), attempt, config_.transmit_headroom});
  Event(BundleEventKind::kForwarded, now, info.id, neighbour, RefusalReason::kNone,
        attempt > 0 ? fmt::format("retransmission {}", attempt) : std::string(), info.priority);
}

void Node::TryDeliver(const StoredBundleInfo& info, clock::DtnTime now, Bundle* decoded) {
  if (!endpoints_.contains(info.destination) || delivering_.contains(info.store_seq) || info.expires_at <= now) return;
  std::expected<Bundle, DecodeError> bundle;
  if (decoded != nullptr) {
    bundle = std::move(*decoded);  // just accepted: decoded and checked already
  } else {
    auto bytes = store_.ReadBytes(info.id);
    if (!bytes) return ReadFailed(info, bytes.error(), now);
    bundle = Decode(*bytes, config_.decode_limits);
  }
  if (!bundle) return Drop(info, RefusalReason::kMalformed, "stored copy: " + bundle.error().ToString(), now);
  // A bundle accepted just now (`decoded`) was never delivered, even if Put marked it delivered.
  const bool possible_redelivery = decoded == nullptr && info.delivered_once;
  // Staged now, committed by the driver before it performs the Deliver (the contract).
  if (auto marked = store_.MarkDelivered(info.id); !marked) return StoreFailed(marked.error(), info.id, now);
  delivering_.insert(info.store_seq);
  Deliver d;
  d.endpoint = info.destination;
  d.id = info.id;
  d.source = bundle->primary.source;
  d.created = bundle->primary.created;
  d.priority = info.priority;
  d.payload = std::move(bundle->FindBlock(block_type::kPayload)->data);
  d.possible_redelivery = possible_redelivery;
  output_.actions.emplace_back(std::move(d));
  ++counters_.delivered;
  Event(BundleEventKind::kDelivered, now, info.id, std::nullopt, RefusalReason::kNone,
        possible_redelivery ? "possible redelivery" : std::string(), info.priority);
  if (config_.record_events) output_.events.back().endpoint = info.destination;
}

}  // namespace ics::dtn
