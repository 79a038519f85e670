// Adam / AdamW with the same bits on every x86-64 CPU. libtorch's optimizers
// take exp_avg_sq.sqrt(), and ATen's CPU sqrt goes through MKL's vector math
// (vsSqrt), whose result depends on the processor even in MKL's COMPATIBLE
// branch (measured: AMD EPYC vs an Intel Haswell CPU model). This step uses
// v * rsqrt(v) instead (ATen's own AVX2 division and sqrt instructions, exact
// IEEE operations), and bias corrections by repeated multiplication rather
// than libm's pow. Otherwise it is PyTorch's algorithm (no amsgrad).
#pragma once
#include <torch/types.h>

#include <vector>

namespace bm::train {

struct AdamConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
  bool decoupled = true;  // AdamW (decoupled decay); false: Adam with L2 added to the gradient
};

class PortableAdam {
 public:
  // Parameter groups share the schedule (lr) but each has its own decay.
  void add_group(std::vector<torch::Tensor> params, AdamConfig cfg);
  void set_lr(double lr);
  void zero_grad();
  void step();

 private:
  struct Group {
    std::vector<torch::Tensor> params, exp_avg, exp_avg_sq;
    AdamConfig cfg;
    double b1_pow = 1.0, b2_pow = 1.0;
  };
  std::vector<Group> groups_;
};

// sqrt(x) for x >= 0 as x * rsqrt(x) (0 at 0): CPU-independent bits.
torch::Tensor portable_sqrt(const torch::Tensor& x);

}  // namespace bm::train
