// DTLS 1.2 record protection for an established connection (RFC 6347 section 4.1): sealing and opening records
// with the AEAD keys a finished OpenSSL handshake negotiated.
//
// Why: OpenSSL 3.0 keeps ~40 KiB per DTLS connection after the handshake (the 21 KiB handshake buffer `init_buf`
// it never frees for DTLS over UDP, the SSL object, the peer's certificate), and its record path costs more per
// record than the AEAD itself. Once the handshake is over and the peer has proved it finished too, the endpoint
// moves the connection's keys and sequence state here and frees the SSL object (see Endpoint, "## DTLS" in
// src/dtls/README.md). All cryptography stays OpenSSL's: the key block comes from its TLS 1.2 PRF (EVP_KDF
// "TLS1-PRF") and records are sealed with its EVP AEADs. This file only frames records, builds nonces and
// additional data, and keeps the replay window.
//
// Supported: the suites Endpoint offers, AES-128-GCM and AES-256-GCM (RFC 5288: 4-byte salt + 8-byte explicit
// nonce carried in the record) and ChaCha20-Poly1305 (RFC 7905: 12-byte IV XORed with the sequence number).
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace rtcpeer::dtls {

inline constexpr std::size_t kRecordHeaderSize = 13;  // type, version, epoch, 48-bit sequence, length

enum class Aead : std::uint8_t { Aes128Gcm, Aes256Gcm, ChaCha20Poly1305 };

/// Where the record layer continues from when it takes over: the next sequence number and explicit nonce to
/// write, and the newest peer record already accepted (all older ones count as seen by the replay window).
struct RecordSequence {
  std::uint16_t epoch = 1;
  std::uint64_t nextWrite = 0;          ///< 48-bit record sequence number of the next record we send
  std::uint64_t nextExplicitNonce = 0;  ///< GCM only: explicit nonce of the next record we send
  std::uint64_t newestRead = 0;         ///< newest peer sequence number accepted; it and all before count as seen
};

class RecordProtection {
 public:
  struct Keys {
    Aead aead = Aead::Aes128Gcm;
    ByteView writeKey, writeIv, readKey, readIv;  ///< IVs: 4 bytes (GCM salt) or 12 (ChaCha20-Poly1305)
  };

  /// From raw keys (tests and fuzzing; the endpoint uses fromHandshake()).
  static Result<RecordProtection> create(const Keys& keys, const RecordSequence& seq);
  /// Derives the key block of the connection `ssl` has completed (RFC 5246 section 6.3) for our side of it.
  static Result<RecordProtection> fromHandshake(const SSL* ssl, const RecordSequence& seq);

  RecordProtection(RecordProtection&&) noexcept;
  RecordProtection& operator=(RecordProtection&&) noexcept;
  ~RecordProtection();

  [[nodiscard]] Aead aead() const noexcept { return aead_; }
  /// Bytes a record adds to its plaintext: header, explicit nonce (GCM) and tag.
  [[nodiscard]] std::size_t overhead() const noexcept;

  /// Appends one protected record of content `type` carrying `plaintext` (at most 16384 bytes) to `out`.
  Status seal(std::uint8_t type, ByteView plaintext, Bytes& out);

  struct Opened {
    std::uint8_t type;
    std::size_t length;  ///< plaintext bytes written
  };
  /// Authenticates and decrypts one record (`record` = header + body, as split by the caller) into `plaintext`,
  /// which must hold the body's size. nullopt means the record is to be discarded silently (RFC 6347 section
  /// 4.1.2.7): another epoch, a replay, too short, or failed authentication.
  std::optional<Opened> open(ByteView record, std::uint8_t* plaintext);

 private:
  struct CipherCtxFree {
    void operator()(EVP_CIPHER_CTX* c) const noexcept;
  };
  using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

  RecordProtection() = default;
  bool fresh(std::uint64_t seq) const noexcept;
  void markSeen(std::uint64_t seq) noexcept;
  void nonce(const std::uint8_t* iv, std::uint64_t epochSeq, const std::uint8_t* explicitNonce,
             std::uint8_t out[12]) const noexcept;

  Aead aead_ = Aead::Aes128Gcm;
  CipherCtx write_, read_;
  std::uint8_t writeIv_[12]{}, readIv_[12]{};
  std::uint16_t epoch_ = 1;
  std::uint64_t nextWrite_ = 0, nextExplicit_ = 0;
  // Replay window (RFC 6347 section 4.1.2.6): bit i set = sequence number newest_ - i was accepted.
  std::uint64_t newest_ = 0, seen_ = ~std::uint64_t{0};
};

}  // namespace rtcpeer::dtls
