// Why the core is shaped as it is:
//  - Every decision is a LogRecord plus messages, queued in out_; the driver commits the records
//    before sending, so nothing here needs to know about storage.
//  - All timed work (lease expiries, hold-off ends, waiter give-ups) sits in one ordered set keyed
//    by (time, kind, resource, ...). Tick pops what is due, O(log n) each, so 10,000 leases falling
//    due together end in one call. Entries are erased when the thing they time changes (renewal,
//    release, grant), so no stale entry ever fires.
//  - At one instant, waiter give-ups sort before lease expiries and hold-off ends (TimerKind
//    order), so a waiter whose deadline is no longer provable is dropped before it could be
//    granted at that same instant.
//  - Receive first runs everything due at `now`: a renewal that arrives at or after the expiry
//    instant finds the lease already ended (kExpired), never revived.
#include "coordinator/lease_core.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

// GCC 12 warns about members left out of a designated initializer even when they have default
// member initializers (GCC 13 does not); the Refusal/Answer initializers below rely on defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ics::coordinator {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "LeaseCore: %s\n", message.c_str());
  std::abort();
}

// An instant in a reason an operator reads: UTC ISO-8601 with milliseconds.
std::string Iso(clock::DtnTime t) { return t.ToIso8601(); }
std::string D(clock::Duration d) { return clock::FormatDuration(d); }

clock::Duration Abs(clock::Duration d) { return d < clock::Duration(0) ? -d : d; }

// Every field of PolicyInputs (the assertion fails when one is added: compare it here too).
static_assert(sizeof(clock::PolicyInputs) == 64, "PolicyInputs changed: update SameInputs");
bool SameInputs(const clock::PolicyInputs& a, const clock::PolicyInputs& b) {
  return a.path.owlt == b.path.owlt && a.path.contact_wait_max == b.path.contact_wait_max &&
         a.requester.drift_ppm == b.requester.drift_ppm && a.requester.skew == b.requester.skew &&
         a.coordinator.drift_ppm == b.coordinator.drift_ppm && a.coordinator.skew == b.coordinator.skew &&
         a.processing_margin == b.processing_margin;
}

bool ValidName(const ResourceName& name) {
  return !name.tenant.empty() && !name.resource.empty() && name.tenant.size() <= kMaxNameBytes &&
         name.resource.size() <= kMaxNameBytes;
}

}  // namespace

LeaseCore::LeaseCore(LeaseCoreConfig config, LeaseTable restored, PolicySource policy, clock::DtnTime now)
    : config_(config), policy_(std::move(policy)) {
  if (config_.epoch == 0) Die("constructed with epoch 0: start an epoch (LeaseLog::StartEpoch) first");
  if (!policy_) Die("constructed without a policy source");
  term_memo_.reserve(kTermMemoSize);
  now = Now(now);
  for (auto& [name, state] : restored.resources) {
    if (state.Empty()) continue;
    const auto index = static_cast<ResourceIndex>(resources_.size());
    Resource& r = resources_.emplace_back();
    r.name = name;
    r.last_token = state.last_token;
    r.hold_until = state.hold_until;
    by_name_.emplace(name, index);
    if (state.lease) {
      const LeaseState& l = *state.lease;
      if (l.token > r.last_token) {
        Die(fmt::format("restored lease of {} has token {} above the last token {}", name.ToString(), l.token,
                        r.last_token));
      }
      r.lease = Lease{l.holder, l.request_id, l.token, l.term, l.expires, l.granted_epoch, l.policy};
      live_[{l.holder, l.request_id}] = index;
      AddTimer({l.expires, TimerKind::kLeaseExpiry, index, 0, l.token});
      LogRecord rec = Record(EventKind::kRestore, now, name);
      rec.rover = l.holder;
      rec.request_id = l.request_id;
      rec.token = l.token;
      rec.lease_expires = l.expires;
      rec.term = l.term;
      rec.reason = fmt::format(
          "lease restored from the lease table (granted in epoch {}): held until it expires "
          "at {} plus the regrant margin, or is released",
          l.granted_epoch, Iso(l.expires));
      rec.policy = l.policy;
      out_.to_persist.push_back(std::move(rec));
    }
    std::uint32_t position = 0;
    for (const WaiterState& w : state.waiters) {
      const clock::TimeoutPolicy p = policy_(w.requester, now);
      const Waiter waiter{w.requester, w.request_id, w.term, w.deadline, GiveUpAt(p, w.deadline)};
      r.waiters.push_back(waiter);
      live_[{w.requester, w.request_id}] = index;
      AddTimer({waiter.give_up_at, TimerKind::kWaiterGiveUp, index, w.requester, w.request_id});
      LogRecord rec = Record(EventKind::kRestore, now, name);
      rec.rover = w.requester;
      rec.request_id = w.request_id;
      rec.term = w.term;
      rec.deadline = w.deadline;
      rec.reason = fmt::format("waiter restored at queue position {}", ++position);
      out_.to_persist.push_back(std::move(rec));
    }
    if (!r.lease && !r.waiters.empty()) {
      AddTimer({std::max(r.hold_until, now), TimerKind::kHoldOffEnd, index, 0, 0});
    }
  }
}

