// The agent's lease bookkeeping. Every view it computes counts from a *send* time on the agent's
// own clock and subtracts both clocks' drift (TimeoutPolicy::HolderView), so whatever the network
// delays, the agent's view of a lease ends in true time before the coordinator's does.
#include "rover_agent/agent_core.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <utility>

namespace ics::rover_agent {
namespace {

using clock::DtnTime;
using clock::Duration;

// "Long ago": a lease loaded from the store counts as sent this long ago, so the first Tick
// retransmits whatever is outstanding.
constexpr DtnTime kLongAgo = DtnTime::FromMillis(-(INT64_MAX / 4));

[[noreturn]] void Die(const std::string& message) {
  std::fputs(message.c_str(), stderr);
  std::fputc('\n', stderr);
  std::abort();
}

bool ValidName(const ResourceName& name) {
  return !name.tenant.empty() && !name.resource.empty() && name.tenant.size() <= coordinator::kMaxNameBytes &&
         name.resource.size() <= coordinator::kMaxNameBytes;
}

std::string_view DenyName(coordinator::DenyReason reason) {
  // Local (not coordinator::DenyReasonName) so the core needs only the protocol's types.
  switch (reason) {
    case coordinator::DenyReason::kTermTooShort:
      return "term too short";
    case coordinator::DenyReason::kDeadlinePassed:
      return "deadline passed";
    case coordinator::DenyReason::kNotHolder:
      return "not holder";
    case coordinator::DenyReason::kExpired:
      return "expired";
    case coordinator::DenyReason::kBadRequest:
      return "bad request";
    case coordinator::DenyReason::kOverloaded:
      return "overloaded";
  }
  return "unknown reason";
}

}  // namespace

std::string_view LeaseStateName(LeaseState state) {
  switch (state) {
    case LeaseState::kRequesting:
      return "requesting";
    case LeaseState::kHeld:
      return "held";
    case LeaseState::kReleasing:
      return "releasing";
  }
  return "unknown";
}

std::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kRequested:
      return "requested";
    case Outcome::kQueued:
      return "queued";
    case Outcome::kGranted:
      return "granted";
    case Outcome::kRenewed:
      return "renewed";
    case Outcome::kDenied:
      return "denied";
    case Outcome::kGaveUp:
      return "gave-up";
    case Outcome::kLapsed:
      return "lapsed";
    case Outcome::kReleased:
      return "released";
    case Outcome::kRefused:
      return "refused";
    case Outcome::kUseAccepted:
      return "use-accepted";
    case Outcome::kUseRejected:
      return "use-rejected";
  }
  return "unknown";
}

