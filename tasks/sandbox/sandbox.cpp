// Sandboxed Python execution: bubblewrap + rlimits + wall-clock kill. See sandbox.hpp.
#include "tasks/sandbox/sandbox.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ftw.h>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "harness/core/error.hpp"

namespace bm {
namespace {

constexpr int64_t kMaxProcesses = 64;            // RLIMIT_NPROC inside the sandbox
constexpr int64_t kMaxOpenFiles = 256;           // RLIMIT_NOFILE
constexpr int64_t kMaxFileBytes = 64ll << 20;    // RLIMIT_FSIZE
constexpr int64_t kTmpfsBytes = 256ll << 20;     // size of the private /tmp
constexpr int64_t kShmBytes = 64ll << 20;        // size of the private /dev/shm
constexpr double kStartupAllowance = 15.0;       // seconds for sandbox + interpreter start-up
constexpr const char* kBwrap = "/usr/bin/bwrap";
constexpr const char* kInstallHint =
    "install bubblewrap (apt-get install bubblewrap, or scripts/setup.sh) or pass "
    "--unsafe-no-sandbox to run generated code without isolation";

using Clock = std::chrono::steady_clock;

std::string find_bwrap() {
  if (access(kBwrap, X_OK) == 0) return kBwrap;
  const char* path = getenv("PATH");
  std::string p = path ? path : "";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (!dir.empty()) {
      std::string cand = dir + "/bwrap";
      if (access(cand.c_str(), X_OK) == 0) return cand;
    }
    start = end + 1;
  }
  return "";
}

// A Python string literal for `s` (paths from $TMPDIR may hold quotes).
std::string py_literal(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\\' || c == '\'') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "'";
}

// Python prelude: sets the process limit from inside the (user-namespaced)
// sandbox, then runs /tmp/main.py (or the unsafe-mode path) as __main__.
// With `site_path` (a Python list literal, probed once from a normal start),
// python runs with -S: sys.path is set to exactly what `site` would have
// produced and exit()/quit() are provided, which saves the site import
// (~10 ms, mostly .pth hooks) per program without changing what imports.
std::string prelude(const std::string& main_path, bool set_nproc, const std::string& site_path) {
  std::string s;
  if (!site_path.empty()) {
    s += "import sys as _s, builtins as _b\n";
    s += "_s.path[:] = " + site_path + "\n";
    s += "class _Quitter:\n"
         " def __init__(self, n): self.name = n\n"
         " def __repr__(self): return 'Use %s() or Ctrl-D (i.e. EOF) to exit' % self.name\n"
         " def __call__(self, code=None):\n"
         "  try: _s.stdin.close()\n"
         "  except Exception: pass\n"
         "  raise SystemExit(code)\n";
    s += "_b.exit = _Quitter('exit'); _b.quit = _Quitter('quit')\n";
    s += "del _s, _b, _Quitter\n";
  }
  if (set_nproc) {
    s += "import resource as _r\n";
    s += "_r.setrlimit(_r.RLIMIT_NPROC,(" + std::to_string(kMaxProcesses) + "," +
         std::to_string(kMaxProcesses) + "))\n";
    s += "del _r\n";
  }
  s += "__file__=" + py_literal(main_path) + "\n";
  s += "__import__('sys').argv=[__file__]\n";
  // Tell the parent that the program itself starts now (fd 4): the timeout
  // counts from here, not from the sandbox's and interpreter's start-up.
  s += "import posix as _p\n_p.write(4, b'S')\n_p.close(4)\n";
  s += "try:\n _p.close(3)\nexcept OSError:\n pass\n";  // the program's memfd / placeholder
  s += "del _p\n";
  s += "exec(compile(open(__file__,'rb').read(),__file__,'exec'))\n";
  return s;
}

struct Argv {
  std::vector<std::string> storage;
  std::vector<char*> ptrs;
  void finish() {
    ptrs.clear();
    for (auto& s : storage) ptrs.push_back(const_cast<char*>(s.c_str()));
    ptrs.push_back(nullptr);
  }
};

