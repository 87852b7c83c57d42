// Thousands of concurrent PeerConnections, driven the way a server drives them: one epoll set over every
// connection's fileDescriptor() and a deadline heap fed by nextDeadline(), so poll() runs only for a connection
// that has work. This process is the server: every connection is an answerer sharing one UDP port (udpMux, port
// --port) and one DTLS identity. The clients (offerers, a socket each, as browsers) live in --procs forked
// processes, because each connection holds descriptors and a process may have only so many; signaling travels
// between the processes over socketpairs, delivered between polls as a signaling server would.
//
// The population grows through the checkpoints (--counts 1000,2000,5000,10000); at each one the bench prints,
// for the server process alone:
//   setup: new connections per second of server CPU (offer to the server's channel open: ICE, DTLS, SCTP, DCEP);
//   memory: heap (mallinfo2 uordblks + hblkhd) and RSS growth per connection since the start;
//   idle: CPU per connection per second while only consent checks run (--idle seconds);
//   echo: one message sent on every client channel and echoed by the server, time and server CPU until all are
//         back.
// The OpenSSL floor comes first: ECDSA P-256 sign/verify, P-256 and X25519 ECDHE, per second on one core.
//   bench_scale [--counts N,N,...] [--port P] [--window W] [--idle S] [--procs K] [--no-mux] [--lite]
//               [--fresh-certs] [--echo-batch N] [--quick] [--floor | --no-floor]
#include <dirent.h>
#include <malloc.h>
#include <openssl/ec.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <new>
#include <queue>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dtls/certificate.hpp"
#include "rtcpeer/rtcpeer.hpp"

using namespace rtcpeer;
using Clock = std::chrono::steady_clock;

// Heap allocations of the process, counted: C++ operator new (ours) and OpenSSL's CRYPTO_malloc family (its
// allocation hooks, installed before OpenSSL allocates anything). Relaxed counters: the server is one thread.
std::atomic<std::uint64_t> g_newCalls{0}, g_opensslMallocs{0};

namespace {

struct Options {
  std::vector<int> counts{1000, 2000, 5000, 10000};
  std::uint16_t port = 40000;
  int window = 50;   // connections being set up at once
  double idle = 10;  // seconds of idle measurement per checkpoint
  int procs = 0;     // client processes; 0: one per 3000 connections
  bool mux = true;
  bool lite = false;
  bool freshCerts = false;
  int echoBatch = 0;  // echo messages a client process sends per loop turn (0: all at once)
};

double processCpu() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double threadCpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::size_t heapInUse() {
  const auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}
std::size_t openDescriptors() {
  std::size_t n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (const dirent* e = readdir(d)) n += e->d_name[0] != '.' ? 1 : 0;
    closedir(d);
  }
  return n;
}

std::size_t residentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int got = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

// Descriptors a process needs: per connection its epoll set, and its own socket unless it is on the shared port
// (udpMux: one descriptor per connection), plus slack. Root may raise the hard limit too, unless the container
// took CAP_SYS_RESOURCE away. (rtcpeer itself raises the soft limit to the hard one on the first EMFILE.)
void raiseFileLimit(int connections, int perConnection) {
  const rlim_t want = static_cast<rlim_t>(connections) * static_cast<rlim_t>(perConnection) + 64;
  rlimit r{};
  getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_cur >= want) return;
  rlimit wanted{want, std::max(want, r.rlim_max)};
  if (setrlimit(RLIMIT_NOFILE, &wanted) != 0) {
    wanted = {r.rlim_max, r.rlim_max};
    setrlimit(RLIMIT_NOFILE, &wanted);
    if (r.rlim_max < want)
      std::printf("warning: RLIMIT_NOFILE is %llu, %d connections need %llu descriptors\n",
                  static_cast<unsigned long long>(r.rlim_max), connections, static_cast<unsigned long long>(want));
  }
}

// --- between the server process and a client process: one SOCK_SEQPACKET message each -------------------------

