extension CycloramaMigrations {
    /// The version an A/B candidate was made from (the newest version holding its job's source
    /// file, else the media's version when the result was kept): choosing a candidate replaces that
    /// photo only, as approving a batch result under review does, so a variation of an older image
    /// never silently replaces one that changed since (another result, a revert). Rows from before
    /// have none: they are chosen as before.
    static let variationBase = Migration(version: 17, name: "variation base", sql: #"""
        ALTER TABLE variations ADD COLUMN base_version_id uuid REFERENCES media_versions (id) ON DELETE SET NULL;
        """#)
}
