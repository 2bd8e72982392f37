// A persistent pool of worker threads: created once, reused by every call, so a small GEMV does
// not pay thread creation. Calls from several Python threads are serialized (the pool runs one
// parallel_for at a time), which keeps it thread-safe without oversubscribing the cores.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lowbit {

class ThreadPool {
public:
    static ThreadPool& global();

    // Runs fn(begin, end) over [0, n) split into about `nthreads` contiguous ranges, using the
    // calling thread as one of the workers. The first exception thrown by fn is rethrown here.
    void parallel_for(int64_t n, int nthreads, const std::function<void(int64_t, int64_t)>& fn);

    ~ThreadPool();

private:
    ThreadPool() = default;
    void ensure_workers(int count);
    void worker_loop(int index);

    std::mutex call_mutex_;  // one parallel_for at a time
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::vector<std::thread> workers_;
    // State of the current job, written under mutex_. generation_ and pending_ are atomics so a worker
    // (or the caller) can spin on them for a few microseconds before sleeping: a GEMV of a 4096x4096
    // 4-bit matrix takes ~0.3 ms, and a futex wake-up on each side would eat a large part of that.
    std::atomic<uint64_t> generation_{0};
    int active_workers_ = 0;          // workers taking part in this job
    std::atomic<int> pending_{0};     // workers not yet finished with this job
    bool stop_ = false;
    std::atomic<bool> stop_flag_{false};  // stop_, readable while spinning
    const std::function<void(int64_t, int64_t)>* job_ = nullptr;
    int64_t job_n_ = 0;
    int job_parts_ = 0;
    int job_cpu_ = -1;                // the CPU the caller was on when it posted the job (-1: unknown)
    std::exception_ptr error_;
};

// Default thread count: LOWBIT_NUM_THREADS if set (> 0), else the cores this process may use.
int default_num_threads();

}  // namespace lowbit
