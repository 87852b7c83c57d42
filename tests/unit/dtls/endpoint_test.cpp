#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "dtls/demux.hpp"
#include "unit/dtls/sim_dtls.hpp"

// Counts operator new calls so the data-path test can prove it allocates nothing per record. The replacement
// operators pair malloc with free; g++ sees the inlined free() of an operator-new pointer and warns, wrongly.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
namespace {
std::atomic<long> g_allocations{0};
}
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace rtcpeer::dtls::test {
namespace {

using namespace std::chrono_literals;

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

class Handshake : public ::testing::TestWithParam<bool> {};

TEST_P(Handshake, CompletesAndCarriesDataBothWays) {
  PairSetup p(1);
  if (!GetParam()) std::swap(p.a.role, p.b.role);
  p.make();
  p.startBoth();
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s))
      << p.A->ep.failureReason() << " / " << p.B->ep.failureReason();
  ASSERT_FALSE(p.A->events.empty());
  EXPECT_EQ(p.A->events[0].type, Event::Type::Connected);
  EXPECT_EQ(p.A->ep.cipherName(), "ECDHE-ECDSA-AES128-GCM-SHA256");
  // use_srtp offered and accepted as browsers do (docs/INTEROP.md): Pion fails without it.
  EXPECT_EQ(p.A->ep.srtpProfile(), "SRTP_AES128_CM_SHA1_80");
  EXPECT_EQ(p.B->ep.srtpProfile(), "SRTP_AES128_CM_SHA1_80");
  EXPECT_EQ(p.A->ep.nextDeadline(), kNever);
  EXPECT_EQ(p.B->ep.nextDeadline(), kNever);
  // Every handshake datagram stayed within the MTU: the sim drops anything larger.
  EXPECT_EQ(p.net.stats().mtuDrops, 0u);

  ASSERT_TRUE(p.A->ep.send(asBytes("hello from A"), p.net.now()));
  ASSERT_TRUE(p.B->ep.send(asBytes("hello from B"), p.net.now()));
  p.A->drain();
  p.B->drain();
  p.net.runFor(100ms);
  ASSERT_EQ(p.B->received.size(), 1u);
  EXPECT_EQ(p.B->received[0], text("hello from A"));
  ASSERT_EQ(p.A->received.size(), 1u);
  EXPECT_EQ(p.A->received[0], text("hello from B"));
}

INSTANTIATE_TEST_SUITE_P(BothRoles, Handshake, ::testing::Bool(),
                         [](const auto& param) { return param.param ? "AClient" : "AServer"; });

sim::LinkConfig mtuLink() {
  sim::LinkConfig l;
  l.delay = 20ms;
  l.mtu = 1200;
  return l;
}

TEST(Endpoint, FullPayloadRecordFitsTheMtu) {
  PairSetup p(2);
  p.net.setDefaultLink(mtuLink());
  p.make();
  p.startBoth();
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 2s));
  const std::size_t max = p.A->ep.maxApplicationPayload();
  EXPECT_EQ(max, 1200u - 13 - 8 - 16);  // record header, AES-GCM explicit nonce and tag
  Bytes big(max, 0x5a);
  ASSERT_TRUE(p.A->ep.send(big, p.net.now()));
  p.A->drain();
  p.net.runFor(100ms);
  ASSERT_EQ(p.B->received.size(), 1u);
  EXPECT_EQ(p.B->received[0], big);
  EXPECT_EQ(p.net.stats().mtuDrops, 0u);
  EXPECT_FALSE(p.A->ep.send(Bytes(16385), p.net.now()));
  EXPECT_FALSE(p.A->ep.send({}, p.net.now()));
  EXPECT_EQ(p.A->ep.state(), State::Connected);  // refused sends do not hurt the connection
}

// The retransmission timer follows the configured initial timeout on the virtual clock: losing the first
// ClientHello costs exactly initialRetransmit, not OpenSSL's default second.
TEST(Endpoint, LostClientHelloIsRetransmittedAfterInitialTimeout) {
  PairSetup p(3);
  p.a.initialRetransmit = 50ms;
  p.make();
  const Timestamp t0 = p.net.now();
  p.A->dropOutgoing = true;
  p.A->start();
  p.B->start();
  EXPECT_EQ(p.A->datagramsSent, 1);
  EXPECT_EQ(p.A->ep.nextDeadline(), t0 + 50ms);
  EXPECT_EQ(p.B->ep.nextDeadline(), t0 + 30s);  // a server has only the overall handshake deadline
  p.A->dropOutgoing = false;
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));
  EXPECT_EQ(p.A->datagramsSent, 4);  // ClientHello, its retransmission sent twice, the second flight
  EXPECT_LT(p.net.now() - t0, 60ms);
}

TEST(Endpoint, RetransmissionBacksOffAndTheHandshakeEventuallyFails) {
  PairSetup p(4);
  p.a.initialRetransmit = 100ms;
  p.a.maxRetransmit = 400ms;
  p.make();
  p.A->dropOutgoing = true;
  const Timestamp t0 = p.net.now();
  p.A->start();
  std::vector<Duration> gaps;
  Timestamp last = t0;
  int sent = p.A->datagramsSent;
  while (p.A->ep.state() == State::Connecting && p.net.now() - t0 < 60s) {
    p.net.step();
    if (p.A->datagramsSent != sent) {
      gaps.push_back(p.net.now() - last);
      last = p.net.now();
      sent = p.A->datagramsSent;
    }
  }
  ASSERT_GE(gaps.size(), 4u);
  EXPECT_EQ(gaps[0], 100ms);
  EXPECT_EQ(gaps[1], 200ms);
  EXPECT_EQ(gaps[2], 400ms);
  EXPECT_EQ(gaps[3], 400ms);
  EXPECT_EQ(p.A->ep.state(), State::Failed);
  EXPECT_FALSE(p.A->ep.failureReason().empty());
}

// The server finishes first (it sends the last flight) and runs no timer afterwards; if that flight is lost, the
// client's retransmitted flight makes the server resend it.
TEST(Endpoint, LostFinalFlightIsResentWhenTheClientRetransmits) {
  PairSetup p(15);
  p.make();
  p.B->dropOnceConnected = true;
  p.startBoth();
  ASSERT_TRUE(p.net.runUntil([&] { return p.B->ep.state() == State::Connected; }, 1s));
  EXPECT_EQ(p.B->ep.nextDeadline(), kNever);
  const int clientSent = p.A->datagramsSent;
  ASSERT_TRUE(p.net.runUntil([&] { return p.A->datagramsSent > clientSent; }, 1s));  // the client's timer
  EXPECT_NE(p.A->ep.state(), State::Connected);
  const int serverSent = p.B->datagramsSent;
  p.B->dropOnceConnected = false;
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));
  EXPECT_GT(p.B->datagramsSent, serverSent);
}

