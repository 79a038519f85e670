// The code sandbox: correct / wrong / broken programs, and hostile programs
// (network, writes outside, reading $HOME, fork bomb, memory bomb, infinite
// loop with grandchildren, endless output, signalling the parent) contained.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "harness/core/error.hpp"
#include "tasks/sandbox/sandbox.hpp"

namespace {

using bm::ProgramResult;
using bm::SandboxOptions;

ProgramResult run1(const std::string& program, SandboxOptions opts = {}) {
  auto rs = bm::run_python_programs({program}, opts);
  EXPECT_EQ(rs.size(), 1u);
  return rs.at(0);
}

std::string unique_token() {
  std::random_device rd;
  std::ostringstream s;
  s << "bm" << getpid() << "x" << rd() << rd();
  return s.str();
}

std::string make_temp_dir(const std::string& base = "/tmp") {
  std::string templ = base + "/bm-sandbox-test-XXXXXX";
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  chmod(templ.c_str(), 0777);  // world-writable: only the sandbox may stop a write
  return templ;
}

bool path_exists(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0;
}

// Pids whose command line contains `needle`.
std::vector<int> pids_with_cmdline(const std::string& needle) {
  std::vector<int> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    int pid = atoi(e->d_name);
    if (pid <= 0) continue;
    // A process may exit between readdir and the read (ESRCH): it no longer counts.
    std::string s;
    try {
      std::ifstream f("/proc/" + std::string(e->d_name) + "/cmdline", std::ios::binary);
      s.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    } catch (const std::exception&) {
      continue;
    }
    if (s.find(needle) != std::string::npos) out.push_back(pid);
  }
  closedir(d);
  return out;
}

// Waits up to `seconds` for no process to carry `needle` in its command line.
bool gone_within(const std::string& needle, double seconds) {
  auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < seconds) {
    if (pids_with_cmdline(needle).empty()) return true;
    usleep(20000);
  }
  return pids_with_cmdline(needle).empty();
}

TEST(Sandbox, RequireSandboxSucceedsHere) { EXPECT_NO_THROW(bm::require_sandbox(SandboxOptions{})); }

TEST(Sandbox, CorrectWrongAndBrokenPrograms) {
  auto rs = bm::run_python_programs(
      {"def add(a, b):\n    return a + b\nassert add(2, 3) == 5\nprint('ok')\n",
       "def add(a, b):\n    return a - b\nassert add(2, 3) == 5\n",
       "def add(a, b)\n    return a + b\n",
       "import sys\nsys.exit(3)\n",
       "raise ValueError('boom')\n"},
      SandboxOptions{});
  ASSERT_EQ(rs.size(), 5u);
  EXPECT_EQ(rs[0].status, "passed") << rs[0].output;
  EXPECT_TRUE(rs[0].passed());
  EXPECT_EQ(rs[0].exit_code, 0);
  EXPECT_EQ(rs[0].output, "ok\n");
  EXPECT_EQ(rs[1].status, "failed");
  EXPECT_NE(rs[1].output.find("AssertionError"), std::string::npos) << rs[1].output;
  EXPECT_EQ(rs[2].status, "failed");
  EXPECT_NE(rs[2].output.find("SyntaxError"), std::string::npos) << rs[2].output;
  EXPECT_EQ(rs[3].status, "failed");
  EXPECT_EQ(rs[3].exit_code, 3);
  EXPECT_EQ(rs[4].status, "failed");
  EXPECT_NE(rs[4].output.find("ValueError: boom"), std::string::npos);
  for (auto& r : rs) EXPECT_LT(r.seconds, 3.0);  // well under the timeout, even on a loaded machine
}

TEST(Sandbox, RunsAsMainWithWritableTmpAndStdlib) {
  auto r = run1(
      "import os, json, math, collections, re, heapq, itertools, hashlib\n"
      "assert __name__ == '__main__'\n"
      "assert os.getcwd() == '/tmp', os.getcwd()\n"
      "open('scratch.txt', 'w').write('x' * 1000)\n"
      "assert os.path.getsize('/tmp/scratch.txt') == 1000\n"
      "if __name__ == '__main__':\n    print('main-ran')\n");
  EXPECT_EQ(r.status, "passed") << r.output;
  EXPECT_EQ(r.output, "main-ran\n");
}

