// Sans-IO ICE agent: full ICE (RFC 8445) for one data stream with one component (WebRTC data channels run
// BUNDLE + rtcp-mux), trickle (RFC 8838), consent freshness (RFC 7675).
//
// The agent opens no socket and reads no clock. The I/O shell (src/net) or the simulator tells it which local
// UDP sockets exist (`startGathering`), feeds every datagram received on them to `handleInput`, sends what
// `pollTransmit` returns, and calls `handleTimeout` at `nextDeadline`. Application (DTLS) datagrams are not ICE's
// business: `handleInput` returns false for anything that is not STUN, and the caller passes such datagrams up
// only when `isRemoteValid(local, remote)`.
//
// TURN (RFC 8656): every configured TURN server gets an allocation (a `TurnClient`, src/ice/turn_client.hpp): one
// per UDP socket of the server's family for `turn:` over UDP, one per server for TCP/TLS. Its relayed address
// becomes one more local "socket" (a relay candidate, `typ relay raddr <mapped> rport <port>`): checks from it go
// out as Send indications / ChannelData through the server, and what the server relays back is unwrapped and
// handled as if it had arrived on the relayed address. `relayOnly` is W3C iceTransportPolicy "relay".
//
// Integrator's view (what src/peer must do once TURN is configured):
//  - Receive on a UDP socket: `handleDatagram(local, remote, bytes, now)`. It consumes ICE and TURN control
//    traffic and returns the application datagram (DTLS) that remains, already unwrapped when it came through a
//    relay: then `local` is the relayed address and `remote` the peer. Pass it up if `isRemoteValid(local, remote)`.
//  - TCP/TLS servers: `Transmit::transport` is Tcp/Tls and `Transmit::remote` the server: append `data` to the
//    stream to that server (the shell opens it on first use). Feed received stream bytes to
//    `handleStreamInput(transport, server, bytes, now)` and drain relayed application data with
//    `pollStreamData()`; a connect/TLS error or EOF goes to `handleStreamClosed`.
//  - Send application data with `wrapForSelectedPair(payload, now)`: for a direct pair it returns the payload
//    and the pair's socket; for a relayed pair the ChannelData (or Send indication) to send to the server.
//  - close() deallocates: drain pollTransmit() once more after it.
//
// Only authenticated STUN changes connectivity state: checks must carry our ufrag and a MESSAGE-INTEGRITY keyed
// with our password, responses must carry MESSAGE-INTEGRITY keyed with the peer's password. Anything else is
// answered (400/401) or dropped and counted in `stats()`; it never creates, selects or breaks a pair.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/address.hpp"
#include "common/bytes.hpp"
#include "common/random.hpp"
#include "common/result.hpp"
#include "common/time.hpp"
#include "ice/candidate.hpp"
#include "ice/check_list.hpp"
#include "ice/turn_client.hpp"
#include "stun/stun.hpp"

namespace rtcpeer::ice {

enum class Role : std::uint8_t { Controlling, Controlled };
/// RTCIceConnectionState-like. new → checking → connected → completed; connected/completed ⇄ disconnected
/// (silence on the selected pair); → failed (no pair within `failureTimeout`, every pair failed after
/// end-of-candidates, or consent lost for `consentTimeout`); closed after close(). restart() leaves failed.
enum class State : std::uint8_t { New, Checking, Connected, Completed, Disconnected, Failed, Closed };
enum class GatheringState : std::uint8_t { New, Gathering, Complete };

std::string_view toString(State s) noexcept;

struct Credentials {
  std::string ufrag;
  std::string pwd;
};

struct AgentConfig {
  Role role = Role::Controlling;
  /// Local credentials; generated (8-char ufrag, 24-char pwd from the ice-char alphabet) when empty.
  Credentials local;
  /// Resolved STUN servers; one Binding transaction per (local socket, server) of the same family.
  std::vector<SocketAddress> stunServers;
  /// Resolved TURN servers with their long-term credentials.
  std::vector<TurnServer> turnServers;
  /// W3C iceTransportPolicy "relay": only relay candidates are gathered, signalled and paired (no host or srflx
  /// candidate leaves the agent, and checks arriving on host sockets are ignored).
  bool relayOnly = false;
  /// Timers and lifetimes of every allocation (its `server` field is ignored).
  TurnClientConfig turn;
  /// ICE servers given by name that the shell is still resolving: gathering does not complete before each has
  /// been fed in with `handleResolved` (resolved or not).
  std::size_t pendingNames = 0;
  /// ICE lite (RFC 8445 2.5): host candidates only (STUN/TURN servers are ignored), no checks of our own and no
  /// consent checks; we answer the peer's checks, always take the controlled role (6.1.1) and select the pair
  /// the peer nominates. Consent (RFC 7675) is then judged by the peer's authenticated checks.
  bool lite = false;