enum class Op : std::uint8_t {
  Start,        // S->C: make pair `pair`'s client connection and offer
  Description,  // both ways: a = type, b = sdp
  Candidate,    // both ways: a = mid, b = candidate line, index
  Echo,         // S->C: send one message on every open client channel
  Echoed,       // C->S: every open channel of this process has its echo back (index = how many)
};
struct Header {
  std::uint32_t pair = 0;
  Op op = Op::Start;
  std::int32_t index = 0;
  std::uint32_t lenA = 0, lenB = 0;
};
struct Message {
  Header h;
  std::string a, b;
};

void sendMessage(int fd, const Header& h0, std::string_view a = {}, std::string_view b = {}) {
  Header h = h0;
  h.lenA = static_cast<std::uint32_t>(a.size());
  h.lenB = static_cast<std::uint32_t>(b.size());
  std::string buf(sizeof h, '\0');
  std::memcpy(buf.data(), &h, sizeof h);
  buf.append(a);
  buf.append(b);
  if (::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(buf.size())) {
    std::perror("bench_scale: send to the other process");
    std::exit(1);
  }
}

// Every message waiting on `fd`; false once the other side has closed.
bool receiveMessages(int fd, std::vector<Message>& out) {
  static std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    Message m;
    std::memcpy(&m.h, buf.data(), sizeof m.h);
    m.a.assign(buf.data() + sizeof m.h, m.h.lenA);
    m.b.assign(buf.data() + sizeof m.h + m.h.lenA, m.h.lenB);
    out.push_back(std::move(m));
  }
}

// --- one process's connections: epoll over their descriptors, a deadline heap, signaling out to a socket --------

class Side {
 public:
  static constexpr std::uint64_t kLinkTag = 1ull << 40;  // epoll data of a socketpair: kLinkTag + link index

  Side() : ep_(epoll_create1(EPOLL_CLOEXEC)) {}
  ~Side() { close(ep_); }

  void watchLink(int fd, std::size_t index) {
    epoll_event e{EPOLLIN, {.u64 = kLinkTag + index}};
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
  }

  /// A connection for `pair`; its signaling goes to `link`.
  PeerConnection* add(std::uint32_t pair, const Configuration& config, int link) {
    const auto slot = static_cast<int>(nodes_.size());
    Node& n = nodes_.emplace_back();
    n.pair = pair;
    n.pc = std::make_unique<PeerConnection>();
    if (n.pc->initialize(config) != Error::Ok) {
      fail(n.pc->lastError());
      return nullptr;
    }
    PeerConnection* pc = n.pc.get();
    pc->onSessionDescriptionCreated([pc, pair, link](const std::string& type, const std::string& sdp) {
      pc->setLocalDescription(type, sdp);
      sendMessage(link, {pair, Op::Description}, type, sdp);
    });
    pc->onIceCandidateCreated([pair, link](const std::string& mid, int index, const std::string& name) {
      sendMessage(link, {pair, Op::Candidate, index}, mid, name);
    });
    epoll_event e{EPOLLIN, {.u64 = static_cast<std::uint64_t>(slot)}};
    epoll_ctl(ep_, EPOLL_CTL_ADD, pc->fileDescriptor(), &e);
    bySlot_.push_back(slot);
    return pc;
  }

  /// The shared port's figures from the connections' stats (ConnectionStats::udpMux*).
  struct MuxDrops {
    std::size_t connections = 0;
    std::uint64_t full = 0, unknown = 0;
  };
  MuxDrops muxDrops() const {
    MuxDrops d;
    for (const auto& n : nodes_) {
      if (!n.pc) continue;
      const auto s = n.pc->stats();
      d.connections = std::max(d.connections, s.udpMuxConnections);
      d.full += s.udpMuxDroppedFull;
      d.unknown = std::max(d.unknown, s.udpMuxDroppedUnknown);
    }
    return d;
  }

  /// Applies a Description or Candidate message to the connection of its pair (slot from `slotOf`).
  void apply(int slot, const Message& m) {
    if (nodes_[static_cast<std::size_t>(slot)].lost) return;
    PeerConnection& pc = *nodes_[static_cast<std::size_t>(slot)].pc;
    if (m.h.op == Op::Description) pc.setRemoteDescription(m.a, m.b);
    else pc.addIceCandidate(m.a, m.h.index, m.b);
    ready(slot);
  }

  void ready(int slot) {
    Node& n = nodes_[static_cast<std::size_t>(slot)];
    if (!n.queued) {
      n.queued = true;
      readyList_.push_back(slot);
    }
  }

