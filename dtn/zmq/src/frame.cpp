#include "dtn/zmq/frame.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <optional>
#include <string_view>

namespace ics::dtn::zmq {
namespace {

void PutU64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// Every frame's header: magic, version, type, then the sending time in ms (big-endian).
std::array<std::uint8_t, kFrameHeaderBytes> HeaderBytes(std::uint8_t type, clock::DtnTime sent) {
  std::array<std::uint8_t, kFrameHeaderBytes> h{kFrameMagic, kFrameVersion, type};
  const auto ms = static_cast<std::uint64_t>(sent.millis());
  for (std::size_t i = 0; i < 8; ++i) h[3 + i] = static_cast<std::uint8_t>(ms >> (56 - 8 * i));
  return h;
}

void PutHeader(std::vector<std::uint8_t>& out, std::uint8_t type, clock::DtnTime sent) {
  const auto h = HeaderBytes(type, sent);
  out.insert(out.end(), h.begin(), h.end());
}

// A bounds-checked reader over one frame.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  bool U8(std::uint8_t& v) {
    if (remaining() < 1) return false;
    v = bytes_[pos_++];
    return true;
  }
  bool U16(std::uint16_t& v) {
    if (remaining() < 2) return false;
    v = static_cast<std::uint16_t>((bytes_[pos_] << 8) | bytes_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool U64(std::uint64_t& v) {
    if (remaining() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | bytes_[pos_ + i];
    pos_ += 8;
    return true;
  }
  bool Bytes(std::size_t n, std::span<const std::uint8_t>& v) {
    if (remaining() < n) return false;
    v = bytes_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  std::span<const std::uint8_t> Rest() const { return bytes_.subspan(pos_); }
  std::size_t remaining() const { return bytes_.size() - pos_; }
  std::size_t pos() const { return pos_; }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};

std::unexpected<std::string> Bad(const Reader& r, std::string_view what) {
  return std::unexpected(fmt::format("bad frame at byte {}: {}", r.pos(), what));
}

}  // namespace

void WriteBundleFrameHeader(std::span<std::uint8_t> frame, clock::DtnTime sent) {
  const auto h = HeaderBytes(1, sent);
  std::copy(h.begin(), h.end(), frame.first(kFrameHeaderBytes).begin());
}

namespace {

// The source EID's text of the previous entry: the entries of one acks frame mostly share it, and
// formatting an EID is most of the cost of an entry.
struct EidTextCache {
  const Eid* eid = nullptr;
  std::string text;
  const std::string& Of(const Eid& e) {
    if (eid == nullptr || !(*eid == e)) {
      text = e.ToString();
      eid = &e;
    }
    return text;
  }
};

void PutAckBody(std::vector<std::uint8_t>& out, const AckFrame& ack, EidTextCache& cache) {
  out.push_back(static_cast<std::uint8_t>(ack.status));
  const std::string& eid = cache.Of(ack.id.source);
  const auto eid_len = static_cast<std::uint16_t>(std::min<std::size_t>(eid.size(), UINT16_MAX));
  out.push_back(static_cast<std::uint8_t>(eid_len >> 8));
  out.push_back(static_cast<std::uint8_t>(eid_len));
  out.insert(out.end(), eid.begin(), eid.begin() + eid_len);
  PutU64(out, static_cast<std::uint64_t>(ack.id.created.time.millis()));
  PutU64(out, ack.id.created.sequence);
  const bool fragment = ack.id.fragment_offset.has_value();
  out.push_back(fragment ? 1 : 0);
  if (fragment) {
    PutU64(out, *ack.id.fragment_offset);
    PutU64(out, ack.id.fragment_length.value_or(0));
  }
}

// Reads one ack body into `ack`. `last_eid` / `last_eid_text` cache the previous entry's parsed
// source EID: the entries of one acks frame mostly share it.
std::expected<void, std::string> ParseAckBody(Reader& r, AckFrame& ack, std::optional<Eid>& last_eid,
                                              std::string_view& last_eid_text) {
  std::uint8_t status = 0;
  std::uint16_t eid_len = 0;
  std::span<const std::uint8_t> eid_bytes;
  std::uint64_t created = 0, seq = 0;
  std::uint8_t fragment = 0;
  if (!r.U8(status) || status > 2) return Bad(r, "bad ack status");
  ack.status = static_cast<AckStatus>(status);
  if (!r.U16(eid_len) || !r.Bytes(eid_len, eid_bytes)) return Bad(r, "truncated source EID");
  const std::string_view eid_text(reinterpret_cast<const char*>(eid_bytes.data()), eid_bytes.size());
  if (!last_eid || eid_text != last_eid_text) {
    auto eid = Eid::Parse(eid_text);
    if (!eid) return Bad(r, "bad source EID: " + eid.error());
    last_eid = std::move(*eid);
    last_eid_text = eid_text;
  }
  if (!r.U64(created) || !r.U64(seq) || !r.U8(fragment) || fragment > 1) return Bad(r, "truncated bundle ID");
  ack.id.source = *last_eid;
  ack.id.created = {clock::DtnTime::FromMillis(static_cast<std::int64_t>(created)), seq};
  if (fragment) {
    std::uint64_t off = 0, len = 0;
    if (!r.U64(off) || !r.U64(len)) return Bad(r, "truncated fragment fields");
    ack.id.fragment_offset = off;
    ack.id.fragment_length = len;
  }
  return {};
}

}  // namespace

std::vector<std::uint8_t> MakeAckFrame(const AckFrame& ack) {
  std::vector<std::uint8_t> out;
  PutHeader(out, 2, ack.sent);
  EidTextCache cache;
  PutAckBody(out, ack, cache);
  return out;
}

std::vector<std::uint8_t> MakeAcksFrame(clock::DtnTime sent, std::span<const AckFrame> acks) {
  std::vector<std::uint8_t> out;
  out.reserve(kFrameHeaderBytes + 2 + acks.size() * (kMinAckBodyBytes + 16));
  PutHeader(out, 5, sent);
  const auto count = static_cast<std::uint16_t>(acks.size());
  out.push_back(static_cast<std::uint8_t>(count >> 8));
  out.push_back(static_cast<std::uint8_t>(count));
  EidTextCache cache;
  for (const AckFrame& ack : acks) PutAckBody(out, ack, cache);
  return out;
}

std::vector<std::uint8_t> MakePingFrame(const PingFrame& ping) {
  std::vector<std::uint8_t> out;
  PutHeader(out, ping.pong ? 4 : 3, ping.sent);
  PutU64(out, ping.node);
  return out;
}

std::expected<Frame, std::string> ParseFrame(std::span<const std::uint8_t> bytes) {
  Reader r(bytes);
  std::uint8_t magic = 0, version = 0, type = 0;
  std::uint64_t sent_ms = 0;
  if (!r.U8(magic) || magic != kFrameMagic) return Bad(r, "not an ics link frame (magic)");
  if (!r.U8(version) || version != kFrameVersion) return Bad(r, fmt::format("unsupported frame version {}", version));
  if (!r.U8(type) || !r.U64(sent_ms)) return Bad(r, "truncated header");
  const auto sent = clock::DtnTime::FromMillis(static_cast<std::int64_t>(sent_ms));
  switch (type) {
    case 1: {
      if (r.remaining() == 0) return Bad(r, "empty bundle frame");
      return BundleFrame{sent, r.Rest()};
    }
    case 2: {
      AckFrame ack;
      ack.sent = sent;
      std::optional<Eid> last_eid;
      std::string_view last_eid_text;
      if (auto ok = ParseAckBody(r, ack, last_eid, last_eid_text); !ok) return std::unexpected(ok.error());
      if (r.remaining() != 0) return Bad(r, "trailing bytes after ack");
      return ack;
    }
    case 5: {
      std::uint16_t count = 0;
      if (!r.U16(count)) return Bad(r, "truncated ack count");
      if (count == 0 || count > kMaxAcksPerFrame) return Bad(r, fmt::format("ack count {} out of range", count));
      if (static_cast<std::size_t>(count) * kMinAckBodyBytes > r.remaining()) {
        return Bad(r, fmt::format("ack count {} exceeds the frame", count));
      }
      AcksFrame acks;
      acks.sent = sent;
      acks.acks.resize(count);
      std::optional<Eid> last_eid;
      std::string_view last_eid_text;
      for (AckFrame& ack : acks.acks) {
        ack.sent = sent;
        if (auto ok = ParseAckBody(r, ack, last_eid, last_eid_text); !ok) return std::unexpected(ok.error());
      }
      if (r.remaining() != 0) return Bad(r, "trailing bytes after acks");
      return acks;
    }
    case 3:
    case 4: {
      PingFrame ping;
      ping.sent = sent;
      ping.pong = type == 4;
      if (!r.U64(ping.node)) return Bad(r, "truncated ping");
      if (r.remaining() != 0) return Bad(r, "trailing bytes after ping");
      return ping;
    }
    default:
      return Bad(r, fmt::format("unknown frame type {}", type));
  }
}

}  // namespace ics::dtn::zmq
