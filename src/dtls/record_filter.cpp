// The DTLS endpoint's record filter: splitting a datagram into whole records, and dropping the records OpenSSL
// must not see (invalid ones it would answer with a fatal alert; RFC 6347 section 4.1.2.7 says discard), and
// each side's handshake progress (FlightProgress: new record or retransmission).
#include <openssl/obj_mac.h>
#include <openssl/ssl.h>

#include <utility>

#include "dtls/endpoint_impl.hpp"

namespace rtcpeer::dtls {

using namespace detail;

// Records OpenSSL 3.0 must not see. RFC 6347 section 4.1.2.7: invalid records SHOULD be silently discarded, but
// OpenSSL answers two kinds with a fatal alert, so one injected datagram could kill a connection:
//  - application data in epoch 0 (never legitimate: it would be unprotected), answered with unexpected_message
//    during the handshake;
//  - protected records (epoch > 0) shorter than the AEAD's explicit nonce plus tag, answered with
//    internal_error. Before a cipher is chosen no protected record can be legitimate at all.
bool Endpoint::Impl::acceptable(std::uint8_t type, std::uint16_t epoch, std::size_t length) const {
  if (epoch == 0) return type != 23;
  const SSL_CIPHER* c = SSL_get_pending_cipher(ssl);
  if (c == nullptr) c = SSL_get_current_cipher(ssl);
  if (c == nullptr) return false;
  const std::size_t overhead = SSL_CIPHER_get_cipher_nid(c) == NID_chacha20_poly1305 ? 16 : 8 + 16;
  return length >= overhead;
}

ByteView Endpoint::Impl::withoutInvalidRecords(ByteView datagram) {
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

// The next whole record (header and body) of a datagram; nullopt at the end or at a truncated tail, which is
// dropped (RFC 6347 section 4.1.2.7).
std::optional<ByteView> Endpoint::Impl::nextRecord(ByteReader& r) {
  if (r.empty()) return std::nullopt;
  const ByteView header = r.bytes(kRecordHeaderSize);
  if (!r.ok()) return std::nullopt;
  const std::size_t length = loadBe16(header.data() + 11);
  r.skip(length);
  if (!r.ok()) return std::nullopt;
  return ByteView(header.data(), kRecordHeaderSize + length);
}

}  // namespace rtcpeer::dtls

namespace rtcpeer::dtls::detail {

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

}  // namespace rtcpeer::dtls::detail
