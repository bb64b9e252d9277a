#include "server/http.h"

#include <sys/resource.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <thread>

#include "core/log.h"

namespace osprey::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  // Declared before the I/O objects so that connections, destroyed with the
  // io_context's pending handlers, still find them.
  ServerOptions options;
  std::mutex mu;
  std::condition_variable cv;
  std::set<Connection*> connections;  // guarded by mu
  std::atomic<bool> stopping{false};
  std::atomic<int> open{0};
  std::atomic<int> active{0};
  const Handler* handler = nullptr;
  int port = 0;

  net::io_context io{1};
  tcp::acceptor acceptor{io};
  net::steady_timer accept_retry{io};

  void accept();
  void notify() {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  }
  // Runs `f` on every open connection's strand.
  template <typename F>
  void each_connection(F f);
};

namespace {

std::string lower(beast::string_view s) {
  std::string out(s.data(), s.size());
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
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
  char buf[48];
  std::snprintf(buf, sizeof buf, "req-%08llx-%llu", static_cast<unsigned long long>(start & 0xffffffffu),
                static_cast<unsigned long long>(++counter));
  return buf;
}

// A whole response with an OpenAI-shaped error body; the connection closes after it.
std::string error_response(int status, const std::string& message) {
  const char* type = status >= 500 ? "server_error" : "invalid_request_error";
  std::string escaped;
  for (char c : message) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += (static_cast<unsigned char>(c) < 0x20) ? ' ' : c;
  }
  bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = "{\"error\":{\"message\":\"" + escaped + "\",\"type\":\"" + type + "\",\"param\":null,\"code\":null}}";
  res.prepare_payload();
  std::ostringstream out;
  out << res;
  return out.str();
}

}  // namespace

