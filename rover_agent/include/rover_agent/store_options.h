// How the agent's and the guard's SQLite stores commit. The daemons always use the default (every
// Apply on stable storage before it returns: the stores' contracts rely on it); a simulation that
// only needs real SQLite files, not their survival of a power cut, may skip the fsyncs.
#pragma once

#include <cstdint>

namespace ics::rover_agent {

enum class StoreDurability : std::uint8_t {
  // synchronous=FULL: an Apply that returned ok survives power loss (one fsync per Apply).
  kFull,
  // synchronous=OFF: no fsync at all. Survives a process exit, not an OS crash or power cut, so it
  // voids the "durably" of AgentStore::Apply / GuardStore::Apply. For simulations (the replayer's
  // `--stores sqlite`) and scratch data only; never for a daemon.
  kNone,
};

struct SqliteStoreOptions {
  StoreDurability durability = StoreDurability::kFull;
};

}  // namespace ics::rover_agent
