// The local application interface of a node daemon (`--app ENDPOINT`, ipc:// or
// tcp://127.0.0.1:PORT): how programs on the same machine register endpoints, send ADUs and
// receive them. The daemon binds a ROUTER; a client connects a DEALER. Every message is
// multipart: [verb][header][payload (send / deliver only)]. A header is JSON, or, for the
// per-ADU verbs, a compact binary header (below); the daemon accepts both.
//
//   client -> daemon                           daemon -> client
//   register {"endpoint":"ipn:3.7"}            registered {"endpoint":...}  | error {"error":...}
//     (+ "binary":true: deliveries to this registration carry binary headers)
//   send {"to","priority","lifetime_ms",       stored {"tag","id"}          | refused {"tag","error"}
//         "tag"} + payload                     (sent once the bundle is durable in the store)
//   confirm {"endpoint","id"}                  (none: the bundle leaves the store)
//   confirm {"endpoint","ids":[id, ...]}       the same for many deliveries at once (cumulative)
//                                              deliver {"endpoint","id","source","created_ms",
//                                                "sequence","priority","size",
//                                                "possible_redelivery"} + payload
//   status {}                                  status {counters ...}
//   unregister {"endpoint"}                    unregistered {"endpoint"}
//
// Bundle IDs travel as their text form in JSON (BundleId::ToString, parsed by ParseBundleId). The
// daemon keeps at most kDeliveryWindow deliveries unconfirmed per client; a client that registers
// an endpoint again (after a crash) gets the unconfirmed ones again, flagged possible_redelivery.
// Headers are bounded (kMaxHeaderBytes) and parsed strictly: a bad message gets an error reply
// (and is counted in the daemon's "app_errors").
//
// Binary headers, version 1 (`send`, `stored`, `deliver`, `confirm`). A header whose first byte is
// kBinaryHeaderMagic is binary (a JSON text never begins with 0xB1); integers are big-endian:
//
//   byte 0   0xB1   magic
//   byte 1   1      version (any other is refused)
//   then, by verb:
//     send     u8 priority (0 bulk, 1 normal, 2 expedited), i64 lifetime ms, u64 tag, EID to,
//              EID from (dtn:none: the daemon's own ipn:N.0)
//     stored   u64 tag, bundle ID                           (the reply to a binary send)
//     deliver  u8 flags (bit 0: possible redelivery; others 0), u8 priority, EID endpoint,
//              bundle ID; the payload is the next part (its size is the part's size; the source
//              and creation timestamp are the bundle ID's)
//     confirm  EID endpoint, u16 count (1..kMaxConfirmIds), `count` bundle IDs
//   EID        u8 scheme: 0 dtn:none | 1 dtn: u16 length (1..kMaxEidSspBytes), the SSP text
//              ("//node/service") | 2 ipn: u64 node, u64 service
//   bundle ID  EID source, i64 creation ms, u64 sequence, u8 fragment flag (0 or 1)
//              [u64 fragment offset, u64 fragment length]
//
// A binary send is answered by a binary `stored`; `refused` and `error` replies are JSON whatever
// the request's form ({"error": ..., "tag": <the u64 tag>} when a binary send's header decoded but
// the node refused the bundle; {"error": "binary send header at byte N: ..."} when it did not).
// Every rejected request is counted ("app_errors") and logged ("app-error" event). Every
// length is checked against the bytes left before it is used; nothing is allocated from a count
// before the count is checked against the header's size; trailing bytes are an error.
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtn/bundle.h"

namespace ics::dtn::zmq {

inline constexpr std::size_t kMaxHeaderBytes = 64 * 1024;  // ~2,000 IDs in one JSON cumulative confirm
inline constexpr std::size_t kDeliveryWindow = 1024;

inline constexpr std::uint8_t kBinaryHeaderMagic = 0xB1;
inline constexpr std::uint8_t kBinaryHeaderVersion = 1;
inline constexpr std::size_t kMaxEidSspBytes = 4096;             // a dtn: EID's SSP in a binary header
inline constexpr std::size_t kMaxConfirmIds = 4096;              // bundle IDs in one binary confirm
inline constexpr std::size_t kMinBinaryIdBytes = 1 + 8 + 8 + 1;  // dtn:none source, ms, seq, flag

// "ipn:2.1/815000000123.4" (BundleId::ToString; a fragment's ID is refused) back to an ID.
std::expected<BundleId, std::string> ParseBundleId(std::string_view text);

// True if `header` is a binary header (begins with the magic byte), whatever its version.
bool IsBinaryHeader(std::string_view header);

struct SendHeader {
  Priority priority = Priority::kNormal;
  std::int64_t lifetime_ms = 86'400'000;
  std::uint64_t tag = 0;
  Eid to;
  Eid from;  // dtn:none: the daemon's own ipn:N.0
};

struct StoredHeader {
  std::uint64_t tag = 0;
  BundleId id;
};

struct DeliverHeader {
  Eid endpoint;
  BundleId id;
  Priority priority = Priority::kNormal;
  bool possible_redelivery = false;
};

struct ConfirmHeader {
  Eid endpoint;
  std::vector<BundleId> ids;  // 1..kMaxConfirmIds
};

// Encoders append to `out` (a byte buffer; the caller may reuse it).
void AppendSendHeader(std::string& out, const SendHeader& header);
void AppendStoredHeader(std::string& out, std::uint64_t tag, const BundleId& id);
void AppendDeliverHeader(std::string& out, const Eid& endpoint, const BundleId& id, Priority priority,
                         bool possible_redelivery);
// REQUIRES: 1 <= ids.size() <= kMaxConfirmIds. A sender keeps the header within kMaxHeaderBytes
// (the daemon refuses a longer one): 2 + BinaryEidBytes(endpoint) + 2 + the BinaryIdBytes of each.
void AppendConfirmHeader(std::string& out, const Eid& endpoint, std::span<const BundleId> ids);
// The encoded sizes of an EID and a bundle ID in a binary header.
std::size_t BinaryEidBytes(const Eid& eid);
std::size_t BinaryIdBytes(const BundleId& id);

// Strict decoders of a whole binary header (magic and version included). Errors name the byte
// offset and what is wrong: "binary send header at byte 12: truncated EID".
std::expected<SendHeader, std::string> ParseSendHeader(std::string_view header);
std::expected<StoredHeader, std::string> ParseStoredHeader(std::string_view header);
std::expected<DeliverHeader, std::string> ParseDeliverHeader(std::string_view header);
std::expected<ConfirmHeader, std::string> ParseConfirmHeader(std::string_view header);

}  // namespace ics::dtn::zmq