clock::DtnTime LeaseCore::Now(clock::DtnTime now) {
  if (last_now_ && now < *last_now_) now = *last_now_;
  last_now_ = now;
  return now;
}

std::optional<clock::DtnTime> LeaseCore::NextDeadline() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->at;
}

Output LeaseCore::TakeOutput() { return std::exchange(out_, Output{}); }

void LeaseCore::Tick(clock::DtnTime now) { ProcessDue(Now(now)); }

void LeaseCore::ProcessDue(clock::DtnTime now) {
  while (!timers_.empty() && timers_.begin()->at <= now) {
    const Timer t = *timers_.begin();
    timers_.erase(timers_.begin());
    switch (t.kind) {
      case TimerKind::kWaiterGiveUp:
        OnWaiterGiveUp(t.resource, t.node, t.id, now);
        break;
      case TimerKind::kLeaseExpiry:
        OnLeaseExpiry(t.resource, t.id, now);
        break;
      case TimerKind::kHoldOffEnd:
        GrantNext(t.resource, now);
        break;
    }
  }
}

// --- messages ------------------------------------------------------------------------------------

void LeaseCore::Receive(const Inbound& inbound, clock::DtnTime now) {
  now = Now(now);
  ProcessDue(now);
  const Message& message = inbound.message;
  const Header& h = HeaderOf(message);
  const std::string_view name = MessageName(message);

  if (h.sender != inbound.from) {
    SendDeny({.to = inbound.from,
              .request = h,
              .reason = DenyReason::kBadRequest,
              .detail = fmt::format("{}: header sender {} is not the bundle source {}", name, h.sender,
                                    inbound.from)},
             now);
    return;
  }
  const bool for_coordinator = std::holds_alternative<Acquire>(message) ||
                               std::holds_alternative<Renew>(message) ||
                               std::holds_alternative<Release>(message);
  if (!for_coordinator) {
    // Logged, not answered: an answer to a misdirected answer could loop between two cores.
    LogRecord rec = Record(EventKind::kDeny, now, h.resource);
    rec.rover = inbound.from;
    rec.request_id = h.request_id;
    rec.reason = fmt::format("bad_request: a coordinator does not accept {} messages (not answered)", name);
    out_.to_persist.push_back(std::move(rec));
    return;
  }
  if (!ValidName(h.resource)) {
    SendDeny(
        {.to = inbound.from,
         .request = h,
         .reason = DenyReason::kBadRequest,
         .detail = fmt::format("{}: resource name '{}' is not tenant/resource", name, h.resource.ToString())},
        now);
    return;
  }
  if (h.epoch > config_.epoch) {
    SendDeny({.to = inbound.from,
              .request = h,
              .reason = DenyReason::kBadRequest,
              .detail = fmt::format("{}: epoch {} is newer than the coordinator's current epoch {}", name,
                                    h.epoch, config_.epoch)},
             now);
    return;
  }
  if (h.epoch != 0 && h.epoch < config_.epoch) {
    Send(inbound.from, StaleEpoch{ReplyHeader(h.resource, h.request_id), config_.epoch});
    LogRecord rec = Record(EventKind::kStaleEpoch, now, h.resource);
    rec.rover = inbound.from;
    rec.request_id = h.request_id;
    if (const auto* renew = std::get_if<Renew>(&message)) rec.token = renew->token;
    if (const auto* release = std::get_if<Release>(&message)) rec.token = release->token;
    rec.reason = fmt::format("{} of epoch {} refused, not acted upon: the current epoch is {}", name, h.epoch,
                             config_.epoch);
    out_.to_persist.push_back(std::move(rec));
    return;
  }
  if (h.epoch == 0 && !std::holds_alternative<Acquire>(message)) {
    SendDeny({.to = inbound.from,
              .request = h,
              .reason = DenyReason::kBadRequest,
              .detail = fmt::format("{}: epoch 0 is allowed only in an acquire", name)},
             now);
    return;
  }
  if (const auto* m = std::get_if<Acquire>(&message)) {
    HandleAcquire(inbound.from, *m, now);
  } else if (const auto* renew = std::get_if<Renew>(&message)) {
    HandleRenew(inbound.from, *renew, now);
  } else {
    HandleRelease(inbound.from, std::get<Release>(message), now);
  }
}

