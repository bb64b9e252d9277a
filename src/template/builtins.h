// The filters, tests, methods and global functions templates can call.
#pragma once

#include <string>
#include <vector>

#include "template/value.h"

namespace osprey::tmpl {

// `value | name(args)`. Throws TemplateError for an unknown filter.
Value apply_filter(const std::string& name, const Value& value, const CallArgs& args);

// `value is name(args)`. Throws TemplateError for an unknown test.
bool apply_test(const std::string& name, const Value& value, const std::vector<Value>& args, int line);

// `value.name`: a mapping entry, or a bound method of a string, list or
// mapping; undefined when there is neither.
Value get_attribute(const Value& value, const std::string& name);

// `value[key]`: undefined when out of range or missing.
Value get_item(const Value& value, const Value& key);

// range, namespace, raise_exception, strftime_now, dict.
void add_globals(Object& globals);

// Iteration as `for` sees it: list items, mapping keys, string characters.
Array iterate(const Value& value, int line);

}  // namespace osprey::tmpl
