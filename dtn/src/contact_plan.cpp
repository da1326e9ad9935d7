#include "dtn/contact_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <system_error>
#include <tuple>

namespace ics::dtn {
namespace {

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "ics::dtn contact plan: broken invariant: %s\n", message.c_str());
  std::abort();
}

void CheckContact(const Contact& c) {
  if (!(c.start < c.end) || c.from == 0 || c.to == 0 || c.rate_bytes_per_s == 0 || !(c.confidence >= 0.0) ||
      !(c.confidence <= 1.0)) {
    Die(fmt::format("invalid contact {} -> {} [{}, {}) rate {} confidence {}", c.from, c.to, c.start.millis(),
                    c.end.millis(), c.rate_bytes_per_s, c.confidence));
  }
}

void CheckRange(const clock::RangeEntry& r) {
  if (!(r.start < r.end) || r.a == 0 || r.b == 0 || r.owlt < Duration(0)) {
    Die(fmt::format("invalid range {} - {} [{}, {}) owlt {} ms", r.a, r.b, r.start.millis(), r.end.millis(),
                    r.owlt.count()));
  }
}

auto ContactKey(const Contact& c) {
  return std::make_tuple(c.from, c.start, c.to, c.end, c.rate_bytes_per_s, c.confidence);
}

// ---- Parsing ----------------------------------------------------------------------------

struct Token {
  std::string_view text;
  int column = 0;  // 1-based
};

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Splits a line into tokens, stopping at a token that starts with '#'. At most kTokensMax
// tokens are kept: more than any valid line has, so the caller reports the first extra one.
constexpr std::size_t kTokensMax = 9;
std::size_t Tokenize(std::string_view line, Token (&tokens)[kTokensMax]) {
  std::size_t count = 0;
  std::size_t i = 0;
  while (i < line.size() && count < kTokensMax) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i >= line.size() || line[i] == '#') break;
    std::size_t begin = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    tokens[count++] = Token{line.substr(begin, i - begin), static_cast<int>(begin) + 1};
  }
  return count;
}

struct FieldError {
  std::string message;
};

std::expected<std::uint64_t, FieldError> ParseUnsigned(std::string_view text, std::string_view what) {
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return std::unexpected(
        FieldError{fmt::format("{} '{}' is out of range (at most {})", what, text, UINT64_MAX)});
  }
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty() || text[0] == '-' ||
      text[0] == '+') {
    return std::unexpected(
        FieldError{fmt::format("{} must be a non-negative integer (got '{}')", what, text)});
  }
  return value;
}

// "12", "12.5", "0.125": seconds with at most millisecond precision, at most kPlanSecondsMax.
std::expected<std::int64_t, FieldError> ParseSecondsAsMillis(std::string_view text, std::string_view what) {
  auto bad = [&] {
    return std::unexpected(FieldError{fmt::format(
        "{} must be seconds, an integer or a decimal with up to 3 decimals (got '{}')", what, text)});
  };
  std::size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() || (dot != std::string_view::npos && (frac.empty() || frac.size() > 3))) return bad();
  auto all_digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!all_digits(whole) || !all_digits(frac)) return bad();
  std::uint64_t seconds = 0;
  auto [ptr, ec] = std::from_chars(whole.data(), whole.data() + whole.size(), seconds);
  if (ec != std::errc() || seconds > static_cast<std::uint64_t>(kPlanSecondsMax)) {
    return std::unexpected(
        FieldError{fmt::format("{} '{}' is out of range (at most {} s)", what, text, kPlanSecondsMax)});
  }
  (void)ptr;
  std::int64_t millis = static_cast<std::int64_t>(seconds) * 1000;
  std::int64_t scale = 100;
  for (char c : frac) {
    millis += (c - '0') * scale;
    scale /= 10;
  }
  return millis;
}