// One client connection. Everything that touches the socket, the buffer and
// the parser runs on the connection's strand; the handler's thread only
// posts writes to it and reads the two atomic flags.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Server::Impl> server, tcp::socket socket)
      : server_(std::move(server)), socket_(std::move(socket)), timer_(socket_.get_executor()) {
    ++server_->open;
    std::lock_guard<std::mutex> lock(server_->mu);
    server_->connections.insert(this);
  }

  ~Connection() {
    {
      std::lock_guard<std::mutex> lock(server_->mu);
      server_->connections.erase(this);
    }
    --server_->open;
    server_->notify();
  }

  net::any_io_executor executor() { return socket_.get_executor(); }

  void start() {
    if (server_->open > server_->options.max_connections)
      return respond_and_close(503, "too many open connections");
    wait_for_request(/*first=*/true);
  }

  // The server is stopping: an idle connection closes now; one reading or
  // handling a request finishes it and then closes.
  void stop_if_idle() {
    if (state_ == State::kIdle) close();
  }

  // The drain deadline has passed: close whatever the state.
  void close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    gone_ = true;
    timer_.cancel();
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  // From the handler's thread: writes `data`, waiting up to the write timeout.
  bool write(std::string data) {
    if (gone_ || broken_) return false;
    auto done = std::make_shared<std::promise<bool>>();
    std::future<bool> written = done->get_future();
    auto buffer = std::make_shared<std::string>(std::move(data));
    net::post(executor(), [self = shared_from_this(), buffer, done] {
      if (self->state_ == State::kClosed) return done->set_value(false);
      net::async_write(self->socket_, net::buffer(*buffer), [self, buffer, done](beast::error_code ec, size_t) {
        if (ec) self->broken_ = true;
        done->set_value(!ec);
      });
    });
    if (written.wait_for(std::chrono::milliseconds(server_->options.write_timeout_ms)) == std::future_status::timeout) {
      // The client stopped reading: closing cancels the write.
      broken_ = true;
      net::post(executor(), [self = shared_from_this()] { self->close(); });
      written.wait();
      return false;
    }
    return written.get();
  }

  bool gone() const { return gone_ || broken_; }

 private:
  enum class State { kIdle, kReading, kHandling, kClosing, kClosed };
  enum class Next { kNone, kNextRequest, kClose };

  // Runs `action` after `ms` unless the timer is re-armed or cancelled first.
  template <typename F>
  void arm_timer(int ms, F action) {
    const uint64_t generation = ++timer_generation_;
    timer_.expires_after(std::chrono::milliseconds(ms));
    timer_.async_wait([self = shared_from_this(), generation, action](beast::error_code ec) {
      if (!ec && generation == self->timer_generation_ && self->state_ != State::kClosed) action(*self);
    });
  }
  void disarm_timer() {
    ++timer_generation_;
    timer_.cancel();
  }

  // Waits for the first byte of the next request: no thread, no buffer.
  void wait_for_request(bool first) {
    state_ = State::kIdle;
    if (server_->stopping) return linger_close();
    if (buffer_.size() > 0) return read_request();
    arm_timer(first ? server_->options.request_timeout_ms : server_->options.idle_timeout_ms,
              [](Connection& c) { c.close(); });
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      if (self->state_ != State::kIdle) return;
      if (ec) return self->close();
      self->read_request();
    });
  }

  void read_request() {
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    timed_out_ = false;
    arm_timer(server_->options.request_timeout_ms, [](Connection& c) {
      c.timed_out_ = true;
      beast::error_code ignored;
      c.socket_.cancel(ignored);
    });
    bhttp::async_read_header(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->read_failed(ec);
      self->on_header();
    });
  }

  void on_header() {
    if (parser_->is_done()) return dispatch();
    const auto& h = parser_->get();
    if (lower(h[bhttp::field::expect]) == "100-continue") {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      return net::async_write(socket_, net::buffer(*cont), [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
    }
    read_body();
  }

  void read_body() {
    bhttp::async_read(socket_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->read_failed(ec);
      self->dispatch();
    });
  }

  void read_failed(beast::error_code ec) {
    disarm_timer();
    if (state_ == State::kClosed) return;
    if (timed_out_) return respond_and_close(408, "the request did not arrive in time");
    if (ec == bhttp::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted || ec == bhttp::error::partial_message)
      return close();
    if (ec == bhttp::error::header_limit) return respond_and_close(431, "request headers are too large");
    if (ec == bhttp::error::body_limit) {
      const auto length = parser_->content_length();
      return respond_and_close(413, "the request body" + (length ? " of " + std::to_string(*length) + " bytes" : std::string()) +
                                        " exceeds the limit of " + std::to_string(server_->options.max_body_bytes) + " bytes");
    }
    respond_and_close(400, "malformed HTTP request: " + ec.message());
  }

  // A whole request is in: hand it to a worker thread, and keep reading.
  void dispatch() {
    disarm_timer();
    state_ = State::kHandling;
    bhttp::request<bhttp::string_body> msg = parser_->release();
    parser_.reset();
    auto req = std::make_shared<Request>();
    req->method = std::string(msg.method_string().data(), msg.method_string().size());
    req->target = std::string(msg.target().data(), msg.target().size());
    req->path = req->target.substr(0, req->target.find('?'));
    for (const auto& field : msg) req->headers.emplace_back(lower(field.name_string()), std::string(field.value().data(), field.value().size()));
    req->body = std::move(msg.body());
    req->id = request_id(*req);
    const bool keep_alive = msg.keep_alive();

    if (++server_->active > server_->options.max_active) {
      --server_->active;
      return respond_and_close(503, "the server is handling too many requests; retry later");
    }
    try {
      std::thread([self = shared_from_this(), req, keep_alive] { self->run_handler(*req, keep_alive); }).detach();
    } catch (const std::system_error& e) {
      --server_->active;
      log::error(std::string("cannot start a thread for a request: ") + e.what());
      return respond_and_close(503, "the server cannot take another request now; retry later");
    }
    watch();
  }

  // On the worker thread.
  void run_handler(const Request& req, bool keep_alive) {
    bool again = false;
    {
      Response res(shared_from_this(), req.id);
      res.keep_alive = keep_alive && !server_->stopping;
      try {
        (*server_->handler)(req, res);
      } catch (const std::exception& e) {
        handler_failed(req, res, e.what());
      } catch (...) {
        handler_failed(req, res, "an unknown exception");
      }
      if (!res.sent()) {
        res.keep_alive = false;
        res.send(500, "application/json", "{\"error\":{\"message\":\"no response\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
      }
      again = res.keep_alive && !gone();
    }
    net::post(executor(), [self = shared_from_this(), again] { self->after_response(again); });
    --server_->active;
    server_->notify();
  }

  static void handler_failed(const Request& req, Response& res, const std::string& what) {
    log::error("request " + req.id + " (" + req.method + " " + req.path + ") failed: " + what);
    res.keep_alive = false;  // a response under way cannot be mended; the connection closes
    if (!res.sent())
      res.send(500, "application/json",
               "{\"error\":{\"message\":\"internal error while handling request " + req.id +
                   "\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
  }

  // While a handler runs, a pending read notices a client that goes away
  // (and keeps any pipelined request in the buffer for later).
  void watch() {
    if (buffer_.size() >= server_->options.max_header_bytes + server_->options.max_body_bytes) return;
    watching_ = true;
    socket_.async_read_some(buffer_.prepare(16384), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->watching_ = false;
      if (!ec) {
        self->buffer_.commit(n);
        if (self->next_ == Next::kNone && self->state_ == State::kHandling) return self->watch();
      } else if (ec != net::error::operation_aborted) {
        self->gone_ = true;
      }
      if (self->next_ != Next::kNone) self->proceed();
    });
  }

  void after_response(bool again) {
    if (state_ == State::kClosed) return;
    next_ = again && !server_->stopping ? Next::kNextRequest : Next::kClose;
    if (watching_) {
      beast::error_code ignored;
      socket_.cancel(ignored);  // the read's handler proceeds
      return;
    }
    proceed();
  }

  void proceed() {
    const Next next = next_;
    next_ = Next::kNone;
    if (state_ == State::kClosed) return;
    if (next == Next::kClose || gone_) return linger_close();
    wait_for_request(/*first=*/false);
  }

  void respond_and_close(int status, const std::string& message) {
    state_ = State::kClosing;
    auto text = std::make_shared<std::string>(error_response(status, message));
    net::async_write(socket_, net::buffer(*text), [self = shared_from_this(), text](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->linger_close();
    });
  }

  // Closing a socket with unread input makes the kernel send a reset, which
  // can destroy a response (such as a 413) before the client reads it. Send
  // FIN first, then discard input briefly until the client closes too.
  void linger_close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosing;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    arm_timer(2000, [](Connection& c) { c.close(); });
    drain();
  }

  void drain() {
    auto sink = std::make_shared<std::array<char, 16384>>();
    socket_.async_read_some(net::buffer(*sink), [self = shared_from_this(), sink](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->drain();
    });
  }

  std::shared_ptr<Server::Impl> server_;
  tcp::socket socket_;
  net::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  State state_ = State::kIdle;
  Next next_ = Next::kNone;
  bool timed_out_ = false;
  bool watching_ = false;
  std::atomic<bool> gone_{false};    // the client closed its side
  std::atomic<bool> broken_{false};  // a write failed or timed out
};

