// `rtcpeer send FILE`, `rtcpeer recv` and `rtcpeer chat`: peers that meet in a lobby of the signaling server
// (`rtcpeer serve`) and talk over one negotiated data channel (id 1), the same wire format as web/app.js:
//   text  {"kind":"chat","text":...}
//   text  {"kind":"file","name":...,"size":N}, then binary chunks of 16 KiB, then {"kind":"done","sha256":hex}
//   text  {"kind":"ack","ok":bool,"sha256":hex}   from the receiver once it has checked the digest
#include <openssl/evp.h>
#include <poll.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common.hpp"
#include "signaling/client.hpp"

namespace rtcpeer::tools {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr std::size_t kChunk = 16384;           // every browser accepts 16 KiB messages
constexpr std::size_t kHighWater = 4u << 20;    // bytes queued in the channel before the sender pauses
constexpr auto kSlice = std::chrono::milliseconds(5);

struct TransferOptions {
  std::string server = "ws://127.0.0.1:9080";
  std::string caFile;     // wss://: trust these CA certificates instead of the system's
  bool insecure = false;  // wss://: skip the certificate check
  std::string lobby;
  std::vector<std::string> interfaces;
  IceOptions ice;
  std::string file;    // send: the file; recv: where to write (default: the sender's file name, here)
  bool force = false;  // recv: overwrite
  bool quiet = false;
  int verbose = 0;
  int timeout = 0;  // seconds to wait for the peer to connect once it has joined; 0: 30
};

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_, data, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
      out += kDigits[md[i] >> 4];
      out += kDigits[md[i] & 15];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

class Progress {
 public:
  Progress(std::uint64_t total, bool enabled) : total_(total), enabled_(enabled && isatty(STDERR_FILENO)) {}
  void update(std::uint64_t done, bool final = false) {
    const auto now = Clock::now();
    if (!enabled_ || (!final && now - last_ < std::chrono::milliseconds(200))) return;
    last_ = now;
    const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
    const int filled = static_cast<int>(frac * 30);
    const double rate = static_cast<double>(done) / std::max(1e-3, secondsSince(start_, now)) / 1048576.0;
    std::fprintf(stderr, "\r[%-30s] %3d%% %.1f/%.1f MiB %.1f MiB/s", std::string(filled, '#').c_str(),
                 static_cast<int>(frac * 100), static_cast<double>(done) / 1048576.0,
                 static_cast<double>(total_) / 1048576.0, rate);
    if (final) std::fputc('\n', stderr);
  }

 private:
  std::uint64_t total_;
  bool enabled_;
  Clock::time_point start_ = Clock::now(), last_{};
};

// The signaling client's options from the command line; an error message if they are unusable.
std::string clientOptions(const TransferOptions& o, signaling::ClientOptions& c) {
  c.url = o.server;
  c.caFile = o.caFile;
  c.verifyCertificate = !o.insecure;
  c.lobby = o.lobby;
  c.rtc.interfaces = o.interfaces;
  return applyIceOptions(o.ice, c.rtc);
}

// Lobby membership, the single data channel per peer and the error paths shared by the three commands.
class Session {
 public:
  Session(const TransferOptions& o, signaling::ClientOptions c) : options_(o), client_(std::move(c)) {
    client_.onJoined([this](const std::string& lobby, int id) {
      if (options_.quiet) return;
      if (options_.lobby.empty())
        std::fprintf(stderr, "lobby %s created (you are peer %d); the other side joins with --lobby %s\n",
                     lobby.c_str(), id, lobby.c_str());
      else
        std::fprintf(stderr, "joined lobby %s as peer %d\n", lobby.c_str(), id);
    });
    client_.onPeerConnected([this](int id, PeerConnection& pc) {
      DataChannelInit init;
      init.negotiated = true;
      init.id = 1;
      channels_[id] = pc.createDataChannel("rtcpeer", init);
      connectDeadline_[id] = Clock::now() + std::chrono::seconds(options_.timeout > 0 ? options_.timeout : 30);
      if (!options_.quiet) std::fprintf(stderr, "peer %d joined; connecting...\n", id);
    });
    client_.onPeerDisconnected([this](int id) {
      if (channels_.erase(id) && !options_.quiet) std::fprintf(stderr, "peer %d left\n", id);
      peerLeft_ = true;
    });
    client_.onClosed([this](int code, const std::string& reason) {
      // 1000 after a seal or our own close is expected; anything else before we are done is an error.
      if (code == 1000) return;
      signalingError_ = code == 1006 ? client_.lastError() : "closed (" + std::to_string(code) + "): " + reason;
      if (signalingError_.find("is not trusted") != std::string::npos)
        signalingError_ += "; trust the server's CA with --ca FILE, or skip the check with --insecure";
    });
  }

