import Foundation
import Imaging
import Testing

/// `LOCAL_ENGINE_MODEL` names a model or gives a file; the install script fetches what the default names.
@Suite(.blockingWork) struct ModelSettingTests {
    @Test func aNameIsFoundInTheModelFolder() {
        #expect(PipelineConfiguration.modelPath(for: "u2net", directory: "/srv/models") == "/srv/models/u2net.onnx")
        #expect(PipelineConfiguration.modelPath(for: " u2netp ", directory: "/srv/models") == "/srv/models/u2netp.onnx")
    }

    @Test func emptyMeansTheDefaultModel() {
        #expect(PipelineConfiguration.modelPath(for: "", directory: "/m") == "/m/\(PipelineConfiguration.defaultModel).onnx")
    }

    @Test func aPathIsTakenAsGiven() {
        #expect(PipelineConfiguration.modelPath(for: "/opt/mine.onnx", directory: "/m") == "/opt/mine.onnx")
        #expect(PipelineConfiguration.modelPath(for: "models/u2net", directory: "/m") == "models/u2net")
        #expect(PipelineConfiguration.modelPath(for: "mine.onnx", directory: "/m") == "mine.onnx")
    }

    @Test func withoutAFolderTheRepositorysModelsAreUsed() {
        let path = PipelineConfiguration.modelPath(for: "u2net")
        #expect(path == Fixtures.repoRoot.appendingPathComponent(".var/models/u2net.onnx").path)
    }

    /// The install script fetches the model the engine loads when nothing is set.
    @Test func theInstallScriptFetchesTheDefaultModel() throws {
        let script = try String(contentsOf: Fixtures.repoRoot.appendingPathComponent("scripts/fetch-model.sh"), encoding: .utf8)
        #expect(script.contains("\nDEFAULT_MODEL=\(PipelineConfiguration.defaultModel)\n"))
        #expect(script.contains("\n        \(PipelineConfiguration.defaultModel)) echo \""), "no source for the default model")
    }

    /// The names the engine's tests and docs use are the names the script fetches (`--all`, which
    /// `make test` runs), each with a source.
    @Test func theScriptKnowsEveryModelByName() throws {
        let script = try String(contentsOf: Fixtures.repoRoot.appendingPathComponent("scripts/fetch-model.sh"), encoding: .utf8)
        #expect(script.contains("\nKNOWN_MODELS=(\(PipelineConfiguration.knownModels.joined(separator: " ")))\n"))
        #expect(PipelineConfiguration.knownModels.contains(PipelineConfiguration.defaultModel))
        for name in PipelineConfiguration.knownModels {
            #expect(script.contains("\n        \(name)) echo \""), "no source for \(name)")
        }
        let makefile = try String(contentsOf: Fixtures.repoRoot.appendingPathComponent("Makefile"), encoding: .utf8)
        #expect(makefile.contains("fetch-model.sh --all"), "make test-models fetches every model")
    }
}
