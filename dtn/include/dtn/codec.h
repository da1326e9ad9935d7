// The Bundle Protocol version 7 wire format (RFC 9171 §4): a bundle is an indefinite-length CBOR
// array (0x9f ... 0xff) of a primary block and canonical blocks, the payload block last.
//
//   primary block:   [7, flags, crc type, destination, source, report-to, [time, seq], lifetime,
//                     (fragment offset, total ADU length if flags has kIsFragment), (crc)]
//   canonical block: [type, number, flags, crc type, data (byte string), (crc)]
//   EID:             [1, "//node/service"] | [1, 0] (dtn:none) | [2, [node, service]]
//
// CRCs (RFC 9171 §4.2.1): CRC-16/X-25 or CRC-32C over the block's CBOR encoding with the CRC
// field's bytes set to zero; the CRC field is a byte string of 2 or 4 bytes, big-endian.
//
// Decoding is strict and bounded (the input is untrusted):
//  - shortest-form CBOR heads only, no indefinite lengths except the bundle array, no tags;
//    hence every bundle Decode accepts re-encodes to exactly the same bytes:
//    Encode(*Decode(b)) == b;
//  - every length field is checked against the bytes left before anything is allocated, and
//    against DecodeLimits; the reader is schema-driven and never recurses;
//  - the typed extension blocks (previous node 6, bundle age 7, hop count 10, priority 192)
//    must hold well-formed data; unknown blocks are kept byte-for-byte;
//  - exactly one payload block, number 1, last; block numbers unique and non-zero; at most one
//    block of each typed extension type.
// A bundle with creation time 0 and no bundle-age block is accepted (RFC 9171 requires the
// block; Bundle::ExpiresAt returns nullopt for it and the store decides).
//
// Thread-safety: all functions are pure; call them from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dtn/bundle.h"
#include "dtn/eid.h"

namespace ics::dtn {

struct DecodeLimits {
  std::size_t max_bundle_bytes = 16u << 20;   // the whole encoded bundle
  std::size_t max_payload_bytes = 16u << 20;  // the payload block's data
  std::size_t max_blocks = 64;                // canonical blocks, payload included
  std::size_t max_eid_bytes = 1024;           // a dtn-scheme SSP's text length
};

struct DecodeError {
  // Unscoped so that both DecodeError::kTruncated and DecodeError::Kind::kTruncated work.
  enum Kind : std::uint8_t {
    kTruncated,       // the input ends inside an item, or a length runs past its end
    kTrailingBytes,   // bytes after the bundle's closing break
    kWrongType,       // a CBOR item of the wrong major type (or a tag / float / simple value)
    kBadCrc,          // the CRC does not match the block
    kTooLarge,        // over a limit of DecodeLimits (a length field is checked before use)
    kNesting,         // an array or map where the schema has a scalar (deeper than allowed)
    kBadVersion,      // primary block version is not 7
    kBadEid,          // an endpoint ID that is not well formed
    kMissingPayload,  // no payload block, or the last block is not the payload block
    kDuplicateBlock,  // a block number or a typed extension block type seen twice
    kNonCanonical,    // a CBOR head not in shortest form, or an indefinite length
    kInvalid,         // a value out of its range (CRC type 3, block number 0, item count ...)
  };
  Kind kind = kInvalid;
  std::string block;       // "bundle", "primary", "block 3 (type 7)", "block #2" (position)
  std::size_t offset = 0;  // byte offset into the decoded input where the problem is
  std::string message;     // what is wrong, e.g. "CRC-32C is 0x1234abcd, computed 0x89abcdef"

  // "bad-crc in block 3 (type 7) at byte 120: CRC-32C is 0x..., computed 0x..."
  std::string ToString() const;
};

std::string_view DecodeErrorKindName(DecodeError::Kind kind);  // "truncated", "bad-crc" ...

// Encodes the bundle. REQUIRES: creation time and lifetime >= 0; fragment_offset and
// total_adu_length present iff primary.flags has kIsFragment. (Aborts otherwise: these are
// invariants of the model.) Blocks are written in the given order; Encode does not check the
// block rules Decode enforces (payload last, unique numbers): Decode(Encode(b)) checks them.
std::vector<std::uint8_t> Encode(const Bundle& bundle);
// Appends the encoding to `out` (reusing its capacity: no allocation once it is large enough).
void EncodeAppend(const Bundle& bundle, std::vector<std::uint8_t>& out);

std::expected<Bundle, DecodeError> Decode(std::span<const std::uint8_t> bytes,
                                          const DecodeLimits& limits = {});
// As Decode, into an existing bundle whose vectors' capacity is reused. On error `out` is in an
// unspecified but valid state.
std::expected<void, DecodeError> DecodeInto(std::span<const std::uint8_t> bytes, const DecodeLimits& limits,
                                            Bundle& out);

// The CBOR encoding of an endpoint ID (RFC 9171 §4.2.5.1), appended to `out`.
void EncodeEid(const Eid& eid, std::vector<std::uint8_t>& out);
// Decodes exactly one EID occupying all of `bytes`.
std::expected<Eid, DecodeError> DecodeEid(std::span<const std::uint8_t> bytes,
                                          const DecodeLimits& limits = {});

// The RFC 9171 CRCs (Boost.CRC): CRC-16/X-25 ("123456789" -> 0x906E) and CRC-32C (Castagnoli,
// "123456789" -> 0xE3069283).
std::uint16_t Crc16X25(std::span<const std::uint8_t> bytes);
// Crc32c uses the CPU's crc32 instruction where there is one (x86-64 SSE4.2), else Boost.CRC;
// Crc32cPortable is always Boost.CRC (the reference; for tests and comparison).
std::uint32_t Crc32c(std::span<const std::uint8_t> bytes);
std::uint32_t Crc32cPortable(std::span<const std::uint8_t> bytes);

std::string_view CrcTypeName(CrcType type);  // "none", "crc16", "crc32c"
std::optional<CrcType> ParseCrcType(std::string_view name);

}  // namespace ics::dtn
