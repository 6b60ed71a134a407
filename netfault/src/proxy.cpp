// The Proxy's public side: the I/O thread, links and their listeners, and the calls that
// change toxics and partitions (posted to the I/O thread and awaited, so they are thread-safe
// and have taken effect on return).
#include "crashkit/netfault/proxy.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <stdexcept>
#include <thread>

#include "link.hpp"

namespace crashkit::net {
namespace detail {

Endpoint parse_endpoint(const std::string& text) {
  if (text.starts_with("unix:")) {
    const std::string path = text.substr(5);
    if (path.empty() || path.size() >= 108)
      throw std::invalid_argument("address '" + text + "': a unix path of 1 to 107 bytes");
    return Endpoint(asio::local::stream_protocol::endpoint(path));
  }
  const auto colon = text.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    auto [end, ec] = std::from_chars(text.data() + colon + 1, text.data() + text.size(), port);
    if (ec != std::errc{} || end != text.data() + text.size()) port = -1;
  }
  boost::system::error_code ec;
  std::string host = colon == std::string::npos ? "" : text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const auto ip = asio::ip::make_address(host, ec);
  if (ec || port < 0 || port > 65535)
    throw std::invalid_argument("address '" + text +
                                "': give HOST:PORT with a numeric host (127.0.0.1:6379) or "
                                "unix:PATH");
  return Endpoint(asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(port)));
}

std::string endpoint_text(const Endpoint& e) {
  if (e.protocol().family() == AF_UNIX) {
    asio::local::stream_protocol::endpoint l;
    l.resize(e.size());
    std::memcpy(l.data(), e.data(), e.size());
    return "unix:" + l.path();
  }
  asio::ip::tcp::endpoint t;
  t.resize(e.size());
  std::memcpy(t.data(), e.data(), e.size());
  const auto a = t.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(t.port());
}

// A connection no replica could be tied to (a client's, or one whose process was gone before
// the proxy accepted it: the old primary's last connection, opened as it was killed) counts as
// from outside every group, so a partition cuts it too; letting it through would carry a cut-off
// replica's writes across the partition.
bool Network::reachable(int from, int to) const {
  if (to < 0 || from == to || groups.empty()) return true;
  auto group_of = [&](int r) {
    for (std::size_t g = 0; g < groups.size(); ++g)
      if (std::find(groups[g].begin(), groups[g].end(), r) != groups[g].end())
        return static_cast<int>(g);
    return -1;  // unlisted replicas are together, apart from every listed group
  };
  return group_of(from) == group_of(to);
}

const Toxic* Link::find(Toxic::Kind k) const {
  for (const Toxic& t : toxics)
    if (t.kind == k) return &t;
  return nullptr;
}

void Link::accept() {
  acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec, Socket s) {
    if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
    if (!ec) {
      int source = -1;
      if (self->net->classify) {
        boost::system::error_code e2;
        const Endpoint peer = s.remote_endpoint(e2);
        if (!e2) source = self->net->classify(peer.data(), static_cast<unsigned>(peer.size()));
      }
      no_delay(s);
      ++self->connections;
      if (source < 0 && self->dest >= 0) ++self->unattributed;
      auto c = std::make_shared<Conn>(self, std::move(s), source);
      std::erase_if(self->conns, [](const auto& p) { return p->closed(); });
      self->conns.push_back(c);
      c->begin();
    }
    if (!ec) return self->accept();
    // EMFILE and the like: keep listening, but not in a tight loop over the same error.
    self->retry.expires_after(std::chrono::milliseconds(100));
    self->retry.async_wait([self](boost::system::error_code e) {
      if (!e) self->accept();
    });
  });
}

void Link::refresh() {
  std::erase_if(conns, [](const auto& p) { return p->closed(); });
  for (auto& c : conns) c->refresh();
}

void Link::close() {
  boost::system::error_code ignored;
  acceptor.close(ignored);
  retry.cancel();
  for (auto& c : conns) c->close(false);
  conns.clear();
  if (!unix_path.empty()) std::filesystem::remove(unix_path, ignored);
}

}  // namespace detail

