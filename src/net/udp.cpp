#include "net/udp.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "common/log.hpp"
#include "net/sockaddr.hpp"

namespace rtcpeer::net {
namespace detail {

socklen_t toSockaddr(const SocketAddress& a, sockaddr_storage& ss) noexcept {
  std::memset(&ss, 0, sizeof ss);
  if (a.isV4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a.port());
    std::memcpy(&sin->sin_addr, a.bytes().data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(a.port());
  std::memcpy(&sin6->sin6_addr, a.bytes().data(), 16);
  return sizeof(sockaddr_in6);
}

SocketAddress fromSockaddr(const sockaddr* sa) noexcept {
  if (sa->sa_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    std::array<std::uint8_t, 4> ip;
    std::memcpy(ip.data(), &sin->sin_addr, 4);
    return SocketAddress::v4(ip, ntohs(sin->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    std::array<std::uint8_t, 16> ip;
    std::memcpy(ip.data(), &sin6->sin6_addr, 16);
    return SocketAddress::v6(ip, ntohs(sin6->sin6_port));
  }
  return {};
}

std::string errnoText(std::string_view what) {
  const int error = errno;
  std::string text = std::string(what) + ": " + std::strerror(error);
  if (error == EMFILE) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      const auto show = [](rlim_t v) { return v == RLIM_INFINITY ? std::string("unlimited") : std::to_string(v); };
      text += " (RLIMIT_NOFILE soft limit " + show(limit.rlim_cur) + ", hard " + show(limit.rlim_max) +
              "; a connection holds one descriptor or more: raise the hard limit, e.g. ulimit -Hn as root, or "
              "LimitNOFILE= of a systemd service)";
    }
  } else if (error == ENFILE) {
    text += " (the system-wide limit on open files, sysctl fs.file-max)";
  }
  errno = error;
  return text;
}

bool raiseDescriptorLimit() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return false;
  const rlim_t from = limit.rlim_cur;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  RTCPEER_LOG(Info, "net", "out of descriptors: raised the RLIMIT_NOFILE soft limit from " << from << " to "
                               << limit.rlim_max);
  return true;
}

}  // namespace detail

using detail::errnoText;
using detail::fromSockaddr;
using detail::toSockaddr;

Timestamp now() noexcept {
  auto d = std::chrono::steady_clock::now().time_since_epoch();
  return Timestamp(std::chrono::duration_cast<Duration>(d));
}

namespace {

// Why the last read of the interface list failed on this thread ("" if it did not): the bind error then, rather
// than "no interface address matches".
thread_local std::string interfaceReadError;

std::vector<Interface> readInterfaces() {
  std::vector<Interface> out;
  ifaddrs* list = nullptr;
  interfaceReadError.clear();
  // getifaddrs opens a netlink socket: out of descriptors, raise the soft limit as for our own (sockaddr.hpp).
  if (getifaddrs(&list) != 0 && !(errno == EMFILE && detail::raiseDescriptorLimit() && getifaddrs(&list) == 0)) {
    interfaceReadError = errnoText("getifaddrs (listing the interfaces)");
    return out;
  }
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || !(i->ifa_flags & IFF_RUNNING)) continue;
    if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6) continue;
    SocketAddress a = fromSockaddr(i->ifa_addr);
    if (a.isV6() && a.isLinkLocal()) continue;
    a.setPort(0);
    out.push_back({i->ifa_name, a, (i->ifa_flags & IFF_LOOPBACK) != 0});
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

std::vector<Interface> enumerateInterfaces(bool includeLoopback) {
  // getifaddrs() asks the kernel over netlink every time (~15 us, a socket and several messages): a server creating
  // thousands of connections per second reads the same list over and over. The list read last is kept for
  // kInterfaceListLifetime, for the network namespace it was read in (a thread may move: setns, unshare); a
  // connection created within it sees an interface that appeared since at most that much later. A failed read is
  // not kept.
  static std::mutex mutex;
  static std::vector<Interface> cached;
  static Timestamp readAt{};
  static ino_t cachedNamespace = 0;
  struct stat ns {};
  const ino_t namespaceId = ::stat("/proc/thread-self/ns/net", &ns) == 0 ? ns.st_ino : 0;
  std::vector<Interface> all;
  {
    const Timestamp t = now();
    std::lock_guard lock(mutex);
    if (cached.empty() || namespaceId == 0 || namespaceId != cachedNamespace || t - readAt >= kInterfaceListLifetime ||
        t < readAt) {
      cached = readInterfaces();
      readAt = t;
      cachedNamespace = namespaceId;
    }
    all = cached;
    if (!cached.empty()) interfaceReadError.clear();
  }
  if (!includeLoopback) std::erase_if(all, [](const Interface& i) { return i.loopback; });
  return all;
}

namespace {
// The batch buffers, one set per thread and allocated on first use (see recvBatch()).
struct Batch {
  std::array<std::array<std::uint8_t, UdpSocket::kBufferSize>, UdpSocket::kBatch> data;
  std::array<sockaddr_storage, UdpSocket::kBatch> from;
  std::array<iovec, UdpSocket::kBatch> iov;
  std::array<mmsghdr, UdpSocket::kBatch> msgs;
  std::array<Received, UdpSocket::kBatch> received;
  // Send side: only used within one sendBatch() call.
  std::array<sockaddr_storage, UdpSocket::kBatch> to;
  std::array<iovec, UdpSocket::kBatch> txIov;
  std::array<mmsghdr, UdpSocket::kBatch> txMsgs;