AgentCore::AgentCore(AgentConfig config, AgentSnapshot snapshot, DtnTime now) : config_(std::move(config)) {
  if (auto term = config_.policy.LeaseTerm(config_.lease_term); !term) {
    Die(fmt::format("AgentCore: lease term {} is not usable on this path: {}",
                    clock::FormatDuration(config_.lease_term), term.error().why));
  }
  if (config_.request_id_block == 0 || config_.max_leases == 0 || config_.max_releasing == 0) {
    Die("AgentCore: request_id_block, max_leases and max_releasing must be positive");
  }
  request_timeout_ = config_.policy.RequestTimeout().value;
  // Renew one request timeout (a worst round trip plus our drift over it) before RenewAt, so a
  // second round trip (StaleEpoch after a coordinator restart, or one lost copy) still fits
  // before the view ends; a term too short for that renews at half of RenewAt, which bounds the
  // renewal rate at twice what RenewAt alone would cost.
  const Duration renew_at = config_.policy.RenewAt(config_.lease_term).value;
  renew_offset_ = std::max(renew_at - request_timeout_, renew_at / 2);
  // While queued, a grant counts from the last Queued proof, which is at most about one retry
  // interval + a round trip + a one-way trip older than the grant's arrival. Halving what is left
  // of the renewal offset after those trips keeps every grant arriving at least one interval before
  // its renewal point. Never below the request timeout (no back-off on paths where it would not
  // leave that much).
  const Duration spare =
      renew_offset_ - config_.policy.RoundTripMax().value - config_.policy.OneWayMax().value;
  queued_retry_max_ = std::max(request_timeout_, spare / 2);
  unanswered_retry_max_ = std::max(request_timeout_, std::min(queued_retry_max_, MessageLifetime() / 2));
  epoch_ = snapshot.epoch;
  reserved_through_ = snapshot.reserved_through;
  next_request_id_ = snapshot.reserved_through + 1;

  // Wake-up: memory is lost, the store is the truth. Loaded leases count as last sent long ago,
  // so the Tick below retransmits what is outstanding, abandons requests past their deadline and
  // ends held leases whose view has ended by now (releasing them explicitly).
  for (const LeaseRecord& record : snapshot.leases) {
    // Request ids in the store were all reserved before use; a record above the reservation
    // means a damaged store: continue above it anyway, so ids never repeat.
    for (RequestId id : {record.acquire_request_id, record.renew_request_id, record.release_request_id}) {
      if (id >= next_request_id_) {
        next_request_id_ = id + 1;
      }
    }
  }
  for (LeaseRecord& record : snapshot.leases) {
    Lease lease{std::move(record), kLongAgo, 0, Duration(0), 0};
    if (lease.record.state == LeaseState::kReleasing) {
      releasing_.emplace(lease.record.acquire_request_id, std::move(lease));
      continue;
    }
    auto existing = leases_.find(lease.record.resource);
    if (existing != leases_.end()) {
      // Two live leases for one resource (cannot happen through this core): keep the newer.
      Lease older = std::move(existing->second);
      leases_.erase(existing);
      if (older.record.state == LeaseState::kHeld) {
        StartReleasing(std::move(older), now);
      } else {
        Forget(older.record);
      }
    }
    const ResourceName key = lease.record.resource;
    leases_.emplace(key, std::move(lease));
  }
  Tick(now);
}

RequestId AgentCore::NextRequestId() {
  if (next_request_id_ > reserved_through_) {
    reserved_through_ = next_request_id_ + config_.request_id_block - 1;
    out_.to_persist.push_back(ReserveRequestIds{reserved_through_});
  }
  return next_request_id_++;
}

void AgentCore::LearnEpochFrom(Epoch epoch) {
  if (epoch > epoch_) {
    epoch_ = epoch;
    out_.to_persist.push_back(LearnEpoch{epoch});
  }
}

void AgentCore::Persist(const Lease& lease) { out_.to_persist.push_back(PersistLease{lease.record}); }

void AgentCore::Forget(const LeaseRecord& record) {
  out_.to_persist.push_back(ForgetLease{record.acquire_request_id});
}

void AgentCore::Notify(Outcome outcome, const LeaseRecord& lease, std::string reason) {
  Notification n;
  n.outcome = outcome;
  n.resource = lease.resource;
  n.token = lease.token;
  n.epoch = lease.epoch;
  if (lease.state == LeaseState::kHeld && (outcome == Outcome::kGranted || outcome == Outcome::kRenewed)) {
    n.valid_until = lease.view_end;
  }
  n.reason = std::move(reason);
  out_.notifications.push_back(std::move(n));
}

coordinator::Header AgentCore::HeaderFor(const ResourceName& resource, RequestId id) const {
  return coordinator::Header{resource, epoch_, id, config_.self};
}

DtnTime AgentCore::RenewTime(const LeaseRecord& lease) const {
  // The term is the configured one (a grant or renewal may only shorten it): use the offset
  // derived for it, or RenewAt's own for a shorter term.
  if (lease.term == config_.lease_term) return lease.view_start + renew_offset_;
  const Duration renew_at = config_.policy.RenewAt(lease.term).value;
  return lease.view_start + std::max(renew_at - request_timeout_, renew_at / 2);
}

DtnTime AgentCore::RetryTime(const Lease& lease) const {
  if (lease.retry_interval == Duration(0)) {
    return lease.last_sent + std::max(request_timeout_, lease.unanswered_interval);
  }
  // Queued in an epoch the coordinator has since left: the proof predates a restart, resend now.
  if (lease.queued_epoch < epoch_) return lease.last_sent;
  return lease.last_sent + lease.retry_interval;
}