  /// Gathering: STUN RTO (RFC 8489 6.2.1: 500 ms default; a shorter one suits ICE) doubled per retransmission up
  /// to `stunRtoMax` (a cap, so that more attempts fit in the bounded gathering time on lossy paths), at most
  /// `stunMaxTransmits` sends; every gathering transaction gives up after `gatheringTimeout` at the latest.
  Duration stunRto = 250ms;
  Duration stunRtoMax = 1s;
  int stunMaxTransmits = 7;
  Duration gatheringTimeout = 5s;

  /// Connectivity checks: the pacing interval Ta (RFC 8445 14.2), the first RTO (it is the path RTT, not a
  /// server's) doubled up to `checkRtoMax`, and the number of transmissions before a pair fails.
  Duration ta = 5ms;
  Duration checkRto = 100ms;
  Duration checkRtoMax = 1600ms;
  int checkMaxTransmits = 9;
  /// Controlling side: how long to wait for a better pair once a valid one exists before nominating.
  Duration nominationDelay = 100ms;
  /// No selected pair this long after checks started → failed.
  Duration failureTimeout = 15s;
  /// Upper bound on the check list (RFC 8445 6.1.2.5); lowest-priority pairs are pruned first.
  std::size_t maxPairs = 100;

  /// Consent freshness (RFC 7675): a check on the selected pair every interval × U[0.8, 1.2]; disconnected after
  /// `disconnectedTimeout` without anything received on the pair; failed after `consentTimeout` without an
  /// authenticated response (RFC 7675 5.1: 30 s).
  Duration consentInterval = 5s;
  Duration disconnectedTimeout = 8s;
  Duration consentTimeout = 30s;
};

struct Transmit {
  SocketAddress local;   // Udp: the socket to send from (a base). Tcp/Tls: unset
  SocketAddress remote;  // Udp: the destination. Tcp/Tls: the TURN server whose stream gets `data`
  Bytes data;
  TurnTransport transport = TurnTransport::Udp;
};

/// An application datagram after ICE/TURN demultiplexing (views: valid until the next call into the agent).
struct AppDatagram {
  SocketAddress local;   // the receiving socket, or the relayed address when it came through a TURN server
  SocketAddress remote;  // the sender (the peer)
  ByteView data;
};

/// An application datagram framed for the selected pair: send `data` from `local` to `remote` (Udp), or append it
/// to the stream to TURN server `remote` (Tcp/Tls). `data` is valid until the next call into the agent.
struct WrappedDatagram {
  SocketAddress local;
  SocketAddress remote;
  TurnTransport transport = TurnTransport::Udp;
  ByteView data;
};

/// Relayed application data that arrived over a TCP/TLS TURN stream.
struct StreamDatagram {
  SocketAddress local;   // the relayed address
  SocketAddress remote;  // the peer
  Bytes data;
};

/// The outcome of one TURN allocation.
struct RelayResult {
  SocketAddress server;
  TurnTransport transport = TurnTransport::Udp;
  SocketAddress local;                 // the UDP socket (unset for TCP/TLS)
  std::optional<SocketAddress> relayed;  // set once allocated
  std::string error;                   // why it failed (allocation refused, unreachable, refresh failed)
};

struct SelectedPair {
  /// The local candidate: the address the peer sees. For a server- or peer-reflexive local candidate (RFC 8445
  /// 7.2.5.3.1: a NAT mapped our check to it) that is the mapping, not `base`.
  SocketAddress local;
  SocketAddress base;    // the socket the pair sends from; the relayed address for a relay pair (wrapForSelectedPair)
  SocketAddress remote;
  CandidateType localType = CandidateType::Host;
  CandidateType remoteType = CandidateType::Host;
  friend bool operator==(const SelectedPair&, const SelectedPair&) = default;
};

struct Event {
  enum class Kind : std::uint8_t {
    CandidateGathered,  // `candidate`: signal it to the peer (trickle)
    GatheringComplete,  // signal end-of-candidates
    StateChanged,       // `state`
    SelectedPairChanged,  // `selected` (nullopt when consent is lost or the agent closes)
    RoleChanged,        // `role`, after a 487 role conflict resolution
  };
  Kind kind;
  Candidate candidate{};
  State state = State::New;
  std::optional<SelectedPair> selected{};
  Role role = Role::Controlling;
};

/// What a STUN server told us (also when the result is redundant with a host candidate and not signalled).
struct ServerReflexiveResult {
  SocketAddress local;
  SocketAddress server;
  std::optional<SocketAddress> mapped;  // nullopt: the transaction timed out or failed
};

struct AgentStats {
  std::uint64_t checksSent = 0;          // requests incl. retransmissions and consent checks
  std::uint64_t checksReceived = 0;      // authenticated requests
  std::uint64_t responsesReceived = 0;   // authenticated responses to our checks
  std::uint64_t authFailures = 0;        // wrong USERNAME / MESSAGE-INTEGRITY (requests and responses)
  std::uint64_t malformed = 0;           // STUN that failed to parse or lacked required attributes
  std::uint64_t roleConflicts = 0;       // 487 sent or received
  std::uint64_t unmatchedResponses = 0;  // responses to no pending transaction
};

class Agent {
 public:
  Agent(AgentConfig config, Random& random);

