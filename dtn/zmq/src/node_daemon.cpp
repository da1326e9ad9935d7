#include "dtn/zmq/node_daemon.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iterator>
#include <nlohmann/json.hpp>

#include "dtn/sqlite_bundle_store.h"
#include "dtn/zmq/app_protocol.h"

namespace ics::dtn::zmq {

using nlohmann::json;

namespace {

constexpr std::size_t kHeldFramesMax = 200'000;  // frames "in light" at once; more are dropped (and retransmitted)

// Text from the network (EIDs, error details) may hold invalid UTF-8: dump replaces it rather
// than throwing.
constexpr auto kReplace = json::error_handler_t::replace;

// Appends `text` as a JSON string. EIDs and bundle IDs are printable ASCII in practice and are
// copied as they are (the per-bundle replies are built without a JSON document); anything else
// goes through the JSON library (escapes, invalid UTF-8 replaced).
void AppendJsonString(std::string& out, std::string_view text) {
  const bool plain =
      std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
  if (plain) {
    out += '"';
    out += text;
    out += '"';
  } else {
    out += json(std::string(text)).dump(-1, ' ', false, kReplace);
  }
}

std::span<const std::uint8_t> View(const ::zmq::message_t& m) {
  return {static_cast<const std::uint8_t*>(m.data()), m.size()};
}

}  // namespace

struct NodeDaemon::Endpoint {
  std::string client;            // the app client that registered it last (empty: none)
  bool binary = false;           // that client asked for binary deliver headers
  std::deque<Deliver> waiting;   // not yet handed to a client
  std::map<BundleId, Deliver> unconfirmed;  // handed to a client, not yet confirmed
};

std::expected<std::pair<NodeNumber, std::string>, std::string> ParseNeighbour(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos) {
    return std::unexpected(fmt::format("--neighbour '{}': expected ipn:N=ENDPOINT", text));
  }
  auto node = ParseRoutingId(text.substr(0, eq));
  if (!node) return std::unexpected(fmt::format("--neighbour '{}': '{}' is not ipn:N", text, text.substr(0, eq)));
  const std::string_view endpoint = text.substr(eq + 1);
  if (!endpoint.starts_with("tcp://") && !endpoint.starts_with("ipc://")) {
    return std::unexpected(fmt::format("--neighbour '{}': endpoint must be tcp:// or ipc://", text));
  }
  return std::pair{*node, std::string(endpoint)};
}

NodeDaemon::NodeDaemon(DaemonOptions options) : options_(std::move(options)) {}

NodeDaemon::~NodeDaemon() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

std::expected<std::unique_ptr<NodeDaemon>, std::string> NodeDaemon::Open(DaemonOptions options) {
  std::unique_ptr<NodeDaemon> daemon(new NodeDaemon(std::move(options)));
  if (auto ok = daemon->Init(); !ok) return std::unexpected(ok.error());
  return daemon;
}

