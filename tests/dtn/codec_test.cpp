// Goal: the BPv7 codec produces exactly the RFC 9171 bytes and reads them back into the same
// bundle. Method: hand-written CBOR vectors (CRC values computed independently with a bitwise
// Python reference), round trips of every block type under each CRC type, and a seeded random
// round trip.
#include "dtn/codec.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <limits>
#include <random>
#include <string>

#include "dtn/codec_test_util.h"

namespace ics::dtn {
namespace {

using test::FullBundle;
using test::Hex;

// ipn:1.1 -> ipn:2.1, created at DTN time 1000 ms seq 5, lifetime 3,600,000 ms, payload "abc".
Bundle MinimalBundle(CrcType crc) {
  return MakeBundle(Eid::Ipn(1, 1), Eid::Ipn(2, 1), {clock::DtnTime::FromMillis(1000), 5},
                    clock::Duration(3'600'000), {'a', 'b', 'c'}, Priority::kNormal, crc);
}

// 9f: indefinite array. 88: primary block of 8 items: 07 version, 00 flags, 00 CRC none,
// 82 02 82 02 01 destination ipn:2.1, 82 02 82 01 01 source ipn:1.1, 82 01 00 report-to dtn:none,
// 82 19 03e8 05 creation [1000, 5], 1a 0036ee80 lifetime 3600000.
// 85 01 01 00 00 43 616263: payload block [1, 1, 0, 0, h'616263']. ff: break.
constexpr std::string_view kMinimalHex =
    "9f 88 07 00 00 8202820201 8202820101 820100 821903e805 1a0036ee80"
    " 85 01 01 00 00 43616263 ff";

}  // namespace

TEST_CASE("codec: encodes the minimal CRC-less bundle to the hand-written RFC 9171 bytes") {
  CHECK(Encode(MinimalBundle(CrcType::kNone)) == Hex(kMinimalHex));
}

TEST_CASE("codec: decodes the hand-written minimal bundle into its fields") {
  auto b = Decode(Hex(kMinimalHex));
  REQUIRE(b.has_value());
  CHECK(b->primary.flags == 0);
  CHECK(b->primary.crc_type == CrcType::kNone);
  CHECK(b->primary.destination == Eid::Ipn(2, 1));
  CHECK(b->primary.source == Eid::Ipn(1, 1));
  CHECK(b->primary.report_to.is_none());
  CHECK(b->primary.created.time.millis() == 1000);
  CHECK(b->primary.created.sequence == 5);
  CHECK(b->primary.lifetime == clock::Duration(3'600'000));
  CHECK_FALSE(b->primary.fragment_offset.has_value());
  REQUIRE(b->blocks.size() == 1);
  CHECK(b->payload() == std::vector<std::uint8_t>{'a', 'b', 'c'});
  CHECK(b->priority() == Priority::kNormal);
  CHECK(*b == MinimalBundle(CrcType::kNone));
}

TEST_CASE("codec: CRC-16/X-25 and CRC-32C match the RFC 9171 check values") {
  const std::vector<std::uint8_t> digits = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  CHECK(Crc16X25(digits) == 0x906E);
  CHECK(Crc32c(digits) == 0xE3069283);
  // RFC 3720 (iSCSI) B.4 CRC-32C vectors: 32 bytes of zeros and 32 bytes of 0xff.
  CHECK(Crc32c(std::vector<std::uint8_t>(32, 0x00)) == 0x8A9136AA);
  CHECK(Crc32c(std::vector<std::uint8_t>(32, 0xff)) == 0x62A8AB43);
  CHECK(Crc16X25({}) == 0x0000);
  CHECK(Crc32cPortable(digits) == 0xE3069283);
}

TEST_CASE("codec: the three-lane hardware CRC-32C agrees with Boost.CRC on long buffers") {
  // Lanes of 4 KiB, joined in blocks of 12 KiB: lengths around one, two and five blocks, at
  // several alignments, with pseudo-random contents.
  std::vector<std::uint8_t> data(5 * 12288 + 64);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& byte : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    byte = static_cast<std::uint8_t>(x);
  }
  for (std::size_t start : {0, 1, 5, 8}) {
    for (std::size_t n : {12287, 12288, 12289, 12295, 24576, 24583, 40000, 61440, 61447}) {
      const auto span = std::span(data).subspan(start, n);
      REQUIRE(Crc32c(span) == Crc32cPortable(span));
    }
  }
}

