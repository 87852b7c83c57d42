#include "dtls/endpoint.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>

#include "common/log.hpp"
#include "dtls/demux.hpp"
#include "dtls/record_protection.hpp"

namespace rtcpeer::dtls {

namespace {

// Browsers' ECDHE suites (RFC 8827 section 6.5 requires forward secrecy); OpenSSL names.
constexpr const char* kCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// SRTP protection profiles for the use_srtp extension (RFC 5764 section 4.1.1), offered and accepted the way
// Chromium does (its default CryptoOptions: AES128_CM_SHA1_80, then the two AEAD_AES_GCM ones). No SRTP is ever
// used: a data-channel-only connection still negotiates a profile because some stacks fail the connection without
// one (Pion: "SRTP support was requested but server did not respond with use_srtp extension" as the client, "no
// SRTP Protection Profile was chosen" as the server), and browsers always send it. As the server we answer with
// the extension only when the client offered it (OpenSSL's rule, and RFC 5764 section 4.1.1).
constexpr const char* kSrtpProfiles = "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_256_GCM:SRTP_AEAD_AES_128_GCM";
constexpr std::size_t kMaxPlaintext = 16384;  // RFC 6347 section 4.1 / TLS 1.2 record limit
constexpr std::size_t kMaxHeldDatagrams = 32;  // datagrams held before start() / before fingerprints arrive
constexpr int kReadBufferSize = 16384 + 2048;  // > any DTLS record
constexpr std::uint8_t kChangeCipherSpec = 20, kAlert = 21, kHandshake = 22, kApplicationData = 23;  // RFC 5246 section 6.2.1

// A ring of reusable byte buffers: push() hands out a cleared buffer (capacity kept), pop() returns a view that
// stays valid until that slot is reused, which cannot happen before the next push.
class BufferQueue {
 public:
  Bytes& push() {
    if (size_ == slots_.size()) {
      std::rotate(slots_.begin(), slots_.begin() + static_cast<std::ptrdiff_t>(head_), slots_.end());
      head_ = 0;
      slots_.emplace_back();
    }
    Bytes& b = slots_[(head_ + size_) % slots_.size()];
    b.clear();
    ++size_;
    return b;
  }
  Bytes* back() noexcept { return size_ ? &slots_[(head_ + size_ - 1) % slots_.size()] : nullptr; }
  /// Takes back the last push().
  void unpush() noexcept {
    if (size_) --size_;
  }
  std::optional<ByteView> pop() noexcept {
    if (!size_) return std::nullopt;
    const Bytes& b = slots_[head_];
    head_ = (head_ + 1) % slots_.size();
    --size_;
    return ByteView(b);
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Frees the slots' memory when nothing is queued (an idle connection; see Endpoint::releaseBuffers).
  void release() {
    if (size_ == 0) {
      slots_ = {};
      head_ = 0;
    }
  }
  /// Queues a second copy of every buffer from queue position `from` on.
  void repeatFrom(std::size_t from) {
    for (std::size_t i = from, end = size_; i < end; ++i) {
      Bytes copy = slots_[(head_ + i) % slots_.size()];
      push() = std::move(copy);
    }
  }

 private:
  std::vector<Bytes> slots_;
  std::size_t head_ = 0, size_ = 0;
};

std::string opensslError() {
  unsigned long e = 0, last = 0;
  while ((e = ERR_get_error()) != 0) last = e;
  if (!last) return "unknown error";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

}  // namespace

// Decrypted records land here before being copied into the endpoint's receive ring: one buffer per thread, since
// it holds nothing between calls (a buffer per endpoint was 18 KiB of every idle connection).
// How far one side's handshake got, for the implicit acknowledgement in Impl (RFC 6347 section 4.2.4).
struct FlightProgress {
  std::int64_t newest = -1;  // (message_seq, fragment_offset) of the newest epoch 0 handshake record
  bool ccs = false, encrypted = false;
  enum class Record { New, Resent, Other };  // Other: not part of a flight (alerts, application data)
  Record advance(const std::uint8_t* record, std::size_t n);
};

FlightProgress::Record FlightProgress::advance(const std::uint8_t* record, std::size_t n) {
  if (n < kRecordHeaderSize) return Record::Other;
  const std::uint8_t type = record[0];
  const bool epochZero = loadBe16(record + 3) == 0;
  if (type == kChangeCipherSpec) return std::exchange(ccs, true) ? Record::Resent : Record::New;
  if (type != kHandshake) return Record::Other;
  if (!epochZero) return std::exchange(encrypted, true) ? Record::Resent : Record::New;
  // The handshake header (RFC 6347 section 4.2.2): type, length (3), message_seq (2), fragment_offset (3).
  if (n < kRecordHeaderSize + 9) return Record::Other;
  const std::uint8_t* h = record + kRecordHeaderSize;
  const std::int64_t key = (std::int64_t{loadBe16(h + 4)} << 24) | (std::int64_t{h[6]} << 16) | (h[7] << 8) | h[8];
  if (key <= newest) return Record::Resent;
  newest = key;
  return Record::New;
}

std::uint8_t* readBuffer() {
  thread_local std::unique_ptr<std::uint8_t[]> buffer(new std::uint8_t[kReadBufferSize]);
  return buffer.get();
}

struct Endpoint::Impl {
  Config cfg;
  SSL* ssl = nullptr;
  State state = State::New;
  std::string reason;
  Timestamp now{};
  Timestamp retransmitAt = kNever;
  Timestamp handshakeDeadline = kNever;
  ByteView input;  // the datagram the BIO hands to OpenSSL on its next read
  bool inputTaken = true;
  bool verified = false;
  bool handshakeDone = false;
  bool buffersReleased = false;  // releaseBuffers(): OpenSSL's record buffers are gone until ensureBuffers()
  std::string verifyFailure;
  std::string peerAlert;
  BufferQueue tx, rx;
  std::deque<Event> events;
  std::vector<Bytes> held;
  Bytes filtered;  // scratch for withoutInvalidRecords()
  // What the handover to RecordProtection continues from (Config::releaseSslAfterHandshake): the newest protected
  // record OpenSSL wrote (sequence number and explicit nonce) and the newest one it accepted from the peer.
  std::uint16_t wroteEpoch = 0, readEpoch = 0;
  std::uint64_t wroteSeq = 0, wroteExplicitNonce = 0, newestRead = 0;
  bool peerDataSeen = false;
  // Implicit acknowledgement (RFC 6347 section 4.2.4): the peer cannot build its next flight without all of ours,
  // so once a message of it arrives, OpenSSL's read path must not resend our flight (it does when its timer expired
  // while the peer's flight is still coming in). Handshake progress of each side: (message_seq, fragment_offset)
  // of the newest epoch 0 handshake record, and whether a ChangeCipherSpec and an encrypted handshake record
  // (Finished) were seen. A record at or below the newest one is a retransmission.
  FlightProgress ownProgress, peerProgress;
  bool readingInput = false;   // inside process(): a retransmission now comes from OpenSSL's read path
  bool peerAnswered = false;   // a new peer handshake record arrived since our newest flight
  std::optional<RecordProtection> records;  // set once the SSL object is freed
  std::string cipher;                       // kept from the SSL object for cipherName()
  std::string srtpProfile;                  // the use_srtp profile negotiated, for srtpProfile()
  bool lastHoldsAppData = false;            // the newest queued datagram carries application data (datagramFor)
  std::size_t dataMtu = 0;                  // likewise, for maxApplicationPayload()

