// Feeds arbitrary datagrams to a DTLS endpoint in each state: a fresh server, a client that sent its ClientHello,
// both sides of an established connection, and both again after they handed their records over to
// RecordProtection. Input: one mode byte, then datagrams as [u16 length][bytes],
// with a timeout tick after each.
#include <cstddef>
#include <cstdint>

#include "common/bytes.hpp"
#include "dtls/endpoint.hpp"

using namespace rtcpeer;
using namespace rtcpeer::dtls;

namespace {

const std::shared_ptr<const Certificate>& cert(int i) {
  static const std::shared_ptr<const Certificate> certs[2] = {*Certificate::generate(), *Certificate::generate()};
  return certs[i];
}

Config config(int self, Role role) {
  Config c;
  c.certificate = cert(self);
  c.role = role;
  c.remoteFingerprints = {cert(1 - self)->sha256()};
  return c;
}

void drain(Endpoint& e) {
  while (e.pollTransmit()) {
  }
  while (e.pollApplicationData()) {
  }
  while (e.pollEvent()) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteReader in(ByteView(data, size));
  const std::uint8_t mode = in.u8() % 6;
  Timestamp now = fromMicros(1'000'000);
  Endpoint client(config(0, Role::Client)), server(config(1, Role::Server));
  client.start(now);
  server.start(now);
  if (mode >= 2) {
    for (int round = 0; round < 10 && client.state() != State::Connected; ++round) {
      while (auto d = client.pollTransmit()) server.handleInput(*d, now);
      while (auto d = server.pollTransmit()) client.handleInput(*d, now);
    }
    if (client.state() != State::Connected || server.state() != State::Connected) __builtin_trap();
  }
  if (mode >= 4) {  // a line each way: both hand their records over from OpenSSL to RecordProtection
    (void)client.send(asBytes("ping"), now);
    while (auto d = client.pollTransmit()) server.handleInput(*d, now);
    (void)server.send(asBytes("pong"), now);
    while (auto d = server.pollTransmit()) client.handleInput(*d, now);
    if (!client.sslReleased() || !server.sslReleased()) __builtin_trap();
  }
  Endpoint& target = mode == 1 || mode == 2 || mode == 4 ? client : server;
  drain(target);
  while (in.ok() && !in.empty()) {
    const std::uint16_t len = in.u16();
    ByteView datagram = in.bytes(std::min<std::size_t>(len, in.remaining()));
    target.handleInput(datagram, now);
    now += Duration(len * 997);
    target.handleTimeout(now);
    if (target.state() == State::Connected) (void)target.send(datagram.empty() ? asBytes("x") : datagram, now);
    drain(target);
  }
  return 0;
}
