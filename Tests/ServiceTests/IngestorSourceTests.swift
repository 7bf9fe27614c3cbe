import Database
import Foundation
import Logging
@testable import ResultIngestor
import Shared
import Testing

/// Which photo a RunPod result is checked against and sized like (docs/fidelity.md): the file its
/// job was made from, when that is one of the media's versions; otherwise the media's current file.
@Suite("The photo a result was made from")
struct IngestorSourceTests {
    static let mediaId = UUID()
    static let current = StoredFile(path: "cc/00/current.png", mimeType: "image/png", width: 1024, height: 1024, bytes: 10, sha256: "c")
    static let older = StoredFile(path: "aa/00/older.jpg", mimeType: "image/jpeg", width: 2048, height: 1536, bytes: 20, sha256: "a")

    static func rendered(source: JobSource?) -> GenerationRendered {
        GenerationRendered(
            jobId: UUID(), mediaId: mediaId, backend: .runpod, backendJobId: "rp-1", outputUrl: "https://example.com/r.png",
            options: ResolvedGenerationOptions(
                shadowStyle: .soft, backgroundColor: BackgroundColor("#FFFFFF")!, customInstructions: nil, removeWatermark: true, upscale: .x1),
            source: source)
    }

    /// Looks files up as the store would: `versions` are the media's own; records what was asked.
    final class Lookups: @unchecked Sendable {
        var versions: [String: StoredFile]
        var asked: [(UUID, String)] = []
        var currentAsked = 0
        init(versions: [StoredFile]) { self.versions = Dictionary(uniqueKeysWithValues: versions.map { ($0.path, $0) }) }

        func find(_ rendered: GenerationRendered) async throws -> StoredFile? {
            try await ResultHandler.sourceFile(
                of: rendered,
                version: { media, path in
                    self.asked.append((media, path))
                    return media == IngestorSourceTests.mediaId ? self.versions[path] : nil
                },
                current: { media in
                    self.currentAsked += 1
                    return media == IngestorSourceTests.mediaId ? IngestorSourceTests.current : nil
                },
                logger: Logger(label: "test"))
        }
    }

    @Test func theFileTheJobWasMadeFromIsTheOneCompared() async throws {
        let lookups = Lookups(versions: [Self.current, Self.older])
        let source = JobSource(path: Self.older.path, width: 2048, height: 1536)
        #expect(try await lookups.find(Self.rendered(source: source)) == Self.older, "not the current file")
        #expect(lookups.asked.map(\.1) == [Self.older.path] && lookups.asked.allSatisfy { $0.0 == Self.mediaId })
        #expect(lookups.currentAsked == 0)
    }

    @Test func aSourceThatIsNotAVersionOfTheMediaIsNotTrusted() async throws {
        // Another item's file, or nobody's: only looked up among this media's versions, never read.
        let lookups = Lookups(versions: [Self.current])
        let foreign = JobSource(path: "ff/00/another-items-photo.jpg", width: 640, height: 480)
        #expect(try await lookups.find(Self.rendered(source: foreign)) == Self.current)
        #expect(lookups.asked.map(\.1) == [foreign.path] && lookups.currentAsked == 1)
    }

    @Test func withoutASourceTheCurrentFileStandsIn() async throws {
        let lookups = Lookups(versions: [Self.current, Self.older])
        #expect(try await lookups.find(Self.rendered(source: nil)) == Self.current)
        #expect(lookups.asked.isEmpty && lookups.currentAsked == 1)
    }
}
