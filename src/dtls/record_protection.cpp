// DTLS 1.2 record protection after the handover (record_protection.hpp): the keys exported from OpenSSL, sealing
// and opening AEAD records, and the replay window (RFC 6347 section 4.1.2.6).
#include "dtls/record_protection.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>
#include <openssl/ssl.h>

#include <cstring>
#include <string>

namespace rtcpeer::dtls {

namespace {

constexpr std::size_t kTagSize = 16;
constexpr std::size_t kExplicitNonceSize = 8;  // RFC 5288 section 3, GCM only
constexpr std::size_t kMaxPlaintext = 16384;
constexpr std::uint64_t kMaxSequence = (std::uint64_t{1} << 48) - 1;
constexpr std::uint8_t kVersionMajor = 0xFE, kVersionMinor = 0xFD;  // DTLS 1.2 on the wire

struct AeadInfo {
  const char* name;
  std::size_t keySize, ivSize;
};

AeadInfo info(Aead a) {
  switch (a) {
    case Aead::Aes128Gcm: return {"AES-128-GCM", 16, 4};
    case Aead::Aes256Gcm: return {"AES-256-GCM", 32, 4};
    case Aead::ChaCha20Poly1305: return {"ChaCha20-Poly1305", 32, 12};
  }
  return {"", 0, 0};
}

// RFC 6347 section 4.1.2.1: the additional data is seq_num (epoch and sequence number as one 64-bit value),
// type, version and the plaintext length (RFC 5246 section 6.2.3.3).
void additionalData(std::uint8_t out[13], std::uint64_t epochSeq, std::uint8_t type, std::size_t length) noexcept {
  storeBe64(out, epochSeq);
  out[8] = type;
  out[9] = kVersionMajor;
  out[10] = kVersionMinor;
  storeBe16(out + 11, static_cast<std::uint16_t>(length));
}

}  // namespace

void RecordProtection::CipherCtxFree::operator()(EVP_CIPHER_CTX* c) const noexcept { EVP_CIPHER_CTX_free(c); }

RecordProtection::RecordProtection(RecordProtection&&) noexcept = default;
RecordProtection& RecordProtection::operator=(RecordProtection&&) noexcept = default;
RecordProtection::~RecordProtection() {
  OPENSSL_cleanse(writeIv_, sizeof writeIv_);
  OPENSSL_cleanse(readIv_, sizeof readIv_);
}

Result<RecordProtection> RecordProtection::create(const Keys& keys, const RecordSequence& seq) {
  const AeadInfo ai = info(keys.aead);
  if (keys.writeKey.size() != ai.keySize || keys.readKey.size() != ai.keySize || keys.writeIv.size() != ai.ivSize ||
      keys.readIv.size() != ai.ivSize)
    return fail(std::string("dtls: wrong key or IV size for ") + ai.name);
  if (seq.nextWrite > kMaxSequence || seq.newestRead > kMaxSequence)
    return fail("dtls: record sequence number out of range");
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, ai.name, nullptr);
  if (cipher == nullptr) return fail(std::string("dtls: OpenSSL has no ") + ai.name);
  RecordProtection p;
  p.aead_ = keys.aead;
  p.write_.reset(EVP_CIPHER_CTX_new());
  p.read_.reset(EVP_CIPHER_CTX_new());
  const bool ok = p.write_ && p.read_ &&
                  EVP_CipherInit_ex(p.write_.get(), cipher, nullptr, keys.writeKey.data(), nullptr, 1) == 1 &&
                  EVP_CipherInit_ex(p.read_.get(), cipher, nullptr, keys.readKey.data(), nullptr, 0) == 1;
  EVP_CIPHER_free(cipher);  // the contexts hold their own references
  if (!ok) return fail(std::string("dtls: cannot set up ") + ai.name);
  std::memcpy(p.writeIv_, keys.writeIv.data(), ai.ivSize);
  std::memcpy(p.readIv_, keys.readIv.data(), ai.ivSize);
  p.epoch_ = seq.epoch;
  p.nextWrite_ = seq.nextWrite;
  p.nextExplicit_ = seq.nextExplicitNonce;
  p.newest_ = seq.newestRead;
  return p;
}

