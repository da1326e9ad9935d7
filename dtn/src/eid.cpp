#include "dtn/eid.h"

#include <fmt/format.h>

#include <charconv>

namespace ics::dtn {
namespace {

// Decimal digits only: no sign, no leading zeros (so that the printed form is the parsed one),
// no overflow past 2^64-1.
std::expected<std::uint64_t, std::string> ParseDecimal(std::string_view digits, std::string_view what,
                                                       std::string_view text) {
  if (digits.empty()) return std::unexpected(fmt::format("'{}': {} number is empty", text, what));
  for (char c : digits) {
    if (c < '0' || c > '9') {
      return std::unexpected(fmt::format("'{}': {} number '{}' is not decimal digits", text, what, digits));
    }
  }
  if (digits.size() > 1 && digits[0] == '0') {
    return std::unexpected(fmt::format("'{}': {} number '{}' has a leading zero", text, what, digits));
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || end != digits.data() + digits.size()) {
    return std::unexpected(fmt::format("'{}': {} number '{}' is larger than 2^64-1", text, what, digits));
  }
  return value;
}

bool IsVisibleAscii(char c) { return c >= 0x21 && c <= 0x7e; }

}  // namespace

std::expected<Eid, std::string> Eid::Dtn(std::string_view ssp) {
  // RFC 9171 §4.2.5.1.1: dtn-hier-part = "//" node-name name-delim demux; we take node-name as
  // one or more visible ASCII characters other than '/', demux as zero or more visible ASCII.
  if (ssp == "none") return Eid::None();
  if (ssp.substr(0, 2) != "//") {
    return std::unexpected(fmt::format("'dtn:{}': a dtn EID is dtn://node/service or dtn:none", ssp));
  }
  const std::string_view rest = ssp.substr(2);
  const std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    return std::unexpected(fmt::format("'dtn:{}': no '/' after the node name (dtn://node/service)", ssp));
  }
  if (slash == 0) return std::unexpected(fmt::format("'dtn:{}': the node name is empty", ssp));
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (!IsVisibleAscii(rest[i])) {
      return std::unexpected(fmt::format("'dtn:{}': character {} (byte 0x{:02x}) is not printable ASCII", ssp,
                                         i + 7, static_cast<unsigned char>(rest[i])));
    }
  }
  return Eid(Scheme::kDtn, 0, 0, std::string(ssp));
}

std::expected<Eid, std::string> Eid::Parse(std::string_view text) {
  if (text == "dtn:none") return Eid::None();
  if (text.starts_with("dtn:")) return Dtn(text.substr(4));
  if (text.starts_with("ipn:")) {
    const std::string_view ssp = text.substr(4);
    const std::size_t dot = ssp.find('.');
    if (dot == std::string_view::npos) {
      return std::unexpected(fmt::format("'{}': an ipn EID is ipn:NODE.SERVICE", text));
    }
    auto node = ParseDecimal(ssp.substr(0, dot), "node", text);
    if (!node) return std::unexpected(node.error());
    auto service = ParseDecimal(ssp.substr(dot + 1), "service", text);
    if (!service) return std::unexpected(service.error());
    return Eid::Ipn(*node, *service);
  }
  return std::unexpected(
      fmt::format("'{}': unknown EID scheme (expected ipn:N.S, dtn://node/service or dtn:none)", text));
}

Eid Eid::NodeEid() const {
  switch (scheme_) {
    case Scheme::kIpn:
      return Eid::Ipn(node_, 0);
    case Scheme::kDtn: {
      const std::size_t slash = ssp_.find('/', 2);  // ssp_ is "//node/..." by construction
      return Eid(Scheme::kDtn, 0, 0, ssp_.substr(0, slash + 1));
    }
    case Scheme::kNone:
      break;
  }
  return Eid::None();
}

std::string Eid::ToString() const {
  switch (scheme_) {
    case Scheme::kIpn:
      return fmt::format("ipn:{}.{}", node_, service_);
    case Scheme::kDtn:
      return "dtn:" + ssp_;
    case Scheme::kNone:
      break;
  }
  return "dtn:none";
}

}  // namespace ics::dtn
