#include "datachannel/channel_manager.hpp"

#include <gtest/gtest.h>

namespace rtcpeer::datachannel {
namespace {

// g++ 12 warns about designated initializers that omit members (-Wmissing-field-initializers).
template <class F>
DataChannelInit with(F set) {
  DataChannelInit d;
  set(d);
  return d;
}

using Kind = Event::Kind;

struct Received {
  ChannelKey channel;
  bool text;
  std::string data;
};

// Two managers joined by a perfect in-order "association": commands of one become input of the other.
struct Pair {
  ChannelManager a, b;
  std::vector<Received> atA, atB;
  std::vector<SendParams> sentByA;  // every Send command A issued, in order

  void pump() {
    for (bool progress = true; progress;) {
      progress = drain(a, b, atB, &sentByA) | drain(b, a, atA, nullptr);
    }
  }
  static bool drain(ChannelManager& from, ChannelManager& to, std::vector<Received>& sink,
                    std::vector<SendParams>* log) {
    bool any = false;
    while (auto cmd = from.pollCommand()) {
      any = true;
      if (cmd->kind == Command::Kind::ResetStream) {
        to.handleIncomingReset(cmd->params.stream);
        from.handleOutgoingResetDone(cmd->params.stream);
        continue;
      }
      if (log) log->push_back(cmd->params);
      deliver(to, cmd->params, cmd->data, sink);
    }
    return any;
  }
  static void deliver(ChannelManager& to, const SendParams& p, ByteView data, std::vector<Received>& sink) {
    auto r = to.handleMessage(p.stream, p.ppid, data);
    ASSERT_TRUE(r.ok()) << r.reason();
    if (*r) sink.push_back({(*r)->channel, (*r)->text, std::string(asString((*r)->data))});
  }
  // A user message from `from` on `channel`, as the integrator would send it.
  void send(ChannelManager& from, ChannelKey channel, bool text, std::string_view msg) {
    auto p = from.prepareSend(channel, text, msg.size());
    ASSERT_TRUE(p.ok()) << p.reason();
    if (&from == &a) sentByA.push_back(*p);
    deliver(&from == &a ? b : a, *p, p->payload(asBytes(msg)), &from == &a ? atB : atA);
  }
};

std::vector<Event> events(ChannelManager& m) {
  std::vector<Event> out;
  while (auto e = m.pollEvent()) out.push_back(*e);
  return out;
}

TEST(ChannelManager, InBandChannelOpensOnBothSides) {
  Pair p;
  auto key = p.a.create("chat", with([](DataChannelInit& d) { d.protocol = "proto"; }));
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(p.a.info(*key)->state, ChannelState::Connecting);
  EXPECT_FALSE(p.a.info(*key)->stream.has_value());
  EXPECT_FALSE(p.a.prepareSend(*key, false, 1).ok());  // not open yet
  EXPECT_TRUE(events(p.a).empty());

  p.a.start(DtlsRole::Client);
  p.b.start(DtlsRole::Server);
  auto ea = events(p.a);
  ASSERT_EQ(ea.size(), 1u);
  EXPECT_EQ(ea[0].kind, Kind::Opened);
  EXPECT_EQ(p.a.info(*key)->stream, 0);  // DTLS client: even ids
  p.pump();
  auto eb = events(p.b);
  ASSERT_EQ(eb.size(), 1u);
  EXPECT_EQ(eb[0].kind, Kind::Received);
  const ChannelInfo* remote = p.b.info(eb[0].channel);
  ASSERT_NE(remote, nullptr);
  EXPECT_EQ(remote->label, "chat");
  EXPECT_EQ(remote->protocol, "proto");
  EXPECT_EQ(remote->stream, 0);
  EXPECT_TRUE(remote->remote);
  EXPECT_EQ(remote->state, ChannelState::Open);

  p.send(p.a, *key, true, "hello");
  p.send(p.b, eb[0].channel, false, "world");
  ASSERT_EQ(p.atB.size(), 1u);
  EXPECT_EQ(p.atB[0].data, "hello");
  EXPECT_TRUE(p.atB[0].text);
  ASSERT_EQ(p.atA.size(), 1u);
  EXPECT_EQ(p.atA[0].channel, *key);
  EXPECT_EQ(p.atA[0].data, "world");
  EXPECT_FALSE(p.atA[0].text);
}

TEST(ChannelManager, StreamIdParityFollowsDtlsRole) {
  ChannelManager client, server;
  client.start(DtlsRole::Client);
  server.start(DtlsRole::Server);
  std::vector<int> c, s;
  for (int i = 0; i < 3; ++i) {
    c.push_back(*client.info(*client.create("x", {}))->stream);
    s.push_back(*server.info(*server.create("x", {}))->stream);
  }
  EXPECT_EQ(c, (std::vector<int>{0, 2, 4}));
  EXPECT_EQ(s, (std::vector<int>{1, 3, 5}));
}

TEST(ChannelManager, NegotiatedIdsAreReservedAndSkipped) {
  ChannelManager m;
  auto n = m.create("n", with([](DataChannelInit& d) {
                      d.negotiated = true;
                      d.id = 0;
                    }));
  ASSERT_TRUE(n.ok());
  auto dup = m.create("d", with([](DataChannelInit& d) {
                        d.negotiated = true;
                        d.id = 0;
                      }));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.failure().code, static_cast<int>(Error::AlreadyInUse));
  auto inband = m.create("i", {});
  m.start(DtlsRole::Client);
  EXPECT_EQ(m.info(*inband)->stream, 2);
  EXPECT_EQ(m.info(*n)->state, ChannelState::Open);
  // Negotiated channels send no DCEP: the only command is the in-band OPEN.
  auto cmd = m.pollCommand();
  ASSERT_TRUE(cmd.has_value());
  EXPECT_EQ(cmd->params.stream, 2);
  EXPECT_FALSE(m.pollCommand().has_value());
}

TEST(ChannelManager, NegotiatedChannelsTalkWithoutDcep) {
  Pair p;
  auto ka = p.a.create("game", with([](DataChannelInit& d) {
                         d.negotiated = true;
                         d.id = 7;
                         d.ordered = false;
                         d.maxRetransmits = 0;
                       }));
  auto kb = p.b.create("game", with([](DataChannelInit& d) {
                         d.negotiated = true;
                         d.id = 7;
                         d.ordered = false;
                         d.maxRetransmits = 0;
                       }));
  ASSERT_TRUE(ka.ok() && kb.ok());
  p.a.start(DtlsRole::Server);
  p.b.start(DtlsRole::Client);
  EXPECT_FALSE(p.a.pollCommand().has_value());
  EXPECT_EQ(events(p.b).at(0).kind, Kind::Opened);
  auto params = p.a.prepareSend(*ka, false, 4);
  ASSERT_TRUE(params.ok());
  EXPECT_FALSE(params->ordered);  // no ACK to wait for
  EXPECT_EQ(params->maxRetransmits, 0);
  p.send(p.a, *ka, false, "ping");
  ASSERT_EQ(p.atB.size(), 1u);
  EXPECT_EQ(p.atB[0].channel, *kb);
}

TEST(ChannelManager, UnorderedChannelSendsOrderedUntilAck) {
  Pair p;
  auto key = p.a.create("u", with([](DataChannelInit& d) {
                          d.ordered = false;
                          d.maxPacketLifeTime = 100;
                        }));
  p.a.start(DtlsRole::Client);
  p.b.start(DtlsRole::Server);
  // Sent right after the OPEN, before the peer has seen it: ordered, on the OPEN's stream, after it.
  auto early = p.a.prepareSend(*key, false, 3);
  ASSERT_TRUE(early.ok());
  EXPECT_TRUE(early->ordered);
  EXPECT_EQ(early->maxPacketLifeTime, 100);
  auto open = p.a.pollCommand();
  ASSERT_TRUE(open.has_value());
  Pair::deliver(p.b, open->params, open->data, p.atB);  // OPEN first, then the early message
  Pair::deliver(p.b, *early, asBytes("abc"), p.atB);
  ASSERT_EQ(p.atB.size(), 1u);
  EXPECT_EQ(p.atB[0].data, "abc");
  p.pump();  // the ACK comes back
  auto late = p.a.prepareSend(*key, false, 3);
  EXPECT_FALSE(late->ordered);
}

TEST(ChannelManager, EmptyMessagesUseTheirPpids) {
  Pair p;
  auto key = p.a.create("e", {});
  p.a.start(DtlsRole::Client);
  p.b.start(DtlsRole::Server);
  p.pump();
  auto text = p.a.prepareSend(*key, true, 0);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->ppid, 56u);
  EXPECT_TRUE(text->emptyMessage);
  EXPECT_EQ(text->payload({}).size(), 1u);  // SCTP cannot carry an empty message (RFC 8831 §6.6)
  EXPECT_EQ(p.a.prepareSend(*key, false, 0)->ppid, 57u);
  p.send(p.a, *key, true, "");
  p.send(p.a, *key, false, "");
  ASSERT_EQ(p.atB.size(), 2u);
  EXPECT_TRUE(p.atB[0].text);
  EXPECT_EQ(p.atB[0].data, "");
  EXPECT_FALSE(p.atB[1].text);
  EXPECT_EQ(p.atB[1].data, "");
}

