internal import CRdKafka
#if canImport(Glibc)
import Glibc
#endif

/// Facts about the librdkafka this process runs with.
public enum Librdkafka {
    /// Its version, as librdkafka spells it (for example `2.0.2`).
    public static var version: String { String(cString: rd_kafka_version_str()) }

    /// Caps glibc's malloc arenas at two, unless `MALLOC_ARENA_MAX` is set; call it first
    /// thing in `main`. glibc gives each thread that allocates under contention an arena
    /// of its own, up to eight per core, and memory freed into one arena is not reused by
    /// another: with librdkafka's broker threads allocating fetched messages and other
    /// threads freeing them, a drain's peak RSS measured 20-30 MB higher than with two
    /// arenas, at the same speed. Does nothing on other C libraries.
    public static func limitMallocArenas() {
        #if os(Linux)
        if getenv("MALLOC_ARENA_MAX") == nil { _ = mallopt(M_ARENA_MAX, 2) }
        #endif
    }
}
