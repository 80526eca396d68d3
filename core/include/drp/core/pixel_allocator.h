// Allocator of image pixel buffers: large buffers on transparent huge pages.
//
// Detector- and patch-sized images (tens to hundreds of MB) are allocated and freed many times
// per task (copies, convolution buffers, label images). glibc serves such sizes with a fresh
// mmap every time, so every 4 KiB page of a new buffer takes a page fault on first touch — on
// virtualised hosts (the development machine, many cloud and HPC VMs) that costs ~4 ms per MB,
// i.e. more than all the arithmetic done on the pixels afterwards (measured: 0.27 CPU-s to fill a
// fresh 64 MB buffer with 4 KiB pages, 0.015 CPU-s with 2 MiB pages). Buffers of at least
// kHugePageThreshold bytes are therefore 2 MiB-aligned, rounded up to whole 2 MiB pages, and
// advised MADV_HUGEPAGE, so that the kernel backs them with transparent huge pages when
// /sys/kernel/mm/transparent_hugepage/enabled is `madvise` or `always` (512× fewer faults).
// Where huge pages are unavailable the advice is ignored and nothing changes. Smaller buffers use
// the ordinary allocator.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

namespace drp {

inline constexpr std::size_t kHugePageSize = std::size_t(2) << 20;
inline constexpr std::size_t kHugePageThreshold = std::size_t(4) << 20;

template <typename T>
struct PixelAllocator {
    using value_type = T;

    PixelAllocator() noexcept = default;
    template <typename U>
    PixelAllocator(const PixelAllocator<U>&) noexcept {}

    T* allocate(std::size_t n) {
        if (n > std::size_t(-1) / sizeof(T)) throw std::bad_array_new_length();
        const std::size_t bytes = n * sizeof(T);
        if (bytes < kHugePageThreshold) return std::allocator<T>().allocate(n);
        const std::size_t rounded = (bytes + kHugePageSize - 1) / kHugePageSize * kHugePageSize;
        void* p = std::aligned_alloc(kHugePageSize, rounded);
        if (!p) throw std::bad_alloc();
        madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure changes nothing
        return static_cast<T*>(p);
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n * sizeof(T) < kHugePageThreshold)
            std::allocator<T>().deallocate(p, n);
        else
            std::free(p);
    }

    template <typename U>
    bool operator==(const PixelAllocator<U>&) const noexcept {
        return true;
    }
};

}  // namespace drp
