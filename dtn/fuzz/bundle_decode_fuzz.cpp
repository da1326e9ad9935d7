// libFuzzer target for the BPv7 decoder: any input must decode or fail with a typed error, never
// crash, leak or read out of bounds; and whatever decodes must re-encode to exactly the input
// (the decoder accepts only canonical CBOR) and decode again to the same bundle.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "dtn/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ics::dtn::DecodeLimits limits;
  limits.max_bundle_bytes = 1u << 20;
  limits.max_payload_bytes = 1u << 20;
  const std::span<const std::uint8_t> input(data, size);
  auto bundle = ics::dtn::Decode(input, limits);
  if (!bundle) {
    if (bundle.error().offset > size) {
      std::fprintf(stderr, "error offset %zu past the input (%zu bytes): %s\n", bundle.error().offset, size,
                   bundle.error().ToString().c_str());
      std::abort();
    }
    return 0;
  }
  const std::vector<std::uint8_t> bytes = ics::dtn::Encode(*bundle);
  if (!std::equal(bytes.begin(), bytes.end(), input.begin(), input.end())) {
    std::fprintf(stderr, "Encode(Decode(b)) != b\n");
    std::abort();
  }
  auto again = ics::dtn::Decode(bytes, limits);
  if (!again || *again != *bundle) {
    std::fprintf(stderr, "Decode(Encode(Decode(b))) != Decode(b)\n");
    std::abort();
  }
  // The typed views and the ID must not trip on anything the decoder accepted.
  (void)bundle->Id().ToString();
  (void)bundle->ExpiresAt(ics::clock::DtnTime::FromMillis(1));
  (void)bundle->previous_node();
  (void)bundle->hop_count();
  (void)bundle->priority();
  return 0;
}