  Batch() {
    for (std::size_t i = 0; i < UdpSocket::kBatch; ++i) {
      iov[i] = {data[i].data(), UdpSocket::kBufferSize};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
};

Batch& threadBatch() {
  thread_local std::unique_ptr<Batch> batch;
  if (!batch) batch = std::make_unique<Batch>();
  return *batch;
}
}  // namespace

UdpSocket::UdpSocket(UdpSocket&& other) noexcept : fd_(std::exchange(other.fd_, -1)), local_(other.local_) {}

UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    local_ = other.local_;
  }
  return *this;
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {
// The kernel's default UDP buffers (~208 KiB) overflow during an SCTP burst of a few hundred datagrams, and every
// drop costs a retransmission; ask for kSocketBuffer. Unprivileged processes are capped at net.core.rmem_max /
// wmem_max; a privileged one may exceed it with the *FORCE options.
constexpr int kSocketBuffer = 4 * 1024 * 1024;

void setBufferSize(int fd, int opt, int forceOpt) {
  int want = kSocketBuffer;
  ::setsockopt(fd, SOL_SOCKET, opt, &want, sizeof want);
  int got = 0;
  socklen_t len = sizeof got;
  // Linux reports twice the requested value (it counts its bookkeeping overhead).
  if (::getsockopt(fd, SOL_SOCKET, opt, &got, &len) == 0 && got < 2 * want)
    ::setsockopt(fd, SOL_SOCKET, forceOpt, &want, sizeof want);
}

void setBufferSizes(int fd) {
  setBufferSize(fd, SO_RCVBUF, SO_RCVBUFFORCE);
  setBufferSize(fd, SO_SNDBUF, SO_SNDBUFFORCE);
}
}  // namespace

Result<UdpSocket> UdpSocket::bind(const SocketAddress& local) {
  if (!local.valid()) return fail("net: cannot bind an invalid address");
  int fd = detail::newDescriptor(
      [&] { return ::socket(local.isV4() ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); });
  if (fd < 0) return fail(errnoText("net: socket"));
  if (local.isV6()) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  setBufferSizes(fd);
  sockaddr_storage ss;
  socklen_t len = toSockaddr(local, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    auto f = fail(errnoText("net: bind " + local.toString()));
    ::close(fd);
    return f;
  }
  len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return UdpSocket(fd, fromSockaddr(reinterpret_cast<sockaddr*>(&ss)));
}

Result<UdpSocket> UdpSocket::bindInRange(SocketAddress local, std::uint16_t portMin, std::uint16_t portMax) {
  if (portMin == 0 && portMax == 0) return bind(local);
  if (portMin > portMax) return fail("net: empty port range");
  for (std::uint32_t p = portMin; p <= portMax; ++p) {
    local.setPort(static_cast<std::uint16_t>(p));
    auto s = bind(local);
    if (s || errno == EMFILE || errno == ENFILE) return s;  // out of descriptors: every port fails alike
  }
  return fail("net: no free port in " + std::to_string(portMin) + "-" + std::to_string(portMax) + " on " +
              local.ipString());
}

std::span<const Received> UdpSocket::recvBatch() {
  auto& b = threadBatch();
  for (auto& m : b.msgs) m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);  // the kernel shrinks it per datagram
  int n = ::recvmmsg(fd_, b.msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
  if (n <= 0) return {};
  std::size_t count = 0;
  for (int i = 0; i < n; ++i) {
    if (b.msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
    b.received[count++] = {fromSockaddr(reinterpret_cast<sockaddr*>(&b.from[i])),
                           ByteView(b.data[i].data(), b.msgs[i].msg_len)};
  }
  return {b.received.data(), count};
}

std::size_t UdpSocket::sendBatch(std::span<const Outgoing> batch) {
  auto& b = threadBatch();
  std::size_t sent = 0;
  while (sent < batch.size()) {
    std::size_t n = std::min(batch.size() - sent, kBatch);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& o = batch[sent + i];
      std::memset(&b.txMsgs[i], 0, sizeof(mmsghdr));
      b.txIov[i] = {const_cast<std::uint8_t*>(o.data.data()), o.data.size()};
      b.txMsgs[i].msg_hdr.msg_name = &b.to[i];
      b.txMsgs[i].msg_hdr.msg_namelen = toSockaddr(o.remote, b.to[i]);
      b.txMsgs[i].msg_hdr.msg_iov = &b.txIov[i];
      b.txMsgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = ::sendmmsg(fd_, b.txMsgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
    if (r <= 0) {
      // The first message failed (EAGAIN, unreachable, family mismatch): drop it and go on with the rest.
      RTCPEER_LOG(Debug, "net", "sendmmsg to " << batch[sent].remote.toString() << ": " << std::strerror(errno));
      ++sent;
      continue;
    }
    sent += static_cast<std::size_t>(r);
  }
  return sent;
}

bool UdpSocket::sendTo(const SocketAddress& remote, ByteView data) {
  sockaddr_storage ss;
  socklen_t len = toSockaddr(remote, ss);
  return ::sendto(fd_, data.data(), data.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), len) ==
         static_cast<ssize_t>(data.size());
}

std::vector<SocketAddress> interfaceAddresses(const BindOptions& o) {
  bool wantsLoopbackIp = std::any_of(o.addresses.begin(), o.addresses.end(),
                                     [](const SocketAddress& a) { return a.isLoopback(); });
  std::vector<SocketAddress> out;
  for (const auto& itf : enumerateInterfaces(o.includeLoopback || wantsLoopbackIp)) {
    if ((itf.address.isV4() && !o.ipv4) || (itf.address.isV6() && !o.ipv6)) continue;
    if (!o.interfaces.empty() &&
        std::find(o.interfaces.begin(), o.interfaces.end(), itf.name) == o.interfaces.end())
      continue;
    if (!o.addresses.empty() && std::none_of(o.addresses.begin(), o.addresses.end(), [&](SocketAddress a) {
          a.setPort(0);
          return a == itf.address;
        }))
      continue;
    out.push_back(itf.address);
  }
  return out;
}

std::string noInterfaceReason() {
  return interfaceReadError.empty() ? std::string("no interface address matches the bind options")
                                    : interfaceReadError;
}

Result<std::vector<UdpSocket>> bindInterfaces(const BindOptions& o) {
  std::vector<UdpSocket> out;
  const auto addresses = interfaceAddresses(o);
  std::string lastError = noInterfaceReason();
  for (const auto& address : addresses) {
    auto s = UdpSocket::bindInRange(address, o.portMin, o.portMax);
    if (!s) {
      RTCPEER_LOG(Warning, "net", s.reason());
      lastError = s.reason();
      continue;
    }
    out.push_back(std::move(*s));
  }
  if (out.empty()) return fail("net: " + lastError);
  return out;
}

Result<int> wait(std::span<const int> fds, Timestamp deadline) { return wait(fds, {}, deadline); }

Result<int> wait(std::span<const int> fds, std::span<const int> writeFds, Timestamp deadline) {
  std::array<pollfd, 64> pfds;
  if (fds.size() + writeFds.size() > pfds.size()) return fail("net: too many descriptors to wait on");
  for (std::size_t i = 0; i < fds.size(); ++i) pfds[i] = {fds[i], POLLIN, 0};
  for (std::size_t i = 0; i < writeFds.size(); ++i) pfds[fds.size() + i] = {writeFds[i], POLLOUT, 0};
  int timeoutMs = -1;
  if (deadline != kNever) {
    auto left = deadline - now();
    // Round up so we never wake just before the deadline and spin.
    timeoutMs = left <= Duration::zero() ? 0 : static_cast<int>(std::min<std::int64_t>((left.count() + 999) / 1000, 1 << 30));
  }
  int r = ::poll(pfds.data(), fds.size() + writeFds.size(), timeoutMs);
  if (r < 0) {
    if (errno == EINTR) return 0;
    return fail(errnoText("net: poll"));
  }
  return r;
}

Result<Poller> Poller::create() {
  int fd = detail::newDescriptor([] { return ::epoll_create1(EPOLL_CLOEXEC); });
  if (fd < 0) return fail(errnoText("net: epoll_create1"));
  return Poller(fd);
}

Poller& Poller::operator=(Poller&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Poller::~Poller() {
  if (fd_ >= 0) ::close(fd_);
}

Status Poller::watch(int fd, bool write) {
  epoll_event e{};
  e.events = EPOLLIN | (write ? EPOLLOUT : 0u);
  e.data.fd = fd;
  if (::epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &e) == 0) return okStatus();
  if (errno == ENOENT && ::epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &e) == 0) return okStatus();
  return fail(errnoText("net: epoll_ctl"));
}

void Poller::unwatch(int fd) { ::epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }

Status Poller::watchNothing(int fd) {
  epoll_event e{};
  e.data.fd = fd;
  if (::epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &e) == 0) return okStatus();
  if (errno == EEXIST && ::epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &e) == 0) return okStatus();
  return fail(errnoText("net: epoll_ctl"));
}

Status Poller::setReadInterest(int fd, bool read) {
  epoll_event e{};
  e.events = read ? std::uint32_t{EPOLLIN} : 0u;
  e.data.fd = fd;
  // MOD only: a registration removed meanwhile (a member leaving from another thread) must stay removed.
  if (::epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &e) == 0) return okStatus();
  return fail(errnoText("net: epoll_ctl"));
}

Result<SocketAddress> resolve(std::string_view host, std::uint16_t port) {
  if (auto a = SocketAddress::parse(host, port)) return *a;
  if (host != "localhost") return fail("net: only numeric hosts and 'localhost' are resolved, got '" +
                                       std::string(host) + "'");
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo("localhost", nullptr, &hints, &res) != 0 || !res) return fail("net: cannot resolve localhost");
  SocketAddress best;
  for (addrinfo* i = res; i; i = i->ai_next) {
    SocketAddress a = fromSockaddr(i->ai_addr);
    if (a.valid() && (!best.valid() || (a.isV4() && !best.isV4()))) best = a;
  }
  freeaddrinfo(res);
  if (!best.valid()) return fail("net: cannot resolve localhost");
  best.setPort(port);
  return best;
}

}  // namespace rtcpeer::net
