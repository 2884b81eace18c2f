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

uint8_t* alloc_pages(size_t bytes, const char* what) {
#ifdef _WIN32
  void* p = VirtualAlloc(nullptr, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
  if (!p)
#else
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
#endif
    throw sparrow_error("ERR_OUT_OF_MEMORY", std::string("cannot allocate ") + std::to_string(bytes >> 20) + " MiB for " + what);
  return static_cast<uint8_t*>(p);
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
  munmap(p, bytes);
#endif
}

}  // namespace sparrow
