#include "dtn/codec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "cbor.h"
#include "crc.h"

namespace ics::dtn {
namespace {

using cbor::Head;
using cbor::HeadStatus;
using cbor::Major;
using Kind = DecodeError::Kind;

constexpr std::uint64_t kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "ics::dtn::Encode: broken bundle invariant: %s\n", what);
  std::abort();
}

std::string_view MajorName(Major m) {
  switch (m) {
    case Major::kUnsigned:
      return "unsigned integer";
    case Major::kNegative:
      return "negative integer";
    case Major::kBytes:
      return "byte string";
    case Major::kText:
      return "text string";
    case Major::kArray:
      return "array";
    case Major::kMap:
      return "map";
    case Major::kTag:
      return "tag";
    case Major::kSimple:
      return "simple value or float";
  }
  return "?";
}

// Bit of a typed extension block type in Decoder::typed_seen_ (at most one of each per bundle).
int TypedBit(std::uint64_t type) {
  switch (type) {
    case block_type::kPreviousNode:
      return 1;
    case block_type::kBundleAge:
      return 2;
    case block_type::kHopCount:
      return 4;
    case block_type::kIcsPriority:
      return 8;
    default:
      return 0;
  }
}

// Schema-driven decoder: each method reads one item of the schema or records the first error
// (naming the block being read) and returns false. Error strings are built only on failure.
class Decoder {
 public:
  Decoder(std::span<const std::uint8_t> bytes, const DecodeLimits& limits)
      : bytes_(bytes), r_(bytes), limits_(limits) {}

  bool Run(Bundle& out);
  bool ReadWholeEid(Eid& eid);  // for DecodeEid
  DecodeError TakeError() { return std::move(error_); }

 private:
  enum class Where : std::uint8_t { kBundle, kPrimary, kCanonical };

  bool Fail(Kind kind, std::size_t offset, std::string message) {
    error_.kind = kind;
    error_.offset = offset;
    error_.message = std::move(message);
    switch (where_) {
      case Where::kBundle:
        error_.block = "bundle";
        break;
      case Where::kPrimary:
        error_.block = "primary";
        break;
      case Where::kCanonical:
        if (number_known_) {
          error_.block = fmt::format("block {} (type {})", number_, type_);
        } else if (type_known_) {
          error_.block = fmt::format("block #{} (type {})", position_, type_);
        } else {
          error_.block = fmt::format("block #{}", position_);
        }
        break;
    }
    return false;
  }

  bool ReadHead(Head& h, std::string_view what) {
    const std::size_t at = r_.offset();
    switch (r_.ReadHead(h)) {
      case HeadStatus::kOk:
        return true;
      case HeadStatus::kTruncated:
        return Fail(Kind::kTruncated, at, fmt::format("input ends inside {}", what));
      case HeadStatus::kNonCanonical:
        return Fail(Kind::kNonCanonical, at,
                    fmt::format("{}: CBOR head 0x{:02x} is not in shortest form", what, *r_.at(at)));
      case HeadStatus::kIndefinite:
        if (*r_.at(at) == cbor::kBreak) {
          return Fail(Kind::kWrongType, at, fmt::format("{}: found the break (0xff) before the item", what));
        }
        return Fail(Kind::kNonCanonical, at,
                    fmt::format("{}: indefinite length (0x{:02x}) not allowed here", what, *r_.at(at)));
      case HeadStatus::kReserved:
        return Fail(Kind::kInvalid, at, fmt::format("{}: reserved CBOR head 0x{:02x}", what, *r_.at(at)));
    }
    return false;
  }

  bool TypeError(const Head& h, std::size_t at, std::string_view expected, std::string_view what) {
    const Kind kind =
        (h.major == Major::kArray || h.major == Major::kMap) ? Kind::kNesting : Kind::kWrongType;
    return Fail(kind, at, fmt::format("{}: expected {}, found {}", what, expected, MajorName(h.major)));
  }

