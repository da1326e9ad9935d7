// Endpoint IDs (RFC 9171 §4.2.5.1): `ipn:NODE.SERVICE`, `dtn://node/service` and `dtn:none`.
#pragma once

#include <compare>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace ics::dtn {

class Eid {
 public:
  enum class Scheme : std::uint8_t { kNone = 0, kDtn = 1, kIpn = 2 };  // values are the RFC 9171 scheme codes

  Eid() = default;  // dtn:none
  static Eid None() { return Eid(); }
  static Eid Ipn(std::uint64_t node, std::uint64_t service) { return Eid(Scheme::kIpn, node, service, {}); }
  // `ssp` is the part after "dtn:" and begins with "//" ("//node/service").
  static std::expected<Eid, std::string> Dtn(std::string_view ssp);
  // "ipn:2.7", "dtn://rover/lease", "dtn:none". Error names the text and what is wrong.
  static std::expected<Eid, std::string> Parse(std::string_view text);

  Scheme scheme() const { return scheme_; }
  bool is_none() const { return scheme_ == Scheme::kNone; }
  std::uint64_t node() const { return node_; }         // ipn only
  std::uint64_t service() const { return service_; }   // ipn only
  const std::string& dtn_ssp() const { return ssp_; }  // dtn only, e.g. "//rover/lease"
  // The node part of this endpoint: ipn:N.0 for ipn:N.S, dtn://node/ for dtn://node/x.
  Eid NodeEid() const;
  std::string ToString() const;

  auto operator<=>(const Eid&) const = default;

 private:
  Eid(Scheme scheme, std::uint64_t node, std::uint64_t service, std::string ssp)
      : scheme_(scheme), node_(node), service_(service), ssp_(std::move(ssp)) {}
  Scheme scheme_ = Scheme::kNone;
  std::uint64_t node_ = 0;
  std::uint64_t service_ = 0;
  std::string ssp_;
};

}  // namespace ics::dtn
