// Helpers shared by the rover agent tests: a Mars-like timeout policy with hand-computed figures,
// a temp directory, and small accessors for the core's outputs.
#pragma once

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "clock/timeout_policy.h"
#include "coordinator/protocol.h"
#include "rover_agent/agent_core.h"
#include "rover_agent/agent_store.h"

namespace ics::rover_agent::testing {

using namespace std::chrono_literals;
using clock::DtnTime;
using clock::Duration;
namespace co = coordinator;

inline constexpr clock::NodeNumber kCoordinator = 1;
inline constexpr clock::NodeNumber kRover = 20;

// Mars-like path: OWLT up to 600 s, no contact wait, 10 s processing; 50 ppm on both clocks.
// The lower OWLT bound is 0 (no figure uses it) so that simulations may deliver instantly and
// leave the lease arithmetic no slack from the light time.
inline clock::TimeoutPolicy MarsPolicy() {
  clock::PolicyInputs in;
  in.path.owlt = {0s, 600s};
  in.processing_margin = 10s;
  in.requester.drift_ppm = 50;
  in.coordinator.drift_ppm = 50;
  return clock::TimeoutPolicy(in);
}

// The figures of MarsPolicy() for a 3600 s term, computed by hand:
//   round trip      = 2 x 600 s + 10 s                      = 1,210,000 ms
//   request timeout = 1,210,000 + ceil(1,210,000 x 50e-6 = 60.5) = 1,210,061 ms
//   holder view     = 3,600,000 - 180 - 180                  = 3,599,640 ms
//   renew at        = 3,599,640 - 1,210,000 - 61             = 2,389,579 ms
//   regrant margin  = 180 + 180 + 1                          = 361 ms
inline constexpr Duration kTerm = 3600s;
inline constexpr Duration kRequestTimeout{1'210'061};
inline constexpr Duration kHolderView{3'599'640};
inline constexpr Duration kRenewAt{2'389'579};

// The agent's renewal point for kTerm: RenewAt - request timeout = 1,179,518 ms would leave less
// than half of RenewAt, so half of RenewAt (floored): 2,389,579 / 2 = 1,194,789 ms.
inline constexpr Duration kRenewOffset{1'194'789};

// A direct link, like a rover in line of sight of its lander: OWLT up to 1 s, no contact wait,
// 1 s processing, 20 ppm on both clocks. Its figures for a 3 h term, computed by hand:
//   round trip      = 2 x 1 s + 1 s                            = 3,000 ms
//   request timeout = 3,000 + ceil(3,000 x 20e-6 = 0.06)         = 3,001 ms
//   holder view     = 10,800,000 - 216 - 216                     = 10,799,568 ms
//   renew at        = 10,799,568 - 3,000 - 1                     = 10,796,567 ms
//   renew offset    = max(10,796,567 - 3,001, 10,796,567 / 2)    = 10,793,566 ms
//   queued retry max = max(3,001, (10,793,566 - 3,000 - 1,000) / 2) = 5,394,783 ms
inline clock::TimeoutPolicy DirectPolicy() {
  clock::PolicyInputs in;
  in.path.owlt = {0s, 1s};
  in.processing_margin = 1s;
  in.requester.drift_ppm = 20;
  in.coordinator.drift_ppm = 20;
  return clock::TimeoutPolicy(in);
}
inline constexpr Duration kDirectTerm = 3h;
inline constexpr Duration kDirectRequestTimeout{3'001};
inline constexpr Duration kDirectHolderView{10'799'568};
inline constexpr Duration kDirectRenewOffset{10'793'566};
inline constexpr Duration kDirectQueuedRetryMax{5'394'783};

inline AgentConfig DirectConfig(clock::NodeNumber self = kRover) {
  return AgentConfig{
      .self = self, .coordinator = kCoordinator, .policy = DirectPolicy(), .lease_term = kDirectTerm};
}

inline constexpr DtnTime kT0 = DtnTime::FromMillis(850'000'000'000);  // 2026-12-08 or so

inline AgentConfig MarsConfig(clock::NodeNumber self = kRover) {
  return AgentConfig{.self = self, .coordinator = kCoordinator, .policy = MarsPolicy(), .lease_term = kTerm};
}

inline co::ResourceName Pad(std::string tenant = "mars", std::string resource = "charging-pad") {
  return co::ResourceName{std::move(tenant), std::move(resource)};
}

// Takes the core's output and applies its records to `store` first, as a driver must.
inline AgentOutput Drain(AgentCore& core, AgentStore* store = nullptr) {
  AgentOutput out = core.TakeOutput();
  if (store) {
    auto applied = store->Apply(out.to_persist);
    REQUIRE_MESSAGE(applied.has_value(), (applied ? "" : applied.error()));
  }
  return out;
}

template <typename T>
std::vector<T> Sent(const AgentOutput& out) {
  std::vector<T> found;
  for (const Outgoing& o : out.to_send) {
    CHECK(o.destination == kCoordinator);
    if (const auto* m = std::get_if<T>(&o.message)) found.push_back(*m);
  }
  return found;
}

inline std::optional<Notification> Find(const AgentOutput& out, Outcome outcome) {
  for (const Notification& n : out.notifications) {
    if (n.outcome == outcome) return n;
  }
  return std::nullopt;
}

inline co::Header FromCoordinator(const co::ResourceName& r, co::Epoch epoch, co::RequestId id) {
  return co::Header{r, epoch, id, kCoordinator};
}

inline co::Grant GrantFor(const co::Acquire& a, co::Epoch epoch, co::FencingToken token, DtnTime expires) {
  return co::Grant{FromCoordinator(a.h.resource, epoch, a.h.request_id), token, a.term, expires,
                   "test policy"};
}

// A fresh directory under /tmp, removed (with its files) at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ics-rover-agent-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace ics::rover_agent::testing
