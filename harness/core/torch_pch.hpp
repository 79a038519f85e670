// The one heavy include, precompiled once (see bm_use_torch in CMakeLists.txt).
#pragma once
#include <torch/torch.h>