DtnTime AgentCore::ReleaseGiveUp(const LeaseRecord& lease) const {
  // By then the coordinator's view has surely ended: it received the request at most a one-way
  // trip after it was sent, counts the term on a clock that may run slow, and our own clock may
  // run fast over the whole span; a round trip plus the regrant margin covers all three.
  return lease.view_start + lease.term + config_.policy.RoundTripMax().value +
         config_.policy.RegrantMargin(lease.term).value;
}

void AgentCore::SendAcquire(Lease& lease, DtnTime now) {
  const LeaseRecord& r = lease.record;
  out_.to_send.push_back(
      {config_.coordinator,
       coordinator::Acquire{HeaderFor(r.resource, r.acquire_request_id), r.term, r.deadline}});
  lease.last_sent = now;
}

void AgentCore::SendRenew(Lease& lease, DtnTime now) {
  const LeaseRecord& r = lease.record;
  out_.to_send.push_back(
      {config_.coordinator, coordinator::Renew{HeaderFor(r.resource, r.renew_request_id), r.token, r.term}});
  lease.last_sent = now;
}

void AgentCore::SendRelease(Lease& lease, DtnTime now) {
  const LeaseRecord& r = lease.record;
  out_.to_send.push_back(
      {config_.coordinator, coordinator::Release{HeaderFor(r.resource, r.release_request_id), r.token}});
  lease.last_sent = now;
}

void AgentCore::SendReleaseFor(const coordinator::Header& h, FencingToken token) {
  // One shot: if it is lost, the lease still ends at the coordinator's expiry.
  out_.to_send.push_back(
      {config_.coordinator, coordinator::Release{HeaderFor(h.resource, NextRequestId()), token}});
  ++counters_.unexpected_released;
}

void AgentCore::EndHeld(std::map<ResourceName, Lease>::iterator it, Outcome outcome, std::string reason,
                        DtnTime now) {
  Lease lease = std::move(it->second);
  leases_.erase(it);
  if (outcome == Outcome::kLapsed) {
    ++counters_.lapsed;
  }
  Notify(outcome, lease.record, std::move(reason));
  StartReleasing(std::move(lease), now);
}

void AgentCore::StartReleasing(Lease lease, DtnTime now) {
  LeaseRecord& r = lease.record;
  r.state = LeaseState::kReleasing;
  r.renew_request_id = 0;
  r.release_request_id = NextRequestId();
  r.release_give_up_at = ReleaseGiveUp(r);
  if (releasing_.size() >= config_.max_releasing) {
    // Bounded: the oldest release is dropped (its lease ends at the coordinator's expiry anyway).
    Forget(releasing_.begin()->second.record);
    releasing_.erase(releasing_.begin());
  }
  Persist(lease);
  SendRelease(lease, now);
  const RequestId key = r.acquire_request_id;
  releasing_.insert_or_assign(key, std::move(lease));
}

void AgentCore::Acquire(const AcquireRequest& request, DtnTime now) {
  LeaseRecord probe;
  probe.resource = request.resource;
  const auto refuse = [&](std::string reason) { Notify(Outcome::kRefused, probe, std::move(reason)); };
  if (!ValidName(request.resource)) {
    return refuse(fmt::format("invalid resource name '{}' (tenant and resource must be 1..{} bytes)",
                              request.resource.ToString(), coordinator::kMaxNameBytes));
  }
  if (request.hold <= Duration(0)) {
    return refuse(fmt::format("hold duration {} is not positive", clock::FormatDuration(request.hold)));
  }
  if (request.wait_deadline <= now) {
    return refuse(fmt::format("wait deadline {} has already passed (now {})",
                              request.wait_deadline.ToIso8601(), now.ToIso8601()));
  }
  if (auto it = leases_.find(request.resource); it != leases_.end()) {
    const LeaseRecord& r = it->second.record;
    return refuse(r.state == LeaseState::kHeld
                      ? fmt::format("already held (token {})", r.token)
                      : fmt::format("already requested (request {})", r.acquire_request_id));
  }
  if (leases_.size() >= config_.max_leases) {
    return refuse(fmt::format("too many leases and requests at once (limit {})", config_.max_leases));
  }
  Lease lease;
  lease.record = NewRequest(request.resource, request.hold, request.wait_deadline, now);
  LeaseRecord& r = lease.record;
  r.acquire_request_id = NextRequestId();
  Persist(lease);
  SendAcquire(lease, now);
  Notify(Outcome::kRequested, r);
  leases_.emplace(request.resource, std::move(lease));
}

