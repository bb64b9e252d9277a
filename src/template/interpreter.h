// Renders a parsed template against a context of variables.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "template/ast.h"
#include "template/value.h"

namespace osprey::tmpl {

// A template comes from a model file, so it is untrusted: rendering stops
// with an error instead of running forever or filling memory.
struct RenderLimits {
  size_t max_output_bytes = size_t{64} << 20;
  uint64_t max_steps = 5'000'000;  // statements, expressions, loop iterations, elements copied
  int max_call_depth = 100;         // nested macro calls
};

// `context` must be an object; its entries become global variables next to
// the built-in ones (range, namespace, raise_exception, strftime_now).
// Throws TemplateError.
std::string render(const Program& program, const Value& context, const RenderLimits& limits = {});

}  // namespace osprey::tmpl
