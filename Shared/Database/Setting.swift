import Foundation

/// One row of the `settings` table.
///
/// For `encrypted` rows `value` is the ciphertext as stored (or empty): decrypting is the
/// settings-service's job, and nothing else should ever see the plaintext.
public struct Setting: Sendable, Codable, Hashable {
    public var key: String
    public var value: String
    /// `API_KEYS` or `AI_IMAGE` for the seeded rows.
    public var category: String
    public var description: String
    public var encrypted: Bool
    public var updatedAt: Date

    public init(key: String, value: String, category: String, description: String, encrypted: Bool, updatedAt: Date) {
        self.key = key
        self.value = value
        self.category = category
        self.description = description
        self.encrypted = encrypted
        self.updatedAt = updatedAt
    }
}
