// Fuzzes the TURN client (RFC 8656) with server traffic in each of its states, over UDP and over a stream.
//
// Input: byte 0 picks the state the client is brought to with well-formed server answers (0 allocating before
// the challenge, 1 allocating with credentials, 2 allocated, 3 allocated with a permission and channel 0x4000
// bound to a peer), bit 2 the transport (UDP datagrams / TCP byte stream) and bit 3 the family (an IPv6 server,
// relayed address and peer: REQUESTED-ADDRESS-FAMILY). The rest is a sequence of
// [flags, length, bytes] records: each is fed as one datagram (UDP) or appended to the stream (TCP). Flag bit 0
// overwrites a STUN-looking record's transaction id with the client's latest request's, so fuzzed responses reach
// the response handlers; bit 1 advances time to the next deadline afterwards; bit 2 sends a payload to the peer.
// Invariants: no crash, a failed client has a reason, outputs are bounded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ice/turn_client.hpp"
#include "rtcpeer/log.hpp"

using namespace rtcpeer;
using namespace rtcpeer::ice;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

struct Addresses {
  SocketAddress server, relayed, mapped, peer;
};
const Addresses kV4{*SocketAddress::parse("192.0.2.1", 3478), *SocketAddress::parse("192.0.2.1", 50000),
                    *SocketAddress::parse("203.0.113.5", 1234), *SocketAddress::parse("198.51.100.7", 40000)};
const Addresses kV6{*SocketAddress::parse("2001:db8::1", 3478), *SocketAddress::parse("2001:db8::1", 50000),
                    *SocketAddress::parse("2001:db8:5::5", 1234), *SocketAddress::parse("2001:db8:7::7", 40000)};

struct Fixture {
  SeededRandom rnd{11};
  TurnClient client;
  Timestamp now = fromMicros(1'000'000);
  stun::TransactionId lastRequest{};
  Bytes buf;

  const Addresses& at;

  Fixture(bool stream, const Addresses& addresses) : client(config(stream, addresses), rnd), at(addresses) {}
  static TurnClientConfig config(bool stream, const Addresses& at) {
    TurnClientConfig c;
    c.server = {at.server, stream ? TurnTransport::Tcp : TurnTransport::Udp, "user", "secret"};
    c.relayFamily = at.server.family();
    return c;
  }
  void drain() {
    while (auto b = client.pollTransmit()) {
      check(b->size() < 70'000);
      if (auto m = stun::parse(*b); m && m->cls() == stun::Class::Request) lastRequest = m->transactionId();
    }
  }
  void deliver(ByteView bytes) {
    if (!client.stream()) {
      (void)client.handleMessage(bytes, now);
    } else {
      client.appendStream(bytes);
      while (auto f = client.nextFrame()) (void)client.handleMessage(*f, now);
    }
    drain();
  }
  // A well-formed answer to the latest request.
  void answer(stun::Method method, bool challenge) {
    const auto key = stun::longTermKey("user", "r", "secret");
    if (challenge) {
      stun::MessageBuilder(buf, method, stun::Class::ErrorResponse, lastRequest)
          .addErrorCode(401, "Unauthorized")
          .addString(stun::attr::Realm, "r")
          .addString(stun::attr::Nonce, "n");
    } else {
      stun::MessageBuilder b(buf, method, stun::Class::SuccessResponse, lastRequest);
      if (method == stun::Method::Allocate)
        b.addXorAddress(stun::attr::XorRelayedAddress, at.relayed)
            .addXorAddress(stun::attr::XorMappedAddress, at.mapped)
            .addU32(stun::attr::Lifetime, 600);
      b.addIntegrity(key).addFingerprint();
    }
    deliver(buf);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool quiet = (setLogLevel(LogLevel::None), true);  // failures are expected; logging them is slow
  (void)quiet;
  ByteReader r(ByteView(data, size));
  const std::uint8_t mode = r.u8();
  Fixture f((mode & 4) != 0, (mode & 8) ? kV6 : kV4);
  const SocketAddress& peer = f.at.peer;
  f.client.start(f.now);
  f.drain();
  const int state = mode & 3;
  if (state >= 1) f.answer(stun::Method::Allocate, true);
  if (state >= 2) f.answer(stun::Method::Allocate, false);
  if (state >= 3) {
    const Bytes hello = {23, 1, 2, 3};
    (void)f.client.wrap(peer, hello, f.now);  // held; asks for the permission
    f.drain();
    f.answer(stun::Method::CreatePermission, false);
    f.client.bindChannel(peer, f.now);
    f.drain();
    f.answer(stun::Method::ChannelBind, false);
    check(f.client.hasChannel(peer));
  }
  Bytes record;
  while (r.remaining() >= 3) {
    const std::uint8_t flags = r.u8();
    const std::size_t n = r.u16() % 2048;
    ByteView bytes = r.bytes(std::min(n, r.remaining()));
    record.assign(bytes.begin(), bytes.end());
    if ((flags & 1) && record.size() >= stun::kHeaderSize && record[0] < 4)
      std::memcpy(record.data() + 8, f.lastRequest.data(), f.lastRequest.size());
    f.deliver(record);
    if (flags & 2) {
      const Timestamp d = f.client.nextDeadline();
      if (d != kNever) f.now = std::max(f.now, d);
      f.client.handleTimeout(f.now);
      f.drain();
    }
    if (flags & 4) {
      if (auto w = f.client.wrap(peer, record, f.now)) check(w->size() <= record.size() + 64);
      f.drain();
    }
    if (f.client.state() == TurnClient::State::Failed) check(!f.client.failureReason().empty());
  }
  f.client.close();
  f.drain();
  return 0;
}
