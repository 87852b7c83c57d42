// DTLS identity (certificate.hpp): the self-signed certificate (generated, or to and from PEM) and SDP
// fingerprints (RFC 8122 section 5): computed over a certificate, parsed and written.
#include "dtls/certificate.hpp"

#include <openssl/bn.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <array>
#include <cctype>
#include <mutex>

#include "dtls/endpoint_impl.hpp"

namespace rtcpeer::dtls {

namespace {

struct HashInfo {
  std::string_view name;
  std::size_t size;
};
constexpr std::array<HashInfo, 5> kHashes{{
    {"sha-1", 20}, {"sha-224", 28}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64}}};

const EVP_MD* evpOf(HashAlg alg) noexcept {
  switch (alg) {
    case HashAlg::Sha1: return EVP_sha1();
    case HashAlg::Sha224: return EVP_sha224();
    case HashAlg::Sha256: return EVP_sha256();
    case HashAlg::Sha384: return EVP_sha384();
    case HashAlg::Sha512: return EVP_sha512();
  }
  return nullptr;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

int hexValue(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string_view hashName(HashAlg alg) noexcept { return kHashes[static_cast<std::size_t>(alg)].name; }
std::size_t digestSize(HashAlg alg) noexcept { return kHashes[static_cast<std::size_t>(alg)].size; }

std::optional<HashAlg> parseHashName(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kHashes.size(); ++i)
    if (iequals(name, kHashes[i].name)) return static_cast<HashAlg>(i);
  return std::nullopt;
}

Result<Fingerprint> Fingerprint::parse(std::string_view v) {
  // RFC 8122 section 5: fingerprint-attribute = hash-func SP fingerprint; fingerprint = 2UHEX *(":" 2UHEX).
  // We accept lower-case hex too (RFC 4572 implementations differ) and surrounding whitespace.
  auto trim = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  v = trim(v);
  const auto sp = v.find(' ');
  if (sp == std::string_view::npos) return fail("fingerprint: expected '<hash> <hex>'");
  const auto alg = parseHashName(v.substr(0, sp));
  if (!alg) return fail("fingerprint: unsupported hash '" + std::string(v.substr(0, sp)) + "'");
  const std::string_view hex = trim(v.substr(sp + 1));
  Fingerprint fp{*alg, {}};
  fp.digest.reserve(digestSize(*alg));
  for (std::size_t i = 0; i < hex.size(); i += 3) {
    const int hi = hexValue(hex[i]);
    const int lo = i + 1 < hex.size() ? hexValue(hex[i + 1]) : -1;
    if (hi < 0 || lo < 0 || (i + 2 < hex.size() && hex[i + 2] != ':'))
      return fail("fingerprint: malformed hex at offset " + std::to_string(i));
    fp.digest.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  if (fp.digest.size() != digestSize(*alg) || hex.back() == ':')
    return fail("fingerprint: " + std::string(hashName(*alg)) + " digest must be " +
                std::to_string(digestSize(*alg)) + " bytes");
  return fp;
}

Result<Fingerprint> Fingerprint::of(X509* cert, HashAlg alg) {
  Fingerprint fp{alg, Bytes(EVP_MAX_MD_SIZE)};
  unsigned int n = 0;
  // X509_digest hashes the DER encoding of the whole certificate (RFC 8122 section 5).
  if (cert == nullptr || X509_digest(cert, evpOf(alg), fp.digest.data(), &n) != 1)
    return fail("fingerprint: cannot digest certificate");
  fp.digest.resize(n);
  return fp;
}

std::string Fingerprint::toSdp() const { return std::string(hashName(alg)) + ' ' + toHex(digest, ':'); }

Result<std::shared_ptr<const Certificate>> Certificate::generate(Random& random) {
  return generate(Options{}, random);
}

Result<std::shared_ptr<const Certificate>> Certificate::generate(const Options& options, Random& random) {
  // Made in the endpoints' library context, so signing with the key needs no export into it per new key.
  OSSL_LIB_CTX* context = detail::libraryContext();
  EVP_PKEY* key = EVP_PKEY_Q_keygen(context, nullptr, "EC", "P-256");
  X509* x = X509_new_ex(context, nullptr);
  auto cleanupFail = [&](const char* what) -> Failure {
    X509_free(x);
    EVP_PKEY_free(key);
    return fail(std::string("certificate: ") + what);
  };
  if (key == nullptr || x == nullptr) return cleanupFail("key generation failed");

  // A positive 64-bit random serial (RFC 5280 section 4.1.2.2: positive, at most 20 octets).
  std::uint8_t serialBytes[8];
  random.fill(serialBytes);
  serialBytes[0] &= 0x7f;
  serialBytes[0] |= 0x01;  // never zero
  BIGNUM* serial = BN_bin2bn(serialBytes, sizeof serialBytes, nullptr);
  const bool serialOk = serial != nullptr && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) != nullptr;
  BN_free(serial);
  if (!serialOk) return cleanupFail("serial");

  X509_NAME* name = X509_get_subject_name(x);
  const auto notBefore = -std::chrono::duration_cast<std::chrono::seconds>(options.notBeforeSkew).count();
  const auto notAfter = std::chrono::duration_cast<std::chrono::seconds>(options.lifetime).count();
  if (X509_set_version(x, 2) != 1 ||  // v3
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(options.commonName.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(x, name) != 1 || X509_gmtime_adj(X509_getm_notBefore(x), notBefore) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(x), notAfter) == nullptr || X509_set_pubkey(x, key) != 1 ||
      X509_sign(x, key, EVP_sha256()) <= 0)
    return cleanupFail("building or signing failed");

  auto fp = Fingerprint::of(x, HashAlg::Sha256);
  if (!fp) return cleanupFail("digest failed");
  return std::shared_ptr<const Certificate>(new Certificate(x, key, std::move(*fp)));
}

namespace {
// The identity fromPem() read last, kept weakly (see fromPem in the header). One entry: a process serves with
// one identity, and a process juggling several only loses the saving.
struct PemMemo {
  std::mutex mutex;
  std::string certificatePem, privateKeyPem;
  std::weak_ptr<const Certificate> certificate;
};
PemMemo& pemMemo() {
  static PemMemo memo;
  return memo;
}
}  // namespace

Result<std::shared_ptr<const Certificate>> Certificate::fromPem(std::string_view certificatePem,
                                                                std::string_view privateKeyPem) {
  PemMemo& memo = pemMemo();
  {
    std::lock_guard lock(memo.mutex);
    if (auto cached = memo.certificate.lock();
        cached && memo.certificatePem == certificatePem && memo.privateKeyPem == privateKeyPem)
      return cached;
  }
  auto read = readPem(certificatePem, privateKeyPem);
  if (read) {
    std::lock_guard lock(memo.mutex);
    memo.certificatePem = certificatePem;
    memo.privateKeyPem = privateKeyPem;
    memo.certificate = *read;
  }
  return read;
}

Result<std::shared_ptr<const Certificate>> Certificate::readPem(std::string_view certificatePem,
                                                                std::string_view privateKeyPem) {
  auto read = [](std::string_view pem, auto reader) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    auto* object = bio != nullptr ? reader(bio, nullptr, nullptr, nullptr) : nullptr;
    BIO_free(bio);
    return object;
  };
  X509* x = read(certificatePem, PEM_read_bio_X509);
  // A passphrase-protected key fails here: the null callback supplies no passphrase.
  EVP_PKEY* key = read(privateKeyPem, PEM_read_bio_PrivateKey);
  ERR_clear_error();  // what failed is reported below; leave no stale entries for the DTLS endpoint to find
  auto cleanupFail = [&](const char* what) -> Failure {
    X509_free(x);
    EVP_PKEY_free(key);
    return fail(std::string("certificate: ") + what);
  };
  if (x == nullptr) return cleanupFail("no PEM certificate could be read");
  if (key == nullptr) return cleanupFail("no unencrypted PEM private key could be read");
  if (X509_check_private_key(x, key) != 1) {
    ERR_clear_error();
    return cleanupFail("the private key does not belong to the certificate");
  }
  auto fp = Fingerprint::of(x, HashAlg::Sha256);
  if (!fp) return cleanupFail("digest failed");
  return std::shared_ptr<const Certificate>(new Certificate(x, key, std::move(*fp)));
}

Result<std::pair<std::string, std::string>> Certificate::toPem() const {
  auto write = [](auto writer) -> std::optional<std::string> {
    BIO* bio = BIO_new(BIO_s_mem());
    std::optional<std::string> out;
    if (bio != nullptr && writer(bio) == 1) {
      char* data = nullptr;
      const long n = BIO_get_mem_data(bio, &data);
      out.emplace(data, static_cast<std::size_t>(n));
    }
    BIO_free(bio);
    return out;
  };
  auto cert = write([&](BIO* b) { return PEM_write_bio_X509(b, x509_); });
  auto key = write([&](BIO* b) { return PEM_write_bio_PrivateKey(b, key_, nullptr, nullptr, 0, nullptr, nullptr); });
  if (!cert || !key) return fail("certificate: PEM encoding failed");
  return std::pair{std::move(*cert), std::move(*key)};
}

Certificate::~Certificate() {
  X509_free(x509_);
  EVP_PKEY_free(key_);
}

std::string Certificate::fingerprint(HashAlg alg) const {
  if (alg == HashAlg::Sha256) return toHex(sha256_.digest, ':');
  auto fp = Fingerprint::of(x509_, alg);
  return fp ? toHex(fp->digest, ':') : std::string();
}

std::string Certificate::sdpFingerprint() const { return sha256_.toSdp(); }

}  // namespace rtcpeer::dtls
