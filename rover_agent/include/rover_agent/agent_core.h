// The rover agent core: holds leases from the coordinator on behalf of on-board software, with no
// I/O. It takes control requests, coordinator messages and ticks, each with `now` on the agent's
// own clock, and hands back records to persist, messages to send and control replies.
//
// Lease arithmetic (the contract, DESIGN.md §5). A lease is counted from the moment its request
// (or renewal) was first SENT, and the agent's view of it ends at
//     sent + policy.HolderView(term)          (term shortened by both clocks' drift)
// so in true time the agent's view always ends before the coordinator's. One refinement keeps
// queued requests useful: the coordinator starts a term no earlier than it grants (expires =
// grant time + term), and a Queued reply proves the request was not yet granted when the reply
// left; that was at most a one-way trip (plus our drift over it) before it arrived. So a grant
// after a Queued that arrived at q counts from max(first send, q - OneWayMax - drift over it).
// The agent
//   - stops using the resource when its own view ends, whatever the network does (a "lapsed"
//     notification; a later Grant or Renewed does not resurrect it: it is released instead);
//   - renews at view_start + RenewOffset(), while the holder still wants the resource beyond the
//     current view. RenewOffset() = max(RenewAt(term) - RequestTimeout, RenewAt(term) / 2): one
//     worst round trip earlier than policy.RenewAt, so a renewal that meets a coordinator restart
//     (StaleEpoch, then the resend in the new epoch: two round trips) or loses one copy still
//     comes back before the view ends. A term too short for that (HolderView < 3 request
//     timeouts) renews at half of RenewAt instead (so renewals never come more than twice as
//     often as RenewAt alone would send them), and may then still lapse across a restart;
//   - releases when done: an explicit release, or the hold duration (counted from the grant's
//     arrival) has passed;
//   - a grant that arrives after its view has already ended (a long queue, lost copies of the
//     request, a sleep) is never used: it is released and, before the wait deadline, requested
//     again under a new request id (so the next grant counts from a recent send);
//   - retransmits an unanswered Acquire, Renew or Release after policy.RequestTimeout() with the
//     same request id, until the request's own deadline; past it the agent gives up, and a grant
//     that still arrives is released explicitly. An Acquire that stays unanswered (a partition:
//     every copy waits in DTN storage and is delivered when the path returns) is resent after
//     RequestTimeout, then each interval twice the last, up to UnansweredRetryMax() (at most half
//     the messages' bundle lifetime, so a live copy always waits on the way), so a partition
//     stores a few copies per lifetime, not one per request timeout; any answer (Queued,
//     StaleEpoch) ends that back-off;
//   - backs off while queued: once a Queued reply has come, the coordinator holds the waiter
//     durably (across its restarts too) and sends the Grant itself, so the agent retransmits the
//     Acquire only to refresh its proof and to recover a lost Grant: after RequestTimeout, then
//     each interval twice the last, up to QueuedRetryMax() (and never past the wait deadline).
//     QueuedRetryMax() = max(RequestTimeout, (RenewOffset - RoundTripMax - OneWayMax) / 2): a
//     grant counts from the last proof, at most about interval + RoundTripMax + OneWayMax before
//     it arrives, so even after the longest interval it arrives at least that interval before its
//     renewal point. The back-off restarts from RequestTimeout on every StaleEpoch, on the first
//     Queued of a request in an epoch, and when the agent learns a newer epoch from any message
//     (the proof is then from before a restart: the Acquire is resent at once in the new epoch).
//     The conservative count is unaffected: a grant counts from the FIRST send of its request id
//     (the earliest outstanding send) or a later Queued proof, never from a retransmission;
//   - learns the coordinator epoch from every reply and never acts on an older one (dropped and
//     counted); on StaleEpoch{current} it adopts `current` and resends the refused message;
//   - never reuses a request id, across restarts too (ids are reserved in persisted blocks).
//
// Output ordering: the driver applies output.to_persist to its AgentStore BEFORE it sends
// output.to_send (expedited priority, to the coordinator node) and before it delivers
// output.notifications.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "clock/timeout_policy.h"
#include "coordinator/protocol.h"
#include "rover_agent/agent_store.h"

