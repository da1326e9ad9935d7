// The coordinator's lease core: a sans-I/O state machine that grants time-bounded leases with
// fencing tokens (DESIGN.md §5). It reads no clock, touches no disk or socket: time comes in as
// `now`, messages come in as Inbound, and everything it decides comes out of TakeOutput():
// records to persist and messages to send.
//
// Ordering contract: the driver persists output.to_persist (one group commit) BEFORE it sends
// output.to_send. A grant, renewal or release is therefore on stable storage before anyone hears
// of it, and after a crash the restored table holds every lease anyone may believe in.
//
// Semantics, per resource (tenant/resource; tenants never share state):
//  - Epoch: every outgoing message carries the core's epoch. An incoming message whose header
//    epoch is non-zero and older is answered StaleEpoch{current} and logged (stale_epoch), never
//    acted upon. Epoch 0 is accepted only in an Acquire ("I know no epoch yet"); a future epoch,
//    or epoch 0 elsewhere, is refused as kBadRequest. The header `sender` must equal the bundle's
//    source (Inbound::from), else kBadRequest. Messages meant for agents or guards (grant, use ...)
//    are logged as refused (deny, bad_request) and get no answer, so two cores never ping-pong.
//  - Acquire: the term must pass policy.LeaseTerm (else kTermTooShort with the explanation). The
//    request must provably be within the requester's deadline: it is, iff
//        now + coordinator skew + requester skew < deadline
//    (the skew bounds of the policy for that requester); otherwise kDeadlinePassed. A free
//    resource (no lease, no waiters, now >= hold_until) is granted at once: token = last token
//    + 1, expires = now + term. Otherwise the request joins the FIFO queue: Queued{position}.
//  - Duplicates (same sender and request id) are answered idempotently: the same grant (same
//    token, current expiry), the current queue position, the same deny, or, for a grant that has
//    ended, Released / ExpiredNotice. Request ids are remembered per requester up to
//    Limits::max_request_ids_per_requester; the oldest are forgotten first, and an Acquire whose id
//    is at or below the highest forgotten one (a very late duplicate) is refused kBadRequest.
//  - Renew (the holder, its current token, lease not yet expired in the coordinator's view):
//    expires = max(expires, now + term), Renewed. Another token or sender: kNotHolder; a lease
//    that ended by expiry: kExpired.
//  - Release (current token): the lease ends now, with no hold-off (the holder has promised to
//    stop), Released, and the next live waiter is granted. A repeated release: Released again; a
//    release of a lease that ended by expiry: kExpired; any other token: kNotHolder.
//  - Expiry: at `expires` (coordinator clock) the lease ends: an expiry event, ExpiredNotice to
//    the holder. The resource is re-granted no earlier than expires + policy.RegrantMargin(term).
//  - Waiters: a waiter is dropped with kDeadlinePassed as soon as it can no longer be proved within
//    its deadline (the test above); a grant is never issued to one that cannot.
//  - Restart: the core starts from the restored LeaseTable. Restored leases stay held until they
//    expire in the coordinator's view plus the regrant margin (or are released); tokens continue
//    from the restored last token, so they strictly increase per resource across epochs.
//  - Limits: reaching any bound answers kOverloaded; memory never grows without bound.
//
// Time: `now` must not go backwards; a smaller `now` than one seen before is treated as the
// larger one. NextDeadline() is the earliest pending expiry, hold-off end or waiter give-up;
// Tick(now) handles everything due at or before `now` in one call, in O(k log n) for k due items.
//
// Not thread-safe: exactly one driver owns it.
#pragma once

#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clock/time.h"
#include "clock/timeout_policy.h"
#include "coordinator/lease_log.h"
#include "coordinator/protocol.h"