// Binds for the read-only system: /usr plus the merged-usr symlinks (or the
// real directories on systems without merged /usr), and the python config in /etc.
void add_system_binds(std::vector<std::string>& a) {
  a.insert(a.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* d : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    struct stat st;
    if (lstat(d, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n = readlink(d, buf, sizeof(buf) - 1);
      if (n <= 0) continue;
      buf[n] = 0;
      a.insert(a.end(), {"--symlink", buf, d});
    } else if (S_ISDIR(st.st_mode)) {
      a.insert(a.end(), {"--ro-bind", d, d});
    }
  }
  // Minimal /etc: only python's own configuration and the time zone.
  if (DIR* dir = opendir("/etc")) {
    while (dirent* e = readdir(dir)) {
      std::string name = e->d_name;
      if (name.rfind("python", 0) == 0) a.insert(a.end(), {"--ro-bind-try", "/etc/" + name, "/etc/" + name});
    }
    closedir(dir);
  }
  a.insert(a.end(), {"--ro-bind-try", "/etc/localtime", "/etc/localtime"});
}

struct Plan {
  Argv argv;
  Argv envp;
  bool sandbox = true;
  bool switch_uid = false;  // running as root: drop to a fresh unprivileged uid
};

Plan make_plan(const SandboxOptions& opts, const std::string& bwrap, const std::string& main_path,
               const std::string& home, const std::string& site_path) {
  Plan plan;
  plan.sandbox = !opts.unsafe_no_sandbox;
  plan.switch_uid = geteuid() == 0;
  auto& a = plan.argv.storage;
  bool set_nproc = plan.sandbox || plan.switch_uid;
  if (plan.sandbox) {
    a = {bwrap, "--unshare-all", "--die-with-parent", "--new-session"};
    add_system_binds(a);
    // Writable: only /tmp and /dev/shm, both size-limited tmpfs; / and /dev read-only.
    a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--size", std::to_string(kShmBytes), "--tmpfs",
                       "/dev/shm", "--size", std::to_string(kTmpfsBytes), "--tmpfs", "/tmp", "--file", "3",
                       main_path, "--chdir", "/tmp", "--hostname", "sandbox", "--remount-ro", "/dev",
                       "--remount-ro", "/", "--"});
  }
  a.insert(a.end(), {opts.python, "-I", "-B"});
  if (!site_path.empty()) a.push_back("-S");
  a.insert(a.end(), {"-c", prelude(main_path, set_nproc, site_path)});
  plan.argv.finish();
  plan.envp.storage = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8",
                       "LC_ALL=C.UTF-8", "TMPDIR=" + home, "PYTHONDONTWRITEBYTECODE=1"};
  plan.envp.finish();
  return plan;
}

// A uid in [1,000,000, 1,001,000,000): owns nothing on the machine, never 0
// or 65534/-1; distinct per program within this process (the step is prime
// to the range), random across processes.
uint32_t fresh_uid() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t start = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32 | rd()) % 1000000000u;
  }();
  return static_cast<uint32_t>(1000000u + (start + 7919u * counter.fetch_add(1)) % 1000000000u);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}


int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

struct Child {
  pid_t pid = -1;
  int out = -1;
  int exec_errno = 0;
};

// vfork + raw syscalls only: cheap even from a process with a large address
// space (libtorch), and safe with other threads running.
// Child fds: 0 /dev/null, 1+2 the output pipe, 3 the program (memfd; /dev/null
// in unsafe mode), 4 the start-signal pipe; everything else closed.
Child spawn(const Plan& plan, int program_fd, int stdin_fd, int start_w, const char* cwd,
            const SandboxOptions& opts, uint32_t uid) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) fail("sandbox", std::string("pipe: ") + strerror(errno));
  const double cpu = std::max(1.0, std::ceil(opts.timeout_s)) + 1;
  struct rlimit lim_cpu {static_cast<rlim_t>(cpu), static_cast<rlim_t>(cpu + 1)};
  rlim_t as = static_cast<rlim_t>(std::max<int64_t>(opts.memory_mb, 64)) << 20;
  struct rlimit lim_as {as, as};
  struct rlimit lim_fsize {static_cast<rlim_t>(kMaxFileBytes), static_cast<rlim_t>(kMaxFileBytes)};
  struct rlimit lim_nofile {static_cast<rlim_t>(kMaxOpenFiles), static_cast<rlim_t>(kMaxOpenFiles)};
  struct rlimit lim_core {0, 0};
  struct rlimit lim_nproc {static_cast<rlim_t>(kMaxProcesses), static_cast<rlim_t>(kMaxProcesses)};
  const bool unsafe_nproc = !plan.sandbox && plan.switch_uid;
  char* const* argv = const_cast<char* const*>(plan.argv.ptrs.data());
  char* const* envp = const_cast<char* const*>(plan.envp.ptrs.data());
  const char* path = plan.argv.ptrs[0];
  volatile int child_errno = 0;

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = vfork();
  if (pid == 0) {
    // Child: shares memory with the parent until execve; no allocation, no locks.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      sigaction(s, &dfl, nullptr);
    }
    setpgid(0, 0);
    if (dup2(fds[1], 1) < 0 || dup2(fds[1], 2) < 0 || dup2(stdin_fd, 0) < 0) {
      child_errno = errno;
      syscall(SYS_exit_group, 127);
    }
    // Move the sources out of the way first (they may be fds 3 or 4).
    int hi_prog = fcntl(program_fd >= 0 ? program_fd : 0, F_DUPFD, 10);
    int hi_start = fcntl(start_w, F_DUPFD, 10);
    if (hi_prog < 0 || hi_start < 0 || dup2(hi_prog, 3) < 0 || dup2(hi_start, 4) < 0) {
      child_errno = errno;
      syscall(SYS_exit_group, 127);
    }
    const int first_free = 5;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first_free, ~0u, 0) != 0)
