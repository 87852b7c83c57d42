// RFC 9260 section 7.2 congestion control.
#include <algorithm>

#include "sctp/tx/congestion_control.hpp"

namespace rtcpeer::sctp {
namespace {

class RenoController final : public CongestionController {
 public:
  RenoController(std::size_t mtu, std::size_t initialCwnd, std::size_t peerRwnd)
      : mtu_(mtu), cwnd_(initialCwnd), ssthresh_(std::max(peerRwnd, 4 * mtu)) {}

  std::size_t cwnd() const noexcept override { return cwnd_; }
  std::size_t ssthresh() const noexcept override { return ssthresh_; }

  void onSack(const SackOutcome& s, Duration, Timestamp) override {
    // 7.2.1/7.2.2: grow only when the cumulative ack advances, the window was in use, and not in fast recovery.
    if (!s.cumAdvanced || s.inFastRecovery) return;
    bool fullyUsed = s.flightBeforeSack + mtu_ >= cwnd_;
    if (cwnd_ <= ssthresh_) {
      if (fullyUsed) cwnd_ += std::min(s.bytesAcked, mtu_);
      return;
    }
    partialBytesAcked_ += s.bytesAcked;
    if (partialBytesAcked_ >= cwnd_ && fullyUsed) {
      partialBytesAcked_ -= cwnd_;
      cwnd_ += mtu_;
    }
  }

  void onFastRetransmit(std::size_t, Timestamp) override {
    ssthresh_ = std::max(cwnd_ / 2, 4 * mtu_);  // 7.2.3
    cwnd_ = ssthresh_;
    partialBytesAcked_ = 0;
  }

  void onTimeout(Timestamp) override {
    ssthresh_ = std::max(cwnd_ / 2, 4 * mtu_);
    cwnd_ = mtu_;
    partialBytesAcked_ = 0;
  }

 private:
  std::size_t mtu_;
  std::size_t cwnd_;
  std::size_t ssthresh_;
  std::size_t partialBytesAcked_ = 0;
};

}  // namespace

std::unique_ptr<CongestionController> makeRenoController(std::size_t mtu, std::size_t initialCwnd,
                                                         std::size_t peerRwnd) {
  return std::make_unique<RenoController>(mtu, initialCwnd, peerRwnd);
}

}  // namespace rtcpeer::sctp
