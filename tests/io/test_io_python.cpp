// Python (the venv's torch / safetensors / transformers) as the oracle.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/models/checkpoint.hpp"
#include "tests/io/io_test_util.hpp"

namespace bm {
namespace {
TEST(Python, Placeholder) { EXPECT_TRUE(true); }
}  // namespace
}  // namespace bm
