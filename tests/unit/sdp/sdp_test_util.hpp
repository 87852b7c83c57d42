#pragma once

#include <fstream>
#include <iterator>
#include <string>

inline std::string readCorpus(const std::string& name) {
  std::ifstream in(std::string(RTCPEER_SDP_CORPUS) + "/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
