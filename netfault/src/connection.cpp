// One proxied connection: two pumps, each reading from one end into a queue and writing the
// queue to the other end when the link's toxics say a chunk is due. All on the I/O thread.
#include <algorithm>

#include "link.hpp"

namespace crashkit::net::detail {

namespace {
constexpr std::size_t kQueueCap = 1 << 20;  // bytes queued per direction before reads pause
}  // namespace

// A proxy must not add Nagle's delay to the small requests it forwards.
void no_delay(Socket& s) {
  if (s.local_endpoint().protocol().family() == AF_UNIX) return;
  boost::system::error_code ignored;
  s.set_option(asio::ip::tcp::no_delay(true), ignored);
}

Conn::Conn(std::shared_ptr<Link> link, Socket client, int source)
    : link_(std::move(link)),
      client_(std::move(client)),
      server_(link_->io),
      source_(source),
      timer_(link_->io),
      up_(link_->io, client_, server_, true),
      down_(link_->io, server_, client_, false) {}

// A partition between this connection's replica and the link's, or a blackhole: new
// connections wait unconnected, live ones forward nothing (data stays queued).
bool Conn::holding() const {
  return !link_->net->reachable(source_, link_->dest) || link_->find(Toxic::Kind::blackhole);
}

bool Conn::dropping() const {
  return link_->find(Toxic::Kind::timeout) != nullptr;
}

// Connects upstream unless held. A held connection still reads its client (into the queue), so
// a client that gives up and closes is noticed and its connection dropped, as a connect that
// never completed would be.
void Conn::begin() {
  arm_timer();
  if (closed_ || connected_ || connecting_) return;
  if (holding()) return read(up_);
  connecting_ = true;
  boost::system::error_code ec;
  server_.open(link_->to.protocol(), ec);
  if (ec) return close(false);  // EMFILE and the like: the client sees a close
  server_.async_connect(link_->to, [self = shared_from_this()](boost::system::error_code ec) {
    self->connecting_ = false;
    if (self->closed_) return;
    if (ec) return self->close(false);  // the real daemon is down: the client sees a close
    self->connected_ = true;
    no_delay(self->server_);
    self->read(self->up_);
    self->read(self->down_);
    self->kick(self->up_);  // what the client sent while held
  });
}

void Conn::refresh() {
  if (closed_) return;
  if (!connected_) return begin();
  arm_timer();
  for (Pump* p : {&up_, &down_}) {
    p->timer.cancel();  // due times change with the toxics
    if (!p->queue.empty()) p->queue.front().due.reset();
    if (!p->reading && !p->eof && p->queued < kQueueCap) read(*p);
    kick(*p);
  }
}

// reset_peer(time) and timeout(time) run from when the toxic reached this connection.
void Conn::arm_timer() {
  timer_.cancel();
  const Toxic* t = link_->find(Toxic::Kind::reset_peer);
  if (t != nullptr && t->by_bytes) t = nullptr;
  const bool reset = t != nullptr;
  if (t == nullptr) t = link_->find(Toxic::Kind::timeout);
  if (t == nullptr || (!reset && t->time.count() == 0)) return;
  timer_.expires_at(std::max(opened_, link_->toxics_since) + t->time);
  timer_.async_wait([self = shared_from_this(), reset](boost::system::error_code ec) {
    if (!ec) self->close(reset);
  });
}

void Conn::close(bool reset) {
  if (closed_) return;
  closed_ = true;
  if (reset) ++link_->resets;
  boost::system::error_code ignored;
  timer_.cancel();
  for (Socket* s : {&client_, &server_}) {
    if (!s->is_open()) continue;
    if (reset) s->set_option(asio::socket_base::linger(true, 0), ignored);  // RST, not FIN
    s->close(ignored);
  }
  up_.timer.cancel();
  down_.timer.cancel();
}

void Conn::read(Pump& p) {
  if (closed_ || p.reading || p.eof || p.direct) return;
  p.reading = true;
  p.from.async_read_some(asio::buffer(p.buf), [self = shared_from_this(), &p](
                                                  boost::system::error_code ec, std::size_t n) {
    p.reading = false;
    if (self->closed_) return;
    if (!self->connected_ && (ec || n == 0)) return self->close(false);  // gave up while held
    if (ec) {
      if (ec != asio::error::eof) return self->close(ec == asio::error::connection_reset);
      p.eof = true;
      p.arrived_eof = Clock::now();
    } else if (p.queue.empty() && !p.writing && self->link_->toxics.empty() && !self->holding()) {
      return self->forward_now(p, n);  // no toxic applies: no queue, no copy
    } else {
      p.queue.push_back({std::vector<char>(p.buf.begin(), p.buf.begin() + n), 0, Clock::now()});
      p.queued += n;
      if (p.queued < kQueueCap) self->read(p);
    }
    self->kick(p);
  });
}

// Writes the n bytes just read straight from the read buffer, then reads again.
void Conn::forward_now(Pump& p, std::size_t n) {
  p.writing = true;
  p.direct = true;
  asio::async_write(p.to, asio::buffer(p.buf.data(), n),
                    [self = shared_from_this(), &p](boost::system::error_code ec, std::size_t n) {
                      p.writing = false;
                      p.direct = false;
                      if (self->closed_) return;
                      if (ec) return self->close(ec == asio::error::connection_reset);
                      self->counted(p, n);
                      self->read(p);
                      self->kick(p);
                    });
}

// The smallest byte limit on what comes back (reset_peer bytes, limit_data); `reset` says which.
std::uint64_t Conn::byte_limit(bool& reset) const {
  std::uint64_t limit = UINT64_MAX;
  for (const Toxic& t : link_->toxics)
    if ((t.kind == Toxic::Kind::reset_peer && t.by_bytes) || t.kind == Toxic::Kind::limit_data)
      if (t.amount < limit) {
        limit = t.amount;
        reset = t.kind == Toxic::Kind::reset_peer;
      }
  return limit;
}

// Forwards the front chunk when it is due; otherwise waits for its time or for a refresh.
void Conn::kick(Pump& p) {
  if (closed_ || p.writing || !connected_) return;
  if (holding()) return;  // refresh() kicks again on heal
  if (p.queue.empty()) return finish(p);
  if (dropping()) {
    p.queue.clear();
    p.queued = 0;
    return read(p);
  }
  Chunk& front = p.queue.front();
  if (!front.due) {  // latency (with its jitter drawn once) from when the chunk arrived
    front.due = front.arrived;
    if (const Toxic* l = link_->find(Toxic::Kind::latency)) {
      auto jitter = std::chrono::milliseconds(0);
      if (l->jitter.count() > 0) {
        std::uniform_int_distribution<long> d(-l->jitter.count(), l->jitter.count());
        jitter = std::chrono::milliseconds(d(link_->net->rng));
      }
      *front.due += std::max(std::chrono::milliseconds(0), l->time + jitter);
    }
  }
  Clock::time_point due = *front.due;
  if (link_->find(Toxic::Kind::bandwidth)) due = std::max(due, p.next_slot);
  if (Clock::now() < due) {
    p.timer.expires_at(due);
    p.timer.async_wait([self = shared_from_this(), &p](boost::system::error_code ec) {
      // Cancelled: by a refresh (which kicks again) or by a newer wait for the same time.
      if (ec != asio::error::operation_aborted) self->kick(p);
    });
    return;
  }
  write(p);
}

void Conn::write(Pump& p) {
  Chunk& c = p.queue.front();
  std::size_t n = c.data.size() - c.offset;
  const Toxic* bw = link_->find(Toxic::Kind::bandwidth);
  if (bw != nullptr)
    n = std::min<std::size_t>(n, std::max<std::uint64_t>(1, bw->amount * 1024 / 20));
  bool reset = false;
  if (!p.up) {
    const std::uint64_t limit = byte_limit(reset);
    if (p.forwarded >= limit) return close(reset);
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, limit - p.forwarded));
  }
  p.writing = true;
  asio::async_write(p.to, asio::buffer(c.data.data() + c.offset, n),
                    [self = shared_from_this(), &p](boost::system::error_code ec, std::size_t n) {
                      p.writing = false;
                      if (self->closed_) return;
                      if (ec) return self->close(ec == asio::error::connection_reset);
                      self->sent(p, n);
                    });
}