template <typename F>
void Server::Impl::each_connection(F f) {
  std::vector<std::shared_ptr<Connection>> alive;
  {
    std::lock_guard<std::mutex> lock(mu);
    // A connection being destroyed has no owner left: skip it.
    for (Connection* c : connections)
      if (auto owned = c->weak_from_this().lock()) alive.push_back(std::move(owned));
  }
  // Outside the lock: the last owner of a connection may be here, and its
  // destructor takes the lock.
  for (auto& c : alive) net::post(c->executor(), [c, f] { f(*c); });
}

void Server::Impl::accept() {
  acceptor.async_accept(net::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
    if (self->stopping || !self->acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or memory: wait a little rather than spin.
      log::warn("accept failed: " + ec.message());
      self->accept_retry.expires_after(std::chrono::milliseconds(100));
      self->accept_retry.async_wait([self](beast::error_code) { self->accept(); });
      return;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto connection = std::make_shared<Connection>(self, std::move(socket));
    net::dispatch(connection->executor(), [connection] { connection->start(); });
    self->accept();
  });
}

const std::string* Request::header(const std::string& lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return &v;
  return nullptr;
}

Response::Response(std::shared_ptr<Connection> connection, std::string request_id)
    : connection_(std::move(connection)), request_id_(std::move(request_id)) {}

std::string Response::head(int status, const std::string& content_type) const {
  bhttp::response_header<> h;
  h.version(11);
  h.result(static_cast<unsigned>(status));
  h.set(bhttp::field::content_type, content_type);
  if (!request_id_.empty()) h.set("X-Request-Id", request_id_);
  h.set(bhttp::field::connection, keep_alive ? "keep-alive" : "close");
  std::ostringstream out;
  out << h;
  std::string text = out.str();
  return text.substr(0, text.size() - 2);  // without the blank line, so fields can follow
}