// The peer's next flight is the implicit acknowledgement of ours (RFC 6347 section 4.2.4: it cannot be built
// without ours): once a part of it arrives, our flight is never sent again. Here the client (werift under load,
// which computes its flight in JavaScript) answers the server's flight after the server's timer expired, in one
// datagram per record, and before the server's timer event ran: OpenSSL's read path would retransmit the whole
// server flight in front of the final one, and werift, which processes a stale ServerHello as a new one, then
// switched keys and dropped every record that followed.
TEST(Endpoint, NoRetransmissionOnceThePeersNextFlightArrives) {
  Config clientConfig, serverConfig;
  {
    const PairSetup p(22);  // the configurations only (it installs a clock of its own)
    clientConfig = p.a;
    serverConfig = p.b;
  }
  Timestamp t = Timestamp{} + 1s;
  VirtualClock clock([&] { return t; });
  Endpoint client(clientConfig), server(serverConfig);
  const auto drain = [](Endpoint& e) {
    std::vector<Bytes> out;
    while (auto d = e.pollTransmit()) out.emplace_back(d->begin(), d->end());
    return out;
  };
  client.start(t);
  server.start(t);
  for (const auto& d : drain(client)) server.handleInput(d, t);  // ClientHello
  for (const auto& d : drain(server)) client.handleInput(d, t);  // ServerHello ... ServerHelloDone
  const auto flight = drain(client);  // Certificate ... Finished
  ASSERT_FALSE(flight.empty());
  ASSERT_NE(server.nextDeadline(), kNever);
  t = server.nextDeadline() + 20ms;  // the server's timer expired; its event has not run yet
  std::vector<Bytes> answer;
  for (const auto& d : flight) {
    for (ByteReader r(d); !r.empty();) {  // one datagram per record
      const ByteView header = r.bytes(13);
      const ByteView body = r.bytes(loadBe16(header.data() + 11));
      ASSERT_TRUE(r.ok());
      Bytes record(header.begin(), header.end());
      record.insert(record.end(), body.begin(), body.end());
      server.handleInput(record, t);
      for (auto& out : drain(server)) answer.push_back(std::move(out));
    }
  }
  ASSERT_EQ(server.state(), State::Connected);
  for (const auto& d : answer) {
    for (ByteReader r(d); !r.empty();) {
      const ByteView header = r.bytes(13);
      r.skip(loadBe16(header.data() + 11));
      ASSERT_TRUE(r.ok());
      // Epoch 0 handshake records are the server's first flight: none may follow the client's answer.
      EXPECT_FALSE(header[0] == 22 && loadBe16(header.data() + 3) == 0) << "the server resent its first flight";
    }
    client.handleInput(d, t);
  }
  EXPECT_EQ(client.state(), State::Connected);
}

// An idle connection frees OpenSSL's record buffers; whatever comes next (a retransmitted handshake flight the
// server must answer, application data either way, close_notify) allocates them again.
TEST(Endpoint, ReleasedBuffersComeBackOnDemand) {
  PairSetup p(21);
  p.make();
  p.B->dropOnceConnected = true;
  p.startBoth();
  p.A->ep.releaseBuffers();  // still handshaking: nothing happens
  ASSERT_TRUE(p.net.runUntil([&] { return p.B->ep.state() == State::Connected; }, 1s));
  p.B->ep.releaseBuffers();
  p.B->dropOnceConnected = false;
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));  // B answered A's retransmission
  for (int round = 0; round < 3; ++round) {
    p.A->ep.releaseBuffers();
    p.B->ep.releaseBuffers();
    p.B->ep.releaseBuffers();  // twice is harmless
    ASSERT_TRUE(p.A->ep.send(text("to B"), p.net.now()));
    p.A->drain();
    p.B->ep.releaseBuffers();
    ASSERT_TRUE(p.net.runUntil([&] { return p.B->received.size() == static_cast<std::size_t>(round + 1); }, 1s));
    ASSERT_TRUE(p.B->ep.send(text("to A"), p.net.now()));
    p.B->drain();
    ASSERT_TRUE(p.net.runUntil([&] { return p.A->received.size() == static_cast<std::size_t>(round + 1); }, 1s));
  }
  EXPECT_EQ(p.B->received.back(), text("to B"));
  EXPECT_EQ(p.A->received.back(), text("to A"));
  p.A->ep.releaseBuffers();
  p.A->ep.close(p.net.now());
  p.A->drain();
  ASSERT_TRUE(p.net.runUntil([&] { return p.B->ep.state() == State::Closed; }, 1s));
}

struct LossCase {
  double loss;
  bool aIsClient;
};

class LossyHandshake : public ::testing::TestWithParam<LossCase> {};

