// STUN codec throughput: an ICE connectivity check (build with MESSAGE-INTEGRITY + FINGERPRINT; parse, read the
// ICE attributes, verify both) and TURN ChannelData framing. Plain program: prints ns per operation.
//   bench_stun [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "stun/stun.hpp"

using namespace rtcpeer;
using namespace rtcpeer::stun;

namespace {

template <class F>
void run(const char* name, long n, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t sink = 0;
  for (long i = 0; i < n; ++i) sink += f(i);
  const auto ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%-44s %9.1f ns/op  (%ld ops, check %llu)\n", name, ns / static_cast<double>(n), n,
              static_cast<unsigned long long>(sink));
}

}  // namespace

int main(int argc, char** argv) {
  const long n = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  SeededRandom rnd(1);
  const auto key = shortTermKey("VOkJxbRl1RmTxUk/WvJxBt");
  const auto peer = SocketAddress::v4({192, 0, 2, 1}, 32853);
  Bytes buf;
  buf.reserve(1500);

  auto build = [&](long i) {
    MessageBuilder(buf, Method::Binding, Class::Request, randomTransactionId(rnd))
        .addString(attr::Username, "evtj:h6vY")
        .addU32(attr::Priority, 0x6e0001ff)
        .addU64(attr::IceControlling, static_cast<std::uint64_t>(i))
        .addFlag(attr::UseCandidate)
        .addIntegrity(key)
        .addFingerprint();
    return buf.size();
  };
  run("build Binding request (MI + FINGERPRINT)", n, build);

  build(0);
  const Bytes request = buf;
  run("parse + getters (no crypto)", n, [&](long) {
    auto m = parse(request);
    return m.ok() ? *m->priority() + m->useCandidate() + m->username()->size() : 0;
  });
  run("parse + checkIntegrity + fingerprintValid", n, [&](long) {
    auto m = parse(request);
    return m.ok() && m->checkIntegrity(key) && m->fingerprintValid() ? 1u : 0u;
  });

  MessageBuilder(buf, Method::Binding, Class::SuccessResponse, TransactionId{})
      .addXorAddress(attr::XorMappedAddress, peer);
  const Bytes response = buf;
  run("parse + xorMappedAddress", n, [&](long) {
    auto m = parse(response);
    return m.ok() ? m->xorMappedAddress()->port() : 0u;
  });

  Bytes payload(1200, 0xAB), frame;
  frame.reserve(1500);
  run("ChannelData write + parse (1200 B)", n, [&](long) {
    writeChannelData(frame, 0x4001, payload);
    auto cd = parseChannelData(frame);
    return cd.ok() ? cd->data.size() : 0u;
  });
  return 0;
}
