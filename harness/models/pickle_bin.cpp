// PyTorch .bin (torch.save zip) reader. See pickle_bin.hpp for the plan.
//
// Why not torch::jit::Unpickler / torch::pickle_load for data.pkl: libtorch's
// unpickler maps the global collections.OrderedDict to None (it expects
// OrderedDicts only as tensors' backward hooks), so a state dict saved as
// model.state_dict() (an OrderedDict) fails with "Expected GenericDict but got
// None" (checked with libtorch 2.11; plain dicts load). The pickles torch.save
// writes for a state dict use a small, fixed set of opcodes and globals, so
// this file interprets exactly that subset itself: whitelisted globals only
// (nothing is ever executed), every malformed input a bm::Error naming the
// file. The zip directory is read with libtorch's PyTorchStreamReader over a
// ReadAdapterInterface on the mapping, and each storage record becomes a
// tensor pointing into the mapping (records are stored, never compressed).
#include "harness/models/pickle_bin.hpp"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>

#include <cstring>
#include <map>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"
#include "harness/core/safetensors.hpp"
#include "harness/models/checkpoint.hpp"

namespace bm {
namespace {

const std::string kHint = "; the file is damaged or not a torch.save state dict: re-download it or convert it to safetensors";

// ---------------------------------------------------------------- zip over mmap
class MappedReadAdapter : public caffe2::serialize::ReadAdapterInterface {
 public:
  explicit MappedReadAdapter(std::shared_ptr<const MappedFile> m) : m_(std::move(m)) {}
  size_t size() const override { return m_->size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char*) const override {
    if (pos >= m_->size()) return 0;
    n = std::min<uint64_t>(n, m_->size() - pos);
    std::memcpy(buf, m_->data() + pos, n);
    return n;
  }

