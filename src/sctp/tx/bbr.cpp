// A model-based congestion controller in the spirit of BBR (Cardwell et al., "BBR: Congestion-Based Congestion
// Control", and draft-ietf-ccwg-bbr), reduced to what a sans-IO stack without pacing can use: it estimates the
// bottleneck bandwidth (windowed max of delivery-rate samples) and the path's minimum RTT, and sets
//   cwnd = gain x bandwidth x minRTT + headroom
// with an exponential startup, a drain, and a probing cycle (1.25, 0.9, then 1.0 for six rounds). Random loss
// does not shrink the window (it is not a congestion signal on lossy radio/long paths); loss ends startup, and a
// retransmission timeout restarts from a small window that grows back to the model within a few round trips.
#include <algorithm>
#include <array>

#include "sctp/tx/congestion_control.hpp"

namespace rtcpeer::sctp {
namespace {

class BbrController final : public CongestionController {
 public:
  BbrController(std::size_t mtu, std::size_t initialCwnd) : mtu_(mtu), cwnd_(initialCwnd) {}

  std::size_t cwnd() const noexcept override { return cwnd_; }
  std::size_t ssthresh() const noexcept override { return mode_ == Mode::Startup ? ~std::size_t{0} : target(1.0); }

  Duration reorderWindow(Duration srtt) const noexcept override {
    return std::max(Duration(2000), (minRtt_ > Duration(0) ? minRtt_ : srtt) / 4);
  }

  void onSack(const SackOutcome& s, Duration srtt, Timestamp now) override {
    if (s.rtt && (minRtt_ == Duration(0) || *s.rtt <= minRtt_ || now - minRttAt_ > kMinRttWindow)) {
      minRtt_ = *s.rtt;
      minRttAt_ = now;
    }
    Duration round = std::max(kMinRound, minRtt_ > Duration(0) ? minRtt_ : srtt);
    if (s.rateInterval > Duration(0) && s.rateBytes > 0) {
      double bw = static_cast<double>(s.rateBytes) / static_cast<double>(s.rateInterval.count());  // bytes/us
      updateBandwidth(bw, s.appLimited, now, round);
    }
    if (s.bytesAcked == 0) return;
    switch (mode_) {
      case Mode::Startup:
        if (!s.appLimited) cwnd_ += s.bytesAcked;  // grow only while the window is what limits sending
        if (now >= roundEnd_) {
          // Leave startup once the bandwidth stopped growing by 25 % for three rounds.
          if (maxBw() >= fullBw_ * 1.25) {
            fullBw_ = maxBw();
            stalledRounds_ = 0;
          } else if (!s.appLimited && ++stalledRounds_ >= 3) {
            enter(Mode::Drain, now);
          }
          roundEnd_ = now + round;
        }
        return;
      case Mode::Drain:
        if (s.flightBeforeSack <= target(1.0)) enter(Mode::ProbeBw, now);
        break;
      case Mode::ProbeBw:
        if (now >= phaseEnd_) {
          phase_ = (phase_ + 1) % kGains.size();
          phaseEnd_ = now + round;
        }
        break;
    }
    std::size_t t = target(gain());
    cwnd_ = std::min(cwnd_ + s.bytesAcked, t);  // regrow after a timeout, or step down to the model
    cwnd_ = std::max(cwnd_, 4 * mtu_);
  }

  void onFastRetransmit(std::size_t, Timestamp now) override {
    if (mode_ == Mode::Startup && maxBw() > 0) enter(Mode::Drain, now);
  }

  void onTimeout(Timestamp) override { cwnd_ = 4 * mtu_; }

 private:
  enum class Mode : std::uint8_t { Startup, Drain, ProbeBw };
  static constexpr std::array<double, 8> kGains = {1.25, 0.9, 1, 1, 1, 1, 1, 1};
  static constexpr Duration kMinRttWindow{10'000'000};
  static constexpr std::size_t kBuckets = 10;  // bandwidth max filter over ~10 rounds
  // Floor for the RTT the model uses: below a millisecond (same host, in memory) per-round bookkeeping and a
  // near-zero window would cost more than the queue they avoid.
  static constexpr Duration kMinRound{1000};

  double gain() const noexcept {
    if (mode_ == Mode::Drain) return 0.9;
    return kGains[phase_];
  }

  std::size_t target(double g) const noexcept {
    double bdp = maxBw() * static_cast<double>(std::max(minRtt_, kMinRound).count());
    // Headroom for delayed and batched acknowledgements.
    return std::max(static_cast<std::size_t>(g * bdp) + 4 * mtu_, 4 * mtu_);
  }

  void enter(Mode m, Timestamp now) {
    mode_ = m;
    if (m == Mode::Drain) cwnd_ = std::min(cwnd_, target(1.0));
    if (m == Mode::ProbeBw) {
      phase_ = 2;  // start in a steady phase; probing comes around within the cycle
      phaseEnd_ = now + std::max(minRtt_, kMinRound);
    }
  }

  double maxBw() const noexcept { return *std::max_element(bw_.begin(), bw_.end()); }

  void updateBandwidth(double bw, bool appLimited, Timestamp now, Duration round) {
    if (now >= bucketEnd_) {  // rotate: the oldest round's maximum falls out of the window
      bucket_ = (bucket_ + 1) % kBuckets;
      bw_[bucket_] = 0;
      bucketEnd_ = now + round;
    }
    // Application-limited samples understate the path: use them only if they raise the estimate.
    if (appLimited && bw <= maxBw()) return;
    bw_[bucket_] = std::max(bw_[bucket_], bw);
  }

  std::size_t mtu_;
  std::size_t cwnd_;
  Mode mode_ = Mode::Startup;
  std::array<double, kBuckets> bw_{};
  std::size_t bucket_ = 0;
  Timestamp bucketEnd_{};
  double fullBw_ = 0;
  int stalledRounds_ = 0;
  Timestamp roundEnd_{};
  std::size_t phase_ = 2;
  Timestamp phaseEnd_{};
  Duration minRtt_{0};
  Timestamp minRttAt_{};
};

}  // namespace

std::unique_ptr<CongestionController> makeBbrController(std::size_t mtu, std::size_t initialCwnd) {
  return std::make_unique<BbrController>(mtu, initialCwnd);
}

}  // namespace rtcpeer::sctp