TEST_CASE("codec: the hardware CRC-32C agrees with Boost.CRC at every length and alignment") {
  std::vector<std::uint8_t> data(300);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 37 + 11);
  for (std::size_t start = 0; start < 9; ++start) {
    for (std::size_t n = 0; start + n <= data.size(); n += 7) {
      const auto span = std::span(data).subspan(start, n);
      REQUIRE(Crc32c(span) == Crc32cPortable(span));
    }
  }
}

TEST_CASE("codec: the primary block's CRC-16 is computed over the block with a zeroed CRC field") {
  // 89: 9 items, 01 = CRC-16, ..., 42 95f8: the CRC as a 2-byte string, big-endian.
  const auto expected =
      Hex("9f 8907000182028202018202820101820100821903e8051a0036ee80 4295f8"
          " 85 01 01 00 00 43616263 ff");
  Bundle b = MinimalBundle(CrcType::kNone);
  b.primary.crc_type = CrcType::kCrc16;
  CHECK(Encode(b) == expected);
  auto decoded = Decode(expected);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == b);
}

TEST_CASE("codec: CRC-32C on the primary and payload blocks matches the hand-computed bytes") {
  const auto expected =
      Hex("9f 8907000282028202018202820101820100821903e8051a0036ee80 44ea4c3195"
          " 86 01 01 00 02 43616263 44ea0b9ded ff");
  const Bundle b = MinimalBundle(CrcType::kCrc32c);
  CHECK(Encode(b) == expected);
  auto decoded = Decode(expected);
  REQUIRE(decoded.has_value());
  CHECK(*decoded == b);
}

TEST_CASE("codec: every block type round-trips byte for byte under each CRC type") {
  for (CrcType crc : {CrcType::kNone, CrcType::kCrc16, CrcType::kCrc32c}) {
    CAPTURE(CrcTypeName(crc));
    const Bundle b = FullBundle(crc);
    const auto bytes = Encode(b);
    auto decoded = Decode(bytes);
    REQUIRE_MESSAGE(decoded.has_value(), decoded.error().ToString());
    CHECK(*decoded == b);
    CHECK(Encode(*decoded) == bytes);
    CHECK(decoded->previous_node() == Eid::Ipn(3, 0));
    CHECK(decoded->bundle_age() == clock::Duration(250));
    CHECK(decoded->hop_count() == HopCount{30, 2});
    CHECK(decoded->priority() == Priority::kExpedited);
    const CanonicalBlock* unknown = decoded->FindBlock(200);
    REQUIRE(unknown != nullptr);
    CHECK(unknown->data == std::vector<std::uint8_t>{0xde, 0xad, 0xbe, 0xef});
    CHECK(unknown->flags == block_flags::kDiscardBlockIfUnprocessable);
    CHECK(decoded->blocks.back().type == block_type::kPayload);
  }
}

