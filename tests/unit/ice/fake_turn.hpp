// A small TURN server (RFC 8656, UDP) on virtual time: long-term credentials with a nonce that can be changed
// (438), Allocate/Refresh/CreatePermission/ChannelBind with lifetimes that really expire, Send/Data indications
// and ChannelData, IPv4 or IPv6 relayed addresses by REQUESTED-ADDRESS-FAMILY (RFC 8656 7.2, 18.1). It owns
// `address` and every relayed address it hands out (10.99.0.1:50001, :50002, ..., or [fd99::1]:50001, ...).
// On the in-memory Harness install it with `harness.unowned = [&](const Wire& w) { server.onWire(w); }`; on the
// simulator give it the network's clock and send function (turn_sim_test.cpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "stun/stun.hpp"
#include "unit/ice/harness.hpp"

namespace rtcpeer::ice::test {

class FakeTurn {
 public:
  using Send = std::function<void(const SocketAddress& from, const SocketAddress& to, ByteView data)>;
  FakeTurn(std::function<Timestamp()> clock, Send send, Random& random, SocketAddress address)
      : clock_(std::move(clock)), send_(std::move(send)), random_(random), address_(address) {}
  FakeTurn(Harness& h, SocketAddress address)
      : FakeTurn([&h] { return h.now; },
                 [&h](const SocketAddress& from, const SocketAddress& to, ByteView data) { h.inject(from, to, data); },
                 h.rnd, address) {}

  std::string user = "user", password = "secret", realm = "rtcpeer.test", nonce = "nonce-1";
  std::uint32_t maxLifetime = 600;  // seconds granted at most
  bool quotaReached = false;        // answer Allocate with 486
  bool silent = false;              // drop everything (an unreachable server)
  bool ipv6 = true;                 // relays IPv6 (else 440 to REQUESTED-ADDRESS-FAMILY IPv6)

  struct Allocation {
    SocketAddress client, relayed;
    Timestamp expires{};
    std::map<std::string, Timestamp> permissions;  // per IP
    std::map<std::uint16_t, std::pair<SocketAddress, Timestamp>> channels;
  };
  std::vector<Allocation> allocations;

  struct Counters {
    int allocates = 0, refreshes = 0, deallocations = 0, permissions = 0, channelBinds = 0, staleNonces = 0;
    int sendIndications = 0, channelDataIn = 0, dataIndications = 0, channelDataOut = 0;
    int expiredDrops = 0;  // traffic that hit an expired allocation, permission or channel
    int unpermittedDrops = 0;  // traffic to or from a peer that never had a permission (RFC 8656 9)
    int familyRequests = 0;    // Allocates that carried REQUESTED-ADDRESS-FAMILY
    int familyMismatches = 0;  // 443: a permission or channel for a peer of the other family
  } count;

  [[nodiscard]] const SocketAddress& address() const { return address_; }

  void onWire(const Wire& w) {
    if (silent) return;
    if (w.to == address_) return fromClient(w);
    for (auto& a : allocations)
      if (a.relayed == w.to) return fromPeer(a, w);
  }

  Allocation* allocationOf(const SocketAddress& client) {
    for (auto& a : allocations)
      if (a.client == client) return &a;
    return nullptr;
  }

 private:
  static std::string ipOf(const SocketAddress& a) { return a.ipString(); }
  std::array<std::uint8_t, 16> key() const { return stun::longTermKey(user, realm, password); }

  // Counts what a permission never covered apart from what hit an expired allocation or permission.
  bool permitted(const Allocation& a, const SocketAddress& peer) {
    auto perm = a.permissions.find(ipOf(peer));
    if (perm == a.permissions.end()) {
      ++count.unpermittedDrops;
      return false;
    }
    if (now() >= a.expires || now() >= perm->second) {
      ++count.expiredDrops;
      return false;
    }
    return true;
  }

  void fromPeer(Allocation& a, const Wire& w) {
    if (!permitted(a, w.from)) return;
    for (const auto& [number, bound] : a.channels) {
      if (bound.first == w.from && now() < bound.second) {
        stun::writeChannelData(buf_, number, w.data);
        ++count.channelDataOut;
        send_(address_, a.client, buf_);
        return;
      }
    }
    stun::MessageBuilder(buf_, stun::Method::Data, stun::Class::Indication, stun::randomTransactionId(random_))
        .addXorAddress(stun::attr::XorPeerAddress, w.from)
        .addBytes(stun::attr::Data, w.data);
    ++count.dataIndications;
    send_(address_, a.client, buf_);
  }

  void relay(Allocation& a, const SocketAddress& peer, ByteView data) {
    if (!permitted(a, peer)) return;
    send_(a.relayed, peer, data);
  }

