// The lease log: what the coordinator core asks to persist (LogRecord, one per epoch-log event),
// the lease table it restores from at start (LeaseTable), and the interface a driver persists
// through (LeaseLog), with an in-memory implementation for tests and the replayer. The SQLite
// implementation (the real epoch log, epochlog.db) is in sqlite_lease_log.h; its schema is
// documented in coordinator/SCHEMA.md.
//
// Every record is one event of the append-only epoch log. Its kind also says how it changes the
// lease table (ApplyToTable below), so the current state never needs a replay of the events:
//   epoch_start  none (written by LeaseLog::StartEpoch)
//   restore      none (a lease or waiter carried over into a new epoch after a start)
//   grant        last token := token; lease := {rover, request id, token, term, expires, policy,
//                epoch}; the waiter (rover, request id) leaves the queue if it was in it
//   queued       the waiter (rover, request id, term, deadline) joins the end of the queue
//   renew        the lease with this token: expires := lease_expires, term := term, policy
//   release      the lease with this token ends; no grant before regrant_at (= the release time)
//   expiry       the lease with this token ends; no grant before regrant_at (expiry + margin)
//   deny         the waiter (rover, request id) leaves the queue if it was in it
//   stale_epoch  none (a message of an older epoch, refused and not acted upon)
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clock/time.h"
#include "coordinator/protocol.h"

namespace ics::coordinator {

enum class EventKind : std::uint8_t {
  kEpochStart,
  kRestore,
  kGrant,
  kQueued,
  kRenew,
  kRelease,
  kExpiry,
  kDeny,
  kStaleEpoch,
};
// "epoch_start", "restore", "grant", "queued", "renew", "release", "expiry", "deny", "stale_epoch":
// the text stored in events.kind.
std::string_view EventKindName(EventKind kind);
std::optional<EventKind> ParseEventKind(std::string_view name);

// One event. Optional fields are NULL in the database when absent.
struct LogRecord {
  EventKind kind = EventKind::kDeny;
  clock::DtnTime at;                // coordinator clock when it happened
  Epoch epoch = 0;                  // the coordinator epoch it happened in
  ResourceName resource;            // empty for epoch_start
  std::optional<NodeNumber> rover;  // the requester / holder
  std::optional<RequestId> request_id;
  std::optional<FencingToken> token;
  std::optional<clock::DtnTime> lease_expires;  // grant, renew, expiry, restore: the coordinator's view
  std::optional<clock::Duration> term;          // grant, renew, queued, restore
  std::optional<clock::DtnTime> deadline;       // queued (and deny of a waiter): the requester's deadline
  std::optional<clock::DtnTime> regrant_at;     // release, expiry: no grant before this
  std::string reason;                           // why: deny reason name + detail, epoch start cause ...
  std::string policy;                           // the timeout-policy explanation at the time
  bool operator==(const LogRecord&) const = default;
};

// --- the lease table: current state, restored at start --------------------------------------

struct LeaseState {
  NodeNumber holder = 0;
  RequestId request_id = 0;
  FencingToken token = 0;
  clock::Duration term{0};
  clock::DtnTime expires;  // coordinator clock
  Epoch granted_epoch = 0;
  std::string policy;
  bool operator==(const LeaseState&) const = default;
};

struct WaiterState {
  NodeNumber requester = 0;
  RequestId request_id = 0;
  clock::Duration term{0};
  clock::DtnTime deadline;  // the requester's own clock
  bool operator==(const WaiterState&) const = default;
};

struct ResourceState {
  FencingToken last_token = 0;       // highest token ever granted for the resource
  clock::DtnTime hold_until;         // no grant before this (coordinator clock)
  std::optional<LeaseState> lease;   // the current holder, if any
  std::vector<WaiterState> waiters;  // FIFO, front = next
  bool operator==(const ResourceState&) const = default;
  // A resource with no token, no lease and no waiters carries no information and is omitted.
  bool Empty() const { return last_token == 0 && !lease && waiters.empty(); }
};

struct LeaseTable {
  std::map<ResourceName, ResourceState> resources;  // no Empty() entries
  bool operator==(const LeaseTable&) const = default;
};

// Applies one record's state change (see the table at the top of this file). Records that do
// not match the table (a renew of a token that is not the lease, ...) change nothing.
void ApplyToTable(LeaseTable& table, const LogRecord& record);

// --- the interface a driver persists through -------------------------------------------------

struct LogError {
  std::string message;  // names the file and what failed
};

// Not thread-safe: one owner.
class LeaseLog {
 public:
  virtual ~LeaseLog() = default;
  // Increments the persisted epoch, durably (fsync) before returning, then appends an
  // epoch_start event (reason: "start", "restart", "restore" ...). A crash between the two leaves
  // an epoch without its event; the epoch counter itself is never reused.
  virtual std::expected<Epoch, LogError> StartEpoch(std::string_view reason, clock::DtnTime now) = 0;
  // The last epoch started (0: none).
  virtual std::expected<Epoch, LogError> CurrentEpoch() const = 0;
  // Appends the records as events and applies them to the lease table, all durably in one
  // transaction: when it returns ok, all are on stable storage; on error, none is.
  virtual std::expected<void, LogError> Append(std::span<const LogRecord> records) = 0;
  // The lease table as of the last successful Append.
  virtual std::expected<LeaseTable, LogError> LoadState() const = 0;
};

// In memory, for tests and the replayer: keeps every event. `fail_appends` makes the next
// Append calls fail (nothing applied), to test a driver's handling of a failed commit.
class InMemoryLeaseLog final : public LeaseLog {
 public:
  std::expected<Epoch, LogError> StartEpoch(std::string_view reason, clock::DtnTime now) override;
  std::expected<Epoch, LogError> CurrentEpoch() const override { return epoch_; }
  std::expected<void, LogError> Append(std::span<const LogRecord> records) override;
  std::expected<LeaseTable, LogError> LoadState() const override { return table_; }

  const std::vector<LogRecord>& events() const { return events_; }
  void set_fail_appends(int count) { fail_appends_ = count; }

 private:
  Epoch epoch_ = 0;
  LeaseTable table_;
  std::vector<LogRecord> events_;
  int fail_appends_ = 0;
};

}  // namespace ics::coordinator
