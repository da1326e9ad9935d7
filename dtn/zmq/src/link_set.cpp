#include "dtn/zmq/link_set.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace ics::dtn::zmq {

std::string RoutingId(NodeNumber node) { return fmt::format("ipn:{}", node); }

std::optional<NodeNumber> ParseRoutingId(std::string_view id) {
  if (!id.starts_with("ipn:") || id.size() > 24) return std::nullopt;
  NodeNumber node = 0;
  const char* first = id.data() + 4;
  const char* last = id.data() + id.size();
  auto [ptr, ec] = std::from_chars(first, last, node);
  if (ec != std::errc() || ptr != last || first == last || node == 0) return std::nullopt;
  return node;
}

LinkSet::LinkSet(::zmq::context_t& context, LinkSetConfig config)
    : context_(context), config_(std::move(config)), router_(context_, ::zmq::socket_type::router) {}

std::expected<std::unique_ptr<LinkSet>, std::string> LinkSet::Create(::zmq::context_t& context,
                                                                     LinkSetConfig config) {
  std::unique_ptr<LinkSet> links(new LinkSet(context, std::move(config)));
  const LinkSetConfig& c = links->config_;
  try {
    auto& r = links->router_;
    r.set(::zmq::sockopt::linger, 0);
    r.set(::zmq::sockopt::router_handover, 1);
    r.set(::zmq::sockopt::router_mandatory, 1);
    r.set(::zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(c.max_frame_bytes));
    r.set(::zmq::sockopt::sndhwm, c.send_hwm);
    r.set(::zmq::sockopt::rcvhwm, c.send_hwm);
    r.bind(c.listen);
    for (const auto& [node, endpoint] : c.neighbours) {
      Peer peer;
      peer.endpoint = endpoint;
      links->Connect(peer);
      links->peers_.emplace(node, std::move(peer));
    }
  } catch (const ::zmq::error_t& e) {
    return std::unexpected(fmt::format("link setup (listen {}): {}", c.listen, e.what()));
  }
  return links;
}

void LinkSet::Connect(Peer& peer) {
  auto dealer = std::make_unique<::zmq::socket_t>(context_, ::zmq::socket_type::dealer);
  auto& d = *dealer;
  d.set(::zmq::sockopt::linger, 0);
  d.set(::zmq::sockopt::immediate, 1);
  d.set(::zmq::sockopt::routing_id, RoutingId(config_.self));
  // The dealer receives acks frames and pongs only. An acks frame is cut at about kMaxAcksFrameBytes
  // (one entry may cross it) whatever the bundle size limit, so a node run with a small
  // --max-bundle-bytes must still accept it: ZeroMQ drops the connection on an oversized message.
  d.set(::zmq::sockopt::maxmsgsize,
        static_cast<std::int64_t>(std::max(config_.max_frame_bytes, 2 * kMaxAcksFrameBytes)));
  d.set(::zmq::sockopt::sndhwm, config_.send_hwm);
  d.set(::zmq::sockopt::reconnect_ivl, 100);
  d.set(::zmq::sockopt::reconnect_ivl_max, 1000);
  d.connect(peer.endpoint);
  peer.dealer = std::move(dealer);
  peer.connected_at = std::chrono::steady_clock::now();
}

void LinkSet::AppendPollItems(std::vector<::zmq::pollitem_t>& items) {
  items.push_back({router_.handle(), 0, ZMQ_POLLIN, 0});
  for (auto& [node, peer] : peers_) items.push_back({peer.dealer->handle(), 0, ZMQ_POLLIN, 0});
}

void LinkSet::Receive(clock::DtnTime mission_now, std::chrono::steady_clock::time_point wall_now,
                      std::vector<LinkEvent>& events) {
  // Drain at most a bounded number of frames per call so one busy peer cannot starve the loop.
  constexpr int kMaxFramesPerCall = 4096;
  for (int i = 0; i < kMaxFramesPerCall; ++i) {
    ::zmq::message_t identity;
    if (!router_.recv(identity, ::zmq::recv_flags::dontwait)) break;
    ::zmq::message_t body;
    if (!identity.more() || !router_.recv(body, ::zmq::recv_flags::dontwait)) {
      ++counters_.bad_frames;
      continue;
    }
    // A DEALER sends single-part messages; anything more is drained and dropped.
    bool extra = body.more();
    while (extra) {
      ::zmq::message_t rest;
      if (!router_.recv(rest, ::zmq::recv_flags::dontwait)) break;
      extra = rest.more();
    }
    auto peer = ParseRoutingId(identity.to_string_view());
    if (!peer || !peers_.contains(*peer)) {
      ++counters_.unknown_peer_frames;
      continue;
    }
    HandleFrame(*peer, body, true, mission_now, wall_now, events);
  }
  for (auto& [node, peer] : peers_) {
    for (int i = 0; i < kMaxFramesPerCall; ++i) {
      ::zmq::message_t body;
      if (!peer.dealer->recv(body, ::zmq::recv_flags::dontwait)) break;
      HandleFrame(node, body, false, mission_now, wall_now, events);
    }
  }
}

