// The DTLS endpoint's OpenSSL glue: the context shared by every endpoint (DTLS 1.2, browsers' ECDHE suites,
// use_srtp), the per-connection SSL object and its identity, the datagram BIO that hands OpenSSL one datagram and
// collects the records it writes, the retransmission timer callback and the certificate check against the SDP
// fingerprints (RFC 8122 section 5).
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "dtls/endpoint_impl.hpp"

namespace rtcpeer::dtls {

using namespace detail;

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

}  // namespace

namespace detail {

std::string opensslError() {
  unsigned long e = 0, last = 0;
  while ((e = ERR_get_error()) != 0) last = e;
  if (!last) return "unknown error";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

}  // namespace detail

// One context for every endpoint: it holds only settings (the identity is set per SSL, which copies the
// context's certificate slot anyway), and a context per connection cost ~N KiB of each. It is never changed
// after creation, and SSL_new() on a shared context is thread-safe. Never freed: OpenSSL may clean up at exit
// before static destructors would run. It lives in libraryContext() (library_context.cpp), whose short catalogue
// makes OpenSSL 3.0's per-handshake parse of the peer's certificate ~3x cheaper.
const Endpoint::Impl::SharedContext& Endpoint::Impl::context() {
  static const SharedContext shared = [] {
    SharedContext s;
    s.ctx = SSL_CTX_new_ex(libraryContext(), nullptr, DTLS_method());
    if (!s.ctx) {
      s.error = "SSL_CTX_new: " + opensslError();
      return s;
    }
    const long opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_QUERY_MTU | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION;
    SSL_CTX_set_options(s.ctx, static_cast<std::uint64_t>(opts));
    SSL_CTX_set_session_cache_mode(s.ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_read_ahead(s.ctx, 0);
    // Our certificate is self-signed and sent alone: no chain building from the (empty) store per handshake.
    SSL_CTX_set_mode(s.ctx, SSL_MODE_NO_AUTO_CHAIN);
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

Status Endpoint::Impl::setup() {
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

BIO_METHOD* Endpoint::Impl::bioMethod() {
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
int Endpoint::Impl::bioWrite(BIO* b, const char* data, int len) {
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
    // A resend of our flight from the read path after the peer has begun its next one: useless, and some stacks
    // (werift) process a stale flight as a new one. A resend our timer asks for still goes out, since a server's
    // final flight runs no timer and is resent only when our flight reaches it again.
    if (kind != FlightProgress::Record::Resent || !self->readingInput || !self->peerAnswered)
      self->queue(p + at, size);
    at += size;
  }
  return len;
}

void Endpoint::Impl::queue(const std::uint8_t* p, std::size_t n) {
  Bytes& out = datagramFor(n, p[0] == kApplicationData);
  out.insert(out.end(), p, p + n);
}

// Hands OpenSSL the current datagram exactly once; DTLS reads whole datagrams.
int Endpoint::Impl::bioRead(BIO* b, char* out, int len) {
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
long Endpoint::Impl::bioCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

// Remembers the sequence number and explicit nonce of the newest protected record OpenSSL wrote, so that
// RecordProtection continues after them and never reuses a GCM nonce under the same key.
void Endpoint::Impl::noteWrittenRecords(const std::uint8_t* p, std::size_t n) {
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

Endpoint::Impl* Endpoint::Impl::of(const SSL* s) { return static_cast<Impl*>(SSL_get_app_data(s)); }

// OpenSSL asks for the next timeout: 0 on a new flight, else the previous one (RFC 6347 section 4.2.4.1:
// double on each retransmission).
unsigned int Endpoint::Impl::timerCallback(SSL* s, unsigned int previousUs) {
  const Impl* self = of(s);
  const auto initial = static_cast<std::uint64_t>(self->cfg.initialRetransmit.count());
  const auto cap = std::min<std::uint64_t>(static_cast<std::uint64_t>(self->cfg.maxRetransmit.count()), UINT32_MAX);
  const std::uint64_t next = previousUs == 0 ? initial : std::uint64_t{previousUs} * 2;
  return static_cast<unsigned int>(std::clamp<std::uint64_t>(next, 1000, std::max<std::uint64_t>(cap, 1000)));
}

// Replaces chain validation: WebRTC peers are self-signed and authenticated only by the SDP fingerprint
// (RFC 8122 section 5, RFC 8827 section 6.5). A known mismatch fails the handshake with bad_certificate; if the
// fingerprints are not known yet the check is repeated when the handshake ends.
int Endpoint::Impl::verifyCallback(X509_STORE_CTX* store, void*) {
  auto* s = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  Impl* self = of(s);
  if (self->cfg.remoteFingerprints.empty()) return 1;
  if (self->checkPeer(X509_STORE_CTX_get0_cert(store))) return 1;
  X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
  return 0;
}

void Endpoint::Impl::infoCallback(const SSL* s, int where, int ret) {
  if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && (ret >> 8) == SSL3_AL_FATAL)
    of(s)->peerAlert = std::string("peer sent fatal alert: ") + SSL_alert_desc_string_long(ret);
}

bool Endpoint::Impl::checkPeer(X509* cert) {
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

}  // namespace rtcpeer::dtls