namespace ics::coordinator {

// The timeout policy for the path between `requester` and the coordinator at `now`. The driver
// builds it from the contact plan's OWLT / contact-wait bounds and the configured clock errors.
using PolicySource = std::function<clock::TimeoutPolicy(NodeNumber requester, clock::DtnTime now)>;

struct Limits {
  std::size_t max_resources = 100'000;  // resources ever granted or queued for
  std::size_t max_waiters_per_resource = 64;
  std::size_t max_requesters = 4'096;  // distinct requesters whose request ids are remembered
  std::size_t max_request_ids_per_requester = 64;
};

struct LeaseCoreConfig {
  NodeNumber self = 1;  // the coordinator's node number: `sender` of everything it sends
  Epoch epoch = 1;      // the current epoch, already durable (LeaseLog::StartEpoch). REQUIRES: > 0
  Limits limits;
};

struct Inbound {
  NodeNumber from = 0;  // the bundle's source node
  Message message;
};

struct Outbound {
  NodeNumber to = 0;
  Message message;
};

struct Output {
  std::vector<LogRecord> to_persist;  // persist first (one transaction) ...
  std::vector<Outbound> to_send;      // ... then send
};

class LeaseCore {
 public:
  // `restored`: the lease table from LeaseLog::LoadState(). The core emits one restore event
  // per restored lease and waiter (at `now`), so the log shows what each epoch inherited.
  // REQUIRES: config.epoch > 0; policy is callable.
  LeaseCore(LeaseCoreConfig config, LeaseTable restored, PolicySource policy, clock::DtnTime now);

  LeaseCore(const LeaseCore&) = delete;
  LeaseCore& operator=(const LeaseCore&) = delete;

  // A message arrived. Handles everything due at `now` first.
  void Receive(const Inbound& inbound, clock::DtnTime now);
  // Handles every expiry, hold-off end and waiter give-up due at or before `now`.
  void Tick(clock::DtnTime now);
  // When Tick must next be called (nullopt: nothing pending).
  std::optional<clock::DtnTime> NextDeadline() const;
  // Everything decided since the last call. The driver persists to_persist BEFORE sending to_send.
  Output TakeOutput();

  // The lease table as the core sees it (equal to what a LeaseLog holds after every output was
  // appended). For tests, tools and the replayer's checks; O(resources).
  LeaseTable Snapshot() const;
  Epoch epoch() const { return config_.epoch; }
  std::size_t resource_count() const { return resources_.size(); }

 private:
  struct Lease {
    NodeNumber holder = 0;
    RequestId request_id = 0;
    FencingToken token = 0;
    clock::Duration term{0};
    clock::DtnTime expires;
    Epoch granted_epoch = 0;
    std::string policy;
  };
  struct Waiter {
    NodeNumber requester = 0;
    RequestId request_id = 0;
    clock::Duration term{0};
    clock::DtnTime deadline;    // requester's clock
    clock::DtnTime give_up_at;  // coordinator clock: from here on it may be past its deadline
  };
  struct Ended {
    FencingToken token = 0;
    NodeNumber holder = 0;
    bool expired = false;  // else released
  };
  static constexpr std::size_t kEndedRemembered = 8;
  struct Resource {
    ResourceName name;
    FencingToken last_token = 0;
    clock::DtnTime hold_until;
    std::optional<Lease> lease;
    std::deque<Waiter> waiters;
    std::deque<Ended> ended;  // most recent first, at most kEndedRemembered
  };
  using ResourceIndex = std::uint32_t;

  enum class TimerKind : std::uint8_t { kWaiterGiveUp, kLeaseExpiry, kHoldOffEnd };
  struct Timer {
    clock::DtnTime at;
    TimerKind kind;
    ResourceIndex resource;
    NodeNumber node;  // waiter give-up: the waiter; lease expiry: 0
    RequestId id;     // waiter give-up: its request id; lease expiry: the token
    auto operator<=>(const Timer&) const = default;
  };

  // A remembered final answer to an Acquire, for duplicates.
  struct Answer {
    enum class Kind : std::uint8_t { kDenied, kReleased, kExpired } kind = Kind::kDenied;
    ResourceName resource;
    DenyReason reason = DenyReason::kBadRequest;
    std::string detail;
    FencingToken token = 0;
  };
  struct RequesterMemory {
    // Ascending request id. Ids mostly rise, so an answer is appended at the back and the oldest
    // leaves at the front: no node allocation per answer, as a std::map would make.
    std::deque<std::pair<RequestId, Answer>> answers;
    RequestId forgotten_up_to = 0;  // ids at or below were forgotten (0: none)
    bool any_forgotten = false;
  };
  using RequestKey = std::pair<NodeNumber, RequestId>;
  struct RequestKeyHash {
    std::size_t operator()(const RequestKey& k) const noexcept {
      return std::hash<std::uint64_t>()(k.first * 0x9E3779B97F4A7C15ull ^ k.second);
    }
  };

