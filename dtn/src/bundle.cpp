#include "dtn/bundle.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cbor.h"
#include "dtn/codec.h"

namespace ics::dtn {
namespace {

// Reads a block's data holding exactly one unsigned integer.
std::optional<std::uint64_t> SingleUint(const std::vector<std::uint8_t>& data) {
  cbor::Reader r(data);
  cbor::Head h;
  if (r.ReadHead(h) != cbor::HeadStatus::kOk || h.major != cbor::Major::kUnsigned || !r.at_end()) {
    return std::nullopt;
  }
  return h.arg;
}

std::vector<std::uint8_t> UintData(std::uint64_t v) {
  std::vector<std::uint8_t> data;
  cbor::WriteUint(data, v);
  return data;
}

// Adds a block of `type` or replaces its data. A new block takes the next free block number and
// goes just before the payload block (which stays last), with the payload block's CRC type.
void PutBlock(Bundle& bundle, std::uint64_t type, std::vector<std::uint8_t> data) {
  if (CanonicalBlock* existing = bundle.FindBlock(type)) {
    existing->data = std::move(data);
    return;
  }
  std::uint64_t number = 1;
  for (const CanonicalBlock& b : bundle.blocks) number = std::max(number, b.number);
  CanonicalBlock block;
  block.type = type;
  block.number = number + 1;
  block.data = std::move(data);
  auto pos = bundle.blocks.end();
  if (!bundle.blocks.empty() && bundle.blocks.back().type == block_type::kPayload) {
    block.crc_type = bundle.blocks.back().crc_type;
    pos = bundle.blocks.end() - 1;
  }
  bundle.blocks.insert(pos, std::move(block));
}

// a + b, saturating at DtnTime::Max() / DtnTime::FromMillis(min): times from the wire may be
// anywhere in [0, 2^63).
clock::DtnTime SaturatingAdd(clock::DtnTime t, clock::Duration d) {
  std::int64_t sum = 0;
  if (__builtin_add_overflow(t.millis(), d.count(), &sum) || sum > clock::DtnTime::Max().millis()) {
    return d.count() < 0 ? clock::DtnTime::FromMillis(std::numeric_limits<std::int64_t>::min() / 4)
                         : clock::DtnTime::Max();
  }
  return clock::DtnTime::FromMillis(sum);
}

}  // namespace

std::string_view PriorityName(Priority p) {
  switch (p) {
    case Priority::kBulk:
      return "bulk";
    case Priority::kNormal:
      return "normal";
    case Priority::kExpedited:
      return "expedited";
  }
  return "?";
}

std::optional<Priority> ParsePriority(std::string_view name) {
  if (name == "bulk") return Priority::kBulk;
  if (name == "normal") return Priority::kNormal;
  if (name == "expedited") return Priority::kExpedited;
  return std::nullopt;
}

std::string BundleId::ToString() const {
  std::string text = fmt::format("{}/{}.{}", source.ToString(), created.time.millis(), created.sequence);
  if (fragment_offset || fragment_length) {
    text += fmt::format("#{}+{}", fragment_offset.value_or(0), fragment_length.value_or(0));
  }
  return text;
}

BundleId Bundle::Id() const {
  BundleId id{primary.source, primary.created, std::nullopt, std::nullopt};
  if ((primary.flags & bundle_flags::kIsFragment) != 0) {
    id.fragment_offset = primary.fragment_offset.value_or(0);
    const CanonicalBlock* p = FindBlock(block_type::kPayload);
    id.fragment_length = p != nullptr ? p->data.size() : 0;
  }
  return id;
}

const CanonicalBlock* Bundle::FindBlock(std::uint64_t type) const {
  for (const CanonicalBlock& b : blocks) {
    if (b.type == type) return &b;
  }
  return nullptr;
}

CanonicalBlock* Bundle::FindBlock(std::uint64_t type) {
  for (CanonicalBlock& b : blocks) {
    if (b.type == type) return &b;
  }
  return nullptr;
}

const std::vector<std::uint8_t>& Bundle::payload() const {
  const CanonicalBlock* p = FindBlock(block_type::kPayload);
  if (p == nullptr) {
    std::fprintf(stderr, "ics::dtn::Bundle::payload: the bundle has no payload block\n");
    std::abort();
  }
  return p->data;
}

std::optional<Eid> Bundle::previous_node() const {
  const CanonicalBlock* b = FindBlock(block_type::kPreviousNode);
  if (b == nullptr) return std::nullopt;
  auto eid = DecodeEid(b->data);
  if (!eid) return std::nullopt;
  return *eid;
}

std::optional<clock::Duration> Bundle::bundle_age() const {
  const CanonicalBlock* b = FindBlock(block_type::kBundleAge);
  if (b == nullptr) return std::nullopt;
  auto age = SingleUint(b->data);
  if (!age || *age > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return std::nullopt;
  return clock::Duration(static_cast<std::int64_t>(*age));
}

std::optional<HopCount> Bundle::hop_count() const {
  const CanonicalBlock* b = FindBlock(block_type::kHopCount);
  if (b == nullptr) return std::nullopt;
  cbor::Reader r(b->data);
  cbor::Head h;
  HopCount hops;
  if (r.ReadHead(h) != cbor::HeadStatus::kOk || h.major != cbor::Major::kArray || h.arg != 2)
    return std::nullopt;
  if (r.ReadHead(h) != cbor::HeadStatus::kOk || h.major != cbor::Major::kUnsigned) return std::nullopt;
  hops.limit = h.arg;
  if (r.ReadHead(h) != cbor::HeadStatus::kOk || h.major != cbor::Major::kUnsigned || !r.at_end()) {
    return std::nullopt;
  }
  hops.count = h.arg;
  return hops;
}

Priority Bundle::priority() const {
  const CanonicalBlock* b = FindBlock(block_type::kIcsPriority);
  if (b == nullptr) return Priority::kNormal;
  auto p = SingleUint(b->data);
  if (!p || *p > 2) return Priority::kNormal;
  return static_cast<Priority>(*p);
}

void Bundle::set_previous_node(const Eid& node) {
  std::vector<std::uint8_t> data;
  EncodeEid(node, data);
  PutBlock(*this, block_type::kPreviousNode, std::move(data));
}

void Bundle::set_bundle_age(clock::Duration age) {
  if (age.count() < 0) {
    std::fprintf(stderr, "ics::dtn::Bundle::set_bundle_age: negative age %lld ms\n",
                 static_cast<long long>(age.count()));
    std::abort();
  }
  PutBlock(*this, block_type::kBundleAge, UintData(static_cast<std::uint64_t>(age.count())));
}

void Bundle::set_hop_count(HopCount hops) {
  std::vector<std::uint8_t> data;
  cbor::WriteHead(data, cbor::Major::kArray, 2);
  cbor::WriteUint(data, hops.limit);
  cbor::WriteUint(data, hops.count);
  PutBlock(*this, block_type::kHopCount, std::move(data));
}

void Bundle::set_priority(Priority p) {
  if (p == Priority::kNormal && FindBlock(block_type::kIcsPriority) == nullptr)
    return;  // absent means normal
  PutBlock(*this, block_type::kIcsPriority, UintData(static_cast<std::uint64_t>(p)));
}

std::optional<clock::DtnTime> Bundle::ExpiresAt(clock::DtnTime received_at) const {
  if (primary.created.time.millis() != 0) return SaturatingAdd(primary.created.time, primary.lifetime);
  // No clock at the source: the bundle has lived `age` before it reached us (RFC 9171 §4.2.6).
  const std::optional<clock::Duration> age = bundle_age();
  if (!age) return std::nullopt;
  return SaturatingAdd(SaturatingAdd(received_at, -*age), primary.lifetime);
}

Bundle MakeBundle(const Eid& source, const Eid& destination, CreationTimestamp created,
                  clock::Duration lifetime, std::vector<std::uint8_t> payload, Priority priority,
                  CrcType crc) {
  Bundle bundle;
  bundle.primary.crc_type = crc;
  bundle.primary.destination = destination;
  bundle.primary.source = source;
  bundle.primary.report_to = Eid::None();  // no status reports are requested
  bundle.primary.created = created;
  bundle.primary.lifetime = lifetime;
  CanonicalBlock payload_block;
  payload_block.type = block_type::kPayload;
  payload_block.number = 1;
  payload_block.crc_type = crc;
  payload_block.data = std::move(payload);
  bundle.blocks.push_back(std::move(payload_block));
  bundle.set_priority(priority);
  return bundle;
}

}  // namespace ics::dtn