namespace ics::rover_agent {

using clock::NodeNumber;
using coordinator::Message;

struct AgentConfig {
  NodeNumber self = 0;         // this agent's ipn node number (the Header sender)
  NodeNumber coordinator = 0;  // the coordinator's node: only its messages are acted upon
  // The timeout policy for the path to the coordinator (OWLT bounds, contact waits, drift).
  clock::TimeoutPolicy policy;
  // The term requested for every lease and renewal. REQUIRES: policy.LeaseTerm(lease_term) ok.
  clock::Duration lease_term{0};
  std::size_t max_leases = 256;      // requesting + held at once; further acquires refused
  std::size_t max_releasing = 1024;  // releases awaiting an answer; the oldest is dropped
  RequestId request_id_block = 64;   // ids reserved per persisted record
};

// A control request from on-board software: hold `resource` for `hold` once granted, waiting for
// the grant until `wait_deadline` (agent clock).
struct AcquireRequest {
  ResourceName resource;
  clock::Duration hold{0};
  clock::DtnTime wait_deadline;
};

// A control reply or notification for on-board software.
enum class Outcome : std::uint8_t {
  kRequested,    // Acquire sent (reply to an acquire request)
  kQueued,       // the coordinator queued the request (queue_position)
  kGranted,      // granted: token, epoch, valid_until (agent's view)
  kRenewed,      // the lease was renewed: new valid_until
  kDenied,       // the coordinator denied the request (reason)
  kGaveUp,       // the request's wait deadline passed without a grant
  kLapsed,       // the agent's view ended (or the coordinator ended it): stop using it now
  kReleased,     // released (by request, or the hold duration ended): stop using it now
  kRefused,      // the control request itself was refused (reason), nothing was sent
  kUseAccepted,  // a guard accepted a use under the token
  kUseRejected,  // a guard rejected a use (reason)
};
std::string_view OutcomeName(Outcome outcome);

struct Notification {
  Outcome outcome = Outcome::kRefused;
  ResourceName resource;
  FencingToken token = 0;
  Epoch epoch = 0;
  std::optional<clock::DtnTime> valid_until;  // end of the agent's view, when held
  std::uint32_t queue_position = 0;
  std::string reason;
};

// A message for the network. Coordination messages travel with expedited priority.
struct Outgoing {
  NodeNumber destination = 0;
  Message message;
};

struct AgentOutput {
  std::vector<AgentRecord> to_persist;  // apply BEFORE sending or notifying
  std::vector<Outgoing> to_send;
  std::vector<Notification> notifications;
  bool empty() const { return to_persist.empty() && to_send.empty() && notifications.empty(); }
};

struct LeaseStatus {
  ResourceName resource;
  LeaseState state = LeaseState::kRequesting;
  RequestId request_id = 0;  // of the Acquire
  FencingToken token = 0;
  Epoch epoch = 0;
  std::optional<clock::DtnTime> valid_until;  // held: end of the agent's view
  clock::Duration remaining{0};               // held: valid_until - now (0 when over)
  clock::DtnTime deadline;                    // requesting: the wait deadline
  std::uint32_t queue_position = 0;           // requesting: 0 unless queued
  bool renewing = false;
};

struct AgentCounters {
  std::uint64_t retransmissions = 0;
  std::uint64_t old_epoch_dropped = 0;    // replies from an epoch older than the known one
  std::uint64_t foreign_dropped = 0;      // not from the coordinator, or not for an agent
  std::uint64_t unexpected_released = 0;  // grants/renewals for leases no longer wanted
  std::uint64_t duplicates_ignored = 0;
  std::uint64_t stale_epoch_resent = 0;
  std::uint64_t lapsed = 0;
  std::uint64_t gave_up = 0;
  std::uint64_t rerequested = 0;             // grants already over on arrival, asked for again
  std::uint64_t queued_retransmissions = 0;  // of them (in `retransmissions`): Acquires while queued
};

struct AgentStatus {
  Epoch epoch = 0;
  std::vector<LeaseStatus> leases;  // requesting and held, by resource; then releasing
  AgentCounters counters;
};

// Not thread-safe: exactly one driver owns it.
class AgentCore {
 public:
  // Builds the core from what its store holds (an empty snapshot on first start) at `now`. This
  // is the wake-up path too, memory lost: a held lease whose view has ended by `now` is treated as
  // ended (lapsed, released explicitly); pending requests are resumed (retransmitted) or, past
  // their deadline, abandoned; releases are resumed. The consequences are in TakeOutput().
  // REQUIRES: config.policy.LeaseTerm(config.lease_term) succeeds (aborts otherwise).
  AgentCore(AgentConfig config, AgentSnapshot snapshot, clock::DtnTime now);

  // Control requests. Replies appear in TakeOutput().notifications.
  void Acquire(const AcquireRequest& request, clock::DtnTime now);
  void Release(const ResourceName& resource, clock::DtnTime now);
  AgentStatus Status(clock::DtnTime now) const;

  // A message from the network; `source` is the bundle's source node, `sent_at` its creation time
  // on the sender's clock (nullopt when the bundle carries none). A Queued reply counts as proof
  // that a later grant starts after it was sent only with `sent_at`: a bundle may be held far
  // longer than a one-way trip (a relay's outage, our own restart before it was confirmed), so the
  // proof is bounded by the creation time as well (see OnQueued).
  void OnMessage(const Message& message, NodeNumber source, clock::DtnTime now,
                 std::optional<clock::DtnTime> sent_at = std::nullopt);
  // Acts on every deadline at or before `now`. Call it at NextDeadline() (or later).
  void Tick(clock::DtnTime now);
  // The earliest time Tick() has something to do; nullopt when nothing is pending.
  std::optional<clock::DtnTime> NextDeadline() const;

  AgentOutput TakeOutput();

