// ics-storage-bench: how many durable writes per second this disk gives us, three ways.
//
//   1. bare write+sync loops on a plain file (the ceiling for one-sync-per-write schemes),
//   2. one 1 KiB record per synchronous=FULL transaction (one WAL fsync each),
//   3. 1 KiB records through GroupCommit, batches of 1,000 and 10,000 (one fsync per batch).
//
// Each run writes into a fresh temporary directory under --dir (removed at the end), so the
// figures are for that directory's file system.
#include <fcntl.h>
#include <fmt/format.h>
#include <stdlib.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/database.h"
#include "storage/group_commit.h"

namespace {

using Clock = std::chrono::steady_clock;
using ics::storage::Database;
using ics::storage::GroupCommit;
using ics::storage::Status;

constexpr std::size_t kRecordBytes = 1024;

struct Limits {
  double seconds = 3.0;       // per measurement, when records == 0
  std::uint64_t records = 0;  // per measurement, overrides seconds
};

// Keeps going until the record or time budget is spent. Time is checked every `stride` records.
class Budget {
 public:
  explicit Budget(const Limits& limits) : limits_(limits), start_(Clock::now()) {}
  bool More(std::uint64_t done, std::uint64_t stride = 1) const {
    if (limits_.records > 0) {
      return done < limits_.records;
    }
    return done % stride != 0 || Seconds() < limits_.seconds;
  }
  double Seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  Limits limits_;
  Clock::time_point start_;
};

std::vector<std::uint8_t> Payload(std::uint64_t n) {
  std::vector<std::uint8_t> bytes(kRecordBytes);
  std::uint64_t x = n * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& b : bytes) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::uint8_t>(x);
  }
  return bytes;
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "ics-storage-bench: %s\n", what.c_str());
  std::exit(1);
}

void Report(const char* name, std::uint64_t count, const char* unit, double seconds, std::uint64_t fsyncs) {
  const double rate = static_cast<double>(count) / seconds;
  fmt::print("{:<44} {:>12.0f} {}/s   ({} in {:.2f} s, {:.1f} MiB/s, {} commits)\n", name, rate, unit, count,
             seconds, rate * kRecordBytes / (1024.0 * 1024.0), fsyncs);
  std::fflush(stdout);
}

// Two reference loops: appending + fsync (a growing log: data and file size to persist), and
// rewriting one block + fdatasync (what SQLite's WAL mostly does once its file has reached its
// working size and is reused from the start after each checkpoint).
void BareFsync(const std::string& dir, const Limits& limits, bool append) {
  const std::string path = dir + (append ? "/fsync-append.bin" : "/fdatasync-rewrite.bin");
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) {
    Fail("cannot create " + path);
  }
  const auto payload = Payload(0);
  Budget budget(limits);
  std::uint64_t n = 0;
  while (budget.More(n)) {
    const bool ok =
        append ? ::write(fd, payload.data(), payload.size()) == static_cast<ssize_t>(payload.size()) &&
                     ::fsync(fd) == 0
               : ::pwrite(fd, payload.data(), payload.size(), 0) == static_cast<ssize_t>(payload.size()) &&
                     ::fdatasync(fd) == 0;
    if (!ok) {
      Fail("write/sync failed on " + path);
    }
    ++n;
  }
  const double seconds = budget.Seconds();
  ::close(fd);
  Report(append ? "bare loop: 1 KiB append + fsync" : "bare loop: 1 KiB rewrite + fdatasync", n, "syncs",
         seconds, n);
}

Database OpenFresh(const std::string& path) {
  std::filesystem::remove(path);
  auto db = Database::Open(path, {.durability = ics::storage::Durability::kFull});
  if (!db) {
    Fail(db.error().message);
  }
  if (auto ok = db->Exec("CREATE TABLE records(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)"); !ok) {
    Fail(ok.error().message);
  }
  return std::move(*db);
}