  void HandleAcquire(NodeNumber from, const Acquire& m, clock::DtnTime now);
  void HandleRenew(NodeNumber from, const Renew& m, clock::DtnTime now);
  void HandleRelease(NodeNumber from, const Release& m, clock::DtnTime now);
  void ProcessDue(clock::DtnTime now);
  void OnLeaseExpiry(ResourceIndex r, FencingToken token, clock::DtnTime now);
  void OnWaiterGiveUp(ResourceIndex r, NodeNumber node, RequestId id, clock::DtnTime now);
  // Grants to the first live waiter if the resource is free and past its hold-off.
  void GrantNext(ResourceIndex r, clock::DtnTime now);
  void GrantTo(ResourceIndex r, NodeNumber node, RequestId id, const clock::Explained& term,
               clock::DtnTime now, std::string_view reason);
  void EndLease(ResourceIndex r, bool expired, clock::DtnTime regrant_at, clock::DtnTime now,
                std::string reason, std::string policy);

  struct Refusal {
    NodeNumber to = 0;
    Header request;  // the refused request's header (resource, request id)
    DenyReason reason = DenyReason::kBadRequest;
    std::string detail;
    std::string policy;  // the policy explanation behind it, if any
    std::optional<FencingToken> token;
    std::optional<clock::DtnTime> deadline;
    bool remember = false;  // keep as the final answer to an Acquire, for duplicates
  };
  // Logs a deny event and sends the Deny.
  void SendDeny(Refusal refusal, clock::DtnTime now);
  void Send(NodeNumber to, Message message);
  Header ReplyHeader(const ResourceName& name, RequestId id) const;
  LogRecord Record(EventKind kind, clock::DtnTime now, const ResourceName& name) const;
  void Remember(NodeNumber requester, RequestId id, Answer answer);
  const Answer* Recall(NodeNumber requester, RequestId id) const;
  // When a request with this deadline stops being provably live (coordinator clock).
  static clock::DtnTime GiveUpAt(const clock::TimeoutPolicy& policy, clock::DtnTime deadline);
  std::optional<ResourceIndex> Find(const ResourceName& name) const;
  std::uint32_t PositionOf(const Resource& r, NodeNumber node, RequestId id) const;
  void AddTimer(const Timer& t) { timers_.insert(t); }
  void RemoveTimer(const Timer& t) { timers_.erase(t); }
  clock::DtnTime Now(clock::DtnTime now);

  LeaseCoreConfig config_;
  PolicySource policy_;
  std::vector<Resource> resources_;
  struct ResourceNameHash {
    std::size_t operator()(const ResourceName& name) const noexcept {
      const std::size_t a = std::hash<std::string_view>()(name.tenant);
      return a ^ (std::hash<std::string_view>()(name.resource) + 0x9E3779B97F4A7C15ull + (a << 6) + (a >> 2));
    }
  };
  // LeaseTerm and RegrantMargin are pure functions of the policy inputs and the term, and each
  // formats its explanation: the last kTermMemoSize results are kept and reused, since requests
  // mostly come over a few paths with a few terms.
  using TermResult = std::expected<clock::Explained, clock::Explained>;
  struct TermMemo {
    clock::PolicyInputs inputs;
    clock::Duration term{0};
    bool regrant_margin = false;  // RegrantMargin(term), else LeaseTerm(term)
    TermResult result;
  };
  static constexpr std::size_t kTermMemoSize = 8;
  // policy.LeaseTerm(requested) (or RegrantMargin(term) in the value), memoized. The reference is
  // valid until the next call of either.
  const TermResult& LeaseTerm(const clock::TimeoutPolicy& policy, clock::Duration requested);
  const clock::Explained& RegrantMargin(const clock::TimeoutPolicy& policy, clock::Duration term);
  const TermResult& Memoized(const clock::TimeoutPolicy& policy, clock::Duration term, bool regrant_margin);

  std::unordered_map<ResourceName, ResourceIndex, ResourceNameHash> by_name_;
  std::vector<TermMemo> term_memo_;  // round-robin, at most kTermMemoSize
  std::size_t term_memo_next_ = 0;
  std::unordered_map<RequestKey, ResourceIndex, RequestKeyHash> live_;  // holders and waiters
  std::unordered_map<NodeNumber, RequesterMemory> memory_;
  std::set<Timer> timers_;
  std::optional<clock::DtnTime> last_now_;
  Output out_;
};

}  // namespace ics::coordinator
