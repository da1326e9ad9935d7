// The codec reads untrusted bytes, so it never lets Boost allocate on the input's say-so:
//  - input over kMaxMessageBytes is refused before any parsing;
//  - the archive is opened with no_header, because Boost's own header is a std::string whose stock
//    loader resizes to an unverified length; our "ICS" + version prefix replaces it;
//  - strings are written in Boost's stock text form ("<size> <bytes>") but read by our own loader,
//    which checks the size against the field's limit and the bytes left in the input before it
//    allocates anything;
//  - there are no containers, pointers or polymorphic classes in the messages, so Boost never reads
//    a class name or a count of its own.
// Every archive_exception, stream failure and field check becomes a ProtocolError naming the
// message and the field being read.
//
// The archives are our own (TextWriter, TextReader below) on Boost.Serialization's text archive
// base classes (basic_text_oarchive / basic_text_iarchive: Boost's delimiters, class versions and
// tracking records), so the bytes are exactly those of boost::archive::text_oarchive with
// no_header. What they replace is the stream layer: Boost's text primitives go through
// std::ostream / std::istream and build a std::locale (with a codecvt facet) for every archive,
// which cost more than the rest of a message's encoding; ours format numbers with std::to_chars
// into the output bytes and parse them with std::from_chars from the input span. The reader is
// also stricter than istream's number parsing: digits with an optional '-' (signed fields only),
// no '+', no value out of the field's range; tokens separated by white space as before.
#include "coordinator/protocol.h"

#include <fmt/format.h>

#include <boost/archive/archive_exception.hpp>
#include <boost/archive/basic_archive.hpp>
#include <boost/archive/basic_text_iarchive.hpp>
#include <boost/archive/basic_text_oarchive.hpp>
#include <boost/archive/impl/basic_text_iarchive.ipp>
#include <boost/archive/impl/basic_text_oarchive.ipp>
#include <boost/serialization/item_version_type.hpp>
#include <boost/serialization/level.hpp>
#include <boost/serialization/tracking.hpp>
#include <boost/serialization/version.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <type_traits>

// Version 1 of every message; tracking off (no message is ever serialized through a pointer).
#define ICS_LEASE_MESSAGE(T)                  \
  BOOST_CLASS_VERSION(ics::coordinator::T, 1) \
  BOOST_CLASS_TRACKING(ics::coordinator::T, boost::serialization::track_never)
ICS_LEASE_MESSAGE(Acquire)
ICS_LEASE_MESSAGE(Grant)
ICS_LEASE_MESSAGE(Queued)
ICS_LEASE_MESSAGE(Deny)
ICS_LEASE_MESSAGE(Renew)
ICS_LEASE_MESSAGE(Renewed)
ICS_LEASE_MESSAGE(Release)
ICS_LEASE_MESSAGE(Released)
ICS_LEASE_MESSAGE(ExpiredNotice)
ICS_LEASE_MESSAGE(StaleEpoch)
ICS_LEASE_MESSAGE(Use)
ICS_LEASE_MESSAGE(UseAccepted)
ICS_LEASE_MESSAGE(UseRejected)

namespace ics::coordinator {
namespace {

constexpr char kMagic[3] = {'I', 'C', 'S'};
constexpr std::uint8_t kFormatVersion = 1;
constexpr std::size_t kPrefixBytes = 4;
// Written after the message. A text archive's last field is a number, and a number cut short is
// still a number: without the end mark, a truncated message could decode with a different value.
constexpr std::uint32_t kEndMark = 0x1C5E0Du;

// The largest |time| or duration accepted: DtnTime::Max() leaves room for adding two of them.
constexpr std::int64_t kMaxMillis = clock::DtnTime::Max().millis();

// A field check that failed while reading: thrown inside the archive, caught in Decode.
struct FieldError : std::exception {
  FieldError(ProtocolError::Kind k, std::string m) : kind(k), message(std::move(m)) {}
  const char* what() const noexcept override { return message.c_str(); }
  ProtocolError::Kind kind;
  std::string message;
};

class TextReader;

// What the field loaders need to name where an error is: the message and field being read, and
// the reader (for the offset). It lives in Decode's frame, so the catch handlers can still name the
// field after the archive is gone.
struct DecodeContext {
  const TextReader* reader = nullptr;
  std::size_t total = 0;
  std::string_view message = "envelope";
  std::string_view field = "type";