TEST(ChannelManager, RemoteMaxMessageSizeIsEnforced) {
  ChannelManager m;
  auto key = m.create("x", {});
  m.start(DtlsRole::Client);
  EXPECT_EQ(m.remoteMaxMessageSize(), 65536u);  // RFC 8841: absent means 64 KiB
  EXPECT_TRUE(m.prepareSend(*key, false, 65536).ok());
  auto big = m.prepareSend(*key, false, 65537);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.failure().code, static_cast<int>(Error::InvalidParameter));
  EXPECT_NE(big.reason().find("exceeds the peer's max-message-size of 65536"), std::string::npos);
  m.setRemoteMaxMessageSize(1000);
  EXPECT_FALSE(m.prepareSend(*key, false, 1001).ok());
  m.setRemoteMaxMessageSize(0);  // unlimited
  EXPECT_TRUE(m.prepareSend(*key, false, std::size_t{1} << 40).ok());
}

// One in-band channel from a (DTLS client) to b, open on both sides; the events of the opening are consumed.
std::pair<ChannelKey, ChannelKey> openOne(Pair& p) {
  auto key = p.a.create("c", {});
  p.a.start(DtlsRole::Client);
  p.b.start(DtlsRole::Server);
  p.pump();
  events(p.a);
  return {*key, events(p.b).at(0).channel};
}