// ION's absolute form: yyyy/mm/dd-hh:mm:ss (UTC).
std::expected<DtnTime, FieldError> ParseIonAbsolute(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return std::unexpected(
        FieldError{fmt::format("bad time '{}': {} (expected yyyy/mm/dd-hh:mm:ss)", text, why)});
  };
  if (text.size() != 19 || text[4] != '/' || text[7] != '/' || text[10] != '-' || text[13] != ':' ||
      text[16] != ':') {
    return bad("wrong layout");
  }
  auto num = [&](std::size_t pos, std::size_t len, int& out) {
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!num(0, 4, year) || !num(5, 2, month) || !num(8, 2, day) || !num(11, 2, hour) || !num(14, 2, minute) ||
      !num(17, 2, second)) {
    return bad("not a number");
  }
  std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                                  std::chrono::day(static_cast<unsigned>(day))};
  if (year < 1970 || !ymd.ok()) return bad("no such date");
  if (hour > 23 || minute > 59 || second > 59) return bad("no such time of day");
  std::int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  std::int64_t unix_ms = ((days * 24 + hour) * 60 + minute) * 60'000 + second * 1000;
  return DtnTime::FromUnixMillis(unix_ms);
}

std::expected<DtnTime, FieldError> ParseTime(std::string_view text, DtnTime epoch, std::string_view what) {
  if (!text.empty() && text[0] == '+') {
    auto ms = ParseSecondsAsMillis(text.substr(1), what);
    if (!ms) return std::unexpected(ms.error());
    DtnTime t = epoch + Duration(*ms);
    if (t > DtnTime::Max() || t < DtnTime::FromMillis(-DtnTime::Max().millis())) {
      return std::unexpected(
          FieldError{fmt::format("{} '{}' is out of range from the plan epoch", what, text)});
    }
    return t;
  }
  if (text.find('/') != std::string_view::npos) return ParseIonAbsolute(text);
  auto iso = DtnTime::ParseIso8601(text);
  if (!iso) {
    return std::unexpected(FieldError{fmt::format(
        "{} must be +SECONDS, yyyy/mm/dd-hh:mm:ss or ISO-8601 UTC (got '{}': {})", what, text, iso.error())});
  }
  if (*iso > DtnTime::Max() || *iso < DtnTime::FromMillis(-DtnTime::Max().millis())) {
    return std::unexpected(FieldError{fmt::format("{} '{}' is out of range", what, text)});
  }
  return *iso;
}

std::expected<NodeNumber, FieldError> ParseNode(std::string_view text, std::string_view what) {
  auto n = ParseUnsigned(text, what);
  if (!n) return n;
  if (*n == 0)
    return std::unexpected(FieldError{fmt::format("{} node number must be > 0 (got '{}')", what, text)});
  return n;
}

class LineParser {
 public:
  LineParser(std::string_view source, int line_no, std::string_view line, DtnTime epoch)
      : source_(source), line_no_(line_no), line_(line), epoch_(epoch) {}

  // Parses one line into contacts / ranges. Blank and comment lines add nothing.
  std::expected<void, PlanError> Parse(std::vector<Contact>& contacts,
                                       std::vector<clock::RangeEntry>& ranges) {
    count_ = Tokenize(line_, tokens_);
    if (count_ == 0) return {};
    if (tokens_[0].text != "a") {
      return Fail(
          0, fmt::format("unknown command '{}': a contact plan holds only 'a contact' and 'a range' lines",
                         tokens_[0].text));
    }
    if (count_ < 2) return Missing("'contact' or 'range' after 'a'");
    bool is_contact = tokens_[1].text == "contact";
    if (!is_contact && tokens_[1].text != "range") {
      return Fail(1, fmt::format("unknown object '{}': expected 'contact' or 'range'", tokens_[1].text));
    }
    static constexpr const char* kFieldNames[] = {"START time", "END time", "FROM node", "TO node"};
    for (std::size_t i = 0; i < 4; ++i) {
      if (count_ < 3 + i) return Missing(kFieldNames[i]);
    }
    if (count_ < 7) return Missing(is_contact ? "RATE (bytes/s)" : "OWLT (seconds)");
    std::size_t fields_max = is_contact ? 8 : 7;
    if (count_ > fields_max) {
      return Fail(fields_max, fmt::format("unexpected '{}' after the last field", tokens_[fields_max].text));
    }

    auto start = ParseTime(tokens_[2].text, epoch_, "START");
    if (!start) return Fail(2, start.error().message);
    auto end = ParseTime(tokens_[3].text, epoch_, "END");
    if (!end) return Fail(3, end.error().message);
    if (!(*start < *end)) {
      return Fail(3, fmt::format("END '{}' must be after START '{}'", tokens_[3].text, tokens_[2].text));
    }
    auto from = ParseNode(tokens_[4].text, "FROM");
    if (!from) return Fail(4, from.error().message);
    auto to = ParseNode(tokens_[5].text, "TO");
    if (!to) return Fail(5, to.error().message);

    if (is_contact) {
      auto rate = ParseUnsigned(tokens_[6].text, "RATE");
      if (!rate) return Fail(6, rate.error().message);
      if (*rate == 0) return Fail(6, "RATE must be > 0 bytes/s");
      double confidence = 1.0;
      if (count_ == 8) {
        std::string_view text = tokens_[7].text;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), confidence);
        if (ec != std::errc() || ptr != text.data() + text.size() || !(confidence >= 0.0) ||
            !(confidence <= 1.0)) {
          return Fail(7, fmt::format("CONFIDENCE must be a number in [0, 1] (got '{}')", text));
        }
      }
      contacts.push_back(Contact{*start, *end, *from, *to, *rate, confidence});
    } else {
      auto owlt = ParseSecondsAsMillis(tokens_[6].text, "OWLT");
      if (!owlt) return Fail(6, owlt.error().message);
      ranges.push_back(clock::RangeEntry{*start, *end, *from, *to, Duration(*owlt)});
    }
    return {};
  }

 private:
  std::unexpected<PlanError> Fail(std::size_t token, std::string message) const {
    return std::unexpected(
        PlanError{std::string(source_), line_no_, tokens_[token].column, std::move(message)});
  }
  std::unexpected<PlanError> Missing(std::string_view what) const {
    const Token& last = tokens_[count_ - 1];
    int column = last.column + static_cast<int>(last.text.size());  // just after it
    return std::unexpected(
        PlanError{std::string(source_), line_no_, column, fmt::format("missing {}", what)});
  }

  std::string_view source_;
  int line_no_;
  std::string_view line_;
  DtnTime epoch_;
  Token tokens_[kTokensMax];
  std::size_t count_ = 0;
};

}  // namespace

std::string PlanError::ToString() const {
  if (line <= 0) return fmt::format("{}: {}", source, message);
  return fmt::format("{}:{}:{}: {}", source, line, column, message);
}

// ---- ContactPlan ------------------------------------------------------------------------

ContactPlan::ContactPlan(std::vector<Contact> contacts, std::vector<clock::RangeEntry> ranges)
    : contacts_(std::move(contacts)), ranges_(std::move(ranges)) {
  for (const Contact& c : contacts_) CheckContact(c);
  for (const clock::RangeEntry& r : ranges_) CheckRange(r);
  // The key covers every field, so contacts of equal keys are identical and their order is moot;
  // a plan rebuilt from another's contacts (the replayer adds ranges) is sorted already.
  const auto by_key = [](const Contact& x, const Contact& y) { return ContactKey(x) < ContactKey(y); };
  if (!std::is_sorted(contacts_.begin(), contacts_.end(), by_key)) SortContacts();
  range_table_ = clock::RangeTable(ranges_);
  ReindexContacts();
  ReindexRanges();
  ReindexContactPairs();
}

