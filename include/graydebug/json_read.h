#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

// Reading untrusted JSON by type. Kubernetes objects, agent replies and ConfigMap entries may hold
// a member of any type; json::value() and operator[] would throw or insert, these never do: a
// member that is missing or of another type reads as the empty value (or the fallback).
namespace graydebug::jsonr {

// The object member `key` of `j`, else an empty object (also when `j` is not an object).
const nlohmann::json& Obj(const nlohmann::json& j, std::string_view key);
// The array member `key` of `j`, else an empty array.
const nlohmann::json& Arr(const nlohmann::json& j, std::string_view key);
// The string member `key` of `j`, else "".
std::string Str(const nlohmann::json& j, std::string_view key);
// The integer member `key` of `j`, else `fallback`.
int64_t Int(const nlohmann::json& j, std::string_view key, int64_t fallback = 0);
// The finite number member `key` of `j`, else nullopt.
std::optional<double> Number(const nlohmann::json& j, std::string_view key);
// The boolean member `key` of `j`, else `fallback`.
bool Bool(const nlohmann::json& j, std::string_view key, bool fallback = false);

}  // namespace graydebug::jsonr
