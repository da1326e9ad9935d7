// Maps the stores' durability option onto the storage layer's synchronous setting.
#pragma once

#include "rover_agent/store_options.h"
#include "storage/database.h"

namespace ics::rover_agent {

inline storage::Durability ToStorage(StoreDurability durability) {
  return durability == StoreDurability::kNone ? storage::Durability::kOff : storage::Durability::kFull;
}

}  // namespace ics::rover_agent