  /// Waits up to `maxWait` for work, polls every ready or due connection once (`afterPoll(slot)` after each, which
  /// returns the slot's CPU account; the poll's thread CPU time is added to it) and returns the readable links.
  std::vector<std::size_t> step(Clock::duration maxWait, const std::function<double*(int)>& afterPoll) {
    auto now = Clock::now();
    Clock::duration wait = readyList_.empty() ? maxWait : Clock::duration::zero();
    if (!timers_.empty()) wait = std::min(wait, std::max(Clock::duration::zero(), timers_.top().first - now));
    epoll_event events[1024];
    const int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    const int n = epoll_wait(ep_, events, 1024, ms);
    std::vector<std::size_t> links;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 >= kLinkTag) links.push_back(events[i].data.u64 - kLinkTag);
      else ready(static_cast<int>(events[i].data.u64));
    }
    now = Clock::now();
    while (!timers_.empty() && timers_.top().first <= now) {
      const auto [t, slot] = timers_.top();
      timers_.pop();
      if (nodes_[static_cast<std::size_t>(slot)].deadline == t) ready(slot);
    }
    std::vector<int> batch;
    batch.swap(readyList_);
    for (int slot : batch) {
      Node& node = nodes_[static_cast<std::size_t>(slot)];
      node.queued = false;
      if (node.lost) continue;
      const double t0 = threadCpu();
      if (node.pc->poll() != Error::Ok) fail(node.pc->lastError());
      ++polls_;
      if (double* account = afterPoll(slot)) *account += threadCpu() - t0;
      if (node.pc->connectionState() == ConnectionState::Failed) {
        lose(slot);
        continue;
      }
      const auto d = node.pc->nextDeadline();
      if (d != node.deadline) {
        node.deadline = d;
        if (d != Clock::time_point::max()) timers_.push({d, slot});
      } else if (d <= now && d != Clock::time_point::max()) {
        // The same deadline, already past, after a poll: its entry was popped, so schedule it again (and count it:
        // a core should move its deadline once it has been served).
        ++stuckDeadlines_;
        timers_.push({d, slot});
      }
    }
    return links;
  }

  PeerConnection& pc(int slot) { return *nodes_[static_cast<std::size_t>(slot)].pc; }
  std::size_t size() const { return nodes_.size(); }
  std::uint64_t polls() const { return polls_; }
  std::uint64_t stuckDeadlines() const { return stuckDeadlines_; }
  int failed() const { return failed_; }
  const std::string& firstFailure() const { return firstFailure_; }
  void fail(const std::string& why) {
    if (failed_++ == 0) firstFailure_ = why;
  }
  /// A connection that failed (the library logs why) is closed and counted, not fatal: at this scale on a loaded
  /// machine some handshakes time out, and the bench reports how many.
  void lose(int slot) {
    Node& node = nodes_[static_cast<std::size_t>(slot)];
    if (node.lost) return;
    node.lost = true;
    node.pc->close();
    lostSlots_.push_back(slot);
  }
  std::vector<int> takeLost() { return std::exchange(lostSlots_, {}); }

 private:
  struct Node {
    std::uint32_t pair = 0;
    std::unique_ptr<PeerConnection> pc;
    Clock::time_point deadline = Clock::time_point::max();
    bool queued = false;
    bool lost = false;
  };
  using Timer = std::pair<Clock::time_point, int>;
  int ep_ = -1;
  std::deque<Node> nodes_;
  std::vector<int> bySlot_;
  std::vector<int> readyList_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers_;
  std::uint64_t polls_ = 0, stuckDeadlines_ = 0;
  std::vector<int> lostSlots_;
  int failed_ = 0;
  std::string firstFailure_;
};

// --- a client process: pairs pair % procs == its index; slot = pair / procs ------------------------------------