  explicit Impl(Config c) : cfg(std::move(c)) {}
  ~Impl() { SSL_free(ssl); }  // frees the BIO too

  // ---- OpenSSL glue -------------------------------------------------------------------------------------------

  static BIO_METHOD* bioMethod() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rtcpeer-dtls-datagram");
      BIO_meth_set_write(bm, bioWrite);
      BIO_meth_set_read(bm, bioRead);
      BIO_meth_set_ctrl(bm, bioCtrl);
      BIO_meth_set_create(bm, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return bm;
    }();
    return m;
  }

  // OpenSSL writes one DTLS record per BIO_write. Handshake records are packed into datagrams up to the MTU
  // (RFC 6347 section 4.1.1 allows several records per datagram), so a whole flight usually leaves as one datagram
  // and one loss costs one retransmission rather than several.
  static int bioWrite(BIO* b, const char* data, int len) {
    auto* self = static_cast<Impl*>(BIO_get_data(b));
    if (len <= 0) return 0;
    const auto n = static_cast<std::size_t>(len);
    const auto* p = reinterpret_cast<const std::uint8_t*>(data);
    self->noteWrittenRecords(p, n);
    if (self->handshakeDone) {
      self->queue(p, n);
      return len;
    }
    // During the handshake one write may hold several records of a flight: each is judged on its own.
    for (std::size_t at = 0; at < n;) {
      const std::size_t size =
          at + kRecordHeaderSize <= n ? std::min(n - at, kRecordHeaderSize + loadBe16(p + at + 11)) : n - at;
      const auto kind = self->ownProgress.advance(p + at, size);
      if (kind == FlightProgress::Record::New) self->peerAnswered = false;
      // A resend of our flight from the read path after the peer has begun its next one: useless, and some
      // stacks (werift) process a stale flight as a new one. A resend our timer asks for still goes out, since a
      // server's final flight runs no timer and is resent only when our flight reaches it again.
      if (kind != FlightProgress::Record::Resent || !self->readingInput || !self->peerAnswered) self->queue(p + at, size);
      at += size;
    }
    return len;
  }

