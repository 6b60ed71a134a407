// Groups of replicas (`crashkit run --replicas N`, docs/replicas.md): each replica's own dirs,
// ports and peer lists; which replicas each "@..." hits; a store replicated to every member
// survives the loss of one and is caught losing all, from the command line and a matrix spec;
// and a real 3-node etcd cluster keeps every acknowledged put when a minority (mid-workload), the
// leader, or all three are killed. Scenarios, power loss and crash plans: replica_faults_test.cpp.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "../support/cli_runner.hpp"
#include "../support/process_checks.hpp"

namespace crashkit {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kCli = CRASHKIT_CLI;

// A "daemon" that is ready once it has written what its placeholders said, then sleeps. A
// before_start hook removes the marker, so each start is awaited for real.
std::vector<std::string> sleeper(std::vector<std::string> flags, const std::string& record = "") {
  std::vector<std::string> argv{kCli,
                                "run",
                                "--ready-when",
                                "cmd:test -e {run_dir}/up",
                                "--before-start",
                                "rm -f {run_dir}/up"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {"--", "/bin/sh", "-c", record + "touch {run_dir}/up; exec sleep 1000"});
  return argv;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// "replica 1 killed by SIGKILL" lines of one run, as a set of indices.
std::set<int> hit(const std::string& output) {
  std::set<int> out;
  std::regex re("replica ([0-9]+) killed by SIGKILL");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), re);
       it != std::sregex_iterator(); ++it)
    out.insert(std::stoi((*it)[1]));
  return out;
}

TEST(Replicas, EachHasItsOwnDirsPortsAndPeers) {
  const fs::path dir = fs::temp_directory_path() / ("ck-replicas-" + std::to_string(getpid()));
  auto r = test::run_cli(
      sleeper({"--replicas", "3", "--keep", "--run-dir", dir.string(), "--peers-format",
               "n{replica}=http://{peer_addr}", "--workload",
               "echo '{members}|{addr:2}|{data_dir:1}' > {scratch}/w"},
              "echo '{replica} {port} {peer_port} {addr} {peers}' > {data_dir}/me; "));
  ASSERT_EQ(r.code(), 0) << r.output;
  std::vector<std::string> port(3), peer_port(3), peers(3);
  for (int i = 0; i < 3; ++i) {
    std::istringstream me(slurp(dir / fmt::format("replica.{}", i) / "data/me"));
    std::string index, addr;
    me >> index >> port[i] >> peer_port[i] >> addr >> peers[i];
    EXPECT_EQ(index, std::to_string(i));
    EXPECT_EQ(addr, "127.0.0.1:" + port[i]);
  }
  std::set<std::string> distinct{port.begin(), port.end()};
  distinct.insert(peer_port.begin(), peer_port.end());
  EXPECT_EQ(distinct.size(), 6u) << "every port is its own";
  auto entry = [&](int i) { return fmt::format("n{}=http://127.0.0.1:{}", i, peer_port[i]); };
  EXPECT_EQ(peers[0], entry(1) + "," + entry(2));  // {peers}: the others
  EXPECT_EQ(peers[1], entry(0) + "," + entry(2));
  EXPECT_EQ(slurp(dir / "scratch/w"), entry(0) + "," + entry(1) + "," + entry(2) + "|127.0.0.1:" +
                                          port[2] + "|" + (dir / "replica.1/data").string() + "\n");
  fs::remove_all(dir);
  EXPECT_TRUE(test::no_children_left());
}

TEST(Replicas, EachPickHitsTheReplicasItNames) {
  struct Case {
    const char* fault;
    int replicas;
    std::size_t hits;
  } cases[] = {{"sigkill@1", 3, 1},
               {"sigkill@all", 3, 3},
               {"sigkill", 3, 3},
               {"sigkill@minority", 5, 2},
               {"sigkill@majority", 5, 3}};
  for (const auto& c : cases) {
    auto r = test::run_cli(sleeper({"--replicas", std::to_string(c.replicas), "--fault", c.fault}));
    EXPECT_EQ(r.code(), 0) << c.fault << "\n" << r.output;
    EXPECT_EQ(hit(r.output).size(), c.hits) << c.fault << "\n" << r.output;
  }
  EXPECT_EQ(hit(test::run_cli(sleeper({"--replicas", "3", "--fault", "sigkill@1"})).output),
            std::set<int>{1});
  // The choice is seeded: the same seed picks the same replicas, and some seed picks others.
  auto pick = [&](const char* seed) {
    return hit(
        test::run_cli(sleeper({"--replicas", "5", "--fault", "sigkill@minority", "--seed", seed}))
            .output);
  };
  EXPECT_EQ(pick("7"), pick("7"));
  std::set<std::set<int>> seen;
  for (const char* seed : {"1", "2", "3", "4", "5", "6"}) seen.insert(pick(seed));
  EXPECT_GT(seen.size(), 1u);
  // @leader asks the leader command; a leader command that prints nonsense cannot judge.
  auto led = test::run_cli(
      sleeper({"--replicas", "3", "--fault", "sigkill@leader", "--leader", "echo 2"}));
  EXPECT_EQ(led.code(), 0) << led.output;
  EXPECT_EQ(hit(led.output), std::set<int>{2}) << led.output;
  auto bad = test::run_cli(
      sleeper({"--replicas", "3", "--fault", "sigkill@leader", "--leader", "echo seven"}));
  EXPECT_EQ(bad.code(), 3) << bad.output;
  EXPECT_NE(bad.output.find("must print the leader's index, 0 to 2"), std::string::npos)
      << bad.output;
  EXPECT_TRUE(test::no_children_left());
}