void AgentCore::Release(const ResourceName& resource, DtnTime now) {
  auto it = leases_.find(resource);
  if (it == leases_.end()) {
    LeaseRecord probe;
    probe.resource = resource;
    Notify(Outcome::kRefused, probe, "no lease or request for this resource");
    return;
  }
  if (it->second.record.state == LeaseState::kHeld) {
    EndHeld(it, Outcome::kReleased, "released on request", now);
    return;
  }
  // Still requesting: nothing to release yet. A grant that arrives later is unexpected and is
  // released explicitly then.
  Notify(Outcome::kReleased, it->second.record, "request cancelled before a grant");
  Forget(it->second.record);
  leases_.erase(it);
}

AgentStatus AgentCore::Status(DtnTime now) const {
  AgentStatus status;
  status.epoch = epoch_;
  status.counters = counters_;
  const auto add = [&](const Lease& lease) {
    const LeaseRecord& r = lease.record;
    LeaseStatus s;
    s.resource = r.resource;
    s.state = r.state;
    s.request_id = r.acquire_request_id;
    s.token = r.token;
    s.epoch = r.epoch;
    s.deadline = r.deadline;
    s.queue_position = lease.queue_position;
    s.renewing = r.renew_request_id != 0;
    if (r.state == LeaseState::kHeld) {
      s.valid_until = r.view_end;
      s.remaining = std::max(Duration(0), r.view_end - now);
    }
    status.leases.push_back(std::move(s));
  };
  for (const auto& [name, lease] : leases_) add(lease);
  for (const auto& [id, lease] : releasing_) add(lease);
  return status;
}

bool AgentCore::MayUse(const ResourceName& resource, DtnTime now) const {
  auto it = leases_.find(resource);
  return it != leases_.end() && it->second.record.state == LeaseState::kHeld &&
         now < it->second.record.view_end;
}

std::optional<coordinator::Use> AgentCore::MakeUse(const ResourceName& resource, std::string operation,
                                                   DtnTime now) const {
  if (!MayUse(resource, now)) {
    return std::nullopt;
  }
  const LeaseRecord& r = leases_.at(resource).record;
  return coordinator::Use{HeaderFor(resource, r.acquire_request_id), r.token, std::move(operation)};
}

void AgentCore::OnMessage(const Message& message, NodeNumber source, DtnTime now,
                          std::optional<DtnTime> sent_at) {
  // Guard replies come from whichever node fronts the resource.
  if (const auto* accepted = std::get_if<coordinator::UseAccepted>(&message)) {
    LeaseRecord r;
    r.resource = accepted->h.resource;
    r.token = accepted->token;
    Notify(Outcome::kUseAccepted, r);
    return;
  }
  if (const auto* rejected = std::get_if<coordinator::UseRejected>(&message)) {
    LeaseRecord r;
    r.resource = rejected->h.resource;
    r.token = rejected->token;
    Notify(Outcome::kUseRejected, r,
           fmt::format("guard rejected token {} (highest seen {}): {}", rejected->token,
                       rejected->highest_seen, rejected->detail));
    // A guard that has seen a higher token proves the coordinator has moved on: stop now.
    auto it = leases_.find(rejected->h.resource);
    if (it != leases_.end() && it->second.record.state == LeaseState::kHeld &&
        it->second.record.token == rejected->token && rejected->highest_seen > rejected->token) {
      EndHeld(it, Outcome::kLapsed, "a guard has seen a higher fencing token", now);
    }
    return;
  }
  const bool for_agent = std::holds_alternative<coordinator::Grant>(message) ||
                         std::holds_alternative<coordinator::Queued>(message) ||
                         std::holds_alternative<coordinator::Deny>(message) ||
                         std::holds_alternative<coordinator::Renewed>(message) ||
                         std::holds_alternative<coordinator::Released>(message) ||
                         std::holds_alternative<coordinator::ExpiredNotice>(message) ||
                         std::holds_alternative<coordinator::StaleEpoch>(message);
  const coordinator::Header& h =
      std::visit([](const auto& m) -> const coordinator::Header& { return m.h; }, message);
  if (!for_agent || source != config_.coordinator || h.sender != source) {
    ++counters_.foreign_dropped;
    return;
  }
  if (const auto* stale = std::get_if<coordinator::StaleEpoch>(&message)) {
    OnStaleEpoch(*stale, now);
    return;
  }
  if (h.epoch < epoch_) {
    // From before the coordinator's last restart: never acted upon.
    ++counters_.old_epoch_dropped;
    return;
  }
  LearnEpochFrom(h.epoch);
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, coordinator::Grant>) {
          OnGrant(m, now);
        } else if constexpr (std::is_same_v<T, coordinator::Queued>) {
          OnQueued(m, now, sent_at);
        } else if constexpr (std::is_same_v<T, coordinator::Deny>) {
          OnDeny(m, now);
        } else if constexpr (std::is_same_v<T, coordinator::Renewed>) {
          OnRenewed(m, now);
        } else if constexpr (std::is_same_v<T, coordinator::Released>) {
          OnReleased(m, now);
        } else if constexpr (std::is_same_v<T, coordinator::ExpiredNotice>) {
          OnExpired(m, now);
        }
      },
      message);
}