void LinkSet::HandleFrame(NodeNumber peer, ::zmq::message_t& body, bool from_router, clock::DtnTime mission_now,
                          std::chrono::steady_clock::time_point wall_now, std::vector<LinkEvent>& events) {
  const std::span<const std::uint8_t> bytes(static_cast<const std::uint8_t*>(body.data()), body.size());
  ++counters_.frames_in;
  counters_.bytes_in += bytes.size();
  auto frame = ParseFrame(bytes);
  if (!frame) {
    ++counters_.bad_frames;
    auto e = LinkEvent::Of(LinkEvent::Kind::kBadFrame, peer);
    e.reason = frame.error();
    events.push_back(std::move(e));
    return;
  }
  if (auto* b = std::get_if<BundleFrame>(&*frame)) {
    // Bundles travel DEALER -> ROUTER only; one on the wrong socket is a confused peer.
    if (!from_router) {
      ++counters_.bad_frames;
      auto e = LinkEvent::Of(LinkEvent::Kind::kBadFrame, peer);
      e.reason = "bundle frame on an ack channel";
      events.push_back(std::move(e));
      return;
    }
    // The event keeps the message: the node reads the bundle where ZeroMQ received it.
    auto& e = events.emplace_back(LinkEvent::Of(LinkEvent::Kind::kBundle, peer));
    e.sent = b->sent;
    e.bundle_offset = static_cast<std::size_t>(b->bundle.data() - bytes.data());
    e.frame = std::move(body);
  } else if (auto* a = std::get_if<AckFrame>(&*frame)) {
    auto e = LinkEvent::Of(LinkEvent::Kind::kAck, peer);
    e.sent = a->sent;
    e.ack = *a;
    events.push_back(std::move(e));
  } else if (auto* as = std::get_if<AcksFrame>(&*frame)) {
    auto e = LinkEvent::Of(LinkEvent::Kind::kAcks, peer);
    e.sent = as->sent;
    e.acks = std::move(as->acks);
    events.push_back(std::move(e));
  } else if (auto* p = std::get_if<PingFrame>(&*frame)) {
    if (!p->pong && from_router) {
      SendOnRouter(peer, MakePingFrame(PingFrame{mission_now, config_.self, true}));
    } else if (p->pong && !from_router) {
      Peer& state = peers_.at(peer);
      state.last_pong = wall_now;
      if (!state.up) {
        state.up = true;
        events.push_back(LinkEvent::Of(LinkEvent::Kind::kUp, peer));
      }
    }
  }
}

void LinkSet::Heartbeat(clock::DtnTime mission_now, std::chrono::steady_clock::time_point wall_now,
                        std::vector<LinkEvent>& events) {
  const auto down_after = config_.ping_interval * config_.pongs_missed_before_down;
  for (auto& [node, peer] : peers_) {
    if (peer.up && wall_now - peer.last_pong > down_after) {
      peer.up = false;
      events.push_back(LinkEvent::Of(LinkEvent::Kind::kDown, node));
    }
    if (!peer.up && wall_now - std::max(peer.last_pong, peer.connected_at) > config_.reconnect_silent_after) {
      try {
        Connect(peer);
        ++counters_.reconnects;
      } catch (const ::zmq::error_t&) {
        // Cannot happen for an endpoint that connected once; keep the old socket and retry later.
        peer.connected_at = wall_now;
      }
    }
  }
  if (wall_now < next_ping_) return;
  next_ping_ = wall_now + config_.ping_interval;
  const auto ping = MakePingFrame(PingFrame{mission_now, config_.self, false});
  for (auto& [node, peer] : peers_) {
    // With ZMQ_IMMEDIATE a ping to a neighbour that is not connected fails at once: that is the
    // expected "down" case, not an error.
    if (peer.dealer->send(::zmq::buffer(ping), ::zmq::send_flags::dontwait)) ++counters_.frames_out;
  }
}

