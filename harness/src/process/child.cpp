// Spawning and reaping of Child processes.
//
// Why vfork: a forked copy of a large, multi-threaded harness pays for copying page tables;
// vfork shares the address space until exec and was measurably cheaper per cycle
// (bench/spawn_cycle). The price is that everything between vfork and exec runs in the
// parent's memory, so that path (exec_child) must be async-signal-safe and must not allocate:
// it reports {stage, errno} through the shared frame and _exits; every fd the harness opens is
// O_CLOEXEC and close_range() drops the rest.
//
// In a cgroup containment the child is created inside the cgroup by clone3(CLONE_INTO_CGROUP)
// with the same vfork semantics (process/clone_into_cgroup.hpp), which spares it a migration;
// vfork plus a cgroup.procs write is the fallback where clone3 is refused.
//
// Why ::vfork() and not Boost.Process v2's vfork launcher (1.81), which the first version used:
// the child side was already all ours (Boost's own child path calls ::exit, not _exit, on exec
// failure, never finds an `on_exec_error` hook, and builds its fd white-list with an
// off-by-one), and the launcher's io_context added an eventfd, an epoll instance, a timerfd and a
// second pidfd to every spawn: thirteen system calls per cycle of `crashkit run --cycles`, for
// nothing we used (bench/run_cycles).
#include "crashkit/harness/child.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string_view>
#include <utility>

#include "crashkit/harness/sentinel.hpp"
#include "process/clone_into_cgroup.hpp"
#include "process/pidfd.hpp"

namespace crashkit {
namespace {

#if defined(__x86_64__)
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr std::uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#endif

// io_uring_setup -> ENOSYS, everything else allowed (another architecture: allowed too; a
// 32-bit target on x86_64 has no io_uring in glibc's fallback paths crashkit cares about).
sock_filter kDenyIoUring[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};
sock_fprog kDenyIoUringProgram = {sizeof kDenyIoUring / sizeof kDenyIoUring[0], kDenyIoUring};

// All data the child needs, prepared before vfork. Only pointers into it are touched
// between vfork and exec.
struct ChildPlan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;
  int stdio[3] = {-1, -1, -1};
  const Credentials* user = nullptr;
  const sock_fprog* seccomp = nullptr;  // installed last, just before execve
  const rlimit* limits = nullptr;       // [resources[i]] = limits[i], for i < nlimits
  const int* resources = nullptr;
  std::size_t nlimits = 0;
  int cgroup_procs = -1;  // the containment's cgroup.procs: joined first
  int memory_procs = -1;  // a v1 memory cgroup's cgroup.procs (--memory): joined next
  int cgroup_dir = -1;    // the containment's directory: the child is created in it if it can be
  pid_t parent = 0;
  // Written by the child, read by the parent after vfork returns (shared memory).
  volatile int failed_stage = 0;
  volatile int failed_errno = 0;
};

// Async-signal-safe: only syscalls, no allocation, no locks. Runs in the vfork child, or in a
// clone3 child on a stack AddressSanitizer does not know (hence CRASHKIT_CHILD_SIDE).
[[noreturn]] CRASHKIT_CHILD_SIDE void fail_child(ChildPlan& p, Child::Stage stage) {
  p.failed_errno = errno;
  p.failed_stage = static_cast<int>(stage);
  _exit(127);
}

[[noreturn]] CRASHKIT_CHILD_SIDE void exec_child(ChildPlan& p) {
  if (setpgid(0, 0) != 0) fail_child(p, Child::Stage::process_group);
  // Before anything else can fork: from here on every descendant is in the cell's cgroup.
  if (p.cgroup_procs >= 0 && write(p.cgroup_procs, "0", 1) != 1)
    fail_child(p, Child::Stage::cgroup);
  if (p.memory_procs >= 0 && write(p.memory_procs, "0", 1) != 1)
    fail_child(p, Child::Stage::cgroup);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_child(p, Child::Stage::death_signal);
  if (getppid() != p.parent) {  // the harness died before prctl took effect
    errno = ESRCH;
    fail_child(p, Child::Stage::death_signal);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);  // EINVAL: ignore
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) fail_child(p, Child::Stage::signals);
  for (int target = 0; target < 3; ++target) {
    int fd = p.stdio[target];
    if (fd == target) {
      if (fcntl(fd, F_SETFD, 0) != 0) fail_child(p, Child::Stage::dup_stdio);
    } else if (dup2(fd, target) != target) {
      fail_child(p, Child::Stage::dup_stdio);
    }
  }
  close_range(3, ~0U, 0);
  for (std::size_t i = 0; i < p.nlimits; ++i)
    if (setrlimit(static_cast<__rlimit_resource_t>(p.resources[i]), &p.limits[i]) != 0)
      fail_child(p, Child::Stage::limits);
  if (p.user != nullptr) {
    if (setgroups(p.user->groups.size(), p.user->groups.data()) != 0 || setgid(p.user->gid) != 0 ||
        setuid(p.user->uid) != 0) {
      fail_child(p, Child::Stage::credentials);
    }
  }
  if (p.cwd != nullptr && chdir(p.cwd) != 0) fail_child(p, Child::Stage::chdir);
  if (p.seccomp != nullptr && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
                               syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p.seccomp) != 0))
    fail_child(p, Child::Stage::seccomp);
  execve(p.path, p.argv, p.envp);
  fail_child(p, Child::Stage::exec);
}