// The same order as sorting the contacts by ContactKey, cheaper for a long plan: the contacts
// are grouped by sender (a stable counting pass: a plan has few senders), then each group that
// is not already in order (a plan written sender by sender, or period after period, mostly is)
// is sorted as 32-byte (start, to, index) records compared as integers, only records equal in
// both comparing the rest of the key; the contacts are moved once into place.
void ContactPlan::SortContacts() {
  struct Record {
    std::int64_t start_ms;
    NodeNumber to;
    std::size_t index;
  };
  std::vector<NodeNumber> senders;  // sorted, unique
  for (const Contact& c : contacts_) {
    auto it = std::lower_bound(senders.begin(), senders.end(), c.from);
    if (it == senders.end() || *it != c.from) senders.insert(it, c.from);
  }
  std::vector<std::size_t> group_begin(senders.size() + 1, 0);
  std::vector<std::uint32_t> group_of(contacts_.size());
  for (std::size_t i = 0; i < contacts_.size(); ++i) {
    const auto g = static_cast<std::uint32_t>(
        std::lower_bound(senders.begin(), senders.end(), contacts_[i].from) - senders.begin());
    group_of[i] = g;
    ++group_begin[g + 1];
  }
  for (std::size_t g = 0; g < senders.size(); ++g) group_begin[g + 1] += group_begin[g];
  std::vector<Record> order(contacts_.size());
  {
    std::vector<std::size_t> next(group_begin.begin(), group_begin.end() - 1);
    for (std::size_t i = 0; i < contacts_.size(); ++i) {
      order[next[group_of[i]]++] = Record{contacts_[i].start.millis(), contacts_[i].to, i};
    }
  }
  const auto less = [this](const Record& x, const Record& y) {
    if (x.start_ms != y.start_ms) return x.start_ms < y.start_ms;
    if (x.to != y.to) return x.to < y.to;
    return ContactKey(contacts_[x.index]) < ContactKey(contacts_[y.index]);
  };
  for (std::size_t g = 0; g < senders.size(); ++g) {
    const auto first = order.begin() + static_cast<std::ptrdiff_t>(group_begin[g]);
    const auto last = order.begin() + static_cast<std::ptrdiff_t>(group_begin[g + 1]);
    if (!std::is_sorted(first, last, less)) std::sort(first, last, less);
  }
  // Into place along the permutation's cycles (no second plan-sized array to fault in); a
  // record whose contact is in place points at its own position.
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i].index == i) continue;
    const Contact held = contacts_[i];
    std::size_t j = i;
    while (order[j].index != i) {
      const std::size_t k = order[j].index;
      contacts_[j] = contacts_[k];
      order[j].index = j;
      j = k;
    }
    contacts_[j] = held;
    order[j].index = j;
  }
}

void ContactPlan::AddContact(const Contact& contact) {
  CheckContact(contact);
  auto pos =
      std::upper_bound(contacts_.begin(), contacts_.end(), contact,
                       [](const Contact& x, const Contact& y) { return ContactKey(x) < ContactKey(y); });
  contacts_.insert(pos, contact);
  ReindexContacts();
  ReindexContactPairs();
}

void ContactPlan::ReindexContacts() {
  end_max_.resize(contacts_.size());
  from_groups_.clear();
  for (std::size_t i = 0; i < contacts_.size(); ++i) {
    const Contact& c = contacts_[i];
    if (from_groups_.empty() || from_groups_.back().from != c.from) {
      from_groups_.push_back(FromGroup{c.from, i, i});
      end_max_[i] = c.end;
    } else {
      end_max_[i] = std::max(c.end, end_max_[i - 1]);
    }
    from_groups_.back().end = i + 1;
  }
  block_end_max_.assign((contacts_.size() + kEndBlock - 1) / kEndBlock,
                        DtnTime::FromMillis(std::numeric_limits<std::int64_t>::min()));
  for (std::size_t i = 0; i < contacts_.size(); ++i) {
    block_end_max_[i / kEndBlock] = std::max(block_end_max_[i / kEndBlock], contacts_[i].end);
  }
  // A plan has few receivers and many contacts: insert each new one into the sorted set (rather
  // than sorting every contact's receiver).
  destinations_.clear();
  for (const Contact& c : contacts_) {
    auto it = std::lower_bound(destinations_.begin(), destinations_.end(), c.to);
    if (it == destinations_.end() || *it != c.to) destinations_.insert(it, c.to);
  }
}

const ContactPlan::FromGroup* ContactPlan::GroupOf(NodeNumber from) const {
  auto it = std::lower_bound(from_groups_.begin(), from_groups_.end(), from,
                             [](const FromGroup& g, NodeNumber n) { return g.from < n; });
  return it != from_groups_.end() && it->from == from ? &*it : nullptr;
}

void ContactPlan::AddRange(const clock::RangeEntry& range) {
  CheckRange(range);
  ranges_.push_back(range);
  range_table_.Add(range);
  ReindexRanges();
  ReindexContactPairs();
}

