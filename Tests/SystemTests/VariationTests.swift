import Foundation
import Imaging
import Testing
import TestSupport

extension SystemSuites {
    /// A/B variations on the local engine: candidates kept beside the media, one chosen as its new version.
    @Suite("A/B variations", .timeLimit(.minutes(15)))
    struct VariationTests {
        @Test func candidatesDoNotReplaceTheMediaUntilOneIsChosen() async throws {
            try await CycloramaSystem.run { system in
                let contract = try await APIContract.load(from: system)
                let mediaId = try await system.upload(try Samples.bytes("dev03", "input.jpg"))
                let off = try await system.call(.POST, "/api/ai-image/variations/\(mediaId)", json: "{}")
                #expect(off.status == 409)
                #expect(off.error?.code == "ab_testing_disabled")
                contract.check(off, "post", "/api/ai-image/variations/{mediaId}")
                #expect(try await system.call(.PUT, "/api/ai-image/settings", json: #"{"aiImageAbTestEnabled": true}"#).status == 200)

                let tooMany = try await system.call(
                    .POST, "/api/ai-image/variations/\(mediaId)", json: #"{"customPrompts": ["a","b","c","d","e","f"]}"#)
                #expect(tooMany.status == 400)
                let created = try await system.call(
                    .POST, "/api/ai-image/variations/\(mediaId)", json: #"{"customPrompts": ["Place it on a marble slab."]}"#)
                #expect(created.status == 202, "\(created.text)")
                contract.check(created, "post", "/api/ai-image/variations/{mediaId}")
                let started = try #require(try created.json()["variations"] as? [[String: Any]])
                #expect(started.compactMap { $0["name"] as? String } == ["Minimal Shadow", "Soft Shadow (Recommended)", "Dramatic Shadow", "Custom 1"])
                let jobIds = started.compactMap { $0["jobId"] as? String }

                for jobId in jobIds {
                    let done = try await system.waitForTerminal(jobId, timeout: .seconds(240))
                    #expect(done["status"] as? String == "COMPLETED", "\(done)\n\(system.logs())")
                }
                let versions = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(versions.count == 1, "candidates do not replace the media")

                let listed = try await system.call(.GET, "/api/ai-image/variations/\(mediaId)")
                contract.check(listed, "get", "/api/ai-image/variations/{mediaId}")
                let sets = try #require(try listed.json()["sets"] as? [[String: Any]])
                #expect(sets.count == 1)
                let candidates = try #require(sets.first?["variations"] as? [[String: Any]])
                #expect(candidates.count == 4)
                #expect(candidates.allSatisfy { $0["status"] as? String == "COMPLETED" && $0["url"] != nil })
                let dramatic = try #require(candidates.first { $0["name"] as? String == "Dramatic Shadow" })
                let winner = try #require(dramatic["jobId"] as? String)
                let image = try await system.call(.GET, try #require(dramatic["url"] as? String))
                #expect(image.status == 200)
                let picture = try RasterImage(decoding: image.body)
                #expect(picture.width == 1024 && picture.height == 1024)

                let chosen = try await system.call(.POST, "/api/ai-image/variations/\(mediaId)/choose", json: #"{"jobId": "\#(winner)"}"#)
                #expect(chosen.status == 200, "\(chosen.text)")
                contract.check(chosen, "post", "/api/ai-image/variations/{mediaId}/choose")
                let file = try await system.call(.GET, "/api/media/\(mediaId)/file")
                #expect(file.body == image.body, "the media now shows the winner")
                let history = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(history.count == 2)
                #expect(history.first?["source"] as? String == "variation")
                #expect(history.first?["jobId"] as? String == winner)

                let again = try await system.call(.POST, "/api/ai-image/variations/\(mediaId)/choose", json: #"{"jobId": "\#(winner)"}"#)
                #expect(again.status == 200, "choosing the winner again is harmless")
                let loser = try #require(candidates.first { $0["name"] as? String == "Minimal Shadow" }?["jobId"] as? String)
                let second = try await system.call(.POST, "/api/ai-image/variations/\(mediaId)/choose", json: #"{"jobId": "\#(loser)"}"#)
                #expect(second.status == 409)
                #expect(second.error?.code == "already_chosen")
                contract.check(second, "post", "/api/ai-image/variations/{mediaId}/choose")
                let after = try #require(try await system.call(.GET, "/api/media/\(mediaId)/versions").json()["versions"] as? [[String: Any]])
                #expect(after.count == 2)
            }
        }
    }
}
