// A test driver for LeaseCore: builds policies by hand, persists every output to a lease log
// before "sending" it (the core's ordering contract), and keeps what was sent for inspection.
#pragma once

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <vector>

#include "coordinator/lease_core.h"
#include "coordinator/lease_log.h"

namespace ics::coordinator::testing {

using clock::DtnTime;
using clock::Duration;
using namespace std::chrono_literals;

inline constexpr NodeNumber kCoordinator = 1;
inline const DtnTime kT0 = DtnTime::FromMillis(1'000'000'000);

// A path of max OWLT 10 s, no contact wait, 1 s processing: round trip 21 s. No clock error
// unless a test sets it.
inline clock::PolicyInputs PlainInputs() {
  clock::PolicyInputs in;
  in.path.owlt = clock::OwltBound{Duration(8'000), Duration(10'000)};
  in.path.contact_wait_max = Duration(0);
  in.processing_margin = Duration(1'000);
  return in;
}

struct Harness {
  explicit Harness(Epoch epoch = 1, Limits limits = {}, LeaseTable restored = {}, DtnTime start = kT0,
                   std::shared_ptr<InMemoryLeaseLog> shared_log = nullptr)
      : log(shared_log ? std::move(shared_log) : std::make_shared<InMemoryLeaseLog>()) {
    LeaseCoreConfig config;
    config.self = kCoordinator;
    config.epoch = epoch;
    config.limits = limits;
    core = std::make_unique<LeaseCore>(
        config, std::move(restored),
        [this](NodeNumber node, DtnTime) {
          const auto it = inputs.find(node);
          return clock::TimeoutPolicy(it == inputs.end() ? default_inputs : it->second);
        },
        start);
    Flush();
  }

  // Persist, then send: the contract.
  std::vector<Outbound> Flush() {
    Output out = core->TakeOutput();
    REQUIRE(log->Append(out.to_persist).has_value());
    last_persisted = out.to_persist;
    sent.insert(sent.end(), out.to_send.begin(), out.to_send.end());
    return out.to_send;
  }

  Header H(NodeNumber from, RequestId id, const ResourceName& r,
           std::optional<Epoch> epoch = std::nullopt) const {
    return Header{r, epoch.value_or(core->epoch()), id, from};
  }

  std::vector<Outbound> Deliver(NodeNumber from, Message m, DtnTime now) {
    core->Receive(Inbound{from, std::move(m)}, now);
    return Flush();
  }
  std::vector<Outbound> AcquireAt(NodeNumber from, RequestId id, const ResourceName& r, Duration term,
                                  DtnTime deadline, DtnTime now, std::optional<Epoch> epoch = std::nullopt) {
    return Deliver(from, Acquire{H(from, id, r, epoch), term, deadline}, now);
  }
  std::vector<Outbound> RenewAt(NodeNumber from, RequestId id, const ResourceName& r, FencingToken token,
                                Duration term, DtnTime now, std::optional<Epoch> epoch = std::nullopt) {
    return Deliver(from, Renew{H(from, id, r, epoch), token, term}, now);
  }
  std::vector<Outbound> ReleaseAt(NodeNumber from, RequestId id, const ResourceName& r, FencingToken token,
                                  DtnTime now, std::optional<Epoch> epoch = std::nullopt) {
    return Deliver(from, Release{H(from, id, r, epoch), token}, now);
  }
  std::vector<Outbound> TickAt(DtnTime now) {
    core->Tick(now);
    return Flush();
  }

  clock::PolicyInputs default_inputs = PlainInputs();
  std::map<NodeNumber, clock::PolicyInputs> inputs;
  std::shared_ptr<InMemoryLeaseLog> log;
  std::unique_ptr<LeaseCore> core;
  std::vector<Outbound> sent;
  std::vector<LogRecord> last_persisted;
};

// The single message in `out`, of type T, sent to `to`.
template <typename T>
T Only(const std::vector<Outbound>& out, NodeNumber to) {
  REQUIRE(out.size() == 1);
  CHECK(out[0].to == to);
  const T* m = std::get_if<T>(&out[0].message);
  REQUIRE_MESSAGE(m != nullptr, "got " << MessageName(out[0].message));
  CHECK(m->h.epoch != 0);
  CHECK(m->h.sender == kCoordinator);
  return *m;
}

inline std::size_t CountKind(const std::vector<LogRecord>& records, EventKind kind) {
  std::size_t n = 0;
  for (const auto& r : records) n += r.kind == kind ? 1 : 0;
  return n;
}

}  // namespace ics::coordinator::testing