  std::size_t Offset() const;
  std::string Where() const { return fmt::format("{}.{}", message, field); }
};

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// The type a Boost framework value (class_id_type, version_type, tracking_type ...) is written as:
// the one it converts to (their base_type, private in Boost's classes).
template <class T>
struct WireInt;
template <>
struct WireInt<boost::archive::tracking_type> {
  using type = bool;
};
template <>
struct WireInt<boost::archive::version_type> {
  using type = std::uint_least32_t;
};
template <>
struct WireInt<boost::archive::class_id_type> {
  using type = std::int_least16_t;
};
template <>
struct WireInt<boost::archive::class_id_reference_type> {
  using type = std::int_least16_t;
};
template <>
struct WireInt<boost::archive::object_id_type> {
  using type = std::uint_least32_t;
};
template <>
struct WireInt<boost::archive::object_reference_type> {
  using type = std::uint_least32_t;
};
template <>
struct WireInt<boost::serialization::library_version_type> {
  using type = std::uint_least16_t;
};
template <>
struct WireInt<boost::serialization::item_version_type> {
  using type = unsigned int;
};

// Boost's text_oarchive with no_header, byte for byte, writing into a byte vector: the base class
// (basic_text_oarchive) writes the delimiters and Boost's class records; this class writes the
// primitives as text_oarchive_impl and basic_text_oprimitive do (numbers in decimal, bool as 0/1,
// a string as "<size> <bytes>"), without a stream or a locale.
class TextWriter : public boost::archive::basic_text_oarchive<TextWriter> {
 public:
  explicit TextWriter(std::vector<std::uint8_t>& out)
      : boost::archive::basic_text_oarchive<TextWriter>(boost::archive::no_header), out_(out) {}
  void put(char c) { out_.push_back(static_cast<std::uint8_t>(c)); }
  void save_binary(const void*, std::size_t) { std::abort(); }  // no message has binary fields

 private:
  friend class boost::archive::detail::interface_oarchive<TextWriter>;
  friend class boost::archive::basic_text_oarchive<TextWriter>;
  friend class boost::archive::save_access;

  template <class T>
  void save(const T& t) {
    this->newtoken();
    if constexpr (std::is_same_v<T, bool>) {
      put(t ? '1' : '0');
    } else if constexpr (std::is_same_v<T, char> || std::is_same_v<T, signed char>) {
      Number(static_cast<short>(t));  // Boost writes characters as small integers
    } else if constexpr (std::is_same_v<T, unsigned char>) {
      Number(static_cast<unsigned short>(t));
    } else if constexpr (std::is_integral_v<T>) {
      Number(t);
    } else {
      using W = typename WireInt<T>::type;
      if constexpr (std::is_same_v<W, bool>) {
        put(static_cast<bool>(t) ? '1' : '0');
      } else {
        Number(static_cast<W>(t));
      }
    }
  }
  void save(const std::string& s) {
    save(s.size());
    this->newtoken();
    out_.insert(out_.end(), s.begin(), s.end());
  }
  template <class Int>
  void Number(Int value) {
    char buf[24];
    const auto result = std::to_chars(buf, buf + sizeof buf, value);
    out_.insert(out_.end(), buf, result.ptr);
  }

