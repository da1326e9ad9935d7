// A bundle as JSON, for people and tools (`ics-dtn decode` / `ics-dtn encode`). JSON travels as
// text so that this header exposes no JSON library types.
//
// The form (fields marked * are informative: written by BundleToJson, ignored when reading):
//   {"primary": {"version"*: 7, "flags": 4, "flag_names"*: ["must_not_fragment"],
//                "crc_type": "crc32c", "crc_ok"*: true,
//                "destination": "ipn:2.1", "source": "ipn:1.1", "report_to": "dtn:none",
//                "creation_time_ms": 815000000000, "creation_time_utc"*: "2025-10-29T...Z",
//                "sequence": 0, "lifetime_ms": 3600000,
//                "fragment_offset": 0, "total_adu_length": 100          (fragments only)},
//    "blocks": [{"type": 7, "type_name"*: "bundle_age", "number": 2, "flags": 0,
//                "flag_names"*: [], "crc_type": "none", "crc_ok"*: true, <fields>}, ...]}
// Block fields by type: payload (1) "payload_hex", "payload_length"*; previous node (6)
// "previous_node": "ipn:3.0"; bundle age (7) "bundle_age_ms"; hop count (10) "hop_limit",
// "hop_count"; priority (192) "priority": "bulk" | "normal" | "expedited"; any other type
// "data_hex" (the block-type-specific data, kept byte-for-byte).
// When reading: "flags" may also be a list of flag names; "creation_time_utc" is used when
// "creation_time_ms" is absent; "version", when present, must be 7.
//
// BundleFromJson(BundleToJson(b)) == b for every bundle Decode accepts, and the bundle it
// returns always passes Decode(Encode(.)) (it is checked that way).
#pragma once

#include <expected>
#include <string>
#include <string_view>

#include "dtn/bundle.h"
#include "dtn/codec.h"

namespace ics::dtn {

// REQUIRES: the bundle is encodable (see Encode). indent < 0: one line.
std::string BundleToJson(const Bundle& bundle, int indent = 2);

// Error: one line naming the JSON path and what is wrong, e.g.
// "/blocks/1/hop_limit: expected an unsigned integer", or the DecodeError of the built bundle.
// `limits` bound the text length (2 * max_bundle_bytes + 64 KiB) and the bundle built.
std::expected<Bundle, std::string> BundleFromJson(std::string_view json_text,
                                                  const DecodeLimits& limits = {});

std::string_view BlockTypeName(std::uint64_t type);          // "payload", "bundle_age" ..., "unknown"
std::string HexEncode(std::span<const std::uint8_t> bytes);  // lower case, no separators
// Accepts upper or lower case and ignores ASCII whitespace. Error names the character position.
std::expected<std::vector<std::uint8_t>, std::string> HexDecode(std::string_view text);

}  // namespace ics::dtn
