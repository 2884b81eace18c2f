#include "pages.h"

#include <string>

#include "error.h"

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <sys/mman.h>
#endif

namespace sparrow {

namespace {

// Buffers of at least kHugeMin bytes are placed on 2 MiB boundaries, sized in whole 2 MiB
// units and marked for transparent huge pages (Linux, where THP is "madvise" or "always"):
// filling 1 GiB of repacked weights then takes 512 page faults instead of 262144, and
// decode's weight stream misses the TLB far less often. Elsewhere, or when the kernel says
// no, they are ordinary pages.
constexpr size_t kHuge = size_t(2) << 20;
constexpr size_t kHugeMin = size_t(8) << 20;

size_t mapped_bytes(size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (bytes >= kHugeMin) return (bytes + kHuge - 1) & ~(kHuge - 1);
#endif
  return bytes;
}

}  // namespace

uint8_t* alloc_pages(size_t bytes, const char* what) {
  auto fail = [&]() -> uint8_t* {
    throw sparrow_error("ERR_OUT_OF_MEMORY", std::string("cannot allocate ") + std::to_string(bytes >> 20) + " MiB for " + what);
  };
#ifdef _WIN32
  void* p = VirtualAlloc(nullptr, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (!p) return fail();
  return static_cast<uint8_t*>(p);
#else
  const size_t size = mapped_bytes(bytes);
  if (size == bytes) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return fail();
    return static_cast<uint8_t*>(p);
  }
  // Over-map by one huge page, keep the aligned part, give back the ends.
  void* raw = mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return fail();
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHuge - 1) & ~uintptr_t(kHuge - 1);
  if (start > base) munmap(raw, start - base);
  if (base + kHuge > start) munmap(reinterpret_cast<void*>(start + size), base + kHuge - start);
#if defined(MADV_HUGEPAGE)
  madvise(reinterpret_cast<void*>(start), size, MADV_HUGEPAGE);  // best effort
#endif
  return reinterpret_cast<uint8_t*>(start);
#endif
}

void prefault_pages(uint8_t* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  const uintptr_t page = 4096, a = reinterpret_cast<uintptr_t>(p) & ~(page - 1);
  const uintptr_t e = reinterpret_cast<uintptr_t>(p) + bytes;
  if (e > a) madvise(reinterpret_cast<void*>(a), e - a, MADV_POPULATE_WRITE);  // best effort
#else
  (void)p, (void)bytes;
#endif
}

void free_pages(uint8_t* p, size_t bytes) {
#ifdef _WIN32
  (void)bytes;
  VirtualFree(p, 0, MEM_RELEASE);
#else
  munmap(p, mapped_bytes(bytes));
#endif
}

}  // namespace sparrow
