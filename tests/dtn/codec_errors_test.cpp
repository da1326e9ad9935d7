// Goal: every malformed bundle is refused with the right typed error, naming the block and the
// byte offset, without crashing or allocating for an unverified length. Method: start from valid
// encodings and damage them (truncate, flip, append, rewrite heads), or write hostile CBOR by hand.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "dtn/codec.h"
#include "dtn/codec_test_util.h"

namespace ics::dtn {
namespace {

using test::FullBundle;
using test::Hex;

DecodeError ErrorOf(const std::vector<std::uint8_t>& bytes, const DecodeLimits& limits = {}) {
  auto result = Decode(bytes, limits);
  REQUIRE_FALSE(result.has_value());
  return result.error();
}

// The minimal CRC-less bundle of codec_test.cpp, 38 bytes, the payload's byte string head at byte 33.
const std::vector<std::uint8_t> kMinimal =
    Hex("9f 88 07 00 00 8202820201 8202820101 820100 821903e805 1a0036ee80 85 01 01 00 00 43616263 ff");

}  // namespace

TEST_CASE("codec errors: every truncation of a valid bundle is kTruncated within the input") {
  for (CrcType crc : {CrcType::kNone, CrcType::kCrc32c}) {
    const auto bytes = Encode(FullBundle(crc));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
      CAPTURE(n);
      const std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      const DecodeError e = ErrorOf(prefix);
      CHECK(e.kind == DecodeError::kTruncated);
      CHECK(e.offset <= n);
      CHECK_FALSE(e.block.empty());
    }
  }
  // Where it stops is named: inside the primary block, a canonical block, or before the break.
  CHECK(ErrorOf(std::vector<std::uint8_t>(kMinimal.begin(), kMinimal.begin() + 10)).block == "primary");
  const DecodeError in_payload = ErrorOf(std::vector<std::uint8_t>(kMinimal.begin(), kMinimal.begin() + 35));
  CHECK(in_payload.block == "block 1 (type 1)");
  CHECK(in_payload.offset == 33);  // the byte string head 0x43 claiming 3 bytes
  const DecodeError no_break = ErrorOf(std::vector<std::uint8_t>(kMinimal.begin(), kMinimal.end() - 1));
  CHECK(no_break.block == "bundle");
  CHECK(no_break.offset == kMinimal.size() - 1);
}

TEST_CASE("codec errors: a flipped CRC or a flipped covered byte is kBadCrc naming the block") {
  const Bundle b = FullBundle(CrcType::kCrc32c);
  const auto bytes = Encode(b);
  // The primary block's CRC field: 0x44 then 4 bytes, just before the first canonical block.
  Bundle primary_only = b;
  primary_only.blocks.clear();
  const std::size_t primary_end = Encode(primary_only).size() - 1;  // 9f <primary> | ff
  auto flipped = bytes;
  flipped[primary_end - 1] ^= 0x01;  // last CRC byte
  DecodeError e = ErrorOf(flipped);
  CHECK(e.kind == DecodeError::kBadCrc);
  CHECK(e.block == "primary");
  CHECK(e.offset == primary_end - 5);  // the CRC byte string's head
  CHECK(e.message.find("CRC-32C is 0x") != std::string::npos);

  auto payload_flip = bytes;
  payload_flip[bytes.size() - 8] ^= 0x40;  // 'c' of the payload: ... 43 61 62 63 44 xx xx xx xx ff
  e = ErrorOf(payload_flip);
  CHECK(e.kind == DecodeError::kBadCrc);
  CHECK(e.block == "block 1 (type 1)");
  CHECK(e.offset == bytes.size() - 6);

  auto crc16 = Encode(FullBundle(CrcType::kCrc16));
  crc16[crc16.size() - 2] ^= 0xff;
  e = ErrorOf(crc16);
  CHECK(e.kind == DecodeError::kBadCrc);
  CHECK(e.message.find("CRC-16") != std::string::npos);
}

TEST_CASE("codec errors: bytes after the closing break are kTrailingBytes at their offset") {
  auto bytes = kMinimal;
  bytes.push_back(0x00);
  const DecodeError e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kTrailingBytes);
  CHECK(e.block == "bundle");
  CHECK(e.offset == kMinimal.size());
  CHECK(e.ToString() == "trailing-bytes in bundle at byte 38: 1 bytes after the bundle's closing break");
}

