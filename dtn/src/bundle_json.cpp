#include "dtn/bundle_json.h"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "cbor.h"

namespace ics::dtn {
namespace {

using json = nlohmann::ordered_json;  // keeps the fields in the documented order

struct FlagName {
  std::uint64_t bit;
  std::string_view name;
};

constexpr std::array kBundleFlagNames = {
    FlagName{bundle_flags::kIsFragment, "is_fragment"},
    FlagName{bundle_flags::kAdminRecord, "admin_record"},
    FlagName{bundle_flags::kMustNotFragment, "must_not_fragment"},
    FlagName{bundle_flags::kAckRequested, "ack_requested"},
    FlagName{bundle_flags::kStatusTimeRequested, "status_time_requested"},
    FlagName{bundle_flags::kReportReception, "report_reception"},
    FlagName{bundle_flags::kReportForwarding, "report_forwarding"},
    FlagName{bundle_flags::kReportDelivery, "report_delivery"},
    FlagName{bundle_flags::kReportDeletion, "report_deletion"},
};

constexpr std::array kBlockFlagNames = {
    FlagName{block_flags::kMustReplicate, "must_replicate"},
    FlagName{block_flags::kReportIfUnprocessable, "report_if_unprocessable"},
    FlagName{block_flags::kDeleteBundleIfUnprocessable, "delete_bundle_if_unprocessable"},
    FlagName{block_flags::kDiscardBlockIfUnprocessable, "discard_block_if_unprocessable"},
};

template <std::size_t N>
json FlagNames(std::uint64_t flags, const std::array<FlagName, N>& names) {
  json list = json::array();
  std::uint64_t known = 0;
  for (const FlagName& f : names) {
    if ((flags & f.bit) != 0) list.push_back(f.name);
    known |= f.bit;
  }
  if ((flags & ~known) != 0) list.push_back(fmt::format("0x{:x}", flags & ~known));
  return list;
}

constexpr std::uint64_t kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

bool IsTypedBlock(std::uint64_t type) {
  return type == block_type::kPreviousNode || type == block_type::kBundleAge ||
         type == block_type::kHopCount || type == block_type::kIcsPriority;
}

// Reading: each helper names the JSON path of what it rejects. Errors are strings; the first
// one wins.
class Reader {
 public:
  explicit Reader(const DecodeLimits& limits) : limits_(limits) {}
  std::expected<Bundle, std::string> Read(const json& doc);

 private:
  static std::string Path(std::string_view base, std::string_view key) {
    return fmt::format("{}/{}", base, key);
  }

  std::unexpected<std::string> Error(std::string_view path, std::string_view what) const {
    return std::unexpected(fmt::format("{}: {}", path.empty() ? "/" : path, what));
  }

  std::expected<const json*, std::string> Get(const json& obj, std::string_view base, std::string_view key,
                                              bool required) const {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required) return Error(Path(base, key), "missing");
      return nullptr;
    }
    return &*it;
  }

  std::expected<std::uint64_t, std::string> Uint(
      const json& v, std::string_view path,
      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const {
    if (!v.is_number_unsigned()) return Error(path, "expected an unsigned integer");
    const auto value = v.get<std::uint64_t>();
    if (value > max) return Error(path, fmt::format("{} is larger than {}", value, max));
    return value;
  }

  std::expected<std::string_view, std::string> Text(const json& v, std::string_view path) const {
    if (!v.is_string()) return Error(path, "expected a string");
    return std::string_view(v.get_ref<const std::string&>());
  }

  template <std::size_t N>
  std::expected<std::uint64_t, std::string> Flags(const json& v, std::string_view path,
                                                  const std::array<FlagName, N>& names) const {
    if (v.is_number_unsigned()) return v.get<std::uint64_t>();
    if (!v.is_array()) return Error(path, "expected an unsigned integer or a list of flag names");
    std::uint64_t flags = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string item_path = fmt::format("{}/{}", path, i);
      auto name = Text(v[i], item_path);
      if (!name) return std::unexpected(name.error());
      bool found = false;
      for (const FlagName& f : names) {
        if (f.name == *name) {
          flags |= f.bit;
          found = true;
        }
      }
      if (!found) return Error(item_path, fmt::format("unknown flag name '{}'", *name));
    }
    return flags;
  }

  std::expected<CrcType, std::string> Crc(const json& obj, std::string_view base) const {
    auto v = Get(obj, base, "crc_type", true);
    if (!v) return std::unexpected(v.error());
    const std::string path = Path(base, "crc_type");
    auto name = Text(**v, path);
    if (!name) return std::unexpected(name.error());
    auto type = ParseCrcType(*name);
    if (!type) return Error(path, fmt::format("unknown CRC type '{}' (none, crc16 or crc32c)", *name));
    return *type;
  }

