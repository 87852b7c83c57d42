// Private to src/dtls: the DTLS endpoint's state (Endpoint::Impl) and the few helpers its files share. The
// endpoint's concerns each have a file: the OpenSSL glue (endpoint_openssl.cpp: the shared context, the datagram
// BIO, the timer and verification callbacks; library_context.cpp: the OpenSSL library context the shared context
// lives in), the record filter (record_filter.cpp: what OpenSSL must not see,
// splitting datagrams into records), and the state machine with the handover to RecordProtection (endpoint.cpp).
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "dtls/endpoint.hpp"
#include "dtls/record_protection.hpp"

namespace rtcpeer::dtls {

namespace detail {

constexpr std::size_t kMaxPlaintext = 16384;  // RFC 6347 section 4.1 / TLS 1.2 record limit
constexpr std::size_t kMaxHeldDatagrams = 32;  // datagrams held before start() / before fingerprints arrive
constexpr int kReadBufferSize = 16384 + 2048;  // > any DTLS record
constexpr std::uint8_t kChangeCipherSpec = 20, kAlert = 21, kHandshake = 22,
                       kApplicationData = 23;  // RFC 5246 section 6.2.1

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

/// The newest error on OpenSSL's queue as text (and the queue emptied).
std::string opensslError();

/// The library context of the endpoints' SSL_CTX (library_context.cpp): OpenSSL's default provider with a short
/// catalogue of key decoders, so parsing the peer's certificate is cheap. Null: OpenSSL's default context.
OSSL_LIB_CTX* libraryContext();

// How far one side's handshake got, for the implicit acknowledgement in Impl (RFC 6347 section 4.2.4).
struct FlightProgress {
  std::int64_t newest = -1;  // (message_seq, fragment_offset) of the newest epoch 0 handshake record
  bool ccs = false, encrypted = false;
  enum class Record { New, Resent, Other };  // Other: not part of a flight (alerts, application data)
  Record advance(const std::uint8_t* record, std::size_t n);  // record_filter.cpp
};

}  // namespace detail

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
  detail::BufferQueue tx, rx;
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
  detail::FlightProgress ownProgress, peerProgress;
  bool readingInput = false;  // inside process(): a retransmission now comes from OpenSSL's read path
  bool peerAnswered = false;  // a new peer handshake record arrived since our newest flight
  std::optional<RecordProtection> records;  // set once the SSL object is freed
  std::string cipher;                       // kept from the SSL object for cipherName()
  std::string srtpProfile;                  // the use_srtp profile negotiated, for srtpProfile()
  bool lastHoldsAppData = false;            // the newest queued datagram carries application data (datagramFor)
  std::size_t dataMtu = 0;                  // likewise, for maxApplicationPayload()

  explicit Impl(Config c) : cfg(std::move(c)) {}
  ~Impl() { SSL_free(ssl); }  // frees the BIO too

  // ---- OpenSSL glue (endpoint_openssl.cpp) --------------------------------------------------------------------

  struct SharedContext {
    SSL_CTX* ctx = nullptr;
    std::string error;
  };
  static const SharedContext& context();
  Status setup();
  static BIO_METHOD* bioMethod();
  static int bioWrite(BIO* b, const char* data, int len);
  static int bioRead(BIO* b, char* out, int len);
  static long bioCtrl(BIO*, int cmd, long, void*);
  void noteWrittenRecords(const std::uint8_t* p, std::size_t n);
  void queue(const std::uint8_t* p, std::size_t n);
  static Impl* of(const SSL* s);
  static unsigned int timerCallback(SSL* s, unsigned int previousUs);
  static int verifyCallback(X509_STORE_CTX* store, void*);
  static void infoCallback(const SSL* s, int where, int ret);
  bool checkPeer(X509* cert);

  // ---- record filter (record_filter.cpp) ----------------------------------------------------------------------

  bool acceptable(std::uint8_t type, std::uint16_t epoch, std::size_t length) const;
  ByteView withoutInvalidRecords(ByteView datagram);
  static std::optional<ByteView> nextRecord(ByteReader& r);

  // ---- state machine and handover (endpoint.cpp) --------------------------------------------------------------

  Bytes& datagramFor(std::size_t size, bool appData);
  void finish(State s, std::string why);
  void failFromSsl(const char* during);
  void updateDeadline();
  void driveHandshake();
  void onHandshakeDone();
  void readApplicationData();
  bool ensureBuffers();
  void process(ByteView datagram);
  void releaseSsl();
  std::uint64_t nextExplicitNonce() const;
  void openRecord(ByteView record);
  bool isRenegotiation(std::uint8_t handshakeType) const;
  void refuseRenegotiation();
  void onAlert(std::uint8_t level, std::uint8_t description);
  Status seal(std::uint8_t type, ByteView plaintext);
  void hold(ByteView datagram);
  void releaseHeld();
  bool awaitingFingerprints() const { return state == State::Connecting && handshakeDone; }
};

}  // namespace rtcpeer::dtls