// Loss, reordering and duplication in both directions; every seed must complete.
TEST_P(LossyHandshake, CompletesForEverySeed) {
  const auto [loss, aIsClient] = GetParam();
  int completed = 0;
  constexpr int kSeeds = 20;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    PairSetup p(static_cast<std::uint64_t>(seed) * 7919);
    sim::LinkConfig l;
    l.delay = 15ms;
    l.jitter = 10ms;
    l.loss = loss;
    l.reorder = 0.2;
    l.reorderDelay = 30ms;
    l.duplicate = 0.1;
    l.mtu = 1200;
    p.net.setDefaultLink(l);
    if (!aIsClient) std::swap(p.a.role, p.b.role);
    p.a.handshakeTimeout = p.b.handshakeTimeout = 120s;
    p.make();
    p.startBoth();
    const bool done = p.net.runUntil(
        [&] { return p.bothConnected() || PairSetup::terminal(p.A->ep.state()) || PairSetup::terminal(p.B->ep.state()); },
        120s);
    if (done && p.bothConnected()) {
      ++completed;
      // Data still flows over the lossy link once connected (retry until one copy gets through).
      for (int i = 0; i < 50 && p.B->received.empty(); ++i) {
        ASSERT_TRUE(p.A->ep.send(asBytes("ping"), p.net.now()));
        p.A->drain();
        p.net.runFor(100ms);
      }
      ASSERT_FALSE(p.B->received.empty());
      EXPECT_EQ(p.B->received[0], text("ping"));
    } else {
      ADD_FAILURE() << "seed " << seed << ": A " << p.A->ep.failureReason() << " / B " << p.B->ep.failureReason();
    }
  }
  EXPECT_EQ(completed, kSeeds);
}

INSTANTIATE_TEST_SUITE_P(Loss, LossyHandshake,
                         ::testing::Values(LossCase{0.0, true}, LossCase{0.0, false}, LossCase{0.2, true},
                                           LossCase{0.2, false}, LossCase{0.5, true}, LossCase{0.5, false}),
                         [](const auto& param) {
                           return "loss" + std::to_string(static_cast<int>(param.param.loss * 100)) +
                                  (param.param.aIsClient ? "_AClient" : "_AServer");
                         });

TEST(Endpoint, ClientRejectsServerWithWrongFingerprint) {
  PairSetup p(5);
  p.a.remoteFingerprints = {testCert(2)->sha256()};
  p.make();
  p.startBoth();
  p.net.runUntil([&] { return PairSetup::terminal(p.A->ep.state()) && PairSetup::terminal(p.B->ep.state()); }, 5s);
  EXPECT_EQ(p.A->ep.state(), State::Failed);
  EXPECT_NE(p.A->ep.failureReason().find("matches no remote SDP fingerprint"), std::string::npos)
      << p.A->ep.failureReason();
  EXPECT_EQ(p.B->ep.state(), State::Failed);
  EXPECT_NE(p.B->ep.failureReason().find("bad certificate"), std::string::npos) << p.B->ep.failureReason();
  ASSERT_FALSE(p.A->events.empty());
  EXPECT_EQ(p.A->events.back().type, Event::Type::Failed);
  EXPECT_FALSE(p.B->ep.send(asBytes("x"), p.net.now()));
}

TEST(Endpoint, ServerRejectsClientWithWrongFingerprintAndDeliversNoData) {
  PairSetup p(6);
  p.b.remoteFingerprints = {testCert(2)->sha256(), *Fingerprint::of(testCert(2)->x509(), HashAlg::Sha512)};
  p.make();
  p.startBoth();
  p.net.runUntil([&] { return PairSetup::terminal(p.B->ep.state()); }, 5s);
  EXPECT_EQ(p.B->ep.state(), State::Failed);
  EXPECT_NE(p.B->ep.failureReason().find("matches no remote SDP fingerprint"), std::string::npos);
  p.net.runFor(1s);
  EXPECT_NE(p.A->ep.state(), State::Connected);
  EXPECT_TRUE(p.B->received.empty());
}

TEST(Endpoint, AcceptsAnyMatchingFingerprintAmongSeveralHashes) {
  PairSetup p(7);
  p.a.remoteFingerprints = {testCert(2)->sha256(), *Fingerprint::of(testCert(1)->x509(), HashAlg::Sha384)};
  p.b.remoteFingerprints = {*Fingerprint::of(testCert(0)->x509(), HashAlg::Sha1)};
  p.make();
  p.startBoth();
  EXPECT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));
}

