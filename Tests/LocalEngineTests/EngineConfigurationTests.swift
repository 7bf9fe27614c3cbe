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
}
