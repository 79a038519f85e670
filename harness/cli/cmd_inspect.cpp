// bitmerge inspect: what a model directory holds (architecture, sizes, roles).
#include <iostream>
#include <map>
#include <set>

#include "harness/cli/registry.hpp"
#include "harness/core/error.hpp"
#include "harness/models/arch.hpp"
#include "harness/models/checkpoint.hpp"

BM_COMMAND(inspect, [](CLI::App& app) {
  auto* sub = app.add_subcommand("inspect", "Architecture, parameter count, dtype, bytes and tensors per role of a model");
  auto model = std::make_shared<std::string>();
  sub->add_option("--model", *model, "Model directory")->required();
  sub->callback([model] {
    auto ck = bm::Checkpoint::open(*model);
    const auto& c = ck->config();
    ck->validate_against_config();  // shape vs config.json: one-line error naming the tensor
    struct RoleStat {
      int64_t tensors = 0, params = 0;
      uint64_t bytes = 0;
    };
    std::map<std::string, RoleStat> roles;
    std::map<std::string, int64_t> dtypes;
    int64_t params = 0;
    uint64_t bytes = 0;
    for (const auto& name : ck->names()) {
      auto info = ck->info(name);
      auto& r = roles[bm::role_name(bm::classify_tensor(name).role)];
      r.tensors += 1;
      r.params += info.numel();
      r.bytes += info.nbytes;
      params += info.numel();
      bytes += info.nbytes;
      dtypes[bm::dtype_name(info.dtype)] += info.numel();
    }
    auto& o = std::cout;
    o << "model:          " << *model << "\n";
    o << "architecture:   " << c.architecture << " (" << c.model_type << ")\n";
    o << "layers:         " << c.num_hidden_layers << "  hidden " << c.hidden_size << "  intermediate "
      << c.intermediate_size << "  heads " << c.num_attention_heads << "  kv_heads " << c.num_key_value_heads
      << "  head_dim " << c.head_dim << "\n";
    o << "vocab:          " << c.vocab_size << "  tied embeddings " << (c.tie_word_embeddings ? "yes" : "no")
      << "  rope_theta " << c.rope_theta << "  rms_norm_eps " << c.rms_norm_eps << "  sliding_window "
      << (c.sliding_window > 0 ? std::to_string(c.sliding_window) : "none") << "\n";
    o << "parameters:     " << params << " (config implies " << c.parameter_count() << ")\n";
    o << "dtype:          ";
    for (auto& [d, n] : dtypes) o << d << " (" << n << " params) ";
    o << " config torch_dtype " << c.torch_dtype << "\n";
    o << "bytes:          " << bytes << " (" << static_cast<double>(bytes) / (1 << 30) << " GiB)\n";
    o << "tensors:        " << ck->names().size() << "\n";
    o << "per role:       role tensors params bytes\n";
    for (auto& [name, r] : roles)
      o << "  " << name << " " << r.tensors << " " << r.params << " " << r.bytes << "\n";
  });
});
