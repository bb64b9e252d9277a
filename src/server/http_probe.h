// A health probe: one GET over HTTP/1.1, for images that carry no curl
// (deploy/Containerfile's HEALTHCHECK runs `osprey probe`).
#pragma once

#include <string>

#include "osprey/status.h"

namespace osprey::http {

// GETs `url` (http://HOST[:PORT][/PATH]) within `timeout_ms` and returns
// the response's status code; an error names what failed (a bad URL,
// refused, timed out, not HTTP).
Expected<int> probe(const std::string& url, int timeout_ms);

}  // namespace osprey::http