[[noreturn]] void runClients(int link, int procs, const Configuration& config, int echoBatch) {
  Side side;
  side.watchLink(link, 0);
  std::vector<std::shared_ptr<DataChannel>> channels;
  std::vector<bool> echoed;
  int waitingEchoes = -1;  // -1: no echo round running
  std::size_t echoNext = SIZE_MAX;  // the next channel to send the echo round's message on
  std::vector<std::uint8_t> buffer;
  const std::string message(64, 'e');
  auto afterPoll = [&](int slot) -> double* {
    auto& channel = channels[static_cast<std::size_t>(slot)];
    while (channel->getPacket(buffer) == Error::Ok) {
      if (waitingEchoes > 0 && !echoed[static_cast<std::size_t>(slot)]) {
        echoed[static_cast<std::size_t>(slot)] = true;
        --waitingEchoes;
      }
    }
    return nullptr;
  };
  std::vector<Message> inbox;
  for (;;) {
    for (std::size_t l : side.step(std::chrono::milliseconds(100), afterPoll)) {
      (void)l;
      if (!receiveMessages(link, inbox)) {  // the server process is done
        if (side.stuckDeadlines())
          std::fprintf(stderr, "client process: %llu deadlines served but not moved\n",
                       static_cast<unsigned long long>(side.stuckDeadlines()));
        std::_Exit(0);
      }
    }
    for (auto& m : inbox) {
      const int slot = static_cast<int>(m.h.pair) / procs;
      switch (m.h.op) {
        case Op::Start: {
          PeerConnection* pc = side.add(m.h.pair, config, link);
          if (!pc) std::_Exit(1);
          channels.push_back(pc->createDataChannel("echo"));
          echoed.push_back(false);
          pc->createOffer();
          side.ready(slot);
          break;
        }
        case Op::Description:
        case Op::Candidate:
          side.apply(slot, m);
          break;
        case Op::Echo:  // the messages go out `echoBatch` per loop turn (0: all at once)
          waitingEchoes = 0;
          for (std::size_t i = 0; i < channels.size(); ++i) {
            echoed[i] = false;
            if (channels[i]->readyState() == ReadyState::Open) ++waitingEchoes;
          }
          echoNext = 0;
          m.h.index = waitingEchoes;
          break;
        default:
          break;
      }
      if (m.h.op == Op::Echo) sendMessage(link, {0, Op::Echoed, m.h.index});  // how many were sent...
    }
    inbox.clear();
    for (int sent = 0; echoNext < channels.size() && (echoBatch == 0 || sent < echoBatch); ++echoNext) {
      if (channels[echoNext]->readyState() != ReadyState::Open) continue;
      channels[echoNext]->putPacket(message);
      side.ready(static_cast<int>(echoNext));
      ++sent;
    }
    if (waitingEchoes == 0) {  // ...and when all are back
      sendMessage(link, {0, Op::Echoed, -1});
      waitingEchoes = -1;
    }
  }
}

// --- the server process -----------------------------------------------------------------------------------------

class Server {
 public:
  Server(const Options& o, Configuration config, std::vector<int> links)
      : o_(o), config_(std::move(config)), links_(std::move(links)) {
    for (std::size_t i = 0; i < links_.size(); ++i) side_.watchLink(links_[i], i);
  }

  void baseline() {
    malloc_trim(0);
    heap0_ = heapInUse();
    rss0_ = residentBytes();
    fds0_ = openDescriptors();
  }

