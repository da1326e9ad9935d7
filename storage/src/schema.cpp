#include "storage/schema.h"

#include <fmt/format.h>

#include <string>
#include <utility>

#include "sqlite_error.h"

namespace ics::storage {
namespace {

using internal::MakePlainError;

// What the file says it is. Read with plain queries: nothing here writes.
struct Identity {
  std::int64_t application_id = 0;
  std::int64_t user_version = 0;
  std::int64_t tables = 0;  // schema objects other than SQLite's own
};

Result<Identity> ReadIdentity(const Database& db) {
  Identity id;
  auto app = db.QueryInt("PRAGMA application_id");
  if (!app) {
    return std::unexpected(std::move(app.error()));
  }
  auto version = db.QueryInt("PRAGMA user_version");
  if (!version) {
    return std::unexpected(std::move(version.error()));
  }
  auto tables = db.QueryInt("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'");
  if (!tables) {
    return std::unexpected(std::move(tables.error()));
  }
  id.application_id = app->value_or(0);
  id.user_version = version->value_or(0);
  id.tables = tables->value_or(0);
  return id;
}

Status CheckSpec(const Database& db, const SchemaSpec& spec) {
  if (spec.application_id == 0) {
    return std::unexpected(MakePlainError(
        Error::Kind::kMisuse, db.path(),
        fmt::format("schema spec \"{}\" has application_id 0 (reserved for unidentified files)", spec.name)));
  }
  for (std::size_t i = 0; i < spec.migrations.size(); ++i) {
    if (spec.migrations[i].version != static_cast<int>(i) + 1) {
      return std::unexpected(
          MakePlainError(Error::Kind::kMisuse, db.path(),
                         fmt::format("schema spec \"{}\": migration #{} has version {}, expected {}",
                                     spec.name, i, spec.migrations[i].version, i + 1)));
    }
  }
  return {};
}

// Whether a file with identity `id` may be migrated (or read) as `spec`.
Status CheckIdentity(const Database& db, const SchemaSpec& spec, const Identity& id) {
  const auto newest = static_cast<std::int64_t>(spec.migrations.size());
  if (id.application_id == 0) {
    if (id.tables != 0 || id.user_version != 0) {
      return std::unexpected(
          MakePlainError(Error::Kind::kForeignSchema, db.path(),
                         fmt::format("not a {} database: it has {} tables and user_version {} but no "
                                     "application_id (expected {:#010x}); left untouched",
                                     spec.name, id.tables, id.user_version,
                                     static_cast<std::uint32_t>(spec.application_id))));
    }
    return {};  // new and empty
  }
  if (id.application_id != spec.application_id) {
    return std::unexpected(
        MakePlainError(Error::Kind::kForeignSchema, db.path(),
                       fmt::format("not a {} database: application_id is {:#010x}, expected {:#010x}; left "
                                   "untouched",
                                   spec.name, static_cast<std::uint32_t>(id.application_id),
                                   static_cast<std::uint32_t>(spec.application_id))));
  }
  if (id.user_version > newest) {
    return std::unexpected(MakePlainError(
        Error::Kind::kNewerSchema, db.path(),
        fmt::format("{} database at schema version {}, newer than this build understands ({}): "
                    "written by newer software; left untouched",
                    spec.name, id.user_version, newest)));
  }
  if (id.user_version < 0) {
    return std::unexpected(MakePlainError(
        Error::Kind::kCorrupt, db.path(),
        fmt::format("{} database with a negative schema version {}", spec.name, id.user_version)));
  }
  return {};
}

}  // namespace

Status Migrate(Database& db, const SchemaSpec& spec) {
  if (db.read_only()) {
    return std::unexpected(
        MakePlainError(Error::Kind::kReadOnly, db.path(),
                       fmt::format("cannot migrate the {} database: opened read-only", spec.name)));
  }
  if (auto ok = CheckSpec(db, spec); !ok) {
    return ok;
  }
  auto id = ReadIdentity(db);
  if (!id) {
    return std::unexpected(std::move(id.error()));
  }
  if (auto ok = CheckIdentity(db, spec, *id); !ok) {
    return ok;
  }
  const auto newest = static_cast<int>(spec.migrations.size());

  // The file is ours (or new): now it may be written, starting with the journal mode that
  // Database::Open left alone on an existing non-WAL file.
  if (db.options().wal && db.path() != ":memory:" && !db.path().empty()) {
    auto mode = db.Prepare("PRAGMA journal_mode");
    if (!mode) {
      return std::unexpected(std::move(mode.error()));
    }
    auto row = mode->Step();
    if (!row) {
      return std::unexpected(std::move(row.error()));
    }
    const bool is_wal = *row && mode->TextView(0) == "wal";
    mode->Reset();
    if (!is_wal) {
      if (auto ok = db.Exec("PRAGMA journal_mode=WAL"); !ok) {
        return ok;
      }
    }
  }

  if (id->application_id != 0 && id->user_version == newest) {
    return {};  // the common case: up to date, no write lock needed
  }
  // At least one transaction even with no migrations, so a new file still gets its id.
  for (;;) {
    bool done = false;
    auto ok = WithTransaction(db, [&]() -> Status {
      // Re-read inside the write lock: another process may have migrated since we looked.
      auto now = ReadIdentity(db);
      if (!now) {
        return std::unexpected(std::move(now.error()));
      }
      if (auto valid = CheckIdentity(db, spec, *now); !valid) {
        return valid;
      }
      if (now->application_id == 0) {
        if (auto set = db.Exec(fmt::format("PRAGMA application_id={}", spec.application_id)); !set) {
          return set;
        }
      }
      const int current = static_cast<int>(now->user_version);
      if (current >= newest) {
        done = true;
        return {};
      }
      const Migration& next = spec.migrations[static_cast<std::size_t>(current)];
      if (auto applied = db.Exec(next.sql); !applied) {
        Error error = applied.error();
        error.message = fmt::format("{} database: migration to version {} failed: {}", spec.name,
                                    next.version, error.message);
        return std::unexpected(std::move(error));
      }
      if (auto set = db.Exec(fmt::format("PRAGMA user_version={}", next.version)); !set) {
        return set;
      }
      done = next.version >= newest;
      return {};
    });
    if (!ok) {
      return ok;
    }
    if (done) {
      return {};
    }
  }
}

Result<int> CheckSchema(const Database& db, const SchemaSpec& spec) {
  if (auto ok = CheckSpec(db, spec); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  auto id = ReadIdentity(db);
  if (!id) {
    return std::unexpected(std::move(id.error()));
  }
  if (auto ok = CheckIdentity(db, spec, *id); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  if (id->application_id == 0) {
    return std::unexpected(MakePlainError(
        Error::Kind::kForeignSchema, db.path(),
        fmt::format("not a {} database: empty, never initialized (no application_id)", spec.name)));
  }
  return static_cast<int>(id->user_version);
}

}  // namespace ics::storage
