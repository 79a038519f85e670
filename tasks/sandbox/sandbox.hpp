// Sandboxed execution of untrusted Python programs (HumanEval / MBPP completions).
//
// Each program runs in bubblewrap (bwrap) around the system python3: no network
// (all namespaces unshared), read-only /usr, a private size-limited tmpfs /tmp as
// working directory, nothing of $HOME or the repository, its own pid namespace
// (killing it kills every descendant), --die-with-parent, --new-session, and
// rlimits (CPU seconds, address space, processes, file size, open files) set
// before exec. A wall-clock timeout kills the whole process group; output
// (stdout + stderr, merged) is captured through a pipe and capped.
// When running as root, the sandbox runs under a fresh unprivileged uid so that
// the process limit is enforced and cannot touch other processes. Details and
// threat model: docs/sandbox.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bm {

struct SandboxOptions {
  double timeout_s = 3.0;          // wall clock per program
  int64_t memory_mb = 2048;        // RLIMIT_AS
  int64_t max_output_bytes = 1 << 16;
  int workers = 0;                 // 0 = one per core
  bool unsafe_no_sandbox = false;  // no bwrap: rlimits, process-group kill, temp dir only
  std::string python = "/usr/bin/python3";
};

struct ProgramResult {
  std::string status;  // "passed", "failed", "timeout", "error"
  int exit_code = 0;   // exit status, 128+signal when killed by a signal
  std::string output;  // stdout + stderr, at most max_output_bytes
  double seconds = 0;  // wall time
  bool passed() const { return status == "passed"; }
};

// Runs every program (exit code 0 = passed) in parallel; results in input order.
// Throws bm::Error (as require_sandbox) when the sandbox cannot be used.
std::vector<ProgramResult> run_python_programs(const std::vector<std::string>& programs,
                                               const SandboxOptions& opts);

// Throws bm::Error saying how to install bubblewrap or to pass --unsafe-no-sandbox
// when bwrap is missing or cannot start a sandbox (probe result is cached), and
// when opts.python is missing. Does nothing more than the python check when
// opts.unsafe_no_sandbox.
void require_sandbox(const SandboxOptions& opts);

}  // namespace bm