std::expected<void, std::string> NodeDaemon::Init() {
  const DaemonOptions& o = options_;
  if (o.node == 0) return std::unexpected("--id: node number must be > 0");
  if (!(o.time_scale > 0)) return std::unexpected("--time-scale must be > 0");
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  if (ec) return std::unexpected(fmt::format("--data {}: {}", o.data_dir, ec.message()));

  const clock::DtnTime wall_now = clock::SystemClock().Now();
  const clock::DtnTime origin = o.time_origin.value_or(wall_now);
  auto scaled = std::make_unique<clock::ScaledClock>(clock::ScaledClock::Origin{origin, origin}, o.time_scale);
  scaled_ = scaled.get();
  clock_ = std::move(scaled);

  auto plan = LoadContactPlan(o.plan_path, o.plan_epoch.value_or(origin));
  if (!plan) return std::unexpected(plan.error().ToString());
  plan_ = std::move(*plan);

  SqliteBundleStoreOptions store_options;
  store_options.limits = o.limits;
  const std::string store_path = (std::filesystem::path(o.data_dir) / "bundles.db").string();
  auto store = SqliteBundleStore::Open(store_path, store_options);
  if (!store) return std::unexpected(store.error().message);
  // Bundles whose segment bytes are missing or short stay stored (the rest of the store is
  // intact); an operator must hear of them before a read fails.
  for (const std::string& line : (*store)->damaged()) {
    std::fprintf(stderr, "%s: %s: damaged stored bundle: %s\n", o.name.c_str(), store_path.c_str(), line.c_str());
  }
  store_ = std::move(*store);

  NodeConfig config;
  config.node = o.node;
  config.plan = &plan_;
  config.decode_limits.max_bundle_bytes = o.max_bundle_bytes;
  config.decode_limits.max_payload_bytes = o.max_bundle_bytes;
  config.window_per_neighbour = o.window_per_neighbour;
  config.window_bytes_per_neighbour = o.window_bytes_per_neighbour;
  config.record_events = o.log_events;
  config.transmit_headroom = kFrameHeaderBytes;  // Perform sends each Transmit's buffer as the frame
  node_ = std::make_unique<Node>(config, *store_);

  LinkSetConfig link_config;
  link_config.self = o.node;
  link_config.listen = o.listen;
  link_config.neighbours = o.neighbours;
  link_config.max_frame_bytes = o.max_bundle_bytes + kFrameHeaderBytes;
  auto links = LinkSet::Create(context_, link_config);
  if (!links) return std::unexpected(links.error());
  links_ = std::move(*links);
  for (const auto& [n, endpoint] : o.neighbours) contact_[n] = false;

  if (!o.app_endpoint.empty()) {
    try {
      app_ = std::make_unique<::zmq::socket_t>(context_, ::zmq::socket_type::router);
      app_->set(::zmq::sockopt::linger, 0);
      app_->set(::zmq::sockopt::router_mandatory, 1);
      // Replies are never dropped for a well-behaved client: ics-dtn send keeps at most 1,024
      // requests outstanding and a client holds at most kDeliveryWindow deliveries.
      app_->set(::zmq::sockopt::sndhwm, 20000);
      app_->set(::zmq::sockopt::rcvhwm, 20000);
      app_->set(::zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(o.max_bundle_bytes + kMaxHeaderBytes + 64));
      app_->bind(o.app_endpoint);
    } catch (const ::zmq::error_t& e) {
      return std::unexpected(fmt::format("--app {}: {}", o.app_endpoint, e.what()));
    }
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return std::unexpected("cannot block signals");
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) return std::unexpected(fmt::format("signalfd: {}", std::strerror(errno)));
  return {};
}

void NodeDaemon::RegisterLocal(const Eid& endpoint, LocalDelivery handler) {
  local_[endpoint] = std::move(handler);
  node_->RegisterEndpoint(endpoint, Now());
  work_pending_ = true;
}

std::expected<BundleId, SendError> NodeDaemon::Send(const SendRequest& request) {
  return node_->Send(request, Now());
}

void NodeDaemon::Confirm(const Eid& endpoint, const BundleId& id) { node_->ConfirmDelivery(endpoint, id, Now()); }

void NodeDaemon::AddSocket(::zmq::socket_t& socket, std::function<void()> on_readable) {
  sockets_.emplace_back(&socket, std::move(on_readable));
}

void NodeDaemon::AddTimer(std::function<std::optional<clock::DtnTime>()> next,
                          std::function<void(clock::DtnTime)> fire) {
  timers_.emplace_back(std::move(next), std::move(fire));
}

void NodeDaemon::AddBeforeCommit(std::function<void()> hook) { before_commit_.push_back(std::move(hook)); }

