// A deterministic, discrete-event network simulator for testing the sans-IO cores. It owns a virtual clock and a
// seeded random generator; endpoints (adapters around cores) are bound to addresses in "realms" (the public
// internet and the private side of each simulated NAT) and exchange datagrams over links with configurable delay,
// jitter, loss, burst loss, reordering, duplication, bandwidth and MTU. The same seed gives a bit-identical run:
// every random draw comes from the seeded generator and simultaneous events are ordered by a sequence number.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/address.hpp"
#include "common/bytes.hpp"
#include "common/random.hpp"
#include "common/time.hpp"

namespace rtcpeer::sim {

/// One direction of a path. Sizes (MTU, queue, bandwidth) count the UDP payload only, no IP/UDP headers.
struct LinkConfig {
  Duration delay{0};            // one-way propagation delay
  Duration jitter{0};           // uniform extra delay in [0, jitter] (may reorder)
  double loss = 0;              // independent random loss probability
  double burstEnter = 0;        // Gilbert-Elliott: P(good -> bad) per packet; in bad state every packet is lost
  double burstExit = 1;         //                  P(bad -> good) per packet
  double reorder = 0;           // probability a packet is held back by reorderDelay extra
  Duration reorderDelay{0};
  double duplicate = 0;         // probability a packet is delivered twice
  std::uint64_t bandwidthBps = 0;   // 0 = unlimited; otherwise serialization delay + drop-tail queue
  std::size_t queueBytes = 256 * 1024;
  std::size_t mtu = 0;          // 0 = unlimited; larger datagrams are dropped
};

/// RFC 4787 behaviours: FullCone = endpoint-independent mapping and filtering; AddressRestricted = EI mapping,
/// address-dependent filtering; PortRestricted = EI mapping, address-and-port-dependent filtering; Symmetric =
/// address-and-port-dependent mapping and filtering.
enum class NatType { FullCone, AddressRestricted, PortRestricted, Symmetric };
using RealmId = int;            // 0 = the public internet; each NAT creates a private realm behind it

// What the simulator drives: an adapter around a sans-IO core (each layer writes its own tiny adapter).
class Endpoint {
 public:
  virtual ~Endpoint() = default;
  virtual void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) = 0;
  virtual void onTimeout(Timestamp now) = 0;      // called when now >= nextDeadline()
  virtual Timestamp nextDeadline() const = 0;     // kNever if none
};

/// The network. It keeps references to bound endpoints: unbind them (or destroy the Network) before they die.
class Network {
 public:
  explicit Network(std::uint64_t seed);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  Timestamp now() const;                          // virtual clock, starts at 1 s
  /// Seeded, for the cores under test (use it or a SeededRandom derived from it). Separate from the generator the
  /// links draw from, so what the cores draw does not change the network's loss/jitter pattern.
  Random& random();

  static constexpr RealmId kInternet = 0;
  static constexpr Duration kDefaultNatTimeout = std::chrono::seconds(30);
  /// A NAT whose public side is `publicIp` in `parent` (port ignored); returns its private realm. Nested NATs work.
  RealmId addNat(NatType type, const SocketAddress& publicIp, RealmId parent = kInternet);
  /// Idle timeout of the NAT's mappings (default 30 s); a mapping is refreshed by outbound traffic only.
  void setNatTimeout(RealmId nat, Duration timeout);

  void bind(Endpoint& ep, const SocketAddress& local, RealmId realm = kInternet);  // ep receives what is sent to local
  void unbind(const SocketAddress& local, RealmId realm = kInternet);
  // Send a datagram from a bound address. May be called at any time, including from inside Endpoint callbacks.
  void send(const SocketAddress& from, const SocketAddress& to, ByteView data, RealmId realm = kInternet);

  void setDefaultLink(const LinkConfig&);
  void setLink(const SocketAddress& fromIp, const SocketAddress& toIp, const LinkConfig&); // ports ignored, one direction
  /// Bytes waiting in (or being serialized onto) the bandwidth-limited link fromIp -> toIp.
  std::size_t queuedBytes(const SocketAddress& fromIp, const SocketAddress& toIp) const;

  // Driving: each step delivers the next datagram or fires the earliest endpoint deadline, in time order
  // (ties broken deterministically). Endpoint deadlines are re-read every step.
  bool step();                                    // false if nothing is scheduled
  bool runUntil(const std::function<bool()>& done, Duration limit);  // true if done() became true within limit
  void runFor(Duration d);
  /// Time of the next step (a datagram arrival or an endpoint deadline, never before now()), or kNever.
  Timestamp nextTime() const;
  /// Datagrams in flight.
  std::size_t pending() const;

  struct Stats {
    std::uint64_t sent = 0, delivered = 0, lost = 0, queueDrops = 0, mtuDrops = 0, natDrops = 0, duplicated = 0,
                  unroutable = 0;
    std::uint64_t deliveredBytes = 0;
  };
  const Stats& stats() const;
  std::uint64_t traceHash() const;                // hash of every delivery (time, from, to, bytes): determinism

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rtcpeer::sim