  std::expected<Eid, std::string> EidField(const json& obj, std::string_view base,
                                           std::string_view key) const {
    auto v = Get(obj, base, key, true);
    if (!v) return std::unexpected(v.error());
    const std::string path = Path(base, key);
    auto text = Text(**v, path);
    if (!text) return std::unexpected(text.error());
    if (text->size() > limits_.max_eid_bytes + 4) return Error(path, "EID too long");
    auto eid = Eid::Parse(*text);
    if (!eid) return Error(path, eid.error());
    return *eid;
  }

  std::expected<std::uint64_t, std::string> UintField(
      const json& obj, std::string_view base, std::string_view key,
      std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) const {
    auto v = Get(obj, base, key, true);
    if (!v) return std::unexpected(v.error());
    return Uint(**v, Path(base, key), max);
  }

  std::expected<void, std::string> Primary(const json& obj, PrimaryBlock& p) const;
  std::expected<void, std::string> Block(const json& obj, std::string_view base, CanonicalBlock& b) const;

  const DecodeLimits& limits_;
};

std::expected<void, std::string> Reader::Primary(const json& obj, PrimaryBlock& p) const {
  const std::string_view base = "/primary";
  if (!obj.is_object()) return Error(base, "expected an object");
  auto version = Get(obj, base, "version", false);
  if (!version) return std::unexpected(version.error());
  if (*version != nullptr) {
    auto v = Uint(**version, Path(base, "version"));
    if (!v) return std::unexpected(v.error());
    if (*v != 7) return Error(Path(base, "version"), fmt::format("version {} (only 7 is supported)", *v));
  }
  auto flags = Get(obj, base, "flags", true);
  if (!flags) return std::unexpected(flags.error());
  auto flag_bits = Flags(**flags, Path(base, "flags"), kBundleFlagNames);
  if (!flag_bits) return std::unexpected(flag_bits.error());
  p.flags = *flag_bits;
  auto crc = Crc(obj, base);
  if (!crc) return std::unexpected(crc.error());
  p.crc_type = *crc;
  for (auto [key, eid] : {std::pair<std::string_view, Eid*>{"destination", &p.destination},
                          std::pair<std::string_view, Eid*>{"source", &p.source},
                          std::pair<std::string_view, Eid*>{"report_to", &p.report_to}}) {
    auto parsed = EidField(obj, base, key);
    if (!parsed) return std::unexpected(parsed.error());
    *eid = std::move(*parsed);
  }
  auto ms = Get(obj, base, "creation_time_ms", false);
  if (!ms) return std::unexpected(ms.error());
  if (*ms != nullptr) {
    auto v = Uint(**ms, Path(base, "creation_time_ms"), kInt64Max);
    if (!v) return std::unexpected(v.error());
    p.created.time = clock::DtnTime::FromMillis(static_cast<std::int64_t>(*v));
  } else {
    auto utc = Get(obj, base, "creation_time_utc", false);
    if (!utc) return std::unexpected(utc.error());
    if (*utc == nullptr) return Error(Path(base, "creation_time_ms"), "missing (or give creation_time_utc)");
    const std::string path = Path(base, "creation_time_utc");
    auto text = Text(**utc, path);
    if (!text) return std::unexpected(text.error());
    auto t = clock::DtnTime::ParseIso8601(*text);
    if (!t) return Error(path, t.error());
    if (t->millis() < 0) return Error(path, "before the DTN epoch 2000-01-01T00:00:00Z");
    p.created.time = *t;
  }
  auto seq = UintField(obj, base, "sequence");
  if (!seq) return std::unexpected(seq.error());
  p.created.sequence = *seq;
  auto lifetime = UintField(obj, base, "lifetime_ms", kInt64Max);
  if (!lifetime) return std::unexpected(lifetime.error());
  p.lifetime = clock::Duration(static_cast<std::int64_t>(*lifetime));
  const bool fragment = (p.flags & bundle_flags::kIsFragment) != 0;
  for (auto [key, field] :
       {std::pair<std::string_view, std::optional<std::uint64_t>*>{"fragment_offset", &p.fragment_offset},
        std::pair<std::string_view, std::optional<std::uint64_t>*>{"total_adu_length",
                                                                   &p.total_adu_length}}) {
    auto v = Get(obj, base, key, fragment);
    if (!v) return std::unexpected(v.error());
    if (*v == nullptr) continue;
    if (!fragment) return Error(Path(base, key), "present but the flags lack is_fragment");
    auto n = Uint(**v, Path(base, key));
    if (!n) return std::unexpected(n.error());
    *field = *n;
  }
  return {};
}

