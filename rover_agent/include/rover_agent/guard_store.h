// Where a resource guard keeps the highest fencing token it has seen per resource.
#pragma once

#include <expected>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "coordinator/protocol.h"
#include "rover_agent/store_options.h"

namespace ics::rover_agent {

// The highest token seen for a resource rose to `highest`.
struct GuardRecord {
  coordinator::ResourceName resource;
  coordinator::FencingToken highest = 0;
  bool operator==(const GuardRecord&) const = default;
};

// Not thread-safe.
class GuardStore {
 public:
  virtual ~GuardStore() = default;
  // The highest token per resource. Error: a message naming the store and what was wrong.
  virtual std::expected<std::map<coordinator::ResourceName, coordinator::FencingToken>, std::string>
  Load() = 0;
  // Applies `records` atomically and durably (fsynced when it returns ok). A stored token never
  // goes down: a record below the stored value leaves it as it is.
  virtual std::expected<void, std::string> Apply(std::span<const GuardRecord> records) = 0;
};

class InMemoryGuardStore final : public GuardStore {
 public:
  std::expected<std::map<coordinator::ResourceName, coordinator::FencingToken>, std::string> Load() override;
  std::expected<void, std::string> Apply(std::span<const GuardRecord> records) override;

 private:
  std::map<coordinator::ResourceName, coordinator::FencingToken> highest_;
};

inline constexpr std::size_t kMaxGuardedResources = 65'536;  // Load() refuses more rows

// The guard's SQLite file (created when missing; application_id "ICSG"; by default
// synchronous=FULL; StoreDurability::kNone skips the fsyncs, for simulations only).
// Error: a message naming the path.
std::expected<std::unique_ptr<GuardStore>, std::string> OpenSqliteGuardStore(const std::string& path,
                                                                             SqliteStoreOptions options = {});

}  // namespace ics::rover_agent
