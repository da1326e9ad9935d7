// Why the header is read before SQLite sees the file: a text file, an empty file or a truncated
// one must give a clear "not an epoch log" / "damaged" line, and opening it through SQLite first
// would report a generic I/O error. Why one deferred transaction: every query of a command then
// reads the same snapshot, and a deferred read transaction takes no lock the writer waits on.
#include "epochlog/log_reader.h"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>
#include <vector>

#include "coordinator/sqlite_lease_log.h"
#include "storage/schema.h"

namespace ics::epochlog {
namespace {

constexpr std::string_view kSqliteMagic{"SQLite format 3\0", 16};

constexpr std::string_view kEventColumns =
    "seq, at_dtn_ms, epoch, kind, tenant, resource, rover, request_id, token, lease_expires_dtn_ms, term_ms, "
    "deadline_dtn_ms, regrant_at_dtn_ms, reason, policy";

// The nullable integer columns come back through ifnull(x, kNull): one column call per value
// instead of two (type, then value), which is a tenth of a ten-million-row scan. A stored
// INT64_MIN therefore reads as NULL; no real value is negative, so either way the row is damage.
constexpr std::int64_t kNull = INT64_MIN;
constexpr std::string_view kEventSelect =
    "SELECT seq, at_dtn_ms, epoch, kind, tenant, resource, ifnull(rover, -9223372036854775808), "
    "ifnull(request_id, -9223372036854775808), ifnull(token, -9223372036854775808), "
    "ifnull(lease_expires_dtn_ms, -9223372036854775808), ifnull(term_ms, -9223372036854775808), "
    "ifnull(deadline_dtn_ms, -9223372036854775808), ifnull(regrant_at_dtn_ms, -9223372036854775808), ";

// Up to 2 GiB of the file is memory-mapped: a scan then reads pages in place instead of copying
// each through read(2).
constexpr std::string_view kMmapPragma = "PRAGMA mmap_size=2147418112";

std::optional<std::int64_t> OptInt(const storage::Statement& st, int column) {
  const std::int64_t value = st.Int(column);
  if (value == kNull) return std::nullopt;
  return value;
}

std::string_view Bounded(std::string_view text) { return text.size() > kMaxTextBytes ? text.substr(0, kMaxTextBytes) : text; }

}  // namespace

std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  return out;
}

Error FromStorageError(const storage::Error& error) {
  Error out;
  out.message = OneLine(error.message);
  // "<path>: <what> (<sqlite message>) in: <sql>": the SQL is ours, not the operator's business.
  if (const auto in = out.message.rfind(" in: "); in != std::string::npos) out.message.resize(in);
  switch (error.kind) {
    case storage::Error::Kind::kCorrupt:
      out.kind = Error::Kind::kDamaged;
      if (out.message.find("damaged") == std::string::npos) out.message += " (damaged epoch log)";
      break;
    case storage::Error::Kind::kNewerSchema: out.kind = Error::Kind::kNewerSchema; break;
    case storage::Error::Kind::kForeignSchema: out.kind = Error::Kind::kNotEpochLog; break;
    default: out.kind = Error::Kind::kIo; break;
  }
  return out;
}

Error LogReader::FromStorage(const storage::Error& error) const { return FromStorageError(error); }

LogReader::LogReader(LogReader&&) noexcept = default;
LogReader& LogReader::operator=(LogReader&&) noexcept = default;

LogReader::~LogReader() {
  if (db_ && in_transaction_) (void)db_->Exec("ROLLBACK");  // a read transaction: nothing to undo
}