  void queue(const std::uint8_t* p, std::size_t n) {
    Bytes& out = datagramFor(n, p[0] == kApplicationData);
    out.insert(out.end(), p, p + n);
  }

  // The datagram a record of `size` bytes goes into. An application-data record (one SCTP packet) always travels
  // alone, as browsers send them: aiortc reads one record per datagram (the rest waits in OpenSSL until the next
  // datagram arrives), so two SCTP packets in one datagram made it fall a packet further behind every time,
  // until its retransmission timer ran (echo stalls, 0.3 Mbit/s; docs/INTEROP.md). Handshake records share.
  Bytes& datagramFor(std::size_t size, bool appData) {
    Bytes* last = tx.back();
    if (last && !appData && !lastHoldsAppData && last->size() + size <= cfg.mtu) return *last;
    lastHoldsAppData = appData;
    return tx.push();
  }

  // Hands OpenSSL the current datagram exactly once; DTLS reads whole datagrams.
  static int bioRead(BIO* b, char* out, int len) {
    auto* self = static_cast<Impl*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (self->inputTaken) {
      BIO_set_retry_read(b);
      return -1;
    }
    self->inputTaken = true;
    const auto n = std::min(self->input.size(), static_cast<std::size_t>(std::max(len, 0)));
    std::memcpy(out, self->input.data(), n);
    return static_cast<int>(n);
  }

  // Only flush succeeds. Everything else reports 0, notably BIO_CTRL_DGRAM_GET_MTU_OVERHEAD (Config::mtu counts
  // UDP payload, so nothing sits below DTLS) and the pending counts (nothing is ever buffered in the BIO).
  static long bioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

  // Remembers the sequence number and explicit nonce of the newest protected record OpenSSL wrote, so that
  // RecordProtection continues after them and never reuses a GCM nonce under the same key.
  void noteWrittenRecords(const std::uint8_t* p, std::size_t n) {
    for (std::size_t at = 0; at + kRecordHeaderSize <= n;) {
      const std::uint8_t* h = p + at;
      const std::size_t length = loadBe16(h + 11);
      if (const std::uint16_t epoch = loadBe16(h + 3); epoch > 0) {
        wroteEpoch = epoch;
        wroteSeq = loadBe48(h + 5);
        if (length >= 8 && at + kRecordHeaderSize + 8 <= n) wroteExplicitNonce = loadBe64(h + kRecordHeaderSize);
      }
      at += kRecordHeaderSize + length;
    }
  }

  static Impl* of(const SSL* s) { return static_cast<Impl*>(SSL_get_app_data(s)); }

  // OpenSSL asks for the next timeout: 0 on a new flight, else the previous one (RFC 6347 section 4.2.4.1:
  // double on each retransmission).
  static unsigned int timerCallback(SSL* s, unsigned int previousUs) {
    const Impl* self = of(s);
    const auto initial = static_cast<std::uint64_t>(self->cfg.initialRetransmit.count());
    const auto cap = std::min<std::uint64_t>(static_cast<std::uint64_t>(self->cfg.maxRetransmit.count()), UINT32_MAX);
    const std::uint64_t next = previousUs == 0 ? initial : std::uint64_t{previousUs} * 2;
    return static_cast<unsigned int>(std::clamp<std::uint64_t>(next, 1000, std::max<std::uint64_t>(cap, 1000)));
  }

  // Replaces chain validation: WebRTC peers are self-signed and authenticated only by the SDP fingerprint
  // (RFC 8122 section 5, RFC 8827 section 6.5). A known mismatch fails the handshake with bad_certificate; if the
  // fingerprints are not known yet the check is repeated when the handshake ends.
  static int verifyCallback(X509_STORE_CTX* store, void*) {
    auto* s = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    Impl* self = of(s);
    if (self->cfg.remoteFingerprints.empty()) return 1;
    if (self->checkPeer(X509_STORE_CTX_get0_cert(store))) return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }

  static void infoCallback(const SSL* s, int where, int ret) {
    if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && (ret >> 8) == SSL3_AL_FATAL)
      of(s)->peerAlert = std::string("peer sent fatal alert: ") + SSL_alert_desc_string_long(ret);
  }