std::expected<void, std::string> Reader::Block(const json& obj, std::string_view base,
                                               CanonicalBlock& b) const {
  if (!obj.is_object()) return Error(base, "expected an object");
  auto type = UintField(obj, base, "type");
  if (!type) return std::unexpected(type.error());
  b.type = *type;
  auto number = UintField(obj, base, "number");
  if (!number) return std::unexpected(number.error());
  b.number = *number;
  auto flags = Get(obj, base, "flags", true);
  if (!flags) return std::unexpected(flags.error());
  auto flag_bits = Flags(**flags, Path(base, "flags"), kBlockFlagNames);
  if (!flag_bits) return std::unexpected(flag_bits.error());
  b.flags = *flag_bits;
  auto crc = Crc(obj, base);
  if (!crc) return std::unexpected(crc.error());
  b.crc_type = *crc;

  // Any block may give its raw data; the typed fields are the usual form for known types.
  const char* hex_key = b.type == block_type::kPayload ? "payload_hex" : "data_hex";
  auto hex = Get(obj, base, hex_key, false);
  if (!hex) return std::unexpected(hex.error());
  if (*hex != nullptr || !IsTypedBlock(b.type)) {
    const std::string path = Path(base, hex_key);
    if (*hex == nullptr) return Error(path, "missing");
    auto text = Text(**hex, path);
    if (!text) return std::unexpected(text.error());
    auto bytes = HexDecode(*text);
    if (!bytes) return Error(path, bytes.error());
    b.data = std::move(*bytes);
    return {};
  }
  b.data.clear();
  switch (b.type) {
    case block_type::kPreviousNode: {
      auto eid = EidField(obj, base, "previous_node");
      if (!eid) return std::unexpected(eid.error());
      EncodeEid(*eid, b.data);
      break;
    }
    case block_type::kBundleAge: {
      auto age = UintField(obj, base, "bundle_age_ms", kInt64Max);
      if (!age) return std::unexpected(age.error());
      cbor::WriteUint(b.data, *age);
      break;
    }
    case block_type::kHopCount: {
      auto limit = UintField(obj, base, "hop_limit");
      if (!limit) return std::unexpected(limit.error());
      auto count = UintField(obj, base, "hop_count");
      if (!count) return std::unexpected(count.error());
      cbor::WriteHead(b.data, cbor::Major::kArray, 2);
      cbor::WriteUint(b.data, *limit);
      cbor::WriteUint(b.data, *count);
      break;
    }
    case block_type::kIcsPriority: {
      auto v = Get(obj, base, "priority", true);
      if (!v) return std::unexpected(v.error());
      const std::string path = Path(base, "priority");
      auto name = Text(**v, path);
      if (!name) return std::unexpected(name.error());
      auto p = ParsePriority(*name);
      if (!p) return Error(path, fmt::format("unknown priority '{}' (bulk, normal or expedited)", *name));
      cbor::WriteUint(b.data, static_cast<std::uint64_t>(*p));
      break;
    }
    default:
      break;
  }
  return {};
}

std::expected<Bundle, std::string> Reader::Read(const json& doc) {
  if (!doc.is_object()) return Error("", "expected a JSON object with \"primary\" and \"blocks\"");
  Bundle bundle;
  auto primary = Get(doc, "", "primary", true);
  if (!primary) return std::unexpected(primary.error());
  if (auto ok = Primary(**primary, bundle.primary); !ok) return std::unexpected(ok.error());
  auto blocks = Get(doc, "", "blocks", true);
  if (!blocks) return std::unexpected(blocks.error());
  if (!(*blocks)->is_array()) return Error("/blocks", "expected an array");
  if ((*blocks)->size() > limits_.max_blocks) {
    return Error("/blocks", fmt::format("{} blocks; the limit is {}", (*blocks)->size(), limits_.max_blocks));
  }
  for (std::size_t i = 0; i < (*blocks)->size(); ++i) {
    CanonicalBlock& b = bundle.blocks.emplace_back();
    if (auto ok = Block((**blocks)[i], fmt::format("/blocks/{}", i), b); !ok)
      return std::unexpected(ok.error());
  }
  // The block rules (payload last, unique numbers, well-formed typed data, limits) are the
  // decoder's: check the bundle exactly as a receiver will.
  const std::vector<std::uint8_t> bytes = Encode(bundle);
  auto decoded = Decode(bytes, limits_);
  if (!decoded)
    return std::unexpected(fmt::format("the bundle is not valid: {}", decoded.error().ToString()));
  return bundle;
}

