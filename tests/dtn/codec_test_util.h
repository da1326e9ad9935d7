// Helpers shared by the codec tests: hex <-> bytes and a few canned bundles.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "dtn/bundle.h"
#include "dtn/bundle_json.h"

namespace ics::dtn::test {

// "9f 88 07" -> {0x9f, 0x88, 0x07}; aborts the test on bad hex (the vectors are ours).
inline std::vector<std::uint8_t> Hex(std::string_view text) {
  auto bytes = HexDecode(text);
  if (!bytes) __builtin_trap();
  return *bytes;
}

// ipn:1.1 -> ipn:2.1 at DTN time 1000 ms, seq 5, lifetime 1 h, payload "abc", every block of
// `crc`, plus each typed extension block.
inline Bundle FullBundle(CrcType crc) {
  Bundle b = MakeBundle(Eid::Ipn(1, 1), Eid::Ipn(2, 1), {clock::DtnTime::FromMillis(1000), 5},
                        clock::Duration(3'600'000), {'a', 'b', 'c'}, Priority::kExpedited, crc);
  b.set_previous_node(Eid::Ipn(3, 0));
  b.set_bundle_age(clock::Duration(250));
  b.set_hop_count({30, 2});
  CanonicalBlock unknown;
  unknown.type = 200;
  unknown.number = 9;
  unknown.flags = block_flags::kDiscardBlockIfUnprocessable;
  unknown.crc_type = crc;
  unknown.data = {0xde, 0xad, 0xbe, 0xef};
  b.blocks.insert(b.blocks.begin(), unknown);
  for (CanonicalBlock& block : b.blocks) block.crc_type = crc;
  return b;
}

}  // namespace ics::dtn::test
