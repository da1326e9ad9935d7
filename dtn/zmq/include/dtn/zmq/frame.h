// Frames of the ZeroMQ convergence layer. One ZeroMQ message carries one frame:
//
//   byte 0      'I' (0x49)      magic
//   byte 1      1               frame format version
//   byte 2      type            1 bundle, 2 ack, 3 ping, 4 pong, 5 acks (batched)
//   bytes 3-10  sent_dtn_ms     the sender's mission time when it sent the frame (big-endian int64);
//                               with light-time rehearsal the receiver holds the frame until
//                               sent + OWLT, so both directions of a link see the plan's light time
//   then, by type:
//     bundle    the encoded BPv7 bundle (the rest of the frame)
//     ack       u8 status (0 stored, 1 duplicate, 2 refused), then the bundle ID:
//               u16 EID length, EID text, i64 creation ms, u64 sequence, u8 fragment flag
//               [u64 offset, u64 length]
//     ping/pong u64 node number of the sender
//     acks      u16 count (1..kMaxAcksPerFrame), then `count` ack bodies, each exactly as in an
//               ack frame (status, then the bundle ID). A receiving node sends one acks frame per
//               turn per neighbour (after the turn's commit), listing every bundle it stored (or
//               already held) from that neighbour in the turn: one frame instead of one per
//               bundle. Single ack frames are still accepted.
//
// Frames come from the network: Parse() bounds every length against the frame before use and
// returns an error naming the offset; what it allocates is bounded by the frame's size (an acks
// frame's count is checked against the bytes left, at kMinAckBodyBytes each, before reserving:
// decoded entries take about 4-5 times their bytes on the wire, at most about 0.5 MiB a frame).
#pragma once

#include <cstdint>
#include <expected>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "dtn/bundle.h"

namespace ics::dtn::zmq {

inline constexpr std::uint8_t kFrameMagic = 0x49;
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::size_t kFrameHeaderBytes = 11;
inline constexpr std::size_t kMaxAcksPerFrame = 4096;
// status, EID length, an empty EID, creation ms, sequence, fragment flag.
inline constexpr std::size_t kMinAckBodyBytes = 1 + 2 + 8 + 8 + 1;

enum class AckStatus : std::uint8_t { kStored = 0, kDuplicate = 1, kRefused = 2 };

struct BundleFrame {
  clock::DtnTime sent;
  std::span<const std::uint8_t> bundle;  // views the parsed buffer
};
struct AckFrame {
  clock::DtnTime sent;
  AckStatus status = AckStatus::kStored;
  BundleId id;
};
struct PingFrame {
  clock::DtnTime sent;
  clock::NodeNumber node = 0;
  bool pong = false;
};
// Type 5: every entry's `sent` is the frame's.
struct AcksFrame {
  clock::DtnTime sent;
  std::vector<AckFrame> acks;
};
using Frame = std::variant<BundleFrame, AckFrame, PingFrame, AcksFrame>;

// The header of a bundle frame, written over the first kFrameHeaderBytes of `frame` (the bundle
// already follows them: see dtn::NodeConfig::transmit_headroom). REQUIRES: frame.size() >=
// kFrameHeaderBytes.
void WriteBundleFrameHeader(std::span<std::uint8_t> frame, clock::DtnTime sent);
std::vector<std::uint8_t> MakeAckFrame(const AckFrame& ack);
// REQUIRES: 1 <= acks.size() <= kMaxAcksPerFrame (the entries' `sent` is ignored).
std::vector<std::uint8_t> MakeAcksFrame(clock::DtnTime sent, std::span<const AckFrame> acks);
std::vector<std::uint8_t> MakePingFrame(const PingFrame& ping);

std::expected<Frame, std::string> ParseFrame(std::span<const std::uint8_t> bytes);

}  // namespace ics::dtn::zmq