SendResult LinkSet::SendBundle(NodeNumber to, clock::DtnTime mission_now, std::span<const std::uint8_t> bundle) {
  std::vector<std::uint8_t> frame(kFrameHeaderBytes);
  frame.insert(frame.end(), bundle.begin(), bundle.end());  // one copy of the bundle
  return SendBundleFrame(to, mission_now, std::move(frame));
}

SendResult LinkSet::SendBundleFrame(NodeNumber to, clock::DtnTime mission_now, std::vector<std::uint8_t>&& frame) {
  auto it = peers_.find(to);
  if (it == peers_.end()) return SendResult::kUnknownNeighbour;
  if (frame.size() < kFrameHeaderBytes) {
    std::fprintf(stderr, "ics::dtn::zmq LinkSet::SendBundleFrame: %zu bytes, no room for the frame header\n",
                 frame.size());
    std::abort();
  }
  WriteBundleFrameHeader(frame, mission_now);
  // The message owns the vector once it is made: its I/O thread frees it once the bytes are sent
  // (a message that is not sent frees it when it is destroyed below).
  auto owned = std::make_unique<std::vector<std::uint8_t>>(std::move(frame));
  ::zmq::message_t message(
      owned->data(), owned->size(),
      [](void*, void* hint) { delete static_cast<std::vector<std::uint8_t>*>(hint); }, owned.get());
  (void)owned.release();
  const std::size_t size = message.size();
  if (!it->second.dealer->send(message, ::zmq::send_flags::dontwait)) {
    ++counters_.would_block;
    return SendResult::kWouldBlock;
  }
  ++counters_.frames_out;
  counters_.bytes_out += size;
  return SendResult::kSent;
}

SendResult LinkSet::SendAck(NodeNumber to, const AckFrame& ack) {
  if (!peers_.contains(to)) return SendResult::kUnknownNeighbour;
  return SendOnRouter(to, MakeAckFrame(ack)) ? SendResult::kSent : SendResult::kWouldBlock;
}

SendResult LinkSet::SendAcks(NodeNumber to, clock::DtnTime sent, std::span<const AckFrame> acks) {
  if (!peers_.contains(to)) return SendResult::kUnknownNeighbour;
  SendResult result = SendResult::kSent;
  std::size_t begin = 0;
  const Eid* last_source = nullptr;  // the entries mostly share a source: its text length once
  std::size_t last_source_bytes = 0;
  while (begin < acks.size()) {
    std::size_t end = begin;
    std::size_t bytes = kFrameHeaderBytes + 2;
    while (end < acks.size() && end - begin < kMaxAcksPerFrame) {
      const BundleId& id = acks[end].id;
      if (last_source == nullptr || !(*last_source == id.source)) {
        last_source = &id.source;
        last_source_bytes = id.source.ToString().size();
      }
      const std::size_t entry = kMinAckBodyBytes + last_source_bytes + (id.fragment_offset ? 16 : 0);
      if (end > begin && bytes + entry > kMaxAcksFrameBytes) break;
      bytes += entry;
      ++end;
    }
    if (!SendOnRouter(to, MakeAcksFrame(sent, acks.subspan(begin, end - begin)))) result = SendResult::kWouldBlock;
    begin = end;
  }
  return result;
}

bool LinkSet::SendOnRouter(NodeNumber to, std::span<const std::uint8_t> frame) {
  const std::string id = RoutingId(to);
  try {
    if (!router_.send(::zmq::buffer(id), ::zmq::send_flags::sndmore | ::zmq::send_flags::dontwait)) {
      ++counters_.would_block;
      return false;
    }
    router_.send(::zmq::buffer(frame.data(), frame.size()), ::zmq::send_flags::dontwait);
  } catch (const ::zmq::error_t& e) {
    // EHOSTUNREACH (ROUTER_MANDATORY): the neighbour's DEALER is not connected right now. The
    // neighbour retransmits what it does not see acknowledged, so dropping here is safe.
    ++counters_.unroutable;
    return false;
  }
  ++counters_.frames_out;
  counters_.bytes_out += frame.size();
  return true;
}

bool LinkSet::IsUp(NodeNumber peer) const {
  auto it = peers_.find(peer);
  return it != peers_.end() && it->second.up;
}

}  // namespace ics::dtn::zmq
