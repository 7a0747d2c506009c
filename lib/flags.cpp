#include "graydebug/flags.h"

#include <algorithm>
#include <charconv>
#include <sstream>

#include "graydebug/duration.h"
#include "graydebug/net/address.h"

namespace graydebug {

FlagSet::FlagSet(std::string program, std::string usage, std::string description)
    : program_(std::move(program)), usage_(std::move(usage)), description_(std::move(description)) {}

void FlagSet::Add(Flag flag) {
  flags_.push_back(std::move(flag));
}

FlagSet::Flag* FlagSet::Find(const std::string& name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool FlagSet::WasSet(const std::string& name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return f.set;
  }
  return false;
}

void FlagSet::String(const std::string& name, std::string* target, const std::string& help) {
  Add({name, help, *target, "string", false, false, [target](const std::string& v) {
         *target = v;
         return std::string();
       }});
}

void FlagSet::Bool(const std::string& name, bool* target, const std::string& help) {
  Add({name, help, *target ? "true" : "false", "", true, false, [target](const std::string& v) {
         if (v == "true" || v == "1") {
           *target = true;
         } else if (v == "false" || v == "0") {
           *target = false;
         } else {
           return std::string("must be true or false");
         }
         return std::string();
       }});
}

void FlagSet::Int(const std::string& name, int64_t* target, int64_t min, int64_t max, const std::string& help) {
  Add({name, help, std::to_string(*target), "int", false, false, [target, min, max](const std::string& v) {
         int64_t parsed = 0;
         auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
         if (ec != std::errc() || end != v.data() + v.size() || parsed < min || parsed > max) {
           return "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
         }
         *target = parsed;
         return std::string();
       }});
}

void FlagSet::Duration(const std::string& name, std::chrono::milliseconds* target, std::chrono::milliseconds min,
                       std::chrono::milliseconds max, const std::string& help) {
  Add({name, help, FormatDuration(*target), "duration", false, false, [target, min, max](const std::string& v) {
         auto d = ParseDuration(v);
         if (!d || *d < min || *d > max) {
           return "must be a duration from " + FormatDuration(min) + " to " + FormatDuration(max) +
                  " (like 30s, 15m, 1h30m)";
         }
         *target = *d;
         return std::string();
       }});
}

void FlagSet::Address(const std::string& name, std::string* target, const std::string& help) {
  Add({name, help, *target, "host:port", false, false, [target](const std::string& v) {
         std::string why = ValidateListenAddress(v);
         if (!why.empty()) return why;
         *target = v;
         return std::string();
       }});
}

void FlagSet::Enum(const std::string& name, std::string* target, std::vector<std::string> allowed,
                   const std::string& help) {
  std::string joined;
  for (const auto& a : allowed) joined += (joined.empty() ? "" : "|") + a;
  Add({name, help, *target, joined, false, false, [target, allowed, joined](const std::string& v) {
         if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) return "must be one of " + joined;
         *target = v;
         return std::string();
       }});
}

void FlagSet::Alias(char short_name, const std::string& name) {
  aliases_.emplace_back(short_name, name);
}

FlagParseResult FlagSet::Parse(const std::vector<std::string>& args) {
  FlagParseResult result;
  auto fail = [&](std::string message) {
    result.kind = FlagParseResult::Kind::kError;
    result.error = std::move(message);
    return result;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      result.positionals.insert(result.positionals.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                args.end());
      break;
    }
    if (arg == "-h" || arg == "--help") {
      result.kind = FlagParseResult::Kind::kHelp;
      return result;
    }
    if (arg == "--version") {
      result.kind = FlagParseResult::Kind::kVersion;
      return result;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      result.positionals.push_back(arg);
      continue;
    }
    std::string name, value;
    bool has_value = false;
    if (arg[1] == '-') {
      std::string body = arg.substr(2);
      auto eq = body.find('=');
      name = body.substr(0, eq);
      if (eq != std::string::npos) {
        value = body.substr(eq + 1);
        has_value = true;
      }
    } else {
      // -n value, -n=value, -nvalue
      auto it = std::find_if(aliases_.begin(), aliases_.end(), [&](const auto& a) { return a.first == arg[1]; });
      if (it == aliases_.end()) return fail("unknown flag " + arg.substr(0, 2) + " (see --help)");
      name = it->second;
      if (arg.size() > 2) {
        value = arg.substr(arg[2] == '=' ? 3 : 2);
        has_value = true;
      }
    }
    if (name.empty()) return fail("bad flag syntax: " + arg);
    Flag* flag = Find(name);
    if (flag == nullptr) return fail("unknown flag --" + name + " (see --help)");
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return fail("flag --" + name + " needs a value");
      }
    }
    std::string why = flag->apply(value);
    if (!why.empty()) return fail("invalid value \"" + value + "\" for --" + name + ": " + why);
    flag->set = true;
  }
  return result;
}

std::string FlagSet::Help() const {
  std::ostringstream out;
  out << "Usage: " << usage_ << "\n\n" << description_ << "\n\nFlags:\n";
  std::vector<std::pair<std::string, std::string>> rows;
  for (const Flag& f : flags_) {
    std::string left = "      ";
    for (const auto& [c, n] : aliases_) {
      if (n == f.name) left = std::string("  -") + c + ", ";
    }
    left += "--" + f.name;
    if (!f.is_bool) left += " " + f.value_name;
    std::string help = f.help;
    if (!f.default_text.empty() && f.default_text != "false") help += " (default " + f.default_text + ")";
    rows.emplace_back(std::move(left), std::move(help));
  }
  rows.emplace_back("  -h, --help", "show this help and exit");
  rows.emplace_back("      --version", "print the version and exit");
  std::size_t width = 0;
  for (const auto& [left, help] : rows) width = std::max(width, left.size());
  for (const auto& [left, help] : rows) out << left << std::string(width + 2 - left.size(), ' ') << help << "\n";
  return out.str();
}

std::string ValidateListenAddress(const std::string& address) {
  std::string error;
  return net::ParseHostPort(address, &error) ? "" : error;
}

}  // namespace graydebug
