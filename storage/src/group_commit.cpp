#include "storage/group_commit.h"

#include <algorithm>
#include <utility>

namespace ics::storage {

GroupCommit::GroupCommit(Database& db, std::size_t max_batch)
    : db_(db), max_batch_(std::max<std::size_t>(max_batch, 1)) {
  staged_.reserve(std::min<std::size_t>(max_batch_, 4096));
}

Result<std::uint64_t> GroupCommit::Stage(Write write) {
  staged_.push_back(std::move(write));
  const std::uint64_t ticket = next_ticket_++;
  if (staged_.size() >= max_batch_) {
    if (auto flushed = Flush(); !flushed) {
      return std::unexpected(std::move(flushed.error()));
    }
  }
  return ticket;
}

Result<std::uint64_t> GroupCommit::Flush() {
  if (staged_.empty()) {
    return durable_;
  }
  // Tickets are handed out consecutively, so the batch is exactly [first, last].
  const std::uint64_t last = next_ticket_ - 1;
  const std::uint64_t first = last - staged_.size() + 1;
  auto drop_batch = [&] {
    staged_.clear();
    failed_.emplace_back(first, last);
  };

  auto tx = Transaction::Begin(db_, Transaction::Mode::kImmediate);
  if (!tx) {
    drop_batch();
    return std::unexpected(std::move(tx.error()));
  }
  try {
    for (Write& write : staged_) {
      if (auto ok = write(db_); !ok) {
        (void)tx->Rollback();
        drop_batch();
        return std::unexpected(std::move(ok.error()));
      }
    }
  } catch (...) {
    (void)tx->Rollback();
    drop_batch();
    throw;
  }
  if (auto ok = tx->Commit(); !ok) {
    drop_batch();
    return std::unexpected(std::move(ok.error()));
  }
  staged_.clear();
  durable_ = last;
  ++commits_;
  return durable_;
}

bool GroupCommit::IsDurable(std::uint64_t ticket) const {
  if (ticket == 0 || ticket > durable_) {
    return false;
  }
  // failed_ is sorted by construction (batches fail in ticket order): find the last range that
  // starts at or before `ticket`.
  auto it = std::upper_bound(
      failed_.begin(), failed_.end(), ticket,
      [](std::uint64_t t, const std::pair<std::uint64_t, std::uint64_t>& r) { return t < r.first; });
  if (it == failed_.begin()) {
    return true;
  }
  --it;
  return ticket > it->second;
}

}  // namespace ics::storage