 private:
  std::shared_ptr<const MappedFile> m_;
};

// First line of a c10::Error (the rest is a C++ backtrace).
std::string first_line(const char* what) {
  std::string s = what;
  size_t nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// ---------------------------------------------------------------- pickle values
struct Value;
using VPtr = std::shared_ptr<Value>;

struct StorageRef {
  std::string key;
  torch::Dtype dtype;
  int64_t numel = 0;
  torch::Tensor flat;  // 1-D tensor over the record, made on first use
};

struct Value {
  enum Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Mark } kind = None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s, s2;  // Str; Global: module, name
  std::vector<VPtr> items;                        // Tuple, List
  std::vector<std::pair<VPtr, VPtr>> dict;        // Dict (insertion order)
  std::shared_ptr<StorageRef> storage;            // Storage
  torch::Tensor tensor;                           // Tensor
  int depth = 0;  // container nesting, bounded so hostile pickles cannot exhaust the C++ stack
};

VPtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

const char* kind_name(Value::Kind k) {
  static const char* n[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor", "mark"};
  return n[k];
}

bool storage_dtype(const std::string& name, torch::Dtype* d) {
  static const std::pair<const char*, torch::Dtype> t[] = {
      {"FloatStorage", torch::kFloat32}, {"HalfStorage", torch::kFloat16}, {"BFloat16Storage", torch::kBFloat16},
      {"DoubleStorage", torch::kFloat64}, {"LongStorage", torch::kInt64}, {"IntStorage", torch::kInt32},
      {"ShortStorage", torch::kInt16},   {"CharStorage", torch::kInt8},   {"ByteStorage", torch::kUInt8},
      {"BoolStorage", torch::kBool},     {"UntypedStorage", torch::kUInt8}};
  for (auto& [n, dt] : t)
    if (name == n) return *d = dt, true;
  return false;
}

class Interpreter {
 public:
  Interpreter(const std::string& path, const std::string& pkl, caffe2::serialize::PyTorchStreamReader& zip,
              std::shared_ptr<const MappedFile> map)
      : path_(path), p_(pkl), zip_(zip), map_(std::move(map)) {}

  VPtr run() {
    for (;;) {
      uint8_t op = u8();
      switch (op) {
        case 0x80: u8(); break;               // PROTO
        case 0x95: bytes(8); break;           // FRAME (framing is irrelevant to a whole buffer)
        case '.': return pop();               // STOP
        case '(': stack_.push_back(make(Value::Mark)); break;
        case '0': pop(); break;               // POP
        case '1': pop_mark(); break;          // POP_MARK
        case '2': push(top()); break;         // DUP
        case 'N': push(make(Value::None)); break;
        case 0x88: push_bool(true); break;
        case 0x89: push_bool(false); break;
        case 'J': push_int(static_cast<int32_t>(le(4))); break;
        case 'K': push_int(le(1)); break;
        case 'M': push_int(le(2)); break;
        case 0x8a: push_int(long1(u8())); break;
        case 'I': {  // INT: "01"/"00" are bools
          std::string l = line();
          if (l == "01" || l == "00") push_bool(l == "01");
          else push_int(to_int(l));
          break;
        }
        case 'L': { std::string l = line(); if (!l.empty() && l.back() == 'L') l.pop_back(); push_int(to_int(l)); break; }
        case 'G': {
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = bits << 8 | u8();  // big-endian
          auto v = make(Value::Float);
          std::memcpy(&v->f, &bits, 8);
          push(v);
          break;
        }
        case 'X': case 'T': case 'B': push_str(bytes(le(4))); break;   // BINUNICODE BINSTRING BINBYTES
        case 0x8c: case 'U': case 'C': push_str(bytes(le(1))); break;  // SHORT_BINUNICODE / _BINSTRING / _BINBYTES
        case 0x8d: case 0x8e: push_str(bytes(le(8))); break;            // BINUNICODE8 BINBYTES8
        case ')': push(make(Value::Tuple)); break;
        case 't': { auto v = make(Value::Tuple); v->items = pop_mark(); adopt_items(v); push(v); break; }
        case 0x85: case 0x86: case 0x87: {
          auto v = make(Value::Tuple);
          size_t n = op - 0x84;
          need(n);
          v->items.assign(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          adopt_items(v);
          push(v);
          break;
        }
        case ']': push(make(Value::List)); break;
        case 'l': { auto v = make(Value::List); v->items = pop_mark(); adopt_items(v); push(v); break; }
        case 'a': { auto x = pop(); expect(top(), Value::List, "APPEND")->items.push_back(x); adopt(top(), x); break; }
        case 'e': {
          auto xs = pop_mark();
          auto& l = expect(top(), Value::List, "APPENDS")->items;
          l.insert(l.end(), xs.begin(), xs.end());
          for (auto& x : xs) adopt(top(), x);
          break;
        }
        case '}': push(make(Value::Dict)); break;
        case 'd': { auto v = make(Value::Dict); set_items(v, pop_mark()); push(v); break; }
        case 's': { auto val = pop(); auto key = pop(); set_items(expect(top(), Value::Dict, "SETITEM"), {key, val}); break; }
        case 'u': { auto kv = pop_mark(); set_items(expect(top(), Value::Dict, "SETITEMS"), kv); break; }
        case 'c': { auto v = make(Value::Global); v->s = line(); v->s2 = line(); push(v); break; }
        case 0x93: {  // STACK_GLOBAL
          auto name = expect(pop(), Value::Str, "STACK_GLOBAL"), mod = expect(pop(), Value::Str, "STACK_GLOBAL");
          auto v = make(Value::Global);
          v->s = mod->s, v->s2 = name->s;
          push(v);
          break;
        }
        case 'R': case 0x81: { auto args = expect(pop(), Value::Tuple, "REDUCE"); auto fn = pop(); push(call(fn, args->items)); break; }
        case 'b': pop(); break;  // BUILD: state of an OrderedDict (_metadata) or a tensor; not needed
        case 'q': memo_[le(1)] = top(); break;
        case 'r': memo_[le(4)] = top(); break;
        case 'p': memo_[to_int(line())] = top(); break;
        case 0x94: memo_[static_cast<int64_t>(memo_.size())] = top(); break;  // MEMOIZE
        case 'h': push(memo(le(1))); break;
        case 'j': push(memo(le(4))); break;
        case 'g': push(memo(to_int(line()))); break;
        case 'Q': push(persistent_load(pop())); break;
        default: bad("unsupported pickle opcode 0x" + hex(op) + " at byte " + std::to_string(pos_ - 1));
      }
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const { fail(path_, "data.pkl: " + what + kHint); }

  uint8_t u8() {
    if (pos_ >= p_.size()) bad("ends before its STOP opcode (truncated)");
    return static_cast<uint8_t>(p_[pos_++]);
  }
  uint64_t le(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(u8()) << (8 * k);
    return v;
  }
  int64_t long1(size_t n) {
    if (n > 8) bad("integer of " + std::to_string(n) + " bytes is too large");
    if (n == 0) return 0;
    uint64_t v = le(static_cast<int>(n));
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~0ull << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  std::string bytes(uint64_t n) {
    if (n > p_.size() - pos_) bad("string of " + std::to_string(n) + " bytes runs past the end (truncated)");
    std::string s = p_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string line() {
    size_t nl = p_.find('\n', pos_);
    if (nl == std::string::npos) bad("unterminated text argument");
    std::string s = p_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return s;
  }
  int64_t to_int(const std::string& s) {
    try {
      size_t used = 0;
      int64_t v = std::stoll(s, &used);
      if (used != s.size()) throw std::invalid_argument(s);
      return v;
    } catch (const std::exception&) {
      bad("bad integer '" + s + "'");
    }
  }
  static std::string hex(uint8_t b) {
    const char* d = "0123456789abcdef";
    return std::string{d[b >> 4], d[b & 15]};
  }

  void push(VPtr v) { stack_.push_back(std::move(v)); }
  void push_bool(bool b) { auto v = make(Value::Bool); v->b = b; push(v); }
  void push_int(int64_t i) { auto v = make(Value::Int); v->i = i; push(v); }
  void push_str(std::string s) { auto v = make(Value::Str); v->s = std::move(s); push(v); }
  void need(size_t n) const {
    if (stack_.size() < n) bad("stack underflow");
  }
  VPtr pop() {
    need(1);
    auto v = stack_.back();
    stack_.pop_back();
    if (v->kind == Value::Mark) bad("unexpected MARK");
    return v;
  }
  const VPtr& top() const {
    need(1);
    return stack_.back();
  }
  std::vector<VPtr> pop_mark() {
    size_t k = stack_.size();
    while (k > 0 && stack_[k - 1]->kind != Value::Mark) --k;
    if (k == 0) bad("no MARK on the stack");
    std::vector<VPtr> out(stack_.begin() + k, stack_.end());
    stack_.resize(k - 1);
    return out;
  }
  VPtr memo(int64_t i) const {
    auto it = memo_.find(i);
    if (it == memo_.end()) bad("memo entry " + std::to_string(i) + " used before it was stored");
    return it->second;
  }
  const VPtr& expect(const VPtr& v, Value::Kind k, const char* op) const {
    if (v->kind != k) bad(std::string(op) + " expects a " + kind_name(k) + ", found a " + kind_name(v->kind));
    return v;
  }
  void set_items(const VPtr& d, const std::vector<VPtr>& kv) {
    if (kv.size() % 2) bad("odd number of items for a dict");
    for (size_t k = 0; k < kv.size(); k += 2) {
      d->dict.push_back({kv[k], kv[k + 1]});
      adopt(d, kv[k]);
      adopt(d, kv[k + 1]);
    }
  }
  void adopt(const VPtr& parent, const VPtr& child) const {
    if (parent != child) parent->depth = std::max(parent->depth, child->depth + 1);
    if (parent->depth > kMaxDepth) bad("containers nested deeper than " + std::to_string(kMaxDepth));
  }
  void adopt_items(const VPtr& v) const {
    for (auto& x : v->items) adopt(v, x);
  }
  static constexpr int kMaxDepth = 100;
  int64_t as_int(const VPtr& v, const char* what) const {
    if (v->kind != Value::Int) bad(std::string(what) + " is a " + kind_name(v->kind) + ", expected an int");
    return v->i;
  }
  std::vector<int64_t> int_tuple(const VPtr& v, const char* what) const {
    if (v->kind != Value::Tuple && v->kind != Value::List) bad(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (auto& x : v->items) out.push_back(as_int(x, what));
    return out;
  }

  // ('storage', storage_type, key, location, numel)
  VPtr persistent_load(const VPtr& pid) {
    if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Value::Str || pid->items[0]->s != "storage")
      bad("persistent id is not ('storage', type, key, location, numel)");
    const VPtr& type = pid->items[1];
    const VPtr& key = pid->items[2];
    if (type->kind != Value::Global || key->kind != Value::Str) bad("malformed storage persistent id");
    torch::Dtype dt;
    if (!storage_dtype(type->s2, &dt)) bad("storage type " + type->s + "." + type->s2 + " is not supported");
    auto& ref = storages_[key->s];
    if (!ref) {
      ref = std::make_shared<StorageRef>();
      ref->key = key->s;
      ref->dtype = dt;
      ref->numel = as_int(pid->items[4], "storage numel");
    }
    auto v = make(Value::Storage);
    v->storage = ref;
    return v;
  }

  torch::Tensor storage_tensor(StorageRef& s) {
    if (s.flat.defined()) return s.flat;
    const std::string rec = "data/" + s.key;
    const size_t esz = c10::elementSize(s.dtype);
    size_t off = 0, size = 0;
    uint16_t method = 0;
    try {
      if (!zip_.hasRecord(rec)) bad("storage record '" + rec + "' is missing from the archive");
      size = zip_.getRecordSize(rec);
      off = zip_.getRecordOffset(rec);
      size_t hdr = zip_.getRecordHeaderOffset(rec);
      if (hdr + 10 > map_->size()) bad("zip header of '" + rec + "' lies past the end of the file");
      std::memcpy(&method, map_->data() + hdr + 8, 2);
    } catch (const c10::Error& e) {
      bad("cannot locate record '" + rec + "': " + first_line(e.what()));
    }
    if (method != 0) bad("record '" + rec + "' is compressed (zip method " + std::to_string(method) + "); torch.save never compresses");
    if (s.numel < 0 || static_cast<uint64_t>(s.numel) * esz > size)
      bad("storage '" + s.key + "' claims " + std::to_string(s.numel) + " elements but its record holds " +
          std::to_string(size) + " bytes");
    if (off > map_->size() || size > map_->size() - off)
      bad("record '" + rec + "' runs past the end of the file (truncated)");
    auto opts = torch::TensorOptions().dtype(s.dtype);
    const uint8_t* p = map_->data() + off;
    if (s.numel == 0) {
      s.flat = torch::empty({0}, opts);
    } else if (reinterpret_cast<uintptr_t>(p) % esz != 0) {
      s.flat = torch::empty({s.numel}, opts);
      std::memcpy(s.flat.data_ptr(), p, s.numel * esz);
    } else {
      std::shared_ptr<const MappedFile> keep = map_;
      s.flat = torch::from_blob(const_cast<uint8_t*>(p), {s.numel}, [keep](void*) {}, opts);
    }
    return s.flat;
  }

  VPtr rebuild_tensor(const std::vector<VPtr>& a) {
    if (a.size() < 4 || a[0]->kind != Value::Storage) bad("_rebuild_tensor arguments are not (storage, offset, size, stride, ...)");
    StorageRef& s = *a[0]->storage;
    int64_t offset = as_int(a[1], "storage offset");
    auto size = int_tuple(a[2], "tensor size"), stride = int_tuple(a[3], "tensor stride");
    if (size.size() != stride.size()) bad("tensor size and stride have different lengths");
    // The last element reached must lie inside the storage.
    int64_t extent = offset;
    bool empty = false;
    for (size_t k = 0; k < size.size(); ++k) {
      if (size[k] < 0 || stride[k] < 0) bad("negative tensor size or stride");
      if (size[k] == 0) empty = true;
      extent += (size[k] - 1) * stride[k];
    }
    if (offset < 0 || (!empty && extent >= s.numel))
      bad("tensor view (offset " + std::to_string(offset) + ", size " + shape_str(size) + ") reaches past its storage of " +
          std::to_string(s.numel) + " elements");
    auto v = make(Value::Tensor);
    if (empty) v->tensor = torch::empty(size, torch::TensorOptions().dtype(s.dtype));
    else v->tensor = storage_tensor(s).as_strided(size, stride, offset);
    return v;
  }

  VPtr call(const VPtr& fn, const std::vector<VPtr>& args) {
    if (fn->kind != Value::Global) bad(std::string("REDUCE on a ") + kind_name(fn->kind));
    const std::string& m = fn->s;
    const std::string& n = fn->s2;
    if (m == "collections" && n == "OrderedDict") {
      auto d = make(Value::Dict);
      if (!args.empty() && args[0]->kind == Value::List)  // OrderedDict([(k, v), ...])
        for (auto& kv : args[0]->items)
          if (kv->kind == Value::Tuple && kv->items.size() == 2) set_items(d, {kv->items[0], kv->items[1]});
      return d;
    }
    if (m == "torch._utils" && (n == "_rebuild_tensor_v2" || n == "_rebuild_tensor")) return rebuild_tensor(args);
    if (m == "torch._utils" && (n == "_rebuild_parameter" || n == "_rebuild_parameter_with_state")) {
      if (args.empty() || args[0]->kind != Value::Tensor) bad("_rebuild_parameter without a tensor");
      return args[0];
    }
    if (m == "torch._tensor" && n == "_rebuild_from_type_v2") {  // (func, type, args, state)
      if (args.size() < 3 || args[2]->kind != Value::Tuple) bad("malformed _rebuild_from_type_v2");
      if (++call_depth_ > kMaxDepth) bad("_rebuild_from_type_v2 nested too deeply");
      VPtr r = call(args[0], args[2]->items);
      --call_depth_;
      return r;
    }
    if (m == "torch.jit._pickle" && n == "restore_type_tag") {  // libtorch's pickle_save: (value, "Dict[str, Tensor]")
      if (args.empty()) bad("malformed restore_type_tag");
      return args[0];
    }
    if (m == "_codecs" && n == "encode") {  // protocol-2 bytes: encode(str, 'latin1')
      if (args.empty() || args[0]->kind != Value::Str) bad("malformed _codecs.encode");
      return args[0];
    }
    bad("refuses to call " + m + "." + n + " (only torch.save's tensor and dict constructors are allowed)");
  }

  std::string path_;
  const std::string& p_;
  size_t pos_ = 0;
  caffe2::serialize::PyTorchStreamReader& zip_;
  std::shared_ptr<const MappedFile> map_;
  std::vector<VPtr> stack_;
  std::map<int64_t, VPtr> memo_;
  std::map<std::string, std::shared_ptr<StorageRef>> storages_;
  int call_depth_ = 0;
};

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> load_torch_bin(const std::string& path) {
  auto map = std::make_shared<const MappedFile>(path);
  if (map->size() < 4) fail(path, "truncated: " + std::to_string(map->size()) + " bytes" + kHint);
  if (map->data()[0] == 0x80 && map->data()[1] <= 5)
    fail(path, "legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a recent torch "
               "(torch.save(torch.load(f), f)) or convert it to safetensors");
  if (std::memcmp(map->data(), "PK\x03\x04", 4) != 0) fail(path, "not a zip archive (no PK signature)" + kHint);
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  std::string pkl;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(std::make_shared<MappedReadAdapter>(map));
    if (!zip->hasRecord("data.pkl")) fail(path, "archive has no data.pkl record" + std::string(kHint));
    auto [ptr, n] = zip->getRecord("data.pkl");
    pkl.assign(static_cast<const char*>(ptr.get()), n);
  } catch (const c10::Error& e) {
    // miniz's message runs on ("This is an internal miniz error. If you ..."): its first sentence says it.
    std::string why = first_line(e.what());
    if (size_t dot = why.find(". "); dot != std::string::npos) why = why.substr(0, dot);
    const bool cut = why.find("central directory") != std::string::npos;
    fail(path, (cut ? "truncated or damaged (" + why + ")" : "not a readable PyTorch zip archive (" + why + ")") + kHint);
  }
  VPtr root = Interpreter(path, pkl, *zip, map).run();
  if (root->kind != Value::Dict) fail(path, std::string("holds a pickled ") + kind_name(root->kind) + ", not a state dict" + kHint);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [k, v] : root->dict) {
    if (k->kind != Value::Str) fail(path, "state dict has a non-string key" + std::string(kHint));
    if (v->kind == Value::Tensor) out.emplace_back(k->s, v->tensor);
    // Non-tensor entries (e.g. a saved step counter) are not weights: skipped.
  }
  if (out.empty() && !root->dict.empty())
    fail(path, "the pickled dict holds no tensors at top level (a training checkpoint?); save model.state_dict() instead");
  return out;
}

// ---------------------------------------------------------------- checkpoint
namespace {

bool is_buffer_not_weight(const std::string& name) {
  // Old LLaMA checkpoints saved RoPE's inverse frequencies; they are derived
  // from the config, not weights, and no HF model loads them.
  static const std::string suffix = "rotary_emb.inv_freq";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class BinCheckpoint : public Checkpoint {
 public:
  BinCheckpoint(const std::string& dir, const std::vector<std::string>& files, bool with_config) : files_(files) {
    dir_ = dir;
    if (with_config) read_config_if_present();
    for (auto& f : files) {
      for (auto& [name, t] : load_torch_bin(f)) {
        if (is_buffer_not_weight(name)) continue;
        TensorInfo ti;
        ti.name = name;
        try {
          ti.dtype = from_torch_dtype(t.scalar_type());
        } catch (const Error& e) {
          fail(f, "tensor '" + name + "': " + e.what());
        }
        ti.shape = t.sizes().vec();
        ti.nbytes = static_cast<uint64_t>(t.numel()) * dtype_size(ti.dtype);
        add_name(name);
        infos_.push_back(std::move(ti));
        tensors_.push_back(t);
      }
    }
  }
  TensorInfo info(const std::string& name) const override { return infos_[index_of(name)]; }
  torch::Tensor get(const std::string& name) const override {
    const torch::Tensor& t = tensors_[index_of(name)];
    return t.is_contiguous() ? t : t.contiguous();
  }
  std::vector<std::string> files() const override { return files_; }

 private:
  size_t index_of(const std::string& name) const {
    auto it = name_index_.find(name);
    if (it == name_index_.end()) fail(dir_, "no tensor named '" + name + "'" + did_you_mean(name, names_));
    return it->second;
  }
  std::vector<std::string> files_;
  std::vector<TensorInfo> infos_;
  std::vector<torch::Tensor> tensors_;
};

}  // namespace

std::shared_ptr<Checkpoint> open_bin_checkpoint(const std::string& dir_or_file, const std::vector<std::string>& files,
                                                bool with_config) {
  return std::make_shared<BinCheckpoint>(dir_or_file, files, with_config);
}

}  // namespace bm
