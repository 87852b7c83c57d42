// Replays a libFuzzer corpus through LLVMFuzzerTestOneInput in builds without libFuzzer (gcc, asan preset), and
// adds seeded random mutations of each input, so the sanitizers see every parser on every CI run.
//   fuzz_X_replay [--mutations=N] [--seed=S] <file-or-directory>...
// With RTCPEER_REPLAY_DUMP=<file> set, each input is written to that file before it runs, so after a failure the
// file holds the input that failed (a mutation, which exists nowhere else) for the libFuzzer binary or a debugger.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

std::uint64_t g_state = 0x243F6A8885A308D3ull;
std::uint64_t nextRand() {
  g_state ^= g_state << 13;
  g_state ^= g_state >> 7;
  g_state ^= g_state << 17;
  return g_state;
}

void run(const std::vector<std::uint8_t>& in) {
  if (const char* dump = std::getenv("RTCPEER_REPLAY_DUMP")) {
    std::ofstream out(dump, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  }
  // Copy into an exact-size heap buffer so ASan catches reads one past the end.
  auto* p = static_cast<std::uint8_t*>(std::malloc(in.size() ? in.size() : 1));
  if (!in.empty()) std::memcpy(p, in.data(), in.size());
  LLVMFuzzerTestOneInput(p, in.size());
  std::free(p);
}

std::vector<std::uint8_t> mutate(std::vector<std::uint8_t> v) {
  int ops = 1 + static_cast<int>(nextRand() % 4);
  for (int i = 0; i < ops; ++i) {
    switch (nextRand() % 5) {
      case 0:  // flip a byte
        if (!v.empty()) v[nextRand() % v.size()] ^= static_cast<std::uint8_t>(1 + nextRand() % 255);
        break;
      case 1:  // truncate
        if (!v.empty()) v.resize(nextRand() % v.size());
        break;
      case 2:  // insert random bytes
        for (int k = 0, n = 1 + static_cast<int>(nextRand() % 8); k < n; ++k)
          v.insert(v.begin() + static_cast<long>(v.empty() ? 0 : nextRand() % (v.size() + 1)),
                   static_cast<std::uint8_t>(nextRand()));
        break;
      case 3:  // set an interesting value (lengths!)
        if (v.size() >= 2) {
          static const std::uint16_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff};
          std::size_t at = nextRand() % (v.size() - 1);
          std::uint16_t x = kInteresting[nextRand() % 9];
          v[at] = static_cast<std::uint8_t>(x >> 8);
          v[at + 1] = static_cast<std::uint8_t>(x);
        }
        break;
      default:  // duplicate a slice
        if (!v.empty()) {
          std::size_t a = nextRand() % v.size(), n = 1 + nextRand() % (v.size() - a);
          std::vector<std::uint8_t> slice(v.begin() + static_cast<long>(a), v.begin() + static_cast<long>(a + n));
          v.insert(v.begin() + static_cast<long>(nextRand() % (v.size() + 1)), slice.begin(), slice.end());
        }
    }
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  long mutations = 0;
  std::vector<std::vector<std::uint8_t>> inputs;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--mutations=", 0) == 0) {
      mutations = std::strtol(a.c_str() + 12, nullptr, 10);
      continue;
    }
    if (a.rfind("--seed=", 0) == 0) {
      g_state = std::strtoull(a.c_str() + 7, nullptr, 10) | 1;
      continue;
    }
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(a)) {
      for (auto& e : std::filesystem::recursive_directory_iterator(a))
        if (e.is_regular_file()) files.push_back(e.path());
    } else {
      files.emplace_back(a);
    }
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      inputs.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  inputs.emplace_back();  // the empty input
  for (auto& in : inputs) run(in);
  for (long m = 0; m < mutations; ++m) run(mutate(inputs[nextRand() % inputs.size()]));
  std::printf("replayed %zu inputs and %ld mutations\n", inputs.size(), mutations);
  return 0;
}