TEST(ChannelManager, LocalCloseResetsBothDirections) {
  Pair p;
  const auto [key, remote] = openOne(p);

  p.a.close(key);
  EXPECT_EQ(p.a.info(key)->state, ChannelState::Closing);
  EXPECT_FALSE(p.a.prepareSend(key, false, 1).ok());
  auto reset = p.a.pollCommand();
  ASSERT_TRUE(reset.has_value());
  EXPECT_EQ(reset->kind, Command::Kind::ResetStream);
  // The peer sees our reset: Closing, and it resets its side in turn.
  p.b.handleIncomingReset(reset->params.stream);
  p.a.handleOutgoingResetDone(reset->params.stream);
  EXPECT_EQ(p.a.info(key)->state, ChannelState::Closing);  // waiting for the peer's reset
  auto eb = events(p.b);
  ASSERT_EQ(eb.size(), 1u);
  EXPECT_EQ(eb[0].kind, Kind::Closing);
  p.pump();
  EXPECT_EQ(p.a.info(key)->state, ChannelState::Closed);
  EXPECT_EQ(p.b.info(remote)->state, ChannelState::Closed);
  auto ea = events(p.a);
  ASSERT_EQ(ea.size(), 1u);
  EXPECT_EQ(ea[0].kind, Kind::Closed);
  EXPECT_TRUE(ea[0].reason.empty());
  EXPECT_EQ(events(p.b).at(0).kind, Kind::Closed);
  p.a.close(key);  // idempotent: nothing more to send
  EXPECT_FALSE(p.a.pollCommand().has_value());
  // The stream id is free again, but a new channel takes the next one (see StreamIdsGoRound).
  EXPECT_FALSE(p.a.channelOnStream(0).has_value());
  EXPECT_EQ(p.a.info(*p.a.create("again", {}))->stream, 2);
  p.a.forget(key);
  EXPECT_EQ(p.a.info(key), nullptr);
}

