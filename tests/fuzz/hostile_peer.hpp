// A scripted, hostile WebRTC peer for the stateful PeerConnection fuzz target (tests/fuzz/peer_connection.cpp):
// in memory, no sockets, virtual time. It is a real peer up to the SCTP association (an ICE responder that answers
// every binding request, a dtls::Endpoint as the DTLS client, an sctp::Association), and besides the packets its
// association sends it writes arbitrary SCTP packets of its own into the DTLS session: chunks behind a valid common
// header (our verification tag, a CRC32c or the RFC 9653 zero checksum), optionally with TSN fields made relative
// to the association's state so mutated DATA, SACK and FORWARD-TSN chunks land where they matter.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/address.hpp"
#include "common/bytes.hpp"
#include "common/random.hpp"
#include "common/time.hpp"
#include "dtls/certificate.hpp"
#include "dtls/demux.hpp"
#include "dtls/endpoint.hpp"
#include "sctp/association.hpp"
#include "sctp/packet/packet.hpp"
#include "stun/stun.hpp"

namespace rtcpeer::fuzz {

class HostilePeer {
 public:
  struct Setup {
    std::shared_ptr<const dtls::Certificate> certificate;
    dtls::Fingerprint remoteFingerprint;  // ours, from our offer
    std::string ufrag, pwd;               // the peer's ICE credentials (its answer carries them)
    SocketAddress address;                // where the peer's datagrams come from
    SocketAddress ours;                   // our PeerConnection's address, as the peer sees it
    bool iData = false, zeroChecksum = false;
    std::size_t maxMessageSize = 256 * 1024;
    bool autoAck = false;     // answer every DCEP OPEN with an ACK, as a well-behaved peer does
    bool dtlsServer = false;  // the answer says a=setup:passive (we are the DTLS client) instead of active
  };

  HostilePeer(Setup setup, Random& random) : setup_(std::move(setup)), random_(random) {
    dtls::Config c;
    c.certificate = setup_.certificate;
    c.role = setup_.dtlsServer ? dtls::Role::Server : dtls::Role::Client;
    c.remoteFingerprints = {setup_.remoteFingerprint};
    dtls_.emplace(std::move(c));
    if (setup_.dtlsServer) dtls_->start(Timestamp{});  // a server only waits for the ClientHello
    sctp::Options o;
    o.maxMessageSize = std::max<std::size_t>(setup_.maxMessageSize, 1024);
    o.enableIData = setup_.iData;
    o.enableZeroChecksum = setup_.zeroChecksum;
    sctp_.emplace(o, random_);
  }

  // --- the wire ---------------------------------------------------------------------------------------------
  /// A datagram from our PeerConnection.
  void receive(ByteView datagram, Timestamp now) {
    switch (dtls::classify(datagram)) {
      case dtls::PacketKind::Stun: answerStun(datagram, now); break;
      case dtls::PacketKind::Dtls: dtls_->handleInput(datagram, now); break;
      default: break;
    }
  }
  /// Datagrams for our PeerConnection, oldest first.
  std::deque<Bytes>& outbox() { return outbox_; }
  /// A datagram of the fuzzer's choosing (not encrypted: STUN, a DTLS record, garbage) from the peer's address.
  void sendDatagram(ByteView bytes) { outbox_.emplace_back(bytes.begin(), bytes.end()); }