void ContactPlan::ReindexContactPairs() {
  contact_pair_.assign(contacts_.size(), kNoPair);
  if (pair_groups_.size() >= kNoPair) {
    std::fprintf(stderr, "ics::dtn ContactPlan: more than 2^32 node pairs with ranges\n");
    std::abort();
  }
  // Contacts are sorted by sender, then start: consecutive contacts often share a pair.
  NodeNumber last_from = 0, last_to = 0;
  std::uint32_t last = kNoPair;
  bool have_last = false;
  for (std::size_t i = 0; i < contacts_.size(); ++i) {
    const Contact& c = contacts_[i];
    if (!have_last || c.from != last_from || c.to != last_to) {
      last = PairGroupIndex(c.from, c.to);
      last_from = c.from;
      last_to = c.to;
      have_last = true;
    }
    contact_pair_[i] = last;
  }
}

void ContactPlan::ReindexRanges() {
  pair_ranges_.clear();
  pair_ranges_.reserve(ranges_.size());
  for (const clock::RangeEntry& r : ranges_) {
    pair_ranges_.push_back(PairRange{std::min(r.a, r.b), std::max(r.a, r.b), r.start, r.end, r.owlt, r.end});
  }
  std::sort(pair_ranges_.begin(), pair_ranges_.end(), [](const PairRange& x, const PairRange& y) {
    return std::tie(x.lo, x.hi, x.start, x.end) < std::tie(y.lo, y.hi, y.start, y.end);
  });
  for (std::size_t i = 1; i < pair_ranges_.size(); ++i) {
    PairRange& r = pair_ranges_[i];
    const PairRange& prev = pair_ranges_[i - 1];
    if (prev.lo == r.lo && prev.hi == r.hi) r.end_max = std::max(r.end, prev.end_max);
  }
  pair_groups_.clear();
  for (std::size_t i = 0; i < pair_ranges_.size(); ++i) {
    const PairRange& r = pair_ranges_[i];
    if (pair_groups_.empty() || pair_groups_.back().lo != r.lo || pair_groups_.back().hi != r.hi) {
      pair_groups_.push_back(PairGroup{r.lo, r.hi, i, i});
    }
    pair_groups_.back().end = i + 1;
  }
}

std::uint32_t ContactPlan::PairGroupIndex(NodeNumber a, NodeNumber b) const {
  const NodeNumber lo = std::min(a, b);
  const NodeNumber hi = std::max(a, b);
  auto it = std::lower_bound(pair_groups_.begin(), pair_groups_.end(), std::make_pair(lo, hi),
                             [](const PairGroup& g, const std::pair<NodeNumber, NodeNumber>& k) {
                               return std::tie(g.lo, g.hi) < std::tie(k.first, k.second);
                             });
  if (it == pair_groups_.end() || it->lo != lo || it->hi != hi) return kNoPair;
  return static_cast<std::uint32_t>(it - pair_groups_.begin());
}

std::span<const ContactPlan::PairRange> ContactPlan::RangesOf(NodeNumber a, NodeNumber b) const {
  const std::uint32_t group = PairGroupIndex(a, b);
  if (group == kNoPair) return {};
  const PairGroup& g = pair_groups_[group];
  return std::span<const PairRange>(pair_ranges_).subspan(g.begin, g.end - g.begin);
}

std::size_t ContactPlan::ContactsFromBegin(NodeNumber from) const {
  if (const FromGroup* g = GroupOf(from)) return g->begin;
  // No contact from `from`: where its contacts would be (an empty range).
  auto it = std::lower_bound(from_groups_.begin(), from_groups_.end(), from,
                             [](const FromGroup& x, NodeNumber n) { return x.from < n; });
  return it == from_groups_.end() ? contacts_.size() : it->begin;
}

std::size_t ContactPlan::ContactsFromEnd(NodeNumber from) const {
  const FromGroup* g = GroupOf(from);
  return g != nullptr ? g->end : ContactsFromBegin(from);
}

std::span<const Contact> ContactPlan::ContactsFrom(NodeNumber from) const {
  const FromGroup* g = GroupOf(from);
  if (g == nullptr) return {};
  return std::span<const Contact>(contacts_).subspan(g->begin, g->end - g->begin);
}

