// A stand-in for tools/main.cpp with only the signaling subcommands, so they can be tested before they join the
// rtcpeer tool.
#include <CLI/CLI.hpp>

#include "rtcpeer/version.hpp"

namespace rtcpeer::tools {
void addServeCommand(CLI::App& app);
void addTransferCommands(CLI::App& app);
}  // namespace rtcpeer::tools

int main(int argc, char** argv) {
  CLI::App app{"rtcpeer signaling commands"};
  app.require_subcommand(1);
  rtcpeer::tools::addServeCommand(app);
  rtcpeer::tools::addTransferCommands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
