#include <cstdio>

#include "cli/commands.h"
#include "server/http_probe.h"

namespace osprey::cli {

void register_probe(CLI::App& app) {
  auto url = std::make_shared<std::string>("http://127.0.0.1:8080/health");
  auto timeout_s = std::make_shared<double>(3);
  CLI::App* cmd = app.add_subcommand(
      "probe", "GET a URL and succeed if it answers 2xx: a health check for container images with no curl");
  cmd->add_option("url", *url, "http://HOST[:PORT][/PATH]")->capture_default_str();
  cmd->add_option("--timeout", *timeout_s, "Seconds to wait for the whole answer")
      ->capture_default_str()->check(CLI::Range(0.01, 3600.0));
  cmd->callback([url, timeout_s] {
    auto status = http::probe(*url, static_cast<int>(*timeout_s * 1000));
    if (!status.ok()) throw Failure{status.status().message()};
    if (*status < 200 || *status > 299) throw Failure{*url + " answered " + std::to_string(*status)};
    std::printf("%s answered %d\n", url->c_str(), *status);
  });
}

}  // namespace osprey::cli