  bool checkPeer(X509* cert) {
    if (cert == nullptr) {
      verifyFailure = "peer presented no certificate";
      return false;
    }
    for (const auto& want : cfg.remoteFingerprints) {
      auto got = Fingerprint::of(cert, want.alg);
      if (got && got->digest == want.digest) return verified = true;
    }
    auto actual = Fingerprint::of(cert, HashAlg::Sha256);
    verifyFailure = "peer certificate matches no remote SDP fingerprint (it is " +
                    (actual ? actual->toSdp() : std::string("undigestable")) + ")";
    return false;
  }

  // One context for every endpoint: it holds only settings (the identity is set per SSL, which copies the
  // context's certificate slot anyway), and a context per connection cost ~N KiB of each. It is never changed
  // after creation, and SSL_new() on a shared context is thread-safe. Never freed: OpenSSL may clean up at exit
  // before static destructors would run.
  struct SharedContext {
    SSL_CTX* ctx = nullptr;
    std::string error;
  };
  static const SharedContext& context() {
    static const SharedContext shared = [] {
      SharedContext s;
      s.ctx = SSL_CTX_new(DTLS_method());
      if (!s.ctx) {
        s.error = "SSL_CTX_new: " + opensslError();
        return s;
      }
      const long opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION;
      SSL_CTX_set_options(s.ctx, static_cast<std::uint64_t>(opts));
      SSL_CTX_set_session_cache_mode(s.ctx, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_read_ahead(s.ctx, 0);
      SSL_CTX_set_verify(s.ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      SSL_CTX_set_cert_verify_callback(s.ctx, verifyCallback, nullptr);
      if (SSL_CTX_set_min_proto_version(s.ctx, DTLS1_2_VERSION) != 1 ||
          SSL_CTX_set_max_proto_version(s.ctx, DTLS1_2_VERSION) != 1 ||
          SSL_CTX_set_cipher_list(s.ctx, kCiphers) != 1 || SSL_CTX_set1_groups_list(s.ctx, "X25519:P-256") != 1 ||
          SSL_CTX_set_tlsext_use_srtp(s.ctx, kSrtpProfiles) != 0) {  // this one returns 0 on success
        s.error = "context setup: " + opensslError();
        SSL_CTX_free(s.ctx);
        s.ctx = nullptr;
      }
      return s;
    }();
    return shared;
  }

  Status setup() {
    if (!cfg.certificate) return fail("dtls: no certificate configured");
    const SharedContext& shared = context();
    if (!shared.ctx) return fail("dtls: " + shared.error);
    ERR_clear_error();
    ssl = SSL_new(shared.ctx);
    BIO* bio = BIO_new(bioMethod());
    if (!ssl || !bio) {
      BIO_free(bio);
      return fail("dtls: SSL_new: " + opensslError());
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl, bio, bio);
    if (SSL_use_certificate(ssl, cfg.certificate->x509()) != 1 ||
        SSL_use_PrivateKey(ssl, cfg.certificate->privateKey()) != 1 || SSL_check_private_key(ssl) != 1)
      return fail("dtls: identity: " + opensslError());
    SSL_set_app_data(ssl, this);
    SSL_set_info_callback(ssl, infoCallback);
    DTLS_set_timer_cb(ssl, timerCallback);
    if (DTLS_set_link_mtu(ssl, static_cast<long>(cfg.mtu)) != 1) return fail("dtls: MTU too small");
    return okStatus();
  }

  // ---- state machine ------------------------------------------------------------------------------------------

  void finish(State s, std::string why) {
    if (state == State::Closed || state == State::Failed) return;
    state = s;
    reason = why;
    retransmitAt = handshakeDeadline = kNever;
    held.clear();
    events.push_back(Event{s == State::Failed ? Event::Type::Failed : Event::Type::Closed, std::move(why)});
    RTCPEER_LOG(Debug, "dtls", (s == State::Failed ? "failed: " : "closed: ") << reason);
  }

  void failFromSsl(const char* during) {
    std::string why = !verifyFailure.empty() ? verifyFailure
                      : !peerAlert.empty()   ? peerAlert
                                             : std::string("DTLS ") + during + " failed: " + opensslError();
    ERR_clear_error();
    finish(State::Failed, std::move(why));
  }

  void updateDeadline() {
    timeval tv{};
    retransmitAt = state == State::Connecting && !handshakeDone && DTLSv1_get_timeout(ssl, &tv) == 1
                       ? now + Duration(std::int64_t{tv.tv_sec} * 1000000 + tv.tv_usec)
                       : kNever;
  }

  void driveHandshake() {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl);
    if (r == 1) {
      handshakeDone = true;
      if (const SRTP_PROTECTION_PROFILE* p = SSL_get_selected_srtp_profile(ssl)) srtpProfile = p->name;
      onHandshakeDone();
      return;
    }
    const int err = SSL_get_error(ssl, r);
    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) failFromSsl("handshake");
  }

