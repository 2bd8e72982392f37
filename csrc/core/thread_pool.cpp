#include "thread_pool.h"

#include <chrono>
#include <cstdlib>
#include <sched.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define LOWBIT_CPU_RELAX() _mm_pause()
#else
#define LOWBIT_CPU_RELAX() ((void)0)
#endif

namespace lowbit {

ThreadPool& ThreadPool::global() {
    // Leaked on purpose: joining threads from a static destructor at interpreter exit can deadlock.
    static ThreadPool* pool = new ThreadPool();
    return *pool;
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
        stop_flag_.store(true);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
        const int index = static_cast<int>(workers_.size());
        workers_.emplace_back([this, index] { worker_loop(index); });
    }
}

namespace {
// How long a thread spins on a flag before blocking: long enough to bridge the gap between the
// matmuls of one layer, short enough not to steal a core from numpy between calls.
constexpr auto kSpin = std::chrono::microseconds(100);

template <typename Ready>
bool spin_until(Ready ready) {
    const auto deadline = std::chrono::steady_clock::now() + kSpin;
    for (int i = 0;; ++i) {
        if (ready()) return true;
        LOWBIT_CPU_RELAX();
        if ((i & 63) == 63) {
            // When the spinner shares a core with the thread it waits for (the scheduler has not spread
            // them yet), pure spinning would starve that thread: yield now and then.
            std::this_thread::yield();
            if (std::chrono::steady_clock::now() > deadline) return false;
        }
    }
}

// The CPU the calling thread runs on, -1 where unknown.
inline int current_cpu() {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

// A worker that finds itself on the caller's CPU moves off it. Linux's wake-affine placement can put a
// woken worker on its waker's CPU; a spinning worker then stays "cache hot" there and the load
// balancer never moves it, so caller and worker time-share one core while the other idles (seen on
// 2 cores: SmolLM2-sized GEMVs slower with 2 threads than with 1 after llama.cpp had run in the same
// process, with a hundred involuntary context switches per hundred calls). One sched_setaffinity
// without the caller's CPU migrates it; the original mask is restored at once (the thread stays where
// it now runs). Costs a vDSO sched_getcpu per job, and a syscall only on a collision.
inline void move_off_cpu(int busy) {
#if defined(__linux__)
    cpu_set_t mask;
    if (busy < 0 || busy >= CPU_SETSIZE || sched_getcpu() != busy) return;
    if (sched_getaffinity(0, sizeof(mask), &mask) != 0 || CPU_COUNT(&mask) < 2) return;
    cpu_set_t others = mask;
    CPU_CLR(busy, &others);
    if (CPU_COUNT(&others) == 0) return;
    if (sched_setaffinity(0, sizeof(others), &others) == 0) sched_setaffinity(0, sizeof(mask), &mask);
#else
    (void)busy;
#endif
}

inline void part_range(int64_t n, int parts, int part, int64_t* begin, int64_t* end) {
    *begin = n * part / parts;
    *end = n * (part + 1) / parts;
}
}  // namespace

void ThreadPool::worker_loop(int index) {
    uint64_t seen = 0;
    for (;;) {
        const std::function<void(int64_t, int64_t)>* job;
        int64_t n;
        int parts;
        int caller_cpu;
        // A new job is announced by bumping generation_ (after the job fields are written, under the
        // mutex); spin on it briefly, then sleep on the condition variable.
        spin_until([&] { return generation_.load(std::memory_order_acquire) != seen || stop_flag_.load(); });
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || (generation_.load() != seen && index < active_workers_); });
            if (stop_) return;
            seen = generation_.load();
            job = job_;
            n = job_n_;
            parts = job_parts_;
            caller_cpu = job_cpu_;
        }
        move_off_cpu(caller_cpu);
        int64_t begin, end;
        part_range(n, parts, index + 1, &begin, &end);  // part 0 belongs to the caller
        std::exception_ptr err;
        try {
            if (begin < end) (*job)(begin, end);
        } catch (...) {
            err = std::current_exception();
        }
        if (err) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = err;
        }
        if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mutex_);  // pairs with the caller's predicate check
            done_.notify_one();
        }
    }
}

void ThreadPool::parallel_for(int64_t n, int nthreads, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    int parts = nthreads < 1 ? 1 : nthreads;
    if (parts > n) parts = static_cast<int>(n);
    if (parts == 1) {
        fn(0, n);
        return;
    }
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        ensure_workers(parts - 1);
        job_ = &fn;
        job_n_ = n;
        job_parts_ = parts;
        job_cpu_ = current_cpu();
        active_workers_ = parts - 1;
        pending_.store(parts - 1);
        error_ = nullptr;
        generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    std::exception_ptr err;
    try {
        int64_t begin, end;
        part_range(n, parts, 0, &begin, &end);
        fn(begin, end);
    } catch (...) {
        err = std::current_exception();
    }
    spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load() == 0; });
    if (!err) err = error_;
    error_ = nullptr;
    job_ = nullptr;
    lock.unlock();
    if (err) std::rethrow_exception(err);
}

int default_num_threads() {
    if (const char* env = std::getenv("LOWBIT_NUM_THREADS")) {
        const int n = std::atoi(env);
        if (n > 0) return n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    const unsigned hc = std::thread::hardware_concurrency();
    return hc > 0 ? static_cast<int>(hc) : 1;
}

}  // namespace lowbit