void AgentCore::OnGrant(const coordinator::Grant& m, DtnTime now) {
  auto it = leases_.find(m.h.resource);
  if (it != leases_.end()) {
    Lease& lease = it->second;
    LeaseRecord& r = lease.record;
    if (r.state == LeaseState::kRequesting && r.acquire_request_id == m.h.request_id && m.token != 0 &&
        m.term > Duration(0)) {
      // The view counts from the FIRST transmission of this request id (the coordinator may have
      // granted on that copy), or from the latest proof that it had not granted yet.
      r.term = std::min(r.term, m.term);
      r.state = LeaseState::kHeld;
      r.token = m.token;
      r.epoch = m.h.epoch;
      r.view_start = std::max(r.first_sent_at, r.count_from);
      r.view_end = r.view_start + config_.policy.HolderView(r.term).value;
      r.hold_until = now + r.hold;
      lease.queue_position = 0;
      if (r.view_end <= now) {
        // Granted, but by our conservative count it has already ended (a long queue, lost copies
        // of the request, a sleep): never used, released at once. While the wait deadline allows,
        // ask again under a new id, so the next grant counts from a recent send.
        if (now < r.deadline) {
          LeaseRecord fresh = NewRequest(r.resource, r.hold, r.deadline, now);
          StartReleasing(std::exchange(lease, Lease{}), now);
          Rerequest(lease, std::move(fresh), now);
          return;
        }
        EndHeld(it, Outcome::kLapsed, "granted after the agent's view of the lease had already ended", now);
        return;
      }
      Persist(lease);
      Notify(Outcome::kGranted, r, m.policy);
      return;
    }
    if (r.state == LeaseState::kHeld && r.token == m.token) {
      ++counters_.duplicates_ignored;
      return;
    }
  }
  for (const auto& [id, lease] : releasing_) {
    if (lease.record.resource == m.h.resource && lease.record.token == m.token) {
      ++counters_.duplicates_ignored;  // already being released
      return;
    }
  }
  if (m.token == 0) {
    ++counters_.foreign_dropped;
    return;
  }
  // Unexpected (a request we gave up, cancelled or forgot) or stale: release it explicitly so the
  // resource is not stuck until its expiry.
  SendReleaseFor(m.h, m.token);
}

