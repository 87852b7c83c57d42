// The public PeerConnection: a thin shell over Session that keeps the user's callbacks, maps outcomes to
// Error + lastError(), and emits queued signals at the end of poll(). Nothing throws across this boundary.
#include <new>

#include "peer/session.hpp"

namespace rtcpeer {

class PeerConnection::Impl {
 public:
  std::shared_ptr<Session> session;  // null if initialize() failed, after close(), and while `deferred`
  /// Constructed and not yet used: the session of `initialize({})` is made on first use, because making one
  /// generates a DTLS certificate (~0.3 ms of ECDSA) that an application calling initialize(config) right away,
  /// as a server does for every client, would throw away.
  bool deferred = false;
  std::shared_ptr<net::Poller> poller;  // fileDescriptor(): outlives sessions, so the application registers it once
  std::string lastError;
  SessionDescriptionCallback onDescription;
  IceCandidateCallback onCandidate;
  DataChannelCallback onChannel;
  GatheringState gathering = GatheringState::New;  // as of the signals emitted so far
  // Destroying the PeerConnection inside one of its own callbacks: the object goes, but this Impl (whose
  // callback is still running) lives until the outermost poll() unwinds, which then deletes it.
  int polling = 0;        // poll() frames on the stack (a callback may call poll() again)
  bool orphaned = false;  // the PeerConnection was destroyed during a poll(): the last frame deletes this

  Error result(Outcome o) {
    lastError = std::move(o.reason);
    return o.code;
  }
  Error failWith(Error code, std::string reason) { return result({code, std::move(reason)}); }
  /// The live session, or null with lastError set.
  Session* live() {
    if (deferred) {
      deferred = false;
      auto s = Session::create(Configuration{}, poller);
      if (!s) {
        lastError = s.reason();
        return nullptr;
      }
      session = std::move(*s);
    }
    if (session && !session->closed()) return session.get();
    lastError = "the connection is closed (call initialize() to start a new one)";
    return nullptr;
  }

  // Runs `f` and converts anything thrown (allocation failure in practice) into an Error.
  template <class F>
  Error guarded(F&& f) noexcept {
    try {
      return f();
    } catch (const std::bad_alloc&) {
      lastError = "out of memory";
      return Error::OutOfMemory;
    } catch (...) {
      lastError = "internal error";
      return Error::Bug;
    }
  }

