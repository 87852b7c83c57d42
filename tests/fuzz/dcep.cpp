// Fuzzes the DCEP decoder (decode -> encode -> decode must round-trip) and the channel manager, fed with a
// sequence of SCTP messages and stream resets taken from the input.
#include "datachannel/dcep.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "common/bytes.hpp"
#include "datachannel/channel_manager.hpp"

using namespace rtcpeer;

namespace {

void roundTrip(ByteView bytes) {
  auto message = dcep::decode(bytes);
  if (!message || !std::holds_alternative<dcep::Open>(*message)) return;
  const auto& open = std::get<dcep::Open>(*message);
  Bytes again;
  if (!dcep::encodeOpen(open, again)) std::abort();
  auto back = dcep::decode(again);
  if (!back) std::abort();
  const auto& open2 = std::get<dcep::Open>(*back);
  if (open2.label != open.label || open2.protocol != open.protocol || !(open2.reliability == open.reliability))
    std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteReader in(ByteView(data, size));
  roundTrip(in.whole());

  // The first byte picks the role and a few local channels; then records of
  // [op:1][stream:2][length:2][payload...] drive the manager.
  datachannel::ChannelManager manager(4096);
  std::uint8_t setup = in.u8();
  DataChannelInit negotiated;
  negotiated.negotiated = true;
  negotiated.id = static_cast<std::uint16_t>(setup & 0x0f);
  (void)manager.create("n", negotiated);
  (void)manager.create("inband", {});
  manager.start(setup & 0x80 ? datachannel::DtlsRole::Server : datachannel::DtlsRole::Client,
                static_cast<std::uint16_t>(16 + (setup & 0x30)));
  while (in.ok() && !in.empty()) {
    std::uint8_t op = in.u8();
    std::uint16_t stream = in.u16() % 64;
    ByteView payload = in.bytes(std::min<std::size_t>(in.u16(), in.remaining()));
    switch (op % 6) {
      case 0:
        (void)manager.handleMessage(stream, 50, payload);
        break;
      case 1:
        (void)manager.handleMessage(stream, 51u + (op >> 4) % 7, payload);
        break;  // PPIDs 51..57
      case 2:
        manager.handleIncomingReset(stream);
        break;
      case 3:
        manager.handleOutgoingResetDone(stream);
        break;
      case 4:
        if (auto key = manager.channelOnStream(stream)) {
          auto p = manager.prepareSend(*key, op & 0x40, payload.size());
          if (p && p->stream != stream) std::abort();
          if (op & 0x80) manager.close(*key);
        }
        break;
      default:
        (void)manager.create(std::string(asString(payload)), {});
        break;
    }
    while (manager.pollCommand()) {
    }
    while (auto e = manager.pollEvent()) {
      if (e->kind == datachannel::Event::Kind::Closed) manager.forget(e->channel);
    }
  }
  manager.closeAll();
  return 0;
}
