// `ics-dtn-bench node`: durable store-and-forward throughput of one Node core. A relay (ipn:2)
// over a SqliteBundleStore (synchronous=FULL, WAL, group commit) receives 1 KiB bundles from
// ipn:1 for ipn:3, stores them, acknowledges them upstream, forwards them to ipn:3 (contact open)
// and releases custody when ipn:3 acknowledges. One driver turn per batch, as a daemon's loop:
//   feed `batch` received bundles and the previous turn's downstream acknowledgements,
//   store.Commit() (one transaction, one fsync), TakeOutput(), "perform" the actions.
// Every bundle is thus written once (insert + seen ID) and deleted once, each durably.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bench.h"
#include "dtn/codec.h"
#include "dtn/node.h"
#include "dtn/sqlite_bundle_store.h"

namespace ics::dtn::bench {
namespace {

using SteadyClock = std::chrono::steady_clock;

// CPU time (user + system) of this process: on a shared machine the wall-clock rate understates
// what the code does, so both are printed.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

int RunNodeBench(int argc, char** argv) {
  std::size_t bundles = 200'000;
  std::size_t batch = 1024;
  std::size_t payload_bytes = 1024;
  std::string durability = "full";
  std::string dir = "/tmp";
  std::string payload_crc = "none";
  CLI::App app{"Durable store-and-forward throughput of one Node (SQLite store, group commit).",
               "ics-dtn-bench node"};
  app.add_option("--bundles", bundles, "bundles to relay")->capture_default_str();
  app.add_option("--batch", batch, "received bundles per driver turn (per commit)")->capture_default_str();
  app.add_option("--payload-bytes", payload_bytes, "payload size")->capture_default_str();
  app.add_option("--durability", durability, "full, normal or off (synchronous=)")->capture_default_str();
  app.add_option("--payload-crc", payload_crc,
                 "CRC of the non-primary blocks: none, crc16 or crc32c (the primary "
                 "block always has CRC-32C)")
      ->capture_default_str();
  app.add_option("--dir", dir, "where the temporary store file goes")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ics-dtn-bench node: %s\n", e.what());
    return 2;
  }
  SqliteBundleStoreOptions options;
  if (durability == "full") {
    options.durability = storage::Durability::kFull;
  } else if (durability == "normal") {
    options.durability = storage::Durability::kNormal;
  } else if (durability == "off") {
    options.durability = storage::Durability::kOff;
  } else {
    std::fprintf(stderr, "ics-dtn-bench node: --durability is full, normal or off\n");
    return 2;
  }
  const std::optional<CrcType> block_crc = ParseCrcType(payload_crc);
  if (!block_crc) {
    std::fprintf(stderr, "ics-dtn-bench node: --payload-crc is none, crc16 or crc32c\n");
    return 2;
  }
  if (batch == 0 || bundles == 0) {
    std::fprintf(stderr, "ics-dtn-bench node: --batch and --bundles must be > 0\n");
    return 2;
  }
  std::string pattern = (std::filesystem::path(dir) / "ics-dtn-node-bench-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "ics-dtn-bench node: cannot create a directory in %s\n", dir.c_str());
    return 1;
  }
  const std::filesystem::path tmp(pattern);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } cleanup{tmp};

  auto store = SqliteBundleStore::Open((tmp / "relay.db").string(), options);
  if (!store) {
    std::fprintf(stderr, "ics-dtn-bench node: %s\n", store.error().message.c_str());
    return 1;
  }
  NodeConfig config;
  config.node = 2;
  config.window_per_neighbour = 2 * batch;
  Node node(config, **store);
  const clock::DtnTime t0 = clock::DtnTime::FromMillis(815'000'000'000);
  node.OnContactStart(1, t0);
  node.OnContactStart(3, t0);

  // The offered stream, encoded up front (the sender's work is not measured).
  std::vector<std::vector<std::uint8_t>> stream;
  stream.reserve(bundles);
  std::vector<std::uint8_t> payload(payload_bytes, 0x5a);
  for (std::size_t i = 0; i < bundles; ++i) {
    Bundle b = MakeBundle(Eid::Ipn(1, 1), Eid::Ipn(3, 1), {t0, i}, std::chrono::hours(24), payload,
                          static_cast<Priority>(i % 3));
    b.set_hop_count({32, 1});
    for (CanonicalBlock& block : b.blocks) block.crc_type = *block_crc;
    stream.push_back(Encode(b));
  }
  std::printf(
      "relay: %zu bundles of %zu bytes (payload %zu, block CRC %s), batch %zu, synchronous=%s, store %s\n",
      bundles, stream[0].size(), payload_bytes, payload_crc.c_str(), batch, durability.c_str(),
      (tmp / "relay.db").c_str());

  std::uint64_t acks_up = 0, transmits = 0, turns = 0;
  std::vector<BundleId> to_ack;
  const auto start = SteadyClock::now();
  const double cpu_start = CpuSeconds();
  std::size_t next = 0;
  clock::DtnTime now = t0;
  while (next < bundles || !to_ack.empty()) {
    now += clock::Duration(1);
    for (const BundleId& id : to_ack) node.OnAcknowledged(3, id, now);
    to_ack.clear();
    for (std::size_t i = 0; i < batch && next < bundles; ++i) node.OnBundleReceived(1, stream[next++], now);
    if (auto c = (*store)->Commit(); !c) {
      std::fprintf(stderr, "ics-dtn-bench node: commit: %s\n", c.error().message.c_str());
      return 1;
    }
    NodeOutput out = node.TakeOutput();
    for (const NodeAction& a : out.actions) {
      if (std::holds_alternative<Acknowledge>(a)) ++acks_up;
      if (const auto* t = std::get_if<Transmit>(&a)) {
        ++transmits;
        to_ack.push_back(t->id);
      }
    }
    ++turns;
  }
  if (auto c = (*store)->Commit(); !c) {
    std::fprintf(stderr, "ics-dtn-bench node: commit: %s\n", c.error().message.c_str());
    return 1;
  }
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const double cpu_seconds = CpuSeconds() - cpu_start;
  const NodeCounters& k = node.counters();
  if (acks_up != bundles || transmits != bundles || k.acknowledged != bundles ||
      (*store)->usage().bundles != 0) {
    std::fprintf(
        stderr, "ics-dtn-bench node: wrong result: %llu acks, %llu transmissions, %llu released, %llu left\n",
        static_cast<unsigned long long>(acks_up), static_cast<unsigned long long>(transmits),
        static_cast<unsigned long long>(k.acknowledged),
        static_cast<unsigned long long>((*store)->usage().bundles));
    return 1;
  }
  std::printf(
      "%zu bundles received-stored-acknowledged-forwarded-released in %.3f s: %.0f bundles/s, %.2f "
      "us/bundle\n",
      bundles, seconds, static_cast<double>(bundles) / seconds, seconds * 1e6 / static_cast<double>(bundles));
  std::printf("CPU time %.3f s: %.0f bundles per CPU-second (the rate on an otherwise idle core)\n",
              cpu_seconds, static_cast<double>(bundles) / cpu_seconds);
  std::printf("%llu driver turns, %llu commits (%.0f commits/s)\n", static_cast<unsigned long long>(turns),
              static_cast<unsigned long long>((*store)->commits()),
              static_cast<double>((*store)->commits()) / seconds);
  return 0;
}

const Registration kReg{"node", "durable store-and-forward throughput of one Node (SQLite, group commit)",
                        RunNodeBench};

}  // namespace
}  // namespace ics::dtn::bench