// The peer may ask the association to reset our outgoing stream (RFC 6525 Incoming SSN Reset Request): that
// restarts sequence numbers but closes nothing, and a later close by the peer still waits for our own reset.
TEST(ChannelManager, ResetThePeerAskedForKeepsTheChannelOpen) {
  Pair p;
  const auto [key, remote] = openOne(p);
  const std::uint16_t stream = *p.a.info(key)->stream;

  p.a.handleOutgoingResetDone(stream);  // performed for the peer, not requested by the channel
  EXPECT_EQ(p.a.info(key)->state, ChannelState::Open);
  EXPECT_TRUE(events(p.a).empty());
  p.send(p.a, key, true, "still open");
  ASSERT_EQ(p.atB.size(), 1u);

  // The peer closes: we answer with our reset, and are Closed only once that reset is done.
  p.b.close(remote);
  auto reset = p.b.pollCommand();
  ASSERT_TRUE(reset.has_value());
  p.a.handleIncomingReset(reset->params.stream);
  EXPECT_EQ(p.a.info(key)->state, ChannelState::Closing);
  p.b.handleOutgoingResetDone(reset->params.stream);
  p.pump();
  EXPECT_EQ(p.a.info(key)->state, ChannelState::Closed);
  EXPECT_EQ(p.b.info(remote)->state, ChannelState::Closed);
}

// New in-band channels take stream ids round-robin within our parity, so a just-closed id (maybe still closing at
// the peer) comes back last; when every id is taken, creation fails with a reason.
TEST(ChannelManager, StreamIdsGoRound) {
  ChannelManager m;
  m.start(DtlsRole::Server, 8);  // odd ids 1, 3, 5, 7
  std::vector<ChannelKey> keys;
  for (int i = 0; i < 4; ++i) keys.push_back(*m.create("c" + std::to_string(i), {}));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(m.info(keys[i])->stream, 2 * i + 1);
  auto full = m.create("full", {});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.failure().code, static_cast<int>(Error::Unavailable));

  // Free 3, then 1 (closed before the peer ever answered: a local-only close is enough here).
  for (ChannelKey k : {keys[1], keys[0]}) {
    m.close(k);
    m.handleOutgoingResetDone(*m.info(k)->stream);
    m.handleIncomingReset(*m.info(k)->stream);
    ASSERT_EQ(m.info(k)->state, ChannelState::Closed);
  }
  // The cursor is past 7: it wraps to 1, then 3.
  EXPECT_EQ(m.info(*m.create("x", {}))->stream, 1);
  EXPECT_EQ(m.info(*m.create("y", {}))->stream, 3);
}

TEST(ChannelManager, CloseBeforeStartAndCloseAll) {
  ChannelManager m;
  auto waiting = m.create("w", {});
  m.close(*waiting);
  EXPECT_EQ(m.info(*waiting)->state, ChannelState::Closed);
  auto other = m.create("o", {});
  m.start(DtlsRole::Server);
  EXPECT_EQ(m.info(*other)->stream, 1);
  m.closeAll("peer connection closed");
  EXPECT_EQ(m.info(*other)->state, ChannelState::Closed);
  EXPECT_FALSE(m.pollCommand().has_value());
  std::vector<Event> ev = events(m);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().kind, Kind::Closed);
  EXPECT_EQ(ev.back().reason, "peer connection closed");
}

