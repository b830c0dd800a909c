/// How a client reaches the cluster: brokers, identity, security, and any other
/// librdkafka property. Shared by consumers, producers and the admin client.
public struct KafkaConnection: Sendable, Hashable {
    /// Transport security between client and brokers.
    public enum SecurityProtocol: String, Sendable, Hashable, CaseIterable, Codable {
        case plaintext, ssl
        case saslPlaintext = "sasl_plaintext"
        case saslSSL = "sasl_ssl"
    }

    /// SASL credentials.
    public struct SASL: Sendable, Hashable {
        /// `PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`, `GSSAPI` or `OAUTHBEARER`.
        public var mechanism: String
        /// The user name.
        public var username: String?
        /// The password; never printed.
        public var password: String?

        /// Creates SASL settings.
        public init(mechanism: String = "PLAIN", username: String? = nil, password: String? = nil) {
            self.mechanism = mechanism
            self.username = username
            self.password = password
        }
    }

    /// TLS files and the private key's password.
    public struct TLS: Sendable, Hashable {
        /// CA bundle to verify brokers with.
        public var caLocation: String?
        /// Client certificate, for mutual TLS.
        public var certificateLocation: String?
        /// Client private key, for mutual TLS.
        public var keyLocation: String?
        /// The private key's password; never printed.
        public var keyPassword: String?

        /// Creates TLS settings.
        public init(
            caLocation: String? = nil, certificateLocation: String? = nil, keyLocation: String? = nil,
            keyPassword: String? = nil
        ) {
            self.caLocation = caLocation
            self.certificateLocation = certificateLocation
            self.keyLocation = keyLocation
            self.keyPassword = keyPassword
        }
    }

    /// `host:port` of one or more brokers to bootstrap from.
    public var bootstrapServers: [String]
    /// The client id brokers see in their logs and quotas.
    public var clientID: String
    /// Transport security.
    public var securityProtocol: SecurityProtocol
    /// SASL settings, for the `sasl_*` protocols.
    public var sasl: SASL?
    /// TLS settings, for the `*ssl` protocols.
    public var tls: TLS?
    /// Any other librdkafka property, applied after the typed ones (so it wins).
    public var properties: [String: String]

    /// Creates connection settings; every argument has a default.
    public init(
        bootstrapServers: [String] = ["localhost:9092"], clientID: String = "regen",
        securityProtocol: SecurityProtocol = .plaintext, sasl: SASL? = nil, tls: TLS? = nil,
        properties: [String: String] = [:]
    ) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.securityProtocol = securityProtocol
        self.sasl = sasl
        self.tls = tls
        self.properties = properties
    }

    /// The typed settings as librdkafka properties, in the order they are applied.
    var typedProperties: [(String, String)] {
        var result: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers.joined(separator: ",")),
            ("client.id", clientID),
            ("security.protocol", securityProtocol.rawValue),
        ]
        if let sasl {
            result.append(("sasl.mechanisms", sasl.mechanism))
            if let username = sasl.username { result.append(("sasl.username", username)) }
            if let password = sasl.password { result.append(("sasl.password", password)) }
        }
        if let tls {
            let pairs: [(String, String?)] = [
                ("ssl.ca.location", tls.caLocation), ("ssl.certificate.location", tls.certificateLocation),
                ("ssl.key.location", tls.keyLocation), ("ssl.key.password", tls.keyPassword),
            ]
            result += pairs.compactMap { name, value in value.map { (name, $0) } }
        }
        return result
    }
}

/// Properties whose values are credentials and are never printed or logged.
public enum KafkaSecrets {
    /// Whether `property`'s value must be redacted.
    public static func isSecret(_ property: String) -> Bool {
        let name = property.lowercased()
        return name.contains("password") || name.contains("secret") || name == "ssl.key.pem"
            || name == "sasl.oauthbearer.config" || name == "ssl_key" || name.hasSuffix(".key.pem")
    }

    /// `value`, or a placeholder when `property` is a secret.
    public static func redacted(_ property: String, _ value: String) -> String {
        isSecret(property) ? "[redacted]" : value
    }
}
