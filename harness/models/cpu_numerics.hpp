// One pin for every numeric path that dispatches on the CPU, so that the same
// inputs give the same bits on any x86-64 CPU (AMD or Intel, with or without
// AVX-512): ATen's CPU capability (vectorised kernels, Sleef), MKL's
// conditional numerical reproducibility branch (BLAS, VML) and oneDNN (off).
//
// Mode, from BITMERGE_CPU_NUMERICS:
//   portable (default)  ATen avx2 + MKL CBWR AVX2,STRICT + oneDNN off on CPUs
//                       with AVX2+FMA (every x86-64 CPU since 2013/2017);
//                       ATen default + MKL CBWR COMPATIBLE on older ones.
//   native              whatever libtorch picks for this CPU (fastest, but the
//                       bits differ between CPUs); recorded as such.
// The pin wins over ATEN_CPU_CAPABILITY / MKL_CBWR / MKL_ENABLE_INSTRUCTIONS /
// ONEDNN_MAX_CPU_ISA set in the environment. It must run before the first
// tensor operation: `bitmerge` calls it first thing in main(); library entry
// points that train or evaluate call it too and fail if it came too late.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace bm {

struct CpuNumerics {
  std::string mode;             // portable | native
  std::string tier;             // avx2 | default | native
  std::string aten_capability;  // what ATen reports after pinning: AVX2, DEFAULT, AVX512...
  std::string mkl_cbwr;         // MKL CBWR branch in force (e.g. "AVX2,STRICT"), or "auto"
  bool onednn = false;          // oneDNN (mkldnn) kernels enabled
  std::string cpu_model;        // /proc/cpuinfo "model name"
  // "portable:avx2 (ATen AVX2, MKL AVX2,STRICT, oneDNN off)": what provenance records.
  std::string summary() const;
  // The part that decides the bits (not the CPU model): goes into cache keys.
  std::string pin_id() const;
  nlohmann::json to_json() const;
};

// Pins (once; later calls return the same record). Throws bm::Error when the
// pin cannot take effect because an ATen CPU kernel already ran.
const CpuNumerics& pin_cpu_numerics();

}  // namespace bm