int NodeDaemon::Run() {
  if (options_.log_events) {
    fmt::print("{}\n", json{{"ts", Now().ToIso8601()}, {"node", options_.node}, {"event", "start"},
                            {"listen", options_.listen}, {"stored", store_->usage().bundles}}
                           .dump(-1, ' ', false, kReplace));
    std::fflush(stdout);
  }
  while (!stop_) {
    Turn();
    if (node_->store_error()) {
      std::fprintf(stderr, "%s: store failed, exiting for a restart: %s\n", options_.name.c_str(),
                   node_->store_error()->message.c_str());
      return 1;
    }
  }
  if (commit_failed_) {
    // A turn's commit failed (Turn logged why): its output was never performed and its writes
    // were rolled back. The final commit below would find nothing staged and succeed, so without
    // this the process would exit 0 and a supervisor would not see that the store is failing.
    std::fprintf(stderr, "%s: exiting with status 1 after a failed store commit\n", options_.name.c_str());
    std::fflush(stderr);
    return 1;
  }
  // SIGTERM: everything accepted is committed (each turn commits before it acts); what is in
  // flight stays stored and is retransmitted after a restart.
  if (auto committed = store_->Commit(); !committed) {
    std::fprintf(stderr, "%s: final commit failed, exiting with status 1: %s\n", options_.name.c_str(),
                 committed.error().message.c_str());
    std::fflush(stderr);
    return 1;
  }
  if (options_.log_events) {
    fmt::print("{}\n", json{{"ts", Now().ToIso8601()}, {"node", options_.node}, {"event", "stop"}}.dump(-1, ' ', false, kReplace));
  }
  std::fflush(stdout);
  return 0;
}

std::optional<clock::DtnTime> NodeDaemon::NextWake(clock::DtnTime now) const {
  std::optional<clock::DtnTime> wake = node_->NextDeadline();
  auto earliest = [&wake](std::optional<clock::DtnTime> t) {
    if (t && (!wake || *t < *wake)) wake = t;
  };
  for (const auto& [next, fire] : timers_) earliest(next());
  if (!held_.empty()) earliest(clock::DtnTime::FromMillis(held_.begin()->first.first));
  for (const auto& [n, open] : contact_) {
    if (auto c = plan_.ContactAt(options_.node, n, now)) {
      earliest(c->end);
    } else {
      earliest(plan_.NextContactStart(options_.node, n, now));
    }
  }
  return wake;
}

void NodeDaemon::Turn() {
  clock::DtnTime now = Now();
  std::vector<::zmq::pollitem_t>& items = poll_items_;  // reused: no allocation per turn
  items.clear();
  items.push_back({nullptr, signal_fd_, ZMQ_POLLIN, 0});
  const std::size_t link_begin = items.size();
  links_->AppendPollItems(items);
  const std::size_t app_index = items.size();
  if (app_) items.push_back({app_->handle(), 0, ZMQ_POLLIN, 0});
  const std::size_t sockets_begin = items.size();
  for (auto& [socket, fn] : sockets_) items.push_back({socket->handle(), 0, ZMQ_POLLIN, 0});

  auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(links_->NextHeartbeat() -
                                                                       std::chrono::steady_clock::now());
  if (auto wake = NextWake(now)) {
    const auto until = *wake <= now ? std::chrono::milliseconds(0)
                                    : std::chrono::ceil<std::chrono::milliseconds>(scaled_->WallSpan(*wake - now));
    timeout = std::min(timeout, until);
  }
  if (work_pending_) timeout = std::chrono::milliseconds(0);
  work_pending_ = false;
  timeout = std::clamp(timeout, std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
  try {
    ::zmq::poll(items, timeout);
  } catch (const ::zmq::error_t& e) {
    if (e.num() != EINTR) throw;
  }
  if (items[0].revents & ZMQ_POLLIN) HandleSignals();

  now = Now();
  const auto wall = std::chrono::steady_clock::now();
  std::vector<LinkEvent>& events = link_events_;  // reused: its capacity stays
  events.clear();
  bool link_readable = false;
  for (std::size_t i = link_begin; i < app_index; ++i) link_readable |= (items[i].revents & ZMQ_POLLIN) != 0;
  if (link_readable) links_->Receive(now, wall, events);
  links_->Heartbeat(now, wall, events);
  for (auto& e : events) HandleLinkEvent(std::move(e), now);
  events.clear();  // releases the received messages now, not at the next turn
  while (!held_.empty() && held_.begin()->first.first <= now.millis()) {
    ApplyLinkEvent(held_.begin()->second, now);
    held_.erase(held_.begin());
  }
  if (app_ && (items[app_index].revents & ZMQ_POLLIN)) HandleApp();
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    if (items[sockets_begin + i].revents & ZMQ_POLLIN) sockets_[i].second();
  }
  // The application and embedder handlers above may have called the node with a later Now():
  // the node's time must never go backwards, so `now` is read again before each later call.
  now = Now();
  UpdateContacts(now);
  for (auto& [next, fire] : timers_) {
    if (auto t = next(); t && *t <= now) fire(now);
  }
  for (auto& hook : before_commit_) hook();
  now = Now();
  if (auto d = node_->NextDeadline(); d && *d <= now) node_->OnTick(now);
  NodeOutput output = node_->TakeOutput();
  if (auto committed = store_->Commit(); !committed) {
    // Nothing of this turn's output may be performed: it depends on writes that are not durable.
    std::fprintf(stderr, "%s: store commit failed: %s\n", options_.name.c_str(), committed.error().message.c_str());
    commit_failed_ = true;
    stop_ = true;
    return;
  }
  for (const StoredReply& r : stored_replies_) {
    if (r.binary) {
      reply_scratch_.clear();
      AppendStoredHeader(reply_scratch_, r.tag, r.id);
      ReplyApp(r.client, "stored", reply_scratch_);
    } else {
      ReplyApp(r.client, "stored", r.json_header);
    }
  }
  stored_replies_.clear();
  Perform(std::move(output), now);
}

