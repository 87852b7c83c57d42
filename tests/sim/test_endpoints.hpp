// Small endpoints for the simulator's own tests.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/network.hpp"

namespace rtcpeer::sim::testing {

inline SocketAddress addr(const char* ip, std::uint16_t port = 0) { return *SocketAddress::parse(ip, port); }

/// Records every datagram it receives.
class Recorder : public Endpoint {
 public:
  struct Rx {
    SocketAddress local, remote;
    Bytes data;
    Timestamp at;
  };
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) override {
    rx.push_back({local, remote, Bytes(data.begin(), data.end()), now});
  }
  void onTimeout(Timestamp) override {}
  Timestamp nextDeadline() const override { return kNever; }

  std::vector<Rx> rx;
};

/// Sends every datagram back to where it came from.
class Echo : public Recorder {
 public:
  Echo(Network& net, RealmId realm = Network::kInternet) : net_(net), realm_(realm) {}
  void onDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) override {
    Recorder::onDatagram(local, remote, data, now);
    net_.send(local, remote, data, realm_);
  }

 private:
  Network& net_;
  RealmId realm_;
};

/// Sends `count` datagrams of `size` bytes, one every `interval` from `start`, each starting with its index (u32 BE).
class Pacer : public Recorder {
 public:
  Pacer(Network& net, SocketAddress from, SocketAddress to, int count, std::size_t size, Duration interval,
        RealmId realm = Network::kInternet)
      : net_(net), from_(from), to_(to), count_(count), size_(size), interval_(interval), realm_(realm),
        next_(net.now()) {}
  void onTimeout(Timestamp now) override {
    Bytes b(size_, 0xab);
    storeBe32(b.data(), static_cast<std::uint32_t>(sent_));
    net_.send(from_, to_, b, realm_);
    sendTimes.push_back(now);
    ++sent_;
    next_ += interval_;
  }
  Timestamp nextDeadline() const override { return sent_ < count_ ? next_ : kNever; }

  std::vector<Timestamp> sendTimes;

 private:
  Network& net_;
  SocketAddress from_, to_;
  int count_;
  std::size_t size_;
  Duration interval_;
  RealmId realm_;
  Timestamp next_;
  int sent_ = 0;
};

inline std::uint32_t indexOf(const Recorder::Rx& r) { return loadBe32(r.data.data()); }

}  // namespace rtcpeer::sim::testing