  // The Use message to present to a guard for `operation` on `resource`, carrying the lease's
  // fencing token; nullopt unless the lease is held and valid in the agent's view at `now`.
  std::optional<coordinator::Use> MakeUse(const ResourceName& resource, std::string operation,
                                          clock::DtnTime now) const;
  // True while the lease on `resource` is held and `now` is before the end of the agent's view.
  bool MayUse(const ResourceName& resource, clock::DtnTime now) const;

  Epoch epoch() const { return epoch_; }
  const AgentCounters& counters() const { return counters_; }
  // From view_start, when a renewal is sent (see the contract above).
  clock::Duration RenewOffset() const { return renew_offset_; }
  // The longest interval between Acquire retransmissions while queued (see the contract above).
  clock::Duration QueuedRetryMax() const { return queued_retry_max_; }
  // The bundle lifetime the drivers give the agent's messages (TimeoutPolicy::MessageLifetimeValue).
  clock::Duration MessageLifetime() const { return config_.policy.MessageLifetimeValue(); }
  // The longest interval between retransmissions of an Acquire that has had no answer:
  // min(QueuedRetryMax(), MessageLifetime() / 2), never below the request timeout. A copy
  // waiting in storage for a partition to heal then always has at least half its lifetime (more
  // than a worst one-way trip) left when the next one is sent.
  clock::Duration UnansweredRetryMax() const { return unanswered_retry_max_; }

 private:
  struct Lease {
    LeaseRecord record;
    clock::DtnTime last_sent;  // last transmission of the outstanding request
    std::uint32_t queue_position = 0;
    // Requesting. 0: not (known to be) queued in the current epoch: an unanswered Acquire is
    // retransmitted after the request timeout. Otherwise the interval to the next retransmission
    // (the back-off), counted from last_sent.
    clock::Duration retry_interval{0};
    Epoch queued_epoch = 0;  // epoch of the last Queued reply (0: none)
    // Requesting and not queued: the interval to the next retransmission of an Acquire that has
    // had no answer (0: the request timeout), counted from last_sent.
    clock::Duration unanswered_interval{0};
  };

  RequestId NextRequestId();
  void LearnEpochFrom(Epoch epoch);
  void Persist(const Lease& lease);
  void Notify(Outcome outcome, const LeaseRecord& lease, std::string reason = {});
  void SendAcquire(Lease& lease, clock::DtnTime now);
  void SendRenew(Lease& lease, clock::DtnTime now);
  void SendRelease(Lease& lease, clock::DtnTime now);
  void SendReleaseFor(const coordinator::Header& h, FencingToken token);
  // Stops using a held lease (kLapsed or kReleased) and starts releasing it.
  void EndHeld(std::map<ResourceName, Lease>::iterator it, Outcome outcome, std::string reason,
               clock::DtnTime now);
  void StartReleasing(Lease lease, clock::DtnTime now);
  void Forget(const LeaseRecord& record);
  coordinator::Header HeaderFor(const ResourceName& resource, RequestId id) const;
  clock::DtnTime RenewTime(const LeaseRecord& lease) const;
  // Requesting: when the outstanding Acquire is retransmitted.
  clock::DtnTime RetryTime(const Lease& lease) const;
  clock::DtnTime ReleaseGiveUp(const LeaseRecord& lease) const;

  void OnGrant(const coordinator::Grant& m, clock::DtnTime now);
  void OnQueued(const coordinator::Queued& m, clock::DtnTime now, std::optional<clock::DtnTime> sent_at);
  void OnDeny(const coordinator::Deny& m, clock::DtnTime now);
  void OnRenewed(const coordinator::Renewed& m, clock::DtnTime now);
  void OnReleased(const coordinator::Released& m, clock::DtnTime now);
  void OnExpired(const coordinator::ExpiredNotice& m, clock::DtnTime now);
  // A request record (no id yet) for `resource`, first sent `now`, with the configured term.
  LeaseRecord NewRequest(const ResourceName& resource, clock::Duration hold, clock::DtnTime deadline,
                         clock::DtnTime now) const;
  // Replaces `lease` by `fresh` under a new request id, persists and sends it.
  void Rerequest(Lease& lease, LeaseRecord fresh, clock::DtnTime now);
  bool EndedBeforeGrantArrived(const coordinator::Header& h, std::string_view how,
                               clock::DtnTime now);
  void OnStaleEpoch(const coordinator::StaleEpoch& m, clock::DtnTime now);

  AgentConfig config_;
  clock::Duration request_timeout_{0};
  clock::Duration renew_offset_{0};
  clock::Duration queued_retry_max_{0};
  clock::Duration unanswered_retry_max_{0};
  std::map<ResourceName, Lease> leases_;  // requesting and held, one per resource
  std::map<RequestId, Lease> releasing_;  // by acquire request id
  RequestId next_request_id_ = 1;
  RequestId reserved_through_ = 0;
  Epoch epoch_ = 0;
  AgentCounters counters_;
  AgentOutput out_;
};

}  // namespace ics::rover_agent