void NodeDaemon::HandleSignals() {
  signalfd_siginfo info;
  while (::read(signal_fd_, &info, sizeof info) == sizeof info) {
    if (info.ssi_signo == SIGUSR1) {
      std::fprintf(stderr, "%s\n", CountersJson().c_str());
      std::fflush(stderr);
    } else {
      stop_ = true;
    }
  }
}

void NodeDaemon::HandleLinkEvent(LinkEvent event, clock::DtnTime now) {
  const bool in_light = event.kind == LinkEvent::Kind::kBundle || event.kind == LinkEvent::Kind::kAck ||
                        event.kind == LinkEvent::Kind::kAcks;
  if (options_.emulate_light_time && in_light) {
    const auto owlt = plan_.OwltAt(options_.node, event.peer, event.sent).value_or(clock::Duration(0));
    const clock::DtnTime due = event.sent + owlt;
    if (due > now) {
      if (held_.size() >= kHeldFramesMax) {
        ++held_dropped_;  // as if lost in space: custody retransmits it
        return;
      }
      held_.emplace(std::pair{due.millis(), held_order_++}, std::move(event));
      return;
    }
  }
  ApplyLinkEvent(event, now);
}

void NodeDaemon::ApplyLinkEvent(const LinkEvent& event, clock::DtnTime now) {
  switch (event.kind) {
    case LinkEvent::Kind::kBundle:
      node_->OnBundleReceived(event.peer, event.bundle(), now);
      break;
    case LinkEvent::Kind::kAck:
      if (event.ack.status != AckStatus::kRefused) node_->OnAcknowledged(event.peer, event.ack.id, now);
      break;
    case LinkEvent::Kind::kAcks:
      for (const AckFrame& ack : event.acks) {
        if (ack.status != AckStatus::kRefused) node_->OnAcknowledged(event.peer, ack.id, now);
      }
      break;
    case LinkEvent::Kind::kBadFrame:
      if (options_.log_events) {
        fmt::print("{}\n", json{{"ts", now.ToIso8601()}, {"node", options_.node}, {"event", "bad-frame"},
                                {"neighbour", event.peer}, {"reason", event.reason}}
                               .dump(-1, ' ', false, kReplace));
      }
      break;
    case LinkEvent::Kind::kUp:
    case LinkEvent::Kind::kDown:
      if (options_.log_events) {
        fmt::print("{}\n", json{{"ts", now.ToIso8601()}, {"node", options_.node},
                                {"event", event.kind == LinkEvent::Kind::kUp ? "link-up" : "link-down"},
                                {"neighbour", event.peer}}
                               .dump(-1, ' ', false, kReplace));
      }
      break;
  }
}

void NodeDaemon::UpdateContacts(clock::DtnTime now) {
  for (auto& [n, open] : contact_) {
    const bool want = links_->IsUp(n) && plan_.IsLinkOpen(options_.node, n, now);
    if (want == open) continue;
    open = want;
    if (want) {
      node_->OnContactStart(n, now);
    } else {
      node_->OnContactEnd(n, now);
    }
    if (options_.log_events) {
      fmt::print("{}\n", json{{"ts", now.ToIso8601()}, {"node", options_.node},
                              {"event", want ? "contact-start" : "contact-end"}, {"neighbour", n}}
                             .dump(-1, ' ', false, kReplace));
    }
  }
}

