extension RegenerationOrchestrator {
    /// The health loop: one check per interval on the injected clock, until stopped.
    func makeHealthLoop() -> Task<Void, Never> {
        let interval = Duration.milliseconds(Int(config.healthCheckIntervalSecs * 1000))
        let clock = environment.clock
        // Owned by the orchestrator: cancelled and awaited by stop().
        return Task { [weak self] in
            while !Task.isCancelled {
                do { try await clock.sleep(for: interval) } catch { return }
                guard let self else { return }
                await self.runHealthCheck()
            }
        }
    }

    /// Runs one health check now: emits `performance_metric`, and warnings or alerts for
    /// what it finds. Never throws: a failing check is logged, not fatal.
    public func runHealthCheck() async {
        let check = HealthCheck(
            policy: config.health, targetCycleMs: Double(config.targetCycleMs),
            interval: .milliseconds(Int(max(0.001, config.healthCheckIntervalSecs) * 1000)))
        let now = recorder.snapshot
        let pending = await environment.pendingWork()
        let findings = check.evaluate(now, since: healthBaseline, pendingWork: pending, memory: environment.residentMemory())
        healthBaseline = now
        logger.info(
            "health",
            metadata: [
                "cycles": "\(now.totalCycles)", "avgCycleMs": "\(Int(now.avgCycleTimeMs))",
                "successRate": "\(findings.metric["success_rate"]?.numberValue ?? 1)",
            ])
        await emit(.performanceMetric, component: "health", data: findings.metric, tags: ["kind": "health_check"])
        for warning in findings.warnings {
            logger.warning("health warning: \(warning.reason)")
            await emit(.performanceWarning, component: "health", data: warning.data, tags: ["reason": warning.reason, "severity": "warning"])
        }
        for alert in findings.alerts {
            logger.error("health alert: \(alert.reason)")
            await emit(.performanceAlert, component: "health", data: alert.data, tags: ["reason": alert.reason, "severity": "alert"])
        }
    }
}