  void onHandshakeDone() {
    if (!verified) {
      if (cfg.remoteFingerprints.empty()) return;  // wait for setRemoteFingerprints()
      if (!checkPeer(SSL_get0_peer_certificate(ssl))) {
        // The handshake is complete, so OpenSSL can no longer send bad_certificate for us: close instead, and
        // never read application data from an unauthenticated peer.
        SSL_shutdown(ssl);
        finish(State::Failed, verifyFailure);
        return;
      }
    }
    state = State::Connected;
    handshakeDeadline = kNever;
    events.push_back(Event{Event::Type::Connected, {}});
    RTCPEER_LOG(Debug, "dtls", "connected, " << SSL_get_cipher_name(ssl));
    readApplicationData();  // records that arrived with the final flight were buffered by OpenSSL
    releaseHeld();
  }

  void readApplicationData() {
    if (ERR_peek_error() != 0) ERR_clear_error();  // once: successful reads and WANT_READ leave the queue empty
    while (state == State::Connected) {
      std::uint8_t* buffer = readBuffer();
      const int n = SSL_read(ssl, buffer, kReadBufferSize);
      if (n > 0) {
        rx.push().assign(buffer, buffer + n);
        continue;
      }
      const int err = SSL_get_error(ssl, n);
      if (err == SSL_ERROR_ZERO_RETURN) finish(State::Closed, "peer sent close_notify");
      else if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) failFromSsl("read");
      return;
    }
  }

  // Records OpenSSL 3.0 must not see. RFC 6347 section 4.1.2.7: invalid records SHOULD be silently discarded, but
  // OpenSSL answers two kinds with a fatal alert, so one injected datagram could kill a connection:
  //  - application data in epoch 0 (never legitimate: it would be unprotected), answered with unexpected_message
  //    during the handshake;
  //  - protected records (epoch > 0) shorter than the AEAD's explicit nonce plus tag, answered with
  //    internal_error. Before a cipher is chosen no protected record can be legitimate at all.
  bool acceptable(std::uint8_t type, std::uint16_t epoch, std::size_t length) const {
    if (epoch == 0) return type != 23;
    const SSL_CIPHER* c = SSL_get_pending_cipher(ssl);
    if (c == nullptr) c = SSL_get_current_cipher(ssl);
    if (c == nullptr) return false;
    const std::size_t overhead = SSL_CIPHER_get_cipher_nid(c) == NID_chacha20_poly1305 ? 16 : 8 + 16;
    return length >= overhead;
  }

  ByteView withoutInvalidRecords(ByteView datagram) {
    ByteReader r(datagram);
    bool allValid = true;
    while (r.ok() && !r.empty()) {
      const std::uint8_t type = r.u8();
      r.skip(2);
      const std::uint16_t epoch = r.u16();
      r.skip(6);
      const std::uint16_t length = r.u16();
      r.skip(length);
      allValid &= !r.ok() || acceptable(type, epoch, length);
    }
    if (allValid) return datagram;  // also when malformed: OpenSSL discards what it cannot parse
    filtered.clear();
    r = ByteReader(datagram);
    while (!r.empty()) {
      const ByteView header = r.bytes(13);
      if (!r.ok()) break;  // a truncated tail is dropped with the invalid records
      const ByteView body = r.bytes(loadBe16(header.data() + 11));
      if (!r.ok()) break;
      if (!acceptable(header[0], loadBe16(header.data() + 3), body.size())) continue;
      filtered.insert(filtered.end(), header.begin(), header.end());
      filtered.insert(filtered.end(), body.begin(), body.end());
    }
    return filtered;
  }

  // OpenSSL 3.0's DTLS record layer writes into its buffer without allocating it, so released buffers must be
  // restored before any call that may read or write a record.
  bool ensureBuffers() {
    if (buffersReleased && SSL_alloc_buffers(ssl) != 1) {
      finish(State::Failed, "dtls: out of memory for the record buffers");
      return false;
    }
    buffersReleased = false;
    return true;
  }