TEST_CASE("codec: fragments, dtn-scheme EIDs and large integers round-trip") {
  Bundle b = MinimalBundle(CrcType::kCrc32c);
  b.primary.flags = bundle_flags::kIsFragment | bundle_flags::kReportDelivery;
  b.primary.fragment_offset = 4'000'000'000ULL;
  b.primary.total_adu_length = ~0ULL;
  b.primary.destination = *Eid::Parse("dtn://mars-relay/lease");
  b.primary.report_to = *Eid::Parse("dtn://ground/");
  b.primary.source = Eid::Ipn(~0ULL, 0);
  b.primary.created = {clock::DtnTime::FromMillis(std::numeric_limits<std::int64_t>::max()), ~0ULL};
  const auto bytes = Encode(b);
  CHECK(bytes[1] == 0x8b);  // 11 items: fragment fields and CRC
  auto decoded = Decode(bytes);
  REQUIRE_MESSAGE(decoded.has_value(), decoded.error().ToString());
  CHECK(*decoded == b);
  CHECK(decoded->Id().fragment_offset == 4'000'000'000ULL);
  CHECK(decoded->Id().fragment_length == 3);
}

TEST_CASE("codec: EncodeAppend appends to a reused buffer and DecodeInto reuses a bundle") {
  std::vector<std::uint8_t> buffer = {0x01, 0x02};
  EncodeAppend(MinimalBundle(CrcType::kNone), buffer);
  CHECK(std::vector<std::uint8_t>(buffer.begin() + 2, buffer.end()) == Hex(kMinimalHex));
  Bundle reused = FullBundle(CrcType::kCrc16);  // more blocks than the next bundle has
  REQUIRE(DecodeInto(std::span(buffer).subspan(2), {}, reused).has_value());
  CHECK(reused == MinimalBundle(CrcType::kNone));
}

TEST_CASE("codec: random bundles round-trip (seed printed; ICS_TEST_SEED reproduces)") {
  std::uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("ICS_TEST_SEED")) seed = std::strtoull(env, nullptr, 10);
  MESSAGE("seed=" << seed);
  std::mt19937_64 rng(seed);
  // Values around every CBOR head width boundary.
  auto number = [&rng]() -> std::uint64_t {
    static constexpr std::uint64_t kEdges[] = {
        0, 23, 24, 255, 256, 65535, 65536, 0xffffffffULL, 0x100000000ULL, ~0ULL};
    switch (rng() % 3) {
      case 0:
        return kEdges[rng() % std::size(kEdges)];
      case 1:
        return rng() % 1000;
      default:
        return rng() >> (rng() % 64);
    }
  };
  auto eid = [&]() -> Eid {
    switch (rng() % 3) {
      case 0:
        return Eid::None();
      case 1:
        return *Eid::Dtn("//node" + std::to_string(rng() % 100) + "/svc" + std::string(rng() % 30, 'x'));
      default:
        return Eid::Ipn(number(), number());
    }
  };
  auto crc = [&rng]() { return static_cast<CrcType>(rng() % 3); };
  for (int i = 0; i < 2000; ++i) {
    CAPTURE(i);
    std::vector<std::uint8_t> payload(rng() % 3 == 0 ? rng() % 70000 : rng() % 40);
    for (auto& byte : payload) byte = static_cast<std::uint8_t>(rng());
    Bundle b = MakeBundle(eid(), eid(),
                          {clock::DtnTime::FromMillis(static_cast<std::int64_t>(number() >> 1)), number()},
                          clock::Duration(static_cast<std::int64_t>(number() >> 1)), std::move(payload),
                          static_cast<Priority>(rng() % 3), crc());
    b.primary.flags = number() & ~bundle_flags::kIsFragment;
    b.primary.report_to = eid();
    if (rng() % 4 == 0) {
      b.primary.flags |= bundle_flags::kIsFragment;
      b.primary.fragment_offset = number();
      b.primary.total_adu_length = number();
    }
    if (rng() % 2) b.set_previous_node(eid());
    if (rng() % 2) b.set_bundle_age(clock::Duration(static_cast<std::int64_t>(number() >> 1)));
    if (rng() % 2) b.set_hop_count({number(), number()});
    for (int u = static_cast<int>(rng() % 3); u > 0; --u) {
      CanonicalBlock unknown;
      unknown.type = 11 + rng() % 100;
      unknown.number = 100 + static_cast<std::uint64_t>(u);
      unknown.flags = number();
      unknown.data.resize(rng() % 300);
      for (auto& byte : unknown.data) byte = static_cast<std::uint8_t>(rng());
      b.blocks.insert(b.blocks.begin() + static_cast<std::ptrdiff_t>(rng() % b.blocks.size()), unknown);
    }
    for (CanonicalBlock& block : b.blocks) block.crc_type = crc();
    const auto bytes = Encode(b);
    auto decoded = Decode(bytes);
    REQUIRE_MESSAGE(decoded.has_value(), decoded.error().ToString());
    REQUIRE(*decoded == b);
    REQUIRE(Encode(*decoded) == bytes);
  }
}

}  // namespace ics::dtn