TEST(Sandbox, ExitQuitAndSitePackagesPathAsInANormalStart) {
  auto rs = bm::run_python_programs({"exit()\n", "quit(4)\n", "import sys\nsys.exit(0 if 'exit' in repr(exit) else 9)\n",
                                     "import sys\nprint(sys.path)\n"},
                                    SandboxOptions{});
  EXPECT_EQ(rs[0].status, "passed") << rs[0].output;
  EXPECT_EQ(rs[1].exit_code, 4) << rs[1].output;
  EXPECT_EQ(rs[2].status, "passed") << rs[2].output;
  // sys.path equals what python's own `site` gives (dist-packages included).
  std::string py = SandboxOptions{}.python;
  FILE* p = popen((py + " -I -c \"import sys; print([x for x in sys.path if x])\"").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[8192] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  std::string expected(buf, n);
  EXPECT_EQ(rs[3].output, expected);
}

TEST(Sandbox, OnlyStdioIsOpenAndNoHostFdLeaks) {
  int leak = open("/etc/hostname", O_RDONLY);  // no O_CLOEXEC: would be inherited without the cleanup
  ASSERT_GE(leak, 0);
  for (bool unsafe : {false, true}) {
    SandboxOptions o;
    o.unsafe_no_sandbox = unsafe;
    auto r = run1(
        "import os\n"
        "open_fds = []\n"
        "for fd in range(256):\n"
        "    try:\n"
        "        os.fstat(fd)\n"
        "        open_fds.append(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('open', open_fds)\n",
        o);
    EXPECT_EQ(r.status, "passed") << r.output;
    EXPECT_NE(r.output.find("open [0, 1, 2]"), std::string::npos) << (unsafe ? "unsafe: " : "") << r.output;
  }
  close(leak);
}

TEST(Sandbox, TimeoutCountsFromTheProgramsStart) {
  SandboxOptions o;
  o.timeout_s = 1.0;
  auto rs = bm::run_python_programs({"import time\ntime.sleep(0.75)\nprint('done')\n",
                                     "import time\ntime.sleep(1.4)\nprint('done')\n"},
                                    o);
  EXPECT_EQ(rs[0].status, "passed") << rs[0].output;  // start-up time is not charged to the program
  EXPECT_EQ(rs[1].status, "timeout") << rs[1].output;
  EXPECT_EQ(rs[1].output, "");
  EXPECT_LT(rs[1].seconds, 1.0 + 1.0);
}

TEST(Sandbox, LargeProgramAndResultsInOrder) {
  std::string big = "data = [\n";
  for (int i = 0; i < 20000; ++i) big += "  " + std::to_string(i) + ",\n";
  big += "]\nassert sum(data) == " + std::to_string(20000LL * 19999 / 2) + "\nprint(len(data))\n";
  ASSERT_GT(big.size(), 150000u);  // bigger than a pipe buffer and an argv string
  std::vector<std::string> progs = {big};
  for (int i = 0; i < 9; ++i) progs.push_back("print(" + std::to_string(i * 7) + ")\n");
  SandboxOptions o;
  o.workers = 2;
  auto rs = bm::run_python_programs(progs, o);
  ASSERT_EQ(rs.size(), progs.size());
  EXPECT_EQ(rs[0].status, "passed") << rs[0].output;
  EXPECT_EQ(rs[0].output, "20000\n");
  for (int i = 0; i < 9; ++i) EXPECT_EQ(rs[i + 1].output, std::to_string(i * 7) + "\n");
}

TEST(Sandbox, ProgramsRunInParallel) {
  std::vector<std::string> progs(4, "import time\ntime.sleep(0.6)\n");
  SandboxOptions o;
  o.workers = 4;
  auto t0 = std::chrono::steady_clock::now();
  auto rs = bm::run_python_programs(progs, o);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& r : rs) EXPECT_EQ(r.status, "passed") << r.output;
  EXPECT_LT(wall, 2.3);  // sequential would be >= 2.4 s
}

