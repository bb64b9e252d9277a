#include "server/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <system_error>
#include <thread>

#include "core/log.h"

namespace osprey::http {
namespace {

using Clock = std::chrono::steady_clock;

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

// Reads more bytes into `buf` before `deadline`. False on timeout, error or EOF.
bool read_more(int fd, std::string& buf, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) continue;
    char chunk[16384];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno != EINTR && errno != EAGAIN) return false;
  }
}

// A client's X-Request-Id is kept when it is short and plain (it is echoed
// in a header and in logs); otherwise the server makes one.
std::string request_id(const Request& req) {
  if (const std::string* given = req.header("x-request-id")) {
    bool plain = !given->empty() && given->size() <= 128;
    for (char c : *given) plain &= std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':';
    if (plain) return *given;
  }
  static std::atomic<uint64_t> counter{0};
  static const uint64_t start = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  char buf[40];
  std::snprintf(buf, sizeof buf, "req-%08llx-%llu", static_cast<unsigned long long>(start & 0xffffffffu),
                static_cast<unsigned long long>(++counter));
  return buf;
}

void simple_error(Response& res, int status, const std::string& message) {
  res.keep_alive = false;
  const char* type = status >= 500 ? "server_error" : "invalid_request_error";
  std::string body = "{\"error\":{\"message\":\"" + message + "\",\"type\":\"" + type + "\",\"param\":null,\"code\":null}}";
  res.send(status, "application/json", body);
}

// Closing a socket with unread input makes the kernel send a reset, which
// can destroy a response (such as a 413) before the client reads it. Send
// FIN first, then discard input briefly until the client closes too.
void linger_close(int fd) {
  ::shutdown(fd, SHUT_WR);
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  char sink[16384];
  while (Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    if (::recv(fd, sink, sizeof sink, 0) <= 0) break;
  }
  ::close(fd);
}

}  // namespace

const std::string* Request::header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return &v;
  return nullptr;
}

