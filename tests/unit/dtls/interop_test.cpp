// Interop over loopback UDP against independent DTLS 1.2 implementations run as child processes: OpenSSL's
// s_server/s_client and GnuTLS's gnutls-cli. Our Endpoint is driven by a minimal socket loop here
// (src/net is not involved) on the real clock. Every wait is bounded and the child is always killed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "dtls/endpoint.hpp"

namespace rtcpeer::dtls {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

Timestamp realNow() {
  return fromMicros(std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}

bool haveTool(const std::string& name) { return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0; }

// A PEM certificate and key on disk for a child process, with the certificate's fingerprint.
struct PemIdentity {
  fs::path cert, key;
  Fingerprint fingerprint;
};

PemIdentity writePem(const fs::path& dir, const std::string& name, X509* x, EVP_PKEY* k) {
  PemIdentity id{dir / (name + ".crt"), dir / (name + ".key"), *Fingerprint::of(x, HashAlg::Sha256)};
  FILE* f = std::fopen(id.cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(id.key.c_str(), "w");
  PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  return id;
}

// A self-signed RSA-2048 certificate, for peers that present RSA (RFC 8827 allows either).
PemIdentity writeRsaPem(const fs::path& dir) {
  EVP_PKEY* k = EVP_RSA_gen(2048);
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("rsa-peer"), -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, k);
  X509_sign(x, k, EVP_sha256());
  PemIdentity id = writePem(dir, "rsa", x, k);
  X509_free(x);
  EVP_PKEY_free(k);
  return id;
}

class Child {
 public:
  explicit Child(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      dup2(out[1], 2);
      close(in[1]);
      close(out[0]);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
    fcntl(stdout_, F_SETFL, O_NONBLOCK);
  }
  // Whether the process has exited (reaped here, so the destructor's kill is then a no-op on pid -1).
  bool exited() {
    if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
    return pid_ < 0;
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdin_ >= 0) close(stdin_);
    if (stdout_ >= 0) close(stdout_);
  }
  void write(const std::string& s) { ASSERT_EQ(::write(stdin_, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  const std::string& output() {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(stdout_, buf, sizeof buf)) > 0) output_.append(buf, static_cast<std::size_t>(n));
    return output_;
  }
  int fd() const { return stdout_; }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1, stdout_ = -1;
  std::string output_;
};

// A non-blocking UDP socket on 127.0.0.1 with a kernel-chosen port.
int loopbackSocket(std::uint16_t& port) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  fcntl(s, F_SETFL, O_NONBLOCK);
  return s;
}

// A port for a child server: free when probed (the child binds it right after; a collision fails the test loudly).
std::uint16_t freeUdpPort() {
  std::uint16_t port = 0;
  close(loopbackSocket(port));
  return port;
}

// Our endpoint on a loopback UDP socket.
class Loop {
 public:
  explicit Loop(Config cfg) : ep(std::move(cfg)), sock_(loopbackSocket(port)) {}
  ~Loop() { close(sock_); }
  void setPeer(std::uint16_t p) {
    peer_.sin_family = AF_INET;
    peer_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    peer_.sin_port = htons(p);
    havePeer_ = true;
  }
  // Runs the endpoint (and watches the child) until done() or the time limit.
  bool runUntil(Child& child, const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    std::uint8_t buf[65536];
    while (std::chrono::steady_clock::now() < end) {
      flush();
      if (done()) return true;
      const Timestamp now = realNow();
      const auto wait = ep.nextDeadline() == kNever ? 20ms
                        : std::min<Duration>(20ms, std::max<Duration>(0us, ep.nextDeadline() - now));
      pollfd fds[2] = {{sock_, POLLIN, 0}, {child.fd(), POLLIN, 0}};
      poll(fds, 2, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) + 1);
      sockaddr_in from{};
      socklen_t len = sizeof from;
      ssize_t n;
      while ((n = recvfrom(sock_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len)) > 0) {
        if (!havePeer_) {
          peer_ = from;
          havePeer_ = true;
        }
        ep.handleInput(ByteView(buf, static_cast<std::size_t>(n)), realNow());
      }
      if (realNow() >= ep.nextDeadline()) ep.handleTimeout(realNow());
      child.output();
    }
    flush();
    return done();
  }
  void flush() {
    while (auto d = ep.pollTransmit())
      if (havePeer_) sendto(sock_, d->data(), d->size(), 0, reinterpret_cast<sockaddr*>(&peer_), sizeof peer_);
    while (auto a = ep.pollApplicationData()) received.append(asString(*a));
  }

