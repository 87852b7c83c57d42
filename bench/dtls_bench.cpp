// DTLS figures for docs/BENCHMARKS.md "## DTLS":
//  - certificate generation (ECDSA P-256 key + self-signed certificate);
//  - a full handshake between two Endpoints over loopback UDP in one thread (so wall time ~ CPU of both ends),
//    with reused certificates and with fresh ones;
//  - application-record throughput with 1200-byte records: encrypt only, and encrypt + decrypt in one core,
//    through OpenSSL's record layer and through RecordProtection after the handover.
//  - the server side of a handshake alone (thread CPU of the server endpoint's calls, in memory, no sockets, up to
//    the handover that frees the SSL object): what a server pays per new connection in DTLS.
//   bench_dtls [handshakes=300] [records=200000] [--server-only]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string_view>
#include <vector>

#include "dtls/endpoint.hpp"

using namespace rtcpeer;
using namespace rtcpeer::dtls;

namespace {

double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double wallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
Timestamp now() { return fromMicros(static_cast<std::int64_t>(wallSeconds() * 1e6)); }

struct Udp {
  int fd;
  sockaddr_in addr{};
  Udp() : fd(socket(AF_INET, SOCK_DGRAM, 0)) {
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  ~Udp() { close(fd); }
};

Config config(std::shared_ptr<const Certificate> self, const Certificate& peer, Role role) {
  Config c;
  c.certificate = std::move(self);
  c.role = role;
  c.remoteFingerprints = {peer.sha256()};
  return c;
}

// One handshake over real loopback sockets; returns false if it did not complete.
bool handshake(std::shared_ptr<const Certificate> ca, std::shared_ptr<const Certificate> cb, Udp& ua, Udp& ub) {
  Endpoint a(config(ca, *cb, Role::Client)), b(config(cb, *ca, Role::Server));
  a.start(now());
  b.start(now());
  std::uint8_t buf[2048];
  const double deadline = wallSeconds() + 2;
  while (a.state() != State::Connected || b.state() != State::Connected) {
    if (wallSeconds() > deadline) return false;
    while (auto d = a.pollTransmit())
      sendto(ua.fd, d->data(), d->size(), 0, reinterpret_cast<sockaddr*>(&ub.addr), sizeof ub.addr);
    while (auto d = b.pollTransmit())
      sendto(ub.fd, d->data(), d->size(), 0, reinterpret_cast<sockaddr*>(&ua.addr), sizeof ua.addr);
    ssize_t n;
    while ((n = recv(ub.fd, buf, sizeof buf, 0)) > 0) b.handleInput(ByteView(buf, static_cast<std::size_t>(n)), now());
    while ((n = recv(ua.fd, buf, sizeof buf, 0)) > 0) a.handleInput(ByteView(buf, static_cast<std::size_t>(n)), now());
  }
  return true;
}

double threadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The server's part of one handshake, in memory: its endpoint's creation, every call on it until it has handed
// its records over (one application record each way), and its destruction. Returns the server's thread CPU
// seconds, or a negative value if the handshake did not complete.
double serverHandshakeCpu(const std::shared_ptr<const Certificate>& client,
                          const std::shared_ptr<const Certificate>& server) {
  const Timestamp t = now();
  Endpoint a(config(client, *server, Role::Client));
  double cpu = 0;
  auto timed = [&cpu](auto&& f) {
    const double t0 = threadCpu();
    f();
    cpu += threadCpu() - t0;
  };
  std::optional<Endpoint> b;
  timed([&] {
    b.emplace(config(server, *client, Role::Server));
    b->start(t);
  });
  a.start(t);
  const std::uint8_t hello[] = {1, 2, 3};
  bool sent = false;
  for (int round = 0; round < 10 && !b->sslReleased(); ++round) {
    while (auto d = a.pollTransmit()) timed([&] { b->handleInput(*d, t); });
    std::vector<Bytes> out;
    timed([&] {
      if (b->state() == State::Connected) (void)b->send(hello, t);
      while (auto d = b->pollTransmit()) out.emplace_back(d->begin(), d->end());
    });
    for (const Bytes& d : out) a.handleInput(d, t);
    if (a.state() == State::Connected && !sent) sent = a.send(hello, t).ok();
  }
  const bool ok = b->sslReleased();
  timed([&] { b.reset(); });
  return ok ? cpu : -1;
}

// Record throughput through OpenSSL's record layer, or through RecordProtection after the handover (one record each
// way first, which is what triggers it).
bool recordThroughput(const std::shared_ptr<const Certificate>& ca, const std::shared_ptr<const Certificate>& cb,
                      long records, bool release) {
  Config ac = config(ca, *cb, Role::Client), bc = config(cb, *ca, Role::Server);
  ac.releaseSslAfterHandshake = bc.releaseSslAfterHandshake = release;
  Endpoint a(ac), b(bc);
  a.start(now());
  b.start(now());
  for (int round = 0; round < 10; ++round) {
    while (auto d = a.pollTransmit()) b.handleInput(*d, now());
    while (auto d = b.pollTransmit()) a.handleInput(*d, now());
  }
  if (a.state() != State::Connected || b.state() != State::Connected) return false;
  Bytes payload(1200, 0xab);
  const Timestamp t = now();
  (void)a.send(payload, t);
  while (auto d = a.pollTransmit()) b.handleInput(*d, t);
  (void)b.send(payload, t);
  while (auto d = b.pollTransmit()) a.handleInput(*d, t);
  while (a.pollApplicationData() || b.pollApplicationData()) {
  }
  if (a.sslReleased() != release || b.sslReleased() != release) return false;
  const char* layer = release ? "RecordProtection" : "OpenSSL records ";

  double c0 = cpuSeconds();
  for (long i = 0; i < records; ++i) {
    (void)a.send(payload, t);
    while (a.pollTransmit()) {
    }
  }
  double cpu = cpuSeconds() - c0;
  std::printf("%s: encrypt 1200-byte records (%s): %8.1f MB/s per core\n", layer, a.cipherName().c_str(),
              static_cast<double>(records) * 1200 / cpu / 1e6);

  c0 = cpuSeconds();
  std::size_t delivered = 0;
  for (long i = 0; i < records; ++i) {
    (void)a.send(payload, t);
    while (auto d = a.pollTransmit()) b.handleInput(*d, t);
    while (auto r = b.pollApplicationData()) delivered += r->size();
  }
  cpu = cpuSeconds() - c0;
  std::printf("%s: encrypt+decrypt 1200-byte records: %8.1f MB/s per core (%zu bytes delivered)\n", layer,
              static_cast<double>(delivered) / cpu / 1e6, delivered);
  return delivered == static_cast<std::size_t>(records) * 1200;
}

}  // namespace

int main(int argc, char** argv) {
  const int handshakes = argc > 1 ? std::atoi(argv[1]) : 300;
  if (argc > 3 && std::string_view(argv[3]) == "--server-only") {
    auto client = *Certificate::generate(), server = *Certificate::generate();
    (void)serverHandshakeCpu(client, server);  // the first one sets OpenSSL up
    double total = 0;
    int ok = 0;
    for (int i = 0; i < handshakes; ++i)
      if (const double cpu = serverHandshakeCpu(client, server); cpu >= 0) {
        total += cpu;
        ++ok;
      }
    std::printf("server side of a handshake, in memory, reused certificates: %.1f us thread CPU (%d/%d ok)\n",
                ok ? total / ok * 1e6 : 0.0, ok, handshakes);
    const bool reusedOk = ok == handshakes;
    // With a fresh server certificate per handshake (the default of a PeerConnection), its generation not counted.
    total = 0;
    ok = 0;
    for (int i = 0; i < handshakes / 4; ++i) {
      auto fresh = *Certificate::generate();
      if (const double cpu = serverHandshakeCpu(client, fresh); cpu >= 0) {
        total += cpu;
        ++ok;
      }
    }
    std::printf("  with a fresh server certificate each time (its generation not counted): %.1f us (%d/%d ok)\n",
                ok ? total / ok * 1e6 : 0.0, ok, handshakes / 4);
    // Of which: making the endpoint (SSL_new and the identity) and freeing it unused.
    const double t0 = threadCpu();
    for (int i = 0; i < handshakes; ++i) Endpoint e(config(server, *client, Role::Server));
    std::printf("  of which creating and destroying an endpoint: %.1f us\n", (threadCpu() - t0) / handshakes * 1e6);
    return reusedOk && ok == handshakes / 4 ? 0 : 1;
  }
  const long records = argc > 2 ? std::atol(argv[2]) : 200000;

  double w0 = wallSeconds(), c0 = cpuSeconds();
  for (int i = 0; i < 100; ++i) (void)Certificate::generate();
  std::printf("certificate generation:            %8.3f ms wall  %8.3f ms CPU\n", (wallSeconds() - w0) * 10,
              (cpuSeconds() - c0) * 10);

  auto ca = *Certificate::generate(), cb = *Certificate::generate();
  Udp ua, ub;
  for (bool fresh : {false, true}) {
    int ok = 0;
    w0 = wallSeconds();
    c0 = cpuSeconds();
    for (int i = 0; i < handshakes; ++i) {
      if (fresh) {
        ca = *Certificate::generate();
        cb = *Certificate::generate();
      }
      ok += handshake(ca, cb, ua, ub);
    }
    std::printf("handshake, loopback UDP, %s: %8.3f ms wall  %8.3f ms CPU (both ends)  %d/%d ok\n",
                fresh ? "fresh certs " : "reused certs", (wallSeconds() - w0) * 1e3 / handshakes,
                (cpuSeconds() - c0) * 1e3 / handshakes, ok, handshakes);
  }

  bool allDelivered = true;
  for (bool release : {false, true}) allDelivered &= recordThroughput(ca, cb, records, release);
  return allDelivered ? 0 : 1;
}
