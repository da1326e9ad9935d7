#include "dtn/zmq/app_protocol.h"

#include <fmt/format.h>

#include <algorithm>

#include "dtn/bundle_store.h"

namespace ics::dtn::zmq {

std::expected<BundleId, std::string> ParseBundleId(std::string_view text) {
  // The store's parser of BundleId::ToString; the app interface never delivers fragments, so a
  // fragment's ID is refused as before.
  auto id = ParseBundleIdText(text);
  if (id && id->fragment_offset) return std::unexpected(fmt::format("bundle id '{}': a fragment", text));
  return id;
}

bool IsBinaryHeader(std::string_view header) {
  return !header.empty() && static_cast<std::uint8_t>(header.front()) == kBinaryHeaderMagic;
}

namespace {

void PutU8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void PutU16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void PutU64(std::string& out, std::uint64_t v) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(v >> (56 - 8 * i));
  out.append(bytes, 8);
}

void PutMagic(std::string& out) {
  PutU8(out, kBinaryHeaderMagic);
  PutU8(out, kBinaryHeaderVersion);
}

void PutEid(std::string& out, const Eid& eid) {
  switch (eid.scheme()) {
    case Eid::Scheme::kNone:
      PutU8(out, 0);
      break;
    case Eid::Scheme::kDtn: {
      // The daemon's EIDs come from bundles (the codec bounds an SSP at DecodeLimits::max_eid_bytes,
      // 1,024 by default) or from headers bounded at kMaxHeaderBytes, so the u16 length holds them;
      // one over kMaxEidSspBytes is written whole and refused by the decoder, never cut.
      const std::string& ssp = eid.dtn_ssp();
      const std::size_t length = std::min<std::size_t>(ssp.size(), UINT16_MAX);
      PutU8(out, 1);
      PutU16(out, static_cast<std::uint16_t>(length));
      out.append(ssp.data(), length);
      break;
    }
    case Eid::Scheme::kIpn:
      PutU8(out, 2);
      PutU64(out, eid.node());
      PutU64(out, eid.service());
      break;
  }
}

void PutBundleId(std::string& out, const BundleId& id) {
  PutEid(out, id.source);
  PutU64(out, static_cast<std::uint64_t>(id.created.time.millis()));
  PutU64(out, id.created.sequence);
  const bool fragment = id.fragment_offset.has_value() || id.fragment_length.has_value();
  PutU8(out, fragment ? 1 : 0);
  if (fragment) {
    PutU64(out, id.fragment_offset.value_or(0));
    PutU64(out, id.fragment_length.value_or(0));
  }
}

// A bounds-checked reader over one binary header. Every failure records the offset and what was
// wrong; the first failure sticks (later reads fail too), so a decoder can check once at the end
// of a group of reads.
class Reader {
 public:
  Reader(std::string_view bytes, std::string_view verb) : bytes_(bytes), verb_(verb) {}