  bool Uint(std::uint64_t& v, std::string_view what) {
    const std::size_t at = r_.offset();
    Head h;
    if (!ReadHead(h, what)) return false;
    if (h.major != Major::kUnsigned) return TypeError(h, at, "unsigned integer", what);
    v = h.arg;
    return true;
  }

  bool ArrayHead(std::uint64_t& n, std::string_view what) {
    const std::size_t at = r_.offset();
    Head h;
    if (!ReadHead(h, what)) return false;
    if (h.major != Major::kArray) {
      return Fail(Kind::kWrongType, at,
                  fmt::format("{}: expected array, found {}", what, MajorName(h.major)));
    }
    n = h.arg;
    return true;
  }

  // A byte or text string of at most `max` bytes; `out` views the input.
  bool String(Major major, std::span<const std::uint8_t>& out, std::size_t max, std::string_view what) {
    const std::size_t at = r_.offset();
    Head h;
    if (!ReadHead(h, what)) return false;
    if (h.major != major) return TypeError(h, at, MajorName(major), what);
    if (h.arg > max) {
      return Fail(Kind::kTooLarge, at, fmt::format("{}: length {} exceeds the limit {}", what, h.arg, max));
    }
    if (h.arg > r_.remaining()) {
      return Fail(Kind::kTruncated, at,
                  fmt::format("{}: length {} but only {} bytes left", what, h.arg, r_.remaining()));
    }
    out = bytes_.subspan(r_.offset(), static_cast<std::size_t>(h.arg));
    r_.Skip(static_cast<std::size_t>(h.arg));
    return true;
  }

  bool CrcTypeField(CrcType& type, std::string_view what) {
    const std::size_t at = r_.offset();
    std::uint64_t v = 0;
    if (!Uint(v, what)) return false;
    if (v > 2) return Fail(Kind::kInvalid, at, fmt::format("{}: CRC type {} (expected 0, 1 or 2)", what, v));
    type = static_cast<CrcType>(v);
    return true;
  }

  bool ReadEid(Eid& eid, std::string_view what);
  bool CheckCrc(CrcType type, std::size_t block_start);
  bool Primary(PrimaryBlock& p);
  bool Canonical(CanonicalBlock& b, std::size_t data_limit, std::size_t& data_offset);
  bool CheckTypedData(const CanonicalBlock& b, std::size_t data_offset);

  std::span<const std::uint8_t> bytes_;
  cbor::Reader r_;
  const DecodeLimits& limits_;
  DecodeError error_;
  // What is being read, for error messages.
  Where where_ = Where::kBundle;
  std::size_t position_ = 0;  // 1-based position of the canonical block after the primary
  bool type_known_ = false;
  bool number_known_ = false;
  std::uint64_t type_ = 0;
  std::uint64_t number_ = 0;
};

