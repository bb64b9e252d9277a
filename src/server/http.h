// The HTTP/1.1 server under the API, on Boost.Asio with Boost.Beast's parser.
//
// Connections are event-driven: accepting, reading requests and waiting on
// idle keep-alive connections happen on one I/O thread, so an idle
// connection costs a socket and a few hundred bytes, never a thread. A
// complete request is handed to a worker thread, because handlers block
// (a completion waits on the scheduler for each token); the worker writes
// through the connection's strand and waits for each write with a deadline,
// so a client that stops reading cannot hold it forever.
//
// Every read has a deadline: the first byte of a request within the idle
// timeout, all of it within the request timeout. Header and body limits
// answer 431/413 as soon as they are known; bodies may come with
// Content-Length or chunked; `Expect: 100-continue` is honoured. While a
// handler runs, the connection keeps reading, so a client that goes away is
// noticed (Response::peer_closed) and its generation cancelled.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
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

class Connection;

// Writes one response on a connection, from the handler's thread. Each call
// returns once its bytes are written; all return false once the peer has
// gone away or stopped reading for longer than the write timeout.
class Response {
 public:
  Response(std::shared_ptr<Connection> connection, std::string request_id);
  bool send(int status, const std::string& content_type, const std::string& body,
            const std::vector<std::pair<std::string, std::string>>& extra_headers = {});
  bool start_stream(int status, const std::string& content_type,
                    const std::vector<std::pair<std::string, std::string>>& extra_headers = {});
  bool write_chunk(const std::string& data);
  bool end_stream();
  // True when the client has closed its side.
  bool peer_closed() const;
  bool sent() const { return sent_; }
  int status() const { return status_; }
  bool keep_alive = true;

 private:
  std::string head(int status, const std::string& content_type) const;
  std::shared_ptr<Connection> connection_;
  std::string request_id_;
  bool sent_ = false;
  int status_ = 0;
};

using Handler = std::function<void(const Request&, Response&)>;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  size_t max_header_bytes = 16 << 10;
  size_t max_body_bytes = 8 << 20;
  int request_timeout_ms = 10'000;  // to receive a whole request once it starts
  int idle_timeout_ms = 30'000;     // between requests on a kept-alive connection
  int write_timeout_ms = 60'000;    // for a client to take one write
  int max_connections = 4096;       // open at once, idle ones included
  int max_active = 512;             // requests being handled at once (worker threads)
};

class Server {
 public:
  Server();
  ~Server();
  // Binds and listens; only on the address asked for.
  Status listen(const ServerOptions& options);
  int port() const;
  // Serves until stop(); then closes idle connections, lets requests being
  // handled finish (up to `drain_ms`), and returns.
  void serve(const Handler& handler, int drain_ms = 30'000);
  // Safe from any thread.
  void stop();
  int open_connections() const;
  int active_requests() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;  // shared with the connections, which may outlive a stopped server briefly
};

}  // namespace osprey::http
