// The public DataChannel: forwards to the Session it belongs to (held weakly, so a channel may outlive its
// connection) and keeps the received messages, which stay readable after the channel closes. Its destructor may
// run on any thread; every other call belongs to the thread polling the connection.
#include "peer/session.hpp"

namespace rtcpeer {

DataChannel::DataChannel(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

DataChannel::~DataChannel() {
  // Godot semantics: dropping the last reference closes the channel. This may run on any thread, so it touches
  // nothing the polling thread uses: the channel's state goes to the session's hand-over box and the next poll()
  // closes it there (Session::closeReleased). If the session is gone, the state simply dies here.
  if (auto box = impl_->releases.lock()) {
    try {
      box->post(std::move(impl_));
    } catch (const std::bad_alloc&) {
      // no memory for the hand-over: the channel stays open until the connection closes (it holds a stream only)
    }
  }
}

Error DataChannel::putPacket(std::span<const std::uint8_t> message) {
  try {
    auto s = impl_->session.lock();
    if (!s || s->closed()) return impl_->failWith(Error::Unconfigured, "the connection is closed");
    return s->send(*impl_, message, impl_->writeMode == WriteMode::Text);
  } catch (const std::bad_alloc&) {
    return impl_->failWith(Error::OutOfMemory, "out of memory");
  }
}

Error DataChannel::putPacket(std::string_view message) { return putPacket(asBytes(message)); }

Error DataChannel::getPacket(std::vector<std::uint8_t>& out) {
  if (impl_->inbox.empty()) return impl_->failWith(Error::Unavailable, "no message has been received");
  auto& p = impl_->inbox.front();
  const std::size_t cost = Session::readCost(p.data);
  out.swap(p.data);
  impl_->lastWasString = p.text;
  impl_->unreadCost -= std::min(impl_->unreadCost, cost);
  // `out`'s previous storage: a reader looping on getPacket() with one vector keeps large messages allocation-free.
  if (auto s = impl_->session.lock()) {
    s->recycle(std::move(p.data));
    s->released(cost);  // reading reopens the receive window
  }
  impl_->inbox.pop_front();
  impl_->lastError.clear();
  return Error::Ok;
}

int DataChannel::availablePacketCount() const { return static_cast<int>(impl_->inbox.size()); }
bool DataChannel::wasStringPacket() const { return impl_->lastWasString; }
void DataChannel::setWriteMode(WriteMode mode) { impl_->writeMode = mode; }
WriteMode DataChannel::writeMode() const { return impl_->writeMode; }

ReadyState DataChannel::readyState() const {
  auto s = impl_->session.lock();
  return s && !s->closed() ? impl_->state : ReadyState::Closed;
}
const std::string& DataChannel::label() const { return impl_->label; }
const std::string& DataChannel::protocol() const { return impl_->protocol; }
int DataChannel::id() const { return impl_->id; }
bool DataChannel::isOrdered() const { return impl_->ordered; }
int DataChannel::maxPacketLifeTime() const { return impl_->maxPacketLifeTime; }
int DataChannel::maxRetransmits() const { return impl_->maxRetransmits; }
bool DataChannel::isNegotiated() const { return impl_->negotiated; }

std::size_t DataChannel::bufferedAmount() const {
  auto s = impl_->session.lock();
  return s && !s->closed() ? s->bufferedAmount(*impl_) : 0;
}

std::size_t DataChannel::maxMessageSize() const {
  auto s = impl_->session.lock();
  return s ? s->remoteMaxMessageSize() : 65536;
}

const std::string& DataChannel::lastError() const { return impl_->lastError; }

void DataChannel::close() {
  if (auto s = impl_->session.lock(); s && !s->closed()) s->closeChannel(*impl_);
  else impl_->state = ReadyState::Closed;
}

}  // namespace rtcpeer