TEST(ChannelManager, ProtocolErrorsAreReportedNotFatal) {
  ChannelManager m;
  auto key = m.create("n", with([](DataChannelInit& d) {
                        d.negotiated = true;
                        d.id = 1;
                      }));
  m.start(DtlsRole::Client);
  dcep::Open open;
  Bytes bytes;
  ASSERT_TRUE(dcep::encodeOpen(open, bytes).ok());
  auto clash = m.handleMessage(1, 50, bytes);  // OPEN on a stream in use
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.reason().find("already carries a channel"), std::string::npos);
  EXPECT_FALSE(m.handleMessage(9, 53, asBytes("x")).ok());  // no channel there
  EXPECT_FALSE(m.handleMessage(1, 99, asBytes("x")).ok());  // unknown PPID
  EXPECT_FALSE(m.handleMessage(1, 50, Bytes{0x02}).ok());   // ACK nobody waits for
  EXPECT_FALSE(m.handleMessage(3, 50, Bytes{}).ok());       // empty DCEP
  EXPECT_EQ(m.info(*key)->state, ChannelState::Open);
  EXPECT_TRUE(m.handleMessage(1, 53, asBytes("still fine")).ok());
}

// Limits a hostile peer cannot push past: an OPEN on our parity, more open channels than kMaxRemoteChannels, or
// labels and protocols beyond kMaxRemoteNameBytes are refused with a reason, and the stream is reset so the
// peer's channel closes; nothing is kept.
TEST(ChannelManager, PeerOpensAreBounded) {
  auto openBytes = [](std::size_t nameSize) {
    dcep::Open open;
    open.label.assign(nameSize / 2, 'l');
    open.protocol.assign(nameSize - nameSize / 2, 'p');
    Bytes bytes;
    EXPECT_TRUE(dcep::encodeOpen(open, bytes).ok());
    return bytes;
  };
  auto expectRefusedWithReset = [](ChannelManager& m, std::uint16_t stream, const Bytes& open, const char* why) {
    auto r = m.handleMessage(stream, 50, open);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.reason().find(why), std::string::npos) << r.reason();
    auto cmd = m.pollCommand();
    ASSERT_TRUE(cmd);
    EXPECT_EQ(cmd->kind, Command::Kind::ResetStream);
    EXPECT_EQ(cmd->params.stream, stream);
    EXPECT_FALSE(m.channelOnStream(stream));
  };
  ChannelManager m;
  m.start(DtlsRole::Client);  // the peer is the DTLS server: it opens on odd ids
  const Bytes small = openBytes(1);
  expectRefusedWithReset(m, 2, small, "odd stream ids");
  for (std::uint16_t i = 0; i < ChannelManager::kMaxRemoteChannels; ++i)
    ASSERT_TRUE(m.handleMessage(static_cast<std::uint16_t>(2 * i + 1), 50, small).ok());
  while (m.pollCommand()) {
  }
  expectRefusedWithReset(m, 2 * ChannelManager::kMaxRemoteChannels + 1, small, "channels open");
  // Closing one makes room again.
  m.handleIncomingReset(1);
  m.handleOutgoingResetDone(1);
  while (m.pollCommand()) {
  }
  EXPECT_TRUE(m.handleMessage(2 * ChannelManager::kMaxRemoteChannels + 3, 50, small).ok());

  ChannelManager n;
  n.start(DtlsRole::Server);  // the peer opens on even ids
  const Bytes big = openBytes(120'000);
  std::uint16_t stream = 0;
  for (std::size_t total = 0; total + 120'000 <= ChannelManager::kMaxRemoteNameBytes; total += 120'000, stream += 2)
    ASSERT_TRUE(n.handleMessage(stream, 50, big).ok());
  while (n.pollCommand()) {
  }
  expectRefusedWithReset(n, stream, big, "labels and protocols");
}

TEST(ChannelManager, DeprecatedPartialPpidsAreReassembled) {
  ChannelManager m(10);
  auto key = m.create("n", with([](DataChannelInit& d) {
                        d.negotiated = true;
                        d.id = 4;
                      }));
  m.start(DtlsRole::Client);
  ASSERT_FALSE(*m.handleMessage(4, 54, asBytes("hel")));
  ASSERT_FALSE(*m.handleMessage(4, 54, asBytes("lo ")));
  auto done = m.handleMessage(4, 51, asBytes("you"));
  ASSERT_TRUE(done.ok() && *done);
  EXPECT_EQ((*done)->channel, *key);
  EXPECT_TRUE((*done)->text);
  EXPECT_EQ(asString((*done)->data), "hello you");
  // Beyond our max-message-size (10 here), the partial message is dropped with an error.
  ASSERT_TRUE(m.handleMessage(4, 52, asBytes("123456")).ok());
  EXPECT_FALSE(m.handleMessage(4, 52, asBytes("789012")).ok());
}

