// Counts this process's heap allocations by interposing glibc's malloc family (Eigen and
// std::allocator both end there), so a benchmark can prove that a training step allocates nothing.
// Not an allocator: every call is forwarded to glibc's own implementation.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "bench_util.h"

extern "C" {
void* __libc_malloc(size_t n);
void* __libc_calloc(size_t n, size_t size);
void* __libc_realloc(void* p, size_t n);
void* __libc_memalign(size_t alignment, size_t n);
}

namespace {
std::atomic<int64_t> g_allocations{0};
void count() { g_allocations.fetch_add(1, std::memory_order_relaxed); }
}  // namespace

extern "C" {
void* malloc(size_t n) {
  count();
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  count();
  return __libc_realloc(p, n);
}
void* memalign(size_t alignment, size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(size_t alignment, size_t n) {
  count();
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** p, size_t alignment, size_t n) {
  count();
  void* q = __libc_memalign(alignment, n);
  if (q == nullptr && n != 0) return 12;  // ENOMEM
  *p = q;
  return 0;
}
}

namespace diffuse::bench {
int64_t allocation_count() { return g_allocations.load(std::memory_order_relaxed); }
}  // namespace diffuse::bench