std::expected<LogReader, Error> LogReader::Open(const std::string& given) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string path = given;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    return std::unexpected(Error{Error::Kind::kMissing, fmt::format("{}: no such file or directory", given)});
  }
  if (fs::is_directory(status)) {
    path = (fs::path(given) / coordinator::kEpochLogFileName).string();
    if (!fs::exists(path, ec)) {
      return std::unexpected(Error{Error::Kind::kMissing,
                                   fmt::format("{}: no {} in this directory (not a coordinator data directory?)",
                                               given, coordinator::kEpochLogFileName)});
    }
  }
  if (!fs::is_regular_file(path, ec)) {
    return std::unexpected(Error{Error::Kind::kNotEpochLog, fmt::format("{}: not a regular file", path)});
  }
  {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
      return std::unexpected(Error{Error::Kind::kIo, fmt::format("{}: cannot be read (permissions?)", path)});
    }
    std::array<char, 16> magic{};
    file.read(magic.data(), magic.size());
    const auto got = static_cast<std::size_t>(file.gcount());
    if (got == 0) {
      return std::unexpected(Error{Error::Kind::kNotEpochLog, fmt::format("{}: empty file, not an epoch log", path)});
    }
    if (got < magic.size() || std::string_view(magic.data(), magic.size()) != kSqliteMagic) {
      return std::unexpected(
          Error{Error::Kind::kNotEpochLog, fmt::format("{}: not an epoch log (not a SQLite database)", path)});
    }
  }

  storage::OpenOptions options;
  options.read_only = true;
  options.create = false;
  options.busy_timeout_ms = 2000;
  auto db = storage::Database::Open(path, options);
  if (!db) return std::unexpected(FromStorageError(db.error()));

  auto version = storage::CheckSchema(*db, coordinator::EpochLogSchema());
  if (!version) {
    Error error = FromStorageError(version.error());
    if (error.kind == Error::Kind::kNotEpochLog) {
      error.message = fmt::format("{}: not an epoch log ({})", path, error.message);
    } else if (error.kind == Error::Kind::kNewerSchema) {
      error.message = fmt::format("{}: an epoch log of a newer schema than this build reads ({}); use a newer "
                                  "ics-epochlog",
                                  path, error.message);
    }
    return std::unexpected(std::move(error));
  }
  if (*version < 1) {
    return std::unexpected(Error{Error::Kind::kDamaged,
                                 fmt::format("{}: an epoch log with schema version {}, never initialized", path,
                                             *version)});
  }

  LogReader reader;
  reader.path_ = path;
  reader.schema_version_ = *version;
  reader.db_ = std::make_unique<storage::Database>(std::move(*db));
  if (auto mmap = reader.db_->Prepare(kMmapPragma); mmap) (void)mmap->Step();  // an optimisation only
  if (auto ok = reader.db_->Exec("BEGIN DEFERRED"); !ok) return std::unexpected(FromStorageError(ok.error()));
  reader.in_transaction_ = true;
  // Pin the snapshot now, and check that the table this tool reads is there with its columns.
  auto probe = reader.db_->Prepare(fmt::format("SELECT {} FROM events LIMIT 1", kEventColumns));
  if (!probe) {
    return std::unexpected(Error{Error::Kind::kDamaged,
                                 fmt::format("{}: damaged epoch log: the events table is missing or lacks columns "
                                             "({})",
                                             path, OneLine(probe.error().message))});
  }
  if (auto row = probe->Step(); !row) return std::unexpected(FromStorageError(row.error()));
  return reader;
}

std::expected<storage::Statement, Error> LogReader::Prepare(std::string_view sql) {
  auto st = db_->Prepare(sql);
  if (!st) return std::unexpected(FromStorageError(st.error()));
  return std::move(*st);
}

