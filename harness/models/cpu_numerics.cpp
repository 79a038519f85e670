#include "harness/models/cpu_numerics.hpp"

#include <ATen/Context.h>
#include <ATen/Version.h>

#include <cstdlib>
#include <fstream>
#include <mutex>

#include "harness/core/error.hpp"
#include "harness/core/process_info.hpp"

// MKL's conditional numerical reproducibility (CNR) switch. libtorch links MKL
// statically and exports the service entry behind mkl_cbwr_set/get; weak, so
// a libtorch without MKL (aarch64) still links and simply has nothing to pin.
extern "C" int mkl_serv_cbwr_set(int) __attribute__((weak));
extern "C" int mkl_serv_cbwr_get(int) __attribute__((weak));

namespace bm {
namespace {

// mkl_service.h constants.
constexpr int kCbwrBranch = 1;
constexpr int kCbwrAuto = 2;
constexpr int kCbwrCompatible = 3;

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(line.find_first_not_of(" \t", p + 1));
    }
  return "unknown";
}

std::string cbwr_name(int branch) {
  switch (branch) {
    case kCbwrAuto: return "AUTO";
    case kCbwrCompatible: return "COMPATIBLE";
    case 1: return "OFF";
    default: return "branch " + std::to_string(branch);
  }
}

CpuNumerics pin_now() {
  CpuNumerics n;
  n.cpu_model = cpu_model_name();
  const char* env = std::getenv("BITMERGE_CPU_NUMERICS");
  n.mode = env && *env ? env : "portable";
  if (n.mode != "portable" && n.mode != "native")
    fail("BITMERGE_CPU_NUMERICS=" + n.mode, "unknown mode; use portable (bitwise the same on every x86-64 CPU) or native");
  bool x86 = false;
#if defined(__x86_64__)
  x86 = true;
#endif
  if (n.mode == "portable") {
    // ATen: the AVX2 kernels are one fixed instruction stream on every CPU
    // that has AVX2+FMA, AMD or Intel; AVX-512 kernels would sum in another
    // order. Without AVX2, the scalar "default" kernels.
    bool avx2 = false;
#if defined(__x86_64__)
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    n.tier = x86 ? (avx2 ? "avx2" : "default") : "default";
    ::setenv("ATEN_CPU_CAPABILITY", n.tier.c_str(), 1);
    // MKL: COMPATIBLE is the one CNR branch MKL supports on every vendor's
    // CPU (on AMD it refuses AVX2/AVX512 branches), so it is the one that
    // gives the same BLAS bits on AMD and Intel.
    ::setenv("MKL_CBWR", "COMPATIBLE", 1);
    ::unsetenv("MKL_ENABLE_INSTRUCTIONS");
    if (mkl_serv_cbwr_set) {
      int rc = mkl_serv_cbwr_set(kCbwrCompatible);
      if (rc != 0 && mkl_serv_cbwr_get && mkl_serv_cbwr_get(kCbwrBranch) != kCbwrCompatible)
        fail("BITMERGE_CPU_NUMERICS=portable",
             "MKL's reproducible branch could not be set (code " + std::to_string(rc) +
                 "; an MKL routine already ran); pin before the first tensor operation or set "
                 "BITMERGE_CPU_NUMERICS=native");
    }
    // oneDNN picks kernels and blockings by ISA and cache sizes: off.
    ::setenv("ONEDNN_MAX_CPU_ISA", "AVX2", 1);
    at::globalContext().setUserEnabledMkldnn(false);
  } else {
    n.tier = "native";
  }
  n.aten_capability = at::get_cpu_capability();  // computed once, from the environment, here
  n.onednn = at::globalContext().userEnabledMkldnn();
  n.mkl_cbwr = mkl_serv_cbwr_get ? cbwr_name(mkl_serv_cbwr_get(kCbwrBranch)) : "no MKL";
  if (n.mode == "portable") {
    std::string want = n.tier == "avx2" ? "AVX2" : "DEFAULT";
    if (n.aten_capability != want)
      fail("BITMERGE_CPU_NUMERICS=portable",
           "ATen's CPU capability is " + n.aten_capability + ", not " + want +
               " (an ATen CPU kernel ran before the pin); pin before the first tensor operation");
  }
  return n;
}

}  // namespace

std::string CpuNumerics::pin_id() const {
  if (mode == "native") return "native:" + aten_capability + ":mkl-" + mkl_cbwr + ":" + cpu_model;
  return "portable:" + tier + ":mkl-" + mkl_cbwr + ":onednn-" + (onednn ? "on" : "off");
}

std::string CpuNumerics::summary() const {
  return mode + ":" + tier + " (ATen " + aten_capability + ", MKL CBWR " + mkl_cbwr + ", oneDNN " +
         (onednn ? "on" : "off") + "; CPU " + cpu_model + ")";
}

nlohmann::json CpuNumerics::to_json() const {
  return {{"mode", mode},         {"tier", tier},     {"aten_capability", aten_capability},
          {"mkl_cbwr", mkl_cbwr}, {"onednn", onednn}, {"cpu_model", cpu_model},
          {"pin_id", pin_id()}};
}

const CpuNumerics& pin_cpu_numerics() {
  static std::once_flag once;
  static CpuNumerics pinned;
  static std::string error;
  std::call_once(once, [] {
    try {
      pinned = pin_now();
      cpu_numerics_record() = pinned.summary();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw Error(error);
  return pinned;
}

}  // namespace bm