void NodeDaemon::HandleApp() {
  // Everything ready now, bounded per turn so that one chatty client cannot starve the links (the
  // rest waits in ZeroMQ's queue for the next turn). The parts live in a fixed array: no
  // allocation per message beyond ZeroMQ's own.
  constexpr int kMaxMessagesPerTurn = 4096;
  constexpr std::size_t kMaxParts = 3;  // verb, header, payload
  std::array<::zmq::message_t, kMaxParts> parts;
  ::zmq::message_t identity;
  for (int i = 0; i < kMaxMessagesPerTurn; ++i) {
    if (!app_->recv(identity, ::zmq::recv_flags::dontwait)) return;
    std::size_t count = 0;
    bool more = identity.more();
    while (more && count < kMaxParts) {
      if (!app_->recv(parts[count], ::zmq::recv_flags::dontwait)) break;
      more = parts[count].more();
      ++count;
    }
    bool too_long = false;
    while (more) {  // drain an over-long message
      ::zmq::message_t rest;
      if (!app_->recv(rest, ::zmq::recv_flags::dontwait)) break;
      more = rest.more();
      too_long = true;
    }
    const std::string client = identity.to_string();
    if (count < 2 || too_long || parts[1].size() > kMaxHeaderBytes) {
      AppReject(client, "error", "", "malformed request: want [verb][header][payload]");
      continue;
    }
    std::span<const std::uint8_t> payload;
    if (count == 3) payload = View(parts[2]);
    HandleAppMessage(client, parts[0].to_string_view(), parts[1].to_string_view(), payload);
  }
}

void NodeDaemon::AppReject(const std::string& client, std::string_view reply, std::string_view verb,
                           const std::string& why, std::string_view tag_json) {
  ++app_errors_;
  std::string header = json{{"error", why}}.dump(-1, ' ', false, kReplace);
  if (!tag_json.empty()) {  // {"error":...,"tag":...}: the keys in the order a json dump writes them
    header.pop_back();
    header += ",\"tag\":";
    header += tag_json;
    header += '}';
  }
  ReplyApp(client, reply, header);
  if (options_.log_events) {
    fmt::print("{}\n", json{{"ts", Now().ToIso8601()}, {"node", options_.node}, {"event", "app-error"},
                            {"verb", std::string(verb.substr(0, 32))}, {"reason", why}}
                           .dump(-1, ' ', false, kReplace));
  }
}

void NodeDaemon::HandleBinaryAppMessage(const std::string& client, std::string_view verb, std::string_view header,
                                        std::span<const std::uint8_t> payload) {
  const clock::DtnTime now = Now();
  if (verb == "send") {
    auto h = ParseSendHeader(header);
    if (!h) return AppReject(client, "refused", verb, h.error());
    SendRequest request;
    request.destination = std::move(h->to);
    request.source = h->from.is_none() ? Eid::Ipn(options_.node, 0) : std::move(h->from);
    request.priority = h->priority;
    request.lifetime = clock::Duration(h->lifetime_ms);
    request.payload.assign(payload.begin(), payload.end());
    auto id = node_->Send(std::move(request), now);  // the payload moves into the bundle
    if (!id) return AppReject(client, "refused", verb, std::string(SendErrorName(id.error())), std::to_string(h->tag));
    StoredReply reply;
    reply.client = client;
    reply.binary = true;
    reply.tag = h->tag;
    reply.id = std::move(*id);
    stored_replies_.push_back(std::move(reply));
  } else if (verb == "confirm") {
    auto h = ParseConfirmHeader(header);
    if (!h) return AppReject(client, "error", verb, h.error());
    if (auto eid = CheckOwnEndpoint(h->endpoint); !eid) return AppReject(client, "error", verb, eid.error());
    auto state = app_endpoints_.find(h->endpoint);
    for (const BundleId& id : h->ids) {
      if (state != app_endpoints_.end()) state->second->unconfirmed.erase(id);
      node_->ConfirmDelivery(h->endpoint, id, now);
    }
    PumpDeliveries(h->endpoint);
  } else {
    AppReject(client, "error", verb,
              fmt::format("a binary header is defined for send and confirm only, not '{}'", verb.substr(0, 32)));
  }
}