  void emit(Session& s) {
    // Swap the queue out first: callbacks may call back in (createDataChannel, close, initialize...). A
    // close() or initialize() inside a callback drops whatever this batch still holds, as close() promises.
    if (!s.hasSignals()) return;  // the common case: no allocation for an empty queue
    auto signals = s.takeSignals();
    auto keep = session;
    for (auto& signal : signals) {
      if (orphaned || session.get() != &s || s.closed()) return;
      if (auto* d = std::get_if<Signal::Description>(&signal.value)) {
        if (onDescription) onDescription(d->type, d->sdp);
      } else if (auto* c = std::get_if<Signal::Candidate>(&signal.value)) {
        if (onCandidate) onCandidate(c->mid, c->index, c->line);
      } else if (auto* ch = std::get_if<Signal::Channel>(&signal.value)) {
        if (onChannel) onChannel(std::move(*ch));
      } else {
        gathering = std::get<GatheringState>(signal.value);
      }
    }
  }
};

PeerConnection::PeerConnection() : impl_(std::make_unique<Impl>()) {
  // As initialize({}), except that the session is made on first use (Impl::deferred).
  impl_->guarded([&] {
    auto p = net::Poller::create();
    if (!p) return impl_->failWith(Error::Unavailable, p.reason());
    impl_->poller = std::make_shared<net::Poller>(std::move(*p));
    impl_->deferred = true;
    return Error::Ok;
  });
}

PeerConnection::~PeerConnection() {
  close();
  if (impl_->polling > 0) {  // inside one of our callbacks: poll() deletes the Impl once the callback returns
    impl_->orphaned = true;
    (void)impl_.release();
  }
}

Error PeerConnection::initialize(const Configuration& config) {
  return impl_->guarded([&] {
    if (impl_->session) impl_->session->close();
    impl_->session.reset();
    impl_->deferred = false;
    impl_->gathering = GatheringState::New;
    if (!impl_->poller) {
      auto p = net::Poller::create();
      if (!p) return impl_->failWith(Error::Unavailable, p.reason());
      impl_->poller = std::make_shared<net::Poller>(std::move(*p));
    }
    auto s = Session::create(config, impl_->poller);
    if (!s) return impl_->failWith(static_cast<Error>(s.failure().code), s.reason());
    impl_->session = std::move(*s);
    impl_->lastError.clear();
    return Error::Ok;
  });
}

std::shared_ptr<DataChannel> PeerConnection::createDataChannel(std::string_view label, const DataChannelInit& init) {
  std::shared_ptr<DataChannel> channel;
  impl_->guarded([&] {
    Session* s = impl_->live();
    if (!s) return Error::Unconfigured;
    auto c = s->createDataChannel(label, init);
    if (!c) return impl_->failWith(static_cast<Error>(c.failure().code), c.reason());
    channel = std::move(*c);
    impl_->lastError.clear();
    return Error::Ok;
  });
  return channel;
}

Error PeerConnection::createOffer() {
  return impl_->guarded([&] {
    Session* s = impl_->live();
    return s ? impl_->result(s->createOffer()) : Error::Unconfigured;
  });
}

Error PeerConnection::setLocalDescription(std::string_view type, std::string_view sdp) {
  return impl_->guarded([&] {
    Session* s = impl_->live();
    return s ? impl_->result(s->setLocalDescription(type, sdp)) : Error::Unconfigured;
  });
}

Error PeerConnection::setRemoteDescription(std::string_view type, std::string_view sdp) {
  return impl_->guarded([&] {
    Session* s = impl_->live();
    return s ? impl_->result(s->setRemoteDescription(type, sdp)) : Error::Unconfigured;
  });
}

Error PeerConnection::addIceCandidate(std::string_view media, int index, std::string_view name) {
  return impl_->guarded([&] {
    Session* s = impl_->live();
    return s ? impl_->result(s->addIceCandidate(media, index, name)) : Error::Unconfigured;
  });
}

Error PeerConnection::poll() {
  // Only `impl` from here on: a callback may destroy *this (see Impl::orphaned).
  Impl* impl = impl_.get();
  ++impl->polling;
  const Error e = impl->guarded([impl] {
    Session* s = impl->live();
    if (!s) return Error::Unconfigured;
    if (auto o = s->poll(); o.code != Error::Ok) return impl->result(std::move(o));
    impl->lastError.clear();
    impl->emit(*s);
    return Error::Ok;
  });
  if (--impl->polling == 0 && impl->orphaned) delete impl;
  return e;
}

Error PeerConnection::wait(std::chrono::milliseconds timeout) {
  return impl_->guarded([&] {
    Session* s = impl_->live();
    return s ? impl_->result(s->wait(timeout)) : Error::Unconfigured;
  });
}

std::chrono::steady_clock::time_point PeerConnection::nextDeadline() const {
  using Clock = std::chrono::steady_clock;
  Timestamp t = impl_->session ? impl_->session->nextDeadline() : kNever;
  if (t == kNever) return Clock::time_point::max();
  // net::now() is steady_clock's time since its epoch, so the conversion is exact.
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(t.time_since_epoch()));
}

int PeerConnection::fileDescriptor() const { return impl_->poller ? impl_->poller->fd() : -1; }

void PeerConnection::close() {
  impl_->deferred = false;  // never used: nothing to close, and connectionState() says Closed from now on
  if (impl_->session) impl_->session->close();
}

ConnectionState PeerConnection::connectionState() const {
  if (impl_->deferred) return ConnectionState::New;
  return impl_->session ? impl_->session->connectionState() : ConnectionState::Closed;
}
GatheringState PeerConnection::gatheringState() const { return impl_->gathering; }
ConnectionStats PeerConnection::stats() const { return impl_->session ? impl_->session->stats() : ConnectionStats{}; }
SignalingState PeerConnection::signalingState() const {
  if (impl_->deferred) return SignalingState::Stable;
  return impl_->session ? impl_->session->signalingState() : SignalingState::Closed;
}
const std::string& PeerConnection::lastError() const { return impl_->lastError; }

void PeerConnection::onSessionDescriptionCreated(SessionDescriptionCallback callback) {
  impl_->onDescription = std::move(callback);
}
void PeerConnection::onIceCandidateCreated(IceCandidateCallback callback) { impl_->onCandidate = std::move(callback); }
void PeerConnection::onDataChannelReceived(DataChannelCallback callback) { impl_->onChannel = std::move(callback); }

}  // namespace rtcpeer
