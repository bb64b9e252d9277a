// The machine's memory read bandwidth, measured: the denominator of
// "fraction of bandwidth used" in osprey bench.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/thread_pool.h"

namespace osprey::kernels {

// Reads every word of data[0, n) once, split over the pool's threads, and
// returns a checksum (so the reads cannot be optimised away).
uint64_t read_all(ThreadPool& pool, const uint64_t* data, int64_t n);

// Streams a buffer of `bytes` (default 1 GiB) on every thread of the pool
// `reps` times and returns the median rate in bytes per second.
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{1} << 30, int reps = 5);

}  // namespace osprey::kernels