  Endpoint ep;
  std::uint16_t port = 0;
  std::string received;

 private:
  int sock_;
  sockaddr_in peer_{};
  bool havePeer_ = false;
};

class Interop : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rtcpeer-dtls-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ours_ = *Certificate::generate();
    auto theirs = *Certificate::generate();
    theirs_ = writePem(dir_, "peer", theirs->x509(), theirs->privateKey());
  }
  void TearDown() override { fs::remove_all(dir_); }

  Config config(Role role, const Fingerprint& remote) {
    Config c;
    c.certificate = ours_;
    c.role = role;
    c.remoteFingerprints = {remote};
    return c;
  }

  // We are the client of a server process that listens on `port` once it printed `ready`.
  void runAgainstServer(const std::vector<std::string>& argv, std::uint16_t port, const std::string& ready,
                        const Fingerprint& serverFp, const std::string& cipher) {
    Child child(argv);
    Loop loop(config(Role::Client, serverFp));
    loop.setPeer(port);
    ASSERT_TRUE(loop.runUntil(child, [&] { return child.output().find(ready) != std::string::npos; }, 10s))
        << child.output();
    loop.ep.start(realNow());
    ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() != State::Connecting; }, 10s)) << child.output();
    ASSERT_EQ(loop.ep.state(), State::Connected) << loop.ep.failureReason() << "\n" << child.output();
    if (!cipher.empty()) {
      EXPECT_EQ(loop.ep.cipherName(), cipher);
    }
    exchange(loop, child, "DONE");  // s_server's word for a close_notify
  }

  // We are the server of a client process started with `argv` (which must connect to loop.port).
  void runAgainstClient(const std::function<std::vector<std::string>(std::uint16_t)>& argv,
                        const std::string& closedMarker) {
    Loop loop(config(Role::Server, theirs_.fingerprint));
    loop.ep.start(realNow());
    Child child(argv(loop.port));
    ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() != State::Connecting; }, 10s)) << child.output();
    ASSERT_EQ(loop.ep.state(), State::Connected) << loop.ep.failureReason() << "\n" << child.output();
    exchange(loop, child, closedMarker);
  }

  // A line each way, twice. The peer's first record makes the endpoint hand its records over from OpenSSL to
  // RecordProtection, so the second round checks our own record protection against the other implementation's,
  // and so does the close_notify at the end.
  void exchange(Loop& loop, Child& child, const std::string& closedMarker) {
    for (const std::string round : {"first", "second"}) {
      const std::string ours = "hello-from-rtcpeer-" + round + "\n";
      ASSERT_TRUE(loop.ep.send(asBytes(ours), realNow()));
      ASSERT_TRUE(loop.runUntil(child, [&] { return child.output().find(ours) != std::string::npos; }, 10s))
          << child.output();
      const std::string theirs = "hello-from-peer-" + round + "\n";
      child.write(theirs);
      ASSERT_TRUE(loop.runUntil(child, [&] { return loop.received.find(theirs) != std::string::npos; }, 10s))
          << child.output();
      EXPECT_TRUE(loop.ep.sslReleased());
    }
    loop.ep.close(realNow());
    loop.flush();
    // The peer read our close_notify: it says so (`closedMarker`) or, with none given, exits.
    EXPECT_TRUE(loop.runUntil(
        child,
        [&] { return closedMarker.empty() ? child.exited() : child.output().find(closedMarker) != std::string::npos; },
        10s))
        << child.output();
  }

  std::vector<std::string> opensslServer(std::uint16_t port, const PemIdentity& id,
                                         const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a{"openssl", "s_server", "-dtls1_2", "-accept", "127.0.0.1:" + std::to_string(port),
                               "-cert", id.cert, "-key", id.key, "-verify", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  fs::path dir_;
  std::shared_ptr<const Certificate> ours_;
  PemIdentity theirs_;
};

TEST_F(Interop, OpensslServerEcdsa) {
  const auto port = freeUdpPort();
  runAgainstServer(opensslServer(port, theirs_), port, "ACCEPT", theirs_.fingerprint,
                   "ECDHE-ECDSA-AES128-GCM-SHA256");
}

TEST_F(Interop, OpensslServerChacha) {
  const auto port = freeUdpPort();
  runAgainstServer(opensslServer(port, theirs_, {"-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"}), port, "ACCEPT",
                   theirs_.fingerprint, "ECDHE-ECDSA-CHACHA20-POLY1305");
}

TEST_F(Interop, OpensslServerRsaAes256) {
  const PemIdentity rsa = writeRsaPem(dir_);
  const auto port = freeUdpPort();
  runAgainstServer(opensslServer(port, rsa, {"-cipher", "ECDHE-RSA-AES256-GCM-SHA384"}), port, "ACCEPT",
                   rsa.fingerprint, "ECDHE-RSA-AES256-GCM-SHA384");
}

// use_srtp (RFC 5764): a server that takes part picks a profile from our offer, as it would from a browser's.
TEST_F(Interop, OpensslServerPicksAnSrtpProfileWeOffer) {
  const auto port = freeUdpPort();
  Child child(opensslServer(port, theirs_, {"-use_srtp", "SRTP_AEAD_AES_128_GCM"}));
  Loop loop(config(Role::Client, theirs_.fingerprint));
  loop.setPeer(port);
  ASSERT_TRUE(loop.runUntil(child, [&] { return child.output().find("ACCEPT") != std::string::npos; }, 10s));
  loop.ep.start(realNow());
  ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() != State::Connecting; }, 10s)) << child.output();
  ASSERT_EQ(loop.ep.state(), State::Connected) << loop.ep.failureReason() << "\n" << child.output();
  EXPECT_EQ(loop.ep.srtpProfile(), "SRTP_AEAD_AES_128_GCM");
}