void AgentCore::OnQueued(const coordinator::Queued& m, DtnTime now, std::optional<DtnTime> sent_at) {
  auto it = leases_.find(m.h.resource);
  if (it == leases_.end() || it->second.record.state != LeaseState::kRequesting ||
      it->second.record.acquire_request_id != m.h.request_id) {
    ++counters_.duplicates_ignored;
    return;
  }
  // The request was still waiting when this reply left the coordinator, so any grant for it
  // starts its term after that instant. Two lower bounds of it on our clock: a worst one-way trip
  // before now (our clock may run fast: subtract our drift over the trip too), which fails if the
  // bundle sat in a store longer than a trip (a relay's outage, our restart before we confirmed
  // it); and the bundle's creation time on the coordinator's clock less both clocks' skew bounds
  // (as LeaseCore bounds requester deadlines), which fails only if a clock breaks its bound. The
  // earlier of the two holds if either does. Without a creation time, no proof.
  const Duration one_way = config_.policy.OneWayMax().value;
  const auto& inputs = config_.policy.inputs();
  const DtnTime by_trip = now - one_way - inputs.requester.DriftOver(one_way);
  const std::optional<DtnTime> proof =
      sent_at && sent_at->millis() != 0
          ? std::optional(std::min(by_trip, *sent_at - inputs.SkewSumMax()))
          : std::nullopt;
  LeaseRecord& r = it->second.record;
  if (proof && *proof > r.count_from) {
    r.count_from = *proof;
    Persist(it->second);
  }
  // Queued: the coordinator holds the waiter durably and will send the grant itself, so from now
  // on retransmissions back off. The first Queued in an epoch starts the back-off afresh; later
  // ones (answers to retransmissions) leave it growing.
  if (it->second.retry_interval == Duration(0) || it->second.queued_epoch < m.h.epoch) {
    it->second.retry_interval = request_timeout_;
  }
  it->second.queued_epoch = m.h.epoch;
  if (it->second.queue_position == m.position) {
    return;
  }
  it->second.queue_position = m.position;
  Notify(Outcome::kQueued, it->second.record);
  out_.notifications.back().queue_position = m.position;
}

void AgentCore::OnDeny(const coordinator::Deny& m, DtnTime now) {
  const std::string reason = fmt::format("{}: {}", DenyName(m.reason), m.detail);
  auto it = leases_.find(m.h.resource);
  if (it != leases_.end()) {
    LeaseRecord& r = it->second.record;
    if (r.state == LeaseState::kRequesting && r.acquire_request_id == m.h.request_id) {
      Notify(Outcome::kDenied, r, reason);
      Forget(r);
      leases_.erase(it);
      return;
    }
    if (r.state == LeaseState::kHeld && r.renew_request_id == m.h.request_id) {
      if (m.reason == coordinator::DenyReason::kNotHolder || m.reason == coordinator::DenyReason::kExpired) {
        // The coordinator no longer counts us as the holder: stop now; nothing left to release.
        ++counters_.lapsed;
        Notify(Outcome::kLapsed, r, "renewal denied: " + reason);
        Forget(r);
        leases_.erase(it);
        return;
      }
      // Still held until our view ends, but not renewable: stop wanting it beyond the view.
      r.renew_request_id = 0;
      r.hold_until = std::min(r.hold_until, r.view_end);
      Persist(it->second);
      return;
    }
  }
  for (auto rel = releasing_.begin(); rel != releasing_.end(); ++rel) {
    if (rel->second.record.release_request_id == m.h.request_id &&
        rel->second.record.resource == m.h.resource) {
      Forget(rel->second.record);  // not the holder any more: nothing left to release
      releasing_.erase(rel);
      return;
    }
  }
  (void)now;
  ++counters_.duplicates_ignored;
}

void AgentCore::OnRenewed(const coordinator::Renewed& m, DtnTime now) {
  auto it = leases_.find(m.h.resource);
  if (it != leases_.end() && it->second.record.state == LeaseState::kHeld &&
      it->second.record.token == m.token) {
    LeaseRecord& r = it->second.record;
    if (r.renew_request_id != m.h.request_id || m.term <= Duration(0)) {
      ++counters_.duplicates_ignored;
      return;
    }
    // As for a grant: counted from the first transmission of this renewal.
    r.term = std::min(r.term, m.term);
    const DtnTime end = r.renew_first_sent_at + config_.policy.HolderView(r.term).value;
    if (end > r.view_end) {
      r.view_start = r.renew_first_sent_at;
      r.view_end = end;
    }
    r.renew_request_id = 0;
    Persist(it->second);
    Notify(Outcome::kRenewed, r, m.policy);
    return;
  }
  for (const auto& [id, lease] : releasing_) {
    if (lease.record.resource == m.h.resource && lease.record.token == m.token) {
      ++counters_.duplicates_ignored;  // lapsed or released already: the release is under way
      return;
    }
  }
  if (m.token == 0) {
    ++counters_.foreign_dropped;
    return;
  }
  // A renewal for a lease we no longer track never resurrects it.
  (void)now;
  SendReleaseFor(m.h, m.token);
}