  bool grow(int target) {
    maxLost_ = std::max(10, target / 100);
    const double cpu0 = processCpu(), setup0 = setupCpu_;
    const std::uint64_t new0 = g_newCalls.load(), ossl0 = g_opensslMallocs.load(), polls0 = side_.polls();
    const double create0 = createCpu_, signaling0 = signalingCpu_;
    const auto wall0 = Clock::now();
    const int before = connected_;
    setupMs_.clear();
    while (connected_ < target) {
      while (connecting_ < o_.window && started_ < target) start();
      step(std::chrono::milliseconds(50));
      if (side_.failed() > 0) {
        std::printf("%d connection(s) failed: %s\n", side_.failed(), side_.firstFailure().c_str());
        return false;
      }
    }
    const int n = connected_ - before;
    const double cpu = processCpu() - cpu0, wall = seconds(Clock::now() - wall0);
    // The new connections' own CPU: thread CPU time of their creation, their signaling and their polls until their
    // channel was open (what the established ones cost meanwhile, consent checks, is not in it).
    const double own = std::max(1e-9, setupCpu_ - setup0);
    std::sort(setupMs_.begin(), setupMs_.end());
    std::printf("  setup   %5d new in %.1f s: %.0f/s wall; server CPU %.0f us each = %.0f new per CPU second (the "
                "process: %.0f us each, with the established connections' traffic); each %.0f ms median, %.0f ms "
                "p90 (%d at once)\n",
                n, wall, n / wall, own / n * 1e6, n / own, cpu / n * 1e6, setupMs_[setupMs_.size() / 2],
                setupMs_[setupMs_.size() * 9 / 10], o_.window);
    const double create = createCpu_ - create0, signaling = signalingCpu_ - signaling0;
    std::printf("          of which: creation %.0f us, applying the offer and candidates (answer, sockets, sending "
                "the answer) %.0f us, polls %.0f us (%.1f polls per new connection, established ones' included)\n",
                create / n * 1e6, signaling / n * 1e6, (own - create - signaling) / n * 1e6,
                static_cast<double>(side_.polls() - polls0) / n);
    // Every allocation of the server process meanwhile (the established connections' few included).
    std::printf("          heap allocations per new connection: %.0f operator new (ours), %.0f by OpenSSL\n",
                static_cast<double>(g_newCalls.load() - new0) / n, static_cast<double>(g_opensslMallocs.load() - ossl0) / n);
    if (lost_) std::printf("          %d connection(s) failed so far and were replaced (see the log lines)\n", lost_);
    return true;
  }

  void memory(std::chrono::milliseconds settleFor = std::chrono::milliseconds(300)) {
    settle(settleFor);
    malloc_trim(0);
    std::printf("  memory  per connection: heap %.1f KiB, RSS %.1f KiB, descriptors %.2f; UDP in this namespace: %s\n",
                static_cast<double>(heapInUse() - heap0_) / connected_ / 1024,
                static_cast<double>(residentBytes() - rss0_) / connected_ / 1024,
                static_cast<double>(openDescriptors() - fds0_) / connected_, udpCounters().c_str());
    const auto drops = side_.muxDrops();
    if (o_.mux)
      std::printf("  shared port: %zu connections; dropped for full queues %llu, from unknown senders %llu\n",
                  drops.connections, static_cast<unsigned long long>(drops.full),
                  static_cast<unsigned long long>(drops.unknown));
  }

  // The kernel's UDP counters (/proc/net/snmp): datagrams dropped for a full receive buffer show up here.
  static std::string udpCounters() {
    std::FILE* f = std::fopen("/proc/net/snmp", "r");
    if (!f) return "?";
    char line[512];
    std::string names, values;
    while (std::fgets(line, sizeof line, f))
      if (std::strncmp(line, "Udp: ", 5) == 0) (names.empty() ? names : values) = line + 5;
    std::fclose(f);
    std::string out;
    std::size_t a = 0, b = 0;
    while (a < names.size() && b < values.size()) {
      const std::size_t ea = names.find_first_of(" \n", a), eb = values.find_first_of(" \n", b);
      const std::string name = names.substr(a, ea - a), value = values.substr(b, eb - b);
      if (name == "InDatagrams" || name == "RcvbufErrors" || name == "SndbufErrors") out += name + " " + value + " ";
      if (ea == std::string::npos || eb == std::string::npos) break;
      a = ea + 1;
      b = eb + 1;
    }
    return out;
  }

  void idle(double secs) {
    settle();
    const double cpu0 = processCpu();
    const auto wall0 = Clock::now();
    const std::uint64_t polls0 = side_.polls();
    const auto end = wall0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
    while (Clock::now() < end) step(std::chrono::milliseconds(100));
    const double wall = seconds(Clock::now() - wall0), cpu = processCpu() - cpu0;
    idleRate_ = cpu / wall / connected_;
    std::printf("  idle    %.0f s: server %.2f %% of a core = %.2f us CPU per connection per second, %.2f polls per "
                "connection per second (deadlines served but not moved so far: %llu)\n",
                wall, cpu / wall * 100, cpu / wall / connected_ * 1e6,
                static_cast<double>(side_.polls() - polls0) / wall / connected_,
                static_cast<unsigned long long>(side_.stuckDeadlines()));
  }

