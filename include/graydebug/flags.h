#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace graydebug {

// The outcome of FlagSet::Parse.
struct FlagParseResult {
  enum class Kind { kOk, kHelp, kVersion, kError };
  Kind kind = Kind::kOk;
  std::string error;                     // one line, set when kind == kError
  std::vector<std::string> positionals;  // arguments that are not flags, in order
};

// A kubectl/Go-style command-line flag set: `--name=value`, `--name value`, boolean `--name`
// and `--name=false`, `--` ends the flags, flags and positionals may be interleaved.
// `-h`/`--help` and `--version` are built in. Each flag binds to a variable that holds its
// default value; Parse writes the parsed value there only when the whole flag is valid.
class FlagSet {
 public:
  FlagSet(std::string program, std::string usage, std::string description);

  void String(const std::string& name, std::string* target, const std::string& help);
  void Bool(const std::string& name, bool* target, const std::string& help);
  // An integer in [min, max]; anything else is an error naming the range.
  void Int(const std::string& name, int64_t* target, int64_t min, int64_t max, const std::string& help);
  // A duration as ParseDuration reads it, in [min, max].
  void Duration(const std::string& name, std::chrono::milliseconds* target, std::chrono::milliseconds min,
                std::chrono::milliseconds max, const std::string& help);
  // A listen address "host:port", ":port" or "[v6]:port"; port 0 means "pick a free port".
  void Address(const std::string& name, std::string* target, const std::string& help);
  // A value from a fixed set, e.g. log levels.
  void Enum(const std::string& name, std::string* target, std::vector<std::string> allowed, const std::string& help);
  // A one-letter alias, e.g. Alias('n', "namespace") makes `-n shop` mean `--namespace shop`.
  void Alias(char short_name, const std::string& name);

  // Parses argv-style arguments (without the program name). Never throws; a bad flag gives
  // kind == kError and a one-line message that names the flag.
  FlagParseResult Parse(const std::vector<std::string>& args);

  // The --help text: usage, description, then every flag with its default and help.
  std::string Help() const;
  const std::string& program() const { return program_; }

  // True when the user gave the flag on the command line (not just its default).
  bool WasSet(const std::string& name) const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    std::string value_name;
    bool is_bool = false;
    bool set = false;
    std::function<std::string(const std::string&)> apply;  // returns an error, "" when ok
  };
  Flag* Find(const std::string& name);
  void Add(Flag flag);

  std::string program_;
  std::string usage_;
  std::string description_;
  std::vector<Flag> flags_;
  std::vector<std::pair<char, std::string>> aliases_;
};

// Validates a listen address ("host:port", ":port", "[v6]:port"). Returns "" when valid,
// else a reason.
std::string ValidateListenAddress(const std::string& address);

}  // namespace graydebug