#endif
    {
      for (int fd = first_free; fd < 4096; ++fd) close(fd);
    }
    syscall(SYS_prlimit64, 0, RLIMIT_CPU, &lim_cpu, nullptr);
    syscall(SYS_prlimit64, 0, RLIMIT_AS, &lim_as, nullptr);
    syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, &lim_fsize, nullptr);
    syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, &lim_nofile, nullptr);
    syscall(SYS_prlimit64, 0, RLIMIT_CORE, &lim_core, nullptr);
    if (cwd && chdir(cwd) != 0) {
      child_errno = errno;
      syscall(SYS_exit_group, 127);
    }
    if (plan.switch_uid) {
      if (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, uid, uid, uid) != 0 ||
          syscall(SYS_setresuid, uid, uid, uid) != 0) {
        child_errno = errno;
        syscall(SYS_exit_group, 127);
      }
    }
    if (unsafe_nproc) syscall(SYS_prlimit64, 0, RLIMIT_NPROC, &lim_nproc, nullptr);
    syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    sigset_t none;
    sigemptyset(&none);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, _NSIG / 8);
    syscall(SYS_execve, path, argv, envp);
    child_errno = errno;
    syscall(SYS_exit_group, 127);
  }
  int spawn_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    fail("sandbox", std::string("vfork: ") + strerror(spawn_errno));
  }
  Child c;
  c.pid = pid;
  c.out = fds[0];
  c.exec_errno = child_errno;
  return c;
}