  void process(ByteView datagram) {
    if (records) {
      for (ByteReader r(datagram); state == State::Connected;) {
        const auto record = nextRecord(r);
        if (!record) break;
        openRecord(*record);
      }
      return;
    }
    input = withoutInvalidRecords(datagram);
    if (input.empty() || !ensureBuffers()) return;
    if (!handshakeDone) {
      for (ByteReader r(input); const auto record = nextRecord(r);)
        if (peerProgress.advance(record->data(), record->size()) == FlightProgress::Record::New) peerAnswered = true;
      inputTaken = false;
      readingInput = true;
      driveHandshake();
      readingInput = false;
      inputTaken = true;
      input = {};
      return;
    }
    if (state != State::Connected) return;
    // Once connected OpenSSL gets one record at a time (a record never spans datagrams, RFC 6347 section 4.1.1, so
    // this is the same to it). Then a record OpenSSL returns data from is known to be authentic, its sequence
    // number may seed the replay window, and the handover can happen in the middle of a datagram.
    ByteReader r(input);
    while (state == State::Connected) {
      const auto record = nextRecord(r);
      if (!record) break;
      if (records) {
        openRecord(*record);
        continue;
      }
      const std::size_t delivered = rx.size();
      input = *record;
      inputTaken = false;
      readApplicationData();
      inputTaken = true;
      if ((*record)[0] != kApplicationData || rx.size() == delivered || state != State::Connected) continue;
      const std::uint16_t epoch = loadBe16(record->data() + 3);
      const std::uint64_t seq = loadBe48(record->data() + 5);
      newestRead = epoch == readEpoch ? std::max(newestRead, seq) : seq;
      readEpoch = epoch;
      peerDataSeen = true;
      releaseSsl();
    }
    input = {};
  }

  // The next whole record (header and body) of a datagram; nullopt at the end or at a truncated tail, which is
  // dropped (RFC 6347 section 4.1.2.7).
  static std::optional<ByteView> nextRecord(ByteReader& r) {
    if (r.empty()) return std::nullopt;
    const ByteView header = r.bytes(kRecordHeaderSize);
    if (!r.ok()) return std::nullopt;
    const std::size_t length = loadBe16(header.data() + 11);
    r.skip(length);
    if (!r.ok()) return std::nullopt;
    return ByteView(header.data(), kRecordHeaderSize + length);
  }

  // The handover (Config::releaseSslAfterHandshake). Safe once the peer sent protected application data: a DTLS
  // peer sends it only after its handshake finished, so neither side will retransmit a flight again (RFC 6347
  // section 4.2.4) and OpenSSL's handshake state is dead weight. Stale retransmissions that still arrive are
  // discarded (epoch 0, or a handshake record in our epoch).
  void releaseSsl() {
    if (!cfg.releaseSslAfterHandshake || records || !peerDataSeen || wroteEpoch != readEpoch) return;
    auto p = RecordProtection::fromHandshake(ssl, RecordSequence{readEpoch, wroteSeq + 1, nextExplicitNonce(),
                                                                 newestRead});
    if (!p) {  // e.g. a cipher RecordProtection does not know: OpenSSL keeps the connection
      RTCPEER_LOG(Warning, "dtls", "keeping OpenSSL's record layer: " << p.reason());
      cfg.releaseSslAfterHandshake = false;
      return;
    }
    cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
    dataMtu = DTLS_get_data_mtu(ssl);
    records.emplace(std::move(*p));
    RTCPEER_LOG(Debug, "dtls", "records handed over from OpenSSL at sequence " << wroteSeq + 1);
    SSL_free(ssl);
    ssl = nullptr;
    buffersReleased = false;
  }

  // The explicit GCM nonce RecordProtection starts from. Our records' epoch and sequence number (RFC 5288 section 3
  // allows it; BoringSSL, so Chromium, does it), unless that could repeat a nonce OpenSSL used under this key:
  // OpenSSL counts up from a random value, and wrote at most wroteSeq + 1 records in this epoch. werift reads an
  // encrypted alert's first two bytes (the nonce) as a plaintext alert when they look like one, so with a random
  // nonce it dropped our close_notify about one time in ten; the epoch's bytes (0, 1) never look like one.
  std::uint64_t nextExplicitNonce() const {
    const std::uint64_t ourFirst = (std::uint64_t{wroteEpoch} << 48) | (wroteSeq + 1);
    const std::uint64_t ourLast = (std::uint64_t{wroteEpoch} << 48) | 0xFFFF'FFFF'FFFFu;
    if (wroteExplicitNonce < wroteSeq) return wroteExplicitNonce + 1;  // OpenSSL's range wrapped: keep counting
    const std::uint64_t usedFirst = wroteExplicitNonce - wroteSeq;
    return usedFirst <= ourLast && ourFirst <= wroteExplicitNonce ? wroteExplicitNonce + 1 : ourFirst;
  }

