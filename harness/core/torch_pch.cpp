#include "harness/core/torch_pch.hpp"
