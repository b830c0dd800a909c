internal import CRdKafka

/// An error from the Kafka layer, carrying librdkafka's own code, name and message.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; new kinds may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case configuration, librdkafka, notAssigned, closed, timedOut, invalidArgument
        }

        private let kind: Kind

        /// A configuration property was rejected.
        public static let configuration = Code(kind: .configuration)
        /// librdkafka or the broker reported an error; see `responseCode`.
        public static let librdkafka = Code(kind: .librdkafka)
        /// The operation named a partition this consumer does not own.
        public static let notAssigned = Code(kind: .notAssigned)
        /// The client was closed.
        public static let closed = Code(kind: .closed)
        /// The operation did not complete within its deadline.
        public static let timedOut = Code(kind: .timedOut)
        /// An argument was outside what the operation accepts.
        public static let invalidArgument = Code(kind: .invalidArgument)

        public var description: String { String(describing: kind) }
    }

    /// The kind of failure.
    public let code: Code
    /// librdkafka's error code (`rd_kafka_resp_err_t`), `.noError` when the failure is ours.
    public let responseCode: KafkaResponseCode
    /// What went wrong, in librdkafka's words where it said something.
    public let message: String
    /// The configuration property at fault, for `.configuration` errors.
    public let property: String?
    /// Whether the same operation may succeed when tried again.
    public let isRetriable: Bool
    /// Whether the client is unusable and must be recreated.
    public let isFatal: Bool
    /// Where the error was raised.
    public let file: String
    /// The line where the error was raised.
    public let line: Int

    public var description: String {
        var text = "KafkaError.\(code)"
        if responseCode != .noError { text += " [\(responseCode.name)]" }
        if let property { text += " property '\(property)'" }
        return text + ": \(message)"
    }

    private init(
        code: Code, responseCode: KafkaResponseCode = .noError, message: String, property: String? = nil,
        isRetriable: Bool = false, isFatal: Bool = false, file: String, line: Int
    ) {
        self.code = code
        self.responseCode = responseCode
        self.message = message
        self.property = property
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.file = file
        self.line = line
    }

    /// A property was rejected by librdkafka (unknown name or invalid value).
    public static func configuration(
        property: String, message: String, file: String = #fileID, line: Int = #line
    ) -> KafkaError {
        KafkaError(code: .configuration, message: message, property: property, file: file, line: line)
    }

    /// A librdkafka or broker error code.
    public static func librdkafka(
        _ responseCode: KafkaResponseCode, context: String? = nil, isFatal: Bool = false,
        file: String = #fileID, line: Int = #line
    ) -> KafkaError {
        let detail = responseCode.message
        return KafkaError(
            code: .librdkafka, responseCode: responseCode,
            message: context.map { "\($0): \(detail)" } ?? detail,
            isRetriable: !isFatal && responseCode.isRetriable, isFatal: isFatal, file: file, line: line)
    }

    /// Partitions named in a commit, seek or pause that this consumer does not own.
    public static func notAssigned(
        _ partitions: [TopicPartition], file: String = #fileID, line: Int = #line
    ) -> KafkaError {
        let names = partitions.map(\.description).sorted().joined(separator: ", ")
        return KafkaError(
            code: .notAssigned, message: "not assigned to this consumer: \(names)", file: file, line: line)
    }

    /// The client was closed before or during the operation.
    public static func closed(_ what: String, file: String = #fileID, line: Int = #line) -> KafkaError {
        KafkaError(code: .closed, message: "\(what) is closed", file: file, line: line)
    }

    /// A deadline passed.
    public static func timedOut(_ what: String, file: String = #fileID, line: Int = #line) -> KafkaError {
        KafkaError(code: .timedOut, message: what, isRetriable: true, file: file, line: line)
    }

    /// An argument the operation cannot accept.
    public static func invalidArgument(_ what: String, file: String = #fileID, line: Int = #line) -> KafkaError {
        KafkaError(code: .invalidArgument, message: what, file: file, line: line)
    }

    /// Turns an `rd_kafka_error_t` into a `KafkaError` and destroys it.
    static func consuming(
        _ error: OpaquePointer, context: String, file: String = #fileID, line: Int = #line
    ) -> KafkaError {
        defer { rd_kafka_error_destroy(error) }
        let code = KafkaResponseCode(rawValue: rd_kafka_error_code(error).rawValue)
        let message = String(cString: rd_kafka_error_string(error))
        return KafkaError(
            code: .librdkafka, responseCode: code, message: "\(context): \(message)",
            isRetriable: rd_kafka_error_is_retriable(error) != 0 || code.isRetriable,
            isFatal: rd_kafka_error_is_fatal(error) != 0, file: file, line: line)
    }
}