void AgentCore::OnReleased(const coordinator::Released& m, DtnTime now) {
  if (EndedBeforeGrantArrived(m.h, "released", now)) return;
  for (auto rel = releasing_.begin(); rel != releasing_.end(); ++rel) {
    const LeaseRecord& r = rel->second.record;
    if (r.resource == m.h.resource && (r.release_request_id == m.h.request_id || r.token == m.token)) {
      Forget(r);
      releasing_.erase(rel);
      return;
    }
  }
  ++counters_.duplicates_ignored;
}

LeaseRecord AgentCore::NewRequest(const ResourceName& resource, Duration hold, DtnTime deadline,
                                   DtnTime now) const {
  LeaseRecord r;
  r.resource = resource;
  r.state = LeaseState::kRequesting;
  r.term = config_.lease_term;
  r.hold = hold;
  r.deadline = deadline;
  r.first_sent_at = now;
  r.count_from = now;
  return r;
}

void AgentCore::Rerequest(Lease& lease, LeaseRecord fresh, DtnTime now) {
  lease = Lease{};
  lease.record = std::move(fresh);
  lease.record.acquire_request_id = NextRequestId();
  ++counters_.rerequested;
  Persist(lease);
  SendAcquire(lease, now);
}

bool AgentCore::EndedBeforeGrantArrived(const coordinator::Header& h, std::string_view how, DtnTime now) {
  // The coordinator answers a duplicate Acquire whose grant has already ended with Released or
  // ExpiredNotice: the grant was lost on the way and the lease is over, nothing to release. While
  // the wait deadline allows, ask again under a new id (as for a grant that arrives too late);
  // otherwise stop asking.
  auto it = leases_.find(h.resource);
  if (it == leases_.end() || it->second.record.state != LeaseState::kRequesting ||
      it->second.record.acquire_request_id != h.request_id) {
    return false;
  }
  if (now < it->second.record.deadline) {
    const LeaseRecord& old = it->second.record;
    LeaseRecord fresh = NewRequest(old.resource, old.hold, old.deadline, now);
    Forget(old);
    Rerequest(it->second, std::move(fresh), now);
    return true;
  }
  ++counters_.lapsed;
  Notify(Outcome::kLapsed, it->second.record,
         fmt::format("the request was granted but the lease {} before the grant arrived", how));
  Forget(it->second.record);
  leases_.erase(it);
  return true;
}

void AgentCore::OnExpired(const coordinator::ExpiredNotice& m, DtnTime now) {
  if (EndedBeforeGrantArrived(m.h, "expired", now)) return;
  auto it = leases_.find(m.h.resource);
  if (it != leases_.end() && it->second.record.state == LeaseState::kHeld &&
      it->second.record.token == m.token) {
    // Normally our view ended first; if not (a renewal crossed the expiry), stop now.
    ++counters_.lapsed;
    Notify(Outcome::kLapsed, it->second.record, "the coordinator reports the lease expired");
    Forget(it->second.record);
    leases_.erase(it);
    return;
  }
  for (auto rel = releasing_.begin(); rel != releasing_.end(); ++rel) {
    if (rel->second.record.resource == m.h.resource && rel->second.record.token == m.token) {
      Forget(rel->second.record);
      releasing_.erase(rel);
      return;
    }
  }
  (void)now;
  ++counters_.duplicates_ignored;
}

