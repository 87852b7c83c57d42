// WebRTCDataChannelGDNative on rtcpeer::DataChannel: the net extension's data-channel interface (godot_webrtc.h),
// including the 3.4 extension get_buffered_amount, which Godot 3.4+ reads through the interface's `next`.
#include <algorithm>
#include <climits>
#include <utility>

#include "bindings.hpp"

namespace rtcpeer_godot {

int LiveCounts::peerConnections = 0;
int LiveCounts::dataChannels = 0;

namespace {

DataChannelBinding* self(const void* p) { return static_cast<DataChannelBinding*>(const_cast<void*>(p)); }

int clampInt(std::size_t v) { return static_cast<int>(std::min<std::size_t>(v, INT_MAX)); }

godot_error getPacket(void* p, const std::uint8_t** buffer, int* size) {
  DataChannelBinding* b = self(p);
  if (!b->channel) return static_cast<godot_error>(rtcpeer::Error::Unconfigured);
  rtcpeer::Error e = b->channel->getPacket(b->current);
  if (e != rtcpeer::Error::Ok) return static_cast<godot_error>(e);
  *buffer = b->current.data();
  *size = static_cast<int>(b->current.size());
  return 0;
}

godot_error putPacket(void* p, const std::uint8_t* buffer, int size) {
  DataChannelBinding* b = self(p);
  if (!b->channel) return static_cast<godot_error>(rtcpeer::Error::Unconfigured);
  if (size < 0) return static_cast<godot_error>(rtcpeer::Error::InvalidParameter);
  rtcpeer::Error e = b->channel->putPacket(std::span<const std::uint8_t>(buffer, static_cast<std::size_t>(size)));
  if (e != rtcpeer::Error::Ok && e != rtcpeer::Error::Unconfigured)
    RTCPEER_GODOT_ERROR("WebRTCDataChannel.put_packet: " + b->channel->lastError());
  return static_cast<godot_error>(e);
}

godot_int availablePacketCount(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? b->channel->availablePacketCount() : 0;
}

godot_int maxPacketSize(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? clampInt(b->channel->maxMessageSize()) : 0;
}

void setWriteMode(void* p, godot_int mode) {
  DataChannelBinding* b = self(p);
  if (mode != 0 && mode != 1) {
    RTCPEER_GODOT_ERROR("WebRTCDataChannel.write_mode: expected WRITE_MODE_TEXT (0) or WRITE_MODE_BINARY (1)");
    return;
  }
  if (b->channel) b->channel->setWriteMode(static_cast<rtcpeer::WriteMode>(mode));
}

godot_int writeMode(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? static_cast<godot_int>(b->channel->writeMode()) : 1;
}

bool wasStringPacket(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel && b->channel->wasStringPacket();
}

godot_int readyState(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? static_cast<godot_int>(b->channel->readyState()) : 3;
}

const char* label(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? b->channel->label().c_str() : "";
}

bool isOrdered(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel && b->channel->isOrdered();
}

int id(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? b->channel->id() : rtcpeer::DataChannel::kUnset;
}

int maxPacketLifeTime(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? b->channel->maxPacketLifeTime() : rtcpeer::DataChannel::kUnset;
}

int maxRetransmits(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? b->channel->maxRetransmits() : rtcpeer::DataChannel::kUnset;
}

const char* protocol(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? b->channel->protocol().c_str() : "";
}

bool isNegotiated(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel && b->channel->isNegotiated();
}

godot_error pollChannel(void*) { return 0; }  // "reserved": the peer connection's poll() does the work

void closeChannel(void* p) {
  DataChannelBinding* b = self(p);
  if (b->channel) b->channel->close();
}

int bufferedAmount(const void* p) {
  const DataChannelBinding* b = self(p);
  return b->channel ? clampInt(b->channel->bufferedAmount()) : 0;
}

}  // namespace

DataChannelBinding::DataChannelBinding(godot_object* owner_object) : owner(owner_object) {
  ++LiveCounts::dataChannels;
  ext.get_buffered_amount = &bufferedAmount;
  ext.next = nullptr;
  iface.version = {3, 2};
  iface.data = this;
  iface.get_packet = &getPacket;
  iface.put_packet = &putPacket;
  iface.get_available_packet_count = &availablePacketCount;
  iface.get_max_packet_size = &maxPacketSize;
  iface.set_write_mode = &setWriteMode;
  iface.get_write_mode = &writeMode;
  iface.was_string_packet = &wasStringPacket;
  iface.get_ready_state = &readyState;
  iface.get_label = &label;
  iface.is_ordered = &isOrdered;
  iface.get_id = &id;
  iface.get_max_packet_life_time = &maxPacketLifeTime;
  iface.get_max_retransmits = &maxRetransmits;
  iface.get_protocol = &protocol;
  iface.is_negotiated = &isNegotiated;
  iface.poll = &pollChannel;
  iface.close = &closeChannel;
  // Godot 3.2/3.3 ignore `next`; 3.4+ read get_buffered_amount from it (and report 0 with an error without it).
  iface.next = &ext;
}

DataChannelBinding::~DataChannelBinding() {
  --LiveCounts::dataChannels;
  // Dropping our reference closes the channel (rtcpeer's rule, as in Godot) unless the peer connection died first.
  channel.reset();
}

godot_object* DataChannelBinding::create(std::shared_ptr<rtcpeer::DataChannel> ch,
                                         std::shared_ptr<ConnectionLink> connection) {
  godot_object* object = construct("WebRTCDataChannelGDNative");
  if (!object) {
    RTCPEER_GODOT_ERROR("rtcpeer: Godot has no WebRTCDataChannelGDNative class");
    return nullptr;
  }
  auto* binding = static_cast<DataChannelBinding*>(attachScript(object, kDataChannelScriptClass));
  if (!binding) {
    Variant dispose = Variant::object(object);  // frees the unused object when it goes out of scope
    RTCPEER_GODOT_ERROR("rtcpeer: could not attach the data channel script");
    return nullptr;
  }
  binding->channel = std::move(ch);
  binding->link = std::move(connection);
  Api::net->bind_webrtc_data_channel(object, &binding->iface);
  return object;
}

}  // namespace rtcpeer_godot