int pidfd_open_compat(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

ProgramResult run_one(const std::string& program, const SandboxOptions& opts, const std::string& bwrap,
                      const std::string& site_path) {
  ProgramResult r;
  auto t0 = Clock::now();
  const uint32_t uid = fresh_uid();
  std::string tmpdir, main_path;
  int program_fd = -1;
  if (!opts.unsafe_no_sandbox) {
    main_path = "/tmp/main.py";
    program_fd = static_cast<int>(syscall(SYS_memfd_create, "bm-program", MFD_CLOEXEC));
    if (program_fd < 0) fail("sandbox", std::string("memfd_create: ") + strerror(errno));
    size_t off = 0;
    while (off < program.size()) {
      ssize_t n = write(program_fd, program.data() + off, program.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(program_fd);
        fail("sandbox", std::string("writing program to memfd: ") + strerror(errno));
      }
      off += static_cast<size_t>(n);
    }
    lseek(program_fd, 0, SEEK_SET);
  } else {
    const char* base = getenv("TMPDIR");
    std::string templ = std::string(base && *base ? base : "/tmp") + "/bm-sandbox-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back(0);
    if (!mkdtemp(buf.data())) fail(templ, std::string("mkdtemp: ") + strerror(errno) + "; set TMPDIR to a writable directory");
    tmpdir = buf.data();
    main_path = tmpdir + "/main.py";
    int fd = open(main_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail(main_path, std::string("open: ") + strerror(errno));
    size_t off = 0;
    while (off < program.size()) {
      ssize_t n = write(fd, program.data() + off, program.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fd);
    if (geteuid() == 0) {
      if (chown(tmpdir.c_str(), uid, uid) != 0 || chown(main_path.c_str(), uid, uid) != 0) {
        // fall through: the program then simply cannot write its cwd
      }
    }
  }
  const std::string home = opts.unsafe_no_sandbox ? tmpdir : "/tmp";
  Plan plan = make_plan(opts, bwrap, main_path, home, site_path);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int start_pipe[2] = {-1, -1};
  if (pipe2(start_pipe, O_CLOEXEC) != 0) {
    if (devnull >= 0) close(devnull);
    if (program_fd >= 0) close(program_fd);
    fail("sandbox", std::string("pipe: ") + strerror(errno));
  }
  Child c;
  try {
    c = spawn(plan, program_fd, devnull, start_pipe[1], opts.unsafe_no_sandbox ? tmpdir.c_str() : "/", opts, uid);
  } catch (...) {
    close(start_pipe[0]);
    close(start_pipe[1]);
    if (devnull >= 0) close(devnull);
    if (program_fd >= 0) close(program_fd);
    if (!tmpdir.empty()) nftw(tmpdir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    throw;
  }
  if (devnull >= 0) close(devnull);
  if (program_fd >= 0) close(program_fd);
  close(start_pipe[1]);
  int start_r = start_pipe[0];

  auto after = [](Clock::time_point t, double s) {
    return t + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  };
  // Until the prelude signals the program's start, allow for a slow start-up;
  // from then on the program has timeout_s.
  auto deadline = after(t0, opts.timeout_s + kStartupAllowance);
  int pidfd = pidfd_open_compat(c.pid);
  bool exited = false, timed_out = false, eof = false;
  int wstatus = 0;
  const size_t cap = static_cast<size_t>(std::max<int64_t>(opts.max_output_bytes, 0));
  bool truncated = false;
  char buf[65536];
  auto kill_all = [&] {
    kill(-c.pid, SIGKILL);  // process group: bwrap (its pid namespace dies with it) or python
    kill(c.pid, SIGKILL);
  };
  auto check_exit = [&]() -> bool {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    // WNOWAIT: keep the zombie so the process group id cannot be reused before we kill it.
    if (waitid(P_PID, static_cast<id_t>(c.pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == c.pid)
      return true;
    return false;
  };
  while (!eof || !exited) {
    if (!exited && check_exit()) {
      exited = true;
      kill(-c.pid, SIGKILL);  // leftover grandchildren in the group (unsafe mode)
    }
    auto now = Clock::now();
    if (!exited && now >= deadline) {
      timed_out = true;
      kill_all();
      break;
    }
    int wait_ms;
    if (exited) {
      wait_ms = 200;  // drain what is left in the pipe
    } else {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
      wait_ms = static_cast<int>(std::min<long long>(left, pidfd >= 0 ? 1000 : 5));
    }
    pollfd pf[3];
    int n = 0;
    if (!eof) pf[n++] = {c.out, POLLIN, 0};
    if (!exited && pidfd >= 0) pf[n++] = {pidfd, POLLIN, 0};
    const int start_slot = n;
    if (start_r >= 0) pf[n++] = {start_r, POLLIN, 0};
    if (n == 0) {
      if (!exited) usleep(2000);
      continue;
    }
    int pr = poll(pf, static_cast<nfds_t>(n), wait_ms);
    if (pr < 0 && errno != EINTR) break;
    if (start_r >= 0 && pr > 0 && (pf[start_slot].revents & (POLLIN | POLLHUP | POLLERR))) {
      char b;
      ssize_t got = read(start_r, &b, 1);
      if (got > 0) deadline = after(Clock::now(), opts.timeout_s);
      if (got >= 0 || errno != EINTR) {
        close(start_r);  // started, or never will (exec failed): the exit follows
        start_r = -1;
      }
      continue;
    }
    if (!eof && pr > 0 && (pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t got = read(c.out, buf, sizeof buf);
      if (got > 0) {
        size_t take = std::min(static_cast<size_t>(got), cap > r.output.size() ? cap - r.output.size() : 0);
        r.output.append(buf, take);
        if (take < static_cast<size_t>(got)) truncated = true;
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        eof = true;
      }
    } else if (exited && pr == 0) {
      break;  // exited and nothing more arrives (a descendant keeps the pipe open)
    }
  }
  kill(-c.pid, SIGKILL);
  while (waitpid(c.pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (pidfd >= 0) close(pidfd);
  if (start_r >= 0) close(start_r);
  close(c.out);
  if (!tmpdir.empty()) nftw(tmpdir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  (void)truncated;

  r.seconds = seconds_since(t0);
  if (WIFEXITED(wstatus)) r.exit_code = WEXITSTATUS(wstatus);
  else if (WIFSIGNALED(wstatus)) r.exit_code = 128 + WTERMSIG(wstatus);
  if (timed_out) {
    r.status = "timeout";
  } else if (c.exec_errno != 0) {
    r.status = "error";
    r.output = std::string("sandbox: cannot start ") + plan.argv.storage[0] + ": " + strerror(c.exec_errno);
  } else if (plan.sandbox && r.exit_code == 1 && r.output.rfind("bwrap: ", 0) == 0) {
    r.status = "error";  // bubblewrap itself failed to set up the sandbox
  } else {
    r.status = r.exit_code == 0 ? "passed" : "failed";
  }
  return r;
}

std::mutex g_probe_mu;
struct Probe {
  std::string error;      // "" when the sandbox works
  std::string site_path;  // sys.path of a normal start, as a Python list literal
};
std::map<std::pair<std::string, bool>, Probe> g_probe_cache;  // (python, unsafe) -> probe

// Probes the sandbox once per (python, mode); throws the cached error.
const Probe& probe_sandbox(const SandboxOptions& opts) {
  if (access(opts.python.c_str(), X_OK) != 0)
    fail(opts.python, "python interpreter for the code sandbox not found; install python3 or set the sandbox python path");
  std::lock_guard<std::mutex> lock(g_probe_mu);
  auto key = std::make_pair(opts.python, opts.unsafe_no_sandbox);
  auto it = g_probe_cache.find(key);
  if (it == g_probe_cache.end()) {
    Probe probe_result;
    std::string& err = probe_result.error;
    std::string bwrap = opts.unsafe_no_sandbox ? "" : find_bwrap();
    if (!opts.unsafe_no_sandbox && bwrap.empty()) {
      err = "bwrap: bubblewrap not found; " + std::string(kInstallHint);
    } else {
      SandboxOptions probe = opts;
      probe.timeout_s = std::max(10.0, opts.timeout_s);
      probe.memory_mb = std::max<int64_t>(opts.memory_mb, 512);
      probe.max_output_bytes = 1 << 20;
      ProgramResult pr;
      try {
        pr = run_one("import sys\nsys.stdout.write('bm-sandbox-ok ' + repr([p for p in sys.path if p]))\n", probe,
                     bwrap, "");
      } catch (const Error& e) {
        pr.status = "error";
        pr.output = e.what();
      }
      if (!pr.passed() || pr.output.rfind("bm-sandbox-ok [", 0) != 0) {
        std::string out = pr.output.substr(0, 300);
        std::replace(out.begin(), out.end(), '\n', ' ');
        if (opts.unsafe_no_sandbox)
          err = opts.python + ": cannot run python even without the sandbox (" + pr.status + ", exit " +
                std::to_string(pr.exit_code) + ": " + out + "); check the interpreter";
        else
          err = bwrap + ": cannot start a sandbox (" + pr.status + ", exit " + std::to_string(pr.exit_code) +
                ": " + out + "); " + kInstallHint +
                " (bubblewrap needs unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1" +
                (opts.python.rfind("/usr/", 0) == 0 ? std::string(")")
                                                    : "; and the interpreter must live under /usr, the only host "
                                                      "directory visible in the sandbox)");
      } else {
        probe_result.site_path = pr.output.substr(std::strlen("bm-sandbox-ok "));
        if (probe_result.site_path.find('\n') != std::string::npos) probe_result.site_path.clear();
      }
    }
    it = g_probe_cache.emplace(key, probe_result).first;
  }
  if (!it->second.error.empty()) throw Error(it->second.error);
  return it->second;
}

}  // namespace

void require_sandbox(const SandboxOptions& opts) { probe_sandbox(opts); }

std::vector<ProgramResult> run_python_programs(const std::vector<std::string>& programs,
                                               const SandboxOptions& opts) {
  const std::string site_path = probe_sandbox(opts).site_path;
  std::string bwrap = opts.unsafe_no_sandbox ? "" : find_bwrap();
  std::vector<ProgramResult> results(programs.size());
  if (programs.empty()) return results;
  int workers = opts.workers;
  if (workers <= 0) {
    cpu_set_t set;
    workers = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                          : static_cast<int>(std::thread::hardware_concurrency());
    workers = std::max(1, workers);
  }
  workers = std::min<int>(workers, static_cast<int>(programs.size()));
  std::atomic<size_t> next{0};
  std::mutex err_mu;
  std::string first_error;
  auto work = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= programs.size()) return;
      try {
        results[i] = run_one(programs[i], opts, bwrap, site_path);
      } catch (const std::exception& e) {
        results[i].status = "error";
        results[i].exit_code = -1;
        results[i].output = e.what();
      }
    }
  };
  if (workers == 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) threads.emplace_back(work);
    for (auto& t : threads) t.join();
  }
  return results;
}

}  // namespace bm