std::expected<void, std::string> NodeDaemon::CheckOwnEndpoint(const Eid& eid) const {
  if (eid.scheme() == Eid::Scheme::kIpn && eid.node() != options_.node) {
    return std::unexpected(fmt::format("{} is not an endpoint of node {}", eid.ToString(), options_.node));
  }
  if (eid.is_none()) return std::unexpected("dtn:none is not an endpoint");
  return {};
}

void NodeDaemon::HandleAppMessage(const std::string& client, std::string_view verb, std::string_view header_text,
                                  std::span<const std::uint8_t> payload) {
  if (IsBinaryHeader(header_text)) return HandleBinaryAppMessage(client, verb, header_text, payload);
  const clock::DtnTime now = Now();
  json header = json::parse(header_text, nullptr, /*allow_exceptions=*/false);
  auto fail = [&](std::string_view reply, const std::string& why, const json* tag = nullptr) {
    AppReject(client, reply, verb, why, tag != nullptr ? tag->dump(-1, ' ', false, kReplace) : std::string());
  };
  if (!header.is_object()) return fail("error", "header is not a JSON object");
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = header.find(key);
    if (it == header.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto endpoint_of = [&]() -> std::expected<Eid, std::string> {
    auto e = text("endpoint");
    if (!e) return std::unexpected("missing \"endpoint\"");
    auto eid = Eid::Parse(*e);
    if (!eid) return std::unexpected(eid.error());
    if (eid->scheme() == Eid::Scheme::kIpn && eid->node() != options_.node) {
      return std::unexpected(fmt::format("{} is not an endpoint of node {}", *e, options_.node));
    }
    return eid;
  };

  if (verb == "send") {
    json tag = header.value("tag", json());
    auto to = text("to");
    if (!to) return fail("refused", "missing \"to\"", &tag);
    auto destination = Eid::Parse(*to);
    if (!destination) return fail("refused", destination.error(), &tag);
    SendRequest request;
    request.destination = *destination;
    request.source = Eid::Ipn(options_.node, 0);
    if (auto from = text("from")) {
      auto source = Eid::Parse(*from);
      if (!source) return fail("refused", source.error(), &tag);
      request.source = *source;
    }
    const auto priority = ParsePriority(text("priority").value_or("normal"));
    if (!priority) return fail("refused", "priority must be expedited, normal or bulk", &tag);
    request.priority = *priority;
    std::int64_t lifetime_ms = 86'400'000;
    if (auto it = header.find("lifetime_ms"); it != header.end()) {
      if (!it->is_number_integer()) return fail("refused", "lifetime_ms must be an integer", &tag);
      lifetime_ms = it->get<std::int64_t>();
    }
    request.lifetime = clock::Duration(lifetime_ms);
    request.payload.assign(payload.begin(), payload.end());
    auto id = node_->Send(std::move(request), now);
    if (!id) return fail("refused", std::string(SendErrorName(id.error())), &tag);
    // {"id":...,"tag":...}, as json{...}.dump() would write it.
    StoredReply reply;
    reply.client = client;
    reply.json_header = "{\"id\":";
    AppendJsonString(reply.json_header, id->ToString());
    reply.json_header += ",\"tag\":";
    reply.json_header += tag.dump(-1, ' ', false, kReplace);
    reply.json_header += '}';
    stored_replies_.push_back(std::move(reply));
  } else if (verb == "register") {
    auto eid = endpoint_of();
    if (!eid) return fail("error", eid.error());
    bool binary = false;
    if (auto it = header.find("binary"); it != header.end()) {
      if (!it->is_boolean()) return fail("error", "\"binary\" must be true or false");
      binary = it->get<bool>();
    }
    auto& state = app_endpoints_[*eid];
    if (!state) state = std::make_unique<Endpoint>();
    state->client = client;
    state->binary = binary;
    // A new registration (a restarted client) gets back what the last one never confirmed.
    for (auto it = state->unconfirmed.rbegin(); it != state->unconfirmed.rend(); ++it) {
      it->second.possible_redelivery = true;
      state->waiting.push_front(std::move(it->second));
    }
    state->unconfirmed.clear();
    node_->RegisterEndpoint(*eid, now);
    ReplyApp(client, "registered", json{{"endpoint", eid->ToString()}}.dump(-1, ' ', false, kReplace));
    PumpDeliveries(*eid);
  } else if (verb == "unregister") {
    auto eid = endpoint_of();
    if (!eid) return fail("error", eid.error());
    if (auto it = app_endpoints_.find(*eid); it != app_endpoints_.end() && it->second->client == client) {
      it->second->client.clear();
    }
    ReplyApp(client, "unregistered", json{{"endpoint", eid->ToString()}}.dump(-1, ' ', false, kReplace));
  } else if (verb == "confirm") {
    auto eid = endpoint_of();
    if (!eid) return fail("error", eid.error());
    auto state = app_endpoints_.find(*eid);
    auto confirm = [&](const std::string& id_text) -> bool {
      auto id = ParseBundleId(id_text);
      if (!id) {
        fail("error", id.error());
        return false;
      }
      if (state != app_endpoints_.end()) state->second->unconfirmed.erase(*id);
      node_->ConfirmDelivery(*eid, *id, now);
      return true;
    };
    if (auto ids = header.find("ids"); ids != header.end()) {
      // A cumulative confirm: one message for every delivery a client has processed (the header
      // bound, kMaxHeaderBytes, bounds how many).
      if (!ids->is_array()) return fail("error", "\"ids\" must be an array of bundle IDs");
      for (const auto& id : *ids) {
        if (!id.is_string()) return fail("error", "\"ids\" must be an array of bundle IDs");
        if (!confirm(id.get_ref<const std::string&>())) return;
      }
    } else {
      auto id_text = text("id");
      if (!id_text) return fail("error", "missing \"id\"");
      if (!confirm(*id_text)) return;
    }
    PumpDeliveries(*eid);
  } else if (verb == "status") {
    ReplyApp(client, "status", CountersJson());
  } else {
    fail("error", fmt::format("unknown verb '{}'", verb));
  }
}

void NodeDaemon::ReplyApp(const std::string& client, std::string_view verb, std::string_view header,
                          std::span<const std::uint8_t> payload) {
  try {
    if (!app_->send(::zmq::buffer(client), ::zmq::send_flags::sndmore | ::zmq::send_flags::dontwait)) return;
    app_->send(::zmq::buffer(verb), ::zmq::send_flags::sndmore);
    app_->send(::zmq::buffer(header), payload.empty() ? ::zmq::send_flags::none : ::zmq::send_flags::sndmore);
    if (!payload.empty()) app_->send(::zmq::buffer(payload.data(), payload.size()), ::zmq::send_flags::none);
  } catch (const ::zmq::error_t&) {
    ++app_errors_;  // the client went away (ROUTER_MANDATORY): its deliveries stay unconfirmed
  }
}

void NodeDaemon::PumpDeliveries(const Eid& endpoint) {
  auto it = app_endpoints_.find(endpoint);
  if (it == app_endpoints_.end()) return;
  Endpoint& state = *it->second;
  while (!state.client.empty() && !state.waiting.empty() && state.unconfirmed.size() < kDeliveryWindow) {
    Deliver d = std::move(state.waiting.front());
    state.waiting.pop_front();
    std::string& header = reply_scratch_;
    header.clear();
    if (state.binary) {
      AppendDeliverHeader(header, d.endpoint, d.id, d.priority, d.possible_redelivery);
      ReplyApp(state.client, "deliver", header, d.payload);
      state.unconfirmed.emplace(d.id, std::move(d));
      continue;
    }
    // The same text as a json object's dump (keys in order), without building the document.
    fmt::format_to(std::back_inserter(header), "{{\"created_ms\":{},\"endpoint\":", d.created.time.millis());
    AppendJsonString(header, d.endpoint.ToString());
    header += ",\"id\":";
    AppendJsonString(header, d.id.ToString());
    fmt::format_to(std::back_inserter(header), ",\"possible_redelivery\":{},\"priority\":\"{}\",\"sequence\":{},\"size\":{},\"source\":",
                   d.possible_redelivery, PriorityName(d.priority), d.created.sequence, d.payload.size());
    AppendJsonString(header, d.source.ToString());
    header += '}';
    ReplyApp(state.client, "deliver", header, d.payload);
    state.unconfirmed.emplace(d.id, std::move(d));
  }
}

void NodeDaemon::Perform(NodeOutput output, clock::DtnTime now) {
  // One acks frame per neighbour for the whole turn (sent after the transmissions, like the
  // single acks before it: all of this runs after the turn's commit).
  std::map<NodeNumber, std::vector<AckFrame>> acks;
  for (auto& action : output.actions) {
    if (auto* t = std::get_if<Transmit>(&action)) {
      // "Would block" (the neighbour's queue is full or its connection is gone) leaves the bundle
      // in flight in the node's view; its retransmission timer or the contact end requeues it.
      links_->SendBundleFrame(t->neighbour, now, std::move(t->bytes));
    } else if (auto* a = std::get_if<Acknowledge>(&action)) {
      AckFrame ack;
      ack.sent = now;
      ack.status = AckStatus::kStored;
      ack.id = std::move(a->id);
      acks[a->neighbour].push_back(std::move(ack));
    } else if (auto* d = std::get_if<Deliver>(&action)) {
      if (auto local = local_.find(d->endpoint); local != local_.end()) {
        local->second(*d);
        work_pending_ = true;
      } else {
        auto& state = app_endpoints_[d->endpoint];
        if (!state) state = std::make_unique<Endpoint>();
        state->waiting.push_back(std::move(*d));
        PumpDeliveries(d->endpoint);
      }
    }
  }
  for (const auto& [neighbour, list] : acks) links_->SendAcks(neighbour, now, list);
  if (options_.log_events) {
    for (const auto& e : output.events) LogEvent(e);
    std::fflush(stdout);
  }
}

void NodeDaemon::LogEvent(const BundleEvent& e) {
  json line{{"ts", e.at.ToIso8601()}, {"node", options_.node}, {"event", BundleEventKindName(e.kind)}};
  if (e.id) line["id"] = e.id->ToString();
  if (e.neighbour) line["neighbour"] = *e.neighbour;
  if (e.endpoint) line["endpoint"] = e.endpoint->ToString();
  line["priority"] = PriorityName(e.priority);
  if (e.reason != RefusalReason::kNone) line["reason"] = RefusalReasonName(e.reason);
  if (!e.detail.empty()) line["detail"] = e.detail;
  fmt::print("{}\n", line.dump(-1, ' ', false, kReplace));
}

std::string NodeDaemon::CountersJson() const {
  const NodeCounters& c = node_->counters();
  const LinkCounters& l = links_->counters();
  const StoreUsage u = store_->usage();
  json links = json::object();
  for (const auto& [n, open] : contact_) {
    links[fmt::format("ipn:{}", n)] = {{"up", links_->IsUp(n)}, {"contact", open}, {"in_flight", node_->in_flight(n)}};
  }
  return json{{"ts", Now().ToIso8601()},
              {"node", options_.node},
              {"bundles", {{"received", c.received},       {"malformed", c.malformed},
                           {"duplicates", c.duplicates},   {"stored", c.stored},
                           {"refused", c.refused},         {"sent", c.sent},
                           {"transmissions", c.transmissions}, {"retransmissions", c.retransmissions},
                           {"acknowledged", c.acknowledged}, {"delivered", c.delivered},
                           {"confirmed", c.confirmed},     {"expired", c.expired},
                           {"dropped", c.dropped}}},
              {"store", {{"bundles", u.bundles}, {"bytes", u.bytes}, {"seen_ids", u.seen_ids}}},
              {"link", {{"frames_in", l.frames_in}, {"frames_out", l.frames_out}, {"bytes_in", l.bytes_in},
                        {"bytes_out", l.bytes_out}, {"bad_frames", l.bad_frames},
                        {"unknown_peer_frames", l.unknown_peer_frames}, {"would_block", l.would_block},
                        {"reconnects", l.reconnects},
                        {"held_in_light", held_.size()}, {"held_dropped", held_dropped_}}},
              {"links", links},
              {"app_errors", app_errors_}}
      .dump(-1, ' ', false, kReplace);
}

}  // namespace ics::dtn::zmq