// Every put goes to all three data dirs; a start wipes the starting replica's own (a member that
// loses its disk), and a read takes any replica's copy. One replica lost: the others still hold
// every write. All lost: caught.
TEST(Replicas, AStoreOnEveryReplicaSurvivesOneLossAndIsCaughtLosingAll) {
  auto cell = [](const char* fault) {
    return std::vector<std::string>{
        kCli,
        "run",
        "--replicas",
        "3",
        "--fault",
        fault,
        "--ready-when",
        "cmd:true",
        "--before-start",
        "rm -f {data_dir}/c*",
        "--workload",
        kCli +
            " workload --ledger {ledger} --count 5 --put 'for d in {data_dir:0} {data_dir:1} "
            "{data_dir:2}; do printf %s {value} > $d/{key}; done'",
        "--check",
        kCli +
            " verify --ledger {ledger} --get 'for d in {data_dir:0} {data_dir:1} "
            "{data_dir:2}; do test -e $d/{key} && exec cat $d/{key}; done; :'",
        "--",
        "/bin/sh",
        "-c",
        "exec sleep 1000"};
  };
  for (const char* fault : {"sigkill@1", "sigkill@majority", "sigterm@0"}) {
    auto r = test::run_cli(cell(fault));
    EXPECT_EQ(r.code(), 0) << fault << "\n" << r.output;
  }
  auto all = test::run_cli(cell("sigkill@all"));
  EXPECT_EQ(all.code(), 1) << all.output;
  EXPECT_NE(all.output.find("lost 5 of 5 acked"), std::string::npos) << all.output;
  EXPECT_TRUE(test::no_children_left());
}

// The same store as a matrix spec: replicas:, picks in faults:, the cell ids, and a finding's
// repro line that reruns the group.
TEST(Replicas, MatrixSpecRunsGroupCells) {
  const fs::path dir = fs::temp_directory_path() / ("ck-replicas-m-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto spec = [&](const std::string& name, const std::string& faults) {
    std::ofstream(dir / name)
        << "target: [/bin/sh, -c, \"exec sleep 1000\"]\n"
           "replicas: 3\n"
           "ready_when: \"cmd:true\"\n"
           "before_start: \"rm -f {data_dir}/c*\"\n"
           "workload: {put: \"for d in {data_dir:0} {data_dir:1} {data_dir:2}; do printf %s "
           "{value} > $d/{key}; done\", count: 5}\n"
           "check_online: [{verify: {get: \"for d in {data_dir:0} {data_dir:1} {data_dir:2}; do "
           "test -e $d/{key} && exec cat $d/{key}; done; :\"}}]\n"
           "faults: "
        << faults << "\n";
    return (dir / name).string();
  };
  const std::string json = (dir / "r.json").string();
  auto ok = test::run_cli({kCli, "matrix", "--json", json,
                           spec("ok.yaml",
                                "[sigkill@1, sigterm@minority, {sigkill: {after: "
                                "[20ms], at: majority}}]")});
  EXPECT_EQ(ok.code(), 0) << ok.output;
  // The JSON report says which replicas each cycle hit, and each one's recovery.
  std::ifstream in(json);
  auto report = nlohmann::json::parse(in);
  ASSERT_EQ(report["cells"].size(), 3u) << report;
  for (const auto& c : report["cells"]) {
    EXPECT_EQ(c["replicas"]["count"], 3) << c;
    ASSERT_EQ(c["replicas"]["cycles"].size(), 1u) << c;
    const auto& cycle = c["replicas"]["cycles"][0];
    EXPECT_EQ(cycle["hit"].size(), cycle["recovery_ms"].size()) << c;
    if (c["id"] == "sigkill_at_1") {
      EXPECT_EQ(cycle["hit"], nlohmann::json::array({1})) << c;
    }
    if (c["id"] == "sigkill_after_20ms_at_majority") {
      EXPECT_EQ(cycle["hit"].size(), 2u) << c;
    }
  }
  for (const char* id : {"sigkill_at_1", "sigterm_at_minority", "sigkill_after_20ms_at_majority"})
    EXPECT_NE(ok.output.find(id), std::string::npos) << id << "\n" << ok.output;
  auto lost = test::run_cli({kCli, "matrix", spec("lost.yaml", "[sigkill@all]")});
  EXPECT_EQ(lost.code(), 1) << lost.output;
  EXPECT_NE(lost.output.find("lost 5 of 5 acked"), std::string::npos) << lost.output;
  EXPECT_NE(lost.output.find("repro: crashkit run --fault sigkill@all --replicas 3"),
            std::string::npos)
      << lost.output;
  for (auto [faults, message] :
       {std::pair{"[sigkill@3]", "lost.yaml:7: --fault sigkill@3: there are replicas 0 to 2"},
        std::pair{"[{crash_points: {points: [x]}}]",
                  "lost.yaml:7: with replicas: crash points are armed in one replica; name it "
                  "(replica: I)"},
        std::pair{"[{crash_points: {replica: 3}}]",
                  "lost.yaml:7: crash_points: replica: 3: there are replicas 0 to 2"}}) {
    auto bad = test::run_cli({kCli, "matrix", spec("lost.yaml", faults)});
    EXPECT_EQ(bad.code(), 2) << bad.output;
    EXPECT_NE(bad.output.find(message), std::string::npos) << bad.output;
  }
  fs::remove_all(dir);
  EXPECT_TRUE(test::no_children_left());
}