  bool echo() {
    const double cpu0 = processCpu(), echo0 = echoCpu_;
    const auto wall0 = Clock::now();
    echoesSent_ = 0;
    echoDone_ = 0;
    for (int link : links_) sendMessage(link, {0, Op::Echo});
    while (echoDone_ < static_cast<int>(links_.size()) && side_.failed() == 0) step(std::chrono::milliseconds(50));
    const double wall = seconds(Clock::now() - wall0), cpu = processCpu() - cpu0;
    std::printf("  echo    %d of %d connections echoed in %.0f ms; server CPU %.1f us per message (polls that echoed; "
                "the process: %.1f us per message, with the consent traffic meanwhile)\n",
                echoesSent_, connected_, wall * 1e3, (echoCpu_ - echo0) / connected_ * 1e6, cpu / connected_ * 1e6);
    return echoesSent_ == connected_;
  }

 private:
  void start() {
    const auto pair = static_cast<std::uint32_t>(started_);
    const int link = links_[pair % links_.size()];
    const double t0 = threadCpu();
    PeerConnection* pc = side_.add(pair, config_, link);
    setupCpu_ += threadCpu() - t0;
    createCpu_ += threadCpu() - t0;
    if (!pc) return;
    channels_.emplace_back();
    started_At_.push_back(Clock::now());
    pc->onDataChannelReceived([this, pair](std::shared_ptr<DataChannel> c) { channels_[pair] = std::move(c); });
    sendMessage(link, {pair, Op::Start});
    ++started_;
    ++connecting_;
  }

  void step(Clock::duration maxWait) {
    for (std::size_t l : side_.step(maxWait, [this](int slot) { return afterPoll(slot); })) {
      if (!receiveMessages(links_[l], inbox_)) side_.fail("a client process ended");
    }
    for (int slot : side_.takeLost()) {
      ++lost_;
      if (open_.erase(slot)) --connected_;
      else --connecting_;
    }
    if (lost_ > maxLost_) side_.fail(std::to_string(lost_) + " connections failed (more than 1 %)");
    for (auto& m : inbox_) {
      if (m.h.op == Op::Echoed) {
        if (m.h.index >= 0) echoesSent_ += m.h.index;
        else ++echoDone_;
      } else {
        const double t0 = threadCpu();
        side_.apply(static_cast<int>(m.h.pair), m);
        setupCpu_ += threadCpu() - t0;
        signalingCpu_ += threadCpu() - t0;
      }
    }
    inbox_.clear();
  }

  // Which account the poll just made goes to: setting up (until the channel is open), echoing, or neither.
  double* afterPoll(int slot) {
    auto& channel = channels_[static_cast<std::size_t>(slot)];
    if (!channel) return &setupCpu_;
    double* account = open_.count(slot) ? nullptr : &setupCpu_;
    if (!open_.count(slot) && channel->readyState() == ReadyState::Open) {
      open_.insert(slot);
      setupMs_.push_back(seconds(Clock::now() - started_At_[static_cast<std::size_t>(slot)]) * 1e3);
      ++connected_;
      --connecting_;
    }
    bool echoed = false;
    while (channel->getPacket(buffer_) == Error::Ok) {  // the echo server
      channel->putPacket(buffer_);
      echoed = true;
    }
    if (echoed && !account) account = &echoCpu_;
    if (!open_.count(slot) && Clock::now() - started_At_[static_cast<std::size_t>(slot)] > std::chrono::seconds(30))
      side_.lose(slot);
    return account;
  }

  void settle(std::chrono::milliseconds settleFor = std::chrono::milliseconds(300)) {
    const auto end = Clock::now() + settleFor;
    while (Clock::now() < end) step(std::chrono::milliseconds(50));
  }