  // After the handover. A record that fails is dropped on its own (RFC 6347 section 4.1.2.7).
  void openRecord(ByteView record) {
    Bytes& out = rx.push();
    out.resize(record.size());
    const auto opened = records->open(record, out.data());
    if (opened && opened->type == kApplicationData && opened->length > 0) {
      out.resize(opened->length);
      return;
    }
    rx.unpush();
    if (!opened) return;
    if (opened->type == kAlert && opened->length == 2) onAlert(out[0], out[1]);
    else if (opened->type == kHandshake && opened->length > 0 && isRenegotiation(out[0])) refuseRenegotiation();
    // Any other authentic record is a stale retransmission of the final flight: ignored.
  }

  // A new ClientHello from a client, or a HelloRequest from a server (RFC 5246 section 7.4.1.1).
  bool isRenegotiation(std::uint8_t handshakeType) const {
    return handshakeType == (cfg.role == Role::Server ? 1 : 0);
  }

  // As OpenSSL did before the handover (SSL_OP_NO_RENEGOTIATION): a no_renegotiation warning (RFC 5746 section
  // 4.5), after which the peer decides whether to go on without renegotiating.
  void refuseRenegotiation() {
    const std::uint8_t noRenegotiation[2] = {1, 100};
    if (auto s = seal(kAlert, noRenegotiation); !s) finish(State::Failed, s.reason());
  }

  void onAlert(std::uint8_t level, std::uint8_t description) {
    if (description == 0) finish(State::Closed, "peer sent close_notify");
    else if (level == 2)
      finish(State::Failed, std::string("peer sent fatal alert: ") + SSL_alert_desc_string_long(description));
  }

  Status seal(std::uint8_t type, ByteView plaintext) {
    Bytes& out = datagramFor(plaintext.size() + records->overhead(), type == kApplicationData);
    return records->seal(type, plaintext, out);
  }

  void hold(ByteView datagram) {
    if (held.size() < kMaxHeldDatagrams) held.emplace_back(datagram.begin(), datagram.end());
  }

  void releaseHeld() {
    auto pending = std::move(held);
    held.clear();
    for (const auto& d : pending) {
      if (state == State::Closed || state == State::Failed) break;
      process(d);
    }
  }

  bool awaitingFingerprints() const { return state == State::Connecting && handshakeDone; }
};