void LeaseCore::HandleAcquire(NodeNumber from, const Acquire& m, clock::DtnTime now) {
  const RequestId id = m.h.request_id;
  const ResourceName& name = m.h.resource;

  // Duplicates: a live request (holder or waiter) first, then a remembered final answer.
  if (auto it = live_.find({from, id}); it != live_.end()) {
    Resource& r = resources_[it->second];
    if (r.name != name) {
      SendDeny({.to = from,
                .request = m.h,
                .reason = DenyReason::kBadRequest,
                .detail = fmt::format("request id {} is already in use for {}", id, r.name.ToString())},
               now);
    } else if (r.lease && r.lease->holder == from && r.lease->request_id == id) {
      const Lease& l = *r.lease;
      Send(from, Grant{ReplyHeader(name, id), l.token, l.term, l.expires, l.policy});
    } else {
      Send(from, Queued{ReplyHeader(name, id), PositionOf(r, from, id)});
    }
    return;
  }
  if (const Answer* a = Recall(from, id)) {
    if (a->resource != name) {
      SendDeny({.to = from,
                .request = m.h,
                .reason = DenyReason::kBadRequest,
                .detail = fmt::format("request id {} was already used for {}", id, a->resource.ToString())},
               now);
      return;
    }
    switch (a->kind) {
      case Answer::Kind::kDenied:
        Send(from, Deny{ReplyHeader(name, id), a->reason, a->detail});
        break;
      case Answer::Kind::kReleased:
        Send(from, Released{ReplyHeader(name, id), a->token});
        break;
      case Answer::Kind::kExpired:
        Send(from, ExpiredNotice{ReplyHeader(name, id), a->token});
        break;
    }
    return;
  }
  const auto memory = memory_.find(from);
  if (memory != memory_.end() && memory->second.any_forgotten && id <= memory->second.forgotten_up_to) {
    SendDeny({.to = from,
              .request = m.h,
              .reason = DenyReason::kBadRequest,
              .detail = fmt::format(
                  "request id {} is at or below {}, the newest id no longer remembered for node {}: "
                  "a late duplicate cannot be told from a new request",
                  id, memory->second.forgotten_up_to, from)},
             now);
    return;
  }
  if (memory == memory_.end() && memory_.size() >= config_.limits.max_requesters) {
    SendDeny({.to = from,
              .request = m.h,
              .reason = DenyReason::kOverloaded,
              .detail = fmt::format("too many requesters (limit {})", config_.limits.max_requesters)},
             now);
    return;
  }

  // A fresh request.
  const clock::TimeoutPolicy policy = policy_(from, now);
  const clock::DtnTime give_up_at = GiveUpAt(policy, m.deadline);
  if (now >= give_up_at) {
    const auto& in = policy.inputs();
    SendDeny({.to = from,
              .request = m.h,
              .reason = DenyReason::kDeadlinePassed,
              .detail = fmt::format(
                  "deadline {} (requester clock) is not provably ahead on arrival: now {} + "
                  "coordinator skew {} + requester skew {} >= deadline",
                  Iso(m.deadline), Iso(now), D(Abs(in.coordinator.skew)), D(Abs(in.requester.skew))),
              .deadline = m.deadline,
              .remember = true},
             now);
    return;
  }
  const TermResult& term = LeaseTerm(policy, m.term);
  if (!term) {
    SendDeny({.to = from,
              .request = m.h,
              .reason = DenyReason::kTermTooShort,
              .detail = term.error().why,
              .policy = term.error().why,
              .remember = true},
             now);
    return;
  }
  std::optional<ResourceIndex> found = Find(name);
  if (!found) {
    if (resources_.size() >= config_.limits.max_resources) {
      SendDeny({.to = from,
                .request = m.h,
                .reason = DenyReason::kOverloaded,
                .detail = fmt::format("too many resources (limit {})", config_.limits.max_resources)},
               now);
      return;
    }
    found = static_cast<ResourceIndex>(resources_.size());
    resources_.emplace_back().name = name;
    by_name_.emplace(name, *found);
  }
  const ResourceIndex index = *found;
  Resource& r = resources_[index];
  if (!r.lease && r.waiters.empty() && now >= r.hold_until) {
    memory_.try_emplace(from);
    GrantTo(index, from, id, *term, now, "granted: the resource was free");
    return;
  }
  if (r.waiters.size() >= config_.limits.max_waiters_per_resource) {
    SendDeny({.to = from,
              .request = m.h,
              .reason = DenyReason::kOverloaded,
              .detail = fmt::format("the queue of {} is full (limit {} waiters)", name.ToString(),
                                    config_.limits.max_waiters_per_resource)},
             now);
    return;
  }
  memory_.try_emplace(from);
  r.waiters.push_back(Waiter{from, id, m.term, m.deadline, give_up_at});
  live_[{from, id}] = index;
  AddTimer({give_up_at, TimerKind::kWaiterGiveUp, index, from, id});
  if (!r.lease) AddTimer({r.hold_until, TimerKind::kHoldOffEnd, index, 0, 0});
  const auto position = static_cast<std::uint32_t>(r.waiters.size());
  LogRecord rec = Record(EventKind::kQueued, now, name);
  rec.rover = from;
  rec.request_id = id;
  rec.term = m.term;
  rec.deadline = m.deadline;
  rec.reason = r.lease ? fmt::format("queued at position {}: held by node {} with token {} until {}",
                                     position, r.lease->holder, r.lease->token, Iso(r.lease->expires))
                       : fmt::format("queued at position {}: no grant before the regrant hold-off ends at {}",
                                     position, Iso(r.hold_until));
  rec.policy = term->why;
  out_.to_persist.push_back(std::move(rec));
  Send(from, Queued{ReplyHeader(name, id), position});
}

