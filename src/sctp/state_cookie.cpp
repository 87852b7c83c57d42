#include "sctp/state_cookie.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace rtcpeer::sctp {
namespace {

constexpr std::size_t kMacSize = 32;

void mac(ByteView key, ByteView data, std::uint8_t* out) {
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out, &len);
}

}  // namespace

void encodeCookie(const CookieState& s, ByteView key, SpanWriter& w) {
  std::size_t start = w.size();
  w.u32(s.localTag);
  w.u32(s.peerTag);
  w.u32(s.localInitialTsn);
  w.u32(s.peerInitialTsn);
  w.u32(s.peerArwnd);
  w.u16(s.peerOutStreams);
  w.u16(s.peerInStreams);
  w.u32(s.tieLocalTag);
  w.u32(s.tiePeerTag);
  w.u32(static_cast<std::uint32_t>((s.peerForwardTsn ? 1 : 0) | (s.peerIData ? 2 : 0) | (s.peerReconfig ? 4 : 0) |
                                 (s.peerZeroChecksum ? 8 : 0)));
  w.u64(static_cast<std::uint64_t>(s.createdUs));
  if (!w.ok()) return;
  std::uint8_t m[kMacSize];
  mac(key, ByteView(w.data() + start, w.size() - start), m);
  w.bytes(ByteView(m, kMacSize));
}

Result<CookieState> decodeCookie(ByteView cookie, ByteView key, Timestamp now, Duration lifetime) {
  if (cookie.size() != kCookieSize) return fail("sctp: state cookie has the wrong size");
  ByteView body = cookie.first(kCookieSize - kMacSize);
  std::uint8_t m[kMacSize];
  mac(key, body, m);
  if (CRYPTO_memcmp(m, cookie.data() + body.size(), kMacSize) != 0) return fail("sctp: state cookie MAC mismatch");
  ByteReader r(body);
  CookieState s;
  s.localTag = r.u32();
  s.peerTag = r.u32();
  s.localInitialTsn = r.u32();
  s.peerInitialTsn = r.u32();
  s.peerArwnd = r.u32();
  s.peerOutStreams = r.u16();
  s.peerInStreams = r.u16();
  s.tieLocalTag = r.u32();
  s.tiePeerTag = r.u32();
  std::uint32_t flags = r.u32();
  s.peerForwardTsn = flags & 1;
  s.peerIData = flags & 2;
  s.peerReconfig = flags & 4;
  s.peerZeroChecksum = flags & 8;
  s.createdUs = static_cast<std::int64_t>(r.u64());
  if (toMicros(now) - s.createdUs > lifetime.count()) return fail("sctp: stale state cookie", 3);
  return s;
}

}  // namespace rtcpeer::sctp
