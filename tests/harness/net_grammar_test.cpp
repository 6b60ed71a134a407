// The network-fault grammar (docs/network.md): every toxic's forms, and partitions.
#include <gtest/gtest.h>

#include "crashkit/harness/net_fault.hpp"

namespace crashkit {
namespace {

using namespace std::chrono_literals;
using Kind = net::Toxic::Kind;

net::Toxic ok(const char* text, const char* link = "c") {
  auto t = parse_net_toxic(text);
  EXPECT_TRUE(t) << text << ": " << (t ? "" : t.error().message);
  if (!t) return {};
  EXPECT_EQ(t->link, link) << text;
  EXPECT_EQ(t->toxic.text, text);
  return t->toxic;
}

TEST(NetGrammar, EveryToxic) {
  auto l = ok("c:latency(50ms)");
  EXPECT_EQ(l.kind, Kind::latency);
  EXPECT_EQ(l.time, 50ms);
  l = ok("c:latency(1s, 10ms)");
  EXPECT_EQ(l.time, 1000ms);
  EXPECT_EQ(l.jitter, 10ms);
  auto b = ok("c:bandwidth(64)");
  EXPECT_EQ(b.kind, Kind::bandwidth);
  EXPECT_EQ(b.amount, 64u);
  auto t = ok("c:timeout");
  EXPECT_EQ(t.kind, Kind::timeout);
  EXPECT_EQ(t.time, 0ms);
  EXPECT_EQ(ok("c:timeout(500ms)").time, 500ms);
  auto r = ok("peers:reset_peer(100B)", "peers");
  EXPECT_EQ(r.kind, Kind::reset_peer);
  EXPECT_TRUE(r.by_bytes);
  EXPECT_EQ(r.amount, 100u);
  r = ok("peer.2:reset_peer(200ms)", "peer.2");
  EXPECT_FALSE(r.by_bytes);
  EXPECT_EQ(r.time, 200ms);
  EXPECT_EQ(ok("c:reset_peer").time, 0ms);
  EXPECT_EQ(ok("c:blackhole").kind, Kind::blackhole);
  EXPECT_EQ(ok("c:slow_close(2s)").time, 2000ms);
  EXPECT_EQ(ok("c:limit_data(4KB)").amount, 4096u);
  EXPECT_EQ(ok("c:limit_data(1MB)").amount, 1u << 20);
}

TEST(NetGrammar, RejectionsNameTheProblem) {
  for (auto [text, why] :
       {std::pair{"latency(5ms)", "name the link"}, std::pair{":latency(5ms)", "name the link"},
        std::pair{"c:latency(5ms", "a ')' is missing"},
        std::pair{"c:latency", "latency takes (DURATION[, JITTER])"},
        std::pair{"c:latency(1ms,2ms,3ms)", "latency takes"},
        std::pair{"c:blackhole(1s)", "blackhole takes no arguments"},
        std::pair{"c:bandwidth(0)", "'0' is not a size"},
        std::pair{"c:bandwidth(2000000000)", "is not a size"},
        std::pair{"c:limit_data(-1)", "is not a size"},
        std::pair{"c:slow_close(25h)", "not a duration of 0 to 24h"},
        std::pair{"c:latency(-5ms)", "not a duration"}, std::pair{"c:nope", "unknown toxic 'nope'"},
        std::pair{"a b:latency(1ms)", "a bad link name"}}) {
    auto t = parse_net_toxic(text);
    ASSERT_FALSE(t) << text;
    EXPECT_EQ(t.error().kind, ErrorKind::usage);
    EXPECT_NE(t.error().message.find(why), std::string::npos) << t.error().message;
    EXPECT_TRUE(t.error().message.starts_with("--net '")) << t.error().message;
  }
}

TEST(NetGrammar, Partitions) {
  auto p = parse_partition("[[0], [1, 2]]", 3);
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, (std::vector<std::vector<int>>{{0}, {1, 2}}));
  p = parse_partition("[[0],[1],[2]]", 3);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->size(), 3u);
  for (auto [text, why] :
       {std::pair{"[[0, 1, 2]]", "at least two groups"}, std::pair{"[[0], [0]]", "replica 0 twice"},
        std::pair{"[[0], [3]]", "there are replicas 0 to 2"},
        std::pair{"[[0], []]", "an empty group"}, std::pair{"[0, 1]", "each group is a list"},
        std::pair{"0,1", "a list of groups"}, std::pair{"[[0], [1]", "a ']' is missing"}}) {
    auto bad = parse_partition(text, 3);
    ASSERT_FALSE(bad) << text;
    EXPECT_NE(bad.error().message.find(why), std::string::npos) << bad.error().message;
  }
}

}  // namespace
}  // namespace crashkit
