// rtcpeer: the command-line tool. `rtcpeer demo` runs two peers in one process over loopback;
// `rtcpeer peer` speaks the stdio peer protocol (docs/INTEROP.md) so a test driver can pair it with any peer.
#include <CLI/CLI.hpp>

#include "common.hpp"

#ifdef RTCPEER_HAVE_SIGNALING
namespace rtcpeer::tools {
// serve.cpp and transfer.cpp: each subcommand runs from its CLI11 callback and ends parsing with its exit code.
void addServeCommand(CLI::App& app);
void addTransferCommands(CLI::App& app);  // send, recv, chat
void addMeshCommand(CLI::App& app);       // mesh.cpp: a MultiplayerPeer per terminal
void addEchoServerCommand(CLI::App& app);  // echo_server.cpp: many clients, every message echoed
}  // namespace rtcpeer::tools
#endif

int main(int argc, char** argv) {
  using namespace rtcpeer::tools;

  CLI::App app{"rtcpeer: WebRTC data channels from the command line"};
  app.set_version_flag("--version", rtcpeer::versionString());
  app.require_subcommand(1);

  DemoOptions demo;
  CLI::App* demoCmd = app.add_subcommand(
      "demo", "Two peer connections in this process connect over 127.0.0.1, exchange messages on every kind of "
              "channel and move a bulk transfer; exits non-zero on any failure");
  demoCmd->add_option("--megabytes", demo.megabytes, "MiB to move over the reliable channel")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  demoCmd->add_flag("-q,--quiet", demo.quiet, "Print only the summary and errors");
  demoCmd->add_flag("-v,--verbose", demo.verbose, "Library log output (repeat for more: -vv debug, -vvv trace)");

  PeerOptions peer;
  CLI::App* peerCmd = app.add_subcommand(
      "peer", "Speak the stdio peer protocol (one JSON object per line on stdin/stdout) for interop drivers");
  peerCmd->add_option("--interfaces", peer.interfaces,
                      "Gather host candidates only on these interfaces or addresses (e.g. 127.0.0.1)")
      ->delimiter(',');
  addIceOptions(peerCmd, peer.ice);
  peerCmd->add_flag("-v,--verbose", peer.verbose, "Library log output on stderr (repeat for more)");

#ifdef RTCPEER_HAVE_SIGNALING
  addServeCommand(app);
  addTransferCommands(app);
  addMeshCommand(app);
  addEchoServerCommand(app);
#endif

  CLI11_PARSE(app, argc, argv);

  if (demoCmd->parsed()) return runDemo(demo);
  if (peerCmd->parsed()) return runPeer(peer);
  return 0;
}