Endpoint::Endpoint(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {
  if (auto s = impl_->setup(); !s) impl_->finish(State::Failed, s.reason());
}
Endpoint::~Endpoint() = default;
Endpoint::Endpoint(Endpoint&&) noexcept = default;
Endpoint& Endpoint::operator=(Endpoint&&) noexcept = default;

Status Endpoint::setRole(Role role) {
  if (impl_->state != State::New) return fail("dtls: role can only change before start()");
  impl_->cfg.role = role;
  return okStatus();
}

void Endpoint::setRemoteFingerprints(std::vector<Fingerprint> fingerprints, Timestamp now) {
  Impl& m = *impl_;
  if (m.verified || m.state == State::Closed || m.state == State::Failed) return;
  m.cfg.remoteFingerprints = std::move(fingerprints);
  if (m.awaitingFingerprints() && !m.cfg.remoteFingerprints.empty()) {
    m.now = now;
    m.onHandshakeDone();
  }
}

void Endpoint::start(Timestamp now) {
  Impl& m = *impl_;
  if (m.state != State::New) return;
  m.now = now;
  m.state = State::Connecting;
  m.handshakeDeadline = now + m.cfg.handshakeTimeout;
  if (m.cfg.role == Role::Client) SSL_set_connect_state(m.ssl);
  else SSL_set_accept_state(m.ssl);
  m.driveHandshake();  // the client writes its ClientHello; the server just arms itself
  m.releaseHeld();
  m.updateDeadline();
}

void Endpoint::handleInput(ByteView datagram, Timestamp now) {
  Impl& m = *impl_;
  if (classify(datagram) != PacketKind::Dtls) return;
  m.now = now;
  switch (m.state) {
    case State::New: m.hold(datagram); return;
    case State::Closed:
    case State::Failed: return;
    case State::Connecting:
      if (m.awaitingFingerprints()) {
        m.hold(datagram);
        return;
      }
      [[fallthrough]];
    case State::Connected: m.process(datagram); break;
  }
  m.updateDeadline();
}

void Endpoint::handleTimeout(Timestamp now) {
  Impl& m = *impl_;
  m.now = now;
  if (m.state != State::Connecting) return;
  if (now >= m.handshakeDeadline) {
    m.finish(State::Failed, m.handshakeDone ? "remote fingerprints did not arrive in time" : "DTLS handshake timed out");
    return;
  }
  if (now >= m.retransmitAt) {
    ERR_clear_error();
    // Retransmits the current flight if OpenSSL's own timer agrees it expired (see ARCHITECTURE "## DTLS").
    const std::size_t queued = m.tx.size();
    if (DTLSv1_handle_timeout(m.ssl) < 0) {
      m.failFromSsl("retransmission");
      return;
    }
    // A flight is retransmitted only after a loss, and OpenSSL gives up after 12 retransmissions of one flight
    // (DTLS1_TMO_ALERT_COUNT). Sending each retransmitted datagram twice makes that budget last on very lossy
    // paths (at 50 % loss a round trip then succeeds 37 % of the time instead of 25 %); duplicates are discarded
    // by the peer's replay detection (RFC 6347 section 4.1.2.6).
    m.tx.repeatFrom(queued);
  }
  m.updateDeadline();
}

Timestamp Endpoint::nextDeadline() const noexcept { return earliest(impl_->retransmitAt, impl_->handshakeDeadline); }

Status Endpoint::send(ByteView appData, Timestamp now) {
  Impl& m = *impl_;
  if (m.state != State::Connected) return fail("dtls: not connected");
  if (appData.empty() || appData.size() > kMaxPlaintext)
    return fail("dtls: application record must be 1.." + std::to_string(kMaxPlaintext) + " bytes");
  m.now = now;
  if (m.records) {
    if (auto s = m.seal(kApplicationData, appData); !s) {
      m.finish(State::Failed, s.reason());
      return s;
    }
    return okStatus();
  }
  if (!m.ensureBuffers()) return fail(m.reason);
  // SSL_get_error() needs an empty queue, but this endpoint leaves none behind: clearing an empty queue on every
  // record cost a few percent of the data path, peeking is cheaper.
  if (ERR_peek_error() != 0) ERR_clear_error();
  const int n = SSL_write(m.ssl, appData.data(), static_cast<int>(appData.size()));
  if (n == static_cast<int>(appData.size())) return okStatus();
  m.failFromSsl("write");
  return fail(m.reason);
}

void Endpoint::close(Timestamp now) {
  Impl& m = *impl_;
  m.now = now;
  if (m.state == State::Closed || m.state == State::Failed) return;
  if (m.records) {
    const std::uint8_t closeNotify[2] = {1, 0};  // warning, close_notify
    (void)m.seal(kAlert, closeNotify);
  } else if (m.state != State::New && m.ensureBuffers()) {
    ERR_clear_error();
    SSL_shutdown(m.ssl);  // queues close_notify (RFC 5246 section 7.2.1); we do not wait for the peer's
  }
  m.finish(State::Closed, "closed locally");
}

State Endpoint::state() const noexcept { return impl_->state; }
Role Endpoint::role() const noexcept { return impl_->cfg.role; }
const std::string& Endpoint::failureReason() const noexcept { return impl_->reason; }

std::size_t Endpoint::maxApplicationPayload() const noexcept {
  const Impl& m = *impl_;
  if (m.state != State::Connected) return 0;
  return m.records ? m.dataMtu : DTLS_get_data_mtu(m.ssl);
}

std::string Endpoint::cipherName() const {
  const Impl& m = *impl_;
  if (m.records) return m.cipher;
  const SSL_CIPHER* c = m.handshakeDone && m.ssl ? SSL_get_current_cipher(m.ssl) : nullptr;
  return c ? SSL_CIPHER_get_name(c) : std::string();
}

const std::string& Endpoint::srtpProfile() const noexcept { return impl_->srtpProfile; }

bool Endpoint::sslReleased() const noexcept { return impl_->records.has_value(); }

void Endpoint::releaseBuffers() {
  Impl& m = *impl_;
  if (m.state != State::Connected || m.buffersReleased) return;
  if (m.ssl && SSL_free_buffers(m.ssl) == 1) m.buffersReleased = true;
  m.tx.release();
  m.rx.release();
  m.filtered = {};
}

std::optional<ByteView> Endpoint::pollTransmit() { return impl_->tx.pop(); }
std::optional<ByteView> Endpoint::pollApplicationData() { return impl_->rx.pop(); }

std::optional<Event> Endpoint::pollEvent() {
  if (impl_->events.empty()) return std::nullopt;
  Event e = std::move(impl_->events.front());
  impl_->events.pop_front();
  return e;
}

}  // namespace rtcpeer::dtls