bool Decoder::ReadEid(Eid& eid, std::string_view what) {
  const std::size_t at = r_.offset();
  std::uint64_t n = 0;
  if (!ArrayHead(n, what)) return false;
  if (n != 2) return Fail(Kind::kBadEid, at, fmt::format("{}: EID array has {} items, expected 2", what, n));
  const std::size_t scheme_at = r_.offset();
  std::uint64_t scheme = 0;
  if (!Uint(scheme, what)) return false;
  if (scheme == static_cast<std::uint64_t>(Eid::Scheme::kDtn)) {
    const std::size_t ssp_at = r_.offset();
    if (!r_.at_end() && (r_.PeekByte() >> 5) == static_cast<std::uint8_t>(Major::kUnsigned)) {
      std::uint64_t zero = 0;
      if (!Uint(zero, what)) return false;
      if (zero != 0) {
        return Fail(Kind::kBadEid, ssp_at,
                    fmt::format("{}: dtn SSP integer is {}; only 0 (dtn:none)", what, zero));
      }
      eid = Eid::None();
      return true;
    }
    std::span<const std::uint8_t> text;
    if (!String(Major::kText, text, limits_.max_eid_bytes, what)) return false;
    const std::string_view ssp(reinterpret_cast<const char*>(text.data()), text.size());
    if (ssp == "none")
      return Fail(Kind::kBadEid, ssp_at, fmt::format("{}: dtn:none is encoded as [1, 0]", what));
    auto parsed = Eid::Dtn(ssp);
    if (!parsed) return Fail(Kind::kBadEid, ssp_at, fmt::format("{}: {}", what, parsed.error()));
    eid = std::move(*parsed);
    return true;
  }
  if (scheme == static_cast<std::uint64_t>(Eid::Scheme::kIpn)) {
    const std::size_t ssp_at = r_.offset();
    if (!ArrayHead(n, what)) return false;
    if (n != 2)
      return Fail(Kind::kBadEid, ssp_at, fmt::format("{}: ipn SSP has {} items, expected 2", what, n));
    std::uint64_t node = 0;
    std::uint64_t service = 0;
    if (!Uint(node, what) || !Uint(service, what)) return false;
    eid = Eid::Ipn(node, service);
    return true;
  }
  return Fail(Kind::kBadEid, scheme_at, fmt::format("{}: unknown EID scheme code {}", what, scheme));
}

bool Decoder::CheckCrc(CrcType type, std::size_t block_start) {
  const std::size_t at = r_.offset();
  std::span<const std::uint8_t> value;
  if (!String(Major::kBytes, value, 8, "CRC")) return false;
  const std::size_t want = internal::CrcValueBytes(type);
  if (value.size() != want) {
    return Fail(Kind::kInvalid, at,
                fmt::format("CRC field has {} bytes; CRC type {} has {}", value.size(),
                            static_cast<int>(type), want));
  }
  std::uint32_t stored = 0;
  for (std::uint8_t byte : value) stored = (stored << 8) | byte;
  const std::size_t value_at = r_.offset() - want;
  const std::uint32_t computed =
      internal::BlockCrc(type, bytes_.subspan(block_start, value_at - block_start));
  if (stored != computed) {
    const int digits = type == CrcType::kCrc16 ? 4 : 8;
    return Fail(
        Kind::kBadCrc, at,
        fmt::format("{} is 0x{:0{}x}, computed 0x{:0{}x}", type == CrcType::kCrc16 ? "CRC-16" : "CRC-32C",
                    stored, digits, computed, digits));
  }
  return true;
}