  bool U8(std::uint8_t& v, std::string_view what) {
    if (!Need(1, what)) return false;
    v = static_cast<std::uint8_t>(bytes_[pos_++]);
    return true;
  }
  bool U16(std::uint16_t& v, std::string_view what) {
    if (!Need(2, what)) return false;
    v = static_cast<std::uint16_t>((Byte(0) << 8) | Byte(1));
    pos_ += 2;
    return true;
  }
  bool U64(std::uint64_t& v, std::string_view what) {
    if (!Need(8, what)) return false;
    v = 0;
    for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | Byte(i);
    pos_ += 8;
    return true;
  }
  bool I64(std::int64_t& v, std::string_view what) {
    std::uint64_t u = 0;
    if (!U64(u, what)) return false;
    v = static_cast<std::int64_t>(u);
    return true;
  }
  bool Text(std::size_t n, std::string_view& v, std::string_view what) {
    if (!Need(n, what)) return false;
    v = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  bool Magic() {
    std::uint8_t magic = 0, version = 0;
    if (!U8(magic, "missing magic") || !U8(version, "missing version")) return false;
    if (magic != kBinaryHeaderMagic) return Fail(0, fmt::format("magic 0x{:02x} is not 0xb1", magic));
    if (version != kBinaryHeaderVersion) return Fail(1, fmt::format("unsupported version {}", version));
    return true;
  }

  bool Eid(dtn::Eid& eid, std::string_view what) {
    const std::size_t at = pos_;
    std::uint8_t scheme = 0;
    if (!U8(scheme, what)) return false;
    switch (scheme) {
      case 0:
        eid = dtn::Eid::None();
        return true;
      case 1: {
        std::uint16_t length = 0;
        std::string_view ssp;
        if (!U16(length, what)) return false;
        if (length == 0 || length > kMaxEidSspBytes) {
          return Fail(at, fmt::format("{}: dtn SSP length {} not in 1..{}", what, length, kMaxEidSspBytes));
        }
        if (!Text(length, ssp, what)) return false;
        auto parsed = dtn::Eid::Dtn(ssp);
        if (!parsed) return Fail(at, fmt::format("{}: {}", what, parsed.error()));
        eid = std::move(*parsed);
        return true;
      }
      case 2: {
        std::uint64_t node = 0, service = 0;
        if (!U64(node, what) || !U64(service, what)) return false;
        eid = dtn::Eid::Ipn(node, service);
        return true;
      }
      default:
        return Fail(at, fmt::format("{}: unknown EID scheme {}", what, scheme));
    }
  }

  bool Id(BundleId& id, std::string_view what) {
    std::uint64_t ms = 0, seq = 0;
    std::uint8_t fragment = 0;
    if (!Eid(id.source, what) || !U64(ms, what) || !U64(seq, what)) return false;
    const std::size_t at = pos_;
    if (!U8(fragment, what)) return false;
    if (fragment > 1) return Fail(at, fmt::format("{}: fragment flag {} is not 0 or 1", what, fragment));
    id.created = {clock::DtnTime::FromMillis(static_cast<std::int64_t>(ms)), seq};
    id.fragment_offset.reset();
    id.fragment_length.reset();
    if (fragment) {
      std::uint64_t offset = 0, length = 0;
      if (!U64(offset, what) || !U64(length, what)) return false;
      id.fragment_offset = offset;
      id.fragment_length = length;
    }
    return true;
  }

  bool Priority(dtn::Priority& priority) {
    const std::size_t at = pos_;
    std::uint8_t p = 0;
    if (!U8(p, "missing priority")) return false;
    if (p > 2) return Fail(at, fmt::format("priority {} is not 0 (bulk), 1 (normal) or 2 (expedited)", p));
    priority = static_cast<dtn::Priority>(p);
    return true;
  }

  bool End() {
    if (pos_ != bytes_.size()) return Fail(pos_, fmt::format("{} trailing bytes", bytes_.size() - pos_));
    return true;
  }

  bool Fail(std::size_t at, std::string what) {
    if (error_.empty()) error_ = fmt::format("binary {} header at byte {}: {}", verb_, at, what);
    pos_ = bytes_.size();
    return false;
  }

  std::size_t remaining() const { return bytes_.size() - pos_; }
  std::unexpected<std::string> Error() const { return std::unexpected(error_); }

 private:
  bool Need(std::size_t n, std::string_view what) {
    if (!error_.empty()) return false;
    if (remaining() < n) return Fail(pos_, fmt::format("truncated ({})", what));
    return true;
  }
  std::uint64_t Byte(std::size_t i) const { return static_cast<std::uint8_t>(bytes_[pos_ + i]); }

  std::string_view bytes_;
  std::string_view verb_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace

void AppendSendHeader(std::string& out, const SendHeader& header) {
  PutMagic(out);
  PutU8(out, static_cast<std::uint8_t>(header.priority));
  PutU64(out, static_cast<std::uint64_t>(header.lifetime_ms));
  PutU64(out, header.tag);
  PutEid(out, header.to);
  PutEid(out, header.from);
}

void AppendStoredHeader(std::string& out, std::uint64_t tag, const BundleId& id) {
  PutMagic(out);
  PutU64(out, tag);
  PutBundleId(out, id);
}

void AppendDeliverHeader(std::string& out, const Eid& endpoint, const BundleId& id, Priority priority,
                         bool possible_redelivery) {
  PutMagic(out);
  PutU8(out, possible_redelivery ? 1 : 0);
  PutU8(out, static_cast<std::uint8_t>(priority));
  PutEid(out, endpoint);
  PutBundleId(out, id);
}

std::size_t BinaryEidBytes(const Eid& eid) {
  switch (eid.scheme()) {
    case Eid::Scheme::kNone:
      return 1;
    case Eid::Scheme::kDtn:
      return 1 + 2 + std::min<std::size_t>(eid.dtn_ssp().size(), UINT16_MAX);
    case Eid::Scheme::kIpn:
      return 1 + 8 + 8;
  }
  return 1;
}

std::size_t BinaryIdBytes(const BundleId& id) {
  const bool fragment = id.fragment_offset.has_value() || id.fragment_length.has_value();
  return BinaryEidBytes(id.source) + 8 + 8 + 1 + (fragment ? 16 : 0);
}

void AppendConfirmHeader(std::string& out, const Eid& endpoint, std::span<const BundleId> ids) {
  PutMagic(out);
  PutEid(out, endpoint);
  PutU16(out, static_cast<std::uint16_t>(ids.size()));
  for (const BundleId& id : ids) PutBundleId(out, id);
}

std::expected<SendHeader, std::string> ParseSendHeader(std::string_view bytes) {
  Reader r(bytes, "send");
  SendHeader h;
  std::uint64_t tag = 0;
  if (r.Magic() && r.Priority(h.priority) && r.I64(h.lifetime_ms, "lifetime") && r.U64(tag, "tag") &&
      r.Eid(h.to, "destination EID") && r.Eid(h.from, "source EID") && r.End()) {
    h.tag = tag;
    return h;
  }
  return r.Error();
}

std::expected<StoredHeader, std::string> ParseStoredHeader(std::string_view bytes) {
  Reader r(bytes, "stored");
  StoredHeader h;
  if (r.Magic() && r.U64(h.tag, "tag") && r.Id(h.id, "bundle ID") && r.End()) return h;
  return r.Error();
}

std::expected<DeliverHeader, std::string> ParseDeliverHeader(std::string_view bytes) {
  Reader r(bytes, "deliver");
  DeliverHeader h;
  std::uint8_t flags = 0;
  if (!r.Magic() || !r.U8(flags, "missing flags")) return r.Error();
  if (flags > 1) {
    r.Fail(2, fmt::format("flags 0x{:02x} has unknown bits", flags));
    return r.Error();
  }
  h.possible_redelivery = flags == 1;
  if (r.Priority(h.priority) && r.Eid(h.endpoint, "endpoint EID") && r.Id(h.id, "bundle ID") && r.End())
    return h;
  return r.Error();
}

std::expected<ConfirmHeader, std::string> ParseConfirmHeader(std::string_view bytes) {
  Reader r(bytes, "confirm");
  ConfirmHeader h;
  std::uint16_t count = 0;
  if (!r.Magic() || !r.Eid(h.endpoint, "endpoint EID")) return r.Error();
  const std::size_t count_at = bytes.size() - r.remaining();
  if (!r.U16(count, "missing ID count")) return r.Error();
  if (count == 0 || count > kMaxConfirmIds) {
    r.Fail(count_at, fmt::format("ID count {} not in 1..{}", count, kMaxConfirmIds));
    return r.Error();
  }
  // Bound the allocation by the bytes actually present before reserving.
  if (static_cast<std::size_t>(count) * kMinBinaryIdBytes > r.remaining()) {
    r.Fail(count_at, fmt::format("ID count {} exceeds the header's {} bytes left", count, r.remaining()));
    return r.Error();
  }
  h.ids.resize(count);
  for (BundleId& id : h.ids) {
    if (!r.Id(id, "bundle ID")) return r.Error();
  }
  if (!r.End()) return r.Error();
  return h;
}

}  // namespace ics::dtn::zmq