// A self-signed certificate over a key of any type OpenSSL can make, as a Certificate (through PEM, as an
// application would load it).
std::shared_ptr<const Certificate> certificateOver(EVP_PKEY* key) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("peer"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  // EdDSA signs the message itself: no digest.
  X509_sign(x, key, EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256());
  auto pem = [](auto write) {
    BIO* b = BIO_new(BIO_s_mem());
    write(b);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return out;
  };
  const std::string certPem = pem([&](BIO* b) { PEM_write_bio_X509(b, x); });
  const std::string keyPem = pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); });
  X509_free(x);
  EVP_PKEY_free(key);
  auto cert = Certificate::fromPem(certPem, keyPem);
  return cert ? *cert : nullptr;
}

// The endpoints parse certificates through a short catalogue of key decoders (library_context.cpp): a peer
// presenting a certificate of a key type WebRTC stacks use besides ECDSA P-256 (RSA: older browsers, configured
// stacks; Ed25519: Pion when asked) must still be parsed and matched against its fingerprint. (Our policy limits
// what works: P-384 is not among our groups, and an Ed25519 server finds no shared cipher in OpenSSL 3.0's DTLS 1.2,
// with or without the catalogue.)
TEST(Endpoint, PeerCertificatesOfOtherKeyTypesAreParsedAndVerified) {
  struct KeyCase {
    const char* name;
    std::shared_ptr<const Certificate> cert;
    bool alsoAsServer;
  };
  const KeyCase cases[] = {{"RSA-2048", certificateOver(EVP_RSA_gen(2048)), true},
                           {"Ed25519", certificateOver(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")), false}};
  for (const auto& c : cases) {
    ASSERT_TRUE(c.cert) << c.name;
    for (const bool peerIsClient : {true, false}) {
      if (!peerIsClient && !c.alsoAsServer) continue;
      PairSetup p(8);
      p.a.certificate = c.cert;
      p.b.remoteFingerprints = {c.cert->sha256()};
      if (!peerIsClient) std::swap(p.a.role, p.b.role);
      p.make();
      p.startBoth();
      EXPECT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s))
          << c.name << (peerIsClient ? " as client: " : " as server: ") << p.A->ep.failureReason() << " / "
          << p.B->ep.failureReason();
    }
  }
  // And a certificate that does not match the fingerprint is still refused.
  PairSetup p(9);
  p.a.certificate = cases[0].cert;
  p.b.remoteFingerprints = {cases[1].cert->sha256()};
  p.make();
  p.startBoth();
  p.net.runUntil([&] { return PairSetup::terminal(p.B->ep.state()); }, 5s);
  EXPECT_EQ(p.B->ep.state(), State::Failed);
}

// The answer (with the remote fingerprint) may arrive after the handshake finished: data is held until then.
TEST(Endpoint, LateFingerprintsReleaseHeldDataOrFail) {
  for (bool matches : {true, false}) {
    PairSetup p(8);
    p.a.remoteFingerprints.clear();
    p.make();
    p.startBoth();
    ASSERT_TRUE(p.net.runUntil([&] { return p.B->ep.state() == State::Connected; }, 1s));
    p.net.runFor(200ms);
    EXPECT_EQ(p.A->ep.state(), State::Connecting);
    EXPECT_EQ(p.A->ep.maxApplicationPayload(), 0u);
    ASSERT_TRUE(p.B->ep.send(asBytes("early"), p.net.now()));
    p.B->drain();
    p.net.runFor(200ms);
    EXPECT_TRUE(p.A->received.empty());
    p.A->ep.setRemoteFingerprints({matches ? testCert(1)->sha256() : testCert(2)->sha256()}, p.net.now());
    p.A->drain();
    if (matches) {
      EXPECT_EQ(p.A->ep.state(), State::Connected);
      ASSERT_EQ(p.A->received.size(), 1u);
      EXPECT_EQ(p.A->received[0], text("early"));
    } else {
      EXPECT_EQ(p.A->ep.state(), State::Failed);
      EXPECT_TRUE(p.A->received.empty());
      p.net.runFor(200ms);
      EXPECT_EQ(p.B->ep.state(), State::Closed);  // told with close_notify
    }
  }
}

TEST(Endpoint, TwoClientsFailCleanly) {
  PairSetup p(9);
  p.b.role = Role::Client;
  p.make();
  p.startBoth();
  EXPECT_TRUE(p.net.runUntil(
      [&] { return PairSetup::terminal(p.A->ep.state()) && PairSetup::terminal(p.B->ep.state()); }, 5s));
  EXPECT_EQ(p.A->ep.state(), State::Failed);
  EXPECT_EQ(p.B->ep.state(), State::Failed);
  EXPECT_FALSE(p.A->ep.failureReason().empty());
}

TEST(Endpoint, TwoServersTimeOutCleanly) {
  PairSetup p(10);
  p.a.role = Role::Server;
  p.a.handshakeTimeout = p.b.handshakeTimeout = 5s;
  p.make();
  p.startBoth();
  EXPECT_TRUE(p.net.runUntil(
      [&] { return PairSetup::terminal(p.A->ep.state()) && PairSetup::terminal(p.B->ep.state()); }, 10s));
  EXPECT_EQ(p.A->ep.failureReason(), "DTLS handshake timed out");
  EXPECT_EQ(p.A->ep.nextDeadline(), kNever);
}

TEST(Endpoint, CloseNotifyClosesThePeer) {
  PairSetup p(11);
  p.make();
  p.startBoth();
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));
  p.A->ep.close(p.net.now());
  p.A->drain();
  EXPECT_EQ(p.A->ep.state(), State::Closed);
  EXPECT_EQ(p.A->events.back().type, Event::Type::Closed);
  ASSERT_TRUE(p.net.runUntil([&] { return p.B->ep.state() == State::Closed; }, 1s));
  EXPECT_EQ(p.B->ep.failureReason(), "peer sent close_notify");
  EXPECT_EQ(p.B->events.back().type, Event::Type::Closed);
  EXPECT_FALSE(p.A->ep.send(asBytes("late"), p.net.now()));
}

