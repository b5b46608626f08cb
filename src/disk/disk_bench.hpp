// Disk benchmark engine behind `vireo img bench`: the workload of `qemu-img bench` (sequential
// requests with a step, a queue depth, optional periodic flushes), driven through
// BlockBackend::submit on an IoContext — it measures the asynchronous path the VMM uses.
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "disk/block_backend.hpp"

namespace vireo::disk {

class IoContext;

struct BenchConfig {
    bool write = false;
    uint64_t count = 75000;          // requests
    uint32_t depth = 64;             // requests in flight
    uint64_t offset = 0;             // of the first request
    uint64_t size = 4096;            // bytes per request
    uint64_t step = 0;               // offset increment (0: size); offsets wrap at the disk size
    uint8_t pattern = 0;             // byte written
    uint64_t flush_interval = 0;     // flush after every N requests (writes only; 0: never)
    bool drain_on_flush = true;      // wait for requests in flight before each flush
    bool flush_every_write = false;  // cache=writethrough/directsync: each write flushed before it completes
    bool ignore_flushes = false;     // cache=unsafe
};

struct BenchResult {
    double seconds = 0;  // first submission to last completion
    uint64_t requests = 0;
    uint64_t flushes = 0;
};

// Runs the workload on `disk`. A failed request ends the run with its error.
Result<BenchResult> run_bench(BlockBackend& disk, IoContext& ctx, const BenchConfig& config);

}  // namespace vireo::disk
