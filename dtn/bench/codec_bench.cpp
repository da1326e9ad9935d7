// `ics-dtn-bench codec`: single-core encode and decode rates of BPv7 bundles (per CPU-second of
// one thread). Default bundle: 1 KiB payload, CRC-32C on every block as MakeBundle builds them,
// plus hop-count, previous-node and priority blocks. For comparison: libcbor's cbor_load on the
// same bytes (the reason the decoder has its own reader, see dtn/src/cbor.h) and Boost.CRC's
// CRC-32C (the reason for the hardware CRC, see dtn/src/crc.cpp).
#include <cbor.h>
#include <fmt/format.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "bench.h"
#include "dtn/codec.h"

namespace ics::dtn::bench {
namespace {

// The rates are per second of this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), i.e. per core:
// the machine is shared, and wall time would count the time other processes held the core.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Keeps the optimizer from dropping a result.
template <class T>
void Sink(const T& value) {
  asm volatile("" : : "r"(&value) : "memory");
}

struct Rate {
  double per_s = 0;
  double mb_per_s = 0;
};

// Runs `op` in batches until `seconds` have passed; returns operations and bytes per second.
template <class Op>
Rate Measure(double seconds, std::size_t bytes_per_op, Op op) {
  for (int i = 0; i < 1000; ++i) op();  // warm caches and the allocator
  const double start = ThreadCpuSeconds();
  std::uint64_t ops = 0;
  double elapsed = 0;
  do {
    for (int i = 0; i < 10'000; ++i) op();
    ops += 10'000;
    elapsed = ThreadCpuSeconds() - start;
  } while (elapsed < seconds);
  const double per_s = static_cast<double>(ops) / elapsed;
  return {per_s, per_s * static_cast<double>(bytes_per_op) / 1e6};
}

void Print(std::string_view what, Rate r) {
  std::printf("%-34s %12.0f bundles/s %10.1f MB/s %8.3f us/bundle\n", std::string(what).c_str(), r.per_s,
              r.mb_per_s, 1e6 / r.per_s);
}

int RunCodecBench(int argc, char** argv) {
  double seconds = 1.0;
  std::size_t payload_bytes = 1024;
  std::string payload_crc = "crc32c";
  std::string primary_crc = "crc32c";
  CLI::App app{"Single-core encode/decode rates of BPv7 bundles.", "ics-dtn-bench codec"};
  app.add_option("--seconds", seconds, "time per measurement")->capture_default_str();
  app.add_option("--payload-bytes", payload_bytes, "payload size")->capture_default_str();
  app.add_option("--primary-crc", primary_crc, "none, crc16 or crc32c")->capture_default_str();
  app.add_option("--payload-crc", payload_crc, "none, crc16 or crc32c")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ics-dtn-bench codec: %s\n", e.what());
    return 2;
  }
  const auto pcrc = ParseCrcType(primary_crc);
  const auto bcrc = ParseCrcType(payload_crc);
  if (!pcrc || !bcrc) {
    std::fprintf(stderr, "ics-dtn-bench codec: CRC types are none, crc16 or crc32c\n");
    return 2;
  }

  std::vector<std::uint8_t> payload(payload_bytes);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 131);
  Bundle bundle =
      MakeBundle(Eid::Ipn(1, 7), Eid::Ipn(2, 7), {clock::DtnTime::FromMillis(815'000'000'000), 42},
                 clock::Duration(3'600'000), payload, Priority::kExpedited, *pcrc);
  bundle.set_hop_count({32, 1});
  bundle.set_previous_node(Eid::Ipn(1, 0));
  for (CanonicalBlock& b : bundle.blocks) b.crc_type = *bcrc;
  const std::vector<std::uint8_t> bytes = Encode(bundle);
  if (auto check = Decode(bytes); !check || *check != bundle) {
    std::fprintf(stderr, "ics-dtn-bench codec: the bundle does not round-trip\n");
    return 1;
  }
  std::printf("bundle: %zu bytes (payload %zu, primary CRC %s, other blocks CRC %s, %zu canonical blocks)\n",
              bytes.size(), payload_bytes, primary_crc.c_str(), payload_crc.c_str(), bundle.blocks.size());

  std::vector<std::uint8_t> buffer;
  Print("encode (reused buffer)", Measure(seconds, bytes.size(), [&] {
          buffer.clear();
          EncodeAppend(bundle, buffer);
          Sink(buffer);
        }));
  Print("encode (new vector)", Measure(seconds, bytes.size(), [&] {
          auto out = Encode(bundle);
          Sink(out);
        }));
  Print("decode (new Bundle)", Measure(seconds, bytes.size(), [&] {
          auto b = Decode(bytes);
          Sink(b);
        }));
  Bundle reused;
  Print("decode (DecodeInto, reused Bundle)", Measure(seconds, bytes.size(), [&] {
          auto ok = DecodeInto(bytes, {}, reused);
          Sink(ok);
        }));
  Print("libcbor cbor_load (tree only)", Measure(seconds, bytes.size(), [&] {
          cbor_load_result result;
          cbor_item_t* item = cbor_load(bytes.data(), bytes.size(), &result);
          Sink(item);
          if (item != nullptr) cbor_decref(&item);
        }));
  Print("CRC-32C of the bundle bytes (Crc32c)", Measure(seconds, bytes.size(), [&] {
          auto crc = Crc32c(bytes);
          Sink(crc);
        }));
  Print("CRC-32C, Boost.CRC (Crc32cPortable)", Measure(seconds, bytes.size(), [&] {
          auto crc = Crc32cPortable(bytes);
          Sink(crc);
        }));
  return 0;
}

const Registration kReg{"codec", "encode/decode rates of BPv7 bundles (1 KiB payload), single core",
                        RunCodecBench};

}  // namespace
}  // namespace ics::dtn::bench