bool Decoder::Primary(PrimaryBlock& p) {
  where_ = Where::kPrimary;
  const std::size_t start = r_.offset();
  std::uint64_t n = 0;
  if (!ArrayHead(n, "primary block")) return false;
  if (n < 8 || n > 11) {
    return Fail(Kind::kInvalid, start, fmt::format("primary block has {} items; expected 8 to 11", n));
  }
  const std::size_t version_at = r_.offset();
  std::uint64_t version = 0;
  if (!Uint(version, "version")) return false;
  if (version != 7)
    return Fail(Kind::kBadVersion, version_at, fmt::format("version is {}, expected 7", version));
  if (!Uint(p.flags, "bundle processing flags")) return false;
  if (!CrcTypeField(p.crc_type, "CRC type")) return false;
  const bool fragment = (p.flags & bundle_flags::kIsFragment) != 0;
  const std::uint64_t expected_n = 8 + (fragment ? 2 : 0) + (p.crc_type != CrcType::kNone ? 1 : 0);
  if (n != expected_n) {
    return Fail(
        Kind::kInvalid, start,
        fmt::format("primary block has {} items; its fragment flag and CRC type call for {}", n, expected_n));
  }
  if (!ReadEid(p.destination, "destination") || !ReadEid(p.source, "source") ||
      !ReadEid(p.report_to, "report-to")) {
    return false;
  }
  const std::size_t ts_at = r_.offset();
  if (!ArrayHead(n, "creation timestamp")) return false;
  if (n != 2)
    return Fail(Kind::kInvalid, ts_at, fmt::format("creation timestamp has {} items, expected 2", n));
  const std::size_t time_at = r_.offset();
  std::uint64_t v = 0;
  if (!Uint(v, "creation time")) return false;
  if (v > kInt64Max) return Fail(Kind::kInvalid, time_at, fmt::format("creation time {} is out of range", v));
  p.created.time = clock::DtnTime::FromMillis(static_cast<std::int64_t>(v));
  if (!Uint(p.created.sequence, "sequence number")) return false;
  const std::size_t lifetime_at = r_.offset();
  if (!Uint(v, "lifetime")) return false;
  if (v > kInt64Max) return Fail(Kind::kInvalid, lifetime_at, fmt::format("lifetime {} is out of range", v));
  p.lifetime = clock::Duration(static_cast<std::int64_t>(v));
  if (fragment) {
    std::uint64_t offset = 0;
    std::uint64_t total = 0;
    if (!Uint(offset, "fragment offset") || !Uint(total, "total ADU length")) return false;
    p.fragment_offset = offset;
    p.total_adu_length = total;
  } else {
    p.fragment_offset.reset();
    p.total_adu_length.reset();
  }
  if (p.crc_type != CrcType::kNone && !CheckCrc(p.crc_type, start)) return false;
  return true;
}

bool Decoder::Canonical(CanonicalBlock& b, std::size_t data_limit, std::size_t& data_offset) {
  const std::size_t start = r_.offset();
  std::uint64_t n = 0;
  if (!ArrayHead(n, "canonical block")) return false;
  if (n != 5 && n != 6)
    return Fail(Kind::kInvalid, start, fmt::format("block has {} items; expected 5 or 6", n));
  if (!Uint(b.type, "block type")) return false;
  type_ = b.type;
  type_known_ = true;
  if (!Uint(b.number, "block number")) return false;
  number_ = b.number;
  number_known_ = true;
  if (!Uint(b.flags, "block processing flags")) return false;
  if (!CrcTypeField(b.crc_type, "CRC type")) return false;
  const std::uint64_t expected_n = b.crc_type != CrcType::kNone ? 6 : 5;
  if (n != expected_n) {
    return Fail(Kind::kInvalid, start,
                fmt::format("block has {} items; its CRC type calls for {}", n, expected_n));
  }
  if (b.type == block_type::kPayload) data_limit = std::min(data_limit, limits_.max_payload_bytes);
  data_offset = r_.offset();
  std::span<const std::uint8_t> data;
  if (!String(Major::kBytes, data, data_limit, b.type == block_type::kPayload ? "payload" : "block data")) {
    return false;
  }
  if (b.crc_type != CrcType::kNone && !CheckCrc(b.crc_type, start)) return false;
  // Only now, with the length checked against the input and the limits, copy.
  b.data.assign(data.begin(), data.end());
  data_offset = static_cast<std::size_t>(data.data() - bytes_.data());
  return true;
}