  [[nodiscard]] const Credentials& localCredentials() const noexcept { return local_; }
  [[nodiscard]] Role role() const noexcept { return role_; }
  [[nodiscard]] State state() const noexcept { return state_; }
  /// Why the agent is Failed (empty otherwise): no pair within the timeout, every pair failed, consent expired,
  /// or relay-only with every TURN allocation failed (with the servers' reasons).
  [[nodiscard]] const std::string& failureReason() const noexcept { return failureReason_; }
  [[nodiscard]] GatheringState gatheringState() const noexcept { return gathering_; }
  [[nodiscard]] std::uint64_t tieBreaker() const noexcept { return tieBreaker_; }

  /// The local UDP sockets (bound addresses with their real ports): each becomes a host candidate, and each is
  /// queried against every STUN server of its family. Gathering completes once every query answered or timed out.
  void startGathering(std::span<const SocketAddress> sockets, Timestamp now);

  /// The peer's ice-ufrag/ice-pwd. A different ufrag than before (or any after restart()) starts a new generation:
  /// the old remote candidates are dropped, so give the credentials before that generation's candidates.
  void setRemoteCredentials(std::string ufrag, std::string pwd, Timestamp now);
  /// Adds a trickled or SDP remote candidate. TCP candidates, other components and mDNS names (which rtcpeer
  /// does not resolve; the peer's checks reveal it as peer-reflexive) are accepted and ignored.
  Status addRemoteCandidate(const Candidate& candidate, Timestamp now);
  /// The peer signalled end-of-candidates (RFC 8838 4.4).
  void addRemoteEndOfCandidates(Timestamp now);

  /// One of the `pendingNames` ICE server names has been resolved by the shell (src/net): `stun` and `turn` hold
  /// its addresses (empty when it did not resolve, `error` then says why). The servers are used from now on:
  /// queried/allocated on every socket of their family, as if they had been configured from the start.
  struct Resolved {
    std::string url;
    std::vector<SocketAddress> stun;
    std::vector<TurnServer> turn;
    std::string error;
  };
  void handleResolved(const Resolved& resolved, Timestamp now);

  /// ICE restart (RFC 8445 9): new local credentials, fresh gathering on the same sockets; the selected pair keeps
  /// working until the new checks select one. Remote credentials/candidates are replaced when the peer's new ufrag
  /// arrives via setRemoteCredentials.
  void restart(Timestamp now);
  void close();

  /// Feeds a datagram received on local socket `local` from `remote`. ICE checks and TURN traffic are consumed;
  /// what remains is the application datagram, unwrapped if it came through a relay (see the file comment).
  std::optional<AppDatagram> handleDatagram(const SocketAddress& local, const SocketAddress& remote, ByteView data,
                                            Timestamp now);
  /// handleDatagram for callers without TURN: true if consumed, false if the caller should demux the datagram.
  bool handleInput(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now) {
    return !handleDatagram(local, remote, data, now);
  }
  /// Bytes received on the TCP/TLS stream to a TURN server (any split). Relayed application data is queued for
  /// pollStreamData().
  void handleStreamInput(TurnTransport transport, const SocketAddress& server, ByteView bytes, Timestamp now);
  /// The stream to a TURN server failed or closed: that allocation fails with `reason`.
  void handleStreamClosed(TurnTransport transport, const SocketAddress& server, std::string_view reason,
                          Timestamp now);
  std::optional<StreamDatagram> pollStreamData();
  /// Frames an application datagram for the selected pair (nullopt: no pair, or held until the TURN permission
  /// exists: it then leaves through pollTransmit()).
  std::optional<WrappedDatagram> wrapForSelectedPair(ByteView payload, Timestamp now);
  /// Reports non-STUN traffic (e.g. DTLS) received from a valid remote: it keeps the pair out of `disconnected`.
  /// It does not refresh consent (RFC 7675 5.1 requires an authenticated STUN response).
  void noteReceived(const SocketAddress& local, const SocketAddress& remote, Timestamp now);
  void handleTimeout(Timestamp now);
  [[nodiscard]] Timestamp nextDeadline() const;

