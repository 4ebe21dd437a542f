// libtorch's CPU allocator with a pool of large blocks, active only while an engine run holds it
// (see tensor_pool.rs for why). Outside runs, and for blocks under POOLED_MIN_BYTES, it is
// exactly libtorch's own path: c10::alloc_cpu / c10::free_cpu.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>

namespace {

// Blocks this large are pooled: activations of tiles and slabs (megabytes), not the many small
// tensors, which glibc serves well from its per-thread caches.
constexpr size_t POOLED_MIN_BYTES = size_t{1} << 20;

class PooledCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) override {
    void* data = bytes >= POOLED_MIN_BYTES ? take(bytes) : c10::alloc_cpu(bytes);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override {
    return &release;
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  // Idle blocks beyond `idle_limit` bytes (the smallest limit among the runs alive) go back to
  // the system at once, so that a run's changing shapes cannot pile up memory its plan does not
  // count.
  void begin_run(size_t idle_limit) {
    std::lock_guard<std::mutex> lock(mutex_);
    idle_limit_ = runs_ == 0 ? idle_limit : std::min(idle_limit_, idle_limit);
    ++runs_;
  }

  void end_run() {
    std::multimap<size_t, void*> idle;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (runs_ > 0 && --runs_ == 0) {
        idle.swap(idle_);
        idle_bytes_ = 0;
      }
    }
    for (auto& block : idle) {
      c10::free_cpu(block.second);
    }
  }

  size_t idle_bytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return idle_bytes_;
  }

 private:
  static void release(void* data);

  // The smallest pooled block of at least `bytes`, or a new one. A larger block costs no resident
  // memory beyond what it already holds (only touched pages count); a new block does, so before
  // allocating one, idle blocks too small to serve this request give back as much as it needs.
  void* take(size_t bytes) {
    std::multimap<size_t, void*> evicted;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto found = idle_.lower_bound(bytes);
      if (found != idle_.end()) {
        void* data = found->second;
        sizes_[data] = found->first;
        idle_bytes_ -= found->first;
        idle_.erase(found);
        return data;
      }
      size_t freed = 0;
      while (freed < bytes && !idle_.empty()) {
        auto smallest = idle_.begin();
        freed += smallest->first;
        idle_bytes_ -= smallest->first;
        evicted.insert(*smallest);
        idle_.erase(smallest);
      }
    }
    for (auto& block : evicted) {
      c10::free_cpu(block.second);
    }
    void* data = c10::alloc_cpu(bytes);  // throws c10::Error when memory runs out, as libtorch's
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_[data] = bytes;
    return data;
  }

  void give_back(void* data) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto live = sizes_.find(data);
      if (live != sizes_.end()) {
        size_t bytes = live->second;
        sizes_.erase(live);
        if (runs_ > 0 && idle_bytes_ + bytes <= idle_limit_) {
          idle_.emplace(bytes, data);
          idle_bytes_ += bytes;
          return;
        }
      }
    }
    c10::free_cpu(data);
  }

  std::mutex mutex_;
  size_t runs_ = 0;
  size_t idle_limit_ = 0;
  std::unordered_map<void*, size_t> sizes_;  // pooled-size blocks in use
  std::multimap<size_t, void*> idle_;        // freed during a run, kept for the next request
  size_t idle_bytes_ = 0;
};

// Never destroyed: tensors may outlive static destruction at exit.
PooledCpuAllocator* pool() {
  static auto* instance = new PooledCpuAllocator();
  return instance;
}

void PooledCpuAllocator::release(void* data) {
  pool()->give_back(data);
}

}  // namespace

extern "C" {

// Installs the pool as libtorch's CPU allocator (once; later calls do nothing) and counts one
// more run holding it, which lets the pool keep up to `idle_limit` bytes of freed blocks.
// Returns 0, or -1 if libtorch refused it.
int deepcad_tensor_pool_begin(size_t idle_limit) {
  static std::once_flag installed;
  try {
    std::call_once(installed, [] { c10::SetCPUAllocator(pool(), /*priority=*/0); });
    pool()->begin_run(idle_limit);
    return 0;
  } catch (...) {
    return -1;
  }
}

// One run fewer; when none is left, the pooled blocks go back to the system.
void deepcad_tensor_pool_end() {
  pool()->end_run();
}

// Bytes held idle in the pool now.
size_t deepcad_tensor_pool_idle_bytes() {
  return pool()->idle_bytes();
}

}  // extern "C"
