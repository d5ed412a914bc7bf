// A model file's bytes, read-only: memory-mapped (POSIX), so a loader points
// weights into the file instead of copying them and the OS pages them in as
// packing reads them. The parsers of this folder take (bytes, size) and never
// read past size, so a mapped file, a buffer in memory and a fuzzer's input
// are the same to them.
#ifndef TILEKIT_LOADERS_FILE_H_
#define TILEKIT_LOADERS_FILE_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tilekit/base/status.h"

namespace tilekit {

class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept { *this = std::move(o); }
  MappedFile& operator=(MappedFile&& o) noexcept {
    if (this != &o) {
      close();
      std::swap(data_, o.data_);
      std::swap(size_, o.size_);
    }
    return *this;
  }
  ~MappedFile() { close(); }

  // Maps the whole file. An empty file maps to no bytes (size 0, data null).
  Status open(const char* path) {
    close();
    if (!path) return fail(Status::kNullPointer, "loader: no path");
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(Status::kInvalidArgument, "loader: cannot open %s", path);
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        static_cast<uint64_t>(st.st_size) > SIZE_MAX) {
      ::close(fd);
      return fail(Status::kInvalidArgument, "loader: %s is not a regular file", path);
    }
    const size_t size = static_cast<size_t>(st.st_size);
    void* p = nullptr;
    if (size) {
      p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return fail(Status::kOutOfMemory, "loader: cannot map %s (%zu bytes)", path, size);
      }
    }
    ::close(fd);  // the mapping keeps the file
    data_ = static_cast<const unsigned char*>(p);
    size_ = size;
    return Status::kOk;
  }
  void close() {
    if (data_) ::munmap(const_cast<unsigned char*>(data_), size_);
    data_ = nullptr;
    size_ = 0;
  }

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

// Reads little-endian values from [p, end) and says when it ran out, so a
// parser checks once per record instead of before every field. Every read
// past the end returns zero and leaves ok() false.
class ByteReader {
 public:
  ByteReader(const unsigned char* p, size_t size) : begin_(p), p_(p), end_(p + size) {}

  bool ok() const { return ok_; }
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  size_t left() const { return static_cast<size_t>(end_ - p_); }
  const unsigned char* at() const { return p_; }

  // The next n bytes (null when fewer are left).
  const unsigned char* take(size_t n) {
    if (!ok_ || n > left()) {
      ok_ = false;
      return nullptr;
    }
    const unsigned char* q = p_;
    p_ += n;
    return q;
  }
  uint64_t u(size_t bytes) {  // an unsigned little-endian integer of 1, 2, 4 or 8 bytes
    const unsigned char* q = take(bytes);
    uint64_t v = 0;
    for (size_t i = 0; q && i < bytes; ++i) v |= static_cast<uint64_t>(q[i]) << (8 * i);
    return v;
  }
  uint32_t u32() { return static_cast<uint32_t>(u(4)); }
  uint64_t u64() { return u(8); }

 private:
  const unsigned char* begin_;
  const unsigned char* p_;
  const unsigned char* end_;
  bool ok_ = true;
};

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_FILE_H_
