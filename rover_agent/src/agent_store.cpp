// The in-memory AgentStore: the same semantics as the SQLite one, for tests and simulations.
#include "rover_agent/agent_store.h"

#include <algorithm>

namespace ics::rover_agent {

std::expected<AgentSnapshot, std::string> InMemoryAgentStore::Load() {
  AgentSnapshot snapshot;
  snapshot.reserved_through = reserved_through_;
  snapshot.epoch = epoch_;
  for (const auto& [id, lease] : leases_) snapshot.leases.push_back(lease);
  return snapshot;
}

std::expected<void, std::string> InMemoryAgentStore::Apply(std::span<const AgentRecord> records) {
  for (const AgentRecord& record : records) {
    if (const auto* put = std::get_if<PersistLease>(&record)) {
      leases_[put->lease.acquire_request_id] = put->lease;
    } else if (const auto* forget = std::get_if<ForgetLease>(&record)) {
      leases_.erase(forget->acquire_request_id);
    } else if (const auto* reserve = std::get_if<ReserveRequestIds>(&record)) {
      reserved_through_ = std::max(reserved_through_, reserve->through);
    } else if (const auto* epoch = std::get_if<LearnEpoch>(&record)) {
      epoch_ = std::max(epoch_, epoch->epoch);
    }
  }
  ++applied_batches_;
  return {};
}

}  // namespace ics::rover_agent
