import Foundation
import Imaging
import RunPod
import Shared
import ServiceCore
import Testing
import TestSupport

@testable import LocalEngine

/// The engine's settings are read once at start; a malformed one stops it with the variable named.
struct EngineConfigurationTests {
    @Test func theModelsInputSidesAreASetting() throws {
        let unset = try EngineConfiguration.fromEnvironment(EnvironmentVariables([:]))
        #expect(unset.inputSides == PipelineConfiguration.defaultInputSides)
        let ensemble = try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_SIDES": "448,320"]))
        #expect(ensemble.inputSides == [320, 448])
    }

    @Test func theSegmentationCacheIsASetting() throws {
        #expect(try EngineConfiguration.fromEnvironment(EnvironmentVariables([:])).segmentationCacheEntries == 16)
        let off = try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_SEGMENTATION_CACHE": "0"]))
        #expect(off.segmentationCacheEntries == 0)
        for bad in ["-1", "many", "5000"] {
            #expect {
                _ = try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_SEGMENTATION_CACHE": bad]))
            } throws: { "\($0)".contains("LOCAL_ENGINE_SEGMENTATION_CACHE") }
        }
    }

    @Test func malformedSidesStopTheEngineWithTheVariableNamed() {
        #expect {
            _ = try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_SIDES": "300"]))
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return "\(error)".contains("LOCAL_ENGINE_SIDES") && "\(error)".contains("multiple of 32")
        }
    }

    /// A model asked for by name or path must be there, or the engine does not start (an operator who
    /// mistyped it would otherwise get the classical segmenter's cut-outs without a word); the
    /// default model missing is the documented fallback.
    @Test func aModelThatIsNotThereStopsTheEngineWhenItWasAskedFor() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("no-models-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: empty) }
        for (model, says) in [("u2net", "scripts/fetch-model.sh u2net"), ("u2netq", "no model file at"), ("/nowhere/model.onnx", "/nowhere/model.onnx")] {
            #expect {
                _ = try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_MODEL": model, "LOCAL_ENGINE_MODEL_DIR": empty.path]))
            } throws: { error in
                guard let error = error as? ConfigurationError else { return false }
                return "\(error)".contains("LOCAL_ENGINE_MODEL") && "\(error)".contains(says)
            }
        }
        // Not asked for: the default's path, there or not (the pipeline reports the fallback).
        let unset = try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_MODEL_DIR": empty.path]))
        #expect(unset.modelPath == empty.appendingPathComponent("\(PipelineConfiguration.defaultModel).onnx").path)
        // The benchmark mode renders nothing, so it needs no model.
        let simulated = try EngineConfiguration.fromEnvironment(
            EnvironmentVariables(["LOCAL_ENGINE_MODEL": "u2net", "LOCAL_ENGINE_MODEL_DIR": empty.path, "LOCAL_ENGINE_SIMULATE_MS": "10"]))
        #expect(simulated.simulatedLatency == .milliseconds(10))
        // A model that is there is taken.
        let file = empty.appendingPathComponent("mine.onnx")
        try Data([0]).write(to: file)
        #expect(try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_MODEL": file.path])).modelPath == file.path)
    }

    /// `LOCAL_ENGINE_SIMULATE_HOLD` holds simulated jobs only, and is an absolute path.
    @Test func theHoldIsForSimulatedJobsOnly() throws {
        let held = try EngineConfiguration.fromEnvironment(
            EnvironmentVariables(["LOCAL_ENGINE_SIMULATE_MS": "0", "LOCAL_ENGINE_SIMULATE_HOLD": "/tmp/hold"]))
        #expect(held.simulatedHold == "/tmp/hold")
        #expect(try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_SIMULATE_MS": "0"])).simulatedHold == nil)
        for (environment, says) in [
            (["LOCAL_ENGINE_SIMULATE_HOLD": "/tmp/hold"], "LOCAL_ENGINE_SIMULATE_MS"),
            (["LOCAL_ENGINE_SIMULATE_MS": "0", "LOCAL_ENGINE_SIMULATE_HOLD": "hold"], "absolute path"),
        ] {
            #expect {
                _ = try EngineConfiguration.fromEnvironment(EnvironmentVariables(environment))
            } throws: { error in
                guard let error = error as? ConfigurationError else { return false }
                return "\(error)".contains("LOCAL_ENGINE_SIMULATE_HOLD") && "\(error)".contains(says)
            }
        }
    }

    /// A held simulated job ends only once its hold file is gone, and a cancel still ends it.
    @Test func aHeldSimulatedJobWaitsForItsRelease() async throws {
        let hold = FileManager.default.temporaryDirectory.appendingPathComponent("hold-\(UUID().uuidString)")
        try Data().write(to: hold)
        defer { try? FileManager.default.removeItem(at: hold) }
        let renderer = SimulatedRenderer(latency: .zero, hold: hold.path)
        let image = try TestSupport.Samples.bytes("dev02", "input.jpg")
        let options = try StudioShotInput(parsing: .object(["image": .string("x")]))
        let ended = LockedValue(false)
        let job = Task {
            defer { ended.withLock { $0 = true } }
            return try await renderer.render(image, options: options)
        }
        try await Task.sleep(for: .milliseconds(400))
        #expect(ended.value == false, "held while the file is there")
        try FileManager.default.removeItem(at: hold)
        let rendered = try await job.value
        #expect(rendered.format == "jpeg" && rendered.width == 1024, "released: the input handed back")

        try Data().write(to: hold)
        let cancelled = Task { try await renderer.render(image, options: options) }
        try await Task.sleep(for: .milliseconds(100))
        cancelled.cancel()
        await #expect(throws: JobFailure.self, "a cancel ends a held job") { _ = try await cancelled.value }
    }
}
