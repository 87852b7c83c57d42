// Congestion control as a replaceable component. The association reports acknowledgements, loss and timeouts
// and asks for the congestion window; controllers never see packets.
//  - RenoController: RFC 9260 section 7.2 (slow start, congestion avoidance, fast recovery, T3 collapse), the
//    conforming baseline, with an initial window of 10 MTUs (RFC 6928 style).
//  - BbrController: a model-based controller in the spirit of BBR (bottleneck bandwidth x min RTT) that does not
//    treat random loss as congestion, for long lossy paths; see src/sctp/README.md for why.
#pragma once

#include <cstdint>
#include <memory>

#include "common/time.hpp"
#include "sctp/tx/retransmit_queue.hpp"

namespace rtcpeer::sctp {

enum class CongestionControl : std::uint8_t { Reno, Bbr };

class CongestionController {
 public:
  virtual ~CongestionController() = default;
  [[nodiscard]] virtual std::size_t cwnd() const noexcept = 0;
  [[nodiscard]] virtual std::size_t ssthresh() const noexcept = 0;
  /// A SACK was processed. `srtt` is the smoothed RTT after it (0 before the first sample).
  virtual void onSack(const SackOutcome& s, Duration srtt, Timestamp now) = 0;
  /// Fast retransmit started a loss episode (at most once per fast recovery).
  virtual void onFastRetransmit(std::size_t flightBytes, Timestamp now) = 0;
  /// T3-rtx expired.
  virtual void onTimeout(Timestamp now) = 0;
  /// Time-based loss detection window for the retransmission queue (0: only the RFC 9260 miss-indication rule).
  [[nodiscard]] virtual Duration reorderWindow(Duration srtt) const noexcept {
    (void)srtt;
    return Duration(0);
  }
};

std::unique_ptr<CongestionController> makeCongestionController(CongestionControl kind, std::size_t mtu,
                                                               std::size_t initialCwnd, std::size_t peerRwnd);

}  // namespace rtcpeer::sctp
