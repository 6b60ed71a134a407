#include "matrix/flow_nesting.hpp"

#include <cstddef>

namespace crashkit {
namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

// Enough of YAML's lexical rules to tell a bracket that opens a flow collection from one that
// is text. Every doubt resolves towards counting: a missed bracket could let yaml-cpp spend
// gigabytes, a counted one at worst refuses a spec nested absurdly in its text.
class FlowNesting {
 public:
  FlowNesting(std::string_view text, int limit) : t_(text), limit_(limit) {}

  int first_line_too_deep() {
    while (i_ < t_.size()) {
      const char c = t_[i_];
      if (c == '\n') {
        new_line();
      } else if (is_blank(c)) {
        ++i_;
      } else if (c == '#' && (i_ == 0 || is_blank(t_[i_ - 1]) || t_[i_ - 1] == '\n')) {
        skip_to_line_end();
      } else if (depth_ > 0 ? flow_char(c) : block_char(c)) {
        return line_;
      }
    }
    return 0;
  }

 private:
  void new_line() {
    ++i_;
    ++line_;
    line_start_ = i_;
    if (depth_ == 0) node_start_ = true;
  }
  void skip_to_line_end() {
    while (i_ < t_.size() && t_[i_] != '\n') ++i_;
  }
  int column() const { return static_cast<int>(i_ - line_start_); }
  // '-', '?' or ':' is an indicator when a blank, a line end or the end follows it.
  bool indicator() const {
    return i_ + 1 >= t_.size() || is_blank(t_[i_ + 1]) || t_[i_ + 1] == '\n';
  }
  bool open_collection() {
    ++i_;
    node_start_ = true;
    return ++depth_ > limit_;
  }

  // Inside [...] or {...}: brackets are always structure (a plain scalar there cannot hold
  // them); a quote starts a quoted scalar only where a node starts.
  bool flow_char(char c) {
    if (c == '[' || c == '{') return open_collection();
    if ((c == '\'' || c == '"') && node_start_) {
      skip_quoted(c);
      node_start_ = false;
      return false;
    }
    ++i_;
    if (c == ',') {
      node_start_ = true;
    } else if (c == ':' || c == '?') {
      // "a: b" and {"a":[b]} go on to a node; "a:b" is one plain scalar.
      const char next = i_ < t_.size() ? t_[i_] : '\n';
      node_start_ = is_blank(next) || next == '\n' || next == ',' || next == '[' || next == ']' ||
                    next == '{' || next == '}';
    } else {
      if (c == ']' || c == '}') --depth_;
      node_start_ = false;
    }
    return false;
  }

  // Outside any flow collection: only a node's first character can open one; in a plain
  // scalar (test [ -f x ]) only ": " (or ':' right after a quoted key) starts the next node.
  bool block_char(char c) {
    if (!node_start_) {
      if (c == ':' && (indicator() || i_ == quote_end_)) node_start_ = true;
      ++i_;
      return false;
    }
    if (c == '[' || c == '{') return open_collection();
    if (column() == 0 &&
        (t_.substr(i_, 4) == "--- " || t_.substr(i_, 4) == "---\n" || t_.substr(i_) == "---")) {
      i_ += 3;  // a document start; its node may follow on the line
    } else if ((c == '-' || c == '?' || c == ':') && indicator()) {
      owner_column_ = column();
      ++i_;
    } else if (c == '&' || c == '!') {  // an anchor or a tag; the node follows it
      while (i_ < t_.size() && !is_blank(t_[i_]) && t_[i_] != '\n') ++i_;
    } else if ((c == '|' || c == '>') && block_header()) {
      skip_block_scalar();
    } else {
      owner_column_ = column();
      if (c == '\'' || c == '"')
        skip_quoted(c);
      else
        ++i_;
      node_start_ = false;
    }
    return false;
  }

  // A quoted scalar that closes on this line is skipped whole. One left open is counted
  // through (its opening quote is taken as text): where it really ends needs a full parser.
  void skip_quoted(char quote) {
    for (std::size_t j = i_ + 1; j < t_.size() && t_[j] != '\n'; ++j) {
      if (quote == '"' && t_[j] == '\\') {
        ++j;
      } else if (t_[j] == quote) {
        if (quote == '\'' && j + 1 < t_.size() && t_[j + 1] == '\'') {
          ++j;  // '' is an escaped quote
          continue;
        }
        i_ = quote_end_ = j + 1;
        return;
      }
    }
    ++i_;
  }

  // "|", ">", "|-", ">+2" ..., then only blanks or a comment up to the line end.
  bool block_header() const {
    std::size_t j = i_ + 1;
    while (j < t_.size() && j < i_ + 3 &&
           (t_[j] == '+' || t_[j] == '-' || (t_[j] >= '1' && t_[j] <= '9')))
      ++j;
    while (j < t_.size() && is_blank(t_[j])) ++j;
    return j >= t_.size() || t_[j] == '\n' || (t_[j] == '#' && is_blank(t_[j - 1]));
  }

  // The lines of a block scalar: blank ones, and those indented deeper than the node that owns
  // it (the key or the '-'). Stopping at the first that is not is never later than YAML stops.
  void skip_block_scalar() {
    skip_to_line_end();
    while (i_ < t_.size()) {
      std::size_t j = i_ + 1;
      while (j < t_.size() && t_[j] == ' ') ++j;
      bool blank_line = j >= t_.size() || t_[j] == '\n' || t_[j] == '\r';
      if (!blank_line && static_cast<int>(j - i_ - 1) <= owner_column_) return;
      new_line();
      skip_to_line_end();
    }
  }

  std::string_view t_;
  int limit_;
  std::size_t i_ = 0;
  std::size_t line_start_ = 0;
  int line_ = 1;
  int depth_ = 0;
  bool node_start_ = true;
  int owner_column_ = 0;  // column of the last key, quoted key or '-'/'?'/':' indicator
  std::size_t quote_end_ = std::string_view::npos;  // just past the last quoted scalar
};

}  // namespace

int line_nested_deeper(std::string_view yaml, int limit) {
  return FlowNesting(yaml, limit).first_line_too_deep();
}

}  // namespace crashkit
