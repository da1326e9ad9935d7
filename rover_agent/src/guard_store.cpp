// The in-memory GuardStore: the same semantics as the SQLite one, for tests and simulations.
#include "rover_agent/guard_store.h"

#include <algorithm>

namespace ics::rover_agent {

std::expected<std::map<coordinator::ResourceName, coordinator::FencingToken>, std::string>
InMemoryGuardStore::Load() {
  return highest_;
}

std::expected<void, std::string> InMemoryGuardStore::Apply(std::span<const GuardRecord> records) {
  for (const GuardRecord& record : records) {
    auto& stored = highest_[record.resource];
    stored = std::max(stored, record.highest);
  }
  return {};
}

}  // namespace ics::rover_agent