bool Decoder::CheckTypedData(const CanonicalBlock& b, std::size_t data_offset) {
  if (TypedBit(b.type) == 0) return true;
  // Read the block-type-specific data in place, with absolute offsets, then require that it
  // held exactly one item.
  const cbor::Reader saved = r_;
  r_ = cbor::Reader(bytes_.first(data_offset + b.data.size()));
  r_.Skip(data_offset);
  bool ok = true;
  switch (b.type) {
    case block_type::kPreviousNode: {
      Eid eid;
      ok = ReadEid(eid, "previous node");
      break;
    }
    case block_type::kBundleAge: {
      const std::size_t at = r_.offset();
      std::uint64_t age = 0;
      ok = Uint(age, "bundle age");
      if (ok && age > kInt64Max)
        ok = Fail(Kind::kInvalid, at, fmt::format("bundle age {} is out of range", age));
      break;
    }
    case block_type::kHopCount: {
      const std::size_t at = r_.offset();
      std::uint64_t n = 0;
      std::uint64_t v = 0;
      ok = ArrayHead(n, "hop count");
      if (ok && n != 2) ok = Fail(Kind::kInvalid, at, fmt::format("hop count has {} items, expected 2", n));
      ok = ok && Uint(v, "hop limit") && Uint(v, "hop count");
      break;
    }
    case block_type::kIcsPriority: {
      const std::size_t at = r_.offset();
      std::uint64_t p = 0;
      ok = Uint(p, "priority");
      if (ok && p > 2) ok = Fail(Kind::kInvalid, at, fmt::format("priority {} (expected 0, 1 or 2)", p));
      break;
    }
    default:
      break;
  }
  if (ok && !r_.at_end()) {
    ok = Fail(Kind::kInvalid, r_.offset(),
              fmt::format("{} bytes after the block's data item", r_.remaining()));
  }
  r_ = saved;
  return ok;
}

bool Decoder::Run(Bundle& out) {
  if (bytes_.size() > limits_.max_bundle_bytes) {
    return Fail(Kind::kTooLarge, 0,
                fmt::format("bundle is {} bytes; the limit is {}", bytes_.size(), limits_.max_bundle_bytes));
  }
  if (r_.at_end()) return Fail(Kind::kTruncated, 0, "empty input");
  if (r_.PeekByte() != cbor::kIndefiniteArray) {
    return Fail(
        Kind::kWrongType, 0,
        fmt::format("a bundle is an indefinite-length CBOR array (0x9f); found 0x{:02x}", r_.PeekByte()));
  }
  r_.Skip(1);
  if (!Primary(out.primary)) return false;

  where_ = Where::kCanonical;
  std::size_t used = 0;  // blocks of out.blocks filled so far (the rest is reused capacity)
  bool payload_seen = false;
  int typed_seen = 0;
  for (;;) {
    if (r_.at_end()) {
      where_ = Where::kBundle;
      return Fail(Kind::kTruncated, r_.offset(), "input ends before the bundle's closing break (0xff)");
    }
    if (r_.PeekByte() == cbor::kBreak) break;
    position_ = used + 1;
    type_known_ = number_known_ = false;
    const std::size_t start = r_.offset();
    if (used == limits_.max_blocks) {
      return Fail(Kind::kTooLarge, start, fmt::format("more than {} canonical blocks", limits_.max_blocks));
    }
    if (used == out.blocks.size()) out.blocks.emplace_back();
    CanonicalBlock& b = out.blocks[used];
    std::size_t data_offset = 0;
    if (!Canonical(b, limits_.max_bundle_bytes, data_offset)) return false;
    if (b.type == block_type::kPayload && payload_seen) {
      return Fail(Kind::kDuplicateBlock, start, "a second payload block");
    }
    if (payload_seen) {
      return Fail(Kind::kMissingPayload, start,
                  "a block after the payload block (the payload block must be last)");
    }
    if (b.type == 0) return Fail(Kind::kInvalid, start, "block type 0 is reserved");
    if (b.number == 0) return Fail(Kind::kInvalid, start, "block number 0 is the primary block's");
    if (b.type == block_type::kPayload && b.number != 1) {
      return Fail(Kind::kInvalid, start, "the payload block's number must be 1");
    }
    if (b.type != block_type::kPayload && b.number == 1) {
      return Fail(Kind::kInvalid, start, "block number 1 is reserved for the payload block");
    }
    for (std::size_t i = 0; i < used; ++i) {
      if (out.blocks[i].number == b.number) {
        return Fail(Kind::kDuplicateBlock, start, fmt::format("block number {} is used twice", b.number));
      }
    }
    if (const int bit = TypedBit(b.type); bit != 0) {
      if ((typed_seen & bit) != 0) {
        return Fail(Kind::kDuplicateBlock, start, fmt::format("a second block of type {}", b.type));
      }
      typed_seen |= bit;
      if (!CheckTypedData(b, data_offset)) return false;
    }
    payload_seen = payload_seen || b.type == block_type::kPayload;
    ++used;
  }
  where_ = Where::kBundle;
  out.blocks.resize(used);
  if (!payload_seen) return Fail(Kind::kMissingPayload, r_.offset(), "the bundle has no payload block");
  r_.Skip(1);  // the break
  if (!r_.at_end()) {
    return Fail(Kind::kTrailingBytes, r_.offset(),
                fmt::format("{} bytes after the bundle's closing break", r_.remaining()));
  }
  return true;
}