  signaling::SignalingClient& client() { return client_; }
  std::map<int, std::shared_ptr<DataChannel>>& channels() { return channels_; }
  bool peerLeft() const { return peerLeft_; }

  /// Polls; returns an error message when something has gone wrong for good.
  std::optional<std::string> step(bool busy) {
    client_.poll();
    if (!signalingError_.empty() && channels_.empty()) return "signaling server: " + signalingError_;
    for (auto& [id, channel] : channels_) {
      PeerConnection* pc = client_.peer(id);
      if (pc && pc->connectionState() == ConnectionState::Failed) {
        // The failure's reason reaches the channels it closed.
        const std::string why = pc->lastError().empty() ? channel->lastError() : pc->lastError();
        return "connection to peer " + std::to_string(id) + " failed" + (why.empty() ? "" : ": " + why);
      }
      if (channel->readyState() != ReadyState::Open && Clock::now() > connectDeadline_[id])
        return "could not connect to peer " + std::to_string(id) +
               " (no usable network path; try --interfaces, or --ice-server across NATs)";
    }
    if (!busy) client_.wait(kSlice);
    return std::nullopt;
  }

 private:
  const TransferOptions& options_;
  signaling::SignalingClient client_;
  std::map<int, std::shared_ptr<DataChannel>> channels_;
  std::map<int, Clock::time_point> connectDeadline_;
  std::string signalingError_;
  bool peerLeft_ = false;
};

int error(const std::string& what) {
  std::fprintf(stderr, "rtcpeer: error: %s\n", what.c_str());
  return 1;
}

std::optional<json> controlMessage(const std::vector<std::uint8_t>& packet) {
  auto j = json::parse(packet.begin(), packet.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("kind") || !j["kind"].is_string()) return std::nullopt;
  return j;
}

int runSend(const TransferOptions& o) {
  std::ifstream in(o.file, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(o.file, ec);
  if (!in || ec || !fs::is_regular_file(o.file)) return error("cannot read " + o.file);
  setVerbosity(o.verbose, o.quiet);
  signaling::ClientOptions client;
  if (auto e = clientOptions(o, client); !e.empty()) return error(e);
  Session session(o, std::move(client));
  std::shared_ptr<DataChannel> channel;
  Progress progress(size, !o.quiet);
  Sha256 sha;
  std::vector<std::uint8_t> chunk(kChunk), packet;
  std::uint64_t sent = 0;
  bool headerSent = false, doneSent = false;
  std::string digest;
  for (;;) {
    bool busy = false;
    if (!channel) {
      for (auto& [id, c] : session.channels())
        if (c->readyState() == ReadyState::Open) channel = c;
    }
    if (channel) {
      if (channel->readyState() != ReadyState::Open) return error("the receiver closed the channel before the end");
      if (!headerSent) {
        channel->setWriteMode(WriteMode::Text);
        channel->putPacket(json{{"kind", "file"}, {"name", fs::path(o.file).filename().string()}, {"size", size}}.dump());
        channel->setWriteMode(WriteMode::Binary);
        headerSent = true;
        if (!o.quiet) std::fprintf(stderr, "sending %s (%llu bytes)\n", o.file.c_str(), (unsigned long long)size);
      }
      while (sent < size && channel->bufferedAmount() < kHighWater) {
        in.read(reinterpret_cast<char*>(chunk.data()), static_cast<std::streamsize>(kChunk));
        const auto n = static_cast<std::size_t>(in.gcount());
        if (n == 0) return error("read error on " + o.file);
        sha.update(chunk.data(), n);
        if (channel->putPacket(std::span(chunk.data(), n)) != Error::Ok) return error(channel->lastError());
        sent += n;
        busy = true;
      }
      progress.update(sent - std::min<std::uint64_t>(sent, channel->bufferedAmount()));
      if (sent == size && !doneSent) {
        digest = sha.hex();
        channel->setWriteMode(WriteMode::Text);
        channel->putPacket(json{{"kind", "done"}, {"sha256", digest}}.dump());
        doneSent = true;
      }
      while (channel->getPacket(packet) == Error::Ok) {
        auto m = controlMessage(packet);
        if (!m || (*m)["kind"] != "ack") continue;
        progress.update(size, true);
        if (!(*m).value("ok", false)) return error("the receiver reports a SHA-256 mismatch");
        if (!o.quiet) std::fprintf(stderr, "sent %s: %llu bytes, SHA-256 %s verified by the receiver\n",
                                   o.file.c_str(), (unsigned long long)size, digest.c_str());
        return 0;
      }
    }
    if (channel && session.peerLeft() && session.channels().empty())
      return error("the receiver left before the transfer completed");
    if (auto e = session.step(busy)) return error(*e);
  }
}

int runRecv(const TransferOptions& o) {
  setVerbosity(o.verbose, o.quiet);
  signaling::ClientOptions client;
  if (auto e = clientOptions(o, client); !e.empty()) return error(e);
  Session session(o, std::move(client));
  std::shared_ptr<DataChannel> channel;
  std::vector<std::uint8_t> packet;
  std::optional<Progress> progress;
  Sha256 sha;
  std::ofstream out;
  fs::path target, partial;
  std::uint64_t expected = 0, received = 0;
  auto cleanup = [&] {
    out.close();
    std::error_code ignored;
    if (!partial.empty()) fs::remove(partial, ignored);
  };
  auto failWith = [&](const std::string& why) {
    cleanup();
    return error(why);
  };
  std::optional<Clock::time_point> lingerUntil;
  for (;;) {
    if (!channel)
      for (auto& [id, c] : session.channels())
        if (c->readyState() == ReadyState::Open) channel = c;
    if (channel && !lingerUntil) {
      while (channel->getPacket(packet) == Error::Ok) {
        if (!channel->wasStringPacket()) {
          if (!out.is_open()) return failWith("data arrived before the file header");
          received += packet.size();
          if (received > expected) return failWith("the sender sent more than the announced size");
          sha.update(packet.data(), packet.size());
          out.write(reinterpret_cast<const char*>(packet.data()), static_cast<std::streamsize>(packet.size()));
          progress->update(received);
          continue;
        }
        auto m = controlMessage(packet);
        if (!m) continue;
        if ((*m)["kind"] == "file") {
          if (out.is_open()) return failWith("a second file header arrived");
          const std::string name = fs::path((*m).value("name", std::string())).filename().string();
          if (!(*m)["size"].is_number_unsigned()) return failWith("bad file header");
          if (name.empty() || name == "." || name == "..") return failWith("the sender gave no usable file name");
          expected = (*m)["size"].get<std::uint64_t>();
          target = o.file.empty() ? fs::path(name) : fs::path(o.file);
          if (fs::exists(target) && !o.force) return failWith(target.string() + " exists (use --force to overwrite)");
          partial = target.string() + ".part";
          out.open(partial, std::ios::binary | std::ios::trunc);
          if (!out) return failWith("cannot write " + partial.string());
          progress.emplace(expected, !o.quiet);
          if (!o.quiet)
            std::fprintf(stderr, "receiving %s (%llu bytes)\n", name.c_str(), (unsigned long long)expected);
        } else if ((*m)["kind"] == "done") {
          if (!out.is_open()) return failWith("end of file before its header");
          const std::string digest = sha.hex();
          const bool ok = received == expected && (*m).value("sha256", std::string()) == digest;
          channel->setWriteMode(WriteMode::Text);
          channel->putPacket(json{{"kind", "ack"}, {"ok", ok}, {"sha256", digest}}.dump());
          out.close();
          if (!ok) {
            cleanup();
            return error("SHA-256 mismatch: got " + digest + ", the sender computed " +
                         (*m).value("sha256", std::string("?")) + " (" + std::to_string(received) + " of " +
                         std::to_string(expected) + " bytes)");
          }
          std::error_code ec;
          fs::rename(partial, target, ec);
          if (ec) return failWith("cannot rename " + partial.string() + ": " + ec.message());
          partial.clear();
          progress->update(received, true);
          if (!o.quiet)
            std::printf("received %s: %llu bytes, SHA-256 %s\n", target.string().c_str(),
                        (unsigned long long)received, digest.c_str());
          std::fflush(stdout);
          lingerUntil = Clock::now() + std::chrono::seconds(2);  // let the ack reach the sender
        }
      }
      if (!lingerUntil && channel->readyState() != ReadyState::Open)
        return failWith("the sender closed the channel before the end (" + std::to_string(received) + " of " +
                        std::to_string(expected) + " bytes)");
    }
    if (lingerUntil && (Clock::now() > *lingerUntil || channel->bufferedAmount() == 0)) {
      // Flushed to the transport: a few more polls so the SCTP SACK/retransmission can finish.
      for (int i = 0; i < 40; ++i) session.step(false);
      return 0;
    }
    if (channel && session.peerLeft() && session.channels().empty() && !lingerUntil)
      return failWith("the sender left before the transfer completed");
    if (auto e = session.step(false)) return failWith(*e);
  }
}

int runChat(const TransferOptions& o) {
  setVerbosity(o.verbose, o.quiet);
  signaling::ClientOptions client;
  if (auto e = clientOptions(o, client); !e.empty()) return error(e);
  Session session(o, std::move(client));
  std::map<int, bool> announced;
  std::vector<std::uint8_t> packet;
  std::string pending;
  bool stdinOpen = true;
  for (;;) {
    for (auto& [id, c] : session.channels()) {
      if (c->readyState() == ReadyState::Open && !announced[id]) {
        announced[id] = true;
        std::fprintf(stderr, "connected to peer %d; type a line to send it\n", id);
      }
      while (c->getPacket(packet) == Error::Ok) {
        auto m = controlMessage(packet);
        if (m && (*m)["kind"] == "chat" && (*m)["text"].is_string())
          std::printf("[%d] %s\n", id, (*m)["text"].get<std::string>().c_str());
      }
    }
    std::fflush(stdout);
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    while (stdinOpen && ::poll(&pfd, 1, 0) > 0) {
      char buf[4096];
      const auto n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        stdinOpen = false;
        break;
      }
      pending.append(buf, static_cast<std::size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        for (auto& [id, c] : session.channels()) {
          if (c->readyState() != ReadyState::Open) continue;
          c->setWriteMode(WriteMode::Text);
          c->putPacket(json{{"kind", "chat"}, {"text", line}}.dump(-1, ' ', false, json::error_handler_t::replace));
        }
      }
    }
    if (!stdinOpen) {
      bool flushed = true;
      for (auto& [id, c] : session.channels()) flushed = flushed && c->bufferedAmount() == 0;
      if (flushed) return 0;
    }
    if (auto e = session.step(false)) return error(*e);
  }
}

void commonOptions(CLI::App* cmd, TransferOptions& o) {
  cmd->add_option("-s,--server", o.server, "Signaling server URL, ws://HOST:PORT or wss://HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--ca", o.caFile, "wss://: PEM file of CA certificates to trust instead of the system's")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--insecure", o.insecure, "wss://: accept any server certificate (encrypted, not authenticated)");
  cmd->add_option("-l,--lobby", o.lobby, "Lobby to join (default: create one and print its name)");
  cmd->add_option("--interfaces", o.interfaces, "Gather candidates only on these interfaces or addresses")
      ->delimiter(',');
  addIceOptions(cmd, o.ice);
  cmd->add_option("--timeout", o.timeout, "Seconds allowed to connect to a peer once it joined (default 30)");
  cmd->add_flag("-q,--quiet", o.quiet, "Print only errors (and the result)");
  cmd->add_flag("-v,--verbose", o.verbose, "Library log output (repeat for more)");
}

// CLI11 runs these callbacks inside parse(); throwing RuntimeError(code) ends parsing and makes CLI11_PARSE
// return `code`, so the commands plug into any main() with a single call.
[[noreturn]] void finish(int code) { throw CLI::RuntimeError(code); }

}  // namespace

void addTransferCommands(CLI::App& app) {
  auto o = std::make_shared<TransferOptions>();
  CLI::App* send = app.add_subcommand("send", "Send a file to the peer that joins the lobby (SHA-256 checked)");
  send->add_option("file", o->file, "The file to send")->required()->check(CLI::ExistingFile);
  commonOptions(send, *o);
  send->final_callback([o] { finish(runSend(*o)); });

  auto r = std::make_shared<TransferOptions>();
  CLI::App* recv = app.add_subcommand("recv", "Receive one file from a peer in the lobby");
  recv->add_option("-o,--output", r->file, "Where to write it (default: the sender's file name, here)");
  recv->add_flag("-f,--force", r->force, "Overwrite an existing file");
  commonOptions(recv, *r);
  recv->final_callback([r] { finish(runRecv(*r)); });

  auto c = std::make_shared<TransferOptions>();
  CLI::App* chat = app.add_subcommand("chat", "Text chat with everyone in the lobby (stdin lines out, peers' lines to stdout)");
  commonOptions(chat, *c);
  chat->final_callback([c] { finish(runChat(*c)); });
}

}  // namespace rtcpeer::tools
