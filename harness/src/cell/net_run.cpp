// A cell's network faults (net_run.hpp, docs/network.md).
#include "cell/net_run.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace crashkit::detail {
namespace {

// The inode of the connected socket whose local end is `hex` ("0100007F:9C40") in
// /proc/net/tcp{,6}. Only ESTABLISHED ones: an earlier connection from the same port may linger
// in TIME_WAIT, with no inode.
unsigned long socket_inode(const std::string& hex4, const std::string& hex6) {
  for (auto [file, want] : {std::pair{"/proc/net/tcp", hex4}, std::pair{"/proc/net/tcp6", hex6}}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
      unsigned long inode = 0;
      if (f >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >> inode &&
          local == want && st == "01" && inode != 0)
        return inode;
    }
  }
  return 0;
}

// Whether `pid` or a descendant has socket `inode` open.
bool tree_has_socket(pid_t pid, const std::string& link, int depth = 0) {
  const std::string fd_dir = fmt::format("/proc/{}/fd", pid);
  if (DIR* d = opendir(fd_dir.c_str())) {
    char target[64];
    bool found = false;
    while (dirent* e = readdir(d)) {
      const ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
      if (n > 0 && std::string_view(target, static_cast<std::size_t>(n)) == link) {
        found = true;
        break;
      }
    }
    closedir(d);
    if (found) return true;
  }
  if (depth > 8) return false;
  const std::string task_dir = fmt::format("/proc/{}/task", pid);
  DIR* t = opendir(task_dir.c_str());
  if (t == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(t)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream kids(fmt::format("{}/{}/children", task_dir, e->d_name));
    for (pid_t kid; !found && kids >> kid;) found = tree_has_socket(kid, link, depth + 1);
    if (found) break;
  }
  closedir(t);
  return found;
}

}  // namespace

int owner_of(const void* peer, unsigned len, const std::array<std::atomic<pid_t>, 64>& pids) {
  const auto* sa = static_cast<const sockaddr*>(peer);
  if (len < sizeof(sockaddr_in) || sa->sa_family != AF_INET) return -1;
  const auto* in = static_cast<const sockaddr_in*>(peer);
  // As the kernel prints it: the address's 32 bits as one host-order hex word, then the port.
  const std::string hex4 = fmt::format("{:08X}:{:04X}", in->sin_addr.s_addr, ntohs(in->sin_port));
  const std::string hex6 = fmt::format("0000000000000000FFFF0000{:08X}:{:04X}", in->sin_addr.s_addr,
                                       ntohs(in->sin_port));
  const unsigned long inode = socket_inode(hex4, hex6);
  if (inode == 0) return -1;
  const std::string link = fmt::format("socket:[{}]", inode);
  for (std::size_t i = 0; i < pids.size(); ++i)
    if (const pid_t p = pids[i].load(); p > 0 && tree_has_socket(p, link))
      return static_cast<int>(i);
  return -1;
}

void HeldPorts::release() {
  for (int fd : fds_) close(fd);
  fds_.clear();
}

bool NetRun::wanted(const CellSpec& spec) {
  for (const auto& s : spec.steps)
    if (s.kind == ScenarioStep::Kind::net) return true;
  return !spec.links.empty() || spec.peer_links || !spec.net.empty();
}

