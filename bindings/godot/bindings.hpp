// The native objects behind Godot's WebRTCPeerConnectionGDNative and WebRTCDataChannelGDNative: each Godot object
// gets a NativeScript attached whose instance is one of these bindings, so Godot freeing the object (its last
// reference dropped by GDScript) runs the script's destructor, which frees the rtcpeer object.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gdnative.hpp"
#include "godot_api.hpp"
#include "rtcpeer/data_channel.hpp"
#include "rtcpeer/peer_connection.hpp"

namespace rtcpeer_godot {

inline constexpr const char* kPeerConnectionScriptClass = "RtcpeerPeerConnection";
inline constexpr const char* kDataChannelScriptClass = "RtcpeerDataChannel";

/// Counts of live bindings, for the leak checks of the Godot tests (rtcpeer_live_objects).
struct LiveCounts {
  static int peerConnections;
  static int dataChannels;
};

/// The peer connection a data channel belongs to, for as long as it lives (cleared when it is freed first).
struct ConnectionLink {
  rtcpeer::PeerConnection* pc = nullptr;
};

class DataChannelBinding {
 public:
  explicit DataChannelBinding(godot_object* owner);
  ~DataChannelBinding();
  DataChannelBinding(const DataChannelBinding&) = delete;
  DataChannelBinding& operator=(const DataChannelBinding&) = delete;

  /// A new Godot WebRTCDataChannelGDNative object (reference count 0, as Godot's constructors return them) bound
  /// to `channel`; nullptr if Godot refused.
  static godot_object* create(std::shared_ptr<rtcpeer::DataChannel> channel, std::shared_ptr<ConnectionLink> link);

  godot_object* owner;
  std::shared_ptr<rtcpeer::DataChannel> channel;
  std::shared_ptr<ConnectionLink> link;
  std::vector<std::uint8_t> current;  // the packet get_packet returned last; valid until the next call
  godot_net_webrtc_data_channel_ext ext{};
  godot_net_webrtc_data_channel iface{};
};

class PeerConnectionBinding {
 public:
  explicit PeerConnectionBinding(godot_object* owner);
  ~PeerConnectionBinding();
  PeerConnectionBinding(const PeerConnectionBinding&) = delete;
  PeerConnectionBinding& operator=(const PeerConnectionBinding&) = delete;

  godot_error initialize(const godot_dictionary* config);
  godot_object* createDataChannel(const char* label, const godot_dictionary* options);
  godot_error poll();
  void close();

  godot_object* owner;
  rtcpeer::PeerConnection pc;
  std::shared_ptr<ConnectionLink> link;
  godot_net_webrtc_peer_connection iface{};

 private:
  struct Pending {
    enum class Kind { Description, Candidate, Channel } kind;
    std::string a, b;
    int index = 0;
    std::shared_ptr<rtcpeer::DataChannel> channel;
  };
  void connectSignals();
  void emitPending();
  godot_error report(rtcpeer::Error error, const char* what);

  std::vector<Pending> pending_;
  std::vector<Pending> emitting_;
  std::uint64_t generation_ = 0;  // bumped by close() and initialize(): stale queued signals are dropped
};

/// NativeScript plumbing (plugin.cpp): attaches our script class to a fresh Godot object and returns the binding
/// its constructor made.
void* attachScript(godot_object* object, const char* script_class);

}  // namespace rtcpeer_godot