  /// Moves everything the layers produced: decrypted records into the association, its packets into DTLS records,
  /// DTLS datagrams into the outbox. Returns whether anything moved.
  bool flush(Timestamp now) {
    bool moved = false;
    for (int round = 0; round < 8; ++round) {
      bool any = false;
      while (auto e = dtls_->pollEvent()) {
        if (e->type == dtls::Event::Type::Connected) sctp_->connect(now);
        any = true;
      }
      while (auto d = dtls_->pollApplicationData()) {
        sniffOurs(*d);
        sctp_->handleInput(*d, now);
        any = true;
      }
      if (dtls_->state() == dtls::State::Connected)
        while (auto p = sctp_->pollTransmit(now)) {
          sniffTheirs(*p);
          (void)dtls_->send(*p, now);
          any = true;
        }
      while (auto e = sctp_->pollEvent()) {
        if (e->type == sctp::Event::Type::Connected) established_ = true;
        any = true;
      }
      while (auto m = sctp_->pollMessage()) {
        if (setup_.autoAck && m->ppid == 50 && !m->payload.empty() && m->payload[0] == 3) {
          const std::uint8_t ack = 2;
          (void)sctp_->send(m->stream, 50, ByteView(&ack, 1), {}, now);
        }
        if (m->ppid != 50) {
          lastMessage_.stream = m->stream;
          lastMessage_.ppid = m->ppid;
          lastMessage_.payload.assign(m->payload.begin(),
                                      m->payload.begin() + std::min<long>(64, static_cast<long>(m->payload.size())));
        }
        sctp_->recycle(std::move(m->payload));
      }
      while (sctp_->pollStreamReset()) {
      }
      while (auto d = dtls_->pollTransmit()) {
        outbox_.emplace_back(d->begin(), d->end());
        any = true;
      }
      moved |= any;
      if (!any) break;
    }
    return moved;
  }

  void handleTimeout(Timestamp now) {
    if (dtls_->nextDeadline() <= now) dtls_->handleTimeout(now);
    if (sctp_->nextDeadline() <= now) sctp_->handleTimeout(now);
  }
  [[nodiscard]] Timestamp nextDeadline() const { return earliest(dtls_->nextDeadline(), sctp_->nextDeadline()); }

  // --- the association --------------------------------------------------------------------------------------
  [[nodiscard]] bool established() const noexcept { return established_ && ourTag_ != 0; }
  [[nodiscard]] sctp::Association& association() { return *sctp_; }
  [[nodiscard]] dtls::Endpoint& dtls() { return *dtls_; }
  /// The last user message the peer received (its first 64 bytes).
  [[nodiscard]] const sctp::Message& lastMessage() const noexcept { return lastMessage_; }

  /// Relative TSN fields (see writeRaw): DATA/I-DATA and FORWARD-TSN add the TSN after the last one the peer sent
  /// (or its initial TSN), SACK adds the last TSN we sent (or our initial TSN).
  static constexpr std::uint8_t kRelativeTsns = 1, kZeroChecksum = 2, kZeroTag = 4;

  /// Writes one SCTP packet: the common header (ports 5000, our verification tag unless kZeroTag, checksum
  /// stamped unless kZeroChecksum) followed by `chunks` as given (padded to 4 bytes), `repeat` times with each
  /// copy's DATA/I-DATA TSNs advanced by its index (a flood from a short input). Sent as DTLS application data.
  void writeRaw(ByteView chunks, std::uint8_t flags, int repeat, Timestamp now) {
    if (dtls_->state() != dtls::State::Connected) return;
    for (int i = 0; i < std::max(repeat, 1); ++i) {
      raw_.assign(sctp::kCommonHeaderSize, 0);
      storeBe16(raw_.data(), 5000);
      storeBe16(raw_.data() + 2, 5000);
      storeBe32(raw_.data() + 4, flags & kZeroTag ? 0 : ourTag_);
      raw_.insert(raw_.end(), chunks.begin(), chunks.end());
      while (raw_.size() % 4) raw_.push_back(0);
      patchTsns(flags & kRelativeTsns, static_cast<std::uint32_t>(i));
      if (!(flags & kZeroChecksum)) sctp::stampChecksum(raw_);
      (void)dtls_->send(raw_, now);
    }
  }

 private:
  // ICE: answer every binding request (a full-ICE controlled peer; our side nominates). The response is signed
  // with the peer's password (RFC 8445 7.3.1.4 / RFC 8489 9.1). As the DTLS client, the peer starts once a
  // nomination was answered.
  void answerStun(ByteView datagram, Timestamp now) {
    auto m = stun::parse(datagram);
    if (!m || !m->is(stun::Method::Binding, stun::Class::Request)) return;
    Bytes out;
    stun::MessageBuilder b(out, stun::Method::Binding, stun::Class::SuccessResponse, m->transactionId());
    b.addXorAddress(stun::attr::XorMappedAddress, setup_.ours);
    b.addIntegrity(stun::shortTermKey(setup_.pwd));
    b.addFingerprint();
    outbox_.push_back(std::move(out));
    if (m->useCandidate() && dtls_->state() == dtls::State::New) dtls_->start(now);
  }

