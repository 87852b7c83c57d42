// `rtcpeer peer`: the stdio peer protocol (docs/INTEROP.md, /work/shared/interop/PEER-PROTOCOL.md). One JSON
// object per line in on stdin and out on stdout; diagnostics on stderr. Signaling is non-trickle: a description
// is sent once gathering is complete, with the gathered candidates inside the SDP. Also the protocol's feature
// extension (test channels: `channel`, `send`, `close-channel`), which tests/interop/peers/features.mjs drives.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"

namespace rtcpeer::tools {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kOpenTimeout = 30s;     // a test channel must open within this
constexpr auto kEchoTimeout = 30s;     // a whole echo test
constexpr auto kSendTimeout = 30s;     // a whole `send` (feature extension)
constexpr auto kReplyGrace = 30s;      // throughput: after the sending time, until the sink's reply
constexpr auto kMaxWait = 10ms;        // longest sleep between two runs of the test state machine (step())
constexpr auto kIdleStdinWait = 100;   // ms in poll(2) while there is no peer connection yet

/// A candidate from onIceCandidateCreated, kept to be written into the SDP.
struct LocalCandidate {
  std::string mid;
  int index;
  std::string line;  // "candidate:..."
};

/// Adds `a=candidate:` lines (and `a=end-of-candidates`, RFC 8840 §4.1) to the m-sections they belong to. The
/// description the library delivers through sessionDescriptionCreated is made before gathering, so for
/// non-trickle signaling the candidates have to be written in here. An SDP that already holds candidates is
/// returned unchanged.
std::string withCandidates(const std::string& sdp, const std::vector<LocalCandidate>& candidates) {
  if (sdp.find("a=candidate:") != std::string::npos) return sdp;
  std::vector<std::string> lines;
  for (std::size_t pos = 0; pos < sdp.size();) {
    std::size_t end = sdp.find('\n', pos);
    if (end == std::string::npos) end = sdp.size();
    std::string line = sdp.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(std::move(line));
    pos = end + 1;
  }
  // Section k spans lines [starts[k], starts[k+1]); its mid comes from a=mid.
  std::vector<std::size_t> starts;
  std::vector<std::string> mids;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].starts_with("m=")) {
      starts.push_back(i);
      mids.emplace_back();
    } else if (!starts.empty() && lines[i].starts_with("a=mid:")) {
      mids.back() = lines[i].substr(6);
    }
  }
  std::vector<std::vector<std::string>> extra(starts.size());
  for (const LocalCandidate& c : candidates) {
    auto section = static_cast<std::size_t>(std::find(mids.begin(), mids.end(), c.mid) - mids.begin());
    if (c.mid.empty() || section == mids.size()) section = static_cast<std::size_t>(c.index);
    if (section >= extra.size() || c.line.empty()) continue;
    extra[section].push_back(c.line.starts_with("a=") ? c.line : "a=" + c.line);
  }
  std::string out;
  auto emit = [&out](const std::string& line) { out += line + "\r\n"; };
  std::size_t section = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    emit(lines[i]);
    const bool sectionEnds = !starts.empty() && i >= starts[0] && (i + 1 == lines.size() || lines[i + 1].starts_with("m="));
    if (sectionEnds) {
      for (const auto& candidate : extra[section]) emit(candidate);
      emit("a=end-of-candidates");
      ++section;
    }
  }
  return out;
}

/// The command line's Configuration; why it is unusable in `reason` (runPeer checks it once at start).
Configuration configurationFrom(const PeerOptions& options, std::string* reason = nullptr) {
  Configuration config;
  config.interfaces = options.interfaces;
  std::string why = applyIceOptions(options.ice, config);
  if (reason) *reason = std::move(why);
  return config;
}

std::string labelSuffix(const json& id) { return id.is_string() ? id.get<std::string>() : id.dump(); }

/// Fills a test message so that each one differs from the last (a stale echo does not pass for a fresh one).
void fillMessage(std::vector<std::uint8_t>& message, std::size_t seq) {
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<std::uint8_t>(i * 31 + seq * 7 + 1);
}