  void fromClient(const Wire& w) {
    Allocation* a = allocationOf(w.from);
    if (stun::looksLikeChannelData(w.data)) {
      auto cd = stun::parseChannelData(w.data);
      if (!cd || !a) return;
      auto ch = a->channels.find(cd->channel);
      if (ch == a->channels.end() || now() >= ch->second.second) {
        ++count.expiredDrops;
        return;
      }
      ++count.channelDataIn;
      relay(*a, ch->second.first, cd->data);
      return;
    }
    auto m = stun::parse(w.data);
    if (!m) return;
    if (m->is(stun::Method::Send, stun::Class::Indication)) {
      auto peer = m->xorPeerAddress();
      auto data = m->data();
      if (!a || !peer || !data) return;
      ++count.sendIndications;
      relay(*a, *peer, *data);
      return;
    }
    if (m->cls() != stun::Class::Request) return;
    // Long-term credentials (RFC 8489 9.2): challenge, then check USERNAME, MESSAGE-INTEGRITY and NONCE.
    if (!m->hasIntegrity()) return error(w, *m, stun::error::Unauthorized, false);
    if (m->username() != user || !m->checkIntegrity(key())) return error(w, *m, stun::error::Unauthorized, false);
    if (m->nonce() != nonce) {
      ++count.staleNonces;
      return error(w, *m, stun::error::StaleNonce, false);
    }
    const auto lifetime = std::min(m->lifetime().value_or(600), maxLifetime);
    stun::MessageBuilder b(buf_, m->method(), stun::Class::SuccessResponse, m->transactionId());
    switch (m->method()) {
      case stun::Method::Allocate: {
        if (quotaReached) return error(w, *m, stun::error::AllocationQuotaReached, true);
        // RFC 8656 7.2: absent means IPv4; the attribute is a family byte (1 IPv4, 2 IPv6) and 3 RFFU bytes.
        const char* relayIp = "10.99.0.1";
        if (auto family = m->find(stun::attr::RequestedAddressFamily)) {
          ++count.familyRequests;
          if (family->size() != 4) return error(w, *m, stun::error::BadRequest, true);
          if ((*family)[0] == 0x02 && ipv6) relayIp = "fd99::1";
          else if ((*family)[0] != 0x01) return error(w, *m, stun::error::AddressFamilyNotSupported, true);
        }
        if (!a) {
          a = &allocations.emplace_back();
          a->client = w.from;
          a->relayed = *SocketAddress::parse(relayIp, static_cast<std::uint16_t>(50000 + allocations.size()));
        } else if (now() < a->expires) {
          return error(w, *m, stun::error::AllocationMismatch, true);
        }
        ++count.allocates;
        a->expires = now() + std::chrono::seconds(lifetime);
        b.addXorAddress(stun::attr::XorRelayedAddress, a->relayed)
            .addXorAddress(stun::attr::XorMappedAddress, w.from)
            .addU32(stun::attr::Lifetime, lifetime);
        break;
      }
      case stun::Method::Refresh:
        if (!a || now() >= a->expires) return error(w, *m, stun::error::AllocationMismatch, true);
        if (lifetime == 0) {
          ++count.deallocations;
          a->expires = now();
        } else {
          ++count.refreshes;
          a->expires = now() + std::chrono::seconds(lifetime);
        }
        b.addU32(stun::attr::Lifetime, lifetime);
        break;
      case stun::Method::CreatePermission: {
        auto peer = m->xorPeerAddress();
        if (!a || now() >= a->expires) return error(w, *m, stun::error::AllocationMismatch, true);
        if (!peer) return error(w, *m, stun::error::BadRequest, true);
        if (peer->family() != a->relayed.family()) return mismatch(w, *m);
        ++count.permissions;
        a->permissions[ipOf(*peer)] = now() + 300s;
        break;
      }
      case stun::Method::ChannelBind: {
        auto peer = m->xorPeerAddress();
        auto number = m->channelNumber();
        if (!a || now() >= a->expires) return error(w, *m, stun::error::AllocationMismatch, true);
        if (!peer || !number) return error(w, *m, stun::error::BadRequest, true);
        if (peer->family() != a->relayed.family()) return mismatch(w, *m);
        ++count.channelBinds;
        a->channels[*number] = {*peer, now() + 600s};
        a->permissions[ipOf(*peer)] = now() + 300s;
        break;
      }
      default: return;
    }
    b.addIntegrity(key()).addFingerprint();
    send_(address_, w.from, buf_);
  }

  // RFC 8656 9.3 / 12.2: a peer of the other family than the relayed address gets 443.
  void mismatch(const Wire& w, const stun::Message& m) {
    ++count.familyMismatches;
    error(w, m, stun::error::PeerAddressFamilyMismatch, true);
  }

  void error(const Wire& w, const stun::Message& m, int code, bool sign) {
    stun::MessageBuilder b(buf_, m.method(), stun::Class::ErrorResponse, m.transactionId());
    b.addErrorCode(code, code == stun::error::Unauthorized ? "Unauthorized" : "Error");
    if (code == stun::error::Unauthorized || code == stun::error::StaleNonce)
      b.addString(stun::attr::Realm, realm).addString(stun::attr::Nonce, nonce);
    if (sign) b.addIntegrity(key());
    b.addFingerprint();
    send_(address_, w.from, buf_);
  }

  Timestamp now() const { return clock_(); }

  std::function<Timestamp()> clock_;
  Send send_;
  Random& random_;
  SocketAddress address_;
  Bytes buf_;
};

}  // namespace rtcpeer::ice::test