json TypedFields(const CanonicalBlock& b, const Bundle& bundle) {
  json fields = json::object();
  switch (b.type) {
    case block_type::kPayload:
      fields["payload_length"] = b.data.size();
      fields["payload_hex"] = HexEncode(b.data);
      return fields;
    case block_type::kPreviousNode:
      if (auto eid = bundle.previous_node()) fields["previous_node"] = eid->ToString();
      break;
    case block_type::kBundleAge:
      if (auto age = bundle.bundle_age()) fields["bundle_age_ms"] = age->count();
      break;
    case block_type::kHopCount:
      if (auto hops = bundle.hop_count()) {
        fields["hop_limit"] = hops->limit;
        fields["hop_count"] = hops->count;
      }
      break;
    case block_type::kIcsPriority: {
      // priority() maps an unparseable block to normal: only name a value that is really there.
      auto p = bundle.priority();
      std::vector<std::uint8_t> expected;
      cbor::WriteUint(expected, static_cast<std::uint64_t>(p));
      if (expected == b.data) fields["priority"] = PriorityName(p);
      break;
    }
    default:
      break;
  }
  if (fields.empty()) fields["data_hex"] = HexEncode(b.data);  // unknown type, or unparseable data
  return fields;
}

}  // namespace

std::string_view BlockTypeName(std::uint64_t type) {
  switch (type) {
    case block_type::kPayload:
      return "payload";
    case block_type::kPreviousNode:
      return "previous_node";
    case block_type::kBundleAge:
      return "bundle_age";
    case block_type::kHopCount:
      return "hop_count";
    case block_type::kIcsPriority:
      return "ics_priority";
    default:
      return "unknown";
  }
}

std::string HexEncode(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    text[2 * i] = kDigits[bytes[i] >> 4];
    text[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return text;
}

std::expected<std::vector<std::uint8_t>, std::string> HexDecode(std::string_view text) {
  std::vector<std::uint8_t> bytes;
  bytes.reserve(text.size() / 2);
  int high = -1;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    int v = -1;
    if (c >= '0' && c <= '9')
      v = c - '0';
    else if (c >= 'a' && c <= 'f')
      v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      v = c - 'A' + 10;
    else if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
      continue;
    else
      return std::unexpected(fmt::format("character {} ('{}') is not a hex digit", i, c));
    if (high < 0) {
      high = v;
    } else {
      bytes.push_back(static_cast<std::uint8_t>(high << 4 | v));
      high = -1;
    }
  }
  if (high >= 0) return std::unexpected("odd number of hex digits");
  return bytes;
}

std::string BundleToJson(const Bundle& bundle, int indent) {
  const PrimaryBlock& p = bundle.primary;
  json primary = {
      {"version", 7},
      {"flags", p.flags},
      {"flag_names", FlagNames(p.flags, kBundleFlagNames)},
      {"crc_type", CrcTypeName(p.crc_type)},
      {"crc_ok", true},
      {"destination", p.destination.ToString()},
      {"source", p.source.ToString()},
      {"report_to", p.report_to.ToString()},
      {"creation_time_ms", p.created.time.millis()},
      {"creation_time_utc", p.created.time.ToIso8601()},
      {"sequence", p.created.sequence},
      {"lifetime_ms", p.lifetime.count()},
  };
  if (p.fragment_offset) primary["fragment_offset"] = *p.fragment_offset;
  if (p.total_adu_length) primary["total_adu_length"] = *p.total_adu_length;
  json blocks = json::array();
  for (const CanonicalBlock& b : bundle.blocks) {
    json block = {
        {"type", b.type},
        {"type_name", BlockTypeName(b.type)},
        {"number", b.number},
        {"flags", b.flags},
        {"flag_names", FlagNames(b.flags, kBlockFlagNames)},
        {"crc_type", CrcTypeName(b.crc_type)},
        {"crc_ok", true},
    };
    block.update(TypedFields(b, bundle));
    blocks.push_back(std::move(block));
  }
  const json doc = {{"primary", std::move(primary)}, {"blocks", std::move(blocks)}};
  return doc.dump(indent);
}

std::expected<Bundle, std::string> BundleFromJson(std::string_view json_text, const DecodeLimits& limits) {
  const std::size_t max_text = 2 * limits.max_bundle_bytes + (64u << 10);
  if (json_text.size() > max_text) {
    return std::unexpected(fmt::format("JSON text is {} bytes; the limit is {}", json_text.size(), max_text));
  }
  // nlohmann reports syntax errors by exception; they stop here.
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    return std::unexpected(fmt::format("JSON syntax error at byte {}: {}", e.byte, e.what()));
  }
  Reader reader(limits);
  return reader.Read(doc);
}

}  // namespace ics::dtn