// n bytes went through `p`: its count and the link's stats.
void Conn::counted(Pump& p, std::size_t n) {
  p.forwarded += n;
  (p.up ? link_->bytes_up : link_->bytes_down) += n;
}

void Conn::sent(Pump& p, std::size_t n) {
  counted(p, n);
  if (const Toxic* bw = link_->find(Toxic::Kind::bandwidth))
    p.next_slot =
        std::max(Clock::now(), p.next_slot) +
        std::chrono::microseconds(n * 1000000 / std::max<std::uint64_t>(1, bw->amount * 1024));
  Chunk& c = p.queue.front();
  c.offset += n;
  if (c.offset == c.data.size()) {
    p.queued -= c.data.size();
    p.queue.pop_front();
  }
  bool reset = false;
  if (!p.up && p.forwarded >= byte_limit(reset)) return close(reset);
  if (p.queued < kQueueCap) read(p);
  kick(p);
}

// The queue is empty: pass an end's close on (slow_close: late), and close when both are done.
void Conn::finish(Pump& p) {
  if (!p.eof || p.shut) return;
  const Toxic* slow = link_->find(Toxic::Kind::slow_close);
  if (slow != nullptr && Clock::now() < p.arrived_eof + slow->time) {
    p.timer.expires_at(p.arrived_eof + slow->time);
    p.timer.async_wait([self = shared_from_this(), &p](boost::system::error_code ec) {
      if (ec != asio::error::operation_aborted) self->kick(p);
    });
    return;
  }
  p.shut = true;
  boost::system::error_code ignored;
  p.to.shutdown(asio::socket_base::shutdown_send, ignored);
  if (up_.shut && down_.shut) close(false);
}

}  // namespace crashkit::net::detail
