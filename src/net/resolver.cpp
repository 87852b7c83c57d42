// c-ares behind net::Resolver (see resolver.hpp): the only place rtcpeer touches DNS.
#include "net/resolver.hpp"

#include <ares.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <mutex>

#include "common/log.hpp"
#include "net/sockaddr.hpp"

namespace rtcpeer::net {

namespace {

// Per query and DNS server: two tries, 2 s then 4 s (c-ares doubles the timeout per try), so an unreachable server
// costs ~6 s (glibc's defaults: 2 attempts of 5 s).
constexpr int kTimeoutMs = 2000;
constexpr int kTries = 2;

ares_channel channelOf(void* c) { return static_cast<ares_channel>(c); }

}  // namespace

struct Resolver::Query {
  Resolver* owner;
  std::uint64_t id;
  std::string host;
  std::uint16_t port;
};

bool isAddressLiteral(std::string_view host) noexcept {
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return SocketAddress::parse(host, 0).has_value();
}

Result<std::unique_ptr<Resolver>> Resolver::create(std::shared_ptr<Poller> poller) {
  static const int init = ares_library_init(ARES_LIB_INIT_ALL);
  if (init != ARES_SUCCESS) return fail(std::string("net: c-ares initialization failed: ") + ares_strerror(init));
  std::unique_ptr<Resolver> r(new Resolver(std::move(poller)));
  ares_options o{};
  o.sock_state_cb = [](void* self, ares_socket_t fd, int readable, int writable) {
    onSocketState(self, static_cast<int>(fd), readable, writable);
  };
  o.sock_state_cb_data = r.get();
  o.timeout = kTimeoutMs;
  o.tries = kTries;
  ares_channel channel = nullptr;
  const int status = ares_init_options(&channel, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (status != ARES_SUCCESS)
    return fail(std::string("net: cannot start the DNS resolver (c-ares): ") + ares_strerror(status));
  r->channel_ = channel;
  return r;
}

Resolver::~Resolver() {
  // Outstanding queries end with ARES_EDESTRUCTION inside ares_destroy: their callbacks only free themselves.
  if (channel_) ares_destroy(channelOf(channel_));
  for (const auto& s : sockets_) poller_->unwatch(s.fd);
}

void Resolver::onSocketState(void* self, int fd, int readable, int writable) {
  auto* r = static_cast<Resolver*>(self);
  auto it = std::find_if(r->sockets_.begin(), r->sockets_.end(), [&](const Watched& w) { return w.fd == fd; });
  if (!readable && !writable) {  // c-ares is about to close it
    if (it != r->sockets_.end()) {
      r->poller_->unwatch(fd);
      r->sockets_.erase(it);
    }
    return;
  }
  if (auto s = r->poller_->watch(fd, writable != 0); !s) RTCPEER_LOG(Warning, "net", "resolver: " << s.reason());
  if (it == r->sockets_.end()) r->sockets_.push_back({fd, writable != 0});
  else it->write = writable != 0;
}

void Resolver::onAnswer(void* arg, int status, int /*timeouts*/, ares_addrinfo* result) {
  std::unique_ptr<Query> q(static_cast<Query*>(arg));
  if (status == ARES_EDESTRUCTION) {
    if (result) ares_freeaddrinfo(result);
    return;
  }
  Answer a;
  a.id = q->id;
  a.host = q->host;
  std::vector<SocketAddress> v6;
  for (auto* n = result ? result->nodes : nullptr; n; n = n->ai_next) {
    SocketAddress addr = detail::fromSockaddr(n->ai_addr);
    if (!addr.valid()) continue;
    addr.setPort(q->port);
    auto& list = addr.isV4() ? a.addresses : v6;
    if (std::find(list.begin(), list.end(), addr) == list.end()) list.push_back(addr);
  }
  a.addresses.insert(a.addresses.end(), v6.begin(), v6.end());
  if (result) ares_freeaddrinfo(result);
  if (a.addresses.empty())
    a.error = "cannot resolve '" + q->host + "': " +
              (status == ARES_SUCCESS ? std::string("no A or AAAA record") : std::string(ares_strerror(status)));
  RTCPEER_LOG(Debug, "net", "resolved " << q->host << ": " << a.addresses.size() << " address(es) " << a.error);
  --q->owner->outstanding_;
  q->owner->answers_.push_back(std::move(a));
}

std::uint64_t Resolver::resolve(std::string_view host, std::uint16_t port) {
  const std::uint64_t id = nextId_++;
  auto* q = new Query{this, id, std::string(host), port};
  ++outstanding_;
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;  // A and AAAA
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = ARES_AI_NOSORT;
  // For a literal or a name in /etc/hosts the callback may run inside this call: the answer only lands in the
  // queue, so the caller still sees it from poll().
  ares_getaddrinfo(channelOf(channel_), q->host.c_str(), nullptr, &hints, &Resolver::onAnswer, q);
  return id;
}

void Resolver::process() {
  if (!channel_) return;
  std::vector<pollfd> fds;
  fds.reserve(sockets_.size());
  for (const auto& s : sockets_)
    fds.push_back({s.fd, static_cast<short>(POLLIN | (s.write ? POLLOUT : 0)), 0});
  if (!fds.empty()) ::poll(fds.data(), fds.size(), 0);
  for (const auto& p : fds) {
    if (!p.revents) continue;
    const bool read = (p.revents & (POLLIN | POLLERR | POLLHUP)) != 0;
    const bool write = (p.revents & POLLOUT) != 0;
    ares_process_fd(channelOf(channel_), read ? p.fd : ARES_SOCKET_BAD, write ? p.fd : ARES_SOCKET_BAD);
  }
  // Timers (retransmissions, giving up) even when nothing arrived.
  if (outstanding_) ares_process_fd(channelOf(channel_), ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

std::optional<Resolver::Answer> Resolver::poll() {
  if (answers_.empty()) return std::nullopt;
  Answer a = std::move(answers_.front());
  answers_.pop_front();
  return a;
}

Timestamp Resolver::nextDeadline() const {
  if (!answers_.empty()) return net::now();
  if (!outstanding_ || !channel_) return kNever;
  timeval tv{};
  if (!ares_timeout(channelOf(channel_), nullptr, &tv)) return kNever;
  return net::now() + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
}

}  // namespace rtcpeer::net