Result<RecordProtection> RecordProtection::fromHandshake(const SSL* ssl, const RecordSequence& seq) {
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  const SSL_SESSION* session = SSL_get_session(ssl);
  if (cipher == nullptr || session == nullptr) return fail("dtls: no negotiated cipher");
  Aead aead;
  switch (SSL_CIPHER_get_cipher_nid(cipher)) {
    case NID_aes_128_gcm: aead = Aead::Aes128Gcm; break;
    case NID_aes_256_gcm: aead = Aead::Aes256Gcm; break;
    case NID_chacha20_poly1305: aead = Aead::ChaCha20Poly1305; break;
    default: return fail(std::string("dtls: no record protection for ") + SSL_CIPHER_get_name(cipher));
  }
  const EVP_MD* prfHash = SSL_CIPHER_get_handshake_digest(cipher);
  if (prfHash == nullptr) return fail("dtls: no PRF hash");

  // RFC 5246 section 6.3: key_block = PRF(master_secret, "key expansion", server_random + client_random), cut
  // into client_write_key, server_write_key, client_write_IV, server_write_IV (AEAD suites have no MAC keys).
  std::uint8_t master[SSL_MAX_MASTER_KEY_LENGTH];
  const std::size_t masterSize = SSL_SESSION_get_master_key(session, master, sizeof master);
  constexpr char kLabel[] = "key expansion";
  std::uint8_t seed[sizeof kLabel - 1 + 2 * SSL3_RANDOM_SIZE];
  std::memcpy(seed, kLabel, sizeof kLabel - 1);
  const bool randoms = SSL_get_server_random(ssl, seed + sizeof kLabel - 1, SSL3_RANDOM_SIZE) == SSL3_RANDOM_SIZE &&
                       SSL_get_client_random(ssl, seed + sizeof kLabel - 1 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE) ==
                           SSL3_RANDOM_SIZE;
  const AeadInfo ai = info(aead);
  std::uint8_t block[2 * 32 + 2 * 12];
  const std::size_t blockSize = 2 * ai.keySize + 2 * ai.ivSize;
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "TLS1-PRF", nullptr);
  EVP_KDF_CTX* kctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
  EVP_KDF_free(kdf);
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(EVP_MD_get0_name(prfHash)), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, masterSize),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof seed), OSSL_PARAM_construct_end()};
  const bool derived = kctx && masterSize > 0 && randoms && EVP_KDF_derive(kctx, block, blockSize, params) == 1;
  EVP_KDF_CTX_free(kctx);
  OPENSSL_cleanse(master, sizeof master);
  if (!derived) {
    OPENSSL_cleanse(block, sizeof block);
    return fail("dtls: key block derivation failed");
  }
  const std::uint8_t* clientKey = block;
  const std::uint8_t* serverKey = block + ai.keySize;
  const std::uint8_t* clientIv = block + 2 * ai.keySize;
  const std::uint8_t* serverIv = clientIv + ai.ivSize;
  const bool client = SSL_is_server(ssl) == 0;
  const Keys keys{aead, ByteView(client ? clientKey : serverKey, ai.keySize),
                  ByteView(client ? clientIv : serverIv, ai.ivSize),
                  ByteView(client ? serverKey : clientKey, ai.keySize),
                  ByteView(client ? serverIv : clientIv, ai.ivSize)};
  auto p = create(keys, seq);
  OPENSSL_cleanse(block, sizeof block);
  return p;
}

std::size_t RecordProtection::overhead() const noexcept {
  return kRecordHeaderSize + (aead_ == Aead::ChaCha20Poly1305 ? 0 : kExplicitNonceSize) + kTagSize;
}

// GCM (RFC 5288 section 3): the 4-byte salt, then the record's explicit nonce. ChaCha20-Poly1305 (RFC 7905
// section 2): the 12-byte IV XORed with the 64-bit epoch and sequence number, left-padded with zeros.
void RecordProtection::nonce(const std::uint8_t* iv, std::uint64_t epochSeq, const std::uint8_t* explicitNonce,
                             std::uint8_t out[12]) const noexcept {
  if (aead_ != Aead::ChaCha20Poly1305) {
    std::memcpy(out, iv, 4);
    std::memcpy(out + 4, explicitNonce, kExplicitNonceSize);
    return;
  }
  std::memcpy(out, iv, 12);
  std::uint8_t s[8];
  storeBe64(s, epochSeq);
  for (int i = 0; i < 8; ++i) out[4 + i] ^= s[i];
}