std::string_view stage_name(Child::Stage s) {
  switch (s) {
    case Child::Stage::none:
      return "start";
    case Child::Stage::process_group:
      return "setpgid";
    case Child::Stage::cgroup:
      return "joining its cgroup (cgroup.procs)";
    case Child::Stage::death_signal:
      return "prctl(PR_SET_PDEATHSIG)";
    case Child::Stage::signals:
      return "signal reset";
    case Child::Stage::dup_stdio:
      return "stdio redirection";
    case Child::Stage::limits:
      return "setting resource limits (setrlimit; raising a hard limit needs root)";
    case Child::Stage::credentials:
      return "dropping privileges (setgroups/setgid/setuid)";
    case Child::Stage::seccomp:
      return "seccomp (deny io_uring)";
    case Child::Stage::chdir:
      return "chdir";
    case Child::Stage::exec:
      return "execve";
  }
  return "start";
}

// /dev/null for unset stdio slots: opened once per process (O_CLOEXEC), never closed.
int dev_null() {
  static const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  return fd;
}

// A null-terminated array of pointers into `words`, which must outlive it.
std::vector<char*> c_array(const std::vector<std::string>& words) {
  std::vector<char*> out;
  out.reserve(words.size() + 1);
  for (const auto& w : words) out.push_back(const_cast<char*>(w.c_str()));
  out.push_back(nullptr);
  return out;
}

CRASHKIT_CHILD_SIDE int exec_child_entry(void* plan) {
  exec_child(*static_cast<ChildPlan*>(plan));
}

// Whether clone3(CLONE_INTO_CGROUP) failed once for a reason that will not change.
std::atomic<bool> g_no_clone_into_cgroup{false};

// Starts exec_child: created inside the cgroup by clone3 where it can be, else vfork (and the
// child joins the cgroup itself). Every signal is blocked so no handler of ours runs in the
// child; the child resets dispositions and the mask before exec. Returns the pid, or -1 with
// errno set; *pidfd is set when clone3 made one, else left at -1.
pid_t vfork_exec(ChildPlan& plan, int* pidfd) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = -1;
  if (plan.cgroup_dir >= 0 && !g_no_clone_into_cgroup.load(std::memory_order_relaxed)) {
    const int joins = std::exchange(plan.cgroup_procs, -1);
    pid = clone_vfork_into_cgroup(plan.cgroup_dir, pidfd, exec_child_entry, &plan);
    if (pid < 0) {
      // Unsupported here: remember. Any other failure: the vfork path says it in its own terms.
      if (clone_into_cgroup_unsupported(errno))
        g_no_clone_into_cgroup.store(true, std::memory_order_relaxed);
      plan.cgroup_procs = joins;
      *pidfd = -1;
    }
  }
  if (pid < 0) {
    pid = ::vfork();
    if (pid == 0) exec_child(plan);  // never returns: execve or _exit
  }
  const int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return pid;
}

// The child reported {stage, errno} before exec: reap it and say what failed. A bad target,
// user or working directory is the user's to fix (usage); the rest is ours (harness).
Error start_failure(pid_t pid, const ChildPlan& plan, const std::string& argv0) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  auto stage = static_cast<Child::Stage>(plan.failed_stage);
  std::string what = fmt::format("cannot start '{}': {} failed: {}", argv0, stage_name(stage),
                                 std::strerror(plan.failed_errno));
  if (stage == Child::Stage::credentials) what += "; run crashkit as root to use --user";
  if (stage == Child::Stage::chdir) what += "; check the working directory";
  return stage == Child::Stage::exec || stage == Child::Stage::credentials ||
                 stage == Child::Stage::chdir || stage == Child::Stage::limits
             ? usage_error(what)
             : harness_error(what);
}

}  // namespace

namespace {

// "/a/b" with no empty, "." or ".." component and no trailing slash: what lexically_normal()
// of an absolute path would return unchanged.
bool is_absolute_and_normal(std::string_view p) {
  if (p.size() < 2 || p.front() != '/' || p.back() == '/') return false;
  for (std::size_t at = 1; at <= p.size();) {
    std::size_t end = std::min(p.find('/', at), p.size());
    std::string_view part = p.substr(at, end - at);
    if (part.empty() || part == "." || part == "..") return false;
    at = end + 1;
  }
  return true;
}

}  // namespace

