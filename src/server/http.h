// A small HTTP/1.1 server for the API: one thread per connection (bounded),
// Content-Length request bodies, keep-alive, and chunked streaming responses.
// Every read has a deadline, so slow or stalled clients are cut off instead
// of holding a thread forever, and limits on header and body size answer
// 431/413 before reading further.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "osprey/status.h"

namespace osprey::http {

struct Request {
  std::string method;
  std::string target;  // path and query as sent
  std::string path;    // without the query
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // The client's X-Request-Id when it sent a sane one, else a new one; every
  // response carries it back, and logs name requests by it.
  std::string id;

  const std::string* header(const std::string& lower_name) const;
};

// Writes one response on a connection. All calls return false once the peer
// has gone away.
class Response {
 public:
  explicit Response(int fd, std::string request_id = "") : fd_(fd), request_id_(std::move(request_id)) {}
  bool send(int status, const std::string& content_type, const std::string& body,
            const std::vector<std::pair<std::string, std::string>>& extra_headers = {});
  bool start_stream(int status, const std::string& content_type);
  bool write_chunk(const std::string& data);
  bool end_stream();
  // True when the client has closed its side (checked without blocking).
  bool peer_closed() const;
  bool sent() const { return sent_; }
  int status() const { return status_; }
  bool keep_alive = true;

 private:
  bool write_all(const std::string& data);
  std::string head(int status, const std::string& content_type) const;
  int fd_;
  std::string request_id_;
  bool sent_ = false;
  bool broken_ = false;
  int status_ = 0;
};

const char* status_text(int status);

using Handler = std::function<void(const Request&, Response&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 8 << 20;
  int request_timeout_ms = 10'000;  // to receive a whole request once it starts
  int idle_timeout_ms = 30'000;     // between requests on a kept-alive connection
  int max_connections = 256;
};

class Server {
 public:
  ~Server();
  // Binds and listens; only on the address asked for.
  Status listen(const ServerOptions& options);
  int port() const { return port_; }
  // Accepts connections until stop(); returns after open connections finish
  // (or the drain deadline passes).
  void serve(const Handler& handler, int drain_ms = 30'000);
  // Safe from any thread or a signal-watching thread.
  void stop();
  int open_connections() const { return open_.load(); }

 private:
  void handle_connection(int fd, const Handler& handler);

  ServerOptions options_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> open_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace osprey::http