TEST_CASE("codec errors: a byte string claiming 2^62 bytes is refused before any allocation") {
  // The payload head 43 becomes 5b 4000000000000000 (an 8-byte length of 2^62).
  auto bytes =
      Hex("9f 88 07 00 00 8202820201 8202820101 820100 821903e805 1a0036ee80 85 01 01 00 00"
          " 5b4000000000000000 616263 ff");
  DecodeError e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kTooLarge);
  CHECK(e.block == "block 1 (type 1)");
  CHECK(e.offset == 33);
  // With no limit at all it is still refused: the length is checked against the input left.
  DecodeLimits unlimited;
  unlimited.max_payload_bytes = unlimited.max_bundle_bytes = ~std::size_t{0};
  e = ErrorOf(bytes, unlimited);
  CHECK(e.kind == DecodeError::kTruncated);
  CHECK(e.offset == 33);
  // An extension block claiming as much is bounded by max_bundle_bytes.
  bytes =
      Hex("9f 88 07 00 00 8202820201 8202820101 820100 821903e805 1a0036ee80 85 0b 02 00 00"
          " 5b4000000000000000 ff");
  e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kTooLarge);
  CHECK(e.block == "block 2 (type 11)");
  // And a dtn SSP claiming 2^62 bytes by max_eid_bytes.
  bytes = Hex("9f 88 07 00 00 82 01 7b4000000000000000");
  e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kTooLarge);
  CHECK(e.block == "primary");
  CHECK(e.offset == 7);
}

TEST_CASE("codec errors: 10,000 nested arrays are refused at the first one without recursion") {
  std::vector<std::uint8_t> bomb = {0x9f, 0x88};
  bomb.insert(bomb.end(), 10'000, 0x81);
  DecodeError e = ErrorOf(bomb);
  CHECK(e.kind == DecodeError::kNesting);
  CHECK(e.block == "primary");
  CHECK(e.offset == 2);
  // As the primary block itself: an array of one item.
  std::vector<std::uint8_t> outer = {0x9f};
  outer.insert(outer.end(), 10'000, 0x81);
  e = ErrorOf(outer);
  CHECK(e.kind == DecodeError::kInvalid);
  CHECK(e.offset == 1);
  // Indefinite arrays nested: refused as non-canonical at the first one.
  e = ErrorOf(std::vector<std::uint8_t>(10'000, 0x9f));
  CHECK(e.kind == DecodeError::kNonCanonical);
  CHECK(e.offset == 1);
}

TEST_CASE("codec errors: a payload over max_payload_bytes or a bundle over max_bundle_bytes is kTooLarge") {
  DecodeLimits limits;
  limits.max_payload_bytes = 2;
  DecodeError e = ErrorOf(kMinimal, limits);
  CHECK(e.kind == DecodeError::kTooLarge);
  CHECK(e.block == "block 1 (type 1)");
  CHECK(e.offset == 33);
  limits = {};
  limits.max_bundle_bytes = kMinimal.size() - 1;
  e = ErrorOf(kMinimal, limits);
  CHECK(e.kind == DecodeError::kTooLarge);
  CHECK(e.block == "bundle");
  limits = {};
  limits.max_blocks = 5;  // FullBundle has 6 canonical blocks
  e = ErrorOf(Encode(FullBundle(CrcType::kNone)), limits);
  CHECK(e.kind == DecodeError::kTooLarge);
  CHECK(e.block == "block #6");
}

TEST_CASE("codec errors: a duplicate payload, block number or typed block is kDuplicateBlock") {
  Bundle b = FullBundle(CrcType::kNone);
  b.blocks.push_back(b.blocks.back());  // a second payload block
  DecodeError e = ErrorOf(Encode(b));
  CHECK(e.kind == DecodeError::kDuplicateBlock);
  CHECK(e.block == "block 1 (type 1)");

  b = FullBundle(CrcType::kNone);
  b.blocks[1].number = b.blocks[0].number;
  e = ErrorOf(Encode(b));
  CHECK(e.kind == DecodeError::kDuplicateBlock);
  CHECK(e.message.find("used twice") != std::string::npos);

  b = FullBundle(CrcType::kNone);
  CanonicalBlock age = *b.FindBlock(block_type::kBundleAge);
  age.number = 50;
  b.blocks.insert(b.blocks.begin(), age);
  e = ErrorOf(Encode(b));
  CHECK(e.kind == DecodeError::kDuplicateBlock);
  CHECK(e.message == "a second block of type 7");
}

TEST_CASE("codec errors: missing payload, a block after it, and misnumbered blocks") {
  Bundle b = FullBundle(CrcType::kNone);
  b.blocks.pop_back();
  DecodeError e = ErrorOf(Encode(b));
  CHECK(e.kind == DecodeError::kMissingPayload);
  CHECK(e.block == "bundle");

  b = FullBundle(CrcType::kNone);
  std::rotate(b.blocks.begin(), b.blocks.end() - 1, b.blocks.end());  // payload first
  e = ErrorOf(Encode(b));
  CHECK(e.kind == DecodeError::kMissingPayload);

  b = FullBundle(CrcType::kNone);
  b.blocks.back().number = 7;
  CHECK(ErrorOf(Encode(b)).kind == DecodeError::kInvalid);
  b = FullBundle(CrcType::kNone);
  b.blocks.front().number = 0;
  CHECK(ErrorOf(Encode(b)).kind == DecodeError::kInvalid);
}

TEST_CASE("codec errors: version 6 is kBadVersion at the version byte") {
  auto bytes = kMinimal;
  bytes[2] = 0x06;
  const DecodeError e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kBadVersion);
  CHECK(e.block == "primary");
  CHECK(e.offset == 2);
}

TEST_CASE("codec errors: wrong CBOR types, non-shortest heads and bad counts are typed") {
  DecodeError e = ErrorOf(Hex("88"));  // a definite array instead of 9f
  CHECK(e.kind == DecodeError::kWrongType);
  CHECK(e.offset == 0);
  CHECK(ErrorOf({}).kind == DecodeError::kTruncated);

  auto bytes = kMinimal;
  bytes[3] = 0x40;  // flags as an empty byte string
  e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kWrongType);
  CHECK(e.offset == 3);
  CHECK(e.message == "bundle processing flags: expected unsigned integer, found byte string");

  // Flags 0 written as 18 00 (one-byte argument for a value < 24).
  bytes =
      Hex("9f 88 07 1800 00 8202820201 8202820101 820100 821903e805 1a0036ee80 85 01 01 00 00 43616263 ff");
  e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kNonCanonical);
  CHECK(e.offset == 3);

  bytes = kMinimal;
  bytes[4] = 0x03;  // CRC type 3
  CHECK(ErrorOf(bytes).kind == DecodeError::kInvalid);

  bytes = kMinimal;
  bytes[4] = 0x01;  // CRC-16 claimed, but the block has 8 items
  e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kInvalid);
  CHECK(e.offset == 1);

  bytes = kMinimal;
  bytes[3] = 0xf9;  // a half-precision float head
  CHECK(ErrorOf(bytes).kind == DecodeError::kWrongType);
}

