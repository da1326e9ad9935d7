// The lease protocol: application data units carried in bundles between rover agents, the
// coordinator and resource guards. Shared by coordinator/ and rover_agent/.
//
// Wire form: the 4 bytes "ICS" + format version (1), then a Boost.Serialization text archive
// (without Boost's own header) holding the message type (its index in Message: append new types,
// never reorder), the message, and an end mark (so a message cut short never decodes). The codec
// writes and reads it with its own archive classes on Boost's text archive bases (protocol.cpp):
// the bytes are those boost::archive::text_oarchive writes, minus its trailing newline. Text
// archives are portable across endianness and word size; every message class carries a
// BOOST_CLASS_VERSION so later builds read older messages. Durations and DTN times travel as
// int64 milliseconds. Bytes from the network are untrusted: Decode() refuses input over
// kMaxMessageBytes before parsing, bounds every string it reads (by the field's limit and by the
// bytes left) before allocating, and turns every archive error into a ProtocolError. Decoded
// resource names satisfy ParseResourceName's rules; times and durations are within
// +-DtnTime::Max() (durations >= 0). Coordination bundles travel with expedited priority.
//
// Conventions the coordinator relies on (lease_core.h has the full semantics):
//  - Header::sender is the sender's own node number; the coordinator refuses a message whose
//    sender differs from the bundle's source.
//  - Header::epoch: the latest coordinator epoch the sender knows. 0 only in an Acquire ("none
//    yet"). A message of an older epoch is answered StaleEpoch{current} and not acted upon; the
//    sender may resend it with the current epoch (a restored lease stays renewable that way).
//  - Header::request_id: an Acquire's id is new for every request (a persisted, increasing counter
//    per agent); a resent Acquire keeps its id and is answered idempotently. Renew and Release carry
//    the id of the Acquire that obtained the lease, so the epoch log ties a lease's events together.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"

namespace ics::coordinator {

using clock::NodeNumber;

inline constexpr std::size_t kMaxMessageBytes = 16 * 1024;
inline constexpr std::size_t kMaxNameBytes = 128;     // tenant, resource
inline constexpr std::size_t kMaxReasonBytes = 2048;  // reasons and policy explanations

// "tenant/resource". Messages of one tenant never touch another tenant's state: the pair is the key.
struct ResourceName {
  std::string tenant;
  std::string resource;
  std::string ToString() const { return tenant + "/" + resource; }
  auto operator<=>(const ResourceName&) const = default;
};
// Parses "tenant/resource": both parts non-empty, at most kMaxNameBytes, of [A-Za-z0-9._:-].
std::expected<ResourceName, std::string> ParseResourceName(std::string_view text);

using Epoch = std::uint64_t;         // coordinator epoch; 0 = "not yet known" (only in Acquire)
using FencingToken = std::uint64_t;  // strictly increasing per resource; 0 = none
using RequestId = std::uint64_t;     // unique per requester (the agent persists its counter)

// Fields every message carries.
struct Header {
  ResourceName resource;
  Epoch epoch = 0;  // the coordinator epoch the sender refers to
  RequestId request_id = 0;
  NodeNumber sender = 0;  // ipn node number of the sender (checked against the bundle source)
};

// agent -> coordinator: I want `resource` for `term`. `deadline` is the requester's own deadline
// (its clock): after it the requester has given up, so a grant must not be issued.
struct Acquire {
  Header h;
  clock::Duration term{0};
  clock::DtnTime deadline;
};
// coordinator -> agent
struct Grant {
  Header h;
  FencingToken token = 0;
  clock::Duration term{0};  // what the holder may count from when it sent the request
  clock::DtnTime expires;   // the coordinator's own view of the end (its clock)
  std::string policy;       // the timeout-policy explanation behind the term
};
struct Queued {
  Header h;
  std::uint32_t position = 0;  // 1 = next
};
enum class DenyReason : std::uint8_t {
  kTermTooShort = 1,  // the holder would get no usable time after the round trip
  kDeadlinePassed,    // the requester's deadline passed (on arrival or while queued)
  kNotHolder,         // renew/release with a token that is not the current lease
  kExpired,           // renew after the lease ended in the coordinator's view
  kBadRequest,        // malformed or inconsistent fields
  kOverloaded,        // a bound (waiters, resources) was reached
};
std::string_view DenyReasonName(DenyReason reason);
struct Deny {
  Header h;
  DenyReason reason = DenyReason::kBadRequest;
  std::string detail;
};
// agent -> coordinator: extend the lease `token` by `term`, counted from when this was sent.
struct Renew {
  Header h;
  FencingToken token = 0;
  clock::Duration term{0};
};
struct Renewed {
  Header h;
  FencingToken token = 0;
  clock::Duration term{0};
  clock::DtnTime expires;
  std::string policy;
};
struct Release {
  Header h;
  FencingToken token = 0;
};
struct Released {
  Header h;
  FencingToken token = 0;
};
// coordinator -> agent: the lease ended in the coordinator's view (informational: the holder has
// already stopped by its own clock).
struct ExpiredNotice {
  Header h;
  FencingToken token = 0;
};
// coordinator -> sender: your message referred to epoch h.epoch, which is older than `current`;
// it was refused and not acted upon.
struct StaleEpoch {
  Header h;
  Epoch current = 0;
};
// agent -> guard: perform `operation` on the resource under `token`.
struct Use {
  Header h;
  FencingToken token = 0;
  std::string operation;
};
struct UseAccepted {
  Header h;
  FencingToken token = 0;
};
struct UseRejected {
  Header h;
  FencingToken token = 0;
  FencingToken highest_seen = 0;
  std::string detail;
};

using Message = std::variant<Acquire, Grant, Queued, Deny, Renew, Renewed, Release, Released, ExpiredNotice,
                             StaleEpoch, Use, UseAccepted, UseRejected>;

std::string_view MessageName(const Message& message);  // "acquire", "grant" ...
const Header& HeaderOf(const Message& message);
Header& HeaderOf(Message& message);

struct ProtocolError {
  enum class Kind { kTooLarge, kBadMagic, kUnsupportedVersion, kMalformed, kFieldTooLarge, kInvalid };
  Kind kind = Kind::kMalformed;
  std::string message;  // names the field or offset where it could
};

std::vector<std::uint8_t> Encode(const Message& message);
std::expected<Message, ProtocolError> Decode(std::span<const std::uint8_t> bytes);

}  // namespace ics::coordinator