struct Proxy::State {
  detail::asio::io_context io;
  detail::asio::executor_work_guard<detail::asio::io_context::executor_type> work{
      io.get_executor()};
  std::shared_ptr<detail::Network> net = std::make_shared<detail::Network>();
  std::map<std::string, std::shared_ptr<detail::Link>> links;  // I/O thread only
  std::thread thread;

  // Runs fn on the I/O thread and waits for it (exceptions come back to the caller).
  template <typename F>
  auto on_io(F fn) -> decltype(fn()) {
    auto task = std::make_shared<std::packaged_task<decltype(fn())()>>(std::move(fn));
    auto f = task->get_future();
    detail::asio::post(io, [task] { (*task)(); });  // owned by the handler until it is done
    return f.get();
  }
};

Proxy::Proxy() : state_(std::make_shared<State>()) {
  state_->thread = std::thread([s = state_.get()] {
    for (;;) {  // a handler's exception must not end the proxy: log it and go on
      try {
        s->io.run();
        return;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "crashkit netfault: %s\n", e.what());
      }
    }
  });
}

Proxy::~Proxy() {
  state_->on_io([s = state_.get()] {
    for (auto& [name, link] : s->links) link->close();
    s->links.clear();
  });
  state_->work.reset();
  state_->io.stop();
  state_->thread.join();
}

std::string Proxy::add_link(const std::string& name, const std::string& listen,
                            const std::string& to, int dest) {
  const detail::Endpoint at = detail::parse_endpoint(listen);
  const detail::Endpoint target = detail::parse_endpoint(to);
  return state_->on_io([&]() -> std::string {
    if (state_->links.count(name)) throw std::invalid_argument("link '" + name + "' exists");
    auto link = std::make_shared<detail::Link>(state_->io, state_->net, name, target, dest);
    if (listen.starts_with("unix:")) {
      link->unix_path = listen.substr(5);
      std::filesystem::remove(link->unix_path);
    }
    try {
      link->acceptor.open(at.protocol());
      if (!listen.starts_with("unix:"))
        link->acceptor.set_option(detail::asio::socket_base::reuse_address(true));
      link->acceptor.bind(at);
      link->acceptor.listen(detail::asio::socket_base::max_listen_connections);
    } catch (const boost::system::system_error& e) {
      throw std::system_error(e.code().value(), std::generic_category(),
                              "link '" + name + "' cannot listen on " + listen);
    }
    link->accept();
    state_->links[name] = link;
    return detail::endpoint_text(link->acceptor.local_endpoint());
  });
}

void Proxy::set_toxics(const std::string& link, std::vector<Toxic> toxics) {
  state_->on_io([&] {
    auto it = state_->links.find(link);
    if (it == state_->links.end()) throw std::invalid_argument("no link '" + link + "'");
    it->second->toxics = std::move(toxics);
    it->second->toxics_since = detail::Clock::now();
    it->second->refresh();
  });
}

void Proxy::clear_toxics() {
  state_->on_io([&] {
    for (auto& [name, l] : state_->links) {
      l->toxics.clear();
      l->refresh();
    }
  });
}

void Proxy::set_partition(std::vector<std::vector<int>> groups) {
  state_->on_io([&] {
    state_->net->groups = std::move(groups);
    for (auto& [name, l] : state_->links) l->refresh();
  });
}

void Proxy::set_classifier(Classifier classify) {
  state_->on_io([&] { state_->net->classify = std::move(classify); });
}

LinkStats Proxy::stats(const std::string& link) const {
  return state_->on_io([&] {
    LinkStats s;
    auto it = state_->links.find(link);
    if (it == state_->links.end()) return s;
    const detail::Link& l = *it->second;
    s.connections = l.connections;
    s.bytes_up = l.bytes_up;
    s.bytes_down = l.bytes_down;
    s.resets = l.resets;
    s.unattributed = l.unattributed;
    return s;
  });
}

}  // namespace crashkit::net
