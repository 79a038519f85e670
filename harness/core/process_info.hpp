// Facts about this process that torch-free code records in provenance but
// cannot compute itself (they are set by the libtorch side at startup).
#pragma once
#include <string>

namespace bm {

// The CPU numerics pin in force ("portable:avx2 (ATen AVX2, MKL CBWR
// COMPATIBLE, oneDNN off; CPU ...)"), set by pin_cpu_numerics(); "" before.
std::string& cpu_numerics_record();

}  // namespace bm
