// The DTLS endpoint (endpoint.hpp): its state machine (handshake, fingerprint check, application data, close and
// failure, datagrams held until start() or the fingerprints), the datagram packing of outgoing records, and the
// handover of the record layer from OpenSSL to RecordProtection once the handshake is over. The OpenSSL glue is in
// endpoint_openssl.cpp, the record filter in record_filter.cpp, the shared state in endpoint_impl.hpp.
#include "dtls/endpoint.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "common/log.hpp"
#include "dtls/demux.hpp"
#include "dtls/endpoint_impl.hpp"

namespace rtcpeer::dtls {

using namespace detail;

// Decrypted records land here before being copied into the endpoint's receive ring: one buffer per thread, since
// it holds nothing between calls (a buffer per endpoint was 18 KiB of every idle connection).
std::uint8_t* readBuffer() {
  thread_local std::unique_ptr<std::uint8_t[]> buffer(new std::uint8_t[kReadBufferSize]);
  return buffer.get();
}

// The datagram a record of `size` bytes goes into. An application-data record (one SCTP packet) always travels
// alone, as browsers send them: aiortc reads one record per datagram (the rest waits in OpenSSL until the next
// datagram arrives), so two SCTP packets in one datagram made it fall a packet further behind every time,
// until its retransmission timer ran (echo stalls, 0.3 Mbit/s; docs/INTEROP.md).
Bytes& Endpoint::Impl::datagramFor(std::size_t size, bool appData) {
  Bytes* last = tx.back();
  if (last && !appData && !lastHoldsAppData && last->size() + size <= cfg.mtu) return *last;
  lastHoldsAppData = appData;
  return tx.push();
}

void Endpoint::Impl::finish(State s, std::string why) {
  if (state == State::Closed || state == State::Failed) return;
  state = s;
  reason = why;
  retransmitAt = handshakeDeadline = kNever;
  held.clear();
  events.push_back(Event{s == State::Failed ? Event::Type::Failed : Event::Type::Closed, std::move(why)});
  RTCPEER_LOG(Debug, "dtls", (s == State::Failed ? "failed: " : "closed: ") << reason);
}

void Endpoint::Impl::failFromSsl(const char* during) {
  std::string why = !verifyFailure.empty() ? verifyFailure
                    : !peerAlert.empty()   ? peerAlert
                                           : std::string("DTLS ") + during + " failed: " + opensslError();
  ERR_clear_error();
  finish(State::Failed, std::move(why));
}

void Endpoint::Impl::updateDeadline() {
  timeval tv{};
  retransmitAt = state == State::Connecting && !handshakeDone && DTLSv1_get_timeout(ssl, &tv) == 1
                     ? now + Duration(std::int64_t{tv.tv_sec} * 1000000 + tv.tv_usec)
                     : kNever;
}

void Endpoint::Impl::driveHandshake() {
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

void Endpoint::Impl::onHandshakeDone() {
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

void Endpoint::Impl::readApplicationData() {
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

// OpenSSL 3.0's DTLS record layer writes into its buffer without allocating it, so released buffers must be
// restored before any call that may read or write a record.
bool Endpoint::Impl::ensureBuffers() {
  if (buffersReleased && SSL_alloc_buffers(ssl) != 1) {
    finish(State::Failed, "dtls: out of memory for the record buffers");
    return false;
  }
  buffersReleased = false;
  return true;
}

void Endpoint::Impl::process(ByteView datagram) {
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

// The handover (Config::releaseSslAfterHandshake). Safe once the peer sent protected application data: a DTLS
// peer sends it only after its handshake finished, so neither side will retransmit a flight again (RFC 6347
// section 4.2.4) and OpenSSL's handshake state is dead weight. Stale retransmissions that still arrive are
// discarded (epoch 0, or a handshake record in our epoch).
void Endpoint::Impl::releaseSsl() {
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
std::uint64_t Endpoint::Impl::nextExplicitNonce() const {
  const std::uint64_t ourFirst = (std::uint64_t{wroteEpoch} << 48) | (wroteSeq + 1);
  const std::uint64_t ourLast = (std::uint64_t{wroteEpoch} << 48) | 0xFFFF'FFFF'FFFFu;
  if (wroteExplicitNonce < wroteSeq) return wroteExplicitNonce + 1;  // OpenSSL's range wrapped: keep counting
  const std::uint64_t usedFirst = wroteExplicitNonce - wroteSeq;
  return usedFirst <= ourLast && ourFirst <= wroteExplicitNonce ? wroteExplicitNonce + 1 : ourFirst;
}

// After the handover. A record that fails is dropped on its own (RFC 6347 section 4.1.2.7).
void Endpoint::Impl::openRecord(ByteView record) {
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
bool Endpoint::Impl::isRenegotiation(std::uint8_t handshakeType) const {
  return handshakeType == (cfg.role == Role::Server ? 1 : 0);
}

// As OpenSSL did before the handover (SSL_OP_NO_RENEGOTIATION): a no_renegotiation warning (RFC 5746 section
// 4.5), after which the peer decides whether to go on without renegotiating.
void Endpoint::Impl::refuseRenegotiation() {
  const std::uint8_t noRenegotiation[2] = {1, 100};
  if (auto s = seal(kAlert, noRenegotiation); !s) finish(State::Failed, s.reason());
}

void Endpoint::Impl::onAlert(std::uint8_t level, std::uint8_t description) {
  if (description == 0) finish(State::Closed, "peer sent close_notify");
  else if (level == 2)
    finish(State::Failed, std::string("peer sent fatal alert: ") + SSL_alert_desc_string_long(description));
}

Status Endpoint::Impl::seal(std::uint8_t type, ByteView plaintext) {
  Bytes& out = datagramFor(plaintext.size() + records->overhead(), type == kApplicationData);
  return records->seal(type, plaintext, out);
}

void Endpoint::Impl::hold(ByteView datagram) {
  if (held.size() < kMaxHeldDatagrams) held.emplace_back(datagram.begin(), datagram.end());
}

void Endpoint::Impl::releaseHeld() {
  auto pending = std::move(held);
  held.clear();
  for (const auto& d : pending) {
    if (state == State::Closed || state == State::Failed) break;
    process(d);
  }
}


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
    // Retransmits the current flight if OpenSSL's own timer agrees it expired (see src/dtls/README.md).
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
