// rtcpeer: WebRTC data channels with Godot's WebRTCPeerConnection / WebRTCDataChannel API.
#pragma once

#include "rtcpeer/configuration.hpp"
#include "rtcpeer/data_channel.hpp"
#include "rtcpeer/error.hpp"
#include "rtcpeer/log.hpp"
#include "rtcpeer/multiplayer_peer.hpp"
#include "rtcpeer/peer_connection.hpp"
#include "rtcpeer/stats.hpp"
#include "rtcpeer/version.hpp"