std::size_t ContactPlan::NextNotEndedBy(std::size_t i, std::size_t end, DtnTime t) const {
  while (i < end) {
    if (i % kEndBlock == 0 && block_end_max_[i / kEndBlock] <= t) {
      i += kEndBlock;  // the whole block has ended (past `end` too: then none is left)
      continue;
    }
    if (contacts_[i].end > t) return i;
    ++i;
  }
  return end;
}

std::size_t ContactPlan::ContactsFromNotEndedBy(NodeNumber from, DtnTime t) const {
  const FromGroup* g = GroupOf(from);
  if (g == nullptr) return ContactsFromBegin(from);
  const auto first = end_max_.begin() + static_cast<std::ptrdiff_t>(g->begin);
  const auto last = end_max_.begin() + static_cast<std::ptrdiff_t>(g->end);
  return static_cast<std::size_t>(std::upper_bound(first, last, t) - end_max_.begin());
}

std::vector<Contact> ContactPlan::ContactsBetween(NodeNumber a, NodeNumber b) const {
  std::vector<Contact> out;
  for (const Contact& c : ContactsFrom(a)) {
    if (c.to == b) out.push_back(c);
  }
  return out;
}

std::optional<Contact> ContactPlan::ContactAt(NodeNumber from, NodeNumber to, DtnTime t) const {
  std::optional<Contact> best;
  const std::size_t end = ContactsFromEnd(from);
  // Ended contacts are skipped by blocks (NextNotEndedBy): behind a long contact of the sender,
  // every pass that ended since it began lies between the first not ended and t.
  for (std::size_t i = NextNotEndedBy(ContactsFromNotEndedBy(from, t), end, t); i < end;
       i = NextNotEndedBy(i + 1, end, t)) {
    const Contact& c = contacts_[i];
    if (c.start > t) break;  // sorted by start
    if (c.to == to && t < c.end && (!best || c.rate_bytes_per_s > best->rate_bytes_per_s)) best = c;
  }
  return best;
}

std::optional<DtnTime> ContactPlan::NextContactStart(NodeNumber from, NodeNumber to, DtnTime t) const {
  std::optional<DtnTime> best;
  const std::size_t end = ContactsFromEnd(from);
  for (std::size_t i = ContactsFromNotEndedBy(from, t); i < end; ++i) {
    const Contact& c = contacts_[i];
    if (c.to != to || c.end <= t) continue;
    DtnTime open = std::max(c.start, t);
    if (!best || open < *best) best = open;
    if (c.start >= t) break;  // later contacts start later still
  }
  return best;
}

std::optional<Duration> ContactPlan::OwltAt(NodeNumber a, NodeNumber b, DtnTime t) const {
  std::span<const PairRange> pair = RangesOf(a, b);
  auto it = std::upper_bound(pair.begin(), pair.end(), t,
                             [](DtnTime x, const PairRange& r) { return x < r.start; });
  std::optional<Duration> owlt;
  // Scan back over the entries starting at or before t while one of them may still cover t.
  while (it != pair.begin()) {
    --it;
    if (it->end_max <= t) break;
    if (t < it->end && (!owlt || it->owlt > *owlt)) owlt = it->owlt;
  }
  return owlt;
}

ContactPlan::RangeState ContactPlan::RangeStateAt(NodeNumber a, NodeNumber b, DtnTime t) const {
  return RangeStateIn(RangesOf(a, b), t);
}

ContactPlan::RangeState ContactPlan::ContactRangeStateAt(std::size_t contact_index, DtnTime t) const {
  const std::uint32_t group = contact_pair_[contact_index];
  if (group == kNoPair) return RangeState{};
  const PairGroup& g = pair_groups_[group];
  return RangeStateIn(std::span<const PairRange>(pair_ranges_).subspan(g.begin, g.end - g.begin), t);
}

