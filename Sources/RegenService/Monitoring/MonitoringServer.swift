import Foundation
import Hummingbird
import Logging
import Orchestration
import Prometheus
import ServiceLifecycle

/// The HTTP endpoints of `regen run`, served by Hummingbird:
/// - `GET /healthz`: liveness, 200 or 503 with the failed checks as JSON;
/// - `GET /readyz`: readiness, likewise;
/// - `GET /metrics`: Prometheus text format;
/// - `GET /stats`: the orchestration statistics as JSON.
public enum MonitoringServer {
    /// A ServiceLifecycle service serving `service`'s endpoints at `settings.address`.
    /// `onListening` receives the address actually bound (useful with port 0).
    public static func make(
        for service: RegenService, settings: HTTPSettings, registry: PrometheusCollectorRegistry, logger: Logger,
        onListening: @escaping @Sendable (String) -> Void = { _ in }
    ) -> some Service {
        let router = Router()
        router.get("healthz") { _, _ in probeResponse(service.liveness()) }
        router.get("readyz") { _, _ in probeResponse(service.readiness()) }
        router.get("metrics") { _, _ in
            service.sampleMetrics()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("stats") { _, _ in json(.ok, JSONValue.object(service.statsDocument)) }
        let (host, port) = settings.hostAndPort ?? ("127.0.0.1", 9464)
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "regen"),
            onServerRunning: { channel in
                let bound = channel.localAddress.map { "\($0.ipAddress ?? host):\($0.port ?? port)" } ?? settings.address
                onListening(bound)
            },
            logger: logger)
    }

    private static func probeResponse(_ result: ProbeResult) -> Response {
        result.isOK
            ? json(.ok, ["status": "ok"] as JSONValue)
            : json(.serviceUnavailable, JSONValue.object([
                "status": "failing",
                "failures": .array(result.failures.map { .object(["check": .string($0.check), "detail": .string($0.detail)]) }),
            ]))
    }

    private static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