void LeaseCore::HandleRenew(NodeNumber from, const Renew& m, clock::DtnTime now) {
  const auto index = Find(m.h.resource);
  Resource* r = index ? &resources_[*index] : nullptr;
  if (r && r->lease && r->lease->token == m.token && r->lease->holder == from) {
    Lease& l = *r->lease;
    const TermResult& term = LeaseTerm(policy_(from, now), m.term);
    if (!term) {
      SendDeny({.to = from,
                .request = m.h,
                .reason = DenyReason::kTermTooShort,
                .detail = term.error().why,
                .policy = term.error().why,
                .token = m.token},
               now);
      return;
    }
    // Never shorten the coordinator's view: the holder may still count on the earlier one.
    const clock::DtnTime expires = std::max(l.expires, now + term->value);
    RemoveTimer({l.expires, TimerKind::kLeaseExpiry, *index, 0, l.token});
    l.expires = expires;
    l.term = term->value;
    l.policy = term->why;
    AddTimer({l.expires, TimerKind::kLeaseExpiry, *index, 0, l.token});
    LogRecord rec = Record(EventKind::kRenew, now, r->name);
    rec.rover = from;
    rec.request_id = m.h.request_id;
    rec.token = l.token;
    rec.lease_expires = l.expires;
    rec.term = l.term;
    rec.reason = "renewed";
    rec.policy = term->why;
    out_.to_persist.push_back(std::move(rec));
    Send(from, Renewed{ReplyHeader(r->name, m.h.request_id), l.token, l.term, l.expires, term->why});
    return;
  }
  const Ended* ended = nullptr;
  if (r) {
    for (const Ended& e : r->ended) {
      if (e.token == m.token && e.holder == from) ended = &e;
    }
  }
  if (ended && ended->expired) {
    SendDeny({.to = from,
              .request = m.h,
              .reason = DenyReason::kExpired,
              .detail = fmt::format("the lease with token {} already ended by expiry", m.token),
              .token = m.token},
             now);
    return;
  }
  const std::string current =
      r && r->lease ? fmt::format("token {} held by node {}", r->lease->token, r->lease->holder) : "none";
  SendDeny({.to = from,
            .request = m.h,
            .reason = DenyReason::kNotHolder,
            .detail = fmt::format("token {} from node {} is not the current lease of {} (current: {})",
                                  m.token, from, m.h.resource.ToString(), current),
            .token = m.token},
           now);
}

