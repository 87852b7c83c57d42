// Thousands of concurrent PeerConnections in one process, driven the way a server drives them: one epoll set
// over every connection's fileDescriptor() and a deadline heap fed by nextDeadline(), so a poll() happens only
// for a connection that has work. Each pair is a "server" connection (the answerer, as an echo server is for
// browsers; one DTLS identity shared by all, on port --port) and a "client" connection (the offerer, its own
// socket), with the signaling messages queued and delivered between polls as a signaling server would.
//
// The population grows through the checkpoints (--counts 1000,2000,5000,10000); at each one the bench prints:
//   setup: new connections per second (offer to channel open on both sides) per CPU second, for the whole process
//          and for the server side alone (CPU of the server connections' calls, CLOCK_THREAD_CPUTIME_ID);
//   memory: heap (mallinfo2) and RSS growth per PeerConnection since the start (both sides counted);
//   idle: CPU per connection per second while only consent checks run (--idle seconds);
//   echo: one message sent on every client channel and echoed by the server side, time and CPU until all are back.
// Then the OpenSSL floor: ECDSA P-256 sign/verify, P-256 and X25519 ECDHE, per second on one core.
//   bench_scale [--counts N,N,...] [--port P] [--window W] [--idle S] [--fresh-certs] [--lite] [--mux] [--quick] [--floor | --no-floor]
#include <malloc.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "dtls/certificate.hpp"
#include "rtcpeer/rtcpeer.hpp"

using namespace rtcpeer;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::vector<int> counts{1000, 2000, 5000, 10000};
  std::uint16_t port = 40000;
  int window = 200;       // connections being set up at once
  double idle = 10;       // seconds of idle measurement per checkpoint
  bool freshCerts = false;
  bool lite = false;
  bool mux = false;
};

double cpuNow(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double processCpu() { return cpuNow(CLOCK_PROCESS_CPUTIME_ID); }
double threadCpu() { return cpuNow(CLOCK_THREAD_CPUTIME_ID); }
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::size_t heapInUse() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}
std::size_t residentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// Two descriptors per PeerConnection (its epoll set and one UDP socket per local address), two connections per
// pair, plus slack. Root may raise the hard limit too.
void raiseFileLimit(int pairs) {
  const rlim_t want = static_cast<rlim_t>(pairs) * 4 + 1024;
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur >= want) return;
  rlimit wanted{want, std::max(want, r.rlim_max)};
  if (setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
    wanted = {r.rlim_max, r.rlim_max};
    setrlimit(RLIMIT_NOFILE, &wanted);
    std::printf("warning: RLIMIT_NOFILE only %llu (need %llu): run as root or raise the hard limit\n",
                static_cast<unsigned long long>(r.rlim_max), static_cast<unsigned long long>(want));
  }
}