  std::vector<std::uint8_t>& out_;
};

// Reads what TextWriter (or Boost's own text_oarchive, no_header) wrote, from a span. Every
// failure throws FieldError naming the field being read (DecodeContext).
class TextReader : public boost::archive::basic_text_iarchive<TextReader> {
 public:
  TextReader(std::span<const char> in, DecodeContext& context)
      : boost::archive::basic_text_iarchive<TextReader>(boost::archive::no_header),
        in_(in),
        context_(context) {}
  DecodeContext& context() { return context_; }
  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return in_.size() - pos_; }
  // The next byte, if any (no white space is skipped).
  std::optional<char> Get() {
    if (pos_ >= in_.size()) return std::nullopt;
    return in_[pos_++];
  }
  // The next n raw bytes. REQUIRES: n <= remaining().
  std::string_view Take(std::size_t n) {
    const std::string_view view(in_.data() + pos_, n);
    pos_ += n;
    return view;
  }
  // Skips white space; true when nothing else is left.
  bool AtEnd() {
    while (pos_ < in_.size() && IsSpace(in_[pos_])) ++pos_;
    return pos_ >= in_.size();
  }
  void load_binary(void*, std::size_t) { Fail("binary data is not part of the protocol"); }

 private:
  friend class boost::archive::detail::interface_iarchive<TextReader>;
  friend class boost::archive::basic_text_iarchive<TextReader>;
  friend class boost::archive::load_access;

  [[noreturn]] void Fail(std::string_view what) const {
    throw FieldError(ProtocolError::Kind::kMalformed,
                     fmt::format("{}: {} at offset {}", context_.Where(), what, pos_));
  }
  template <class Int>
  void Number(Int& value) {
    AtEnd();
    const char* first = in_.data() + pos_;
    const char* last = in_.data() + in_.size();
    if (first == last) Fail("input ends where a number was expected");
    const auto result = std::from_chars(first, last, value);
    if (result.ec == std::errc::result_out_of_range) Fail("number out of range");
    if (result.ec != std::errc{}) Fail("no number");
    pos_ += static_cast<std::size_t>(result.ptr - first);
  }
  template <class T>
  void load(T& t) {
    if constexpr (std::is_same_v<T, bool>) {
      LoadBool(t);
    } else if constexpr (std::is_same_v<T, char> || std::is_same_v<T, signed char>) {
      short v = 0;
      Number(v);
      if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) Fail("number out of range");
      t = static_cast<T>(v);
    } else if constexpr (std::is_same_v<T, unsigned char>) {
      unsigned short v = 0;
      Number(v);
      if (v > std::numeric_limits<T>::max()) Fail("number out of range");
      t = static_cast<T>(v);
    } else if constexpr (std::is_integral_v<T>) {
      Number(t);
    } else {
      using W = typename WireInt<T>::type;
      W& w = t;  // Boost's framework types convert to a reference to their value
      if constexpr (std::is_same_v<W, bool>) {
        LoadBool(w);
      } else {
        Number(w);
      }
    }
  }
  void LoadBool(bool& b) {
    unsigned v = 0;
    Number(v);
    if (v > 1) Fail("not 0 or 1");
    b = v == 1;
  }
  // Only a class name would be read as a whole string (never in this protocol); Str() reads the
  // message's strings with its bounds.
  void load(std::string&) { Fail("a class name is not part of the protocol"); }

  std::span<const char> in_;
  std::size_t pos_ = 0;
  DecodeContext& context_;
};

std::size_t DecodeContext::Offset() const { return reader == nullptr ? total : reader->offset(); }

template <class Archive>
DecodeContext& Context(Archive& ar) {
  return ar.context();
}

// --- field codecs ------------------------------------------------------------------------------

template <class Archive, class Int>
void Num(Archive& ar, Int& value, std::string_view field) {
  static_assert(std::is_integral_v<Int> && sizeof(Int) >= 4, "write small integers as uint32");
  if constexpr (Archive::is_saving::value) {
    const Int copy = value;
    ar << copy;
  } else {
    Context(ar).field = field;
    ar >> value;
  }
}

