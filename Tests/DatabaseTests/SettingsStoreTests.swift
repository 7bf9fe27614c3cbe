import Database
import PostgresNIO
import Testing

@Suite("Seeded settings and the settings store")
struct SettingsStoreTests {
    /// The seed document's rows (runpodApiKey without its example key) plus the backend choice.
    static let expected: [(key: String, value: String, category: String, encrypted: Bool)] = [
        ("runpodApiKey", "", "API_KEYS", true),
        ("aiImageEnabled", "true", "AI_IMAGE", false),
        ("aiImageDefaultShadow", "soft", "AI_IMAGE", false),
        ("aiImageDefaultBackground", "#FFFFFF", "AI_IMAGE", false),
        ("aiImageInferenceSteps", "28", "AI_IMAGE", false),
        ("aiImageGuidance", "3.5", "AI_IMAGE", false),
        ("aiImageResolution", "1024", "AI_IMAGE", false),
        ("aiImageEnableUpscaling", "false", "AI_IMAGE", false),
        ("aiImageMaxConcurrent", "3", "AI_IMAGE", false),
        ("aiImageAbTestEnabled", "false", "AI_IMAGE", false),
        ("aiImageEnableWebhooks", "false", "AI_IMAGE", false),
        ("aiImageWebhookUrl", "", "AI_IMAGE", false),
        ("aiImageBackend", "local", "AI_IMAGE", false),
        ("aiImagePricePerMegapixel", "0.03", "AI_IMAGE", false),
        ("aiImageMonthlyBudget", "0", "AI_IMAGE", false),
        ("runpodImageDelivery", "auto", "AI_IMAGE", false),
        ("aiImageNotifyUrl", "", "AI_IMAGE", false),
        ("aiImageNotifySecret", "", "API_KEYS", true),
        ("aiImageDefaultFraming", "none", "AI_IMAGE", false),
        ("aiImageFidelityMode", "restore", "AI_IMAGE", false),
        ("aiImageReviewBeforeReplace", "false", "AI_IMAGE", false),
    ]

    @Test func aFreshDatabaseHasEverySeededSettingWithItsDefault() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let settings = try await SettingsStore(client: client).all()
            #expect(settings.count == Self.expected.count)
            let byKey = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })
            for row in Self.expected {
                let setting = try #require(byKey[row.key], "missing setting \(row.key)")
                #expect(setting.value == row.value, "\(row.key)")
                #expect(setting.category == row.category, "\(row.key)")
                #expect(setting.encrypted == row.encrypted, "\(row.key)")
                #expect(!setting.description.isEmpty, "\(row.key)")
            }
            #expect(byKey["runpodApiKey"]?.value == "")
            #expect(byKey["runpodApiKey"]?.description == "RunPod API key for AI image generation with FLUX models")
            #expect(byKey["aiImageInferenceSteps"]?.description == "Number of inference steps (20-40)")
            // Ordered by category, then key.
            #expect(settings.map(\.category) == settings.map(\.category).sorted())
        }
    }

    @Test func valuesAreReadByKey() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = SettingsStore(client: client)
            #expect(try await store.value(for: "aiImageBackend") == "local")
            #expect(try await store.value(for: "aiImageGuidance") == "3.5")
            #expect(try await store.value(for: "noSuchSetting") == nil)
            let some = try await store.settings(for: ["aiImageResolution", "noSuchSetting", "aiImageEnabled"])
            #expect(Set(some.map(\.key)) == ["aiImageResolution", "aiImageEnabled"])
        }
    }

    @Test func updatesChangeExistingKeysOnlyAndAllOrNothing() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let store = SettingsStore(client: client)
            let before = try #require(try await store.settings(for: ["aiImageResolution"]).first)
            let updated = try await store.update(["aiImageResolution": "1536", "aiImageMaxConcurrent": "5"])
            #expect(updated.map(\.key).sorted() == ["aiImageMaxConcurrent", "aiImageResolution"])
            #expect(try await store.value(for: "aiImageResolution") == "1536")
            #expect(updated.first { $0.key == "aiImageResolution" }!.updatedAt >= before.updatedAt)

            let error = await #expect(throws: SettingsStoreError.self) {
                try await store.update(["aiImageResolution": "2048", "noSuchSetting": "x"])
            }
            #expect(error?.message.contains("noSuchSetting") == true)
            #expect(try await store.value(for: "aiImageResolution") == "1536")
            #expect(try await store.value(for: "noSuchSetting") == nil)
        }
    }
}

@Suite("API tokens are stored hashed")
struct APITokenStoreTests {
    @Test func aTokenRoundTripsByItsHashAndThePlaintextIsNeverStored() async throws {
        try await TestDatabase.withFreshDatabase { client, _ in
            try await Migrator(logger: TestDatabase.logger).migrate(on: client)
            let tokens = APITokenStore(client: client)
            let token = "cyc_" + String(repeating: "7f3a", count: 12)
            try await tokens.ensure(token: token, name: "admin", role: "ADMIN")
            try await tokens.ensure(token: token, name: "admin", role: "ADMIN")  // idempotent
            #expect(try await TestDatabase.count("SELECT count(*) FROM api_tokens", on: client) == 1)
            #expect(try await tokens.role(for: token) == "ADMIN")
            #expect(try await tokens.role(for: token + "x") == nil)
            #expect(try await tokens.role(for: "") == nil)

            let stored = try await TestDatabase.strings("SELECT row_to_json(api_tokens)::text FROM api_tokens", on: client)
            #expect(stored.count == 1)
            #expect(stored.allSatisfy { !$0.contains(token) })
            #expect(stored.allSatisfy { $0.contains(APITokenStore.hash(token)) })
            #expect(try await TestDatabase.count("SELECT count(*) FROM api_tokens WHERE last_used_at IS NOT NULL", on: client) == 1)

            #expect(try await tokens.revoke(token: token))
            #expect(try await tokens.revoke(token: token) == false)
            #expect(try await tokens.role(for: token) == nil)
        }
    }

    @Test func theHashIsLowerCaseHexSHA256() {
        // sha256("abc"), a published test vector.
        #expect(APITokenStore.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
