// Block CRCs for the codec (RFC 9171 §4.2.1), on top of Boost.CRC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dtn/bundle.h"

namespace ics::dtn::internal {

// The CRC of a block whose CBOR encoding is `prefix` followed by the CRC field's value bytes,
// taken as zeros: 2 for kCrc16, 4 for kCrc32c. REQUIRES: type != kNone.
std::uint32_t BlockCrc(CrcType type, std::span<const std::uint8_t> prefix);

inline constexpr std::size_t CrcValueBytes(CrcType type) {
  return type == CrcType::kCrc16 ? 2 : type == CrcType::kCrc32c ? 4 : 0;
}

}  // namespace ics::dtn::internal