template <class Archive>
void Str(Archive& ar, std::string& value, std::size_t max_bytes, std::string_view field) {
  if constexpr (Archive::is_saving::value) {
    const std::string& copy = value;
    ar << copy;  // stock text form: "<size> <bytes>"
  } else {
    DecodeContext& ctx = Context(ar);
    ctx.field = field;
    std::size_t size = 0;
    ar >> size;
    if (size > max_bytes) {
      throw FieldError(
          ProtocolError::Kind::kFieldTooLarge,
          fmt::format("{}: length {} exceeds the limit of {} bytes", ctx.Where(), size, max_bytes));
    }
    if (ar.Get() != ' ') {
      throw FieldError(
          ProtocolError::Kind::kMalformed,
          fmt::format("{}: no separator after the length at offset {}", ctx.Where(), ctx.Offset()));
    }
    if (size > ar.remaining()) {
      throw FieldError(
          ProtocolError::Kind::kMalformed,
          fmt::format("{}: length {} runs past the end of the input ({} bytes left at offset {})",
                      ctx.Where(), size, ar.remaining(), ctx.Offset()));
    }
    value.assign(ar.Take(size));  // bounded by max_bytes and by the input itself
  }
}

template <class Archive>
void Millis(Archive& ar, clock::Duration& value, std::string_view field) {
  std::int64_t ms = value.count();
  Num(ar, ms, field);
  if constexpr (Archive::is_loading::value) {
    if (ms < 0 || ms > kMaxMillis) {
      throw FieldError(ProtocolError::Kind::kInvalid, fmt::format("{}: duration {} ms is outside 0..{}",
                                                                  Context(ar).Where(), ms, kMaxMillis));
    }
    value = clock::Duration(ms);
  }
}

template <class Archive>
void Time(Archive& ar, clock::DtnTime& value, std::string_view field) {
  std::int64_t ms = value.millis();
  Num(ar, ms, field);
  if constexpr (Archive::is_loading::value) {
    if (ms < -kMaxMillis || ms > kMaxMillis) {
      throw FieldError(ProtocolError::Kind::kInvalid,
                       fmt::format("{}: DTN time {} ms is out of range", Context(ar).Where(), ms));
    }
    value = clock::DtnTime::FromMillis(ms);
  }
}

template <class Archive>
void Reason(Archive& ar, DenyReason& value) {
  std::uint32_t raw = static_cast<std::uint32_t>(value);
  Num(ar, raw, "reason");
  if constexpr (Archive::is_loading::value) {
    if (raw < static_cast<std::uint32_t>(DenyReason::kTermTooShort) ||
        raw > static_cast<std::uint32_t>(DenyReason::kOverloaded)) {
      throw FieldError(ProtocolError::Kind::kInvalid,
                       fmt::format("{}: unknown deny reason {}", Context(ar).Where(), raw));
    }
    value = static_cast<DenyReason>(raw);
  }
}

// Boost hands the version found in the input to serialize() without checking it: a message from a
// newer class version (fields this build does not know) is refused here.
constexpr unsigned kMessageVersion = 1;
template <class Archive>
void CheckVersion(Archive& ar, unsigned version) {
  if constexpr (Archive::is_loading::value) {
    if (version != kMessageVersion) {
      throw FieldError(ProtocolError::Kind::kUnsupportedVersion,
                       fmt::format("{}: class version {} (this build reads version {})", Context(ar).message,
                                   version, kMessageVersion));
    }
  }
}

// The header is written inline in each message (it has no class record of its own): a change to
// it is a change to every message's version.
template <class Archive>
void Fields(Archive& ar, Header& h) {
  Str(ar, h.resource.tenant, kMaxNameBytes, "tenant");
  Str(ar, h.resource.resource, kMaxNameBytes, "resource");
  Num(ar, h.epoch, "epoch");
  Num(ar, h.request_id, "request_id");
  Num(ar, h.sender, "sender");
}

}  // namespace

// Found by Boost through argument-dependent lookup, so they live in ics::coordinator itself.
// --- messages: version 1 of each ---------------------------------------------------------------
// A later version adds fields at the end and reads them only when `version` says they are there.

