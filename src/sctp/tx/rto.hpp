// Retransmission timeout per RFC 6298 (as adopted by RFC 9260 6.3.1): SRTT/RTTVAR smoothing with alpha 1/8,
// beta 1/4, RTO = SRTT + 4 RTTVAR clamped to [min, max], doubled on every T3 expiry until a new sample arrives.
#pragma once

#include <algorithm>

#include "common/time.hpp"

namespace rtcpeer::sctp {

class RtoEstimator {
 public:
  RtoEstimator(Duration initial, Duration min, Duration max) noexcept : rto_(initial), min_(min), max_(max) {}

  void sample(Duration rtt) noexcept {
    if (rtt < Duration(0)) return;
    if (srtt_ == Duration(0)) {
      srtt_ = rtt;
      rttvar_ = rtt / 2;
    } else {
      Duration diff = srtt_ > rtt ? srtt_ - rtt : rtt - srtt_;
      rttvar_ = (3 * rttvar_ + diff) / 4;
      srtt_ = (7 * srtt_ + rtt) / 8;
    }
    // RFC 6298 2.3 uses max(G, 4*RTTVAR) with clock granularity G; our clock is 1 us, so use 1 ms.
    rto_ = std::clamp(srtt_ + std::max(Duration(1000), 4 * rttvar_), min_, max_);
  }
  void backoff() noexcept { rto_ = std::min(rto_ * 2, max_); }
  [[nodiscard]] Duration rto() const noexcept { return rto_; }
  [[nodiscard]] Duration srtt() const noexcept { return srtt_; }

 private:
  Duration rto_, min_, max_;
  Duration srtt_{0}, rttvar_{0};
};

}  // namespace rtcpeer::sctp
