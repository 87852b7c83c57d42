#include "stun/stun.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cassert>
#include <cstdio>
#include <initializer_list>
#include <string>

namespace rtcpeer::stun {
namespace {

constexpr std::size_t kMiSize = 20;       // HMAC-SHA1
constexpr std::size_t kMi256Size = 32;    // HMAC-SHA256, full length when we send it
constexpr std::size_t kFingerprintSize = 4;

constexpr std::size_t padded(std::size_t n) noexcept { return (n + 3) & ~std::size_t{3}; }

std::string hex16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04X", v);
  return buf;
}

/// Comprehension-required types this codec parses (RFC 8489 14, RFC 8445 16.1, RFC 8656 18).
bool knownRequired(std::uint16_t t) noexcept {
  switch (t) {
    case attr::MappedAddress: case attr::Username: case attr::MessageIntegrity: case attr::ErrorCode:
    case attr::UnknownAttributes: case attr::ChannelNumber: case attr::Lifetime: case attr::XorPeerAddress:
    case attr::Data: case attr::Realm: case attr::Nonce: case attr::XorRelayedAddress:
    case attr::RequestedAddressFamily: case attr::EvenPort: case attr::RequestedTransport:
    case attr::DontFragment: case attr::MessageIntegritySha256: case attr::PasswordAlgorithm:
    case attr::Userhash: case attr::XorMappedAddress: case attr::ReservationToken: case attr::Priority:
    case attr::UseCandidate:
      return true;
    default:
      return false;
  }
}

constexpr std::array<std::uint32_t, 256> makeCrcTable() noexcept {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;  // reflected 0x04C11DB7
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = makeCrcTable();

/// One HMAC context per digest and thread, made on first use with its digest already set: a MAC then costs one keyed
/// init, not an allocation plus a by-name digest fetch (about 5x cheaper for a connectivity check).
EVP_MAC_CTX* hmacContext(bool sha256) noexcept {
  struct Contexts {
    EVP_MAC_CTX* ctx[2] = {nullptr, nullptr};
    ~Contexts() {
      for (EVP_MAC_CTX* c : ctx) EVP_MAC_CTX_free(c);
    }
  };
  thread_local Contexts contexts;
  EVP_MAC_CTX*& c = contexts.ctx[sha256 ? 1 : 0];
  if (!c) {
    EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    c = mac ? EVP_MAC_CTX_new(mac) : nullptr;
    EVP_MAC_free(mac);  // the context keeps its own reference
    char* digest = const_cast<char*>(sha256 ? OSSL_DIGEST_NAME_SHA2_256 : OSSL_DIGEST_NAME_SHA1);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    if (c && EVP_MAC_CTX_set_params(c, params) != 1) {
      EVP_MAC_CTX_free(c);
      c = nullptr;
    }
  }
  return c;
}

/// HMAC over the concatenation of `parts`, so a parsed message can be hashed with a patched header length without
/// copying it. `out` receives the full digest (20 or 32 bytes).
bool hmac(bool sha256, ByteView key, std::initializer_list<ByteView> parts, std::uint8_t* out) noexcept {
  EVP_MAC_CTX* ctx = hmacContext(sha256);
  if (!ctx) return false;
  // A null key would make OpenSSL reuse the previous one; an empty HMAC key is legal, so pass a valid pointer.
  static const std::uint8_t kEmpty = 0;
  bool ok = EVP_MAC_init(ctx, key.empty() ? &kEmpty : key.data(), key.size(), nullptr) == 1;
  for (ByteView p : parts) ok = ok && EVP_MAC_update(ctx, p.data(), p.size()) == 1;
  const std::size_t want = sha256 ? 32 : 20;
  std::size_t n = 0;
  return ok && EVP_MAC_final(ctx, out, &n, want) == 1 && n == want;
}

template <std::size_t N>
std::array<std::uint8_t, N> digestOf(const EVP_MD* md, std::initializer_list<std::string_view> parts) {
  std::array<std::uint8_t, N> out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestInit_ex(ctx, md, nullptr) == 1;
  for (std::string_view p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  unsigned n = 0;
  ok = ok && EVP_DigestFinal_ex(ctx, out.data(), &n) == 1 && n == N;
  EVP_MD_CTX_free(ctx);
  assert(ok && "OpenSSL digest failed");
  (void)ok;
  return out;
}

/// Checks an HMAC attribute whose header starts at `at`: the MAC covers the message up to the attribute, with the
/// header length rewritten to end right after the attribute (RFC 8489 14.5, 14.6).
bool checkMac(ByteView msg, std::size_t at, bool sha256, ByteView key) noexcept {
  const std::size_t len = loadBe16(msg.data() + at + 2);
  if (len > (sha256 ? kMi256Size : kMiSize)) return false;
  std::uint8_t lengthField[2];
  storeBe16(lengthField, static_cast<std::uint16_t>(at + 4 + len - kHeaderSize));
  std::array<std::uint8_t, 32> mac{};
  if (!hmac(sha256, key, {msg.first(2), ByteView(lengthField), msg.subspan(4, at - 4)}, mac.data())) return false;
  return CRYPTO_memcmp(mac.data(), msg.data() + at + 4, len) == 0;
}

std::optional<SocketAddress> decodeAddress(ByteView v, const std::uint8_t* mask) noexcept {
  ByteReader r(v);
  r.u8();  // reserved
  const std::uint8_t family = r.u8();
  std::uint16_t port = r.u16();
  if (mask) port ^= static_cast<std::uint16_t>(kMagicCookie >> 16);
  if (family == 0x01 && r.remaining() == 4) {
    std::array<std::uint8_t, 4> ip{};
    r.copyTo(ip);
    if (mask) for (std::size_t i = 0; i < 4; ++i) ip[i] ^= mask[i];
    return SocketAddress::v4(ip, port);
  }
  if (family == 0x02 && r.remaining() == 16) {
    std::array<std::uint8_t, 16> ip{};
    r.copyTo(ip);
    if (mask) for (std::size_t i = 0; i < 16; ++i) ip[i] ^= mask[i];
    return SocketAddress::v6(ip, port);
  }
  return std::nullopt;
}

}  // namespace

TransactionId randomTransactionId(Random& random) {
  TransactionId id;
  random.fill(id);
  return id;
}

std::uint32_t crc32(ByteView data) noexcept {
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t b : data) c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool looksLikeStun(ByteView b) noexcept {
  return b.size() >= kHeaderSize && (b[0] & 0xC0) == 0 && loadBe32(b.data() + 4) == kMagicCookie &&
         (loadBe16(b.data() + 2) & 3) == 0 && kHeaderSize + loadBe16(b.data() + 2) == b.size();
}

Result<Message> parse(ByteView b) {
  if (b.size() < kHeaderSize) return fail("STUN: " + std::to_string(b.size()) + " bytes, shorter than the header");
  ByteReader r(b);
  const std::uint16_t type = r.u16();
  const std::uint16_t length = r.u16();
  if (type & 0xC000) return fail("STUN: top two bits of the message type are not zero");
  if (r.u32() != kMagicCookie) return fail("STUN: bad magic cookie");
  if (length % 4) return fail("STUN: message length " + std::to_string(length) + " is not a multiple of 4");
  if (kHeaderSize + length != b.size()) {
    return fail("STUN: message length " + std::to_string(length) + " does not match the " +
                std::to_string(b.size() - kHeaderSize) + " bytes after the header");
  }
  r.skip(12);

  Message m;
  m.data_ = b;
  m.type_ = type;
  m.end_ = b.size();
  while (!r.empty()) {
    const std::size_t at = r.offset();
    const std::uint16_t t = r.u16();
    const std::uint16_t len = r.u16();
    r.skip(padded(len));
    if (!r.ok()) return fail("STUN: attribute " + hex16(t) + " of length " + std::to_string(len) + " overruns the message");
    // FINGERPRINT is always the last attribute (RFC 8489 14.7).
    if (m.fp_) return fail("STUN: attribute " + hex16(t) + " after FINGERPRINT");
    // Everything after MESSAGE-INTEGRITY(-SHA256) except the integrity/fingerprint attributes is ignored
    // (RFC 8489 14.5, 14.6); find() never looks past the first of them.
    const bool afterIntegrity = m.mi_ || m.mi256_;
    switch (t) {
      case attr::MessageIntegrity:
        if (len != kMiSize) return fail("STUN: MESSAGE-INTEGRITY length " + std::to_string(len) + " is not 20");
        // After MESSAGE-INTEGRITY-SHA256 only FINGERPRINT counts, so a later MESSAGE-INTEGRITY is ignored.
        if (!afterIntegrity) m.mi_ = at;
        break;
      case attr::MessageIntegritySha256:
        if (len < 16 || len > kMi256Size || len % 4) {
          return fail("STUN: MESSAGE-INTEGRITY-SHA256 length " + std::to_string(len) + " not in 16..32 step 4");
        }
        if (!m.mi256_) m.mi256_ = at;
        break;
      case attr::Fingerprint:
        if (len != kFingerprintSize) return fail("STUN: FINGERPRINT length " + std::to_string(len) + " is not 4");
        m.fp_ = at;
        break;
      default:
        if (!afterIntegrity && attr::comprehensionRequired(t) && !knownRequired(t)) {
          bool seen = false;
          for (std::size_t i = 0; i < m.unknownCount_; ++i) seen = seen || m.unknown_[i] == t;
          if (!seen && m.unknownCount_ < m.unknown_.size()) m.unknown_[m.unknownCount_++] = t;
        }
        continue;
    }
    if (m.end_ == b.size()) m.end_ = at;
  }
  return m;
}

TransactionId Message::transactionId() const noexcept {
  TransactionId id{};
  if (data_.size() >= kHeaderSize) std::memcpy(id.data(), data_.data() + 8, id.size());
  return id;
}

std::optional<ByteView> Message::find(std::uint16_t type) const noexcept {
  for (std::size_t at = kHeaderSize; at < end_;) {
    const std::uint16_t n = loadBe16(data_.data() + at + 2);
    if (loadBe16(data_.data() + at) == type) return data_.subspan(at + 4, n);
    at += 4 + padded(n);
  }
  return std::nullopt;
}

std::optional<SocketAddress> Message::xorAddress(std::uint16_t type) const noexcept {
  auto v = find(type);
  if (!v) return std::nullopt;
  // The mask is the magic cookie followed by the transaction id: exactly header bytes 4..19 (RFC 8489 14.2).
  return decodeAddress(*v, data_.data() + 4);
}

std::optional<SocketAddress> Message::address(std::uint16_t type) const noexcept {
  auto v = find(type);
  return v ? decodeAddress(*v, nullptr) : std::nullopt;
}

std::optional<std::string_view> Message::string(std::uint16_t type) const noexcept {
  auto v = find(type);
  if (!v) return std::nullopt;
  return asString(*v);
}

std::optional<std::uint32_t> Message::u32(std::uint16_t type) const noexcept {
  auto v = find(type);
  if (!v || v->size() != 4) return std::nullopt;
  return loadBe32(v->data());
}

std::optional<std::uint64_t> Message::u64(std::uint16_t type) const noexcept {
  auto v = find(type);
  if (!v || v->size() != 8) return std::nullopt;
  return ByteReader(*v).u64();
}

std::optional<ErrorCode> Message::errorCode() const noexcept {
  auto v = find(attr::ErrorCode);
  if (!v || v->size() < 4) return std::nullopt;
  const int cls = (*v)[2] & 0x07;
  const int number = (*v)[3];
  if (cls < 3 || cls > 6 || number > 99) return std::nullopt;  // RFC 8489 14.8: 300..699
  return ErrorCode{cls * 100 + number, asString(v->subspan(4))};
}

std::optional<std::span<const std::uint16_t>> Message::unknownAttributes(
    std::array<std::uint16_t, 32>& storage) const noexcept {
  auto v = find(attr::UnknownAttributes);
  if (!v || v->size() % 2) return std::nullopt;
  ByteReader r(*v);
  std::size_t n = 0;
  while (!r.empty() && n < storage.size()) storage[n++] = r.u16();
  return std::span<const std::uint16_t>(storage.data(), n);
}

std::optional<std::uint8_t> Message::requestedTransport() const noexcept {
  auto v = find(attr::RequestedTransport);
  if (!v || v->size() != 4) return std::nullopt;
  return (*v)[0];
}

std::optional<std::uint16_t> Message::channelNumber() const noexcept {
  auto v = find(attr::ChannelNumber);
  if (!v || v->size() != 4) return std::nullopt;
  return loadBe16(v->data());
}

bool Message::checkIntegrity(ByteView key) const noexcept {
  return mi_ && checkMac(data_, mi_, false, key);
}

bool Message::checkIntegritySha256(ByteView key) const noexcept {
  return mi256_ && checkMac(data_, mi256_, true, key);
}

bool Message::fingerprintValid() const noexcept {
  // FINGERPRINT is last, so the received header length already ends after it, as the CRC requires.
  return fp_ && (crc32(data_.first(fp_)) ^ kFingerprintXor) == loadBe32(data_.data() + fp_ + 4);
}

// ---- MessageBuilder ----

MessageBuilder::MessageBuilder(Bytes& out, Method method, Class cls, const TransactionId& id)
    : MessageBuilder(out, messageType(method, cls), id) {}

MessageBuilder::MessageBuilder(Bytes& out, std::uint16_t type, const TransactionId& id) : out_(out) {
  out_.clear();
  ByteWriter w(out_);
  w.u16(type);
  w.u16(0);
  w.u32(kMagicCookie);
  w.bytes(ByteView(id));
}

std::size_t MessageBuilder::beginAttribute(std::uint16_t type, std::size_t length) {
  assert(length <= 0xFFFF);
  ByteWriter w(out_);
  const std::size_t at = w.size();
  w.u16(type);
  w.u16(static_cast<std::uint16_t>(length));
  return at;
}

void MessageBuilder::endAttribute() {
  while (out_.size() % 4) out_.push_back(pad_);
  assert(out_.size() - kHeaderSize <= 0xFFFF && "STUN message over 64 KiB");
  storeBe16(out_.data() + 2, static_cast<std::uint16_t>(out_.size() - kHeaderSize));
}

MessageBuilder& MessageBuilder::addBytes(std::uint16_t type, ByteView value) {
  beginAttribute(type, value.size());
  out_.insert(out_.end(), value.begin(), value.end());
  endAttribute();
  return *this;
}

MessageBuilder& MessageBuilder::addU32(std::uint16_t type, std::uint32_t value) {
  std::uint8_t b[4];
  storeBe32(b, value);
  return addBytes(type, ByteView(b));
}

MessageBuilder& MessageBuilder::addU64(std::uint16_t type, std::uint64_t value) {
  std::uint8_t b[8];
  storeBe32(b, static_cast<std::uint32_t>(value >> 32));
  storeBe32(b + 4, static_cast<std::uint32_t>(value));
  return addBytes(type, ByteView(b));
}

MessageBuilder& MessageBuilder::addAddress(std::uint16_t type, const SocketAddress& address) {
  assert(address.valid());
  if (!address.valid()) return *this;
  const std::size_t n = address.addressLength();
  beginAttribute(type, 4 + n);
  ByteWriter w(out_);
  w.u8(0);
  w.u8(address.isV4() ? 0x01 : 0x02);
  w.u16(address.port());
  w.bytes(ByteView(address.bytes().data(), n));
  endAttribute();
  return *this;
}

MessageBuilder& MessageBuilder::addXorAddress(std::uint16_t type, const SocketAddress& address) {
  assert(address.valid());
  if (!address.valid()) return *this;
  const std::size_t n = address.addressLength();
  beginAttribute(type, 4 + n);
  ByteWriter w(out_);
  w.u8(0);
  w.u8(address.isV4() ? 0x01 : 0x02);
  w.u16(static_cast<std::uint16_t>(address.port() ^ (kMagicCookie >> 16)));
  // Mask: magic cookie + transaction id = header bytes 4..19 (RFC 8489 14.2). Index, not pointer: out_ may grow.
  for (std::size_t i = 0; i < n; ++i) w.u8(static_cast<std::uint8_t>(address.bytes()[i] ^ out_[4 + i]));
  endAttribute();
  return *this;
}

MessageBuilder& MessageBuilder::addErrorCode(int code, std::string_view reason) {
  assert(code >= 300 && code <= 699);
  beginAttribute(attr::ErrorCode, 4 + reason.size());
  ByteWriter w(out_);
  w.u16(0);
  w.u8(static_cast<std::uint8_t>(code / 100));
  w.u8(static_cast<std::uint8_t>(code % 100));
  w.bytes(reason);
  endAttribute();
  return *this;
}

MessageBuilder& MessageBuilder::addUnknownAttributes(std::span<const std::uint16_t> types) {
  beginAttribute(attr::UnknownAttributes, 2 * types.size());
  ByteWriter w(out_);
  for (std::uint16_t t : types) w.u16(t);
  endAttribute();
  return *this;
}

MessageBuilder& MessageBuilder::addRequestedTransport(std::uint8_t protocol) {
  const std::uint8_t b[4] = {protocol, 0, 0, 0};  // protocol + 24 RFFU bits (RFC 8656 18.7)
  return addBytes(attr::RequestedTransport, ByteView(b));
}

MessageBuilder& MessageBuilder::addChannelNumber(std::uint16_t channel) {
  return addU32(attr::ChannelNumber, std::uint32_t{channel} << 16);
}

MessageBuilder& MessageBuilder::addMac(bool sha256, ByteView key) {
  const std::size_t size = sha256 ? kMi256Size : kMiSize;
  const std::size_t at = beginAttribute(sha256 ? attr::MessageIntegritySha256 : attr::MessageIntegrity, size);
  // The header length must already count this attribute when the MAC is computed (RFC 8489 14.5).
  storeBe16(out_.data() + 2, static_cast<std::uint16_t>(at + 4 + size - kHeaderSize));
  std::array<std::uint8_t, kMi256Size> mac{};
  const bool ok = hmac(sha256, key, {ByteView(out_).first(at)}, mac.data());
  assert(ok && "OpenSSL HMAC failed");
  (void)ok;
  out_.insert(out_.end(), mac.begin(), mac.begin() + static_cast<std::ptrdiff_t>(size));
  endAttribute();
  return *this;
}

MessageBuilder& MessageBuilder::addFingerprint() {
  const std::size_t at = beginAttribute(attr::Fingerprint, kFingerprintSize);
  storeBe16(out_.data() + 2, static_cast<std::uint16_t>(at + 4 + kFingerprintSize - kHeaderSize));
  ByteWriter(out_).u32(crc32(ByteView(out_).first(at)) ^ kFingerprintXor);
  endAttribute();
  return *this;
}

// ---- keys ----

std::array<std::uint8_t, 16> longTermKey(std::string_view username, std::string_view realm,
                                          std::string_view password) {
  return digestOf<16>(EVP_md5(), {username, ":", realm, ":", password});
}

std::array<std::uint8_t, 32> longTermKeySha256(std::string_view username, std::string_view realm,
                                                std::string_view password) {
  return digestOf<32>(EVP_sha256(), {username, ":", realm, ":", password});
}

std::array<std::uint8_t, 32> userhash(std::string_view username, std::string_view realm) {
  return digestOf<32>(EVP_sha256(), {username, ":", realm});
}

// ---- ChannelData ----

Result<ChannelData> parseChannelData(ByteView frame) {
  if (frame.size() < kChannelDataHeaderSize) return fail("ChannelData: shorter than the 4-byte header");
  ByteReader r(frame);
  const std::uint16_t channel = r.u16();
  const std::uint16_t length = r.u16();
  if (channel < kMinChannel || channel > kMaxChannel) return fail("ChannelData: channel " + hex16(channel) + " out of range");
  ByteView data = r.bytes(length);
  if (!r.ok()) {
    return fail("ChannelData: length " + std::to_string(length) + " exceeds the " +
                std::to_string(frame.size() - kChannelDataHeaderSize) + " bytes present");
  }
  return ChannelData{channel, data};
}

ByteView writeChannelData(Bytes& out, std::uint16_t channel, ByteView data, bool stream) {
  assert(channel >= kMinChannel && channel <= kMaxChannel && data.size() <= 0xFFFF);
  out.clear();
  ByteWriter w(out);
  w.u16(channel);
  w.u16(static_cast<std::uint16_t>(data.size()));
  w.bytes(data);
  if (stream) w.pad(4);
  return out;
}

}  // namespace rtcpeer::stun