  std::optional<Transmit> pollTransmit();
  std::optional<Event> pollEvent();

  [[nodiscard]] std::optional<SelectedPair> selectedPair() const;
  /// True if datagrams from `remote` on `local` belong to the peer: it has a succeeded pair or has sent us an
  /// authenticated check there.
  [[nodiscard]] bool isRemoteValid(const SocketAddress& local, const SocketAddress& remote) const;

  [[nodiscard]] const std::vector<Candidate>& localCandidates() const noexcept { return localCandidates_; }
  [[nodiscard]] const std::vector<ServerReflexiveResult>& serverReflexiveResults() const noexcept {
    return srflxResults_;
  }
  [[nodiscard]] const AgentStats& stats() const noexcept { return stats_; }
  /// One entry per TURN allocation (failures carry a reason; gathering completes either way).
  [[nodiscard]] std::vector<RelayResult> relayResults() const;

 private:
  enum class TxKind : std::uint8_t { Gather, Check, Consent };

  struct Socket {
    SocketAddress address;
    std::uint32_t hostPriority = 0;  // the candidate's priority (host, or relay for a relayed address)
    std::uint16_t localPreference = 0;
    std::optional<std::size_t> relay;  // relays_ index when this is a relayed address
    std::string foundation;            // of its host or relay candidate (RFC 8445 5.1.1.3)
  };
  /// A local candidate the peer sees instead of a base, learned from a check's XOR-MAPPED-ADDRESS (RFC 8445
  /// 7.2.5.3.1): a peer-reflexive one, or a server-reflexive one we gathered.
  struct Reflexive {
    std::size_t socket = 0;  // its base
    SocketAddress address;
    CandidateType type = CandidateType::PeerReflexive;
    std::uint32_t priority = 0;
    std::string foundation;
  };
  struct Relay {
    TurnClient client;
    std::optional<std::size_t> base;    // the UDP socket it talks from (nullopt: TCP/TLS stream)
    std::optional<std::size_t> socket;  // sockets_ index of the relayed address, once allocated
    bool failureSeen = false;
  };
  struct Remote {
    Candidate candidate;
    bool authenticated = false;  // has sent us an authenticated check
  };
  struct Pair {
    std::size_t socket = 0;
    std::size_t remote = 0;
    /// Set on a valid pair whose local candidate is reflexive_[*reflexive] (RFC 8445 7.2.5.3.2): it sends from
    /// `socket` like the checked pair that produced it, but is what gets nominated and selected. Such pairs are
    /// outside the check list proper: incoming checks and findPair() use the base pair.
    std::optional<std::size_t> reflexive;
    std::optional<std::size_t> valid;  // a checked pair whose success produced that other valid pair
    std::uint64_t priority = 0;
    PairState state = PairState::Waiting;
    bool nominated = false;
    bool nominateOnSuccess = false;  // controlled: USE-CANDIDATE arrived before our check succeeded
    bool triggered = false;          // queued in triggered_
    stun::TransactionId current{};   // the transaction whose outcome decides the pair
  };
  struct Transaction {
    stun::TransactionId id{};
    TxKind kind = TxKind::Check;
    std::size_t index = 0;  // pair (Check/Consent) or srflxResults_ entry (Gather)
    SocketAddress local, remote;
    std::string key;        // remote pwd the request was signed with (the response must use it)
    bool useCandidate = false;
    bool controlling = false;  // our role when the request was sent (487 handling, RFC 8445 7.2.5.1)
    Bytes packet;
    Timestamp next{}, giveUp{};
    Duration rto{};
    int transmits = 0, maxTransmits = 0;
  };

