#include "harness/core/process_info.hpp"

namespace bm {

std::string& cpu_numerics_record() {
  static std::string record;
  return record;
}

}  // namespace bm