bool Decoder::ReadWholeEid(Eid& eid) {
  if (!ReadEid(eid, "EID")) return false;
  if (!r_.at_end()) {
    return Fail(Kind::kTrailingBytes, r_.offset(), fmt::format("{} bytes after the EID", r_.remaining()));
  }
  return true;
}

void AppendCrc(std::vector<std::uint8_t>& out, CrcType type, std::size_t block_start) {
  const std::size_t n = internal::CrcValueBytes(type);
  cbor::WriteHead(out, Major::kBytes, n);
  const std::size_t value_at = out.size();
  const std::uint32_t crc = internal::BlockCrc(
      type, std::span<const std::uint8_t>(out.data() + block_start, value_at - block_start));
  out.resize(value_at + n);
  for (std::size_t i = 0; i < n; ++i) out[value_at + i] = static_cast<std::uint8_t>(crc >> (8 * (n - 1 - i)));
}

void EncodePrimary(const PrimaryBlock& p, std::vector<std::uint8_t>& out) {
  const bool fragment = (p.flags & bundle_flags::kIsFragment) != 0;
  if (fragment != p.fragment_offset.has_value() || fragment != p.total_adu_length.has_value()) {
    Die("fragment_offset and total_adu_length must be present iff the kIsFragment flag is set");
  }
  if (p.created.time.millis() < 0) Die("negative creation time");
  if (p.lifetime.count() < 0) Die("negative lifetime");
  const std::size_t start = out.size();
  cbor::WriteHead(out, Major::kArray, 8 + (fragment ? 2 : 0) + (p.crc_type != CrcType::kNone ? 1 : 0));
  cbor::WriteUint(out, 7);
  cbor::WriteUint(out, p.flags);
  cbor::WriteUint(out, static_cast<std::uint64_t>(p.crc_type));
  EncodeEid(p.destination, out);
  EncodeEid(p.source, out);
  EncodeEid(p.report_to, out);
  cbor::WriteHead(out, Major::kArray, 2);
  cbor::WriteUint(out, static_cast<std::uint64_t>(p.created.time.millis()));
  cbor::WriteUint(out, p.created.sequence);
  cbor::WriteUint(out, static_cast<std::uint64_t>(p.lifetime.count()));
  if (fragment) {
    cbor::WriteUint(out, *p.fragment_offset);
    cbor::WriteUint(out, *p.total_adu_length);
  }
  if (p.crc_type != CrcType::kNone) AppendCrc(out, p.crc_type, start);
}

void EncodeCanonical(const CanonicalBlock& b, std::vector<std::uint8_t>& out) {
  const std::size_t start = out.size();
  cbor::WriteHead(out, Major::kArray, b.crc_type != CrcType::kNone ? 6 : 5);
  cbor::WriteUint(out, b.type);
  cbor::WriteUint(out, b.number);
  cbor::WriteUint(out, b.flags);
  cbor::WriteUint(out, static_cast<std::uint64_t>(b.crc_type));
  cbor::WriteBytes(out, b.data);
  if (b.crc_type != CrcType::kNone) AppendCrc(out, b.crc_type, start);
}

}  // namespace