TEST(Sandbox, NoNetworkLoopbackOrExternal) {
  // A listener in the test process on the host's loopback.
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(ls, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(ls, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  fcntl(ls, F_SETFL, O_NONBLOCK);

  auto r_local = run1("import socket\ns = socket.create_connection(('127.0.0.1', " + std::to_string(port) +
                      "), timeout=1)\ns.sendall(b'hello')\nprint('CONNECTED')\n");
  EXPECT_EQ(r_local.status, "failed") << r_local.output;
  EXPECT_EQ(r_local.output.find("CONNECTED"), std::string::npos);
  EXPECT_NE(r_local.output.find("Error"), std::string::npos) << r_local.output;
  int accepted = accept(ls, nullptr, nullptr);
  EXPECT_LT(accepted, 0) << "the sandbox reached the host's loopback listener";
  if (accepted >= 0) close(accepted);
  close(ls);

  auto r_ext = run1(
      "import socket\n"
      "for host in [('1.1.1.1', 80), ('8.8.8.8', 53), ('93.184.215.14', 443)]:\n"
      "    try:\n"
      "        socket.create_connection(host, timeout=1).close()\n"
      "        print('CONNECTED', host)\n"
      "    except OSError as e:\n"
      "        print('blocked', host, e.errno)\n"
      "try:\n"
      "    socket.getaddrinfo('example.com', 80)\n"
      "    print('RESOLVED')\n"
      "except OSError:\n"
      "    print('no dns')\n"
      "ifs = [n for _, n in socket.if_nameindex()]\n"
      "print('ifs', ifs)\n");
  EXPECT_EQ(r_ext.status, "passed") << r_ext.output;
  EXPECT_EQ(r_ext.output.find("CONNECTED"), std::string::npos) << r_ext.output;
  EXPECT_EQ(r_ext.output.find("RESOLVED"), std::string::npos) << r_ext.output;
  EXPECT_NE(r_ext.output.find("ifs ['lo']"), std::string::npos) << r_ext.output;
}

TEST(Sandbox, CannotWriteOutside) {
  // World-writable host directory outside /tmp (the sandbox's /tmp is private anyway).
  std::string dir = make_temp_dir(path_exists("/var/tmp") ? "/var/tmp" : ".");
  std::string tok = unique_token();
  const char* src = getenv("BITMERGE_SOURCE_DIR");
  std::string repo = src ? src : BITMERGE_SOURCE_DIR;
  std::vector<std::string> targets = {dir + "/" + tok, repo + "/" + tok, "/etc/" + tok, "/usr/" + tok,
                                      "/" + tok};
  std::string prog = "import os\nwritten = []\n";
  for (auto& t : targets) {
    prog += "try:\n    open('" + t + "', 'w').write('pwned')\n    written.append('" + t +
            "')\nexcept OSError as e:\n    print('denied', e.errno)\n";
  }
  prog += "try:\n    os.makedirs('" + dir + "', exist_ok=True)\n    open('" + dir + "/" + tok +
          "-2', 'w').write('x')\n    written.append('mk')\nexcept OSError:\n    pass\n";
  prog += "print('written', written)\nassert not written\n";
  auto r = run1(prog);
  EXPECT_EQ(r.status, "passed") << r.output;  // every write was refused
  EXPECT_NE(r.output.find("written []"), std::string::npos) << r.output;
  for (auto& t : targets) EXPECT_FALSE(path_exists(t)) << t;
  EXPECT_FALSE(path_exists(dir + "/" + tok + "-2"));
  rmdir(dir.c_str());
}

TEST(Sandbox, DiskUseLimited) {
  auto r = run1(
      "import errno\n"
      "def fill(path, total):\n"
      "    chunk = b'x' * (1 << 20)\n"
      "    try:\n"
      "        with open(path, 'wb') as f:\n"
      "            for _ in range(total):\n"
      "                f.write(chunk)\n"
      "                f.flush()\n"
      "    except OSError as e:\n"
      "        return errno.errorcode.get(e.errno, str(e.errno))\n"
      "    return 'ok'\n"
      "print('big', fill('/tmp/big', 100))\n"
      "print('many', [fill('/tmp/f%d' % i, 60) for i in range(6)])\n"
      "print('shm', fill('/dev/shm/x', 60), fill('/dev/shm/y', 60))\n"
      "print('dev', fill('/dev/newfile', 1))\n");
  EXPECT_EQ(r.status, "passed") << r.output;
  EXPECT_NE(r.output.find("big EFBIG"), std::string::npos) << r.output;     // RLIMIT_FSIZE (64 MiB)
  EXPECT_NE(r.output.find("ENOSPC"), std::string::npos) << r.output;        // /tmp is 256 MiB
  EXPECT_NE(r.output.find("shm ok ENOSPC"), std::string::npos) << r.output; // /dev/shm is 64 MiB
  EXPECT_NE(r.output.find("dev EROFS"), std::string::npos) << r.output;
}

TEST(Sandbox, CannotReadHomeRepoOrData) {
  std::string home = make_temp_dir();
  std::string secret = "s3cr3t-" + unique_token();
  {
    std::ofstream f(home + "/secret.txt");
    f << secret;
  }
  chmod((home + "/secret.txt").c_str(), 0644);
  const char* old_home = getenv("HOME");
  std::string saved = old_home ? old_home : "";
  setenv("HOME", home.c_str(), 1);
  std::string env_secret = "envsecret-" + unique_token();
  setenv("BM_SANDBOX_TEST_SECRET", env_secret.c_str(), 1);
  const char* src = getenv("BITMERGE_SOURCE_DIR");
  std::string repo = src ? src : BITMERGE_SOURCE_DIR;
  std::string prog =
      "import os\nfound = []\n"
      "print('HOME env', os.environ.get('HOME'))\n"
      "for p in ['" + home + "/secret.txt', os.path.expanduser('~') + '/secret.txt', '" + repo +
      "/CMakeLists.txt', '/root/.bashrc', '/etc/passwd', '/etc/shadow', '/proc/1/environ']:\n"
      "    try:\n"
      "        data = open(p).read()\n"
      "        found.append(p)\n"
      "        print('READ', p, data[:60])\n"
      "    except OSError as e:\n"
      "        print('denied', p, e.errno)\n"
      "print('found', found)\n"
      "print(sorted(os.environ.items()))\n";
  auto r = run1(prog);
  unsetenv("BM_SANDBOX_TEST_SECRET");
  if (old_home) setenv("HOME", saved.c_str(), 1);
  else unsetenv("HOME");
  EXPECT_EQ(r.status, "passed") << r.output;
  EXPECT_EQ(r.output.find(secret), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("READ " + home), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("READ " + repo), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("READ /etc/passwd"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("READ /root"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(env_secret), std::string::npos) << r.output;  // host environment not leaked
  EXPECT_EQ(r.output.find("HOME env " + home), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("HOME env /tmp"), std::string::npos) << r.output;
  unlink((home + "/secret.txt").c_str());
  rmdir(home.c_str());
}

TEST(Sandbox, ForkBombContainedAndMachineHealthy) {
  // The bomb re-executes itself with a marker argument, so that every one of
  // its processes carries the marker in /proc/<pid>/cmdline: counting them is
  // immune to other test programs starting and ending processes meanwhile
  // (ctest -j), and still sees any that escaped and were re-parented.
  const std::string marker = "bm-forkbomb-" + std::to_string(getpid());
  ASSERT_TRUE(pids_with_cmdline(marker).empty());
  SandboxOptions o;
  o.timeout_s = 2.0;
  auto r = run1(
      "import os, sys, time\n"
      "BOMB = '''\n"
      "import os, time\n"
      "while True:\n"
      "    try:\n"
      "        if os.fork() == 0:\n"
      "            while True:\n"
      "                try:\n"
      "                    os.fork()\n"
      "                except OSError:\n"
      "                    time.sleep(0.01)\n"
      "    except OSError:\n"
      "        time.sleep(0.01)\n"
      "'''\n"
      "os.execv(sys.executable, [sys.executable, '-c', BOMB, '" + marker + "'])\n",
      o);
  EXPECT_EQ(r.status, "timeout") << r.output;
  EXPECT_LT(r.seconds, o.timeout_s + 1.0);
  // Everything from the bomb is gone shortly after the run returns.
  EXPECT_TRUE(gone_within(marker, 1.0)) << pids_with_cmdline(marker).size() << " bomb processes left";
  // The machine still forks, and the sandbox still works.
  pid_t p = fork();
  ASSERT_GE(p, 0);
  if (p == 0) _exit(7);
  int st = 0;
  waitpid(p, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 7);
  auto ok = run1("import subprocess\nprint(subprocess.run(['/bin/echo','fine'],capture_output=True).stdout.decode())\n");
  EXPECT_EQ(ok.status, "passed") << ok.output;
  EXPECT_EQ(ok.output, "fine\n\n");
}

TEST(Sandbox, ProcessLimitEnforced) {
  auto r = run1(
      "import os, time\n"
      "kids = 0\n"
      "for i in range(500):\n"
      "    try:\n"
      "        pid = os.fork()\n"
      "    except OSError:\n"
      "        break\n"
      "    if pid == 0:\n"
      "        time.sleep(5)\n"
      "        os._exit(0)\n"
      "    kids += 1\n"
      "print('kids', kids)\n"
      "assert kids < 100\n");
  EXPECT_EQ(r.status, "passed") << r.output;
  auto at = r.output.find("kids ");
  ASSERT_NE(at, std::string::npos) << r.output;
  int kids = atoi(r.output.c_str() + at + 5);
  EXPECT_GT(kids, 10);
  EXPECT_LT(kids, 100);
  EXPECT_LT(r.seconds, 2.5);  // the sleeping children die with the sandbox
}

TEST(Sandbox, MemoryBombFails) {
  SandboxOptions o;
  o.memory_mb = 512;
  o.timeout_s = 15;  // filling 512 MiB takes a while on a loaded machine; the point is the MemoryError
  auto rs = bm::run_python_programs({"x = bytearray(4 << 30)\nprint('allocated')\n",
                                     "chunks = []\nwhile True:\n    chunks.append(bytearray(50 << 20))\n",
                                     "x = bytearray(100 << 20)\nprint(len(x))\n"},
                                    o);
  EXPECT_EQ(rs[0].status, "failed");
  EXPECT_NE(rs[0].output.find("MemoryError"), std::string::npos) << rs[0].output;
  EXPECT_EQ(rs[0].output.find("allocated"), std::string::npos);
  EXPECT_EQ(rs[1].status, "failed");
  EXPECT_NE(rs[1].output.find("MemoryError"), std::string::npos) << rs[1].output;
  EXPECT_LT(rs[1].seconds, o.timeout_s);
  EXPECT_EQ(rs[2].status, "passed") << rs[2].output;  // below the limit is fine
}

TEST(Sandbox, InfiniteLoopKilledWithGrandchildren) {
  std::string marker = "1000." + std::to_string(getpid()) + std::to_string(std::random_device{}() % 100000);
  SandboxOptions o;
  o.timeout_s = 1.5;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run1(
      "import os\n"
      "if os.fork() == 0:\n"
      "    os.setsid()\n"
      "    if os.fork() == 0:\n"
      "        os.execv('/usr/bin/sleep', ['sleep', '" + marker + "'])\n"
      "    os._exit(0)\n"
      "import time\ntime.sleep(0.2)\n"
      "while True:\n    pass\n",
      o);
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, "timeout");
  EXPECT_GE(r.seconds, o.timeout_s - 0.01);
  EXPECT_LT(wall, o.timeout_s + 1.0);
  EXPECT_TRUE(gone_within(marker, 1.0)) << "grandchild 'sleep " << marker << "' survived the timeout";
}

TEST(Sandbox, EndlessOutputCapped) {
  SandboxOptions o;
  o.timeout_s = 1.0;
  o.max_output_bytes = 1000;
  auto rs = bm::run_python_programs({"while True:\n    print('x' * 999)\n",
                                     "import sys\nsys.stdout.write('y' * 5000)\n"},
                                    o);
  EXPECT_EQ(rs[0].status, "timeout");
  EXPECT_EQ(rs[0].output.size(), 1000u);
  EXPECT_EQ(rs[0].output.substr(0, 3), "xxx");
  EXPECT_LT(rs[0].seconds, 2.0);
  EXPECT_EQ(rs[1].status, "passed");
  EXPECT_EQ(rs[1].output, std::string(1000, 'y'));
}

TEST(Sandbox, SignallingParentAndEveryoneIsContained) {
  // A sentinel process of ours that kill(-1) would reach without a pid namespace.
  pid_t sentinel = fork();
  ASSERT_GE(sentinel, 0);
  if (sentinel == 0) {
    execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  SandboxOptions o;
  o.workers = 3;
  auto rs = bm::run_python_programs(
      {"import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('ppid-signalled')\n",
       "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError as e:\n    print(e)\nprint('survived')\n",
       "import time\ntime.sleep(1.0)\nprint('neighbour ok')\n",
       "import os, signal\nfor pid in range(2, 5000):\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\nprint('swept')\n",
       "print('after')\n"},
      o);
  ASSERT_EQ(rs.size(), 5u);
  // The neighbours running at the same time were not touched.
  EXPECT_EQ(rs[2].status, "passed") << rs[2].output;
  EXPECT_EQ(rs[2].output, "neighbour ok\n");
  EXPECT_EQ(rs[4].status, "passed") << rs[4].output;
  for (auto& r : rs) EXPECT_NE(r.status, "error") << r.output;
  EXPECT_EQ(kill(sentinel, 0), 0) << "the sentinel process was killed";
  int st = 0;
  EXPECT_EQ(waitpid(sentinel, &st, WNOHANG), 0) << "the sentinel process exited";
  kill(sentinel, SIGKILL);
  waitpid(sentinel, &st, 0);
  EXPECT_EQ(getppid() > 1, true);  // and we are obviously still alive
}

TEST(Sandbox, MissingPythonIsAClearError) {
  SandboxOptions o;
  o.python = "/nonexistent/python3";
  try {
    bm::run_python_programs({"print(1)"}, o);
    FAIL() << "expected bm::Error";
  } catch (const bm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/python3"), std::string::npos) << e.what();
  }
}

TEST(Sandbox, InterpreterOutsideUsrIsAClearError) {
  // The project venv's python lives under the repository, which the sandbox does not show.
  std::string venv = std::string(BITMERGE_SOURCE_DIR) + "/.venv/bin/python";
  if (access(venv.c_str(), X_OK) != 0) GTEST_SKIP() << "no venv python at " << venv;
  SandboxOptions o;
  o.python = venv;
  try {
    bm::require_sandbox(o);
    FAIL() << "a python outside /usr was accepted";
  } catch (const bm::Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("/usr"), std::string::npos) << m;
    EXPECT_NE(m.find("--unsafe-no-sandbox"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

TEST(SandboxUnsafe, StillLimitsAndKillsTheGroup) {
  SandboxOptions o;
  o.unsafe_no_sandbox = true;
  o.timeout_s = 1.0;
  o.memory_mb = 512;
  std::string marker = "1000." + std::to_string(getpid()) + "77";
  auto rs = bm::run_python_programs(
      {"print('ok')\n", "assert False\n", "x = bytearray(2 << 30)\n",
       "import os\nif os.fork() == 0:\n    os.execv('/usr/bin/sleep', ['sleep', '" + marker +
           "'])\nwhile True:\n    pass\n",
       "import os\nprint(os.getcwd())\nopen('f.txt','w').write('x')\n"},
      o);
  EXPECT_EQ(rs[0].status, "passed") << rs[0].output;
  EXPECT_EQ(rs[1].status, "failed");
  EXPECT_EQ(rs[2].status, "failed");
  EXPECT_NE(rs[2].output.find("MemoryError"), std::string::npos) << rs[2].output;
  EXPECT_EQ(rs[3].status, "timeout");
  EXPECT_LT(rs[3].seconds, 2.0);
  EXPECT_TRUE(gone_within(marker, 1.0));
  EXPECT_EQ(rs[4].status, "passed") << rs[4].output;
  std::string cwd = rs[4].output.substr(0, rs[4].output.size() - 1);
  EXPECT_NE(cwd.find("bm-sandbox-"), std::string::npos) << cwd;
  EXPECT_FALSE(path_exists(cwd)) << "temporary directory left behind";
}

}  // namespace