// A ClientHello that arrives before the answerer called start() (its role was not known yet) is held, so the
// handshake does not wait for a retransmission.
TEST(Endpoint, EarlyClientHelloIsHeldUntilStart) {
  PairSetup p(12);
  p.b.role = Role::Client;  // provisional; the answer makes it the server
  p.make();
  const Timestamp t0 = p.net.now();
  p.A->start();
  p.net.runFor(30ms);
  EXPECT_EQ(p.B->ep.state(), State::New);
  ASSERT_TRUE(p.B->ep.setRole(Role::Server));
  p.B->start();
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));
  EXPECT_EQ(p.A->datagramsSent, 2);  // no retransmission was needed
  EXPECT_LT(p.net.now() - t0, 100ms);
  EXPECT_FALSE(p.B->ep.setRole(Role::Client));
}

// A forged plaintext application_data record (epoch 0) injected during the handshake is never delivered.
TEST(Endpoint, UnauthenticatedRecordsAreNeverDelivered) {
  PairSetup p(13);
  p.make();
  p.startBoth();
  // content type 23, DTLS 1.2, epoch 0 and 1, seq 9, length 5, "EVIL!"
  // Application data in epoch 0 (plaintext) and epoch 1 (bad tag, and too short for any AEAD), several per datagram.
  for (std::uint8_t epoch : {0, 1}) {
    for (std::uint8_t len : {5, 40}) {
      Bytes forged = {23, 0xfe, 0xfd, 0, epoch, 0, 0, 0, 0, 0, 9, 0, len};
      forged.resize(13 + len, 'E');
      const Bytes once = forged;
      forged.insert(forged.end(), once.begin(), once.end());
      p.B->ep.handleInput(forged, p.net.now());
      p.A->ep.handleInput(forged, p.net.now());
    }
  }
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s))
      << p.A->ep.failureReason() << " / " << p.B->ep.failureReason();
  p.net.runFor(100ms);
  EXPECT_TRUE(p.A->received.empty());
  EXPECT_TRUE(p.B->received.empty());
  // Garbage and non-DTLS datagrams after the handshake are dropped too, without harming the connection.
  const std::uint8_t junk[] = {23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 50, 0, 3, 1, 2, 3};
  const std::uint8_t stun[] = {0, 1, 0, 0};
  p.B->ep.handleInput(junk, p.net.now());
  p.B->ep.handleInput(stun, p.net.now());
  EXPECT_EQ(p.B->ep.state(), State::Connected);
  EXPECT_FALSE(p.B->ep.pollApplicationData());
}