void CheckCount(const Database& db, std::uint64_t expected) {
  auto count = db.QueryInt("SELECT count(*) FROM records");
  if (!count || count->value_or(-1) != static_cast<std::int64_t>(expected)) {
    Fail(fmt::format("{}: expected {} records after the run", db.path(), expected));
  }
}

void SingleCommits(const std::string& dir, const Limits& limits) {
  Database db = OpenFresh(dir + "/single.db");
  auto insert = db.Prepare("INSERT INTO records(id, payload) VALUES(?1, ?2)");
  if (!insert) {
    Fail(insert.error().message);
  }
  const auto payload = Payload(1);
  Budget budget(limits);
  std::uint64_t n = 0;
  while (budget.More(n)) {
    // Autocommit: each Run() is its own transaction, committed with a WAL fsync.
    insert->Bind(1, static_cast<std::int64_t>(n)).Bind(2, std::span<const std::uint8_t>(payload));
    if (auto ok = insert->Run(); !ok) {
      Fail(ok.error().message);
    }
    ++n;
  }
  const double seconds = budget.Seconds();
  CheckCount(db, n);
  Report("single-record durable commits (1 KiB)", n, "commits", seconds, n);
}

void Grouped(const std::string& dir, const Limits& limits, std::size_t batch) {
  Database db = OpenFresh(dir + fmt::format("/group{}.db", batch));
  auto insert = db.Prepare("INSERT INTO records(id, payload) VALUES(?1, ?2)");
  if (!insert) {
    Fail(insert.error().message);
  }
  std::vector<std::vector<std::uint8_t>> payloads;
  for (std::uint64_t i = 0; i < 64; ++i) {
    payloads.push_back(Payload(i + 2));
  }
  GroupCommit group(db, batch);
  Budget budget(limits);
  std::uint64_t n = 0;
  while (budget.More(n, batch)) {
    const std::uint64_t id = n;
    const auto& payload = payloads[n % payloads.size()];
    auto ticket = group.Stage([&insert, id, &payload](Database&) -> Status {
      insert->Bind(1, static_cast<std::int64_t>(id)).Bind(2, std::span<const std::uint8_t>(payload));
      return insert->Run();
    });
    if (!ticket) {
      Fail(ticket.error().message);
    }
    ++n;
  }
  if (auto last = group.Flush(); !last || *last != n) {
    Fail(last ? "flush did not make every ticket durable" : last.error().message);
  }
  const double seconds = budget.Seconds();
  CheckCount(db, n);
  Report(fmt::format("group commit, batches of {:>6} (1 KiB)", batch).c_str(), n, "records", seconds,
         group.commits());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ics-storage-bench: durable write rates of the SQLite storage layer"};
  std::string dir = "/var/tmp";
  Limits limits;
  app.add_option("--dir", dir, "Directory on the disk to measure (a temporary subdirectory is used)")
      ->check(CLI::ExistingDirectory);
  auto* seconds =
      app.add_option("--seconds", limits.seconds, "Seconds per measurement")->check(CLI::PositiveNumber);
  app.add_option("--records", limits.records, "Records per measurement (instead of --seconds)")
      ->excludes(seconds)
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  std::string pattern = dir + "/ics-storage-bench-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    Fail("cannot create a temporary directory under " + dir);
  }
  const std::string work = pattern;
  fmt::print("ics-storage-bench: {} per measurement, in {}\n",
             limits.records > 0 ? fmt::format("{} records", limits.records)
                                : fmt::format("{:.1f} s", limits.seconds),
             work);
  fmt::print("(SQLite WAL, synchronous=FULL: a commit returns only after its fsync)\n\n");
  BareFsync(work, limits, /*append=*/true);
  BareFsync(work, limits, /*append=*/false);
  SingleCommits(work, limits);
  Grouped(work, limits, 1000);
  Grouped(work, limits, 10000);
  std::error_code ec;
  std::filesystem::remove_all(work, ec);
  return 0;
}
