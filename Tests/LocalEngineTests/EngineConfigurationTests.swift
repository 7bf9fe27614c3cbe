import Foundation
import Imaging
import ServiceCore
import Testing

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
}