/// Feature extension: message k of a `send`, made as tests/interop/peers/peer_core.js makes it (binary: the
/// fillMessage pattern; text: lowercase letters).
void makeTestMessage(std::vector<std::uint8_t>& message, std::size_t k, bool binary, std::size_t size) {
  message.resize(size);
  if (binary) return fillMessage(message, k);
  for (std::size_t i = 0; i < size; ++i) message[i] = static_cast<std::uint8_t>('a' + (i + k) % 26);
}

/// What a sent and an echoed message are compared by: "text|binary/<length>/<FNV-1a of the content, hex>".
std::string messageKey(std::span<const std::uint8_t> message, bool binary) {
  std::uint32_t hash = 0x811c9dc5;
  for (const std::uint8_t byte : message) hash = (hash ^ byte) * 0x01000193;
  char key[48];
  std::snprintf(key, sizeof key, "%s/%zu/%x", binary ? "binary" : "text", message.size(), hash);
  return key;
}

class PeerProgram {
 public:
  explicit PeerProgram(const PeerOptions& options) : options_(options) {}

  int run() {
    while (!finished_) {
      readStdin(pc_ ? 0 : kIdleStdinWait);
      if (!pc_) continue;
      if (finished_) break;
      if (pc_->poll() != Error::Ok) {
        error("poll: " + pc_->lastError());
        pc_.reset();
        continue;
      }
      runDeferred();
      const bool busy = step();
      // Work just queued by step() goes out on the next poll() without sleeping first.
      if (!busy && pc_) waitForWork();
    }
    return 0;
  }