// The final piece counts too: partial pieces just under the limit plus a final one never make a message above our
// max-message-size (found by fuzz_peer_connection: 240000 + 240000 bytes arrived as one 480000-byte message).
TEST(ChannelManager, DeprecatedPartialPpidsNeverExceedMaxMessageSize) {
  ChannelManager m(10);
  (void)m.create("n", with([](DataChannelInit& d) {
    d.negotiated = true;
    d.id = 4;
  }));
  m.start(DtlsRole::Client);
  ASSERT_TRUE(m.handleMessage(4, 52, asBytes("12345678")).ok());
  EXPECT_FALSE(m.handleMessage(4, 53, asBytes("9abc")).ok());
  // The refused message is gone entirely: the next one stands alone.
  auto next = m.handleMessage(4, 53, asBytes("next"));
  ASSERT_TRUE(next.ok() && *next);
  EXPECT_EQ(asString((*next)->data), "next");
}

// Partial pieces wait in the channel manager, outside the SCTP receive window, so their total over all channels is
// bounded by one max-message-size: a peer cannot park that much on each of thousands of channels.
TEST(ChannelManager, DeprecatedPartialPpidsAreBoundedAcrossChannels) {
  ChannelManager m(10);
  for (std::uint16_t id : {4, 6})
    (void)m.create("n", with([&](DataChannelInit& d) {
      d.negotiated = true;
      d.id = id;
    }));
  m.start(DtlsRole::Client);
  ASSERT_TRUE(m.handleMessage(4, 52, asBytes("123456")).ok());
  EXPECT_FALSE(m.handleMessage(6, 52, asBytes("789012")).ok());
  // Completing the first frees its share.
  auto done = m.handleMessage(4, 53, asBytes("7"));
  ASSERT_TRUE(done.ok() && *done);
  EXPECT_EQ(asString((*done)->data), "1234567");
  ASSERT_TRUE(m.handleMessage(6, 52, asBytes("789012")).ok());
  EXPECT_EQ(m.partialBytes(), 6u);
  // Channels that end give their share back too.
  m.closeAll("test");
  EXPECT_EQ(m.partialBytes(), 0u);
}

TEST(ChannelManager, InvalidCreationsAreRefusedWithReasons) {
  ChannelManager m;
  auto noId = m.create("x", with([](DataChannelInit& d) { d.negotiated = true; }));
  ASSERT_FALSE(noId.ok());
  EXPECT_EQ(noId.failure().code, static_cast<int>(Error::InvalidParameter));
  EXPECT_FALSE(m.create(std::string(65536, 'l'), {}).ok());
  m.start(DtlsRole::Client, 16);
  auto beyond = m.create("x", with([](DataChannelInit& d) {
                           d.negotiated = true;
                           d.id = 16;
                         }));
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.reason().find("beyond"), std::string::npos);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(m.create("x", {}).ok());  // 0, 2, ..., 14
  auto full = m.create("x", {});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.failure().code, static_cast<int>(Error::Unavailable));
}

TEST(ChannelManager, DataFromPeerActsAsImplicitAck) {
  Pair p;
  auto key = p.a.create("u", with([](DataChannelInit& d) { d.ordered = false; }));
  p.a.start(DtlsRole::Client);
  p.b.start(DtlsRole::Server);
  auto open = p.a.pollCommand();
  Pair::deliver(p.b, open->params, open->data, p.atB);
  ChannelKey remote = events(p.b).at(0).channel;
  (void)p.b.pollCommand();  // the ACK is lost to A in this test
  p.send(p.b, remote, false, "data");
  EXPECT_FALSE(p.a.prepareSend(*key, false, 1)->ordered);
}

}  // namespace
}  // namespace rtcpeer::datachannel