/// A librdkafka error code (`rd_kafka_resp_err_t`): broker codes are positive, client codes negative.
public struct KafkaResponseCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The numeric value of `rd_kafka_resp_err_t`.
    public let rawValue: Int32

    /// Creates a code from the numeric value of `rd_kafka_resp_err_t`.
    public init(rawValue: Int32) { self.rawValue = rawValue }

    init(_ err: rd_kafka_resp_err_t) { self.rawValue = err.rawValue }

    var cValue: rd_kafka_resp_err_t { rd_kafka_resp_err_t(rawValue: rawValue) }

    /// librdkafka's symbolic name, such as `REBALANCE_IN_PROGRESS` or `_TRANSPORT`.
    public var name: String { String(cString: rd_kafka_err2name(cValue)) }
    /// librdkafka's human-readable description.
    public var message: String { String(cString: rd_kafka_err2str(cValue)) }
    public var description: String { name }

    public static let noError = Self(RD_KAFKA_RESP_ERR_NO_ERROR)
    public static let transport = Self(RD_KAFKA_RESP_ERR__TRANSPORT)
    public static let allBrokersDown = Self(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    public static let messageTimedOut = Self(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
    public static let timedOut = Self(RD_KAFKA_RESP_ERR__TIMED_OUT)
    public static let queueFull = Self(RD_KAFKA_RESP_ERR__QUEUE_FULL)
    public static let requestTimedOut = Self(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
    public static let notLeaderForPartition = Self(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
    public static let leaderNotAvailable = Self(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
    public static let coordinatorNotAvailable = Self(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE)
    public static let notCoordinator = Self(RD_KAFKA_RESP_ERR_NOT_COORDINATOR)
    public static let coordinatorLoadInProgress = Self(RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS)
    public static let rebalanceInProgress = Self(RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS)
    public static let illegalGeneration = Self(RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION)
    public static let unknownMemberID = Self(RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID)
    public static let notEnoughReplicas = Self(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)
    public static let topicAlreadyExists = Self(RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
    public static let unknownTopicOrPartition = Self(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    public static let networkException = Self(RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION)

    /// The code librdkafka names `name` (`REQUEST_TIMED_OUT`, `_TRANSPORT`; case-insensitive),
    /// or nil when there is none.
    public init?(name: String) {
        var descriptions: UnsafePointer<rd_kafka_err_desc>?
        var count = 0
        rd_kafka_get_err_descs(&descriptions, &count)
        guard let descriptions else { return nil }
        let wanted = name.uppercased()
        for index in 0..<count {
            guard let cName = descriptions[index].name, String(cString: cName) == wanted else { continue }
            self.init(descriptions[index].code)
            return
        }
        return nil
    }

    /// Transient conditions: the same request may succeed later. Generation and membership
    /// errors are not here: after them the partitions may belong to another member.
    public var isRetriable: Bool { Self.retriable.contains(self) }

    private static let retriable: Set<KafkaResponseCode> = [
        .transport, .allBrokersDown, .timedOut, .queueFull, .requestTimedOut, .notLeaderForPartition,
        .leaderNotAvailable, .coordinatorNotAvailable, .notCoordinator, .coordinatorLoadInProgress,
        .rebalanceInProgress, .notEnoughReplicas, .networkException, .messageTimedOut,
    ]
}
