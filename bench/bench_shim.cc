// The only C++ of the benchmarks: registers C benchmark bodies with Google
// Benchmark, runs the timing loop, forwards counters.  See bench_shim.h.
#include "bench/bench_shim.h"

#include <benchmark/benchmark.h>

#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

struct bench_ctx {
    benchmark::State *state;
    clockid_t clock;  // the clock of the time column (CPU or wall)
    int64_t started;  // ns on `clock` when timing last (re)started, or -1
    int64_t elapsed;  // ns timed so far
};

namespace {

std::atomic<bool> g_any_failed{false};

benchmark::TimeUnit to_unit(bench_unit u) {
    switch (u) {
    case BENCH_UNIT_US: return benchmark::kMicrosecond;
    case BENCH_UNIT_MS: return benchmark::kMillisecond;
    case BENCH_UNIT_S: return benchmark::kSecond;
    case BENCH_UNIT_NS:
    case BENCH_UNIT_DEFAULT:
    default: return benchmark::kNanosecond;
    }
}

benchmark::Counter::Flags to_flags(unsigned f) {
    int out = benchmark::Counter::kDefaults;
    if (f & BENCH_COUNTER_RATE) out |= benchmark::Counter::kIsRate;
    if (f & BENCH_COUNTER_ITER_INVARIANT)
        out |= benchmark::Counter::kIsIterationInvariant;
    if (f & BENCH_COUNTER_AVG_ITERATIONS)
        out |= benchmark::Counter::kAvgIterations;
    if (f & BENCH_COUNTER_INVERT) out |= benchmark::Counter::kInvert;
    return static_cast<benchmark::Counter::Flags>(out);
}

int64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void timer_start(bench_ctx *ctx) { ctx->started = now_ns(ctx->clock); }

void timer_stop(bench_ctx *ctx) {
    if (ctx->started >= 0) ctx->elapsed += now_ns(ctx->clock) - ctx->started;
    ctx->started = -1;
}

void fail(bench_ctx *ctx, const char *msg) {
    g_any_failed.store(true);
    if (!ctx->state->error_occurred()) ctx->state->SkipWithError(msg);
}

void run_one(benchmark::State &state, const bench_spec &spec) {
    // Google Benchmark measures the calling thread's CPU time (or the wall
    // clock with UseRealTime, or what run() reports with manual time); the
    // shim keeps its own copy of that measurement so that it can report
    // plain per-item counters in ns.
    bench_ctx ctx{&state,
                  spec.use_real_time || spec.manual_time ? CLOCK_MONOTONIC
                                                         : CLOCK_THREAD_CPUTIME_ID,
                  -1, 0};
    void *fixture = spec.arg;
    bool ready = true;
    if (spec.setup != nullptr && spec.setup(spec.arg, &fixture, &ctx) != 0) {
        fail(&ctx, "setup failed");
        ready = false;
    }
    if (ready) {
        // With manual time, run() brackets what it times itself.
        if (!spec.manual_time) timer_start(&ctx);
        for (auto _ : state) {
            if (spec.run(fixture, &ctx) != 0) {
                fail(&ctx, "run failed");
                break;
            }
        }
        if (!spec.manual_time) timer_stop(&ctx);
        if (spec.teardown != nullptr) spec.teardown(fixture, &ctx);
    } else {
        // The loop ends at once after an error; it must still be entered.
        for (auto _ : state) {
        }
    }
}

}  // namespace

extern "C" int bench_register(const bench_spec *spec) {
    if (spec == nullptr || spec->name == nullptr || spec->run == nullptr ||
        spec->min_time < 0) {
        std::fprintf(stderr, "bench_register(%s): invalid spec (no name, no run or min_time < 0)\n",
                     spec && spec->name ? spec->name : "NULL");
        return -1;
    }
    bench_spec copy = *spec;
    benchmark::internal::Benchmark *b = benchmark::RegisterBenchmark(
        spec->name,
        [copy](benchmark::State &state) { run_one(state, copy); });
    b->Unit(to_unit(spec->unit));
    if (spec->manual_time)
        b->UseManualTime();
    else if (spec->use_real_time)
        b->UseRealTime();
    if (spec->min_time > 0) b->MinTime(spec->min_time);
    return 0;
}

extern "C" void bench_counter(bench_ctx *ctx, const char *name, double value,
                              unsigned flags) {
    ctx->state->counters[name] = benchmark::Counter(value, to_flags(flags));
}

extern "C" void bench_counter_ns_per_item(bench_ctx *ctx, const char *name,
                                          double items_per_iteration) {
    // A plain counter in ns (an inverted rate counter would print as
    // seconds).  Aggregates (--benchmark_repetitions) work on it as usual.
    const double iters = static_cast<double>(ctx->state->iterations());
    const double denom = iters * items_per_iteration;
    ctx->state->counters[name] = benchmark::Counter(
        denom > 0 ? static_cast<double>(ctx->elapsed) / denom : 0.0);
}

extern "C" int64_t bench_iterations(const bench_ctx *ctx) {
    return static_cast<int64_t>(ctx->state->iterations());
}

extern "C" void bench_timed_begin(bench_ctx *ctx) { timer_start(ctx); }

extern "C" void bench_timed_end(bench_ctx *ctx) {
    if (ctx->started < 0) return;
    const int64_t span = now_ns(ctx->clock) - ctx->started;
    ctx->elapsed += span;
    ctx->started = -1;
    ctx->state->SetIterationTime(static_cast<double>(span) * 1e-9);
}

extern "C" void bench_pause(bench_ctx *ctx) {
    ctx->state->PauseTiming();
    timer_stop(ctx);
}

extern "C" void bench_resume(bench_ctx *ctx) {
    timer_start(ctx);
    ctx->state->ResumeTiming();
}

extern "C" void bench_error(bench_ctx *ctx, const char *msg) {
    fail(ctx, msg != nullptr ? msg : "error");
}

extern "C" void bench_label(bench_ctx *ctx, const char *label) {
    ctx->state->SetLabel(label != nullptr ? label : "");
}

extern "C" int bench_take_flag(int *argc, char **argv, const char *flag) {
    int found = 0, w = 1;
    for (int i = 1; i < *argc; i++) {
        if (std::strcmp(argv[i], flag) == 0)
            found = 1;
        else
            argv[w++] = argv[i];
    }
    if (w < *argc) argv[w] = nullptr;
    *argc = w;
    return found;
}

extern "C" const char *bench_take_value(int *argc, char **argv,
                                        const char *name) {
    const char *value = nullptr;
    const size_t n = std::strlen(name);
    int w = 1;
    for (int i = 1; i < *argc; i++) {
        if (std::strncmp(argv[i], name, n) == 0 && argv[i][n] == '=')
            value = argv[i] + n + 1;
        else
            argv[w++] = argv[i];
    }
    if (w < *argc) argv[w] = nullptr;
    *argc = w;
    return value;
}

namespace {

// The console report, passing one counter of each result on as well.
class ForwardingReporter : public benchmark::ConsoleReporter {
  public:
    ForwardingReporter(const char *counter, bench_result_fn fn, void *ud)
        : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Color : OO_None),
          counter_(counter), fn_(fn), ud_(ud) {}

    void ReportRuns(const std::vector<Run> &runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run &run : runs) {
            if (run.error_occurred) continue;
            const bool median =
                run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
            if (run.run_type != Run::RT_Iteration && !median) continue;
            auto it = run.counters.find(counter_);
            if (it == run.counters.end()) continue;
            fn_(ud_, run.run_name.str().c_str(), median ? 1 : 0, it->second.value);
        }
    }

  private:
    std::string counter_;
    bench_result_fn fn_;
    void *ud_;
};

bool console_format(int argc, char **argv) {
    const char *flag = "--benchmark_format=";
    for (int i = 1; i < argc; i++)
        if (std::strncmp(argv[i], flag, std::strlen(flag)) == 0 &&
            std::strcmp(argv[i] + std::strlen(flag), "console") != 0)
            return false;
    return true;
}

}  // namespace

extern "C" int bench_main_results(int argc, char **argv, const char *counter,
                                  bench_result_fn fn, void *ud) {
    const bool forward = counter != nullptr && fn != nullptr && console_format(argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    if (forward) {
        ForwardingReporter reporter(counter, fn, ud);
        benchmark::RunSpecifiedBenchmarks(&reporter);
    } else {
        benchmark::RunSpecifiedBenchmarks();
    }
    benchmark::Shutdown();
    return g_any_failed.load() ? 2 : 0;
}

extern "C" int bench_main(int argc, char **argv) {
    return bench_main_results(argc, argv, nullptr, nullptr, nullptr);
}