// Through OpenSSL's record layer, and through RecordProtection after the handover.
class DataPath : public ::testing::TestWithParam<bool> {};

TEST_P(DataPath, DoesNotAllocatePerRecord) {
  PairSetup p(14);
  p.a.releaseSslAfterHandshake = p.b.releaseSslAfterHandshake = GetParam();
  p.make();
  p.startBoth();
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));
  Bytes payload(1100, 0x42);
  auto pump = [&](int n) {
    for (int i = 0; i < n; ++i) {
      payload[0] = static_cast<std::uint8_t>(i);
      ASSERT_TRUE(p.A->ep.send(payload, p.net.now()));
      while (auto d = p.A->ep.pollTransmit()) p.B->ep.handleInput(*d, p.net.now());
      auto got = p.B->ep.pollApplicationData();
      ASSERT_TRUE(got);
      ASSERT_EQ(got->size(), payload.size());
      ASSERT_EQ((*got)[0], static_cast<std::uint8_t>(i));
    }
  };
  pump(10);  // warm up the reused buffers
  ASSERT_TRUE(p.B->ep.send(payload, p.net.now()));
  while (auto d = p.B->ep.pollTransmit()) p.A->ep.handleInput(*d, p.net.now());
  ASSERT_TRUE(p.A->ep.pollApplicationData());
  ASSERT_EQ(p.A->ep.sslReleased(), GetParam());
  ASSERT_EQ(p.B->ep.sslReleased(), GetParam());
  pump(10);
  const long before = g_allocations.load();
  pump(1000);
  EXPECT_EQ(g_allocations.load() - before, 0);
}

// Every application-data record leaves in a datagram of its own, as browsers send them: aiortc reads one record
// per datagram, so a second SCTP packet in the same datagram waited there until the next datagram came.
TEST_P(DataPath, EachApplicationRecordHasItsOwnDatagram) {
  PairSetup p(15);
  p.a.releaseSslAfterHandshake = p.b.releaseSslAfterHandshake = GetParam();
  p.make();
  p.startBoth();
  ASSERT_TRUE(p.net.runUntil([&] { return p.bothConnected(); }, 1s));
  for (int round = 0; round < 2; ++round) {  // the second round runs after the handover, if there is one
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.A->ep.send(text("sack-sized"), p.net.now()));
    int datagrams = 0;
    while (auto d = p.A->ep.pollTransmit()) {
      ++datagrams;
      ASSERT_GE(d->size(), 13u);
      EXPECT_EQ((*d)[0], 23);  // application_data
      EXPECT_EQ(loadBe16(d->data() + 11) + 13u, d->size()) << "more than one record in the datagram";
      p.B->ep.handleInput(*d, p.net.now());
    }
    EXPECT_EQ(datagrams, 3);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.B->ep.pollApplicationData());
    ASSERT_TRUE(p.B->ep.send(text("reply"), p.net.now()));
    while (auto d = p.B->ep.pollTransmit()) p.A->ep.handleInput(*d, p.net.now());
    ASSERT_TRUE(p.A->ep.pollApplicationData());
  }
  EXPECT_EQ(p.A->ep.sslReleased(), GetParam());
}

INSTANTIATE_TEST_SUITE_P(RecordLayers, DataPath, ::testing::Bool(),
                         [](const auto& param) { return param.param ? "RecordProtection" : "OpenSsl"; });

}  // namespace
}  // namespace rtcpeer::dtls::test
