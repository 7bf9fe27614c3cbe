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

    @Test func malformedSidesStopTheEngineWithTheVariableNamed() {
        #expect {
            _ = try EngineConfiguration.fromEnvironment(EnvironmentVariables(["LOCAL_ENGINE_SIDES": "300"]))
        } throws: { error in
            guard let error = error as? ConfigurationError else { return false }
            return "\(error)".contains("LOCAL_ENGINE_SIDES") && "\(error)".contains("multiple of 32")
        }
    }
}
