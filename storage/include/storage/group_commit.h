// Group commit: many small writes made durable by one transaction and one fsync, while each
// writer still learns exactly when its own write is durable.
//
// Single-threaded by design, to suit the sans-I/O drivers: a driver stages the records a core
// asks to persist, calls Flush() once per turn of its loop (or when the batch is full), and only
// then sends the messages that depended on them (the "persist BEFORE send" contract).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "storage/database.h"

namespace ics::storage {

class GroupCommit {
 public:
  using Write = std::function<Status(Database&)>;
  // REQUIRES: db outlives this object and is not read-only.
  // max_batch: Stage() flushes by itself when this many writes are waiting.
  explicit GroupCommit(Database& db, std::size_t max_batch = 4096);

  // Queues a write; returns its ticket (1, 2, 3 ...). The write runs at the next Flush().
  // Error only if an automatic flush (batch full) failed; that batch, this write included, is
  // dropped.
  Result<std::uint64_t> Stage(Write write);
  // Runs every staged write in one immediate transaction and commits it (one fsync under WAL and
  // synchronous=FULL). On success every ticket up to the returned one is durable. On failure the
  // whole batch is rolled back and dropped, and durable() is unchanged. A Write that throws has the
  // same effect, and the exception is rethrown. With nothing staged, returns durable() at once.
  Result<std::uint64_t> Flush();

  // Highest ticket of the last committed batch: every ticket up to it is durable except those of
  // batches that failed (IsDurable() tells them apart).
  std::uint64_t durable() const { return durable_; }
  // True when `ticket` was committed; false when it is still staged, was never issued, or its
  // batch failed.
  bool IsDurable(std::uint64_t ticket) const;
  std::size_t pending() const { return staged_.size(); }
  std::uint64_t commits() const { return commits_; }  // transactions committed so far

 private:
  Database& db_;
  std::size_t max_batch_;
  std::vector<Write> staged_;
  std::uint64_t next_ticket_ = 1;
  std::uint64_t durable_ = 0;
  std::uint64_t commits_ = 0;
  // Tickets of failed batches, as [first, last] ranges in increasing order (one per failure).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> failed_;
};

}  // namespace ics::storage