std::expected<EventCursor, Error> LogReader::Events(const EventFilter& f) {
  // From schema version 2 on, the resource, rover and request-id indexes lead with the event's
  // block (seq >> kEventBlockShift), so a lookup by one of them walks the blocks of the log (of
  // the epoch, when one is given): one index seek per block, in seq order.
  const bool by_block =
      schema_version_ >= coordinator::kEventLogBlocksFromVersion && (f.resource || f.rover || f.request_id);
  std::string sql;
  if (by_block) {
    const std::string_view scope = f.epoch ? " WHERE epoch = ?5" : "";
    sql = fmt::format(
        "WITH RECURSIVE block_range(lo, hi) AS (SELECT "
        "ifnull((SELECT seq FROM events{0} ORDER BY seq LIMIT 1), 0) >> {1}, "
        "ifnull((SELECT seq FROM events{0} ORDER BY seq DESC LIMIT 1), 0) >> {1}), "
        "block(k) AS (SELECT lo FROM block_range UNION ALL "
        "SELECT k + 1 FROM block, block_range WHERE k < hi) ",
        scope, coordinator::kEventBlockShift);
  }
  sql += kEventSelect;
  sql += f.texts ? "reason, policy" : "CASE WHEN kind = 'deny' THEN reason ELSE '' END, ''";
  sql += by_block ? " FROM block CROSS JOIN events" : " FROM events";
  std::vector<std::string> where;
  if (by_block) where.push_back(fmt::format("(seq >> {}) = block.k", coordinator::kEventBlockShift));
  if (f.resource) where.push_back("tenant = ?1 AND resource = ?2");
  if (f.rover) where.push_back("rover = ?3");
  if (f.request_id) where.push_back("request_id = ?4");
  if (f.epoch) where.push_back("epoch = ?5");
  if (f.since_ms) where.push_back("at_dtn_ms >= ?6");
  if (f.until_ms) where.push_back("at_dtn_ms <= ?7");
  if (f.exclude_epoch_starts) where.push_back("kind <> 'epoch_start'");
  for (std::size_t i = 0; i < where.size(); ++i) {
    sql += i == 0 ? " WHERE " : " AND ";
    sql += where[i];
  }
  sql += f.newest_first ? " ORDER BY seq DESC" : " ORDER BY seq";
  if (f.limit) sql += " LIMIT ?8";
  auto st = Prepare(sql);
  if (!st) return std::unexpected(st.error());
  if (f.resource) st->Bind(1, std::string_view(f.resource->tenant)).Bind(2, std::string_view(f.resource->resource));
  if (f.rover) st->Bind(3, *f.rover);
  if (f.request_id) st->Bind(4, *f.request_id);
  if (f.epoch) st->Bind(5, *f.epoch);
  if (f.since_ms) st->Bind(6, *f.since_ms);
  if (f.until_ms) st->Bind(7, *f.until_ms);
  if (f.limit) st->Bind(8, *f.limit);
  return EventCursor(std::move(*st), path_);
}

std::expected<const EventRow*, Error> EventCursor::Next() {
  auto more = statement_.Step();
  if (!more) {
    Error error = FromStorageError(more.error());
    if (error.kind == Error::Kind::kIo) error.kind = Error::Kind::kDamaged;  // mid-scan: a bad page
    return std::unexpected(std::move(error));
  }
  if (!*more) return nullptr;
  const storage::Statement& st = statement_;
  EventRow& r = row_;
  r.seq = st.Int(0);
  r.at_ms = st.Int(1);
  r.epoch = st.Int(2);
  r.kind_text = Bounded(st.TextView(3));
  r.kind = coordinator::ParseEventKind(r.kind_text);
  r.has_resource = !st.IsNull(4) && !st.IsNull(5);
  r.tenant = r.has_resource ? Bounded(st.TextView(4)) : std::string_view();
  r.resource = r.has_resource ? Bounded(st.TextView(5)) : std::string_view();
  r.rover = OptInt(st, 6);
  r.request_id = OptInt(st, 7);
  r.token = OptInt(st, 8);
  r.lease_expires_ms = OptInt(st, 9);
  r.term_ms = OptInt(st, 10);
  r.deadline_ms = OptInt(st, 11);
  r.regrant_at_ms = OptInt(st, 12);
  r.reason = st.TextView(13);
  r.policy = st.TextView(14);
  return &row_;
}

}  // namespace ics::epochlog
