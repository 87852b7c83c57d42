// `rtcpeer demo`: two PeerConnections in one process, connected over 127.0.0.1 with the signaling relayed
// in-process. Opens one channel of each kind, checks text and binary messages on each, then moves a bulk
// transfer over the reliable channel with bufferedAmount() flow control and verifies every byte.
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common.hpp"

namespace rtcpeer::tools {
namespace {

using namespace std::chrono_literals;

constexpr auto kSetupTimeout = 20s;
constexpr auto kStepTimeout = 10s;
constexpr auto kStallTimeout = 10s;  // bulk transfer: longest time without any byte arriving
constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kBulkMessage = 64 * 1024;
constexpr std::size_t kHighWatermark = 4 * kMiB;
constexpr std::size_t kLowWatermark = 1 * kMiB;
constexpr std::uint16_t kNegotiatedId = 100;
constexpr int kSpinTurns = 200;  // event-loop turns without activity before the waits sleep

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ChannelKind {
  const char* label;
  DataChannelInit init;
};

std::vector<ChannelKind> channelKinds() {
  DataChannelInit unordered;
  unordered.ordered = false;
  DataChannelInit noRetransmits;
  noRetransmits.maxRetransmits = 0;
  DataChannelInit lifetime;
  lifetime.maxPacketLifeTime = 100;
  DataChannelInit negotiated;
  negotiated.negotiated = true;
  negotiated.id = kNegotiatedId;
  return {{"reliable", {}},
          {"unordered", unordered},
          {"max-retransmits-0", noRetransmits},
          {"max-packet-lifetime-100", lifetime},
          {"negotiated", negotiated}};
}

// The bulk stream is a sequence of 64-bit words, word i holding i * an odd constant (a bijection), so a lost,
// duplicated, reordered or corrupted message shows up as a mismatch at a known offset.
std::uint64_t patternWord(std::uint64_t index) { return index * 0x9E3779B97F4A7C15ull; }

void fillPattern(std::vector<std::uint8_t>& buffer, std::uint64_t firstWord) {
  for (std::size_t i = 0; i < buffer.size() / 8; ++i) {
    const std::uint64_t word = patternWord(firstWord + i);
    std::memcpy(buffer.data() + i * 8, &word, 8);
  }
}

bool matchesPattern(const std::vector<std::uint8_t>& buffer, std::uint64_t firstWord) {
  for (std::size_t i = 0; i < buffer.size() / 8; ++i) {
    std::uint64_t word;
    std::memcpy(&word, buffer.data() + i * 8, 8);
    if (word != patternWord(firstWord + i)) return false;
  }
  return true;
}

struct Message {
  bool text;
  std::vector<std::uint8_t> bytes;
  bool operator<(const Message& o) const { return std::tie(text, bytes) < std::tie(o.text, o.bytes); }
  bool operator==(const Message& o) const = default;
};

// One side of the demo: a PeerConnection plus the states last printed for it and its channels.
struct Side {
  explicit Side(const char* sideName) : name(sideName) {}

  const char* name;
  PeerConnection pc;
  ConnectionState connection = ConnectionState::New;
  GatheringState gathering = GatheringState::New;
  SignalingState signaling = SignalingState::Stable;
  std::vector<std::shared_ptr<DataChannel>> channels;
  std::map<const DataChannel*, ReadyState> channelStates;

  std::shared_ptr<DataChannel> channel(std::string_view label) const {
    for (const auto& c : channels) {
      if (c->label() == label) return c;
    }
    return nullptr;
  }
};

class Demo {
 public:
  explicit Demo(const DemoOptions& options) : options_(options) {}

  int run() {
    try {
      connect();
      exchangeMessages();
      bulkTransfer();
      closeChannel();
    } catch (const Failure& e) {
      if (progressShown_) std::fputc('\n', stderr);
      std::fprintf(stderr, "rtcpeer demo: FAILED: %s\n", e.what());
      return 1;
    }
    std::printf("demo OK\n");
    return 0;
  }

