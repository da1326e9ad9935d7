// The bundle model (RFC 9171 §4): a primary block and canonical blocks. Plain data; the codec
// (codec.h) turns it into bytes and back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "clock/time.h"
#include "dtn/eid.h"

namespace ics::dtn {

enum class CrcType : std::uint8_t { kNone = 0, kCrc16 = 1, kCrc32c = 2 };

// Bundle processing control flags (RFC 9171 §4.2.3).
namespace bundle_flags {
inline constexpr std::uint64_t kIsFragment = 0x000001;
inline constexpr std::uint64_t kAdminRecord = 0x000002;
inline constexpr std::uint64_t kMustNotFragment = 0x000004;
inline constexpr std::uint64_t kAckRequested = 0x000020;
inline constexpr std::uint64_t kStatusTimeRequested = 0x000040;
inline constexpr std::uint64_t kReportReception = 0x004000;
inline constexpr std::uint64_t kReportForwarding = 0x010000;
inline constexpr std::uint64_t kReportDelivery = 0x020000;
inline constexpr std::uint64_t kReportDeletion = 0x040000;
}  // namespace bundle_flags

// Block processing control flags (RFC 9171 §4.2.4).
namespace block_flags {
inline constexpr std::uint64_t kMustReplicate = 0x01;
inline constexpr std::uint64_t kReportIfUnprocessable = 0x02;
inline constexpr std::uint64_t kDeleteBundleIfUnprocessable = 0x04;
inline constexpr std::uint64_t kDiscardBlockIfUnprocessable = 0x10;
}  // namespace block_flags

// Block type codes.
namespace block_type {
inline constexpr std::uint64_t kPayload = 1;
inline constexpr std::uint64_t kPreviousNode = 6;
inline constexpr std::uint64_t kBundleAge = 7;
inline constexpr std::uint64_t kHopCount = 10;
// Ours, in the private/experimental range (RFC 9171 §9.1: 192-255): the bundle's priority,
// block-type-specific data = CBOR unsigned integer 0 (bulk), 1 (normal) or 2 (expedited).
inline constexpr std::uint64_t kIcsPriority = 192;
}  // namespace block_type

enum class Priority : std::uint8_t { kBulk = 0, kNormal = 1, kExpedited = 2 };
std::string_view PriorityName(Priority p);  // "bulk", "normal", "expedited"
std::optional<Priority> ParsePriority(std::string_view name);

struct CreationTimestamp {
  clock::DtnTime time;  // DTN time of creation; 0 = the source has no accurate clock
  std::uint64_t sequence = 0;
  auto operator<=>(const CreationTimestamp&) const = default;
};

// (source, creation timestamp, fragment offset/length): unique per bundle (RFC 9171 §4.2.2 & §5).
struct BundleId {
  Eid source;
  CreationTimestamp created;
  std::optional<std::uint64_t> fragment_offset;
  std::optional<std::uint64_t> fragment_length;  // the payload length of this fragment
  auto operator<=>(const BundleId&) const = default;
  std::string ToString() const;  // "ipn:2.1/815000000123.4" (+ "#offset+len" for fragments)
};

struct PrimaryBlock {
  std::uint64_t flags = 0;
  CrcType crc_type = CrcType::kCrc32c;
  Eid destination;
  Eid source;
  Eid report_to;
  CreationTimestamp created;
  clock::Duration lifetime{0};
  std::optional<std::uint64_t> fragment_offset;   // present iff kIsFragment
  std::optional<std::uint64_t> total_adu_length;  // present iff kIsFragment
  bool operator==(const PrimaryBlock&) const = default;
};

// A canonical block. For the block types the stack understands the parsed value is kept beside
// the raw block-type-specific data; `data` is always authoritative on the wire for unknown types.
struct CanonicalBlock {
  std::uint64_t type = 0;
  std::uint64_t number = 0;  // unique within the bundle; the payload block is number 1
  std::uint64_t flags = 0;
  CrcType crc_type = CrcType::kNone;
  std::vector<std::uint8_t> data;  // block-type-specific data (for the payload: the ADU bytes)
  bool operator==(const CanonicalBlock&) const = default;
};

struct HopCount {
  std::uint64_t limit = 0;
  std::uint64_t count = 0;
  bool operator==(const HopCount&) const = default;
};

// A whole bundle. Invariant (checked by the codec): exactly one payload block, last, number 1;
// block numbers unique; at most one previous-node, bundle-age, hop-count and priority block.
struct Bundle {
  PrimaryBlock primary;
  std::vector<CanonicalBlock> blocks;  // in wire order; the payload block last

  BundleId Id() const;
  const CanonicalBlock* FindBlock(std::uint64_t type) const;
  CanonicalBlock* FindBlock(std::uint64_t type);
  const std::vector<std::uint8_t>& payload() const;  // REQUIRES: a payload block exists

  // Typed views of the extension blocks (nullopt when absent or unparseable).
  std::optional<Eid> previous_node() const;
  std::optional<clock::Duration> bundle_age() const;
  std::optional<HopCount> hop_count() const;
  Priority priority() const;  // kNormal when no priority block

  // Setters replace the block's data or add the block: a new block takes the next free block
  // number, goes just before the payload block (which stays last), flags 0, with the payload
  // block's CRC type. set_priority(kNormal) adds no block when there is none (absent = normal).
  // REQUIRES (set_bundle_age): age >= 0.
  void set_previous_node(const Eid& node);
  void set_bundle_age(clock::Duration age);
  void set_hop_count(HopCount hops);
  void set_priority(Priority p);

  // When the bundle expires: created.time + lifetime; when the creation time is 0 (no clock),
  // `received_at` - bundle age + lifetime (RFC 9171 §4.2.6). nullopt when neither is known.
  std::optional<clock::DtnTime> ExpiresAt(clock::DtnTime received_at) const;

  bool operator==(const Bundle&) const = default;
};

// Builds a bundle with a payload block and (for non-normal priority) a priority block. `crc` is
// the CRC type of the primary block and of the payload block; report-to is dtn:none; flags 0.
Bundle MakeBundle(const Eid& source, const Eid& destination, CreationTimestamp created,
                  clock::Duration lifetime, std::vector<std::uint8_t> payload,
                  Priority priority = Priority::kNormal, CrcType crc = CrcType::kCrc32c);

}  // namespace ics::dtn