  void generateCredentials();
  void emit(Event e);
  void setState(State s);
  void emitCandidate(const Candidate& c);
  void queue(const SocketAddress& local, const SocketAddress& remote, ByteView data, Timestamp now);
  void startRelay(std::optional<std::size_t> base, const TurnServer& server, Timestamp now);
  void syncRelays(Timestamp now);
  void drainRelay(Relay& r);
  Relay* findStreamRelay(TurnTransport transport, const SocketAddress& server);
  std::optional<AppDatagram> deliverRelayed(Relay& r, const TurnInbound& in, Timestamp now);
  void handleStun(std::size_t socket, const SocketAddress& remote, ByteView data, Timestamp now);
  bool pairable(std::size_t socket) const;

  std::optional<std::size_t> socketIndex(const SocketAddress& local) const;
  std::optional<std::size_t> findRemote(const SocketAddress& address) const;
  std::optional<std::size_t> findPair(std::size_t socket, std::size_t remote) const;
  std::size_t addPair(std::size_t socket, std::size_t remote, std::optional<std::size_t> reflexive = {});
  void formPairs(std::size_t remote);
  std::uint64_t pairPriority(const Pair& p) const;
  bool sameFoundation(const Pair& a, const Pair& b) const;
  void setInitialState(std::size_t pair);
  void unfreeze();
  bool blockedFoundation(const Pair& p) const;
  std::size_t validPairFor(std::size_t pair, const std::optional<SocketAddress>& mapped);
  void recomputePriorities();
  std::uint32_t prflxPriority(std::size_t socket) const;

  void sendCheck(std::size_t pair, TxKind kind, bool useCandidate, Timestamp now);
  void pace(Timestamp now);
  void startChecksIfReady(Timestamp now);
  void transmit(Transaction& t, Timestamp now);
  void onTransactionTimeout(const Transaction& t, Timestamp now);

  void handleRequest(std::size_t socket, const SocketAddress& remote, const stun::Message& m, Timestamp now);
  void handleResponse(std::size_t socket, const SocketAddress& remote, const stun::Message& m, Timestamp now);
  void handleGatherResponse(const Transaction& t, const stun::Message& m);
  void respondError(std::size_t socket, const SocketAddress& remote, const stun::Message& m, int code,
                    std::string_view reason, std::string_view key, Timestamp now);
  void onPairSucceeded(std::size_t pair, bool useCandidate, const std::optional<SocketAddress>& mapped,
                       Timestamp now);
  void maybeNominate(Timestamp now);
  void updateSelection(Timestamp now);
  void select(std::optional<std::size_t> pair, Timestamp now);
  void updateChecklistOutcome(Timestamp now);
  void noteTraffic(std::size_t pair, Timestamp now);
  void checkGatheringDone();
  bool hasCheckablePair() const;
  void switchRole(Role r);
  void scheduleConsent(Timestamp now);
  void gatherOn(std::size_t socket, Timestamp now);
  void queryStun(std::size_t socket, const SocketAddress& server, Timestamp now);
  void afterInput(Timestamp now);

  AgentConfig config_;
  Random& random_;
  Credentials local_;
  Credentials previousLocal_;  // still accepted after restart() until a new pair is selected
  Credentials remote_;
  Role role_;
  std::uint64_t tieBreaker_;
  State state_ = State::New;
  std::string failureReason_;
  GatheringState gathering_ = GatheringState::New;
  bool remoteEndOfCandidates_ = false;
  bool restarting_ = false;  // restart(): checks run again although a pair is selected
  bool remoteStale_ = false;  // restart(): the peer's credentials belong to the old generation
  std::vector<std::string> unresolved_;  // why ICE server names did not resolve (part of a failure reason)

  std::vector<Socket> sockets_;
  std::deque<Relay> relays_;  // deque: TurnClient holds a Random& and stays put
  std::vector<Candidate> localCandidates_;
  std::vector<ServerReflexiveResult> srflxResults_;
  std::vector<Remote> remotes_;
  std::vector<Pair> pairs_;
  std::vector<Reflexive> reflexive_;
  std::deque<std::size_t> triggered_;
  std::vector<Transaction> transactions_;
  std::deque<Transmit> transmits_;
  std::deque<StreamDatagram> streamData_;
  std::deque<Event> events_;
  AgentStats stats_;

  bool checking_ = false;
  Timestamp checksStarted_{};
  Timestamp nextPace_{};
  Timestamp nominateAt_ = kNever;
  std::optional<std::size_t> nominating_;
  std::optional<std::size_t> selected_;
  Timestamp lastReceived_{};       // anything on the selected pair
  Timestamp lastConsent_{};        // authenticated response on the selected pair
  Timestamp nextConsent_ = kNever;
  Bytes scratch_;
};

}  // namespace rtcpeer::ice
