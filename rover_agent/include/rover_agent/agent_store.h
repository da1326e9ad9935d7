// What a rover agent persists, and where: its pending requests and held (or releasing) leases,
// the request ids it has reserved and the coordinator epoch it knows. The agent core emits these
// records; its driver applies them to an AgentStore BEFORE it sends the messages of the same
// output, so a reboot or sleep/wake cycle cannot make the agent forget a request or a grant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "clock/time.h"
#include "coordinator/protocol.h"
#include "rover_agent/store_options.h"

namespace ics::rover_agent {

using coordinator::Epoch;
using coordinator::FencingToken;
using coordinator::RequestId;
using coordinator::ResourceName;

// Where a lease is in its life, as persisted.
enum class LeaseState : std::uint8_t {
  kRequesting = 1,  // Acquire sent, no grant yet (possibly queued)
  kHeld = 2,        // granted and valid in the agent's view (renewal possibly in flight)
  kReleasing = 3,   // the agent stopped using it; Release sent, no Released yet
};
std::string_view LeaseStateName(LeaseState state);

// One lease as the agent knows it. Keyed by acquire_request_id (unique forever: request ids
// strictly increase across restarts). Times are on the agent's own clock.
struct LeaseRecord {
  RequestId acquire_request_id = 0;
  ResourceName resource;
  LeaseState state = LeaseState::kRequesting;
  clock::Duration term{0};       // requested lease term (also for each renewal)
  clock::Duration hold{0};       // how long the holder wants the resource once granted
  clock::DtnTime deadline;       // the requester's wait deadline for the grant
  clock::DtnTime first_sent_at;  // first transmission of the Acquire
  // A grant's view counts from here: first_sent_at, or later once a Queued reply proves the
  // coordinator had not yet granted the request at some later time (see AgentCore).
  clock::DtnTime count_from;
  // Held / releasing:
  FencingToken token = 0;
  Epoch epoch = 0;                 // epoch of the grant
  clock::DtnTime view_start;       // send time of the request or renewal the view counts from
  clock::DtnTime view_end;         // the agent's conservative view of the lease end
  clock::DtnTime hold_until;       // when the holder stops wanting it
  RequestId renew_request_id = 0;  // 0: no renewal in flight
  clock::DtnTime renew_first_sent_at;
  // Releasing:
  RequestId release_request_id = 0;
  clock::DtnTime release_give_up_at;  // after it the coordinator's view has surely ended
  bool operator==(const LeaseRecord&) const = default;
};

// The records an AgentCore asks its driver to persist.
struct PersistLease {
  LeaseRecord lease;  // insert or replace by acquire_request_id
};
struct ForgetLease {
  RequestId acquire_request_id = 0;
};
// Request ids up to and including `through` may be used; after a restart the agent continues
// above it, so ids strictly increase across restarts even though not every id is persisted.
struct ReserveRequestIds {
  RequestId through = 0;
};
// The highest coordinator epoch the agent has seen (it never acts on older ones).
struct LearnEpoch {
  Epoch epoch = 0;
};
using AgentRecord = std::variant<PersistLease, ForgetLease, ReserveRequestIds, LearnEpoch>;

// Everything an agent persisted, as loaded on start.
struct AgentSnapshot {
  std::vector<LeaseRecord> leases;  // ordered by acquire_request_id
  RequestId reserved_through = 0;
  Epoch epoch = 0;
};

// The store an AgentCore's driver writes its records to. Not thread-safe.
class AgentStore {
 public:
  virtual ~AgentStore() = default;
  // Everything persisted so far. Error: a message naming the store and what was wrong.
  virtual std::expected<AgentSnapshot, std::string> Load() = 0;
  // Applies `records` in order, atomically and durably (all or none, on stable storage when it
  // returns ok). ReserveRequestIds and LearnEpoch never lower the stored value.
  virtual std::expected<void, std::string> Apply(std::span<const AgentRecord> records) = 0;
};

// For tests and simulations: keeps everything in memory (a "reboot" is a new core over the same
// store object).
class InMemoryAgentStore final : public AgentStore {
 public:
  std::expected<AgentSnapshot, std::string> Load() override;
  std::expected<void, std::string> Apply(std::span<const AgentRecord> records) override;
  std::size_t applied_batches() const { return applied_batches_; }

 private:
  std::map<RequestId, LeaseRecord> leases_;
  RequestId reserved_through_ = 0;
  Epoch epoch_ = 0;
  std::size_t applied_batches_ = 0;
};

// Bounds on what Load() accepts from a file (a database is untrusted input).
inline constexpr std::size_t kMaxStoredLeases = 65'536;

// The agent's own SQLite file (created when missing; application_id "ICSA", its own schema
// migrations; by default synchronous=FULL, so an Apply that returned ok survives power loss;
// StoreDurability::kNone skips the fsyncs, for simulations only). A file of another kind or a newer
// schema is refused untouched. Error: a message naming the path.
std::expected<std::unique_ptr<AgentStore>, std::string> OpenSqliteAgentStore(const std::string& path,
                                                                             SqliteStoreOptions options = {});

}  // namespace ics::rover_agent
