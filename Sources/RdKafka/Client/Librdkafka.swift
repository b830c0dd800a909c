internal import CRdKafka

/// Facts about the librdkafka this process runs with.
public enum Librdkafka {
    /// Its version, as librdkafka spells it (for example `2.0.2`).
    public static var version: String { String(cString: rd_kafka_version_str()) }

    /// Sets glibc's malloc to two arenas and maps blocks of 128 KiB and more on their own,
    /// the settings `regen broker` ran the mock cluster with before regen took jemalloc:
    /// `regen-bench broker` keeps them so its baselines stay comparable. Does nothing on other
    /// C libraries, or under another allocator.
    public static func useBaselineMallocSettings() {
        #if os(Linux) && canImport(Glibc)
        _ = mallopt(M_ARENA_MAX, 2)
        _ = mallopt(M_MMAP_THRESHOLD, 128 * 1024)
        #endif
    }
}
