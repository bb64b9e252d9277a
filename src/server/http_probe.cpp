#include "server/http_probe.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <regex>

namespace osprey::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

Expected<int> probe(const std::string& url, int timeout_ms) {
  static const std::regex kUrl(R"(http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(/[^\s]*)?)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl))
    return InvalidArgument("'" + url + "' is not an http:// URL (http://HOST[:PORT][/PATH])");
  std::string host = m[1].str();
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  const std::string port = m[2].matched ? m[2].str() : "80";
  if (std::stoi(port) < 1 || std::stoi(port) > 65535) return InvalidArgument("port " + port + " in '" + url + "' is out of range");
  const std::string path = m[3].matched ? m[3].str() : "/";

  net::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::milliseconds(timeout_ms));
  tcp::resolver resolver(io);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return IoError("cannot resolve " + host + ": " + ec.message());
  stream.connect(endpoints, ec);
  if (ec) return IoError("cannot connect to " + host + ":" + port + ": " + ec.message());
  bhttp::request<bhttp::empty_body> req(bhttp::verb::get, path, 11);
  req.set(bhttp::field::host, host);
  req.set(bhttp::field::user_agent, "osprey-probe");
  req.set(bhttp::field::connection, "close");
  bhttp::write(stream, req, ec);
  if (ec) return IoError("cannot send the request to " + url + ": " + ec.message());
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1 << 20);
  bhttp::read(stream, buffer, parser, ec);
  if (ec) return IoError("no HTTP response from " + url + ": " + ec.message());
  return static_cast<int>(parser.get().result_int());
}

}  // namespace osprey::http