  // Sleeps until the connection has something to do (its descriptor, its next deadline) or a line arrives on
  // stdin. Waiting on the connection alone left a description or candidate from the driver unread for up to
  // kMaxWait, several times during setup (docs/BENCHMARKS.md, "Setup between processes").
  void waitForWork() {
    const auto now = std::chrono::steady_clock::now();
    const auto deadline = std::min(pc_->nextDeadline(), now + kMaxWait);
    const auto ms = deadline <= now ? 0
                                    : std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {pc_->fileDescriptor(), POLLIN, 0}};
    ::poll(fds, fds[1].fd >= 0 ? 2 : 1, static_cast<int>(ms));
  }

 private:
  // Tests this side started (echo, throughput), advanced by step().
  struct EchoTest {
    json id;
    int count = 0;
    std::size_t size = 0;
    std::shared_ptr<DataChannel> channel;
    Clock::time_point started = Clock::now();
    Clock::time_point sentAt{};
    bool waiting = false;  // a message is out and its echo not back yet
    std::vector<double> rttMs;
    std::vector<std::uint8_t> out, in;
  };
  struct ThroughputTest {
    json id;
    double seconds = 0;
    std::size_t size = 0, high = 0, low = 0;
    std::shared_ptr<DataChannel> channel;
    Clock::time_point created = Clock::now();
    Clock::time_point start{}, sendEnd{};
    enum class Phase { Opening, Sending, AwaitReply } phase = Phase::Opening;
    bool paused = false;
    std::uint64_t bytes = 0, messages = 0, waits = 0;
    std::vector<std::uint8_t> out, in;
  };
  // Channels the remote side opened.
  struct Remote {
    enum class Kind { Ctl, Echo, Sink, Other } kind = Kind::Other;
    std::shared_ptr<DataChannel> channel;
    std::uint64_t bytes = 0, messages = 0;
    Clock::time_point first{}, last{};
    std::vector<std::uint8_t> in;
  };
  // Feature extension (docs/INTEROP.md): test channels, labelled "t-...". The end that made one with `channel`
  // runs `send`s on it unless told to echo; the end that received it in-band echoes every message.
  struct TestChannel {
    std::shared_ptr<DataChannel> channel;
    bool local = true;
    bool echo = false;
    bool openReported = false;
    bool closedReported = false;
    json pending;  // the messages of a `send` that waits for the channel to open
    bool sending = false;
    Clock::time_point started{};
    std::vector<std::string> sentKeys, gotKeys;
    std::vector<std::uint8_t> in, out;
  };

  // ---- stdin / stdout --------------------------------------------------------------------------------------

  void readStdin(int timeoutMs) {
    pollfd fd{STDIN_FILENO, POLLIN, 0};
    if (::poll(&fd, 1, timeoutMs) <= 0) return;
    char buffer[65536];
    const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      // The driver went away without `close`: shut down quietly.
      std::fprintf(stderr, "rtcpeer peer: stdin %s, exiting\n", n == 0 ? "closed" : std::strerror(errno));
      if (pc_) pc_->close();
      finished_ = true;
      return;
    }
    input_.append(buffer, static_cast<std::size_t>(n));
    for (std::size_t nl; !finished_ && (nl = input_.find('\n')) != std::string::npos;) {
      const std::string line = input_.substr(0, nl);
      input_.erase(0, nl + 1);
      if (line.find_first_not_of(" \t\r") != std::string::npos) handleLine(line);
    }
  }

  static void send(const json& message) {
    std::cout << message.dump(-1, ' ', false, json::error_handler_t::replace) << '\n' << std::flush;
  }

  /// `label` names the test channel the error concerns, so a driver can tell which feature failed.
  void error(const std::string& message, const std::string& label = {}) {
    std::fprintf(stderr, "rtcpeer peer: error: %s\n", message.c_str());
    json report = {{"type", "error"}, {"message", message}};
    if (!label.empty()) report["label"] = label;
    send(report);
  }

  double msSinceStart() const { return secondsSince(begin_) * 1e3; }

  // ---- driver messages --------------------------------------------------------------------------------------

  void handleLine(const std::string& line) {
    const json message = json::parse(line, nullptr, false);
    if (message.is_discarded() || !message.is_object()) {
      error("not a JSON object: " + line);
      return;
    }
    try {
      handle(message);
    } catch (const json::exception& e) {
      error("bad " + message.value("type", std::string("message")) + " message: " + e.what());
    }
  }

  void handle(const json& m) {
    const std::string type = m.at("type").get<std::string>();
    if (type == "init") {
      role_ = m.at("role").get<std::string>();
      if (role_ != "offerer" && role_ != "answerer") {
        error("role must be offerer or answerer, not " + role_);
        role_.clear();
        return;
      }
      // The connection (and its DTLS certificate, the slowest part of setup) is made now, as an application makes
      // its RTCPeerConnection before signaling: the answerer's is ready when the offer comes.
      if (!createConnection()) return;
      send({{"type", "ready"}, {"role", role_}, {"name", "rtcpeer"}, {"version", versionString()}});
    } else if (type == "start") {
      if (!requireRole("offerer", type) || !requireConnection(type)) return;
      ctl_ = pc_->createDataChannel("ctl");
      if (!ctl_) return error("createDataChannel ctl: " + pc_->lastError());
      if (pc_->createOffer() != Error::Ok) error("createOffer: " + pc_->lastError());
    } else if (type == "offer") {
      if (!requireRole("answerer", type) || !requireConnection(type)) return;
      if (pc_->setRemoteDescription("offer", m.at("sdp").get<std::string>()) != Error::Ok) {
        error("setRemoteDescription offer: " + pc_->lastError());
      }
    } else if (type == "answer") {
      if (!requireRole("offerer", type) || !requireConnection(type)) return;
      if (pc_->setRemoteDescription("answer", m.at("sdp").get<std::string>()) != Error::Ok) {
        error("setRemoteDescription answer: " + pc_->lastError());
      }
    } else if (type == "candidate") {
      if (!requireConnection(type)) return;
      const std::string mid = m.contains("sdpMid") && m["sdpMid"].is_string() ? m["sdpMid"].get<std::string>() : "";
      const int index = m.contains("sdpMLineIndex") && m["sdpMLineIndex"].is_number_integer()
                            ? m["sdpMLineIndex"].get<int>()
                            : 0;
      const std::string candidate = m.value("candidate", std::string());
      if (pc_->addIceCandidate(mid, index, candidate) != Error::Ok) error("addIceCandidate: " + pc_->lastError());
    } else if (type == "echo") {
      if (!requireConnection(type)) return;
      EchoTest t;
      t.id = m.at("id");
      t.count = m.at("count").get<int>();
      t.size = m.at("size").get<std::size_t>();
      if (t.count < 0) return error("echo: count must not be negative");
      t.channel = pc_->createDataChannel("echo-" + labelSuffix(t.id));
      if (!t.channel) return error("createDataChannel echo: " + pc_->lastError());
      t.channel->setWriteMode(WriteMode::Binary);
      echoes_.push_back(std::move(t));
    } else if (type == "throughput") {
      if (!requireConnection(type)) return;
      ThroughputTest t;
      t.id = m.at("id");
      t.seconds = m.at("seconds").get<double>();
      t.size = m.at("size").get<std::size_t>();
      t.high = m.at("high").get<std::size_t>();
      t.low = m.at("low").get<std::size_t>();
      if (t.size == 0 || t.low > t.high) return error("throughput: size must be positive and low <= high");
      t.channel = pc_->createDataChannel("sink-" + labelSuffix(t.id));
      if (!t.channel) return error("createDataChannel sink: " + pc_->lastError());
      throughputs_.push_back(std::move(t));
    } else if (type == "channel") {
      if (!requireConnection(type)) return;
      const std::string label = m.at("label").get<std::string>();
      if (!label.starts_with("t-")) return error("channel: the label must start with t-", label);
      if (tests_.contains(label)) return error("channel: " + label + " exists already", label);
      DataChannelInit init;
      std::string reason;
      if (DataChannelInit::fromJson(m.value("options", json::object()).dump(), init, &reason) != Error::Ok) {
        return error("channel " + label + ": " + reason, label);
      }
      TestChannel t;
      t.channel = pc_->createDataChannel(label, init);
      if (!t.channel) return error("createDataChannel " + label + ": " + pc_->lastError(), label);
      t.echo = m.value("echo", false);
      tests_.emplace(label, std::move(t));
    } else if (type == "send") {
      const std::string label = m.at("label").get<std::string>();
      const auto it = tests_.find(label);
      if (it == tests_.end() || !it->second.local || it->second.echo) {
        return error("send: no local test channel " + label, label);
      }
      if (it->second.sending || !it->second.pending.is_null()) return error("send: one is running on " + label, label);
      const json& messages = m.at("messages");
      for (const json& spec : messages) {
        if (!spec.at("size").is_number_unsigned()) return error("send: a message size must be a number", label);
      }
      it->second.pending = messages;
    } else if (type == "close-channel") {
      const std::string label = m.at("label").get<std::string>();
      const auto it = tests_.find(label);
      if (it == tests_.end()) return error("close-channel: no test channel " + label, label);
      it->second.channel->close();
    } else if (type == "close") {
      if (pc_) pc_->close();
      send({{"type", "closed"}});
      finished_ = true;
    } else {
      error("unknown message type " + type);
    }
  }

  bool requireRole(const char* role, const std::string& type) {
    if (role_ == role) return true;
    error(type + " is for the " + role + (role_.empty() ? ", and no init came first" : ", this peer is the " + role_));
    return false;
  }

  bool requireConnection(const std::string& type) {
    if (pc_) return true;
    error(type + " before the peer connection exists");
    return false;
  }

  bool createConnection() {
    if (pc_) {
      error("the peer connection exists already");
      return false;
    }
    auto pc = std::make_unique<PeerConnection>();
    if (pc->initialize(configurationFrom(options_)) != Error::Ok) {
      error("initialize: " + pc->lastError());
      return false;
    }
    // Signals only queue work; it runs after poll() returns (runDeferred), never inside the library.
    pc->onSessionDescriptionCreated([this](const std::string& type, const std::string& sdp) {
      deferred_.emplace_back([this, type, sdp] {
        if (pc_->setLocalDescription(type, sdp) != Error::Ok) return error("setLocalDescription: " + pc_->lastError());
        localType_ = type;
        localSdp_ = sdp;
        descriptionSent_ = false;
      });
    });
    pc->onIceCandidateCreated([this](const std::string& mid, int index, const std::string& line) {
      if (line.empty()) {
        endOfCandidates_ = true;
      } else {
        candidates_.push_back({mid, index, line});
      }
    });
    pc->onDataChannelReceived([this](std::shared_ptr<DataChannel> channel) {
      const std::string& label = channel->label();
      if (label.starts_with("t-")) {
        TestChannel t;
        t.local = false;
        t.echo = true;
        t.channel = std::move(channel);
        tests_.insert_or_assign(t.channel->label(), std::move(t));
        return;
      }
      const auto kind = label == "ctl"              ? Remote::Kind::Ctl
                        : label.starts_with("echo") ? Remote::Kind::Echo
                        : label.starts_with("sink") ? Remote::Kind::Sink
                                                    : Remote::Kind::Other;
      if (kind == Remote::Kind::Ctl) ctl_ = channel;
      Remote remote;
      remote.kind = kind;
      remote.channel = std::move(channel);
      remotes_.push_back(std::move(remote));
    });
    pc_ = std::move(pc);
    return true;
  }

  void runDeferred() {
    while (!deferred_.empty()) {
      auto action = std::move(deferred_.front());
      deferred_.pop_front();
      action();
    }
  }

  // ---- the state machine, advanced after every poll() -------------------------------------------------------

  /// Returns true when it queued outgoing messages (the caller polls again at once instead of sleeping).
  bool step() {
    const auto state = pc_->connectionState();
    if (state != connectionState_) {
      connectionState_ = state;
      send({{"type", "connection"}, {"state", stateName(state)}});
      // Closed is what the remote side's close leads to; only a failure is an error.
      if (state == ConnectionState::Failed) {
        // The failure's reason reaches the channels it closed.
        const std::string why = !pc_->lastError().empty() ? pc_->lastError() : ctl_ ? ctl_->lastError() : "";
        error(std::string("connection failed") + (why.empty() ? "" : ": " + why));
      }
    }
    if (!localType_.empty() && !descriptionSent_ && gatheringDone()) {
      descriptionSent_ = true;
      send({{"type", localType_}, {"sdp", withCandidates(localSdp_, candidates_)}});
    }
    if (ctl_ && !ctlReported_ && ctl_->readyState() == ReadyState::Open) {
      ctlReported_ = true;
      send({{"type", "open"}, {"label", "ctl"}, {"t_ms", msSinceStart()}});
    }
    bool busy = false;
    for (Remote& r : remotes_) busy |= serve(r);
    for (auto& [label, t] : tests_) busy |= advance(label, t);
    std::erase_if(remotes_, [](const Remote& r) {
      return r.channel->readyState() == ReadyState::Closed && r.channel->availablePacketCount() == 0;
    });
    for (auto it = echoes_.begin(); it != echoes_.end();) {
      bool done = false;
      busy |= advance(*it, done);
      it = done ? echoes_.erase(it) : it + 1;
    }
    for (auto it = throughputs_.begin(); it != throughputs_.end();) {
      bool done = false;
      busy |= advance(*it, done);
      it = done ? throughputs_.erase(it) : it + 1;
    }
    return busy;
  }

  /// gatheringState() can read Complete before the last iceCandidateCreated signals have fired (they fire in
  /// poll()), so gathering counts as done at the end-of-candidates signal, or one poll() after Complete was seen.
  bool gatheringDone() {
    if (endOfCandidates_) return true;
    if (pc_->gatheringState() != GatheringState::Complete) return false;
    if (completeSeen_) return true;
    completeSeen_ = true;
    return false;
  }

  // Echo channels send everything back as it came; sink channels count and answer `fin`.
  bool serve(Remote& r) {
    bool busy = false;
    while (r.channel->getPacket(r.in) == Error::Ok) {
      const bool text = r.channel->wasStringPacket();
      if (r.kind == Remote::Kind::Echo) {
        r.channel->setWriteMode(text ? WriteMode::Text : WriteMode::Binary);
        if (r.channel->putPacket(std::span<const std::uint8_t>(r.in)) != Error::Ok) {
          error("echo on " + r.channel->label() + ": " + r.channel->lastError());
        }
        busy = true;
      } else if (r.kind == Remote::Kind::Sink && !text) {
        const auto now = Clock::now();
        if (r.messages == 0) r.first = now;
        r.last = now;
        r.bytes += r.in.size();
        ++r.messages;
      } else if (r.kind == Remote::Kind::Sink && std::string_view(reinterpret_cast<const char*>(r.in.data()), r.in.size()) == "fin") {
        const json reply = {{"bytes", r.bytes},
                            {"messages", r.messages},
                            {"recv_seconds", r.messages ? secondsSince(r.first, r.last) : 0.0}};
        r.channel->setWriteMode(WriteMode::Text);
        if (r.channel->putPacket(reply.dump()) != Error::Ok) {
          error("sink reply on " + r.channel->label() + ": " + r.channel->lastError());
        }
        busy = true;
      }
    }
    return busy;
  }

  /// Waits for a test channel to open; false (with an error sent) if it closed or took too long.
  bool channelOpened(const DataChannel& channel, Clock::time_point created, bool& done) {
    if (channel.readyState() == ReadyState::Open) return true;
    if (channel.readyState() != ReadyState::Connecting) {
      error("channel " + channel.label() + " " + stateName(channel.readyState()) + " before it opened");
      done = true;
    } else if (Clock::now() - created > kOpenTimeout) {
      error("channel " + channel.label() + " did not open within " + std::to_string(kOpenTimeout.count()) + " s");
      done = true;
    }
    return false;
  }

  bool advance(EchoTest& t, bool& done) {
    if (!t.waiting && !channelOpened(*t.channel, t.started, done)) return false;
    if (t.waiting) {
      if (t.channel->getPacket(t.in) != Error::Ok) {
        if (Clock::now() - t.started > kEchoTimeout) {
          error("echo " + labelSuffix(t.id) + ": no echo of message " + std::to_string(t.rttMs.size()) + " within " +
                std::to_string(kEchoTimeout.count()) + " s");
          t.channel->close();
          done = true;
        }
        return false;
      }
      t.rttMs.push_back(secondsSince(t.sentAt) * 1e3);
      if (t.in != t.out || t.channel->wasStringPacket()) {
        error("echo " + labelSuffix(t.id) + ": message " + std::to_string(t.rttMs.size() - 1) +
              " came back altered (" + std::to_string(t.in.size()) + " bytes)");
        t.channel->close();
        done = true;
        return false;
      }
      t.waiting = false;
    }
    if (static_cast<int>(t.rttMs.size()) == t.count) {
      t.channel->close();
      send({{"type", "result"}, {"test", "echo"}, {"id", t.id}, {"size", t.size}, {"count", t.count},
            {"rtt_ms", t.rttMs}});
      done = true;
      return true;
    }
    t.out.resize(t.size);
    fillMessage(t.out, t.rttMs.size());
    t.sentAt = Clock::now();
    if (t.channel->putPacket(std::span<const std::uint8_t>(t.out)) != Error::Ok) {
      error("echo " + labelSuffix(t.id) + ": putPacket: " + t.channel->lastError());
      t.channel->close();
      done = true;
      return false;
    }
    t.waiting = true;
    return true;
  }

  bool advance(ThroughputTest& t, bool& done) {
    using Phase = ThroughputTest::Phase;
    const auto now = Clock::now();
    if (t.phase == Phase::Opening) {
      if (!channelOpened(*t.channel, t.created, done)) return false;
      t.phase = Phase::Sending;
      t.start = now;
      t.out.resize(t.size);
      fillMessage(t.out, 0);
    }
    if (t.phase == Phase::Sending) {
      if (secondsSince(t.start, now) < t.seconds) {
        // Send while below the high watermark, then wait (counted) until at most the low one.
        if (t.paused && t.channel->bufferedAmount() > t.low) return false;
        t.paused = false;
        t.channel->setWriteMode(WriteMode::Binary);
        // Also bounded by `high` per turn, so a bufferedAmount() that lags behind cannot make this loop forever.
        for (std::size_t queued = 0; queued < t.high && t.channel->bufferedAmount() < t.high; queued += t.size) {
          if (t.channel->putPacket(std::span<const std::uint8_t>(t.out)) != Error::Ok) {
            error("throughput " + labelSuffix(t.id) + ": putPacket: " + t.channel->lastError());
            t.channel->close();
            done = true;
            return false;
          }
          t.bytes += t.size;
          ++t.messages;
        }
        t.paused = true;
        ++t.waits;
        return true;
      }
      t.sendEnd = now;
      t.channel->setWriteMode(WriteMode::Text);
      if (t.channel->putPacket("fin") != Error::Ok) {
        error("throughput " + labelSuffix(t.id) + ": sending fin: " + t.channel->lastError());
        t.channel->close();
        done = true;
        return false;
      }
      t.phase = Phase::AwaitReply;
      return true;
    }
    while (t.channel->getPacket(t.in) == Error::Ok) {
      if (!t.channel->wasStringPacket()) continue;
      const json reply = json::parse(t.in.begin(), t.in.end(), nullptr, false);
      t.channel->close();
      done = true;
      if (reply.is_discarded()) {
        error("throughput " + labelSuffix(t.id) + ": the sink's reply is not JSON: " +
              std::string(t.in.begin(), t.in.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(t.in.size(), 200))));
        return false;
      }
      const double seconds = secondsSince(t.start, now);
      send({{"type", "result"},
            {"test", "throughput"},
            {"id", t.id},
            {"size", t.size},
            {"bytes", t.bytes},
            {"messages", t.messages},
            {"seconds", seconds},
            {"send_seconds", secondsSince(t.start, t.sendEnd)},
            {"mbit_per_s", static_cast<double>(t.bytes) * 8 / seconds / 1e6},
            {"waits", t.waits},
            {"remote", reply}});
      return false;
    }
    if (now - t.sendEnd > kReplyGrace) {
      error("throughput " + labelSuffix(t.id) + ": no reply to fin within " + std::to_string(kReplyGrace.count()) +
            " s");
      t.channel->close();
      done = true;
    }
    return false;
  }

  // ---- feature extension: test channels ----------------------------------------------------------------------

  static json channelOpened(const std::string& label, const TestChannel& t) {
    const DataChannel& c = *t.channel;
    const auto optional = [](int value) { return value == DataChannel::kUnset ? json(nullptr) : json(value); };
    return {{"type", "channel-open"},
            {"label", label},
            {"origin", t.local ? "local" : "remote"},
            {"ordered", c.isOrdered()},
            {"maxRetransmits", optional(c.maxRetransmits())},
            {"maxPacketLifeTime", optional(c.maxPacketLifeTime())},
            {"protocol", c.protocol()},
            {"negotiated", c.isNegotiated()},
            {"id", c.id()}};
  }

  bool advance(const std::string& label, TestChannel& t) {
    bool busy = false;
    const ReadyState state = t.channel->readyState();
    if (!t.openReported && state == ReadyState::Open) {
      t.openReported = true;
      send(channelOpened(label, t));
    }
    while (t.channel->getPacket(t.in) == Error::Ok) {
      const bool text = t.channel->wasStringPacket();
      if (t.echo) {
        t.channel->setWriteMode(text ? WriteMode::Text : WriteMode::Binary);
        if (t.channel->putPacket(std::span<const std::uint8_t>(t.in)) != Error::Ok) {
          error("echo on " + label + ": " + t.channel->lastError(), label);
        }
        busy = true;
      } else if (t.sending) {
        t.gotKeys.push_back(messageKey(t.in, !text));
      }
    }
    if (!t.pending.is_null() && state == ReadyState::Open) busy |= startSend(label, t);
    if (t.sending) finishSend(label, t, state);
    if (!t.closedReported && state == ReadyState::Closed) {
      t.closedReported = true;
      send({{"type", "channel-closed"}, {"label", label}});
    }
    return busy;
  }

  bool startSend(const std::string& label, TestChannel& t) {
    const json messages = std::move(t.pending);
    t.pending = nullptr;
    t.sentKeys.clear();
    t.gotKeys.clear();
    t.started = Clock::now();
    for (std::size_t k = 0; k < messages.size(); ++k) {
      const bool binary = messages[k].value("binary", false);
      makeTestMessage(t.out, k, binary, messages[k].at("size").get<std::size_t>());
      t.channel->setWriteMode(binary ? WriteMode::Binary : WriteMode::Text);
      if (t.channel->putPacket(std::span<const std::uint8_t>(t.out)) != Error::Ok) {
        error("send " + label + ": message " + std::to_string(k) + ": " + t.channel->lastError(), label);
        return false;
      }
      t.sentKeys.push_back(messageKey(t.out, binary));
    }
    t.sending = true;
    return true;
  }

  /// All echoes back: compared with what was sent (in order, or as a set on an unordered channel).
  void finishSend(const std::string& label, TestChannel& t, ReadyState state) {
    if (t.gotKeys.size() < t.sentKeys.size()) {
      if (Clock::now() - t.started > kSendTimeout || state == ReadyState::Closed) {
        t.sending = false;
        error("send " + label + ": " + std::to_string(t.gotKeys.size()) + " of " + std::to_string(t.sentKeys.size()) +
                  " messages came back" + (state == ReadyState::Closed ? " before the channel closed" : " within 30 s"),
              label);
      }
      return;
    }
    t.sending = false;
    if (!t.channel->isOrdered()) {
      std::sort(t.sentKeys.begin(), t.sentKeys.end());
      std::sort(t.gotKeys.begin(), t.gotKeys.end());
    }
    const auto [sent, got] = std::mismatch(t.sentKeys.begin(), t.sentKeys.end(), t.gotKeys.begin());
    if (sent != t.sentKeys.end() || t.gotKeys.size() != t.sentKeys.size()) {
      const auto k = static_cast<std::size_t>(sent - t.sentKeys.begin());
      return error("send " + label + ": message " + std::to_string(k) + " sent as " +
                       (sent == t.sentKeys.end() ? "nothing" : *sent) + " came back as " +
                       (got == t.gotKeys.end() ? "nothing" : *got),
                   label);
    }
    send({{"type", "result"},
          {"test", "send"},
          {"label", label},
          {"count", t.sentKeys.size()},
          {"ms", secondsSince(t.started) * 1e3}});
  }

  PeerOptions options_;
  Clock::time_point begin_ = Clock::now();
  std::string role_;
  std::unique_ptr<PeerConnection> pc_;
  std::deque<std::function<void()>> deferred_;
  std::string localType_, localSdp_;
  bool descriptionSent_ = false;
  std::vector<LocalCandidate> candidates_;
  bool endOfCandidates_ = false;
  bool completeSeen_ = false;
  std::shared_ptr<DataChannel> ctl_;
  bool ctlReported_ = false;
  ConnectionState connectionState_ = ConnectionState::New;
  std::vector<Remote> remotes_;
  std::vector<EchoTest> echoes_;
  std::vector<ThroughputTest> throughputs_;
  std::map<std::string, TestChannel> tests_;  // by label
  std::string input_;
  bool finished_ = false;
};

}  // namespace

int runPeer(const PeerOptions& options) {
  setVerbosity(options.verbose, false);
  // Bad ICE options are a usage error at start, not an `error` message in the middle of a test.
  std::string reason;
  configurationFrom(options, &reason);
  if (!reason.empty()) {
    std::fprintf(stderr, "rtcpeer peer: %s\n", reason.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // a vanished driver shows as a failed write, not a killed peer
  std::ios::sync_with_stdio(false);
  return PeerProgram(options).run();
}

}  // namespace rtcpeer::tools
