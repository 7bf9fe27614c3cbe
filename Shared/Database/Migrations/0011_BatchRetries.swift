extension CycloramaMigrations {
    /// A batch is retried at most once (docs/api.md): the batch its failed and cancelled items were
    /// queued again in, so a second retry (another tab, an old batch opened again) never pays twice.
    static let batchRetries = Migration(version: 11, name: "batch retries", sql: #"""
        ALTER TABLE batches ADD COLUMN retried_by uuid;
        """#)
}