Status RecordProtection::seal(std::uint8_t type, ByteView plaintext, Bytes& out) {
  if (plaintext.size() > kMaxPlaintext) return fail("dtls: record plaintext over 16384 bytes");
  if (nextWrite_ > kMaxSequence) return fail("dtls: record sequence numbers exhausted");
  // Consumed before encrypting: a sequence number or explicit nonce is never used twice, even after an error.
  const std::uint64_t epochSeq = (std::uint64_t{epoch_} << 48) | nextWrite_++;
  const std::uint64_t explicitNonce = nextExplicit_++;
  const bool gcm = aead_ != Aead::ChaCha20Poly1305;
  const std::size_t start = out.size();
  const std::size_t bodySize = overhead() - kRecordHeaderSize + plaintext.size();
  out.resize(start + kRecordHeaderSize + bodySize);
  std::uint8_t* h = out.data() + start;
  h[0] = type;
  h[1] = kVersionMajor;
  h[2] = kVersionMinor;
  storeBe64(h + 3, epochSeq);  // epoch and 48-bit sequence number, as on the wire
  storeBe16(h + 11, static_cast<std::uint16_t>(bodySize));
  std::uint8_t* ct = h + kRecordHeaderSize;
  if (gcm) {
    storeBe64(ct, explicitNonce);
    ct += kExplicitNonceSize;
  }
  std::uint8_t aad[13], iv[12];
  additionalData(aad, epochSeq, type, plaintext.size());
  nonce(writeIv_, epochSeq, h + kRecordHeaderSize, iv);
  EVP_CIPHER_CTX* c = write_.get();
  int n = 0, tail = 0;
  const bool ok = EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, iv) == 1 &&
                  EVP_EncryptUpdate(c, nullptr, &n, aad, sizeof aad) == 1 &&
                  (plaintext.empty() ||  // OpenSSL 3.0 takes an Update without input for Final
                   EVP_EncryptUpdate(c, ct, &n, plaintext.data(), static_cast<int>(plaintext.size())) == 1) &&
                  EVP_EncryptFinal_ex(c, ct + n, &tail) == 1 &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kTagSize, ct + plaintext.size()) == 1;
  if (!ok) {
    out.resize(start);
    return fail("dtls: record encryption failed");
  }
  return okStatus();
}

std::optional<RecordProtection::Opened> RecordProtection::open(ByteView record, std::uint8_t* plaintext) {
  if (record.size() < overhead()) return std::nullopt;
  const std::uint8_t* h = record.data();
  const std::uint16_t epoch = loadBe16(h + 3);
  const std::uint64_t seq = loadBe48(h + 5);
  if (h[1] != kVersionMajor || h[2] != kVersionMinor || epoch != epoch_ ||
      loadBe16(h + 11) != record.size() - kRecordHeaderSize || !fresh(seq))
    return std::nullopt;
  const std::uint64_t epochSeq = (std::uint64_t{epoch} << 48) | seq;
  const std::uint8_t* ct = h + kRecordHeaderSize;
  if (aead_ != Aead::ChaCha20Poly1305) ct += kExplicitNonceSize;
  const std::size_t length = record.size() - overhead();
  std::uint8_t aad[13], iv[12], tag[kTagSize];
  additionalData(aad, epochSeq, h[0], length);
  nonce(readIv_, epochSeq, h + kRecordHeaderSize, iv);
  std::memcpy(tag, ct + length, kTagSize);  // SET_TAG takes a mutable pointer
  EVP_CIPHER_CTX* c = read_.get();
  int n = 0, tail = 0;
  const bool ok = EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, iv) == 1 &&
                  EVP_DecryptUpdate(c, nullptr, &n, aad, sizeof aad) == 1 &&
                  (length == 0 || EVP_DecryptUpdate(c, plaintext, &n, ct, static_cast<int>(length)) == 1) &&
                  EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kTagSize, tag) == 1 &&
                  EVP_DecryptFinal_ex(c, plaintext + n, &tail) == 1;
  if (!ok) return std::nullopt;  // forged or corrupted: the replay window is not advanced
  markSeen(seq);
  return Opened{h[0], length};
}

bool RecordProtection::fresh(std::uint64_t seq) const noexcept {
  if (seq > newest_) return true;
  const std::uint64_t age = newest_ - seq;
  return age < 64 && ((seen_ >> age) & 1) == 0;
}

void RecordProtection::markSeen(std::uint64_t seq) noexcept {
  if (seq > newest_) {
    const std::uint64_t shift = seq - newest_;
    seen_ = shift >= 64 ? 1 : (seen_ << shift) | 1;
    newest_ = seq;
  } else {
    seen_ |= std::uint64_t{1} << (newest_ - seq);
  }
}

}  // namespace rtcpeer::dtls