class Bench {
 public:
  explicit Bench(const Options& o) : o_(o) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    server_.interfaces = client_.interfaces = {"127.0.0.1"};
    server_.portRangeBegin = server_.portRangeEnd = o.mux ? o.port : 0;
    server_.iceLite = o.lite;
    if (!o.freshCerts) {
      auto cert = dtls::Certificate::generate();
      auto pem = (*cert)->toPem();
      server_.certificatePem = client_.certificatePem = pem->first;
      server_.privateKeyPem = client_.privateKeyPem = pem->second;
    }
  }
  ~Bench() { close(ep_); }

  /// Grows the population to `target` connected pairs. False if some pair failed to connect.
  bool grow(int target) {
    const double cpu0 = processCpu(), server0 = serverCpu_;
    const auto wall0 = Clock::now();
    const int before = connected_;
    setupMs_.clear();
    while (connected_ < target) {
      while (connecting_ < o_.window && started_ < target) start();
      step(std::chrono::milliseconds(50));
      if (failed_ > 0) {
        std::printf("%d connection(s) failed: %s\n", failed_, firstFailure_.c_str());
        return false;
      }
    }
    const int n = connected_ - before;
    const double cpu = processCpu() - cpu0, server = serverCpu_ - server0, wall = seconds(Clock::now() - wall0);
    std::printf("  setup   %5d new: %.0f/s wall, %.0f per process CPU s (both sides), %.0f per server-side CPU s "
                "(%.0f us each)\n",
                n, n / wall, n / cpu, n / server, server / n * 1e6);
    std::sort(setupMs_.begin(), setupMs_.end());
    if (!setupMs_.empty())
      std::printf("          each: median %.1f ms, p90 %.1f ms, max %.1f ms from offer to open\n",
                  setupMs_[setupMs_.size() / 2], setupMs_[setupMs_.size() * 9 / 10], setupMs_.back());
    return true;
  }

  void idle(double secs) {
    settle();
    const double cpu0 = processCpu(), server0 = serverCpu_;
    const auto wall0 = Clock::now();
    std::uint64_t polls0 = polls_;
    const auto end = wall0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
    while (Clock::now() < end) step(std::chrono::milliseconds(100));
    const double wall = seconds(Clock::now() - wall0);
    const double cpu = processCpu() - cpu0, server = serverCpu_ - server0;
    std::printf("  idle    %.1f s: process %.2f %% of a core, %.2f us CPU per pair per s (server side %.2f us), "
                "%.1f polls per connection per s\n",
                wall, cpu / wall * 100, cpu / wall / connected_ * 1e6, server / wall / connected_ * 1e6,
                static_cast<double>(polls_ - polls0) / wall / (2.0 * connected_));
  }

  void memory() {
    settle();
    malloc_trim(0);
    const double pcs = 2.0 * connected_;
    std::printf("  memory  per PeerConnection (%d of them): heap %.1f KiB, RSS %.1f KiB\n", 2 * connected_,
                static_cast<double>(heapInUse() - heap0_) / pcs / 1024,
                static_cast<double>(residentBytes() - rss0_) / pcs / 1024);
  }

  /// One message on every client channel; the server side echoes it. False if some never came back.
  bool echo() {
    const double cpu0 = processCpu(), server0 = serverCpu_;
    const auto wall0 = Clock::now();
    echoed_ = 0;
    const std::string msg(64, 'e');
    for (auto& p : pairs_) {
      p.echoed = false;
      if (p.clientChannel->putPacket(msg) != Error::Ok) return false;
      ready(p.client);
    }
    const auto limit = Clock::now() + std::chrono::seconds(60);
    while (echoed_ < connected_ && Clock::now() < limit) step(std::chrono::milliseconds(50));
    const double wall = seconds(Clock::now() - wall0);
    std::printf("  echo    %d of %d back in %.1f ms; CPU %.1f us per message (server side %.1f us)\n", echoed_,
                connected_, wall * 1e3, (processCpu() - cpu0) / connected_ * 1e6,
                (serverCpu_ - server0) / connected_ * 1e6);
    return echoed_ == connected_;
  }

  void baseline() {
    malloc_trim(0);
    heap0_ = heapInUse();
    rss0_ = residentBytes();
  }

 private:
  enum class Kind { Description, Candidate };
  struct Message {  // a signaling message in flight
    int node = 0;
    Kind kind = Kind::Description;
    std::string a, b;  // type/sdp or mid/candidate
    int index = 0;
  };
  struct Node {
    std::unique_ptr<PeerConnection> pc;
    Clock::time_point deadline = Clock::time_point::max();
    bool queued = false;
  };
  struct Pair {
    int server = 0, client = 0;
    std::shared_ptr<DataChannel> clientChannel, serverChannel;
    Clock::time_point started;
    bool open = false, echoed = false;
  };

  static bool isServer(int node) { return node % 2 == 0; }

  void start() {
    const int i = static_cast<int>(pairs_.size());
    Pair& p = pairs_.emplace_back();
    p.server = 2 * i;
    p.client = 2 * i + 1;
    p.started = Clock::now();
    for (int node : {p.server, p.client}) {
      nodes_.emplace_back();
      Node& n = nodes_.back();
      const double t0 = isServer(node) ? threadCpu() : 0;
      n.pc = std::make_unique<PeerConnection>();
      if (n.pc->initialize(isServer(node) ? server_ : client_) != Error::Ok) {
        fail(n.pc->lastError());
        return;
      }
      if (isServer(node)) serverCpu_ += threadCpu() - t0;
      const int peer = node ^ 1;
      PeerConnection* pc = n.pc.get();
      pc->onSessionDescriptionCreated([this, pc, peer](const std::string& type, const std::string& sdp) {
        pc->setLocalDescription(type, sdp);
        inbox_.push_back({peer, Kind::Description, type, sdp, 0});
      });
      pc->onIceCandidateCreated([this, peer](const std::string& mid, int index, const std::string& name) {
        inbox_.push_back({peer, Kind::Candidate, mid, name, index});
      });
      epoll_event e{EPOLLIN, {.u64 = static_cast<std::uint64_t>(node)}};
      epoll_ctl(ep_, EPOLL_CTL_ADD, pc->fileDescriptor(), &e);
    }
    nodes_[static_cast<std::size_t>(p.server)].pc->onDataChannelReceived(
        [this, i](std::shared_ptr<DataChannel> c) { pairs_[static_cast<std::size_t>(i)].serverChannel = std::move(c); });
    p.clientChannel = nodes_[static_cast<std::size_t>(p.client)].pc->createDataChannel("echo");
    nodes_[static_cast<std::size_t>(p.client)].pc->createOffer();
    ready(p.client);
    ++started_;
    ++connecting_;
  }

  void fail(const std::string& why) {
    if (failed_++ == 0) firstFailure_ = why;
  }

  void ready(int node) {
    Node& n = nodes_[static_cast<std::size_t>(node)];
    if (!n.queued) {
      n.queued = true;
      readyList_.push_back(node);
    }
  }

  // Polls every ready or due connection once, then delivers the signaling those polls produced.
  void step(Clock::duration maxWait) {
    auto now = Clock::now();
    Clock::duration wait = readyList_.empty() && inbox_.empty() ? maxWait : Clock::duration::zero();
    if (!timers_.empty()) wait = std::min(wait, std::max(Clock::duration::zero(), timers_.top().first - now));
    epoll_event events[1024];
    const int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    const int n = epoll_wait(ep_, events, 1024, ms);
    for (int i = 0; i < n; ++i) ready(static_cast<int>(events[i].data.u64));
    now = Clock::now();
    while (!timers_.empty() && timers_.top().first <= now) {
      const auto [t, node] = timers_.top();
      timers_.pop();
      if (nodes_[static_cast<std::size_t>(node)].deadline == t) ready(node);
    }
    std::vector<int> batch;
    batch.swap(readyList_);
    for (int node : batch) pollNode(node);
    deliver();
  }

  void pollNode(int node) {
    Node& n = nodes_[static_cast<std::size_t>(node)];
    n.queued = false;
    const bool server = isServer(node);
    const double t0 = server ? threadCpu() : 0;
    n.pc->poll();
    ++polls_;
    Pair& p = pairs_[static_cast<std::size_t>(node / 2)];
    if (server && p.serverChannel) {  // echo everything
      while (p.serverChannel->getPacket(buffer_) == Error::Ok) p.serverChannel->putPacket(buffer_);
    }
    if (server) serverCpu_ += threadCpu() - t0;
    if (!server) {
      if (!p.open && p.clientChannel->readyState() == ReadyState::Open && p.serverChannel) {
        p.open = true;
        setupMs_.push_back(seconds(Clock::now() - p.started) * 1e3);
        ++connected_;
        --connecting_;
      }
      while (p.clientChannel->getPacket(buffer_) == Error::Ok)
        if (!p.echoed) {
          p.echoed = true;
          ++echoed_;
        }
      if (!p.open && Clock::now() - p.started > std::chrono::seconds(30))
        fail("pair " + std::to_string(node / 2) + " not connected after 30 s: " + n.pc->lastError());
    }
    if (n.pc->connectionState() == ConnectionState::Failed) fail(n.pc->lastError());
    schedule(node);
  }

  void schedule(int node) {
    Node& n = nodes_[static_cast<std::size_t>(node)];
    const auto d = n.pc->nextDeadline();
    if (d == n.deadline) return;
    n.deadline = d;
    if (d != Clock::time_point::max()) timers_.push({d, node});
  }

  void deliver() {
    std::deque<Message> msgs;
    msgs.swap(inbox_);
    for (auto& m : msgs) {
      PeerConnection& pc = *nodes_[static_cast<std::size_t>(m.node)].pc;
      const bool server = isServer(m.node);
      const double t0 = server ? threadCpu() : 0;
      if (m.kind == Kind::Description) pc.setRemoteDescription(m.a, m.b);
      else pc.addIceCandidate(m.a, m.index, m.b);
      if (server) serverCpu_ += threadCpu() - t0;
      ready(m.node);
    }
  }

  // Runs until no connection is being set up and the last acknowledgements have settled.
  void settle() {
    const auto end = Clock::now() + std::chrono::milliseconds(300);
    while (Clock::now() < end) step(std::chrono::milliseconds(50));
  }

  using Timer = std::pair<Clock::time_point, int>;
  const Options& o_;
  int ep_ = -1;
  Configuration server_, client_;
  std::deque<Node> nodes_;
  std::deque<Pair> pairs_;
  std::deque<Message> inbox_;
  std::vector<int> readyList_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::vector<std::uint8_t> buffer_;
  int started_ = 0, connecting_ = 0, connected_ = 0, echoed_ = 0, failed_ = 0;
  std::string firstFailure_;
  double serverCpu_ = 0;
  std::uint64_t polls_ = 0;
  std::vector<double> setupMs_;  // offer to open, per pair of the current grow()
  std::size_t heap0_ = 0, rss0_ = 0;
};

