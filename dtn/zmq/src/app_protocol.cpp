#include "dtn/zmq/app_protocol.h"

#include <charconv>

namespace ics::dtn::zmq {

std::expected<BundleId, std::string> ParseBundleId(std::string_view text) {
  // The source EID may contain '/' (dtn://node/service), so split at the last '/'.
  const auto slash = text.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::unexpected("bundle id '" + std::string(text) + "': no '/'");
  auto eid = Eid::Parse(text.substr(0, slash));
  if (!eid) return std::unexpected("bundle id '" + std::string(text) + "': " + eid.error());
  const std::string_view rest = text.substr(slash + 1);
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return std::unexpected("bundle id '" + std::string(text) + "': no '.'");
  std::int64_t ms = 0;
  std::uint64_t seq = 0;
  const auto a = std::from_chars(rest.data(), rest.data() + dot, ms);
  const auto b = std::from_chars(rest.data() + dot + 1, rest.data() + rest.size(), seq);
  if (a.ec != std::errc() || a.ptr != rest.data() + dot || b.ec != std::errc() ||
      b.ptr != rest.data() + rest.size() || dot == 0 || dot + 1 == rest.size()) {
    return std::unexpected("bundle id '" + std::string(text) + "': bad creation timestamp");
  }
  BundleId id;
  id.source = *eid;
  id.created = {clock::DtnTime::FromMillis(ms), seq};
  return id;
}

}  // namespace ics::dtn::zmq
