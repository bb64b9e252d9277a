// JSON Schema to GBNF: a grammar whose every sentence is JSON text that
// validates against the schema.
//
// Supported: type (and lists of types), properties, required,
// additionalProperties, items, prefixItems, minItems, maxItems, enum, const,
// anyOf, oneOf, allOf (of object schemas), $ref into $defs/definitions (and
// "#": recursion), minLength, maxLength, pattern (a regular subset: literals,
// ., classes, \d \w \s, groups, |, * + ? {m,n}, ^ $), minimum, maximum and
// exclusive bounds (integers exactly; numbers with integral bounds), format
// date, time, date-time and uuid, nullable, and the annotations (title,
// description, default, examples, $schema, $id, $comment, deprecated,
// readOnly, writeOnly). Anything else is an error naming the keyword and
// where it is: a schema is never half-enforced.
//
// The grammar produces a subset of the valid documents: no properties beyond
// the listed ones, compact whitespace, no string escapes a pattern would have
// to match. Every document it produces validates.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "osprey/status.h"

namespace osprey::grammar {

// `where` receives the path of the offending keyword ("properties.age.minimum")
// when the schema cannot be compiled.
Expected<std::string> json_schema_to_gbnf(const nlohmann::ordered_json& schema, std::string* where = nullptr);

// Any JSON object (response_format json_object).
std::string json_object_gbnf();

// A grammar of ours (root never referred to) whose sentences may first have a
// block `open` ... `close` of any text not containing `close`, then ws: a
// thinking model's reasoning before the answer the grammar constrains.
std::string with_optional_block(const std::string& gbnf, const std::string& open, const std::string& close);

}  // namespace osprey::grammar
