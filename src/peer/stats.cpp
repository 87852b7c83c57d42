// Connection::stats() (PeerConnection::stats() through Session): a snapshot gathered from the layers' own counters
// (ICE agent, DTLS endpoint, SCTP association, channel manager); nothing is counted twice or on the data path for it.
#include <chrono>

#include "peer/connection.hpp"
#include "rtcpeer/stats.hpp"

namespace rtcpeer::peer {

namespace {

CandidateStats candidateStats(ice::CandidateType type, const SocketAddress& address) {
  CandidateStats c;
  c.type = std::string(ice::toString(type));
  c.address = address.ipString();
  c.port = address.port();
  return c;
}

const char* transportName(ice::TurnTransport transport) {
  switch (transport) {
    case ice::TurnTransport::Udp:
      return "udp";
    case ice::TurnTransport::Tcp:
      return "tcp";
    case ice::TurnTransport::Tls:
      return "tls";
  }
  return "udp";
}

}  // namespace

ConnectionStats Connection::stats() const {
  ConnectionStats s;
  if (agent_) {
    if (auto pair = agent_->selectedPair()) {
      s.hasSelectedPair = true;
      s.local = candidateStats(pair->localType, pair->local);
      s.remote = candidateStats(pair->remoteType, pair->remote);
      if (pair->localType == ice::CandidateType::Relay) {
        // For a relay pair the local address is the relayed one: find the allocation it belongs to.
        for (const ice::RelayResult& relay : agent_->relayResults())
          if (relay.relayed && *relay.relayed == pair->local) s.local.relayProtocol = transportName(relay.transport);
      }
    }
    s.iceChecksSent = agent_->stats().checksSent;
    s.iceChecksReceived = agent_->stats().checksReceived;
  }
  if (dtls_) {
    s.dtlsRole = dtls_->role() == dtls::Role::Client ? "client" : "server";
    s.dtlsCipher = dtls_->cipherName();
  }
  if (sctp_) {
    const sctp::Metrics m = sctp_->metrics();
    s.roundTripTime = std::chrono::duration_cast<std::chrono::microseconds>(m.srtt);
    s.congestionWindow = m.cwnd;
    s.peerReceiveWindow = m.peerRwnd;
    s.bytesInFlight = m.bytesInFlight;
    s.packetsSent = m.packetsSent;
    s.packetsReceived = m.packetsReceived;
    s.retransmissions = m.retransmissions;
    s.messagesSent = m.messagesSent;
    s.messagesReceived = m.messagesReceived;
    s.bytesSent = m.bytesSent;
    s.bytesReceived = m.bytesReceived;
    s.interleaving = sctp_->interleaving();
    s.zeroChecksum = sctp_->sendsZeroChecksum();
    s.remoteMaxMessageSize = channels_.remoteMaxMessageSize();
  }
  return s;
}

}  // namespace rtcpeer::peer
