/// Cyclorama's schema, in order. docs/data.md describes the tables and why they look as they do.
///
/// Never edit a migration that has shipped (the migrator refuses a changed checksum); append a new one.
public enum CycloramaMigrations {
    public static let all: [Migration] = [
        initialSchema,
        seedSettings,
        costSettings,
        jobDeadlines,
        imageDelivery,
        notifications,
        reaperClaims,
        framingSetting,
        fidelityGuard,
        mediaLibrary,
        batchRetries,
        batchReview,
        optionPresets,
        deletedForGood,
        dispatchRecordCopy,
        idempotencyClaims,
        variationBase,
    ]
}
