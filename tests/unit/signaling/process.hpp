// Child processes for the Redis tests (a real redis-server, several `rtcpeer serve --redis`): spawned with their
// stdout and stderr on a pipe that the test's io_context reads, so a test waits for a line as an event.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + GCC 12)

#include <boost/asio.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

extern char** environ;

namespace rtcpeer::signaling::test {

class ChildProcess {
 public:
  ChildProcess(boost::asio::io_context& io, const std::vector<std::string>& argv) : state_(std::make_shared<State>(io)) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    state_->pipe.assign(fds[0]);
    read(state_);
  }
  ~ChildProcess() {
    kill(SIGKILL);
    wait();
    boost::system::error_code ec;
    state_->pipe.close(ec);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool started() const { return pid_ > 0; }
  void kill(int sig) {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
  }
  /// Waits for the exit (blocking); the exit code, 128+signal, or -1.
  int wait() {
    if (pid_ <= 0) return -1;
    if (!reaped_) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      reaped_ = true;
      code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return code_;
  }
  /// Everything the process wrote so far; `eof` once it closed its output (exited).
  const std::string& output() const { return state_->output; }
  bool eof() const { return state_->eof; }
  bool printed(const std::string& text) const { return state_->output.find(text) != std::string::npos; }

 private:
  struct State {
    explicit State(boost::asio::io_context& io) : pipe(io) {}
    boost::asio::posix::stream_descriptor pipe;
    std::string output;
    char buffer[4096];
    bool eof = false;
  };
  static void read(const std::shared_ptr<State>& s) {
    s->pipe.async_read_some(boost::asio::buffer(s->buffer), [s](boost::system::error_code ec, std::size_t n) {
      if (ec) {
        s->eof = true;
        return;
      }
      s->output.append(s->buffer, n);
      read(s);
    });
  }
  std::shared_ptr<State> state_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int code_ = -1;
};

}  // namespace rtcpeer::signaling::test
