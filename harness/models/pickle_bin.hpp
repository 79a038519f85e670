// PyTorch .bin state dicts (torch.save zip archives: pytorch_model.bin and
// sharded pytorch_model-0000i-of-0000N.bin with an index).
//
// How: the file is memory-mapped; caffe2::serialize::PyTorchStreamReader
// (libtorch's zip reader) lists the records over that mapping through a
// ReadAdapterInterface, and torch::jit::Unpickler (libtorch's own unpickler)
// parses data.pkl with a read_record callback that hands out DataPtrs
// pointing straight into the mapping (torch.save stores records uncompressed
// and 64-byte aligned). So tensors are zero-copy views, like safetensors, and
// loading a 7B .bin needs no RAM beyond the pages touched.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bm {

class Checkpoint;

// Every tensor of the state dict in pickle order; tensors are read-only views
// on the file's mapping (clone() before writing). Errors name the file.
std::vector<std::pair<std::string, torch::Tensor>> load_torch_bin(const std::string& path);

// A Checkpoint over one or more .bin files (dir_or_file: the model directory,
// or the file itself when with_config is false).
std::shared_ptr<Checkpoint> open_bin_checkpoint(const std::string& dir_or_file, const std::vector<std::string>& files,
                                                bool with_config);

}  // namespace bm