  // Chunk walk over a packet: calls fn(type, offset of the chunk, its length) for each chunk.
  template <class F>
  static void forEachChunk(ByteView p, F&& fn) {
    for (std::size_t at = sctp::kCommonHeaderSize; at + 4 <= p.size();) {
      const std::size_t len = loadBe16(p.data() + at + 2);
      if (len < 4 || at + len > p.size()) break;
      fn(p[at], at, len);
      at += (len + 3) & ~std::size_t{3};
    }
  }

  // What the peer's association sent: our verification tag (in every packet but the INIT) and its TSNs.
  static void trace(const char* dir, ByteView p) {
    static const bool on = std::getenv("PEER_FUZZ_TRACE") != nullptr;
    if (!on) return;
    std::fprintf(stderr, "%s", dir);
    forEachChunk(p, [&](std::uint8_t type, std::size_t at, std::size_t len) {
      std::fprintf(stderr, " %02x/%zu", type, len);
      if (type == 0x82 && len >= 16)
        std::fprintf(stderr, "(param %04x seq %u)", loadBe16(p.data() + at + 4), loadBe32(p.data() + at + 8));
    });
    std::fprintf(stderr, "\n");
  }
  void sniffTheirs(ByteView p) {
    trace("peer>", p);
    if (p.size() < sctp::kCommonHeaderSize) return;
    forEachChunk(p, [&](std::uint8_t type, std::size_t at, std::size_t len) {
      if ((type == sctp::ChunkType::kData || type == sctp::ChunkType::kIData) && len >= 8)
        peerNextTsn_ = loadBe32(p.data() + at + 4) + 1;
      if ((type == sctp::ChunkType::kInit || type == sctp::ChunkType::kInitAck) && len >= 20 && peerNextTsn_ == 0)
        peerNextTsn_ = loadBe32(p.data() + at + 16);
    });
    if (p.size() >= 16 && p[12] != sctp::ChunkType::kInit && loadBe32(p.data() + 4) != 0)
      ourTag_ = loadBe32(p.data() + 4);
  }
  // What we sent: our TSNs, for relative SACKs.
  void sniffOurs(ByteView p) {
    trace("ours>", p);
    forEachChunk(p, [&](std::uint8_t type, std::size_t at, std::size_t len) {
      if ((type == sctp::ChunkType::kData || type == sctp::ChunkType::kIData) && len >= 8)
        ourLastTsn_ = loadBe32(p.data() + at + 4);
      if ((type == sctp::ChunkType::kInit || type == sctp::ChunkType::kInitAck) && len >= 20 && ourLastTsn_ == 0)
        ourLastTsn_ = loadBe32(p.data() + at + 16) - 1;
    });
  }

  void patchTsns(bool relative, std::uint32_t copy) {
    forEachChunk(raw_, [&](std::uint8_t type, std::size_t at, std::size_t len) {
      if (len < 8) return;
      std::uint8_t* field = raw_.data() + at + 4;
      std::uint32_t add = 0;
      if (type == sctp::ChunkType::kData || type == sctp::ChunkType::kIData)
        add = (relative ? peerNextTsn_ : 0) + copy;
      else if (type == sctp::ChunkType::kForwardTsn || type == sctp::ChunkType::kIForwardTsn)
        add = relative ? peerNextTsn_ : 0;
      else if (type == sctp::ChunkType::kSack)
        add = relative ? ourLastTsn_ : 0;
      if (add) storeBe32(field, loadBe32(field) + add);
    });
  }

  Setup setup_;
  Random& random_;
  std::optional<dtls::Endpoint> dtls_;
  std::optional<sctp::Association> sctp_;
  std::deque<Bytes> outbox_;
  Bytes raw_;
  sctp::Message lastMessage_;
  bool established_ = false;
  std::uint32_t ourTag_ = 0, peerNextTsn_ = 0, ourLastTsn_ = 0;
};

}  // namespace rtcpeer::fuzz