std::string_view DecodeErrorKindName(DecodeError::Kind kind) {
  switch (kind) {
    case Kind::kTruncated:
      return "truncated";
    case Kind::kTrailingBytes:
      return "trailing-bytes";
    case Kind::kWrongType:
      return "wrong-type";
    case Kind::kBadCrc:
      return "bad-crc";
    case Kind::kTooLarge:
      return "too-large";
    case Kind::kNesting:
      return "nesting";
    case Kind::kBadVersion:
      return "bad-version";
    case Kind::kBadEid:
      return "bad-eid";
    case Kind::kMissingPayload:
      return "missing-payload";
    case Kind::kDuplicateBlock:
      return "duplicate-block";
    case Kind::kNonCanonical:
      return "non-canonical";
    case Kind::kInvalid:
      return "invalid";
  }
  return "unknown";
}

std::string DecodeError::ToString() const {
  return fmt::format("{} in {} at byte {}: {}", DecodeErrorKindName(kind), block, offset, message);
}

std::string_view CrcTypeName(CrcType type) {
  switch (type) {
    case CrcType::kNone:
      return "none";
    case CrcType::kCrc16:
      return "crc16";
    case CrcType::kCrc32c:
      return "crc32c";
  }
  return "?";
}

std::optional<CrcType> ParseCrcType(std::string_view name) {
  if (name == "none") return CrcType::kNone;
  if (name == "crc16") return CrcType::kCrc16;
  if (name == "crc32c") return CrcType::kCrc32c;
  return std::nullopt;
}

void EncodeEid(const Eid& eid, std::vector<std::uint8_t>& out) {
  cbor::WriteHead(out, Major::kArray, 2);
  switch (eid.scheme()) {
    case Eid::Scheme::kNone:
      cbor::WriteUint(out, 1);
      cbor::WriteUint(out, 0);
      return;
    case Eid::Scheme::kDtn:
      cbor::WriteUint(out, 1);
      cbor::WriteText(out, eid.dtn_ssp());
      return;
    case Eid::Scheme::kIpn:
      cbor::WriteUint(out, 2);
      cbor::WriteHead(out, Major::kArray, 2);
      cbor::WriteUint(out, eid.node());
      cbor::WriteUint(out, eid.service());
      return;
  }
}

void EncodeAppend(const Bundle& bundle, std::vector<std::uint8_t>& out) {
  std::size_t estimate = 2 + 128;  // array, break, a primary block with short EIDs and its CRC
  for (const CanonicalBlock& b : bundle.blocks) estimate += b.data.size() + 32;
  out.reserve(out.size() + estimate);
  out.push_back(cbor::kIndefiniteArray);
  EncodePrimary(bundle.primary, out);
  for (const CanonicalBlock& b : bundle.blocks) EncodeCanonical(b, out);
  out.push_back(cbor::kBreak);
}

std::vector<std::uint8_t> Encode(const Bundle& bundle) {
  std::vector<std::uint8_t> out;
  EncodeAppend(bundle, out);
  return out;
}

std::expected<void, DecodeError> DecodeInto(std::span<const std::uint8_t> bytes, const DecodeLimits& limits,
                                            Bundle& out) {
  Decoder decoder(bytes, limits);
  if (!decoder.Run(out)) return std::unexpected(decoder.TakeError());
  return {};
}

std::expected<Bundle, DecodeError> Decode(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  Bundle bundle;
  Decoder decoder(bytes, limits);
  if (!decoder.Run(bundle)) return std::unexpected(decoder.TakeError());
  return bundle;
}

std::expected<Eid, DecodeError> DecodeEid(std::span<const std::uint8_t> bytes, const DecodeLimits& limits) {
  Eid eid;
  Decoder decoder(bytes, limits);
  if (!decoder.ReadWholeEid(eid)) return std::unexpected(decoder.TakeError());
  return eid;
}

}  // namespace ics::dtn
