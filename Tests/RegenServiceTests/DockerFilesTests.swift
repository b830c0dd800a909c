import Foundation
import RegenService
import Testing
import Yams

/// No Docker engine runs where the tests run: what can be checked without one is checked
/// here. The compose file parses and names only files that exist; the Dockerfile copies
/// only what exists and builds with the Makefile's release command; the dashboard's every
/// query names metrics regen exports; Prometheus's configuration passes promtool.
@Suite("Docker files", .timeLimit(.minutes(1)))
struct DockerFilesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let docker = root.appendingPathComponent("docker")

    func text(_ path: String) throws -> String { try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8) }

    @Test("The compose file parses; regen has two replicas, an init, a healthcheck on /healthz, a grace period longer than its worst graceful stop; every file it names exists")
    func compose() throws {
        let compose = try #require(try Yams.load(yaml: text("docker/docker-compose.yml")) as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        #expect(Set(services.keys).isSuperset(of: ["kafka", "topics", "regen", "prometheus", "grafana"]))
        let regen = try #require(services["regen"] as? [String: Any])
        #expect((regen["deploy"] as? [String: Any])?["replicas"] as? Int == 2)
        #expect(regen["init"] as? Bool == true)
        let check = ((regen["healthcheck"] as? [String: Any])?["test"] as? [String])?.joined(separator: " ") ?? ""
        #expect(check.contains("/healthz"))
        let grace = try #require((regen["stop_grace_period"] as? String).flatMap { Int($0.dropLast()) })
        let worst = ServiceSettings().shutdownTimeoutMs / 1000 + 30  // regen run's own limit on a graceful stop
        #expect(grace > worst, "stop_grace_period \(grace) s is not longer than regen's worst graceful stop, \(worst) s")
        let environment = regen["environment"] as? [String: Any]
        #expect(environment?["REGEN_SERVICE__HTTP__ADDRESS"] as? String == "0.0.0.0:9464", "Prometheus scrapes from another container")
        let topics = try #require(services["topics"] as? [String: Any])
        let script = (topics["command"] as? [String])?.joined() ?? ""
        for topic in ["regen.changes", "regen.telemetry", "regen.alerts", "regen.dlq"] { #expect(script.contains(topic)) }
        #expect(script.contains("--if-not-exists"))
        #expect(((regen["depends_on"] as? [String: Any])?["topics"] as? [String: String])?["condition"] == "service_completed_successfully")

        // Every local path: build contexts, dockerfiles, bind-mounted files and folders.
        var paths: [String] = []
        for case let service as [String: Any] in services.values {
            if let build = service["build"] as? [String: Any], let context = build["context"] as? String {
                paths.append(context)
                if let dockerfile = build["dockerfile"] as? String { paths.append(context + "/" + dockerfile) }
            }
            for case let volume as String in service["volumes"] as? [Any] ?? [] where volume.hasPrefix(".") {
                paths.append(String(volume.split(separator: ":")[0]))
            }
        }
        #expect(paths.count >= 5)
        for path in paths {
            #expect(FileManager.default.fileExists(atPath: Self.docker.appendingPathComponent(path).path), "\(path) does not exist")
        }
    }

    @Test("The Dockerfile uses Swift 6.3 images, copies only what exists, resolves dependencies in a layer of its own and builds with the Makefile's release command")
    func dockerfile() throws {
        let lines = try text("docker/Dockerfile").split(separator: "\n").map(String.init)
        let images = lines.filter { $0.hasPrefix("FROM ") }
        #expect(images.count == 2 && images.allSatisfy { $0.contains("swift:6.3-") }, "\(images)")
        for line in lines where line.hasPrefix("COPY ") && !line.contains("--from") {
            let source = line.split(separator: " ")[1]
            #expect(FileManager.default.fileExists(atPath: Self.root.appendingPathComponent(String(source)).path), "\(line)")
        }
        let resolve = try #require(lines.firstIndex { $0.contains("swift package resolve") })
        let sources = try #require(lines.firstIndex { $0.hasPrefix("COPY Sources") })
        #expect(resolve < sources, "dependencies resolve before the sources are copied")
        let makefile = try text("Makefile").split(separator: "\n")
        let release = try #require(makefile.firstIndex { $0.hasPrefix("release:") })
        let command = makefile[release + 1].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "$(SWIFT)", with: "swift")
        #expect(lines.contains { $0.contains(command) }, "the Dockerfile does not run the Makefile's `\(command)`")
        let ignored = try text(".dockerignore").split(separator: "\n")
        #expect(ignored.contains(".build/") && ignored.contains(".git/"))
    }

    @Test("The Grafana dashboard parses and every metric its queries name is one regen exports")
    func dashboard() throws {
        let data = try Data(contentsOf: Self.docker.appendingPathComponent("grafana/dashboards/regen.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let queries = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(queries.count >= 5)
        let titles = panels.compactMap { $0["title"] as? String }.joined(separator: " ").lowercased()
        for topic in ["throughput", "p95", "lag", "dead letters", "breaker"] { #expect(titles.contains(topic), "no \(topic) panel") }
        var named = Set<String>()
        for query in queries {
            for match in query.matches(of: /\b(regen_[a-z_]+|process_[a-z_]+)\b/) {
                var name = String(match.output.1)
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && MetricCatalogue.help[name] == nil {
                    name = String(name.dropLast(suffix.count))
                }
                named.insert(name)
            }
        }
        #expect(named.count >= 8)
        for name in named { #expect(MetricCatalogue.help[name] != nil, "\(name) is not a metric regen exports") }
    }

    @Test("Prometheus's scrape configuration passes promtool check config")
    func prometheusConfiguration() throws {
        guard let promtool = findExecutable("promtool") else {
            print("DockerFilesTests: promtool not installed (apt-get install prometheus); skipping its check")
            return
        }
        let check = try runTool(promtool, ["check", "config", Self.docker.appendingPathComponent("prometheus.yml").path], input: Data())
        #expect(check.status == 0, "\(check.output)")
    }
}
