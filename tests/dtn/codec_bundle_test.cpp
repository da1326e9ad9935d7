// Goal: the Bundle helpers (expiry, typed extension blocks, IDs, MakeBundle) behave as bundle.h
// promises. Method: build bundles in memory and compare with hand-computed times and blocks.
#include <doctest/doctest.h>

#include <limits>

#include "dtn/bundle.h"
#include "dtn/codec.h"

namespace ics::dtn {
namespace {

using clock::DtnTime;
using clock::Duration;

Bundle Simple(std::int64_t created_ms, std::int64_t lifetime_ms) {
  return MakeBundle(Eid::Ipn(1, 1), Eid::Ipn(2, 1), {DtnTime::FromMillis(created_ms), 4},
                    Duration(lifetime_ms), {1, 2, 3});
}

}  // namespace

TEST_CASE("bundle: ExpiresAt is creation time plus lifetime when the source has a clock") {
  const Bundle b = Simple(815'000'000'000, 60'000);
  CHECK(b.ExpiresAt(DtnTime::FromMillis(999)) == DtnTime::FromMillis(815'000'060'000));
}

TEST_CASE("bundle: ExpiresAt uses the bundle age when the creation time is 0") {
  Bundle b = Simple(0, 60'000);
  CHECK_FALSE(b.ExpiresAt(DtnTime::FromMillis(1'000'000)).has_value());  // no clock, no age
  b.set_bundle_age(Duration(15'000));
  // Received at 1,000,000 ms having lived 15 s: created at 985,000, expires at 1,045,000.
  CHECK(b.ExpiresAt(DtnTime::FromMillis(1'000'000)) == DtnTime::FromMillis(1'045'000));
}

TEST_CASE("bundle: ExpiresAt saturates instead of overflowing on hostile times") {
  const Bundle b = Simple(std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::max());
  CHECK(b.ExpiresAt(DtnTime()) == DtnTime::Max());
}

TEST_CASE("bundle: setters add typed blocks before the payload with fresh numbers, then replace them") {
  Bundle b = Simple(1, 1);
  b.set_hop_count({10, 0});
  b.set_previous_node(Eid::Ipn(7, 0));
  b.set_bundle_age(Duration(5));
  REQUIRE(b.blocks.size() == 4);
  CHECK(b.blocks.back().type == block_type::kPayload);
  CHECK(b.blocks[0].number == 2);
  CHECK(b.blocks[1].number == 3);
  CHECK(b.blocks[2].number == 4);
  b.set_hop_count({10, 1});
  b.set_bundle_age(Duration(6));
  CHECK(b.blocks.size() == 4);
  CHECK(b.hop_count() == HopCount{10, 1});
  CHECK(b.bundle_age() == Duration(6));
  CHECK(b.previous_node() == Eid::Ipn(7, 0));
  CHECK(b.FindBlock(block_type::kHopCount)->data == std::vector<std::uint8_t>{0x82, 0x0a, 0x01});
  CHECK(Decode(Encode(b)).has_value());
}

TEST_CASE("bundle: priority is normal without a block; other priorities add block 192") {
  Bundle b = Simple(1, 1);
  CHECK(b.priority() == Priority::kNormal);
  b.set_priority(Priority::kNormal);
  CHECK(b.blocks.size() == 1);
  b.set_priority(Priority::kExpedited);
  CHECK(b.priority() == Priority::kExpedited);
  CHECK(b.FindBlock(block_type::kIcsPriority)->data == std::vector<std::uint8_t>{0x02});
  b.set_priority(Priority::kNormal);
  CHECK(b.priority() == Priority::kNormal);
  const Bundle bulk = MakeBundle(Eid::Ipn(1, 1), Eid::Ipn(2, 1), {}, Duration(1), {}, Priority::kBulk);
  CHECK(bulk.priority() == Priority::kBulk);
  CHECK(bulk.blocks.size() == 2);
  for (Priority p : {Priority::kBulk, Priority::kNormal, Priority::kExpedited}) {
    CHECK(ParsePriority(PriorityName(p)) == p);
  }
  CHECK_FALSE(ParsePriority("urgent").has_value());
}

TEST_CASE("bundle: MakeBundle sets the CRC of the primary and payload blocks and report-to none") {
  const Bundle b = MakeBundle(Eid::Ipn(1, 2), Eid::Ipn(3, 4), {DtnTime::FromMillis(9), 1}, Duration(10), {7},
                              Priority::kNormal, CrcType::kCrc16);
  CHECK(b.primary.crc_type == CrcType::kCrc16);
  CHECK(b.blocks.at(0).crc_type == CrcType::kCrc16);
  CHECK(b.blocks.at(0).number == 1);
  CHECK(b.primary.report_to.is_none());
  CHECK(b.payload() == std::vector<std::uint8_t>{7});
}

TEST_CASE("bundle: the bundle ID names source, creation time, sequence and fragment") {
  Bundle b = Simple(815'000'000'123, 1);
  CHECK(b.Id().ToString() == "ipn:1.1/815000000123.4");
  b.primary.flags |= bundle_flags::kIsFragment;
  b.primary.fragment_offset = 100;
  b.primary.total_adu_length = 1000;
  CHECK(b.Id().ToString() == "ipn:1.1/815000000123.4#100+3");
  CHECK(b.Id() != Simple(815'000'000'123, 1).Id());
  CHECK(Simple(5, 1).Id() == Simple(5, 2).Id());  // lifetime is not part of the ID
}

}  // namespace ics::dtn
