// Large buffers (repacked weights, KV caches) taken straight from the OS and handed
// straight back on free. malloc keeps freed memory of this size in its arenas once its
// dynamic mmap threshold has grown, so a disposed model would stay resident; pages
// mapped here never do. Memory is zero-filled and untouched pages are not resident.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace sparrow {

// Page-aligned, zeroed; throws SparrowError ERR_OUT_OF_MEMORY naming `what` on failure.
uint8_t* alloc_pages(size_t bytes, const char* what);
void free_pages(uint8_t* p, size_t bytes);
// Makes the pages of [p, p + bytes) resident and writable now, in one call, where the OS
// can (Linux 5.14+): a range about to be written in full then costs no page fault per
// 4 KiB. Threads may do this for their own parts of a buffer in parallel. A no-op
// elsewhere.
void prefault_pages(uint8_t* p, size_t bytes);

class PageBuffer {
 public:
  PageBuffer() = default;
  PageBuffer(size_t bytes, const char* what) : p_(bytes ? alloc_pages(bytes, what) : nullptr), n_(bytes) {}
  ~PageBuffer() { reset(); }
  PageBuffer(PageBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
  PageBuffer& operator=(PageBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = o.p_, n_ = o.n_;
      o.p_ = nullptr, o.n_ = 0;
    }
    return *this;
  }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;

  uint8_t* get() const { return p_; }
  size_t size() const { return n_; }
  void reset() {
    if (p_) free_pages(p_, n_);
    p_ = nullptr, n_ = 0;
  }

 private:
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace sparrow