// --- the OpenSSL floor: what one DTLS handshake's public-key operations cost on one core -----------------------

EVP_PKEY* keygen(int type) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(type, nullptr);
  EVP_PKEY* key = nullptr;
  EVP_PKEY_keygen_init(ctx);
  if (type == EVP_PKEY_EC) EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, NID_X9_62_prime256v1);
  EVP_PKEY_keygen(ctx, &key);
  EVP_PKEY_CTX_free(ctx);
  return key;
}

template <typename F>
double opsPerSecond(F&& op) {
  const double t0 = threadCpu();
  int n = 0;
  while (threadCpu() - t0 < 0.3) {
    for (int i = 0; i < 50; ++i) op();
    n += 50;
  }
  return n / (threadCpu() - t0);
}

void opensslFloor() {
  EVP_PKEY* ec = keygen(EVP_PKEY_EC);
  EVP_PKEY* ec2 = keygen(EVP_PKEY_EC);
  EVP_PKEY* x = keygen(EVP_PKEY_X25519);
  EVP_PKEY* x2 = keygen(EVP_PKEY_X25519);
  unsigned char digest[32] = {1}, sig[80], secret[64];
  std::size_t sigLen = sizeof sig;
  const double sign = opsPerSecond([&] {
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new(ec, nullptr);
    EVP_PKEY_sign_init(c);
    sigLen = sizeof sig;
    EVP_PKEY_sign(c, sig, &sigLen, digest, sizeof digest);
    EVP_PKEY_CTX_free(c);
  });
  const double verify = opsPerSecond([&] {
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new(ec, nullptr);
    EVP_PKEY_verify_init(c);
    EVP_PKEY_verify(c, sig, sigLen, digest, sizeof digest);
    EVP_PKEY_CTX_free(c);
  });
  auto derive = [&](EVP_PKEY* self, EVP_PKEY* peer) {
    EVP_PKEY_CTX* c = EVP_PKEY_CTX_new(self, nullptr);
    EVP_PKEY_derive_init(c);
    EVP_PKEY_derive_set_peer(c, peer);
    std::size_t len = sizeof secret;
    EVP_PKEY_derive(c, secret, &len);
    EVP_PKEY_CTX_free(c);
  };
  const double ecdh = opsPerSecond([&] { derive(ec, ec2); });
  const double xdh = opsPerSecond([&] { derive(x, x2); });
  const double ecGen = opsPerSecond([] { EVP_PKEY_free(keygen(EVP_PKEY_EC)); });
  const double xGen = opsPerSecond([] { EVP_PKEY_free(keygen(EVP_PKEY_X25519)); });
  const double certs = opsPerSecond([] { (void)dtls::Certificate::generate(); });

  std::printf("OpenSSL floor, one core: ECDSA P-256 sign %.0f/s, verify %.0f/s; ECDH P-256 %.0f/s (keygen %.0f/s); "
              "X25519 %.0f/s (keygen %.0f/s); a fresh DTLS certificate %.0f/s\n",
              sign, verify, ecdh, ecGen, xdh, xGen, certs);
  // A server's handshake with a reused certificate: one ECDSA sign (ServerKeyExchange), one verify (the client's
  // CertificateVerify), one X25519 keygen and derive (the group Chromium and we offer first).
  const double handshake = 1 / (1 / sign + 1 / verify + 1 / xdh + 1 / xGen);
  std::printf("  floor of a server-side handshake (sign + verify + X25519 keygen + derive): %.0f/s per core\n",
              handshake);
  for (EVP_PKEY* k : {ec, ec2, x, x2}) EVP_PKEY_free(k);
}