TEST(Replicas, BadGroupsAreUsageErrors) {
  struct Case {
    std::vector<std::string> flags;
    const char* message;
  } cases[] = {
      {{"--replicas", "2", "--fault", "sigkill@minority"}, "a minority of 2 replica(s) is none"},
      {{"--replicas", "3", "--fault", "sigkill@3"}, "there are replicas 0 to 2"},
      {{"--replicas", "3", "--fault", "sigkill@leader"}, "@leader needs --leader CMD"},
      {{"--replicas", "3", "--fault", "sigkill@most"}, "unknown replicas '@most'"},
      {{"--replicas", "3", "--plan", "x@1=kill"}, "--plan-replica I"},
      {{"--replicas", "0"}, "--replicas"},
      {{"--replicas", "65"}, "--replicas"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv{kCli, "run"};
    argv.insert(argv.end(), c.flags.begin(), c.flags.end());
    argv.insert(argv.end(), {"--", "/bin/true"});
    auto r = test::run_cli(argv);
    EXPECT_EQ(r.code(), 2) << c.message << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << r.output;
  }
}

// Debian's etcd 3.4 as a 3-node cluster on loopback ports: every acknowledged put is readable
// after a minority is SIGKILLed mid-workload, after the leader is (twice), after all three are,
// and after all three stop cleanly.
TEST(Replicas, EtcdClusterKeepsEveryAcknowledgedPut) {
  if (access("/usr/bin/etcd", X_OK) != 0 || access("/usr/bin/etcdctl", X_OK) != 0)
    GTEST_SKIP() << "etcd-server/etcd-client not installed (scripts/setup)";
  const std::string ctl =
      "ETCDCTL_API=3 etcdctl --endpoints http://{addr:0},http://{addr:1},http://{addr:2}";
  for (const char* fault :
       {"sigkill-after=300ms@minority", "sigkill@leader", "sigkill@all", "sigterm@all"}) {
    auto r = test::run_cli(
        {kCli,
         "run",
         "--replicas",
         "3",
         "--fault",
         fault,
         "--cycles",
         "2",
         "--ready-timeout",
         "60s",
         "--peers-format",
         "n{replica}=http://{peer_addr}",
         "--leader",
         "n=0; for a in {addr:0} {addr:1} {addr:2}; do ETCDCTL_API=3 etcdctl --endpoints "
         "http://$a endpoint status | awk -F', ' -v n=$n '$5 == \"true\" {print n}'; "
         "n=$((n+1)); done",
         "--workload",
         kCli + " workload --ledger {ledger} --count 40 --concurrency 2 --put '" + ctl +
             " put {key} {value}'",
         "--check",
         kCli + " verify --ledger {ledger} --get '" + ctl + " get --print-value-only {key}'",
         "--",
         "etcd",
         "--name",
         "n{replica}",
         "--data-dir",
         "{data_dir}",
         "--listen-client-urls",
         "http://{addr}",
         "--advertise-client-urls",
         "http://{addr}",
         "--listen-peer-urls",
         "http://{peer_addr}",
         "--initial-advertise-peer-urls",
         "http://{peer_addr}",
         "--initial-cluster",
         "{members}",
         "--initial-cluster-state",
         "new",
         "--initial-cluster-token",
         "crashkit"},
        5min);
    EXPECT_EQ(r.code(), 0) << fault << "\n" << r.output;
    EXPECT_NE(r.output.find("pass: 2 cycle(s) of"), std::string::npos) << fault << r.output;
  }
  EXPECT_TRUE(test::no_children_left());
}

}  // namespace
}  // namespace crashkit