void AgentCore::OnStaleEpoch(const coordinator::StaleEpoch& m, DtnTime now) {
  if (m.current < epoch_) {
    ++counters_.old_epoch_dropped;
    return;
  }
  LearnEpochFrom(m.current);
  // Resend the refused message, same request id, with the epoch just learned.
  auto it = leases_.find(m.h.resource);
  if (it != leases_.end()) {
    Lease& lease = it->second;
    if (lease.record.state == LeaseState::kRequesting && lease.record.acquire_request_id == m.h.request_id) {
      ++counters_.stale_epoch_resent;
      lease.retry_interval = Duration(0);  // not queued in the new epoch until it says so
      lease.unanswered_interval = Duration(0);  // answered: a resend is due after a round trip
      SendAcquire(lease, now);
      return;
    }
    if (lease.record.state == LeaseState::kHeld && lease.record.renew_request_id == m.h.request_id) {
      ++counters_.stale_epoch_resent;
      SendRenew(lease, now);
      return;
    }
  }
  for (auto& [id, lease] : releasing_) {
    if (lease.record.resource == m.h.resource && lease.record.release_request_id == m.h.request_id) {
      ++counters_.stale_epoch_resent;
      SendRelease(lease, now);
      return;
    }
  }
  ++counters_.duplicates_ignored;
}

void AgentCore::Tick(DtnTime now) {
  for (auto it = leases_.begin(); it != leases_.end();) {
    auto current = it++;
    Lease& lease = current->second;
    LeaseRecord& r = lease.record;
    if (r.state == LeaseState::kRequesting) {
      if (now >= r.deadline) {
        ++counters_.gave_up;
        Notify(Outcome::kGaveUp, r,
               fmt::format("no grant before the wait deadline {}", r.deadline.ToIso8601()));
        Forget(r);
        leases_.erase(current);
      } else if (now >= RetryTime(lease)) {
        ++counters_.retransmissions;
        if (lease.retry_interval != Duration(0)) {
          ++counters_.queued_retransmissions;
          if (lease.queued_epoch < epoch_) {
            // Resent into a new epoch: unqueued until the coordinator answers in it.
            lease.retry_interval = Duration(0);
            lease.unanswered_interval = Duration(0);
          } else {
            lease.retry_interval = std::min(2 * lease.retry_interval, queued_retry_max_);
          }
        } else {
          // No answer yet: every copy sent is stored on the way if the path is down, so only a
          // lost bundle needs another; back off as while queued.
          lease.unanswered_interval =
              std::min(2 * std::max(request_timeout_, lease.unanswered_interval), unanswered_retry_max_);
        }
        SendAcquire(lease, now);
      }
      continue;
    }
    // Held.
    if (now >= r.view_end) {
      EndHeld(current, Outcome::kLapsed, "the agent's own view of the lease ended", now);
      continue;
    }
    if (now >= r.hold_until) {
      EndHeld(current, Outcome::kReleased, "the hold duration ended", now);
      continue;
    }
    if (r.renew_request_id != 0) {
      if (now >= lease.last_sent + request_timeout_) {
        ++counters_.retransmissions;
        SendRenew(lease, now);
      }
    } else if (r.hold_until > r.view_end && now >= RenewTime(r)) {
      r.renew_request_id = NextRequestId();
      r.renew_first_sent_at = now;
      Persist(lease);
      SendRenew(lease, now);
    }
  }
  for (auto it = releasing_.begin(); it != releasing_.end();) {
    auto current = it++;
    Lease& lease = current->second;
    if (now >= lease.record.release_give_up_at) {
      Forget(lease.record);
      releasing_.erase(current);
    } else if (now >= lease.last_sent + request_timeout_) {
      ++counters_.retransmissions;
      SendRelease(lease, now);
    }
  }
}

std::optional<DtnTime> AgentCore::NextDeadline() const {
  std::optional<DtnTime> next;
  const auto consider = [&next](DtnTime t) {
    if (!next || t < *next) next = t;
  };
  for (const auto& [name, lease] : leases_) {
    const LeaseRecord& r = lease.record;
    if (r.state == LeaseState::kRequesting) {
      consider(r.deadline);
      consider(RetryTime(lease));
      continue;
    }
    consider(r.view_end);
    consider(r.hold_until);
    if (r.renew_request_id != 0) {
      consider(lease.last_sent + request_timeout_);
    } else if (r.hold_until > r.view_end) {
      consider(RenewTime(r));
    }
  }
  for (const auto& [id, lease] : releasing_) {
    consider(lease.record.release_give_up_at);
    consider(lease.last_sent + request_timeout_);
  }
  return next;
}

AgentOutput AgentCore::TakeOutput() { return std::exchange(out_, AgentOutput{}); }

}  // namespace ics::rover_agent
