// The application interface: the binary headers on hostile input (every truncation, every bad
// field, random bytes), and a real NodeDaemon in this process answering a DEALER over ipc:// in
// both header forms. Method: hand-built byte strings for the decoder; the daemon runs its own loop
// (Run) on a thread and is stopped by one of its own timers; waits are bounded polls.
#include "dtn/zmq/app_protocol.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <zmq.hpp>

#include "dtn/zmq/node_daemon.h"

namespace {

using namespace ics;
using namespace ics::dtn::zmq;
using dtn::BundleId;
using dtn::Eid;
using dtn::Priority;

BundleId IdOf(Eid source, std::int64_t ms, std::uint64_t seq) {
  BundleId id;
  id.source = std::move(source);
  id.created = {clock::DtnTime::FromMillis(ms), seq};
  return id;
}

Eid DtnEid(std::string_view text) {
  auto eid = Eid::Parse(text);
  REQUIRE_MESSAGE(eid.has_value(), text);
  return *eid;
}

std::string Hex(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

}  // namespace

TEST_CASE("app headers: a send header is 2 + 1 + 8 + 8 + 17 + 1 bytes for ipn:3.7 from the default source") {
  SendHeader h;
  h.priority = Priority::kExpedited;
  h.lifetime_ms = 3'600'000;
  h.tag = 0x0102030405060708;
  h.to = Eid::Ipn(3, 7);
  std::string bytes;
  AppendSendHeader(bytes, h);
  CHECK(Hex(bytes) ==
        "b101"              // magic, version
        "02"                // expedited
        "000000000036ee80"  // 3,600,000 ms
        "0102030405060708"  // tag
        "02"
        "0000000000000003"
        "0000000000000007"  // ipn:3.7
        "00");              // from: dtn:none
  auto back = ParseSendHeader(bytes);
  REQUIRE_MESSAGE(back.has_value(), back.error());
  CHECK(back->priority == Priority::kExpedited);
  CHECK(back->lifetime_ms == 3'600'000);
  CHECK(back->tag == 0x0102030405060708);
  CHECK(back->to == Eid::Ipn(3, 7));
  CHECK(back->from.is_none());
}

TEST_CASE("app headers: stored, deliver and confirm round trip ipn and dtn IDs and fragments") {
  BundleId plain = IdOf(Eid::Ipn(1, 0), 815'000'000'123, 4);
  BundleId dtn_id = IdOf(DtnEid("dtn://rover/lease"), -5, UINT64_MAX);
  BundleId fragment = IdOf(Eid::Ipn(9, 2), 7, 8);
  fragment.fragment_offset = 1000;
  fragment.fragment_length = 24;

  for (const BundleId& id : {plain, dtn_id, fragment}) {
    std::string stored;
    AppendStoredHeader(stored, 42, id);
    auto s = ParseStoredHeader(stored);
    REQUIRE_MESSAGE(s.has_value(), s.error());
    CHECK(s->tag == 42);
    CHECK(s->id == id);

    std::string deliver;
    AppendDeliverHeader(deliver, DtnEid("dtn://lander/inbox"), id, Priority::kBulk, true);
    auto d = ParseDeliverHeader(deliver);
    REQUIRE_MESSAGE(d.has_value(), d.error());
    CHECK(d->endpoint == DtnEid("dtn://lander/inbox"));
    CHECK(d->id == id);
    CHECK(d->priority == Priority::kBulk);
    CHECK(d->possible_redelivery);
  }
  const std::vector<BundleId> ids{plain, dtn_id, fragment};
  std::string confirm;
  AppendConfirmHeader(confirm, Eid::Ipn(3, 7), ids);
  // The sizes a client adds up to keep a confirm within kMaxHeaderBytes are the encoded ones.
  CHECK(BinaryIdBytes(plain) == 34);
  CHECK(BinaryIdBytes(dtn_id) == 1 + 2 + std::string("//rover/lease").size() + 17);
  CHECK(BinaryIdBytes(fragment) == 34 + 16);
  CHECK(confirm.size() == 2 + BinaryEidBytes(Eid::Ipn(3, 7)) + 2 + BinaryIdBytes(plain) +
                              BinaryIdBytes(dtn_id) + BinaryIdBytes(fragment));
  auto c = ParseConfirmHeader(confirm);
  REQUIRE_MESSAGE(c.has_value(), c.error());
  CHECK(c->endpoint == Eid::Ipn(3, 7));
  CHECK(c->ids == ids);
}

TEST_CASE("app headers: every truncation of every header is refused with the byte offset named") {
  SendHeader send;
  send.to = DtnEid("dtn://lander/inbox");
  send.from = Eid::Ipn(1, 5);
  BundleId id = IdOf(DtnEid("dtn://rover/x"), 1, 2);
  id.fragment_offset = 3;
  id.fragment_length = 4;
  std::string s, st, d, c;
  AppendSendHeader(s, send);
  AppendStoredHeader(st, 1, id);
  AppendDeliverHeader(d, Eid::Ipn(3, 7), id, Priority::kNormal, false);
  AppendConfirmHeader(c, Eid::Ipn(3, 7), std::vector<BundleId>{id, id});
  for (std::size_t n = 0; n < s.size(); ++n) {
    auto r = ParseSendHeader(std::string_view(s).substr(0, n));
    REQUIRE_FALSE(r.has_value());
    CHECK_MESSAGE(r.error().find("binary send header at byte ") == 0, r.error());
    CHECK_MESSAGE(r.error().find("truncated") != std::string::npos, r.error());
  }
  for (std::size_t n = 0; n < st.size(); ++n)
    CHECK_FALSE(ParseStoredHeader(std::string_view(st).substr(0, n)));
  for (std::size_t n = 0; n < d.size(); ++n)
    CHECK_FALSE(ParseDeliverHeader(std::string_view(d).substr(0, n)));
  for (std::size_t n = 0; n < c.size(); ++n)
    CHECK_FALSE(ParseConfirmHeader(std::string_view(c).substr(0, n)));
  // And one byte too many.
  CHECK(ParseSendHeader(s + '\0').error().find("1 trailing bytes") != std::string::npos);
  CHECK_FALSE(ParseStoredHeader(st + '\0'));
  CHECK_FALSE(ParseDeliverHeader(d + '\0'));
  CHECK_FALSE(ParseConfirmHeader(c + '\0'));
}

TEST_CASE("app headers: bad magic, version, priority, flags, scheme, lengths and counts are refused") {
  SendHeader send;
  send.to = Eid::Ipn(3, 7);
  std::string good;
  AppendSendHeader(good, send);
  auto with = [&](std::size_t at, char byte) {
    std::string b = good;
    b[at] = byte;
    return b;
  };
  CHECK(ParseSendHeader(with(0, '{')).error() == "binary send header at byte 0: magic 0x7b is not 0xb1");
  CHECK(ParseSendHeader(with(1, 2)).error() == "binary send header at byte 1: unsupported version 2");
  CHECK(ParseSendHeader(with(2, 3)).error() ==
        "binary send header at byte 2: priority 3 is not 0 (bulk), 1 (normal) or 2 (expedited)");
  CHECK(ParseSendHeader(with(19, 3)).error() ==
        "binary send header at byte 19: destination EID: unknown EID scheme 3");

  // A dtn EID: SSP length 0, over the bound, not a dtn SSP.
  auto dtn_send = [](std::uint16_t length, std::string_view ssp) {
    std::string b = "\xb1\x01\x01";
    b.append(16, '\0');  // lifetime, tag
    b += '\x01';
    b += static_cast<char>(length >> 8);
    b += static_cast<char>(length);
    b += ssp;
    b += '\0';
    return b;
  };
  CHECK(ParseSendHeader(dtn_send(0, "")).error() ==
        "binary send header at byte 19: destination EID: dtn SSP length 0 not in 1..4096");
  CHECK(ParseSendHeader(dtn_send(4097, std::string(4097, 'a'))).error() ==
        "binary send header at byte 19: destination EID: dtn SSP length 4097 not in 1..4096");
  CHECK(ParseSendHeader(dtn_send(100, "//a/b")).error().find("truncated") != std::string::npos);
  CHECK(ParseSendHeader(dtn_send(4, "a/bc")).error().find("destination EID: 'dtn:a/bc'") !=
        std::string::npos);
  REQUIRE(ParseSendHeader(dtn_send(5, "//a/b")).has_value());

  std::string deliver;
  AppendDeliverHeader(deliver, Eid::Ipn(3, 7), IdOf(Eid::Ipn(1, 0), 1, 2), Priority::kNormal, false);
  deliver[2] = 2;
  CHECK(ParseDeliverHeader(deliver).error() ==
        "binary deliver header at byte 2: flags 0x02 has unknown bits");
  deliver[2] = 0;
  deliver[deliver.size() - 1] = 2;  // the fragment flag
  CHECK(ParseDeliverHeader(deliver).error() ==
        fmt::format("binary deliver header at byte {}: bundle ID: fragment flag 2 is not 0 or 1",
                    deliver.size() - 1));

  // Counts: zero, over the bound, more than the bytes can hold (checked before allocating).
  auto confirm_with_count = [](std::uint16_t count, std::size_t id_bytes) {
    std::string b = "\xb1\x01\x02";
    b.append(16, '\0');  // ipn:0.0
    b += static_cast<char>(count >> 8);
    b += static_cast<char>(count);
    b.append(id_bytes, '\0');
    return b;
  };
  CHECK(ParseConfirmHeader(confirm_with_count(0, 0)).error() ==
        "binary confirm header at byte 19: ID count 0 not in 1..4096");
  CHECK(ParseConfirmHeader(confirm_with_count(4097, 4097 * kMinBinaryIdBytes)).error() ==
        "binary confirm header at byte 19: ID count 4097 not in 1..4096");
  CHECK(ParseConfirmHeader(confirm_with_count(4096, 100)).error() ==
        "binary confirm header at byte 19: ID count 4096 exceeds the header's 100 bytes left");
  // Two dtn:none IDs of 18 bytes each are well formed.
  auto two = ParseConfirmHeader(confirm_with_count(2, 2 * kMinBinaryIdBytes));
  REQUIRE_MESSAGE(two.has_value(), two.error());
  CHECK(two->ids.size() == 2);
}

TEST_CASE("app headers: random bytes behind a valid magic and version never crash the decoders") {
  std::random_device rd;
  const auto seed = rd();
  INFO("seed=" << seed);
  std::mt19937 rng(seed);
  std::size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = "\xb1\x01";
    const std::size_t n = rng() % 96;
    for (std::size_t k = 0; k < n; ++k) b += static_cast<char>(rng() % 4 == 0 ? rng() % 3 : rng());
    accepted += ParseSendHeader(b).has_value() + ParseStoredHeader(b).has_value() +
                ParseDeliverHeader(b).has_value() + ParseConfirmHeader(b).has_value();
  }
  CHECK(accepted < 20000);  // mostly refused; the point is that none crashed or over-allocated
}

namespace {

// A scratch directory with a contact plan, removed with everything in it.
class Scratch {
 public:
  Scratch() {
    std::string pattern = (std::filesystem::temp_directory_path() / "ics-app-test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
    std::ofstream(path_ / "plan") << "a contact +0 +864000 1 2 1000000\n";
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

DaemonOptions OptionsIn(const Scratch& dir) {
  DaemonOptions o;
  o.node = 1;
  o.data_dir = (dir.path() / "data").string();
  o.plan_path = (dir.path() / "plan").string();
  o.listen = fmt::format("ipc://{}/link", dir.path().string());
  o.app_endpoint = fmt::format("ipc://{}/app", dir.path().string());
  o.log_events = false;
  return o;
}

// Runs a daemon's own loop on a thread; the destructor stops it through one of the daemon's
// timers (so the stop flag is only read on the loop's thread) and joins.
class RunningDaemon {
 public:
  explicit RunningDaemon(std::unique_ptr<NodeDaemon> daemon) : daemon_(std::move(daemon)) {
    NodeDaemon* d = daemon_.get();
    d->AddTimer(
        [this, d]() -> std::optional<clock::DtnTime> {
          if (stop_.load()) return d->Now();
          return std::nullopt;
        },
        [d](clock::DtnTime) { d->Stop(); });
    thread_ = std::thread([this] { status_ = daemon_->Run(); });
  }
  ~RunningDaemon() { Join(); }
  int Join() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  std::unique_ptr<NodeDaemon> daemon_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  int status_ = -1;
};

struct Message {
  std::string verb, header, payload;
};

class Client {
 public:
  explicit Client(const std::string& endpoint) : socket_(context_, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(endpoint);
  }
  void Send(std::string_view verb, std::string_view header, std::string_view payload = {}) {
    socket_.send(zmq::buffer(verb), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(header), payload.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore);
    if (!payload.empty()) socket_.send(zmq::buffer(payload), zmq::send_flags::none);
  }
  // The next message, or nullopt after 10 s.
  std::optional<Message> Receive() {
    std::vector<zmq::pollitem_t> items{{socket_.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, std::chrono::seconds(10)) == 0) return std::nullopt;
    Message m;
    std::string* parts[] = {&m.verb, &m.header, &m.payload};
    bool more = true;
    for (std::size_t i = 0; more; ++i) {
      zmq::message_t part;
      (void)socket_.recv(part, zmq::recv_flags::none);
      more = part.more();
      if (i < 3) *parts[i] = part.to_string();
    }
    return m;
  }

 private:
  zmq::context_t context_;
  zmq::socket_t socket_;
};

}  // namespace

TEST_CASE("app interface: binary send, deliver and confirm through a real daemon; JSON still answered") {
  Scratch dir;
  auto daemon = NodeDaemon::Open(OptionsIn(dir));
  REQUIRE_MESSAGE(daemon.has_value(), (daemon ? "" : daemon.error()));
  const std::string app = (*daemon)->options().app_endpoint;
  RunningDaemon running(std::move(*daemon));
  Client client(app);

  client.Send("register", R"({"endpoint":"ipn:1.7","binary":true})");
  auto registered = client.Receive();
  REQUIRE(registered);
  CHECK(registered->verb == "registered");
  CHECK(registered->header == R"({"endpoint":"ipn:1.7"})");

  SendHeader send;
  send.to = Eid::Ipn(1, 7);
  send.tag = 77;
  std::string header;
  AppendSendHeader(header, send);
  client.Send("send", header, "hello");

  // Both a `stored` (binary, tag 77) and the binary `deliver` come back, in either order.
  std::optional<StoredHeader> stored;
  std::optional<DeliverHeader> delivered;
  std::string payload;
  for (int i = 0; i < 2; ++i) {
    auto m = client.Receive();
    REQUIRE(m);
    if (m->verb == "stored") {
      auto s = ParseStoredHeader(m->header);
      REQUIRE_MESSAGE(s.has_value(), s.error());
      stored = *s;
    } else {
      REQUIRE(m->verb == "deliver");
      auto d = ParseDeliverHeader(m->header);
      REQUIRE_MESSAGE(d.has_value(), d.error());
      delivered = *d;
      payload = m->payload;
    }
  }
  REQUIRE(stored);
  REQUIRE(delivered);
  CHECK(stored->tag == 77);
  CHECK(stored->id.source == Eid::Ipn(1, 0));
  CHECK(delivered->id == stored->id);
  CHECK(delivered->endpoint == Eid::Ipn(1, 7));
  CHECK(delivered->priority == Priority::kNormal);
  CHECK_FALSE(delivered->possible_redelivery);
  CHECK(payload == "hello");

  std::string confirm;
  AppendConfirmHeader(confirm, Eid::Ipn(1, 7), std::vector<BundleId>{stored->id});
  client.Send("confirm", confirm);

  // A JSON send gets a JSON `stored` (the delivery to the binary registration stays binary).
  client.Send("send", R"({"to":"ipn:1.8","tag":"json-tag"})", "x");
  auto json_stored = client.Receive();
  REQUIRE(json_stored);
  CHECK(json_stored->verb == "stored");
  CHECK(json_stored->header.find(R"("tag":"json-tag")") != std::string::npos);

  // Hostile binary headers: refused, answered in JSON, counted; the daemon keeps serving.
  client.Send("send", std::string("\xb1\x01\x07", 3), "x");
  auto refused = client.Receive();
  REQUIRE(refused);
  CHECK(refused->verb == "refused");
  CHECK(
      refused->header ==
      R"j({"error":"binary send header at byte 2: priority 7 is not 0 (bulk), 1 (normal) or 2 (expedited)"})j");
  client.Send("register", std::string("\xb1\x01", 2));
  auto wrong_verb = client.Receive();
  REQUIRE(wrong_verb);
  CHECK(wrong_verb->verb == "error");
  CHECK(wrong_verb->header ==
        R"({"error":"a binary header is defined for send and confirm only, not 'register'"})");
  std::string foreign;
  AppendConfirmHeader(foreign, Eid::Ipn(2, 7), std::vector<BundleId>{stored->id});
  client.Send("confirm", foreign);
  auto not_ours = client.Receive();
  REQUIRE(not_ours);
  CHECK(not_ours->header == R"({"error":"ipn:2.7 is not an endpoint of node 1"})");

  client.Send("status", "{}");
  auto status = client.Receive();
  REQUIRE(status);
  CHECK(status->verb == "status");
  CHECK_MESSAGE(status->header.find(R"("app_errors":3)") != std::string::npos, status->header);
  CHECK_MESSAGE(status->header.find(R"("confirmed":1)") != std::string::npos, status->header);
  CHECK(running.Join() == 0);
}

TEST_CASE("node daemon: a failed store write or commit makes Run return 1, not 0") {
  // The store is made to fail by a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so that a
  // write fails with EFBIG instead of killing the process): the daemon's own timer sends bundles
  // to an endpoint nobody reads until the store's files cannot grow. Small bundles fill the
  // database's log, so the COMMIT fails while every staged write succeeded (the node never sees
  // an error: the path that used to exit 0); large ones may fail in the write itself, depending
  // on where the store keeps large payloads.
  for (const std::size_t payload_bytes : {std::size_t{1024}, std::size_t{64 * 1024}}) {
    CAPTURE(payload_bytes);
    Scratch dir;
    auto opened = NodeDaemon::Open(OptionsIn(dir));
    REQUIRE_MESSAGE(opened.has_value(), (opened ? "" : opened.error()));
    std::unique_ptr<NodeDaemon> daemon = std::move(*opened);
    NodeDaemon* d = daemon.get();
    const std::uint64_t bytes_max = 32ull << 20;  // 16 times the limit and no failure: the test fails
    const std::size_t per_turn = std::max<std::size_t>(1, (64 * 1024) / payload_bytes);
    std::uint64_t sent = 0, refused = 0;
    d->AddTimer([d]() -> std::optional<clock::DtnTime> { return d->Now(); },
                [&](clock::DtnTime) {
                  if (sent * payload_bytes >= bytes_max) return d->Stop();
                  for (std::size_t i = 0; i < per_turn; ++i) {
                    dtn::SendRequest request;
                    request.destination = Eid::Ipn(1, 9);
                    request.lifetime = std::chrono::hours(1);
                    request.payload.assign(payload_bytes, static_cast<std::uint8_t>(sent));
                    if (d->Send(request)) {
                      ++sent;
                    } else {
                      ++refused;
                    }
                  }
                });
    rlimit old_limit{};
    REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    struct sigaction ignore {
    }, old_action{};
    ignore.sa_handler = SIG_IGN;
    REQUIRE(sigaction(SIGXFSZ, &ignore, &old_action) == 0);
    rlimit limit = old_limit;
    limit.rlim_cur = 2 << 20;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &limit) == 0);
    const int status = d->Run();
    setrlimit(RLIMIT_FSIZE, &old_limit);
    sigaction(SIGXFSZ, &old_action, nullptr);
    INFO("sent " << sent << ", refused " << refused);
    CHECK(sent * payload_bytes < bytes_max);
    CHECK(status == 1);
  }
}