void LeaseCore::HandleRelease(NodeNumber from, const Release& m, clock::DtnTime now) {
  const auto index = Find(m.h.resource);
  Resource* r = index ? &resources_[*index] : nullptr;
  if (r && r->lease && r->lease->token == m.token && r->lease->holder == from) {
    const Lease l = *r->lease;
    RemoveTimer({l.expires, TimerKind::kLeaseExpiry, *index, 0, l.token});
    EndLease(*index, /*expired=*/false, now, now, "released by the holder: no hold-off", "");
    Send(from, Released{ReplyHeader(r->name, m.h.request_id), l.token});
    GrantNext(*index, now);
    return;
  }
  const Ended* ended = nullptr;
  if (r) {
    for (const Ended& e : r->ended) {
      if (e.token == m.token && e.holder == from) ended = &e;
    }
  }
  if (ended && !ended->expired) {
    Send(from, Released{ReplyHeader(m.h.resource, m.h.request_id), m.token});  // a repeat: nothing changes
    return;
  }
  if (ended) {
    SendDeny({.to = from,
              .request = m.h,
              .reason = DenyReason::kExpired,
              .detail = fmt::format("the lease with token {} had already ended by expiry", m.token),
              .token = m.token},
             now);
    return;
  }
  SendDeny({.to = from,
            .request = m.h,
            .reason = DenyReason::kNotHolder,
            .detail = fmt::format("token {} from node {} is not a lease of {} this coordinator knows",
                                  m.token, from, m.h.resource.ToString()),
            .token = m.token},
           now);
}

// --- timed work ----------------------------------------------------------------------------------