ContactPlan::RangeState ContactPlan::RangeStateIn(std::span<const PairRange> pair, DtnTime t) {
  // OwltAt's and NextRangeChange's scans merged: they look at the same entries.
  auto it = std::upper_bound(pair.begin(), pair.end(), t,
                             [](DtnTime x, const PairRange& r) { return x < r.start; });
  RangeState state;
  if (it != pair.end()) state.next_change = it->start;
  while (it != pair.begin()) {
    --it;
    if (it->end_max <= t) break;
    if (it->end > t) {
      if (!state.owlt || it->owlt > *state.owlt) state.owlt = it->owlt;
      if (!state.next_change || it->end < *state.next_change) state.next_change = it->end;
    }
  }
  return state;
}

std::optional<DtnTime> ContactPlan::NextRangeChange(NodeNumber a, NodeNumber b, DtnTime t) const {
  std::span<const PairRange> pair = RangesOf(a, b);
  auto it = std::upper_bound(pair.begin(), pair.end(), t,
                             [](DtnTime x, const PairRange& r) { return x < r.start; });
  // The first start after t, then the ends after t of the entries starting at or before t.
  std::optional<DtnTime> next;
  if (it != pair.end()) next = it->start;
  while (it != pair.begin()) {
    --it;
    if (it->end_max <= t) break;
    if (it->end > t && (!next || it->end < *next)) next = it->end;
  }
  return next;
}

std::optional<DtnTime> ContactPlan::FirstStart() const {
  std::optional<DtnTime> first;
  for (const Contact& c : contacts_) {
    if (!first || c.start < *first) first = c.start;
  }
  return first;
}

std::optional<DtnTime> ContactPlan::LastEnd() const {
  std::optional<DtnTime> last;
  for (const Contact& c : contacts_) {
    if (!last || c.end > *last) last = c.end;
  }
  return last;
}

// ---- Parse and load ---------------------------------------------------------------------

std::expected<ContactPlan, PlanError> ParseContactPlan(std::string_view text, std::string_view source_name,
                                                       DtnTime plan_epoch) {
  auto entries = ParseContactPlanEntries(text, source_name, plan_epoch);
  if (!entries) return std::unexpected(std::move(entries.error()));
  return ContactPlan(std::move(entries->contacts), std::move(entries->ranges));
}

std::expected<PlanEntries, PlanError> ParseContactPlanEntries(std::string_view text, std::string_view source_name,
                                                              DtnTime plan_epoch) {
  PlanEntries entries;
  std::vector<Contact>& contacts = entries.contacts;
  std::vector<clock::RangeEntry>& ranges = entries.ranges;
  // Room for a line each: growing a long plan's arrays by doubling copies and faults in about
  // twice what they end up holding; capacity never written costs no memory.
  const std::size_t lines = std::min<std::size_t>(
      kPlanLinesMax, static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1);
  contacts.reserve(lines);
  ranges.reserve(lines);
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t line_end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, line_end - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (line_no > kPlanLinesMax) {
      return std::unexpected(PlanError{std::string(source_name), static_cast<int>(line_no), 1,
                                       fmt::format("too many lines (at most {})", kPlanLinesMax)});
    }
    if (line.size() > kPlanLineLengthMax) {
      return std::unexpected(PlanError{std::string(source_name), static_cast<int>(line_no),
                                       static_cast<int>(kPlanLineLengthMax) + 1,
                                       fmt::format("line longer than {} bytes", kPlanLineLengthMax)});
    }
    LineParser parser(source_name, static_cast<int>(line_no), line, plan_epoch);
    if (auto ok = parser.Parse(contacts, ranges); !ok) return std::unexpected(std::move(ok.error()));
  }
  return entries;
}

std::expected<ContactPlan, PlanError> LoadContactPlan(const std::filesystem::path& path, DtnTime plan_epoch) {
  std::string source = path.string();
  auto fail = [&](std::string message) {
    return std::unexpected(PlanError{source, 0, 0, std::move(message)});
  };
  std::error_code ec;
  std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) return fail(fmt::format("cannot read: {}", ec.message()));
  if (size > kPlanFileBytesMax) {
    return fail(
        fmt::format("file is {} bytes, more than the {} bytes a plan may have", size, kPlanFileBytesMax));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot open for reading");
  std::string text(static_cast<std::size_t>(size), '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (in.gcount() != static_cast<std::streamsize>(size))
    return fail("short read (file changed while reading?)");
  return ParseContactPlan(text, source, plan_epoch);
}

}  // namespace ics::dtn