void become_subreaper() {
  static std::once_flag once;
  std::call_once(once, [] { prctl(PR_SET_CHILD_SUBREAPER, 1); });
}

Result<std::string> resolve_executable(const std::string& name) {
  auto check = [](const std::string& path) -> int {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return errno;
    if (!S_ISREG(st.st_mode)) return EISDIR;
    if (access(path.c_str(), X_OK) != 0) return EACCES;
    return 0;
  };
  if (name.empty()) return usage_error("target: empty command; give the daemon to run after --");
  if (name.find('/') != std::string::npos) {
    int e = check(name);
    // Absolute, because the child may chdir (into the run dir) before it execs. A path that
    // already is (every restart of a cell's target) is returned as it is, unparsed.
    if (e == 0 && is_absolute_and_normal(name)) return name;
    if (e == 0) return std::filesystem::absolute(name).lexically_normal().string();
    if (e == EACCES)
      return usage_error(fmt::format("target '{}' is not executable; chmod +x it", name));
    return usage_error(fmt::format("target '{}' not found or not a file ({}); check the path", name,
                                   std::strerror(e)));
  }
  const char* path_env = getenv("PATH");
  std::string_view dirs = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    auto colon = dirs.find(':');
    std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (check(candidate) == 0)
      return std::filesystem::absolute(candidate).lexically_normal().string();
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return usage_error(
      fmt::format("target '{}' not found in PATH; give its full path or install it", name));
}

Result<Child> Child::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return usage_error("spawn: empty argv; give a command to run");
  auto path = resolve_executable(options.argv[0]);
  if (!path) return path.error();
  become_subreaper();

  // Everything the child touches is built here, before vfork.
  std::vector<char*> argv = c_array(options.argv);
  std::vector<char*> envp = c_array(options.env);
  if (options.containment != nullptr)  // the marker, before the terminating null
    envp.insert(envp.end() - 1, const_cast<char*>(options.containment->marker().c_str()));

  ChildPlan plan;
  plan.path = path->c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  std::string cwd = options.cwd.string();
  plan.cwd = cwd.empty() ? nullptr : cwd.c_str();
  const int given[3] = {options.stdin_fd, options.stdout_fd, options.stderr_fd};
  for (int i = 0; i < 3; ++i) plan.stdio[i] = given[i] >= 0 ? given[i] : dev_null();
  if (plan.stdio[0] < 0 || plan.stdio[1] < 0 || plan.stdio[2] < 0)
    return harness_error(fmt::format("spawn: cannot open /dev/null: {}", std::strerror(errno)));
  plan.user = options.user ? &*options.user : nullptr;
  plan.seccomp = options.deny_io_uring ? &kDenyIoUringProgram : nullptr;
  plan.parent = getpid();
  std::vector<rlimit> limits;
  std::vector<int> resources;
  for (const auto& l : options.limits) {
    limits.push_back({static_cast<rlim_t>(l.soft), static_cast<rlim_t>(l.hard)});
    resources.push_back(l.resource);
  }
  plan.memory_procs = options.memory_cgroup_procs;
  plan.limits = limits.data();
  plan.resources = resources.data();
  plan.nlimits = limits.size();
  if (options.containment != nullptr) {
    plan.cgroup_procs = options.containment->procs_fd();
    plan.cgroup_dir = options.containment->dir_fd();
  }

  int pidfd = -1;
  pid_t pid = vfork_exec(plan, &pidfd);
  if (pid < 0)
    return harness_error(
        fmt::format("spawn {}: vfork failed: {}; check the process limit "
                    "(ulimit -u) and memory",
                    options.argv[0], std::strerror(errno)));
  if (plan.failed_stage != 0) {
    if (pidfd >= 0) ::close(pidfd);
    return start_failure(pid, plan, options.argv[0]);
  }
  if (pidfd < 0) pidfd = open_pidfd(pid);
  if (pidfd < 0) {
    int e = errno;
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    return harness_error(
        fmt::format("spawn: pidfd_open failed: {} (needs Linux >= 5.3)", std::strerror(e)));
  }
  // A process in a cgroup dies with the harness's cgroup subtree (the sentinel writes
  // cgroup.kill): telling the sentinel about its group too would only wake it twice per spawn.
  const bool in_cgroup = plan.cgroup_dir >= 0;
  if (!in_cgroup) sentinel_watch(pid);
  Child c(pid, pidfd);
  c.sentinel_watched_ = !in_cgroup;
  return c;
}

}  // namespace crashkit
