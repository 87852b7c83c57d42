// WebRTCPeerConnectionGDNative on rtcpeer::PeerConnection: the net extension's peer-connection interface
// (godot_webrtc.h). Option dictionaries go through Godot's JSON printer into rtcpeer's own parsers, so every key
// rtcpeer accepts (iceServers, interfaces, timeouts, ...) works from GDScript. rtcpeer's signals are queued while
// rtcpeer::PeerConnection::poll() runs and emitted as Godot signals right after it, still inside Godot's poll():
// a GDScript handler may then call anything on the connection (including close() or dropping it) safely.
#include <utility>

#include "bindings.hpp"

namespace rtcpeer_godot {

namespace {

PeerConnectionBinding* self(const void* p) {
  return static_cast<PeerConnectionBinding*>(const_cast<void*>(p));
}

godot_int connectionState(const void* p) { return static_cast<godot_int>(self(p)->pc.connectionState()); }
godot_error initialize(void* p, const godot_dictionary* config) { return self(p)->initialize(config); }
godot_object* createDataChannel(void* p, const char* label, const godot_dictionary* options) {
  return self(p)->createDataChannel(label, options);
}
godot_error createOffer(void* p) {
  PeerConnectionBinding* b = self(p);
  rtcpeer::Error e = b->pc.createOffer();
  if (e != rtcpeer::Error::Ok) RTCPEER_GODOT_ERROR("WebRTCPeerConnection.create_offer: " + b->pc.lastError());
  return static_cast<godot_error>(e);
}
godot_error createAnswer(void*) { return 0; }  // Godot never calls it: the answer follows set_remote_description
godot_error setRemoteDescription(void* p, const char* type, const char* sdp) {
  PeerConnectionBinding* b = self(p);
  rtcpeer::Error e = b->pc.setRemoteDescription(type ? type : "", sdp ? sdp : "");
  if (e != rtcpeer::Error::Ok)
    RTCPEER_GODOT_ERROR("WebRTCPeerConnection.set_remote_description: " + b->pc.lastError());
  return static_cast<godot_error>(e);
}
godot_error setLocalDescription(void* p, const char* type, const char* sdp) {
  PeerConnectionBinding* b = self(p);
  rtcpeer::Error e = b->pc.setLocalDescription(type ? type : "", sdp ? sdp : "");
  if (e != rtcpeer::Error::Ok)
    RTCPEER_GODOT_ERROR("WebRTCPeerConnection.set_local_description: " + b->pc.lastError());
  return static_cast<godot_error>(e);
}
godot_error addIceCandidate(void* p, const char* media, int index, const char* name) {
  PeerConnectionBinding* b = self(p);
  rtcpeer::Error e = b->pc.addIceCandidate(media ? media : "", index, name ? name : "");
  if (e != rtcpeer::Error::Ok)
    RTCPEER_GODOT_ERROR("WebRTCPeerConnection.add_ice_candidate: " + b->pc.lastError());
  return static_cast<godot_error>(e);
}
godot_error poll(void* p) { return self(p)->poll(); }
void close(void* p) { self(p)->close(); }

godot_method_bind* emitSignalMethod() {
  static godot_method_bind* method = methodBind("Object", "emit_signal");
  return method;
}

}  // namespace

PeerConnectionBinding::PeerConnectionBinding(godot_object* owner_object)
    : owner(owner_object), link(std::make_shared<ConnectionLink>(ConnectionLink{&pc})) {
  ++LiveCounts::peerConnections;
  iface.version = {3, 2};
  iface.data = this;
  iface.get_connection_state = &connectionState;
  iface.initialize = &rtcpeer_godot::initialize;
  iface.create_data_channel = &rtcpeer_godot::createDataChannel;
  iface.create_offer = &createOffer;
  iface.create_answer = &createAnswer;
  iface.set_remote_description = &setRemoteDescription;
  iface.set_local_description = &setLocalDescription;
  iface.add_ice_candidate = &addIceCandidate;
  iface.poll = &rtcpeer_godot::poll;
  iface.close = &rtcpeer_godot::close;
  iface.next = nullptr;
  connectSignals();
}

PeerConnectionBinding::~PeerConnectionBinding() {
  link->pc = nullptr;
  --LiveCounts::peerConnections;
}

void PeerConnectionBinding::connectSignals() {
  pc.onSessionDescriptionCreated([this](const std::string& type, const std::string& sdp) {
    pending_.push_back(Pending{Pending::Kind::Description, type, sdp, 0, nullptr});
  });
  pc.onIceCandidateCreated([this](const std::string& media, int index, const std::string& name) {
    pending_.push_back(Pending{Pending::Kind::Candidate, media, name, index, nullptr});
  });
  pc.onDataChannelReceived([this](std::shared_ptr<rtcpeer::DataChannel> channel) {
    pending_.push_back(Pending{Pending::Kind::Channel, {}, {}, 0, std::move(channel)});
  });
}

godot_error PeerConnectionBinding::report(rtcpeer::Error error, const char* what) {
  if (error != rtcpeer::Error::Ok) RTCPEER_GODOT_ERROR(std::string(what) + ": " + pc.lastError());
  return static_cast<godot_error>(error);
}

godot_error PeerConnectionBinding::initialize(const godot_dictionary* config) {
  rtcpeer::Configuration configuration;
  std::string reason;
  rtcpeer::Error e = rtcpeer::Configuration::fromJson(dictionaryToJson(config), configuration, &reason);
  if (e != rtcpeer::Error::Ok) {
    RTCPEER_GODOT_ERROR("WebRTCPeerConnection.initialize: " + reason);
    return static_cast<godot_error>(e);
  }
  ++generation_;
  pending_.clear();
  e = pc.initialize(configuration);
  connectSignals();
  return report(e, "WebRTCPeerConnection.initialize");
}

godot_object* PeerConnectionBinding::createDataChannel(const char* label, const godot_dictionary* options) {
  rtcpeer::DataChannelInit init;
  std::string reason;
  if (rtcpeer::DataChannelInit::fromJson(dictionaryToJson(options), init, &reason) != rtcpeer::Error::Ok) {
    RTCPEER_GODOT_ERROR("WebRTCPeerConnection.create_data_channel: " + reason);
    return nullptr;
  }
  std::shared_ptr<rtcpeer::DataChannel> channel = pc.createDataChannel(label ? label : "", init);
  if (!channel) {
    RTCPEER_GODOT_ERROR("WebRTCPeerConnection.create_data_channel: " + pc.lastError());
    return nullptr;
  }
  return DataChannelBinding::create(std::move(channel), link);
}

godot_error PeerConnectionBinding::poll() {
  rtcpeer::Error e = pc.poll();
  if (!pending_.empty()) emitPending();  // may free *this (a handler dropped the last reference)
  return static_cast<godot_error>(e);
}

void PeerConnectionBinding::close() {
  ++generation_;
  pending_.clear();
  pc.close();
}

void PeerConnectionBinding::emitPending() {
  // Holds a reference to our Godot object while handlers run, so one that drops the connection cannot free us
  // under our feet; declared first, released last.
  Variant keepAlive = Variant::object(owner);
  std::vector<Pending> batch;
  batch.swap(pending_);
  const std::uint64_t generation = generation_;
  for (Pending& signal : batch) {
    if (generation_ != generation) break;  // a handler closed or re-initialized the connection
    switch (signal.kind) {
      case Pending::Kind::Description: {
        Variant name(std::string_view("session_description_created"));
        Variant type(std::string_view(signal.a));
        Variant sdp(std::string_view(signal.b));
        const godot_variant* args[] = {name.get(), type.get(), sdp.get()};
        callMethod(emitSignalMethod(), owner, args, 3);
        break;
      }
      case Pending::Kind::Candidate: {
        Variant name(std::string_view("ice_candidate_created"));
        Variant media(std::string_view(signal.a));
        Variant index(static_cast<std::int64_t>(signal.index));
        Variant candidate(std::string_view(signal.b));
        const godot_variant* args[] = {name.get(), media.get(), index.get(), candidate.get()};
        callMethod(emitSignalMethod(), owner, args, 4);
        break;
      }
      case Pending::Kind::Channel: {
        godot_object* object = DataChannelBinding::create(std::move(signal.channel), link);
        if (!object) break;
        // The variant holds the only reference: if no handler keeps the channel, it is freed (and closed) here.
        Variant channel = Variant::object(object);
        Variant name(std::string_view("data_channel_received"));
        const godot_variant* args[] = {name.get(), channel.get()};
        callMethod(emitSignalMethod(), owner, args, 2);
        break;
      }
    }
  }
  // Signals queued by a nested poll() from a handler stay in pending_ for the next poll().
}

}  // namespace rtcpeer_godot