Result<std::unique_ptr<NetRun>> NetRun::create(const CellSpec& spec, const Placeholders& p,
                                               std::vector<Placeholders::Replica*> replicas,
                                               const std::string& run_dir) {
  std::unique_ptr<NetRun> n(new NetRun());
  auto pids = n->pids_;
  n->proxy_->set_classifier(
      [pids](const void* sa, unsigned len) { return owner_of(sa, len, *pids); });
  try {
    for (const auto& l : spec.links) {
      std::string to = p.apply(l.to);
      int dest = -1;
      if (const auto i = replica_index(to)) {  // net_error checked it against the group
        dest = *i;
        to = fmt::format("127.0.0.1:{}", replicas.at(static_cast<std::size_t>(dest))->port);
      }
      const bool unix_link = to.starts_with("unix:");
      const std::string listen =
          unix_link ? fmt::format("unix:{}/proxy.{}.sock", run_dir, l.name) : "127.0.0.1:0";
      std::string at = n->proxy_->add_link(l.name, listen, to, dest);
      n->shown_.emplace_back(l.name, unix_link ? at.substr(5) : at);
    }
    if (spec.peer_links)
      for (std::size_t j = 0; j < replicas.size(); ++j) {
        const std::string name = fmt::format("peer.{}", j);
        replicas[j]->peer_proxy = n->proxy_->add_link(
            name, "127.0.0.1:0", fmt::format("127.0.0.1:{}", replicas[j]->peer_port),
            static_cast<int>(j));
        n->peer_links_.push_back(name);
        n->shown_.emplace_back(name, replicas[j]->peer_proxy);
      }
  } catch (const std::exception& e) {
    return harness_error(fmt::format("network link: {}", e.what()));
  }
  return n;
}

void NetRun::set_pid(int replica, pid_t pid) {
  if (replica >= 0 && replica < static_cast<int>(pids_->size())) (*pids_)[replica] = pid;
}

Result<std::string> NetRun::add(const std::vector<NetToxic>& toxics) {
  std::string said;
  for (const auto& t : toxics) {
    std::vector<std::string> links{t.link};
    if (t.link == "peers") links = peer_links_;
    for (const auto& l : links) {
      auto& on = active_[l];
      on.push_back(t.toxic);
      try {
        proxy_->set_toxics(l, on);
      } catch (const std::exception& e) {
        return harness_error(fmt::format("--net {}: {}", t.toxic.text, e.what()));
      }
    }
    said += (said.empty() ? "" : ", ") + t.toxic.text;
  }
  return said;
}

void NetRun::partition(std::vector<std::vector<int>> groups) {
  proxy_->set_partition(std::move(groups));
}

void NetRun::heal() {
  proxy_->clear_toxics();
  proxy_->set_partition({});
  active_.clear();
}

std::optional<Error> net_error(const CellSpec& spec) {
  std::vector<std::string> names;
  for (const auto& l : spec.links) {
    if (std::find(names.begin(), names.end(), l.name) != names.end() || l.name.starts_with("peer"))
      return usage_error(fmt::format("link '{}': a link's name is unique and not peer*", l.name));
    names.push_back(l.name);
    const bool digits = !l.to.empty() && l.to.find_first_not_of("0123456789") == std::string::npos;
    if (const auto i = replica_index(l.to);
        digits && (!i || *i >= spec.replicas || spec.replicas < 2))
      return usage_error(fmt::format(
          "link '{}': to: {} names a replica; there are {} (a single daemon's link takes an "
          "address: HOST:PORT or unix:PATH)",
          l.name, l.to,
          spec.replicas < 2 ? std::string("none") : fmt::format("0 to {}", spec.replicas - 1)));
  }
  if (spec.peer_links) {
    for (int j = 0; j < spec.replicas; ++j) names.push_back(fmt::format("peer.{}", j));
    names.push_back("peers");
  }
  auto known = [&](const NetToxic& t) {
    if (std::find(names.begin(), names.end(), t.link) != names.end()) return std::optional<Error>();
    return std::optional<Error>(usage_error(
        fmt::format("--net {}: no link '{}'; the links are: {}{}", t.toxic.text, t.link,
                    names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", ")),
                    spec.peer_links ? "" : " (peer.J and peers need peer_links)")));
  };
  for (const auto& t : spec.net)
    if (auto e = known(t)) return e;
  for (const auto& s : spec.steps) {
    if (s.kind != ScenarioStep::Kind::net) continue;
    for (const auto& t : s.net.toxics)
      if (auto e = known(t)) return e;
    if ((!s.net.partition.empty() || !s.net.isolate.empty()) && !spec.peer_links)
      return usage_error(
          fmt::format("step '{}': a partition cuts peer links; set peer_links: true", s.text));
    if (s.net.isolate == "leader" && !spec.leader)
      return usage_error(fmt::format("step '{}': isolate: leader needs leader:", s.text));
  }
  return std::nullopt;
}

}  // namespace crashkit::detail