bool Response::send(int status, const std::string& content_type, const std::string& body,
                    const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  sent_ = true;
  status_ = status;
  std::string text = head(status, content_type);
  text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  for (const auto& [k, v] : extra_headers) text += k + ": " + v + "\r\n";
  text += "\r\n";
  text += body;
  return connection_->write(std::move(text));
}

bool Response::start_stream(int status, const std::string& content_type,
                            const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  sent_ = true;
  status_ = status;
  std::string text = head(status, content_type) + "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
  for (const auto& [k, v] : extra_headers) text += k + ": " + v + "\r\n";
  return connection_->write(text + "\r\n");
}

bool Response::write_chunk(const std::string& data) {
  if (data.empty()) return !connection_->gone();
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return connection_->write(size + data + "\r\n");
}

bool Response::end_stream() { return connection_->write("0\r\n\r\n"); }

bool Response::peer_closed() const { return connection_->gone(); }

Server::Server() : impl_(std::make_shared<Impl>()) {}

Server::~Server() {
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

int Server::port() const { return impl_->port; }
int Server::open_connections() const { return impl_->open.load(); }
int Server::active_requests() const { return impl_->active.load(); }

Status Server::listen(const ServerOptions& options) {
  Impl& s = *impl_;
  s.options = options;
  // Idle keep-alive connections cost a descriptor each: take the hard limit.
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  beast::error_code ec;
  tcp::resolver resolver(s.io);
  const auto endpoints = resolver.resolve(options.host, std::to_string(options.port),
                                          tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return InvalidArgument("cannot resolve host '" + options.host + "': " + ec.message());
  std::string last_error = "no address";
  for (const auto& entry : endpoints) {
    s.acceptor.open(entry.endpoint().protocol(), ec);
    if (ec) {
      last_error = ec.message();
      continue;
    }
    s.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    s.acceptor.bind(entry.endpoint(), ec);
    if (!ec) s.acceptor.listen(1024, ec);
    if (!ec) {
      s.port = s.acceptor.local_endpoint(ec).port();
      return Status::Ok();
    }
    last_error = ec.message();
    beast::error_code ignored;
    s.acceptor.close(ignored);
  }
  return IoError("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " + last_error);
}

void Server::stop() {
  Impl& s = *impl_;
  if (s.stopping.exchange(true)) return;
  net::post(s.io, [impl = impl_] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_retry.cancel();
  });
  s.each_connection([](Connection& c) { c.stop_if_idle(); });
  s.notify();
}

void Server::serve(const Handler& handler, int drain_ms) {
  Impl& s = *impl_;
  s.handler = &handler;
  auto work = net::make_work_guard(s.io);
  s.accept();
  std::promise<void> io_finished;
  std::future<void> io_done = io_finished.get_future();
  std::thread io_thread([&s, &io_finished] {
    for (;;) {
      try {
        s.io.run();
        io_finished.set_value();
        return;
      } catch (const std::exception& e) {
        log::error(std::string("HTTP I/O failed: ") + e.what());
      }
    }
  });
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait(lock, [&s] { return s.stopping.load(); });
  // Idle connections are closing; requests being handled finish.
  const bool drained = s.cv.wait_for(lock, std::chrono::milliseconds(drain_ms),
                                     [&s] { return s.active == 0 && s.open == 0; });
  lock.unlock();
  if (!drained) {
    log::warn("drain deadline passed with " + std::to_string(s.active.load()) + " request(s) still running; closing them");
    s.each_connection([](Connection& c) { c.close(); });
  }
  // Handlers see their connection closed and return; none may outlive the
  // handler they run.
  lock.lock();
  s.cv.wait_for(lock, std::chrono::milliseconds(s.options.write_timeout_ms + 5000), [&s] { return s.active == 0; });
  lock.unlock();
  // Close what is left (connections lingering after their last response) so
  // that every pending operation completes and releases its connection; the
  // I/O thread's run() then returns by itself.
  s.each_connection([](Connection& c) { c.close(); });
  work.reset();
  if (io_done.wait_for(std::chrono::seconds(5)) == std::future_status::timeout) s.io.stop();
  io_thread.join();
}

}  // namespace osprey::http
