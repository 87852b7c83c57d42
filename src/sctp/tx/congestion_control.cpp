#include "sctp/tx/congestion_control.hpp"

namespace rtcpeer::sctp {

std::unique_ptr<CongestionController> makeRenoController(std::size_t mtu, std::size_t initialCwnd,
                                                         std::size_t peerRwnd);

std::unique_ptr<CongestionController> makeBbrController(std::size_t mtu, std::size_t initialCwnd);

std::unique_ptr<CongestionController> makeCongestionController(CongestionControl kind, std::size_t mtu,
                                                               std::size_t initialCwnd, std::size_t peerRwnd) {
  switch (kind) {
    case CongestionControl::Bbr: return makeBbrController(mtu, initialCwnd);
    case CongestionControl::Reno: break;
  }
  return makeRenoController(mtu, initialCwnd, peerRwnd);
}

}  // namespace rtcpeer::sctp
