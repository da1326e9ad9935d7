// ApplyToTable is the reference semantics of the lease table; the SQLite log applies the same
// rules in SQL, and the tests compare the two after the same records.
#include "coordinator/lease_log.h"

#include <algorithm>
#include <array>
#include <utility>

namespace ics::coordinator {
namespace {

constexpr std::array<std::string_view, 9> kKindNames = {
    "epoch_start", "restore", "grant", "queued", "renew", "release", "expiry", "deny", "stale_epoch"};

void RemoveWaiter(ResourceState& state, const LogRecord& record) {
  if (!record.rover || !record.request_id) return;
  std::erase_if(state.waiters, [&](const WaiterState& w) {
    return w.requester == *record.rover && w.request_id == *record.request_id;
  });
}

}  // namespace

std::string_view EventKindName(EventKind kind) { return kKindNames.at(static_cast<std::size_t>(kind)); }

std::optional<EventKind> ParseEventKind(std::string_view name) {
  for (std::size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == name) return static_cast<EventKind>(i);
  }
  return std::nullopt;
}

void ApplyToTable(LeaseTable& table, const LogRecord& record) {
  switch (record.kind) {
    case EventKind::kEpochStart:
    case EventKind::kRestore:
    case EventKind::kStaleEpoch:
      return;
    case EventKind::kGrant: {
      if (!record.token || !record.rover || !record.request_id || !record.lease_expires || !record.term)
        return;
      ResourceState& state = table.resources[record.resource];
      state.last_token = std::max(state.last_token, *record.token);
      state.lease = LeaseState{*record.rover,         *record.request_id, *record.token, *record.term,
                               *record.lease_expires, record.epoch,       record.policy};
      RemoveWaiter(state, record);
      return;
    }
    case EventKind::kQueued: {
      if (!record.rover || !record.request_id || !record.term || !record.deadline) return;
      ResourceState& state = table.resources[record.resource];
      state.waiters.push_back(WaiterState{*record.rover, *record.request_id, *record.term, *record.deadline});
      return;
    }
    case EventKind::kRenew: {
      const auto it = table.resources.find(record.resource);
      if (it == table.resources.end() || !it->second.lease || !record.token || !record.lease_expires ||
          !record.term || it->second.lease->token != *record.token) {
        return;
      }
      LeaseState& lease = *it->second.lease;
      lease.expires = *record.lease_expires;
      lease.term = *record.term;
      lease.policy = record.policy;
      return;
    }
    case EventKind::kRelease:
    case EventKind::kExpiry: {
      const auto it = table.resources.find(record.resource);
      if (it == table.resources.end() || !it->second.lease || !record.token || !record.regrant_at ||
          it->second.lease->token != *record.token) {
        return;
      }
      it->second.lease.reset();
      it->second.hold_until = *record.regrant_at;
      if (it->second.Empty()) table.resources.erase(it);
      return;
    }
    case EventKind::kDeny: {
      const auto it = table.resources.find(record.resource);
      if (it == table.resources.end()) return;
      RemoveWaiter(it->second, record);
      if (it->second.Empty()) table.resources.erase(it);
      return;
    }
  }
}

std::expected<Epoch, LogError> InMemoryLeaseLog::StartEpoch(std::string_view reason, clock::DtnTime now) {
  ++epoch_;
  LogRecord record;
  record.kind = EventKind::kEpochStart;
  record.at = now;
  record.epoch = epoch_;
  record.reason = std::string(reason);
  events_.push_back(std::move(record));
  return epoch_;
}

std::expected<void, LogError> InMemoryLeaseLog::Append(std::span<const LogRecord> records) {
  if (fail_appends_ > 0) {
    --fail_appends_;
    return std::unexpected(LogError{"in-memory lease log: append failed (injected fault)"});
  }
  for (const LogRecord& record : records) {
    events_.push_back(record);
    ApplyToTable(table_, record);
  }
  return {};
}

}  // namespace ics::coordinator
