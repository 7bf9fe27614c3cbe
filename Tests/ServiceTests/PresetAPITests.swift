import Foundation
import Testing
import TestSupport

/// `/api/ai-image/presets`: saved option presets, against the gateway run in process.
@Suite("Option presets", .timeLimit(.minutes(3)))
struct PresetAPITests {
    @Test func presetsAreSavedCheckedListedRenamedAndDeleted() async throws {
        try await InProcessGateway.test { gateway in
            let contract = try await APIContract.load(from: gateway)
            let empty = try await gateway.call(.GET, "/api/ai-image/presets")
            contract.check(empty, "get", "/api/ai-image/presets")
            #expect((try empty.json()["presets"] as? [Any])?.isEmpty == true)

            let created = try await gateway.call(.POST, "/api/ai-image/presets", json: """
                {"name": "  Amazon white  ", "options": {"shadowStyle": "soft", "backgroundColor": "#FFFFFF", "upscale": 2, "framing": "amazon"}}
                """)
            #expect(created.status == 201, "\(created.text)")
            contract.check(created, "post", "/api/ai-image/presets")
            let preset = try #require(try created.json()["preset"] as? [String: Any])
            let id = try #require(preset["id"] as? String)
            #expect(preset["name"] as? String == "Amazon white", "trimmed")
            let options = try #require(preset["options"] as? [String: Any])
            #expect(options["shadowStyle"] as? String == "soft" && options["upscale"] as? Int == 2 && options["framing"] as? String == "amazon",
                    "\(options)")
            #expect(options["removeWatermark"] == nil, "only what the preset sets")

            let second = try await gateway.call(.POST, "/api/ai-image/presets", json: #"{"name": "Transparent", "options": {"backgroundColor": "transparent", "shadowStyle": "none"}}"#)
            #expect(second.status == 201, "\(second.text)")
            let list = try await gateway.call(.GET, "/api/ai-image/presets")
            #expect((try list.json()["presets"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["Amazon white", "Transparent"])

            // Refused: a name taken (whatever the case), options generate would refuse, a bad name.
            for (body, status, code) in [
                (#"{"name": "AMAZON WHITE"}"#, 409, "preset_name_taken"),
                (#"{"name": "x", "options": {"upscale": 3}}"#, 400, "invalid_field"),
                (#"{"name": "x", "options": {"sparkle": true}}"#, 400, "invalid_field"),
                (#"{"name": ""}"#, 400, "invalid_field"),
                (#"{"name": "\#(String(repeating: "n", count: 81))"}"#, 400, "invalid_field"),
                (#"{"options": {}}"#, 400, "invalid_field"),
                (#"{"name": "x", "colour": "red"}"#, 400, "invalid_field"),
                (#"{"name": "x", "options": {"framing": null}}"#, 400, "invalid_field"),
                ("[]", 400, "invalid_body"),
            ] {
                let refused = try await gateway.call(.POST, "/api/ai-image/presets", json: body)
                #expect(refused.status == status && refused.error?.code == code, "\(body): \(refused.text)")
                contract.check(refused, "post", "/api/ai-image/presets")
            }
            let badOptions = try await gateway.call(.POST, "/api/ai-image/presets", json: #"{"name": "x", "options": {"upscale": 3}}"#)
            #expect(badOptions.error?.message.hasPrefix("options.upscale") == true, "\(badOptions.text)")

            // Renamed and changed; a rename onto another's name is refused.
            let renamed = try await gateway.call(.PUT, "/api/ai-image/presets/\(id)", json: #"{"name": "Amazon soft", "options": {"shadowStyle": "dramatic"}}"#)
            #expect(renamed.status == 200, "\(renamed.text)")
            contract.check(renamed, "put", "/api/ai-image/presets/{presetId}")
            let changed = try #require(try renamed.json()["preset"] as? [String: Any])
            #expect(changed["name"] as? String == "Amazon soft" && (changed["options"] as? [String: Any])?["shadowStyle"] as? String == "dramatic")
            #expect(try await gateway.call(.PUT, "/api/ai-image/presets/\(id)", json: #"{"name": "transparent"}"#).error?.code == "preset_name_taken")
            #expect(try await gateway.call(.PUT, "/api/ai-image/presets/\(id)", json: "{}").status == 400)
            #expect(try await gateway.call(.PUT, "/api/ai-image/presets/\(UUID().uuidString)", json: #"{"name": "y"}"#).status == 404)

            let deleted = try await gateway.call(.DELETE, "/api/ai-image/presets/\(id)")
            #expect(deleted.status == 200)
            contract.check(deleted, "delete", "/api/ai-image/presets/{presetId}")
            #expect(try await gateway.call(.DELETE, "/api/ai-image/presets/\(id)").status == 404)
            #expect((try await gateway.call(.GET, "/api/ai-image/presets").json()["presets"] as? [[String: Any]])?.count == 1)

            // At most 50.
            for index in 0..<49 {
                let made = try await gateway.call(.POST, "/api/ai-image/presets", json: #"{"name": "Preset \#(index)"}"#)
                #expect(made.status == 201, "\(made.text)")
            }
            let tooMany = try await gateway.call(.POST, "/api/ai-image/presets", json: #"{"name": "One more"}"#)
            #expect(tooMany.status == 409 && tooMany.error?.code == "too_many_presets", "\(tooMany.text)")
        }
    }
}