 private:
  void connect() {
    Configuration config;
    config.interfaces = {"127.0.0.1"};  // loopback only: the demo never touches another interface
    for (Side* side : {&a_, &b_}) {
      if (side->pc.initialize(config) != Error::Ok) fail(*side, "initialize");
    }
    relaySignaling(a_, b_);
    relaySignaling(b_, a_);
    b_.pc.onDataChannelReceived([this](std::shared_ptr<DataChannel> channel) {
      b_.channels.push_back(std::move(channel));
    });

    for (const ChannelKind& kind : channelKinds()) {
      auto channel = a_.pc.createDataChannel(kind.label, kind.init);
      if (!channel) fail(a_, std::string("createDataChannel ") + kind.label);
      a_.channels.push_back(std::move(channel));
      if (kind.init.negotiated) {
        auto remote = b_.pc.createDataChannel(kind.label, kind.init);
        if (!remote) fail(b_, std::string("createDataChannel ") + kind.label);
        b_.channels.push_back(std::move(remote));
      }
    }

    const auto offerAt = Clock::now();
    if (a_.pc.createOffer() != Error::Ok) fail(a_, "createOffer");
    const std::size_t expected = channelKinds().size();
    waitUntil(kSetupTimeout, "every channel to open on both sides", [&] {
      return allOpen(a_, expected) && allOpen(b_, expected);
    });
    std::printf("setup: %.1f ms from createOffer to all %zu channels open on both sides\n",
                secondsSince(offerAt) * 1e3, expected);
    const ConnectionStats s = a_.pc.stats();
    std::printf("link: %s %s:%d <-> %s %s:%d, DTLS %s %s, SCTP%s%s\n", s.local.type.c_str(), s.local.address.c_str(),
                s.local.port, s.remote.type.c_str(), s.remote.address.c_str(), s.remote.port, s.dtlsRole.c_str(),
                s.dtlsCipher.c_str(), s.interleaving ? " I-DATA" : "", s.zeroChecksum ? " zero-checksum" : "");
    std::fflush(stdout);
    checkChannelProperties();
  }

  // Descriptions are applied locally and handed to the other side; candidates are trickled. Both happen after
  // poll() returns (callbacks only queue), so no library call is made from inside a signal.
  void relaySignaling(Side& from, Side& to) {
    from.pc.onSessionDescriptionCreated([this, &from, &to](const std::string& type, const std::string& sdp) {
      deferred_.emplace_back([this, &from, &to, type, sdp] {
        note("%s: %s created (%zu bytes of SDP)", from.name, type.c_str(), sdp.size());
        if (from.pc.setLocalDescription(type, sdp) != Error::Ok) fail(from, "setLocalDescription " + type);
        if (to.pc.setRemoteDescription(type, sdp) != Error::Ok) fail(to, "setRemoteDescription " + type);
      });
    });
    from.pc.onIceCandidateCreated([this, &from, &to](const std::string& mid, int index, const std::string& name) {
      deferred_.emplace_back([this, &from, &to, mid, index, name] {
        note("%s: candidate %s", from.name, name.empty() ? "(end of candidates)" : name.c_str());
        if (to.pc.addIceCandidate(mid, index, name) != Error::Ok) fail(to, "addIceCandidate");
      });
    });
  }

  static bool allOpen(const Side& side, std::size_t expected) {
    return side.channels.size() == expected &&
           std::all_of(side.channels.begin(), side.channels.end(),
                       [](const auto& c) { return c->readyState() == ReadyState::Open; });
  }

  // The answerer's in-band channels come from DCEP: their parameters must be the ones the offerer chose.
  void checkChannelProperties() {
    for (const ChannelKind& kind : channelKinds()) {
      const auto local = a_.channel(kind.label);
      const auto remote = b_.channel(kind.label);
      if (!remote) throw Failure(std::string("b has no channel labelled ") + kind.label);
      for (const auto& c : {local, remote}) {
        const bool ok = c->isOrdered() == kind.init.ordered &&
                        c->maxRetransmits() == kind.init.maxRetransmits.value_or(DataChannel::kUnset) &&
                        c->maxPacketLifeTime() == kind.init.maxPacketLifeTime.value_or(DataChannel::kUnset) &&
                        c->isNegotiated() == kind.init.negotiated && c->id() != DataChannel::kUnset;
        if (!ok) throw Failure(std::string("channel ") + kind.label + " has the wrong parameters on one side");
      }
      if (local->id() != remote->id()) {
        throw Failure(std::string("channel ") + kind.label + ": stream ids differ (" + std::to_string(local->id()) +
                      " vs " + std::to_string(remote->id()) + ")");
      }
      if (kind.init.negotiated && local->id() != kNegotiatedId) throw Failure("negotiated channel has the wrong id");
    }
  }

