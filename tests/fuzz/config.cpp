// Fuzzes the public API's text parsers: Configuration::fromJson, DataChannelInit::fromJson and
// IceServerUrl::parse. Every input either parses into a value that validates, or fails with a reason; a parsed
// configuration's URLs parse again on their own. Nothing may throw across the API (nlohmann::json throws inside).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "rtcpeer/configuration.hpp"

using namespace rtcpeer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string reason;

  Configuration config;
  if (Configuration::fromJson(text, config, &reason) == Error::Ok) {
    if (config.validate(&reason) != Error::Ok) std::abort();
    for (const IceServer& server : config.iceServers)
      for (const std::string& url : server.urls) {
        IceServerUrl parsed;
        if (IceServerUrl::parse(url, parsed) != Error::Ok) std::abort();
      }
  } else if (reason.empty()) {
    std::abort();
  }

  reason.clear();
  DataChannelInit init;
  if (DataChannelInit::fromJson(text, init, &reason) == Error::Ok) {
    if (init.validate(&reason) != Error::Ok) std::abort();
  } else if (reason.empty()) {
    std::abort();
  }

  reason.clear();
  IceServerUrl url;
  if (IceServerUrl::parse(text, url, &reason) != Error::Ok && reason.empty()) std::abort();
  return 0;
}