const char* status_text(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

bool Response::write_all(const std::string& data) {
  if (broken_) return false;
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken_ = true;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string Response::head(int status, const std::string& content_type) const {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  h += "Content-Type: " + content_type + "\r\n";
  if (!request_id_.empty()) h += "X-Request-Id: " + request_id_ + "\r\n";
  return h;
}

bool Response::send(int status, const std::string& content_type, const std::string& body,
                    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  sent_ = true;
  status_ = status;
  std::string h = head(status, content_type);
  h += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : extra_headers) h += k + ": " + v + "\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return write_all(h + body);
}

bool Response::start_stream(int status, const std::string& content_type) {
  sent_ = true;
  status_ = status;
  std::string h = head(status, content_type);
  h += "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
  h += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  return write_all(h);
}

bool Response::write_chunk(const std::string& data) {
  if (data.empty()) return !broken_;
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return write_all(size + data + "\r\n");
}

bool Response::end_stream() { return write_all("0\r\n\r\n"); }

bool Response::peer_closed() const {
  if (broken_) return true;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  char c;
  // Readable: either a pipelined request (still there) or EOF (gone).
  return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

Server::~Server() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  for (int fd : wake_pipe_)
    if (fd >= 0) ::close(fd);
}

Status Server::listen(const ServerOptions& options) {
  options_ = options;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(options.port);
  if (int rc = ::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return InvalidArgument("cannot resolve host '" + options.host + "': " + gai_strerror(rc));
  std::string last_error = "no address";
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
      listen_fd_ = fd;
      sockaddr_storage bound{};
      socklen_t len = sizeof bound;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
      port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      break;
    }
    last_error = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (listen_fd_ < 0) return IoError("cannot listen on " + options.host + ":" + port + ": " + last_error);
  if (::pipe2(wake_pipe_, O_CLOEXEC) != 0) return IoError("pipe: " + std::string(std::strerror(errno)));
  return Status::Ok();
}

void Server::stop() {
  stopping_ = true;
  if (wake_pipe_[1] >= 0) {
    const char c = 1;
    (void)!::write(wake_pipe_[1], &c, 1);
  }
}

void Server::serve(const Handler& handler, int drain_ms) {
  while (!stopping_) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_pipe_[0], POLLIN, 0}};
    if (::poll(p, 2, 1000) <= 0) continue;
    if (p[1].revents) break;
    if (!(p[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (open_.load() >= options_.max_connections) {
      Response res(fd);
      res.keep_alive = false;
      simple_error(res, 503, "too many open connections");
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ++open_;
    try {
      std::thread([this, fd, &handler] {
        try {
          handle_connection(fd, handler);
        } catch (const std::exception& e) {
          log::error(std::string("connection failed: ") + e.what());
        } catch (...) {
          log::error("connection failed: an unknown exception");
        }
        linger_close(fd);
        std::lock_guard<std::mutex> lock(mu_);
        --open_;
        cv_.notify_all();
      }).detach();
    } catch (const std::system_error& e) {
      // No thread could be had (resource limits): refuse this connection only.
      log::error(std::string("cannot start a connection thread: ") + e.what());
      Response res(fd);
      simple_error(res, 503, "the server cannot take another connection now");
      ::close(fd);
      std::lock_guard<std::mutex> lock(mu_);
      --open_;
      cv_.notify_all();
    }
  }
  // No new connections; let the open ones finish.
  ::close(listen_fd_);
  listen_fd_ = -1;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(drain_ms), [this] { return open_.load() == 0; });
}

void Server::handle_connection(int fd, const Handler& handler) {
  std::string buf;
  for (bool first = true; !stopping_; first = false) {
    // Wait for the start of a request (idle), then for all of it (request timeout).
    const auto idle_deadline = Clock::now() + std::chrono::milliseconds(first ? options_.request_timeout_ms : options_.idle_timeout_ms);
    if (buf.empty() && !read_more(fd, buf, idle_deadline)) return;
    const auto deadline = Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
    Response res(fd);
    size_t header_end;
    while ((header_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (buf.size() > options_.max_header_bytes) return simple_error(res, 431, "request headers are too large");
      if (!read_more(fd, buf, deadline)) {
        if (!buf.empty()) simple_error(res, 408, "the request did not arrive in time");
        return;
      }
    }
    if (header_end > options_.max_header_bytes) return simple_error(res, 431, "request headers are too large");

    Request req;
    const std::string head = buf.substr(0, header_end);
    size_t line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const size_t sp1 = request_line.find(' ');
    const size_t sp2 = request_line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1 || request_line.compare(sp2 + 1, 5, "HTTP/") != 0)
      return simple_error(res, 400, "malformed request line");
    req.method = request_line.substr(0, sp1);
    req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    req.path = req.target.substr(0, req.target.find('?'));
    const bool http10 = request_line.compare(sp2 + 1, 8, "HTTP/1.0") == 0;
    size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string::npos) e = head.size();
      const std::string line = head.substr(pos, e - pos);
      const size_t colon = line.find(':');
      if (colon == std::string::npos || colon == 0) return simple_error(res, 400, "malformed header line");
      req.headers.emplace_back(lower(line.substr(0, colon)), trim(line.substr(colon + 1)));
      pos = e + 2;
    }
    buf.erase(0, header_end + 4);

    const std::string* conn = req.header("connection");
    res.keep_alive = !http10 && !(conn != nullptr && lower(*conn) == "close");
    if (const std::string* te = req.header("transfer-encoding"); te != nullptr && lower(*te) != "identity")
      return simple_error(res, 411, "chunked request bodies are not accepted; send Content-Length");
    size_t length = 0;
    if (const std::string* cl = req.header("content-length")) {
      char* end = nullptr;
      errno = 0;
      const unsigned long long v = std::strtoull(cl->c_str(), &end, 10);
      if (cl->empty() || *end != '\0' || errno != 0 || (*cl)[0] == '-') return simple_error(res, 400, "invalid Content-Length");
      if (v > options_.max_body_bytes)
        return simple_error(res, 413, "the request body of " + std::to_string(v) + " bytes exceeds the limit of " +
                                          std::to_string(options_.max_body_bytes));
      length = static_cast<size_t>(v);
    }
    while (buf.size() < length) {
      if (!read_more(fd, buf, deadline)) return simple_error(res, 408, "the request body did not arrive in time");
    }
    req.body = buf.substr(0, length);
    buf.erase(0, length);

    req.id = request_id(req);
    res = Response(fd, req.id);
    res.keep_alive = !http10 && !(conn != nullptr && lower(*conn) == "close");
    try {
      handler(req, res);
    } catch (const std::exception& e) {
      log::error("request " + req.id + " (" + req.method + " " + req.path + ") failed: " + e.what());
      if (res.sent()) return;  // a response under way cannot be mended; the connection closes
      simple_error(res, 500, "internal error while handling request " + req.id);
    } catch (...) {
      log::error("request " + req.id + " (" + req.method + " " + req.path + ") failed: an unknown exception");
      if (res.sent()) return;
      simple_error(res, 500, "internal error while handling request " + req.id);
    }
    if (!res.sent()) simple_error(res, 500, "no response");
    if (!res.keep_alive) return;
  }
}

}  // namespace osprey::http