  // Each side sends a text, a binary and an empty message on every channel; each must arrive once, intact and
  // with its type (order is only checked as a set: some channels are unordered).
  void exchangeMessages() {
    for (const ChannelKind& kind : channelKinds()) {
      std::map<const Side*, std::vector<Message>> sent;
      for (Side* side : {&a_, &b_}) {
        const auto channel = side->channel(kind.label);
        std::vector<std::uint8_t> binary(1000);
        for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<std::uint8_t>(i * 7 + side->name[0]);
        const std::string text = std::string("hello from ") + side->name + " on " + kind.label + " \xE2\x9C\x93";
        std::vector<Message>& out = sent[side];
        out.push_back({true, {text.begin(), text.end()}});
        out.push_back({false, binary});
        out.push_back({false, {}});
        for (const Message& m : out) {
          channel->setWriteMode(m.text ? WriteMode::Text : WriteMode::Binary);
          if (channel->putPacket(std::span<const std::uint8_t>(m.bytes)) != Error::Ok) {
            throw Failure(std::string(side->name) + ": putPacket on " + kind.label + ": " + channel->lastError());
          }
        }
      }
      for (Side* side : {&a_, &b_}) {
        const Side& peer = side == &a_ ? b_ : a_;
        const auto channel = side->channel(kind.label);
        std::vector<Message> expected = sent[&peer];
        std::vector<Message> received;
        waitUntil(kStepTimeout, std::string(side->name) + " to receive 3 messages on " + kind.label, [&] {
          Message m;
          while (channel->getPacket(m.bytes) == Error::Ok) {
            activity();
            m.text = channel->wasStringPacket();
            received.push_back(m);
          }
          return received.size() >= expected.size();
        });
        std::sort(expected.begin(), expected.end());
        std::sort(received.begin(), received.end());
        if (received != expected) throw Failure(std::string(side->name) + " received wrong messages on " + kind.label);
      }
      note("%s: text, binary and empty messages checked both ways", kind.label);
    }
  }

  void bulkTransfer() {
    const auto sender = a_.channel("reliable");
    const auto receiver = b_.channel("reliable");
    sender->setWriteMode(WriteMode::Binary);
    const std::size_t total = options_.megabytes * kMiB;
    const std::size_t chunk = std::min(kBulkMessage, sender->maxMessageSize()) / 8 * 8;
    std::vector<std::uint8_t> out(chunk);
    std::vector<std::uint8_t> in;
    std::size_t sent = 0;
    std::size_t received = 0;
    bool paused = false;  // hysteresis: stop at the high watermark, resume at the low one
    const auto start = Clock::now();
    auto lastArrival = start;
    auto lastProgress = start;
    note("bulk: %zu MiB over \"reliable\" in %zu-byte messages", options_.megabytes, chunk);

    std::size_t buffered = 0;
    while (received < total) {
      if (sender->bufferedAmount() != buffered) activity();  // acknowledged data left the send queue
      if (paused && sender->bufferedAmount() <= kLowWatermark) paused = false;
      // At most one high watermark per turn, even if bufferedAmount() lags behind putPacket().
      for (std::size_t queued = 0; !paused && sent < total && queued < kHighWatermark; queued += out.size()) {
        out.resize(std::min(chunk, total - sent));
        fillPattern(out, sent / 8);
        if (sender->putPacket(std::span<const std::uint8_t>(out)) != Error::Ok) {
          throw Failure("a: putPacket: " + sender->lastError());
        }
        sent += out.size();
        paused = sender->bufferedAmount() >= kHighWatermark;
        activity();
      }
      buffered = sender->bufferedAmount();
      pump();
      while (receiver->getPacket(in) == Error::Ok) {
        if (receiver->wasStringPacket() || in.size() % 8 != 0 || received + in.size() > total ||
            !matchesPattern(in, received / 8)) {
          throw Failure("b: bulk data corrupted in the message at offset " + std::to_string(received));
        }
        received += in.size();
        lastArrival = Clock::now();
        activity();
      }
      const auto now = Clock::now();
      if (now - lastArrival > kStallTimeout) {
        throw Failure("bulk transfer stalled at " + std::to_string(received) + " of " + std::to_string(total) +
                      " bytes (bufferedAmount " + std::to_string(sender->bufferedAmount()) + ")");
      }
      if (now - lastProgress >= 100ms || received == total) {
        lastProgress = now;
        showProgress(received, total, secondsSince(start, now));
      }
    }
    const double seconds = secondsSince(start);
    if (progressShown_) std::fputc('\n', stderr);
    progressShown_ = false;
    std::printf("bulk: %zu MiB in %.3f s = %.1f MB/s (%.0f Mbit/s), every byte verified\n", options_.megabytes,
                seconds, static_cast<double>(total) / seconds / 1e6, static_cast<double>(total) * 8 / seconds / 1e6);
    std::fflush(stdout);
  }