TEST_CASE("codec errors: malformed EIDs are kBadEid naming the field") {
  // Scheme 3 in the destination.
  DecodeError e = ErrorOf(Hex("9f 88 07 00 00 8203820201"));
  CHECK(e.kind == DecodeError::kBadEid);
  CHECK(e.offset == 6);
  CHECK(e.message == "destination: unknown EID scheme code 3");
  // dtn SSP without a node name: "//" then "/x".
  e = ErrorOf(Hex("9f 88 07 00 00 8201642f2f2f78"));
  CHECK(e.kind == DecodeError::kBadEid);
  CHECK(e.offset == 7);
  // dtn:none spelled as text.
  CHECK(ErrorOf(Hex("9f 88 07 00 00 8201646e6f6e65")).kind == DecodeError::kBadEid);
  // [1, 5]: only 0 is allowed as an integer SSP.
  CHECK(ErrorOf(Hex("9f 88 07 00 00 820105")).kind == DecodeError::kBadEid);
  // ipn SSP of three numbers.
  CHECK(ErrorOf(Hex("9f 88 07 00 00 820283020101")).kind == DecodeError::kBadEid);
}

TEST_CASE("codec errors: malformed data in a typed extension block names the block and inner offset") {
  Bundle b = FullBundle(CrcType::kNone);
  CanonicalBlock* age = b.FindBlock(block_type::kBundleAge);
  age->data = {0x61, 'x'};  // a text string instead of an unsigned integer
  auto bytes = Encode(b);
  DecodeError e = ErrorOf(bytes);
  CHECK(e.kind == DecodeError::kWrongType);
  CHECK(e.block == "block " + std::to_string(age->number) + " (type 7)");
  CHECK(bytes[e.offset] == 0x61);

  b = FullBundle(CrcType::kNone);
  b.FindBlock(block_type::kIcsPriority)->data = {0x03};
  e = ErrorOf(Encode(b));
  CHECK(e.kind == DecodeError::kInvalid);
  CHECK(e.message == "priority 3 (expected 0, 1 or 2)");

  b = FullBundle(CrcType::kNone);
  b.FindBlock(block_type::kHopCount)->data.push_back(0x00);  // an item after [limit, count]
  e = ErrorOf(Encode(b));
  CHECK(e.kind == DecodeError::kInvalid);
  CHECK(e.message == "1 bytes after the block's data item");

  b = FullBundle(CrcType::kNone);
  b.FindBlock(block_type::kPreviousNode)->data = {0x82, 0x02, 0x81, 0x01};
  CHECK(ErrorOf(Encode(b)).kind == DecodeError::kBadEid);
}

}  // namespace ics::dtn
