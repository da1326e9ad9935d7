// Where lease traffic lives in the bundle layer: the ipn service numbers of the lease protocol.
// Every node that takes part uses the same service on its own node number, so the coordinator
// is ipn:C.64, rover agents ipn:R.64 and resource guards ipn:G.65. Coordination bundles travel
// with expedited priority so they never wait behind bulk data.
#pragma once

#include <cstdint>

namespace ics::coordinator {

inline constexpr std::uint64_t kLeaseService = 64;
inline constexpr std::uint64_t kGuardService = 65;

}  // namespace ics::coordinator