// As the server we answer a client's use_srtp offer with a profile (Pion as the client fails the connection
// otherwise), and a client that offers none gets no extension back.
TEST_F(Interop, OpensslClientGetsAnSrtpProfile) {
  Loop loop(config(Role::Server, theirs_.fingerprint));
  loop.ep.start(realNow());
  Child child({"openssl", "s_client", "-dtls1_2", "-connect", "127.0.0.1:" + std::to_string(loop.port), "-cert",
               theirs_.cert, "-key", theirs_.key, "-use_srtp", "SRTP_AES128_CM_SHA1_80"});
  ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() != State::Connecting; }, 10s)) << child.output();
  ASSERT_EQ(loop.ep.state(), State::Connected) << loop.ep.failureReason() << "\n" << child.output();
  EXPECT_EQ(loop.ep.srtpProfile(), "SRTP_AES128_CM_SHA1_80");
  EXPECT_TRUE(loop.runUntil(
      child, [&] { return child.output().find("SRTP Extension negotiated, profile=SRTP_AES128_CM_SHA1_80") !=
                          std::string::npos; }, 10s))
      << child.output();
}

TEST_F(Interop, OpensslClientWithoutUseSrtpGetsNone) {
  Loop loop(config(Role::Server, theirs_.fingerprint));
  loop.ep.start(realNow());
  Child child({"openssl", "s_client", "-dtls1_2", "-connect", "127.0.0.1:" + std::to_string(loop.port), "-cert",
               theirs_.cert, "-key", theirs_.key});
  ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() != State::Connecting; }, 10s)) << child.output();
  ASSERT_EQ(loop.ep.state(), State::Connected) << loop.ep.failureReason() << "\n" << child.output();
  EXPECT_EQ(loop.ep.srtpProfile(), "");
}