  // Closing is a stream reset in both directions (RFC 8831 §6.7): the peer's channel must close too.
  void closeChannel() {
    const auto local = a_.channel("reliable");
    const auto remote = b_.channel("reliable");
    local->close();
    waitUntil(kStepTimeout, "\"reliable\" closed by a to reach closed on b too", [&] {
      return local->readyState() == ReadyState::Closed && remote->readyState() == ReadyState::Closed;
    });
    a_.pc.close();
    b_.pc.close();
    printStates(a_);
    printStates(b_);
  }

  void showProgress(std::size_t received, std::size_t total, double seconds) {
    if (options_.quiet || !isatty(STDERR_FILENO)) return;
    constexpr int kWidth = 40;
    const double fraction = static_cast<double>(received) / static_cast<double>(total);
    const int filled = static_cast<int>(fraction * kWidth);
    std::fprintf(stderr, "\r[%.*s%*s] %3.0f%% %zu/%zu MiB %7.1f MB/s", filled,
                 "########################################", kWidth - filled, "", fraction * 100,
                 received / kMiB, total / kMiB, seconds > 0 ? received / seconds / 1e6 : 0.0);
    std::fflush(stderr);
    progressShown_ = true;
  }

  // One turn of the event loop: wait on each connection, poll both, then run what their signals queued and
  // report state changes. A datagram wakes only the wait() of its own connection, so sleeping on one delays the
  // other: while things happen (activity() was called recently) the waits do not sleep; after kSpinTurns quiet
  // turns they sleep up to 1 ms each.
  void pump() {
    const auto timeout = quietTurns_ < kSpinTurns ? 0ms : 1ms;
    ++quietTurns_;
    for (Side* side : {&a_, &b_}) {
      side->pc.wait(timeout);
      if (side->pc.poll() != Error::Ok) fail(*side, "poll");
    }
    if (!deferred_.empty()) activity();
    while (!deferred_.empty()) {
      auto action = std::move(deferred_.front());
      deferred_.pop_front();
      action();
    }
    for (Side* side : {&a_, &b_}) {
      printStates(*side);
      if (side->connection == ConnectionState::Failed || side->connection == ConnectionState::Closed) {
        throw Failure(std::string(side->name) + ": connection " + stateName(side->connection) +
                      (side->pc.lastError().empty() ? "" : ": " + side->pc.lastError()));
      }
    }
  }

  void waitUntil(std::chrono::milliseconds timeout, const std::string& what, const std::function<bool()>& done) {
    const auto deadline = Clock::now() + timeout;
    while (!done()) {
      if (Clock::now() > deadline) {
        throw Failure("timed out after " + std::to_string(timeout.count() / 1000) + " s waiting for " + what);
      }
      pump();
    }
  }

  void printStates(Side& side) {
    report(side, "connection", side.connection, side.pc.connectionState());
    report(side, "gathering", side.gathering, side.pc.gatheringState());
    report(side, "signaling", side.signaling, side.pc.signalingState());
    for (const auto& channel : side.channels) {
      const auto [it, added] = side.channelStates.try_emplace(channel.get(), channel->readyState());
      if (added || it->second != channel->readyState()) {
        it->second = channel->readyState();
        note("%s: channel \"%s\" (id %d) %s", side.name, channel->label().c_str(), channel->id(),
             stateName(it->second));
      }
    }
  }

  template <typename State>
  void report(const Side& side, const char* what, State& last, State now) {
    if (last == now) return;
    last = now;
    activity();
    note("%s: %s %s", side.name, what, stateName(now));
  }

  __attribute__((format(printf, 2, 3))) void note(const char* format, ...) {
    if (options_.quiet) return;
    std::printf("%9.3f ms  ", secondsSince(begin_) * 1e3);
    va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  void activity() { quietTurns_ = 0; }

  [[noreturn]] static void fail(const Side& side, const std::string& call) {
    throw Failure(std::string(side.name) + ": " + call + " failed: " + side.pc.lastError());
  }

  DemoOptions options_;
  Clock::time_point begin_ = Clock::now();
  Side a_{"a"};
  Side b_{"b"};
  std::deque<std::function<void()>> deferred_;
  bool progressShown_ = false;
  int quietTurns_ = 0;
};

}  // namespace

int runDemo(const DemoOptions& options) {
  setVerbosity(options.verbose, options.quiet);
  return Demo(options).run();
}

}  // namespace rtcpeer::tools