template <class A>
void serialize(A& ar, Acquire& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Millis(ar, m.term, "term");
  Time(ar, m.deadline, "deadline");
}
template <class A>
void serialize(A& ar, Grant& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
  Millis(ar, m.term, "term");
  Time(ar, m.expires, "expires");
  Str(ar, m.policy, kMaxReasonBytes, "policy");
}
template <class A>
void serialize(A& ar, Queued& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.position, "position");
}
template <class A>
void serialize(A& ar, Deny& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Reason(ar, m.reason);
  Str(ar, m.detail, kMaxReasonBytes, "detail");
}
template <class A>
void serialize(A& ar, Renew& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
  Millis(ar, m.term, "term");
}
template <class A>
void serialize(A& ar, Renewed& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
  Millis(ar, m.term, "term");
  Time(ar, m.expires, "expires");
  Str(ar, m.policy, kMaxReasonBytes, "policy");
}
template <class A>
void serialize(A& ar, Release& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
}
template <class A>
void serialize(A& ar, Released& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
}
template <class A>
void serialize(A& ar, ExpiredNotice& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
}
template <class A>
void serialize(A& ar, StaleEpoch& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.current, "current");
}
template <class A>
void serialize(A& ar, Use& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
  Str(ar, m.operation, kMaxReasonBytes, "operation");
}
template <class A>
void serialize(A& ar, UseAccepted& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
}
template <class A>
void serialize(A& ar, UseRejected& m, unsigned version) {
  CheckVersion(ar, version);
  Fields(ar, m.h);
  Num(ar, m.token, "token");
  Num(ar, m.highest_seen, "highest_seen");
  Str(ar, m.detail, kMaxReasonBytes, "detail");
}

namespace {

constexpr std::string_view kNames[] = {"acquire", "grant",        "queued",      "deny",    "renew",
                                       "renewed", "release",      "released",    "expired", "stale_epoch",
                                       "use",     "use_accepted", "use_rejected"};
static_assert(std::size(kNames) == std::variant_size_v<Message>);

// Reads the alternative with index `index` (already checked < variant size).
template <std::size_t I = 0>
void LoadAlternative(TextReader& ar, std::size_t index, Message& out) {
  if constexpr (I < std::variant_size_v<Message>) {
    if (index == I) {
      std::variant_alternative_t<I, Message> message;
      ar >> message;
      out = std::move(message);
    } else {
      LoadAlternative<I + 1>(ar, index, out);
    }
  }
}

bool NameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
}

std::optional<std::string> CheckNamePart(std::string_view part, std::string_view what) {
  if (part.empty()) return fmt::format("{} is empty", what);
  if (part.size() > kMaxNameBytes) return fmt::format("{} is longer than {} bytes", what, kMaxNameBytes);
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (!NameChar(part[i])) {
      return fmt::format("{} has a character outside [A-Za-z0-9._:-] at position {}", what, i);
    }
  }
  return std::nullopt;
}

ProtocolError Fail(ProtocolError::Kind kind, std::string message) {
  return ProtocolError{kind, std::move(message)};
}

}  // namespace

// --- the public functions ----------------------------------------------------------------------

std::expected<ResourceName, std::string> ParseResourceName(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return std::unexpected(fmt::format("resource name '{}': expected tenant/resource", text));
  }
  ResourceName name{std::string(text.substr(0, slash)), std::string(text.substr(slash + 1))};
  if (auto bad = CheckNamePart(name.tenant, "tenant")) {
    return std::unexpected(fmt::format("resource name '{}': {}", text, *bad));
  }
  if (auto bad = CheckNamePart(name.resource, "resource")) {
    return std::unexpected(fmt::format("resource name '{}': {}", text, *bad));
  }
  return name;
}

std::string_view DenyReasonName(DenyReason reason) {
  switch (reason) {
    case DenyReason::kTermTooShort:
      return "term_too_short";
    case DenyReason::kDeadlinePassed:
      return "deadline_passed";
    case DenyReason::kNotHolder:
      return "not_holder";
    case DenyReason::kExpired:
      return "expired";
    case DenyReason::kBadRequest:
      return "bad_request";
    case DenyReason::kOverloaded:
      return "overloaded";
  }
  return "unknown";
}

std::string_view MessageName(const Message& message) { return kNames[message.index()]; }

