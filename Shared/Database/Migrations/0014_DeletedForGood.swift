extension CycloramaMigrations {
    /// Emptying the trash (docs/api.md, "Deleting for good"; docs/data.md). A media deleted for good
    /// keeps its row as a tombstone (`purged_at`, no name, no versions), so the ledger rows that
    /// name it — and the month's spend they hold — stay; its files are queued in `purged_files` and
    /// erased by the gateway's sweeper once nothing refers to them (the same bytes may be another
    /// item's too).
    static let deletedForGood = Migration(version: 14, name: "media deleted for good", sql: #"""
        ALTER TABLE media ADD COLUMN purged_at timestamptz;
        ALTER TABLE media ADD CONSTRAINT media_purged_was_deleted CHECK (purged_at IS NULL OR deleted_at IS NOT NULL);
        DROP INDEX media_trash;
        CREATE INDEX media_trash ON media (deleted_at DESC, id) WHERE deleted_at IS NOT NULL AND purged_at IS NULL;
        CREATE TABLE purged_files (
            path text PRIMARY KEY CHECK (path <> ''),
            purged_at timestamptz NOT NULL DEFAULT now()
        );
        -- The sweeper asks, for each queued file, whether anything still refers to it.
        CREATE INDEX media_file ON media (file_path);
        CREATE INDEX media_versions_file ON media_versions (file_path);
        CREATE INDEX review_candidates_file ON review_candidates (file_path);
        CREATE INDEX variations_file ON variations (file_path);
        """#)
}
