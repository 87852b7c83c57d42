// A plain STUN server for the simulator: answers every Binding request with the XOR-MAPPED-ADDRESS it saw
// (RFC 8489), nothing else. The test binds it to whatever addresses it serves.
#pragma once

#include "sim/network.hpp"
#include "stun/stun.hpp"

namespace rtcpeer::sim {

class StunServer : public Endpoint {
 public:
  explicit StunServer(Network& net) : net_(net) {}
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp) override {
    auto m = stun::parse(data);
    if (!m || !m->is(stun::Method::Binding, stun::Class::Request)) return;
    stun::MessageBuilder(out_, stun::Method::Binding, stun::Class::SuccessResponse, m->transactionId())
        .addXorAddress(stun::attr::XorMappedAddress, remote)
        .addFingerprint();
    net_.send(local, remote, out_);
  }
  void onTimeout(Timestamp) override {}
  [[nodiscard]] Timestamp nextDeadline() const override { return kNever; }

 private:
  Network& net_;
  Bytes out_;
};

}  // namespace rtcpeer::sim
