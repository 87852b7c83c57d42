// DTLS identity for WebRTC: a self-signed ECDSA P-256 certificate and SDP fingerprints (RFC 8122 section 5,
// RFC 8827 section 6.5). Peers authenticate each other only through the fingerprints exchanged in SDP, so no
// certificate chain or CA is involved.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/bytes.hpp"
#include "common/random.hpp"
#include "common/result.hpp"
#include "common/time.hpp"

using X509 = struct x509_st;
using EVP_PKEY = struct evp_pkey_st;

namespace rtcpeer::dtls {

/// The hash functions of RFC 8122 section 5 ("Textual Names for Hash Function Algorithms") we accept.
enum class HashAlg : std::uint8_t { Sha1, Sha224, Sha256, Sha384, Sha512 };

/// "sha-256" etc., the SDP spelling.
std::string_view hashName(HashAlg alg) noexcept;
/// Parses an SDP hash name case-insensitively ("SHA-256" == "sha-256").
std::optional<HashAlg> parseHashName(std::string_view name) noexcept;
/// Digest length in bytes.
std::size_t digestSize(HashAlg alg) noexcept;

/// A certificate fingerprint as carried in `a=fingerprint:<hash> <hex>`.
struct Fingerprint {
  HashAlg alg = HashAlg::Sha256;
  Bytes digest;

  /// Parses the attribute value "sha-256 AB:CD:..." (hash name and hex case-insensitive; the digest length must
  /// match the hash).
  static Result<Fingerprint> parse(std::string_view sdpValue);
  /// The fingerprint of a DER-encoded certificate (X509 *) under `alg`.
  static Result<Fingerprint> of(X509* cert, HashAlg alg);
  /// "sha-256 AB:CD:..." (upper-case hex).
  [[nodiscard]] std::string toSdp() const;

  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

/// An ECDSA P-256 key and a self-signed X.509 certificate over it. Immutable once made, so one instance may be
/// shared by any number of Endpoints (a server making many connections pays key generation once).
class Certificate {
 public:
  struct Options {
    std::string commonName = "rtcpeer";
    /// Validity window around the creation time (RFC 8827 only needs it to be valid "now"; browsers use ~30 days).
    Duration notBeforeSkew = std::chrono::hours(24);
    Duration lifetime = std::chrono::hours(24 * 30);
  };

  /// Generates a fresh key pair and certificate. The serial comes from `random`; the key from OpenSSL's CSPRNG.
  /// The validity window is based on the wall clock, the only place rtcpeer's DTLS layer reads it, since X.509
  /// validity is defined in wall-clock time.
  static Result<std::shared_ptr<const Certificate>> generate(Random& random = defaultRandom());
  static Result<std::shared_ptr<const Certificate>> generate(const Options& options, Random& random = defaultRandom());

  /// Loads a PEM certificate and its PEM private key (any key type OpenSSL signs with; they must match), so an
  /// application can keep one identity, and hence one fingerprint, across connections and restarts. The last
  /// identity read is remembered while any connection still uses it: a server giving every connection the same
  /// PEM pays OpenSSL 3's PEM decoding (~0.5 ms) once, not per connection (thread-safe; nothing else is shared).
  static Result<std::shared_ptr<const Certificate>> fromPem(std::string_view certificatePem,
                                                           std::string_view privateKeyPem);
  /// The certificate and the unencrypted private key (PKCS #8), PEM encoded: what fromPem() reads.
  [[nodiscard]] Result<std::pair<std::string, std::string>> toPem() const;

  ~Certificate();
  Certificate(const Certificate&) = delete;
  Certificate& operator=(const Certificate&) = delete;

  /// "AB:CD:..." for `alg`.
  [[nodiscard]] std::string fingerprint(HashAlg alg = HashAlg::Sha256) const;
  /// The SHA-256 fingerprint as SDP wants it: "sha-256 AB:CD:...".
  [[nodiscard]] std::string sdpFingerprint() const;
  /// The SHA-256 fingerprint as a value.
  [[nodiscard]] const Fingerprint& sha256() const noexcept { return sha256_; }

  /// Borrowed OpenSSL handles (owned by this object) for the DTLS endpoint.
  [[nodiscard]] X509* x509() const noexcept { return x509_; }
  [[nodiscard]] EVP_PKEY* privateKey() const noexcept { return key_; }

 private:
  static Result<std::shared_ptr<const Certificate>> readPem(std::string_view certificatePem,
                                                           std::string_view privateKeyPem);
  Certificate(X509* x509, EVP_PKEY* key, Fingerprint sha256) noexcept
      : x509_(x509), key_(key), sha256_(std::move(sha256)) {}
  X509* x509_;
  EVP_PKEY* key_;
  Fingerprint sha256_;
};

}  // namespace rtcpeer::dtls