  const Options& o_;
  Configuration config_;
  std::vector<int> links_;
  Side side_;
  std::vector<std::shared_ptr<DataChannel>> channels_;
  std::vector<Clock::time_point> started_At_;
  std::set<int> open_;
  std::vector<Message> inbox_;
  std::vector<std::uint8_t> buffer_;
  std::vector<double> setupMs_;
  int started_ = 0, connecting_ = 0, connected_ = 0, echoesSent_ = 0, echoDone_ = 0, lost_ = 0;
  int maxLost_ = 0;
  std::size_t heap0_ = 0, rss0_ = 0, fds0_ = 0;
  double idleRate_ = 0;  // server CPU seconds per connection per second, idle (the last measurement)
  double setupCpu_ = 0;  // thread CPU of connections not yet open: creation, signaling, polls
  double createCpu_ = 0, signalingCpu_ = 0;  // the parts of setupCpu_ spent in creation and in applying signaling
  double echoCpu_ = 0;   // thread CPU of open connections' polls that echoed something
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

// Counting replacements; they pair malloc with free, as the default ones do.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  g_newCalls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {
void* countedMalloc(std::size_t n, const char*, int) {
  g_opensslMallocs.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* countedRealloc(void* p, std::size_t n, const char*, int) {
  if (p == nullptr) g_opensslMallocs.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void countedFree(void* p, const char*, int) { std::free(p); }
}  // namespace

int main(int argc, char** argv) {
  CRYPTO_set_mem_functions(countedMalloc, countedRealloc, countedFree);
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
    else if (a == "--procs") o.procs = std::max(1, std::atoi(next()));
    else if (a == "--no-mux") o.mux = false;
    else if (a == "--lite") o.lite = true;
    else if (a == "--fresh-certs") o.freshCerts = true;
    else if (a == "--echo-batch") o.echoBatch = std::max(0, std::atoi(next()));
    else if (a == "--floor") floorOnly = true;
    else if (a == "--no-floor") floor = false;
    else if (a == "--quick") {
      o.counts = {100, 200};
      o.idle = 2;
    } else {
      std::fprintf(stderr, "usage: bench_scale [--counts N,N,...] [--port P] [--window W] [--idle S] [--procs K] "
                           "[--no-mux] [--lite] [--fresh-certs] [--echo-batch N] [--quick] [--floor | --no-floor]\n");
      return 2;
    }
  }
  if (floor) opensslFloor();
  if (floorOnly || o.counts.empty()) return 0;
  const int most = *std::max_element(o.counts.begin(), o.counts.end());
  const int procs = o.procs > 0 ? o.procs : std::max(1, (most + 2999) / 3000);

  Configuration server, client;
  server.interfaces = client.interfaces = {"127.0.0.1"};
  if (o.mux) {
    server.udpMux = true;
    server.portRangeBegin = server.portRangeEnd = o.port;
  }
  server.iceLite = o.lite;
  if (!o.freshCerts) {  // a server keeps one identity; so may the clients here (their cost is not measured)
    auto pem = (*dtls::Certificate::generate())->toPem();
    server.certificatePem = client.certificatePem = pem->first;
    server.privateKeyPem = client.privateKeyPem = pem->second;
  }

  std::vector<int> links;
  std::vector<pid_t> children;
  for (int k = 0; k < procs; ++k) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return 1;
    const int big = 8 << 20;
    for (int fd : sv) {
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    }
    const pid_t pid = fork();
    if (pid == 0) {
      for (int l : links) close(l);
      close(sv[0]);
      raiseFileLimit((most + procs - 1) / procs, 2);
      runClients(sv[1], procs, client, o.echoBatch);
    }
    close(sv[1]);
    links.push_back(sv[0]);
    children.push_back(pid);
  }
  raiseFileLimit(most, o.mux ? 1 : 2);
  std::printf("server: one process, %s, %s ICE, %s certificate; clients: %d processes, a socket each\n",
              o.mux ? ("every connection on UDP port " + std::to_string(o.port) + " (udpMux)").c_str()
                    : "a socket per connection",
              o.lite ? "lite" : "full", o.freshCerts ? "a fresh" : "one shared", procs);
  int status = 0;
  {
    Server bench(o, server, links);
    bench.baseline();
    for (int target : o.counts) {
      std::printf("%d connections\n", target);
      if (!bench.grow(target) || (bench.memory(), bench.idle(o.idle), !bench.echo())) {
        status = 1;
        break;
      }
      // Idle again: a connection releases its data-path buffers at its first poll a second after the last traffic,
      // which in an event-driven loop is its next consent check (4-6 s).
      bench.memory(std::chrono::milliseconds(6500));
    }
    for (int l : links) close(l);
  }
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  return status;
}
