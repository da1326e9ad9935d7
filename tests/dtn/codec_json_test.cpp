// Goal: the JSON form of `ics-dtn decode`/`encode` carries every field, round-trips, and
// refuses bad input with the JSON path of the problem. Method: convert canned bundles both ways
// and feed hand-written broken documents.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "dtn/bundle_json.h"
#include "dtn/codec.h"
#include "dtn/codec_test_util.h"

namespace ics::dtn {

TEST_CASE("codec json: a bundle with every block type round-trips through JSON") {
  for (CrcType crc : {CrcType::kNone, CrcType::kCrc16, CrcType::kCrc32c}) {
    Bundle b = test::FullBundle(crc);
    b.primary.flags = bundle_flags::kIsFragment | bundle_flags::kMustNotFragment | 0x800000;
    b.primary.fragment_offset = 10;
    b.primary.total_adu_length = 20;
    const std::string text = BundleToJson(b);
    auto back = BundleFromJson(text);
    REQUIRE_MESSAGE(back.has_value(), back.error());
    CHECK(*back == b);
    CHECK(Encode(*back) == Encode(b));
  }
}

TEST_CASE("codec json: decode output names fields, flags, times in DTN ms and UTC, and block data") {
  const Bundle b = test::FullBundle(CrcType::kCrc32c);
  const auto doc = nlohmann::json::parse(BundleToJson(b));
  const auto& p = doc.at("primary");
  CHECK(p.at("version") == 7);
  CHECK(p.at("crc_type") == "crc32c");
  CHECK(p.at("crc_ok") == true);
  CHECK(p.at("destination") == "ipn:2.1");
  CHECK(p.at("creation_time_ms") == 1000);
  CHECK(p.at("creation_time_utc") == "2000-01-01T00:00:01.000Z");
  CHECK(p.at("lifetime_ms") == 3'600'000);
  const auto& blocks = doc.at("blocks");
  REQUIRE(blocks.size() == 6);
  CHECK(blocks[0].at("type") == 200);
  CHECK(blocks[0].at("type_name") == "unknown");
  CHECK(blocks[0].at("data_hex") == "deadbeef");
  CHECK(blocks[0].at("flag_names") == nlohmann::json::array({"discard_block_if_unprocessable"}));
  CHECK(blocks[1].at("priority") == "expedited");
  CHECK(blocks[2].at("previous_node") == "ipn:3.0");
  CHECK(blocks[3].at("bundle_age_ms") == 250);
  CHECK(blocks[4].at("hop_limit") == 30);
  CHECK(blocks[4].at("hop_count") == 2);
  CHECK(blocks[5].at("payload_hex") == "616263");
  CHECK(blocks[5].at("payload_length") == 3);
}

TEST_CASE("codec json: flags may be names and the creation time may be UTC text") {
  const char* text = R"({"primary": {"flags": ["must_not_fragment", "report_delivery"], "crc_type": "crc16",
      "destination": "ipn:2.1", "source": "dtn://rover/x", "report_to": "dtn:none",
      "creation_time_utc": "2000-01-01T00:01:00Z", "sequence": 1, "lifetime_ms": 5},
    "blocks": [{"type": 1, "number": 1, "flags": 0, "crc_type": "none", "payload_hex": "AB cd"}]})";
  auto b = BundleFromJson(text);
  REQUIRE_MESSAGE(b.has_value(), b.error());
  CHECK(b->primary.flags == (bundle_flags::kMustNotFragment | bundle_flags::kReportDelivery));
  CHECK(b->primary.created.time.millis() == 60'000);
  CHECK(b->payload() == std::vector<std::uint8_t>{0xab, 0xcd});
}

TEST_CASE("codec json: bad documents are refused naming the JSON path") {
  const std::string good = BundleToJson(test::FullBundle(CrcType::kNone));
  auto edit = [&](const std::string& pointer, const nlohmann::json& value) {
    auto doc = nlohmann::json::parse(good);
    if (value.is_discarded()) {
      doc.at(nlohmann::json::json_pointer(pointer.substr(0, pointer.rfind('/'))))
          .erase(pointer.substr(pointer.rfind('/') + 1));
    } else {
      doc[nlohmann::json::json_pointer(pointer)] = value;
    }
    auto result = BundleFromJson(doc.dump());
    REQUIRE_FALSE(result.has_value());
    return result.error();
  };
  const nlohmann::json removed(nlohmann::json::value_t::discarded);
  CHECK(edit("/primary/destination", "ipn:x").starts_with("/primary/destination: 'ipn:x'"));
  CHECK(edit("/primary/lifetime_ms", -1) == "/primary/lifetime_ms: expected an unsigned integer");
  CHECK(edit("/primary/crc_type", "md5").starts_with("/primary/crc_type: unknown CRC type"));
  CHECK(edit("/primary/sequence", removed) == "/primary/sequence: missing");
  CHECK(edit("/primary/version", 6).starts_with("/primary/version: version 6"));
  CHECK(edit("/primary/flags", nlohmann::json::array({"fly"})) ==
        "/primary/flags/0: unknown flag name 'fly'");
  CHECK(edit("/primary/fragment_offset", 1) ==
        "/primary/fragment_offset: present but the flags lack is_fragment");
  CHECK(edit("/blocks/3/bundle_age_ms", "old") == "/blocks/3/bundle_age_ms: expected an unsigned integer");
  CHECK(edit("/blocks/5/payload_hex", "abc").starts_with("/blocks/5/payload_hex: odd number"));
  CHECK(edit("/blocks/1/priority", "urgent").starts_with("/blocks/1/priority: unknown priority"));
  CHECK(edit("/blocks/0/data_hex", removed) == "/blocks/0/data_hex: missing");
  // Block rules are the decoder's: number 1 is the payload block's.
  CHECK(edit("/blocks/0/number", 1).starts_with("the bundle is not valid: invalid in block 1 (type 200)"));
  CHECK(BundleFromJson("{\"primary\": ").error().starts_with("JSON syntax error at byte"));
  CHECK(BundleFromJson("[]").error().starts_with("/: expected a JSON object"));
}

TEST_CASE("codec json: hex text decodes with whitespace and either case, and refuses other characters") {
  CHECK(HexDecode("De ad\nBE ef") == std::vector<std::uint8_t>{0xde, 0xad, 0xbe, 0xef});
  CHECK(HexDecode("0g").error() == "character 1 ('g') is not a hex digit");
  CHECK(HexEncode(std::vector<std::uint8_t>{0x00, 0xff}) == "00ff");
}

}  // namespace ics::dtn
