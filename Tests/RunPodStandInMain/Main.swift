import Foundation
import Shared
import TestSupport

/// `make runpod-stand-in [RUNPOD_STAND_IN_PORT=8095] [RUNPOD_STAND_IN_KEY=rpa_…]`: the tests'
/// RunPod stand-in on loopback, speaking RunPod's protocol for FLUX.1 Kontext [dev] (`/run`,
/// `/status`, `/cancel`, `/health`, Bearer keys). Every job fetches its input as a worker does and
/// completes with a small transparent PNG and `cost` 0.025. Point `RUNPOD_ENDPOINT_URL` at the
/// endpoint it prints and switch the backend with the key (README: "Try it without an account").
@main
struct RunPodStandInMain {
    static func main() async throws {
        let environment = ProcessInfo.processInfo.environment
        let port = environment["RUNPOD_STAND_IN_PORT"].flatMap(Int.init) ?? 8095
        let key = environment["RUNPOD_STAND_IN_KEY"] ?? "rpa_STANDIN_0123456789abcdef"
        let standIn = try await RunPodStandIn(
            scenarios: ["default": .init(jobs: [[.completed(["image_url": "$RESULT", "cost": 0.025])]], fetchesInput: true)],
            acceptedKeys: [key], port: port)
        guard await HTTPProbe.status(of: standIn.endpointURL + "/health") != nil else {
            FileHandle.standardError.write(Data("the stand-in did not start on 127.0.0.1:\(port) (is the port taken?)\n".utf8))
            exit(1)
        }
        FileHandle.standardOutput.write(Data("RunPod stand-in: RUNPOD_ENDPOINT_URL=\(standIn.endpointURL)  key: \(key)  (Ctrl-C stops it)\n".utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
