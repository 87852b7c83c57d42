// Fuzz target: an established association fed arbitrary packets. The input is a sequence of records
// [op u8][len u16][body]; bodies become chunk sequences behind a valid common header (right ports, the
// association's verification tag, a correct checksum) so they reach the chunk handlers. Ops also advance time,
// send messages, drain output and start a shutdown, so timers and the send path interleave with the input.
#include <cstddef>
#include <cstdint>

#include "common/random.hpp"
#include "sctp/association.hpp"

using namespace rtcpeer;
using namespace rtcpeer::sctp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  SeededRandom ra(1), rb(2);
  Options o;
  o.maxMessageSize = 64 * 1024;
  o.receiveWindow = 256 * 1024;
  Association a(o, ra), b(o, rb);
  Timestamp now = fromMicros(1'000'000);
  std::uint32_t tagOfB = 0;
  auto pump = [&] {
    for (int round = 0; round < 4; ++round) {
      while (auto p = a.pollTransmit(now)) {
        if (p->size() >= 8) tagOfB = loadBe32(p->data() + 4);
        b.handleInput(*p, now);
      }
      while (auto p = b.pollTransmit(now)) a.handleInput(*p, now);
    }
  };
  a.connect(now);
  pump();
  if (b.state() != State::Established) __builtin_trap();
  (void)a.send(1, 51, asBytes("warm-up"), {}, now);
  pump();

  Bytes pkt;
  ByteReader r(ByteView(data, size));
  int ops = 0;
  while (r.remaining() >= 3 && ++ops < 200) {
    std::uint8_t op = r.u8();
    std::uint16_t len = r.u16() & 0x0FFF;
    ByteView body = r.bytes(std::min<std::size_t>(len, r.remaining()));
    switch (op % 6) {
      case 0:
      case 1: {  // a packet to b, from a
        pkt.assign(12, 0);
        storeBe16(pkt.data(), 5000);
        storeBe16(pkt.data() + 2, 5000);
        storeBe32(pkt.data() + 4, op % 2 ? tagOfB : 0);
        pkt.insert(pkt.end(), body.begin(), body.end());
        while (pkt.size() % 4) pkt.push_back(0);
        stampChecksum(pkt);
        b.handleInput(pkt, now);
        break;
      }
      case 2:
        now += Duration(body.empty() ? 1000 : body[0] * 10'000);
        a.handleTimeout(now);
        b.handleTimeout(now);
        break;
      case 3:
        (void)b.send(static_cast<std::uint16_t>(body.size() % 8), 53, body.empty() ? asBytes("x") : body,
                     SendOptions{body.size() % 2 == 1, {}, {}}, now);
        break;
      case 4:
        pump();
        while (b.pollMessage()) {
        }
        break;
      case 5:
        if (body.size() == 1) b.shutdown(now);
        else while (auto p = b.pollTransmit(now)) (void)p;
        break;
    }
    while (b.pollEvent()) {
    }
  }
  // Whatever happened, the association must still be able to make progress or be cleanly closed.
  now += Duration(1'000'000);
  b.handleTimeout(now);
  pump();
  return 0;
}
