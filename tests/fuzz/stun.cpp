// Fuzzes the STUN codec: parse arbitrary bytes; if they parse, exercise every getter, the integrity and fingerprint
// checks, and rebuild the message from its attributes, which must parse again to the same attribute list. The same
// bytes are also fed to the ChannelData parser.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <vector>

#include "stun/stun.hpp"

using namespace rtcpeer;
using namespace rtcpeer::stun;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void exercise(const Message& m) {
  (void)m.method();
  (void)m.cls();
  (void)m.transactionId();
  (void)m.xorMappedAddress();
  (void)m.xorRelayedAddress();
  (void)m.xorPeerAddress();
  (void)m.mappedAddress();
  (void)m.address(attr::AlternateServer);
  (void)m.username();
  (void)m.realm();
  (void)m.nonce();
  (void)m.software();
  (void)m.priority();
  (void)m.useCandidate();
  (void)m.iceControlling();
  (void)m.iceControlled();
  if (auto e = m.errorCode()) check(e->code >= 300 && e->code <= 699);
  std::array<std::uint16_t, 32> storage{};
  (void)m.unknownAttributes(storage);
  (void)m.lifetime();
  (void)m.data();
  (void)m.requestedTransport();
  (void)m.channelNumber();
  (void)m.dontFragment();
  check(m.unknownComprehensionRequired().size() <= 8);
  static const std::uint8_t kKey[] = {'k', 'e', 'y'};
  (void)m.checkIntegrity(kKey);
  (void)m.checkIntegritySha256(kKey);
  (void)m.fingerprintValid();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  (void)looksLikeStun(in);
  if (auto r = parse(in)) {
    const Message& m = *r;
    check(looksLikeStun(in));
    exercise(m);

    // Rebuild from the visible attributes (+ MESSAGE-INTEGRITY and FINGERPRINT, 32 bytes, if that still fits the
    // 16-bit length); the copy must parse to the same attribute list and verify.
    if (size + 32 <= kHeaderSize + 0xFFFF) {
      std::vector<std::pair<std::uint16_t, ByteView>> attrs;
      m.forEach([&](std::uint16_t t, ByteView v) { attrs.emplace_back(t, v); });
      static Bytes out;
      MessageBuilder b(out, m.type(), m.transactionId());
      for (const auto& [t, v] : attrs) b.addBytes(t, v);
      static const std::uint8_t kKey[] = {'k', 'e', 'y'};
      b.addIntegrity(kKey).addFingerprint();
      auto again = parse(out);
      check(again.ok());
      std::size_t i = 0;
      again->forEach([&](std::uint16_t t, ByteView v) {
        check(i < attrs.size() && attrs[i].first == t && std::ranges::equal(attrs[i].second, v));
        ++i;
      });
      check(i == attrs.size());
      check(again->checkIntegrity(kKey) && again->fingerprintValid());
      exercise(*again);
    }
  }
  if (auto cd = parseChannelData(in)) {
    check(cd->channel >= kMinChannel && cd->channel <= kMaxChannel);
    check(cd->data.size() + kChannelDataHeaderSize <= size);
    static Bytes frame;
    writeChannelData(frame, cd->channel, cd->data, true);
    auto back = parseChannelData(frame);
    check(back.ok() && back->data.size() == cd->data.size());
  }
  return 0;
}