TEST_F(Interop, OpensslServerWithWrongFingerprintFails) {
  const auto port = freeUdpPort();
  Child child(opensslServer(port, theirs_));
  Loop loop(config(Role::Client, ours_->sha256()));  // expects the wrong certificate
  loop.setPeer(port);
  ASSERT_TRUE(loop.runUntil(child, [&] { return child.output().find("ACCEPT") != std::string::npos; }, 10s));
  loop.ep.start(realNow());
  ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() != State::Connecting; }, 10s));
  EXPECT_EQ(loop.ep.state(), State::Failed);
  EXPECT_NE(loop.ep.failureReason().find("matches no remote SDP fingerprint"), std::string::npos);
  EXPECT_TRUE(loop.received.empty());
}

// SSL_OP_NO_RENEGOTIATION: a renegotiation attempt ("R" on s_client's stdin sends a new ClientHello) is refused
// with a no_renegotiation alert, which s_client answers with a fatal handshake_failure; nothing is renegotiated.
// After the handover (s_client sent a line first) the endpoint refuses it by itself, the same way.
class Renegotiation : public Interop, public ::testing::WithParamInterface<bool> {};

TEST_P(Renegotiation, IsRefused) {
  Loop loop(config(Role::Server, theirs_.fingerprint));
  loop.ep.start(realNow());
  Child child({"openssl", "s_client", "-dtls1_2", "-connect", "127.0.0.1:" + std::to_string(loop.port), "-cert",
               theirs_.cert, "-key", theirs_.key});
  ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() == State::Connected; }, 10s)) << child.output();
  if (GetParam()) {
    child.write("data-first\n");
    ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.sslReleased(); }, 10s)) << child.output();
  }
  child.write("R\n");
  ASSERT_TRUE(loop.runUntil(child, [&] { return loop.ep.state() != State::Connected; }, 10s)) << child.output();
  EXPECT_EQ(loop.ep.state(), State::Failed);
  EXPECT_EQ(loop.ep.failureReason(), "peer sent fatal alert: handshake failure");
  // s_client prints the alert it got; its output may reach us a moment after its answer did.
  EXPECT_TRUE(
      loop.runUntil(child, [&] { return child.output().find("no renegotiation") != std::string::npos; }, 10s))
      << child.output();
}

INSTANTIATE_TEST_SUITE_P(Interop, Renegotiation, ::testing::Bool(),
                         [](const auto& param) { return param.param ? "AfterHandover" : "BeforeHandover"; });

TEST_F(Interop, OpensslClient) {
  runAgainstClient([&](std::uint16_t port) {
    return std::vector<std::string>{"openssl", "s_client", "-dtls1_2", "-connect",
                                    "127.0.0.1:" + std::to_string(port), "-cert", theirs_.cert, "-key", theirs_.key};
  }, "");  // s_client exits on close_notify
}

// gnutls-serv has no option to bind to loopback only (it listens on every interface), so GnuTLS is exercised as
// the client only; OpenSSL's s_server covers our client role.
TEST_F(Interop, GnutlsClient) {
  if (!haveTool("gnutls-cli")) GTEST_SKIP() << "gnutls-cli not installed (Debian: gnutls-bin)";
  runAgainstClient([&](std::uint16_t port) {
    return std::vector<std::string>{"gnutls-cli", "--udp", "--insecure", "-p", std::to_string(port),
                                    "--x509certfile", theirs_.cert, "--x509keyfile", theirs_.key, "127.0.0.1"};
  }, "Peer has closed");
}

}  // namespace
}  // namespace rtcpeer::dtls