std::vector<int> parseCounts(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines appear as measured, also when redirected to a file
  Options o;
  bool floorOnly = false, floor = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--counts") o.counts = parseCounts(next());
    else if (a == "--port") o.port = static_cast<std::uint16_t>(std::atoi(next()));
    else if (a == "--window") o.window = std::max(1, std::atoi(next()));
    else if (a == "--idle") o.idle = std::atof(next());
    else if (a == "--fresh-certs") o.freshCerts = true;
    else if (a == "--lite") o.lite = true;
    else if (a == "--mux") o.mux = true;
    else if (a == "--floor") floorOnly = true;
    else if (a == "--no-floor") floor = false;
    else if (a == "--quick") {
      o.counts = {100, 200};
      o.idle = 2;
    } else {
      std::fprintf(stderr, "usage: bench_scale [--counts N,N,...] [--port P] [--window W] [--idle S] "
                           "[--fresh-certs] [--lite] [--mux] [--quick] [--floor | --no-floor]\n");
      return 2;
    }
  }
  if (floor) opensslFloor();
  if (floorOnly) return 0;
  raiseFileLimit(o.counts.empty() ? 0 : *std::max_element(o.counts.begin(), o.counts.end()));
  Bench bench(o);
  std::printf("server side: %s, %s ICE, %s certificate; client side: own socket each; %d set up at once\n",
              o.mux ? "one UDP port (udpMux)" : "one socket per connection", o.lite ? "lite" : "full",
              o.freshCerts ? "a fresh" : "one shared", o.window);
  bench.baseline();
  for (int target : o.counts) {
    std::printf("%d connected pairs (%d PeerConnections)\n", target, 2 * target);
    if (!bench.grow(target)) return 1;
    bench.memory();
    bench.idle(o.idle);
    if (!bench.echo()) return 1;
    bench.memory();
  }
  return 0;
}
