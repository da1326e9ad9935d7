// Goal: endpoint IDs parse, print and encode exactly as RFC 9171 §4.2.5.1 says, and malformed
// text is refused with a message naming it. Method: a table of good and bad texts, and the CBOR
// bytes written out by hand.
#include "dtn/eid.h"

#include <doctest/doctest.h>

#include "dtn/codec.h"
#include "dtn/codec_test_util.h"

namespace ics::dtn {

TEST_CASE("eid: ipn, dtn and dtn:none texts parse and print back unchanged") {
  for (const char* text : {"ipn:2.7", "ipn:0.0", "ipn:18446744073709551615.18446744073709551615", "dtn:none",
                           "dtn://rover/lease", "dtn://ground-station.earth/", "dtn://a/b/c?x=1~"}) {
    CAPTURE(text);
    auto eid = Eid::Parse(text);
    REQUIRE_MESSAGE(eid.has_value(), eid.error());
    CHECK(eid->ToString() == text);
  }
  auto ipn = Eid::Parse("ipn:2.7");
  CHECK(ipn->scheme() == Eid::Scheme::kIpn);
  CHECK(ipn->node() == 2);
  CHECK(ipn->service() == 7);
  CHECK(Eid::Parse("dtn:none")->is_none());
  CHECK(Eid::Parse("dtn://rover/lease")->dtn_ssp() == "//rover/lease");
}

TEST_CASE("eid: malformed texts are refused with a message naming the text") {
  for (const char* text :
       {"ipn:+1.2", "ipn:1", "ipn:1.", "ipn:.1", "ipn:01.2", "ipn:1.2.3", "ipn:-1.2",
        "ipn:18446744073709551616.0", "ipn: 1.2", "dtn:", "dtn://", "dtn:///x", "dtn://node", "dtn:rover",
        "dtn://a b/c", "dtn://a/\x7f", "foo:1.2", "", "IPN:1.2"}) {
    CAPTURE(text);
    auto eid = Eid::Parse(text);
    REQUIRE_FALSE(eid.has_value());
    CHECK(eid.error().find('\'') != std::string::npos);
  }
  CHECK(Eid::Parse("ipn:18446744073709551616.0").error().find("2^64-1") != std::string::npos);
}

TEST_CASE("eid: NodeEid is service 0 for ipn and the bare node for dtn") {
  CHECK(Eid::Ipn(2, 7).NodeEid() == Eid::Ipn(2, 0));
  CHECK(Eid::Parse("dtn://rover/lease/x")->NodeEid().ToString() == "dtn://rover/");
  CHECK(Eid::None().NodeEid().is_none());
}

TEST_CASE("eid: the CBOR forms are [2, [node, service]], [1, text] and [1, 0]") {
  std::vector<std::uint8_t> out;
  EncodeEid(Eid::Ipn(2, 7), out);
  CHECK(out == test::Hex("82 02 82 02 07"));
  out.clear();
  EncodeEid(Eid::None(), out);
  CHECK(out == test::Hex("82 01 00"));
  out.clear();
  EncodeEid(*Eid::Parse("dtn://a/b"), out);
  CHECK(out == test::Hex("82 01 65 2f2f612f62"));  // 65: a text string of 5 bytes, "//a/b"
}

TEST_CASE("eid: DecodeEid reads the CBOR forms and refuses trailing bytes") {
  CHECK(DecodeEid(test::Hex("82 02 82 1864 19ffff")) == Eid::Ipn(100, 0xffff));
  CHECK(DecodeEid(test::Hex("82 01 00")) == Eid::None());
  CHECK(DecodeEid(test::Hex("82 01 00 00")).error().kind == DecodeError::kTrailingBytes);
}

}  // namespace ics::dtn
