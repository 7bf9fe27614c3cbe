extension CycloramaMigrations {
    /// The library's trash and exports (docs/ui.md, docs/api.md): deleted media listed most
    /// recently deleted first, and what a ZIP export holds (its link is signed; the row lives a day).
    static let mediaLibrary = Migration(version: 10, name: "media library trash and exports", sql: #"""
        CREATE INDEX media_trash ON media (deleted_at DESC, id) WHERE deleted_at IS NOT NULL;
        CREATE TABLE media_exports (
            id uuid PRIMARY KEY,
            media_ids uuid[] NOT NULL CHECK (cardinality(media_ids) BETWEEN 1 AND 500),
            format text NOT NULL CHECK (format IN ('original', 'jpeg', 'png', 'webp')),
            max_side integer CHECK (max_side > 0),
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX media_exports_age ON media_exports (created_at);
        """#)
}
