// regen's allocator on Linux: jemalloc, linked into the regen executable (see Package.swift).
//
// Why: regen's threads hand records to each other. librdkafka's poll thread decodes each
// record and the cooperative pool's threads process and free it. glibc's malloc serves
// each thread from an arena of its own, and a free from another thread takes the owning
// arena's lock, which the decoding thread holds as it allocates: a no-op drain spent about
// 40 % of its CPU in malloc, free and the futex waits behind them. jemalloc frees across
// threads without that lock (BENCHMARKS.md, "Three stalls in a row, and the allocator").
//
// jemalloc reads its settings from this symbol when the process starts; MALLOC_CONF in the
// environment still overrides them. Two arenas, for two cores' worth of threads, and
// unused pages returned after a second (jemalloc's default keeps them ten): together they
// keep a drain's peak RSS where glibc kept it.
#if defined(__linux__)
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif
