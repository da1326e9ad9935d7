// The resource guard core: fences the resources it fronts with the coordinator's fencing tokens,
// with no I/O. An operation is accepted only under a token at least as high as the highest the
// guard has seen for that resource (tenant/resource: tenants never affect each other); a lower one
// is rejected with a logged reason. A new highest token is persisted BEFORE the operation is
// accepted: the driver applies output.to_persist to its GuardStore (fsync) before it performs
// output.accepted and sends output.to_send, so after a crash the guard can never accept a token
// lower than one it has already let through.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "coordinator/protocol.h"
#include "rover_agent/agent_core.h"
#include "rover_agent/guard_store.h"

namespace ics::rover_agent {

struct GuardConfig {
  NodeNumber self = 0;  // the guard's node (the Header sender of its replies)
  // The resources it fronts; empty: any resource (up to max_resources).
  std::vector<ResourceName> resources{};
  std::size_t max_resources = 4096;
};

// An operation the guard let through: the driver performs it (after persisting).
struct AcceptedUse {
  ResourceName resource;
  FencingToken token = 0;
  std::string operation;
  NodeNumber source = 0;
};

struct GuardOutput {
  std::vector<GuardRecord> to_persist;  // apply (durably) BEFORE performing or replying
  std::vector<AcceptedUse> accepted;
  std::vector<Outgoing> to_send;  // UseAccepted / UseRejected to the user
  std::vector<std::string> log;   // one line per rejection, with its reason
};

struct GuardCounts {
  FencingToken highest = 0;
  std::uint64_t accepted = 0;
  std::uint64_t rejected = 0;
};

// Not thread-safe: exactly one driver owns it.
class GuardCore {
 public:
  // `highest` is what the GuardStore loaded (empty on first start).
  GuardCore(GuardConfig config, const std::map<ResourceName, FencingToken>& highest);

  // A Use from node `source`. Accepts iff token != 0, the resource is fronted here, and
  // token >= the highest seen for it; replies UseAccepted or UseRejected{highest_seen, detail}.
  void OnUse(const coordinator::Use& use, NodeNumber source, clock::DtnTime now);
  // Any other message is not for a guard: dropped and counted.
  void OnMessage(const coordinator::Message& message, NodeNumber source, clock::DtnTime now);

  GuardOutput TakeOutput();

  FencingToken Highest(const ResourceName& resource) const;
  GuardCounts Counts(const ResourceName& resource) const;
  const std::map<ResourceName, GuardCounts>& counts() const { return counts_; }
  std::uint64_t dropped() const { return dropped_; }

 private:
  void Reject(const coordinator::Use& use, NodeNumber source, FencingToken highest, std::string detail,
              clock::DtnTime now);

  GuardConfig config_;
  std::map<ResourceName, GuardCounts> counts_;
  std::uint64_t dropped_ = 0;
  GuardOutput out_;
};

}  // namespace ics::rover_agent
