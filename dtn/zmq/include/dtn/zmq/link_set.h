// The ZeroMQ convergence layer: one logical link per neighbour.
//
// Socket pattern. Each node binds one ROUTER socket on its --listen endpoint and connects one
// DEALER socket to each neighbour's listen endpoint, with routing id "ipn:<own node>". Bundles to
// neighbour M go out on our DEALER for M; M answers each with an ack frame on the same connection
// (its ROUTER addresses our DEALER by routing id), once it has stored the bundle: the daemon sends
// one acks frame (frame.h, type 5) per turn listing every bundle of that turn. Pings go out on
// the DEALER and pongs come back the same way, so a link is "up" while pongs arrive. The reverse
// direction uses M's DEALER and our ROUTER. ZeroMQ reconnects by itself; ROUTER_HANDOVER lets a
// restarted neighbour take its routing id back. ZeroMQ reconnects only a connection that fails,
// though: one the far ROUTER silently stopped serving (another peer took our routing id by
// handover, a half-open TCP connection) would stay dead forever. So a neighbour that answers no
// ping for `reconnect_silent_after` gets a fresh DEALER (a new connection, which reclaims the
// routing id); frames queued on the old one are dropped, and custody retransmits them.
//
// Bounds. Outgoing: the DEALER has ZMQ_IMMEDIATE (nothing queues to a missing connection) and a
// send high-water mark, and sends never block: "would block" is a value, and the bundle simply
// stays in the store (back-pressure into the store, never unbounded memory). Incoming: ZMQ_MAXMSGSIZE
// drops a peer that announces an oversized message before anything is allocated for it; every
// frame is parsed strictly (frame.h); frames from routing ids that are not configured neighbours
// are dropped and counted. Shutdown: linger 0 on every socket, so exit never hangs.
//
// Not thread-safe: the daemon's single loop owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "clock/light_time.h"
#include "clock/time.h"
#include "dtn/zmq/frame.h"

namespace ics::dtn::zmq {

using clock::NodeNumber;

struct LinkSetConfig {
  NodeNumber self = 0;
  std::string listen;                          // tcp://127.0.0.1:4556 or ipc:///path
  std::map<NodeNumber, std::string> neighbours;  // node -> its listen endpoint
  std::size_t max_frame_bytes = 64 * 1024 * 1024 + kFrameHeaderBytes;
  int send_hwm = 4096;                          // frames queued per neighbour before "would block"
  std::chrono::milliseconds ping_interval{100};  // wall time
  int pongs_missed_before_down = 5;
  std::chrono::milliseconds reconnect_silent_after{1000};  // wall time without a pong
};

struct LinkCounters {
  std::uint64_t frames_in = 0, frames_out = 0, bytes_in = 0, bytes_out = 0;
  std::uint64_t bad_frames = 0, unknown_peer_frames = 0, would_block = 0, unroutable = 0;
  std::uint64_t reconnects = 0;  // DEALERs recreated because their neighbour fell silent
};

// Something that arrived or changed on a link. Move-only: a bundle event keeps the ZeroMQ
// message it arrived in (no copy of the bundle).
struct LinkEvent {
  enum class Kind { kBundle, kAck, kAcks, kUp, kDown, kBadFrame };
  Kind kind = Kind::kBundle;
  NodeNumber peer = 0;
  clock::DtnTime sent;                 // kBundle / kAck: the sender's mission time
  ::zmq::message_t frame;              // kBundle: the whole received frame
  std::size_t bundle_offset = 0;       // kBundle: where the encoded bundle begins in `frame`
  AckFrame ack;                        // kAck
  std::vector<AckFrame> acks;          // kAcks (an acks frame)
  std::string reason;                  // kBadFrame