const Header& HeaderOf(const Message& message) {
  return std::visit([](const auto& m) -> const Header& { return m.h; }, message);
}
Header& HeaderOf(Message& message) {
  return std::visit([](auto& m) -> Header& { return m.h; }, message);
}

std::vector<std::uint8_t> Encode(const Message& message) {
  std::vector<std::uint8_t> out;
  out.reserve(128);
  out.insert(out.end(), kMagic, kMagic + sizeof kMagic);
  out.push_back(kFormatVersion);
  TextWriter ar(out);
  const std::uint32_t type = static_cast<std::uint32_t>(message.index());
  ar << type;
  std::visit([&ar](const auto& m) { ar << m; }, message);
  const std::uint32_t end = kEndMark;
  ar << end;
  return out;
}

std::expected<Message, ProtocolError> Decode(std::span<const std::uint8_t> bytes) {
  using Kind = ProtocolError::Kind;
  if (bytes.size() > kMaxMessageBytes) {
    return std::unexpected(Fail(Kind::kTooLarge, fmt::format("message of {} bytes exceeds the limit of {}",
                                                             bytes.size(), kMaxMessageBytes)));
  }
  if (bytes.size() < kPrefixBytes || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return std::unexpected(
        Fail(Kind::kBadMagic, "not a lease protocol message: it does not start with \"ICS\""));
  }
  if (bytes[3] != kFormatVersion) {
    return std::unexpected(
        Fail(Kind::kUnsupportedVersion,
             fmt::format("lease protocol format version {} (this build reads {})",
                         static_cast<unsigned>(bytes[3]), static_cast<unsigned>(kFormatVersion))));
  }
  const auto body = bytes.subspan(kPrefixBytes);
  DecodeContext context;
  context.total = body.size();
  DecodeContext* const ctx = &context;
  try {
    TextReader ar(std::span<const char>(reinterpret_cast<const char*>(body.data()), body.size()), context);
    context.reader = &ar;
    std::uint32_t type = 0;
    ar >> type;
    if (type >= std::variant_size_v<Message>) {
      return std::unexpected(
          Fail(Kind::kInvalid, fmt::format("envelope.type: unknown message type {}", type)));
    }
    ctx->message = kNames[type];
    Message message;
    LoadAlternative(ar, type, message);
    ctx->field = "end mark";
    std::uint32_t end = 0;
    ar >> end;
    if (end != kEndMark) {
      return std::unexpected(
          Fail(Kind::kMalformed,
               fmt::format("{}: end mark {} is not {} (truncated or damaged)", kNames[type], end, kEndMark)));
    }
    // Nothing but white space may follow the message.
    if (!ar.AtEnd()) {
      return std::unexpected(
          Fail(Kind::kMalformed, fmt::format("{}: trailing bytes after the message at offset {}",
                                             kNames[type], kPrefixBytes + ar.offset())));
    }
    // Names must be what ParseResourceName accepts: they become database keys and log text.
    const ResourceName& name = HeaderOf(message).resource;
    if (auto bad = CheckNamePart(name.tenant, "tenant")) {
      return std::unexpected(Fail(Kind::kInvalid, fmt::format("{}.tenant: {}", kNames[type], *bad)));
    }
    if (auto bad = CheckNamePart(name.resource, "resource")) {
      return std::unexpected(Fail(Kind::kInvalid, fmt::format("{}.resource: {}", kNames[type], *bad)));
    }
    return message;
  } catch (const FieldError& e) {
    return std::unexpected(Fail(e.kind, e.message));
  } catch (const boost::archive::archive_exception& e) {
    const std::string where = ctx->Where();
    const Kind kind = e.code == boost::archive::archive_exception::unsupported_class_version
                          ? Kind::kUnsupportedVersion
                          : Kind::kMalformed;
    return std::unexpected(Fail(kind, fmt::format("{}: archive error: {}", where, e.what())));
  } catch (const std::exception& e) {
    const std::string where = ctx->Where();
    return std::unexpected(Fail(Kind::kMalformed, fmt::format("{}: {}", where, e.what())));
  }
}

}  // namespace ics::coordinator
