// What a Node hands its driver: actions to perform (transmit, acknowledge, deliver) and
// per-bundle lifecycle events (for tests, the replayer and operator logs). Plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "dtn/bundle.h"
#include "dtn/eid.h"

namespace ics::dtn {

using clock::NodeNumber;

// Send these bytes to the neighbour over its link. The neighbour answers (through the driver)
// with Node::OnAcknowledged once it has stored the bundle.
struct Transmit {
  NodeNumber neighbour = 0;
  BundleId id;
  Priority priority = Priority::kNormal;
  // NodeConfig::transmit_headroom free bytes (the driver's to fill), then the encoded bundle,
  // previous node / age / hop count updated.
  std::vector<std::uint8_t> bytes;
  std::uint32_t attempt = 0;  // 0: first transmission; n: the n-th retransmission
  std::size_t headroom = 0;   // bytes before the bundle in `bytes`
};

// Tell the neighbour that this node has the bundle stored (durably: see node.h): the neighbour
// may delete its copy.
struct Acknowledge {
  NodeNumber neighbour = 0;
  BundleId id;
};

// Hand an ADU to a registered local endpoint. The application answers with
// Node::ConfirmDelivery(endpoint, id) once it has processed (and persisted) it.
struct Deliver {
  Eid endpoint;  // the bundle's destination
  BundleId id;
  Eid source;
  CreationTimestamp created;
  Priority priority = Priority::kNormal;
  std::vector<std::uint8_t> payload;
  // True when an earlier Deliver of this bundle was committed by a previous run of the node that
  // was never confirmed: the application may have seen it (see node.h, "Exactly once").
  bool possible_redelivery = false;
};

using NodeAction = std::variant<Transmit, Acknowledge, Deliver>;

enum class BundleEventKind : std::uint8_t {
  kReceived,           // decoded from a neighbour (before any decision)
  kStored,             // accepted into the store (received or sent by a local application)
  kForwarded,          // transmitted to a neighbour (detail: "retransmission N" for retries)
  kAcknowledged,       // the neighbour acknowledged it: custody released, deleted here
  kDelivered,          // handed to a local endpoint
  kDeliveryConfirmed,  // the application confirmed: deleted here
  kExpired,            // its lifetime ended while stored: deleted
  kDuplicate,          // received again (already stored or seen): acknowledged, not stored
  kRefused,            // not accepted (see reason); not acknowledged
  kRetransmitTimeout,  // no acknowledgement in time: the bundle is queued again
  kDropped,            // deleted without delivery for another reason (see reason)
};
std::string_view BundleEventKindName(BundleEventKind kind);  // "received", "stored", ...

enum class RefusalReason : std::uint8_t {
  kNone,
  kMalformed,     // the bytes are not a valid bundle (detail: the decode error)
  kQuotaBundles,  // the store holds its maximum number of bundles
  kQuotaBytes,    // the store would exceed its maximum size
  kExpired,       // already expired on arrival
  kNoExpiry,      // creation time 0 and no bundle-age block: its expiry cannot be known
  kHopLimit,      // hop count over its limit
  kStoreError,    // the store failed (detail: the error); the driver must restart the node
};
std::string_view RefusalReasonName(RefusalReason reason);  // "malformed", "quota-bundles", ...

struct BundleEvent {
  BundleEventKind kind = BundleEventKind::kReceived;
  clock::DtnTime at;
  std::optional<BundleId> id;            // absent for bytes that did not decode
  std::optional<NodeNumber> neighbour;   // from / to whom, when a neighbour is involved
  std::optional<Eid> endpoint;           // kDelivered / kDeliveryConfirmed
  Priority priority = Priority::kNormal;
  RefusalReason reason = RefusalReason::kNone;
  std::string detail;
};
// One line for an operator log:
// "2026-11-29T05:00:00.000Z refused ipn:1.1/815000000123.4 from 1: quota-bytes".
std::string FormatEvent(const BundleEvent& event);

struct NodeOutput {
  std::vector<NodeAction> actions;
  std::vector<BundleEvent> events;
  bool empty() const { return actions.empty() && events.empty(); }
};

}  // namespace ics::dtn