void LeaseCore::OnLeaseExpiry(ResourceIndex index, FencingToken token, clock::DtnTime now) {
  Resource& r = resources_[index];
  if (!r.lease || r.lease->token != token) {
    Die(fmt::format("expiry timer for {} token {} without that lease", r.name.ToString(), token));
  }
  const Lease l = *r.lease;
  const clock::Explained& margin = RegrantMargin(policy_(l.holder, now), l.term);
  const clock::DtnTime regrant_at = l.expires + margin.value;
  EndLease(index, /*expired=*/true, regrant_at, now,
           fmt::format("expired in the coordinator's view at {}; no re-grant before {}", Iso(l.expires),
                       Iso(regrant_at)),
           margin.why);
  Send(l.holder, ExpiredNotice{ReplyHeader(r.name, l.request_id), l.token});
  AddTimer({std::max(regrant_at, now), TimerKind::kHoldOffEnd, index, 0, 0});
}

void LeaseCore::OnWaiterGiveUp(ResourceIndex index, NodeNumber node, RequestId id, clock::DtnTime now) {
  Resource& r = resources_[index];
  const auto it = std::find_if(r.waiters.begin(), r.waiters.end(),
                               [&](const Waiter& w) { return w.requester == node && w.request_id == id; });
  if (it == r.waiters.end())
    Die(fmt::format("give-up timer for a waiter not queued on {}", r.name.ToString()));
  const Waiter w = *it;
  r.waiters.erase(it);
  live_.erase({node, id});
  const clock::TimeoutPolicy policy = policy_(node, now);
  const auto& in = policy.inputs();
  SendDeny({.to = node,
            .request = ReplyHeader(r.name, id),
            .reason = DenyReason::kDeadlinePassed,
            .detail = fmt::format(
                "deadline {} (requester clock) passed while queued: at {} it is no longer provably "
                "ahead (coordinator skew {} + requester skew {})",
                Iso(w.deadline), Iso(now), D(Abs(in.coordinator.skew)), D(Abs(in.requester.skew))),
            .deadline = w.deadline,
            .remember = true},
           now);
}

void LeaseCore::GrantNext(ResourceIndex index, clock::DtnTime now) {
  Resource& r = resources_[index];
  if (r.lease || now < r.hold_until) return;
  while (!r.waiters.empty()) {
    const Waiter w = r.waiters.front();
    r.waiters.pop_front();
    RemoveTimer({w.give_up_at, TimerKind::kWaiterGiveUp, index, w.requester, w.request_id});
    const Header request = ReplyHeader(r.name, w.request_id);
    if (now >= w.give_up_at) {  // defensive: its give-up timer sorts first and should have run
      live_.erase({w.requester, w.request_id});
      SendDeny({.to = w.requester,
                .request = request,
                .reason = DenyReason::kDeadlinePassed,
                .detail = fmt::format("deadline {} (requester clock) passed while queued", Iso(w.deadline)),
                .deadline = w.deadline,
                .remember = true},
               now);
      continue;
    }
    const TermResult& term = LeaseTerm(policy_(w.requester, now), w.term);
    if (!term) {  // the path grew longer while it waited
      live_.erase({w.requester, w.request_id});
      SendDeny({.to = w.requester,
                .request = request,
                .reason = DenyReason::kTermTooShort,
                .detail = term.error().why,
                .policy = term.error().why,
                .remember = true},
               now);
      continue;
    }
    GrantTo(index, w.requester, w.request_id, *term, now, "granted to the first waiter in the queue");
    return;
  }
}

