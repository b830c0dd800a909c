internal import CRdKafka
import Logging
import Synchronization

/// A librdkafka handle. `@unchecked Sendable`: librdkafka documents `rd_kafka_t` as
/// thread-safe, and every blocking call on it is made from a `KafkaThread`.
struct KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// The Swift state C callbacks reach through librdkafka's opaque pointer
/// (`rd_kafka_conf_set_opaque`). Its owner keeps it alive until after `rd_kafka_destroy`,
/// so the unretained pointer the callbacks hold is always valid.
final class ClientContext: Sendable {
    let logger: Logger
    let rebalance: RebalanceCoordinator?
    private let fatal = Mutex<KafkaError?>(nil)
    private let latestStatistics = Mutex<KafkaStatistics?>(nil)

    init(logger: Logger, rebalance: RebalanceCoordinator? = nil) {
        self.logger = logger
        self.rebalance = rebalance
    }

    /// The fatal error librdkafka raised, if any: the client is then unusable.
    var fatalError: KafkaError? { fatal.withLock { $0 } }

    /// What the statistics callback last reported, if `statistics.interval.ms` is set.
    var statistics: KafkaStatistics? { latestStatistics.withLock { $0 } }

    func recordStatistics(_ json: UnsafeBufferPointer<UInt8>) {
        guard let parsed = KafkaStatistics.parse(json, at: .now) else {
            logger.debug("librdkafka statistics not understood; ignored")
            return
        }
        latestStatistics.withLock { $0 = parsed }
    }

    func recordFatal(_ handle: OpaquePointer) {
        let (code, message) = withErrorBuffer { rd_kafka_fatal_error(handle, $0, $1) }
        let error = KafkaError.librdkafka(KafkaResponseCode(code), context: message, isFatal: true)
        fatal.withLock { $0 = error }
        logger.critical("librdkafka fatal error", metadata: ["error": "\(error)"])
    }

    /// Installs the callbacks every client shares and points them at this context.
    func install(on conf: OpaquePointer) {
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(self).toOpaque())
        rd_kafka_conf_set_log_cb(conf, logCallback)
        rd_kafka_conf_set_error_cb(conf, errorCallback)
        rd_kafka_conf_set_stats_cb(conf, statisticsCallback)
    }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext? {
        opaque.map { Unmanaged<ClientContext>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Creates a client of `type` from `properties`, with this context installed.
    /// - Throws: `KafkaError.configuration` for a rejected property, or `.librdkafka` when creation fails.
    func makeHandle(
        _ type: rd_kafka_type_t, _ properties: KafkaPropertyList, configure: (OpaquePointer) -> Void = { _ in }
    ) throws -> OpaquePointer {
        let conf = try properties.makeConf()
        install(on: conf)
        if let rebalance { rebalance.install(on: conf) }
        configure(conf)
        let (handle, message) = withErrorBuffer { rd_kafka_new(type, conf, $0, $1) }
        guard let handle else {
            rd_kafka_conf_destroy(conf)  // not consumed when rd_kafka_new fails
            throw KafkaError.configuration(property: "(client)", message: message)
        }
        return handle
    }
}

/// librdkafka's syslog levels mapped onto swift-log's.
private func logLevel(_ syslog: Int32) -> Logger.Level {
    switch syslog {
    case ...2: .critical
    case 3: .error
    case 4: .warning
    case 5, 6: .info
    default: .debug
    }
}

private let logCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    handle, level, facility, message in
    guard let handle, let context = ClientContext.from(rd_kafka_opaque(handle)) else { return }
    context.logger.log(
        level: logLevel(level), "\(message.map { String(cString: $0) } ?? "")",
        metadata: ["librdkafka.facility": "\(facility.map { String(cString: $0) } ?? "")"])
}

private let errorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    handle, code, reason, opaque in
    guard let context = ClientContext.from(opaque) else { return }
    let responseCode = KafkaResponseCode(rawValue: code)
    if responseCode == KafkaResponseCode(RD_KAFKA_RESP_ERR__FATAL), let handle {
        context.recordFatal(handle)
        return
    }
    // Transport and all-brokers-down errors are informational: librdkafka reconnects by itself.
    context.logger.warning(
        "kafka client error", metadata: ["code": "\(responseCode.name)", "reason": "\(reason.map { String(cString: $0) } ?? "")"])
}

/// Runs on whichever thread serves the client's main queue (a consumer's poll thread).
/// Returning 0 lets librdkafka free the JSON.
private let statisticsCallback: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?, Int, UnsafeMutableRawPointer?) -> Int32 = {
    _, json, length, opaque in
    guard let json, let context = ClientContext.from(opaque) else { return 0 }
    json.withMemoryRebound(to: UInt8.self, capacity: length) { context.recordStatistics(UnsafeBufferPointer(start: $0, count: length)) }
    return 0
}
