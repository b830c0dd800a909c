internal import CRdKafka

/// Facts about the librdkafka this process runs with.
public enum Librdkafka {
    /// Its version, as librdkafka spells it (for example `2.0.2`).
    public static var version: String { String(cString: rd_kafka_version_str()) }
}