void LeaseCore::GrantTo(ResourceIndex index, NodeNumber node, RequestId id, const clock::Explained& term,
                        clock::DtnTime now, std::string_view reason) {
  Resource& r = resources_[index];
  if (r.lease || now < r.hold_until)
    Die(fmt::format("grant of {} while held or held off", r.name.ToString()));
  const FencingToken token = ++r.last_token;
  r.lease = Lease{node, id, token, term.value, now + term.value, config_.epoch, term.why};
  live_[{node, id}] = index;
  AddTimer({r.lease->expires, TimerKind::kLeaseExpiry, index, 0, token});
  LogRecord rec = Record(EventKind::kGrant, now, r.name);
  rec.rover = node;
  rec.request_id = id;
  rec.token = token;
  rec.lease_expires = r.lease->expires;
  rec.term = term.value;
  rec.reason = std::string(reason);
  rec.policy = term.why;
  out_.to_persist.push_back(std::move(rec));
  Send(node, Grant{ReplyHeader(r.name, id), token, term.value, r.lease->expires, term.why});
}

void LeaseCore::EndLease(ResourceIndex index, bool expired, clock::DtnTime regrant_at, clock::DtnTime now,
                         std::string reason, std::string policy) {
  Resource& r = resources_[index];
  const Lease l = *r.lease;
  r.lease.reset();
  r.hold_until = regrant_at;
  live_.erase({l.holder, l.request_id});
  r.ended.push_front(Ended{l.token, l.holder, expired});
  if (r.ended.size() > kEndedRemembered) r.ended.pop_back();
  Remember(l.holder, l.request_id,
           Answer{.kind = expired ? Answer::Kind::kExpired : Answer::Kind::kReleased,
                  .resource = r.name,
                  .token = l.token});
  LogRecord rec = Record(expired ? EventKind::kExpiry : EventKind::kRelease, now, r.name);
  rec.rover = l.holder;
  rec.request_id = l.request_id;
  rec.token = l.token;
  rec.lease_expires = l.expires;
  rec.term = l.term;
  rec.regrant_at = regrant_at;
  rec.reason = std::move(reason);
  rec.policy = std::move(policy);
  out_.to_persist.push_back(std::move(rec));
}

// --- helpers -------------------------------------------------------------------------------------

void LeaseCore::SendDeny(Refusal refusal, clock::DtnTime now) {
  const Header& h = refusal.request;
  LogRecord rec = Record(EventKind::kDeny, now, h.resource);
  rec.rover = refusal.to;
  rec.request_id = h.request_id;
  rec.token = refusal.token;
  rec.deadline = refusal.deadline;
  rec.reason = fmt::format("{}: {}", DenyReasonName(refusal.reason), refusal.detail);
  rec.policy = std::move(refusal.policy);
  out_.to_persist.push_back(std::move(rec));
  if (refusal.remember) {
    Remember(refusal.to, h.request_id,
             Answer{.kind = Answer::Kind::kDenied,
                    .resource = h.resource,
                    .reason = refusal.reason,
                    .detail = refusal.detail});
  }
  Send(refusal.to, Deny{ReplyHeader(h.resource, h.request_id), refusal.reason, std::move(refusal.detail)});
}

void LeaseCore::Send(NodeNumber to, Message message) {
  out_.to_send.push_back(Outbound{to, std::move(message)});
}

Header LeaseCore::ReplyHeader(const ResourceName& name, RequestId id) const {
  return Header{name, config_.epoch, id, config_.self};
}

LogRecord LeaseCore::Record(EventKind kind, clock::DtnTime now, const ResourceName& name) const {
  LogRecord rec;
  rec.kind = kind;
  rec.at = now;
  rec.epoch = config_.epoch;
  rec.resource = name;
  return rec;
}

void LeaseCore::Remember(NodeNumber requester, RequestId id, Answer answer) {
  auto it = memory_.find(requester);
  if (it == memory_.end()) {
    if (memory_.size() >= config_.limits.max_requesters) return;  // the ended-lease ring still answers
    it = memory_.emplace(requester, RequesterMemory{}).first;
  }
  RequesterMemory& m = it->second;
  const auto at = std::lower_bound(m.answers.begin(), m.answers.end(), id,
                                   [](const auto& entry, RequestId value) { return entry.first < value; });
  if (at != m.answers.end() && at->first == id) {
    at->second = std::move(answer);
  } else {
    m.answers.emplace(at, id, std::move(answer));
  }
  while (m.answers.size() > config_.limits.max_request_ids_per_requester) {
    const RequestId oldest = m.answers.front().first;
    m.forgotten_up_to = m.any_forgotten ? std::max(m.forgotten_up_to, oldest) : oldest;
    m.any_forgotten = true;
    m.answers.pop_front();
  }
}

const LeaseCore::Answer* LeaseCore::Recall(NodeNumber requester, RequestId id) const {
  const auto it = memory_.find(requester);
  if (it == memory_.end()) return nullptr;
  const auto& answers = it->second.answers;
  const auto at = std::lower_bound(answers.begin(), answers.end(), id,
                                   [](const auto& entry, RequestId value) { return entry.first < value; });
  return at == answers.end() || at->first != id ? nullptr : &at->second;
}

const LeaseCore::TermResult& LeaseCore::LeaseTerm(const clock::TimeoutPolicy& policy,
                                                  clock::Duration requested) {
  return Memoized(policy, requested, /*regrant_margin=*/false);
}

const clock::Explained& LeaseCore::RegrantMargin(const clock::TimeoutPolicy& policy, clock::Duration term) {
  return *Memoized(policy, term, /*regrant_margin=*/true);
}

const LeaseCore::TermResult& LeaseCore::Memoized(const clock::TimeoutPolicy& policy, clock::Duration term,
                                                 bool regrant_margin) {
  const clock::PolicyInputs& in = policy.inputs();
  for (const TermMemo& memo : term_memo_) {
    if (memo.term == term && memo.regrant_margin == regrant_margin && SameInputs(memo.inputs, in))
      return memo.result;
  }
  TermMemo memo{in, term, regrant_margin,
                regrant_margin ? TermResult(policy.RegrantMargin(term)) : policy.LeaseTerm(term)};
  if (term_memo_.size() < kTermMemoSize) {
    term_memo_.push_back(std::move(memo));
    return term_memo_.back().result;
  }
  TermMemo& slot = term_memo_[term_memo_next_];
  term_memo_next_ = (term_memo_next_ + 1) % kTermMemoSize;
  slot = std::move(memo);
  return slot.result;
}

clock::DtnTime LeaseCore::GiveUpAt(const clock::TimeoutPolicy& policy, clock::DtnTime deadline) {
  // The requester gives up when its clock reads `deadline`, which may be as early as true time
  // deadline - requester skew; our `now` may trail true time by the coordinator skew. Only while
  // now + both skews < deadline is the requester provably still waiting.
  return deadline - policy.inputs().SkewSumMax();
}

std::optional<LeaseCore::ResourceIndex> LeaseCore::Find(const ResourceName& name) const {
  const auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::uint32_t LeaseCore::PositionOf(const Resource& r, NodeNumber node, RequestId id) const {
  std::uint32_t position = 1;
  for (const Waiter& w : r.waiters) {
    if (w.requester == node && w.request_id == id) return position;
    ++position;
  }
  Die(fmt::format("node {} request {} is live on {} but neither holder nor waiter", node, id,
                  r.name.ToString()));
}

LeaseTable LeaseCore::Snapshot() const {
  LeaseTable table;
  for (const Resource& r : resources_) {
    ResourceState state;
    state.last_token = r.last_token;
    state.hold_until = r.hold_until;
    if (r.lease) {
      const Lease& l = *r.lease;
      state.lease = LeaseState{l.holder, l.request_id, l.token, l.term, l.expires, l.granted_epoch, l.policy};
    }
    for (const Waiter& w : r.waiters)
      state.waiters.push_back({w.requester, w.request_id, w.term, w.deadline});
    if (!state.Empty()) table.resources.emplace(r.name, std::move(state));
  }
  return table;
}

}  // namespace ics::coordinator
