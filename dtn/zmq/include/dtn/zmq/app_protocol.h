// The local application interface of a node daemon (`--app ENDPOINT`, ipc:// or
// tcp://127.0.0.1:PORT): how programs on the same machine register endpoints, send ADUs and
// receive them. The daemon binds a ROUTER; a client connects a DEALER. Every message is
// multipart: [verb][JSON header][payload (send / deliver only)].
//
//   client -> daemon                           daemon -> client
//   register {"endpoint":"ipn:3.7"}            registered {"endpoint":...}  | error {"error":...}
//   send {"to","priority","lifetime_ms",       stored {"tag","id"}          | refused {"tag","error"}
//         "tag"} + payload                     (sent once the bundle is durable in the store)
//   confirm {"endpoint","id"}                  (none: the bundle leaves the store)
//   confirm {"endpoint","ids":[id, ...]}       the same for many deliveries at once (cumulative)
//                                              deliver {"endpoint","id","source","created_ms",
//                                                "sequence","priority","size",
//                                                "possible_redelivery"} + payload
//   status {}                                  status {counters ...}
//   unregister {"endpoint"}                    unregistered {"endpoint"}
//
// Bundle IDs travel as their text form (BundleId::ToString, parsed by ParseBundleId). The daemon
// keeps at most kDeliveryWindow deliveries unconfirmed per client; a client that registers an
// endpoint again (after a crash) gets the unconfirmed ones again, flagged possible_redelivery.
// Headers are bounded (kMaxHeaderBytes) and parsed strictly: a bad message gets an error reply.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "dtn/bundle.h"

namespace ics::dtn::zmq {

inline constexpr std::size_t kMaxHeaderBytes = 64 * 1024;  // ~2,000 IDs in one cumulative confirm
inline constexpr std::size_t kDeliveryWindow = 1024;

// "ipn:2.1/815000000123.4" (BundleId::ToString without fragments) back to an ID.
std::expected<BundleId, std::string> ParseBundleId(std::string_view text);

}  // namespace ics::dtn::zmq