  static LinkEvent Of(Kind kind, NodeNumber peer) {
    LinkEvent e;
    e.kind = kind;
    e.peer = peer;
    return e;
  }
  // kBundle: the encoded bundle, viewing `frame` (an offset, not a pointer, is kept: moving a
  // small ZeroMQ message moves its bytes).
  std::span<const std::uint8_t> bundle() const {
    return std::span<const std::uint8_t>(static_cast<const std::uint8_t*>(frame.data()), frame.size())
        .subspan(std::min(bundle_offset, frame.size()));
  }
};

enum class SendResult { kSent, kWouldBlock, kUnknownNeighbour };

// An acks frame is cut before it would exceed this size (well under any frame size limit).
inline constexpr std::size_t kMaxAcksFrameBytes = 64 * 1024;

class LinkSet {
 public:
  static std::expected<std::unique_ptr<LinkSet>, std::string> Create(::zmq::context_t& context,
                                                                     LinkSetConfig config);
  // Poll items for the sockets; valid until the LinkSet is destroyed. The daemon polls these
  // with its other sockets and calls Receive() when any is readable.
  void AppendPollItems(std::vector<::zmq::pollitem_t>& items);
  // Reads every frame available now (never blocks) and appends the events.
  void Receive(clock::DtnTime mission_now, std::chrono::steady_clock::time_point wall_now,
               std::vector<LinkEvent>& events);
  // Sends pings when due and reports links going up or down (by pongs received).
  void Heartbeat(clock::DtnTime mission_now, std::chrono::steady_clock::time_point wall_now,
                 std::vector<LinkEvent>& events);
  std::chrono::steady_clock::time_point NextHeartbeat() const { return next_ping_; }

  SendResult SendBundle(NodeNumber to, clock::DtnTime mission_now, std::span<const std::uint8_t> bundle);
  // The same without copying the bundle: `frame` is kFrameHeaderBytes of room, then the bundle
  // (a Transmit encoded with NodeConfig::transmit_headroom = kFrameHeaderBytes). The header is
  // written into the room and ZeroMQ takes the buffer as it is (freed once sent, or at once if
  // the send would block). REQUIRES: frame.size() >= kFrameHeaderBytes.
  SendResult SendBundleFrame(NodeNumber to, clock::DtnTime mission_now, std::vector<std::uint8_t>&& frame);
  // Acks go back to the neighbour whose DEALER sent the bundle (our ROUTER side).
  SendResult SendAck(NodeNumber to, const AckFrame& ack);
  // The same for many bundles: as few acks frames as kMaxAcksPerFrame and kMaxAcksFrameBytes
  // allow. kWouldBlock if any frame could not be sent (the neighbour retransmits what it does
  // not see acknowledged).
  SendResult SendAcks(NodeNumber to, clock::DtnTime sent, std::span<const AckFrame> acks);

  bool IsUp(NodeNumber peer) const;
  const LinkCounters& counters() const { return counters_; }
  const LinkSetConfig& config() const { return config_; }

 private:
  struct Peer {
    std::string endpoint;
    std::unique_ptr<::zmq::socket_t> dealer;
    bool up = false;
    std::chrono::steady_clock::time_point last_pong{};
    std::chrono::steady_clock::time_point connected_at{};  // when `dealer` was made
  };
  LinkSet(::zmq::context_t& context, LinkSetConfig config);
  // `body` is moved into the event of a bundle frame.
  void HandleFrame(NodeNumber peer, ::zmq::message_t& body, bool from_router,
                   clock::DtnTime mission_now, std::chrono::steady_clock::time_point wall_now,
                   std::vector<LinkEvent>& events);
  bool SendOnRouter(NodeNumber to, std::span<const std::uint8_t> frame);
  // (Re)creates the peer's DEALER and connects it. Throws ::zmq::error_t (Create catches it).
  void Connect(Peer& peer);

  ::zmq::context_t& context_;
  LinkSetConfig config_;
  ::zmq::socket_t router_;
  std::map<NodeNumber, Peer> peers_;
  std::chrono::steady_clock::time_point next_ping_{};
  LinkCounters counters_;
};

// "ipn:7" <-> 7: the routing id a node's DEALER announces.
std::string RoutingId(NodeNumber node);
std::optional<NodeNumber> ParseRoutingId(std::string_view id);

}  // namespace ics::dtn::zmq
