extension CycloramaMigrations {
    /// The review step of batches (docs/api.md, "Review before replace"): a batch may hold its results
    /// as candidates, each approved or rejected by a person, and only approved ones become the media's
    /// new version. `aiImageReviewBeforeReplace` is the default for batches that do not say.
    static let batchReview = Migration(version: 12, name: "batch review", sql: #"""
        ALTER TABLE batches ADD COLUMN review boolean NOT NULL DEFAULT false;

        CREATE TABLE review_candidates (
            id uuid PRIMARY KEY,
            job_id uuid NOT NULL UNIQUE REFERENCES generation_jobs (id) ON DELETE CASCADE,
            batch_id uuid NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
            media_id uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            file_path text NOT NULL CHECK (file_path <> ''),
            mime_type text NOT NULL,
            width integer NOT NULL CHECK (width > 0),
            height integer NOT NULL CHECK (height > 0),
            bytes bigint NOT NULL CHECK (bytes >= 0),
            sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            decision text CHECK (decision IN ('approved', 'rejected')),
            decided_at timestamptz,
            version_id uuid REFERENCES media_versions (id) ON DELETE SET NULL,
            -- The media's current version when the result was kept: what an approval replaces.
            base_version_id uuid REFERENCES media_versions (id) ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((decision IS NULL) = (decided_at IS NULL)),
            CHECK (version_id IS NULL OR decision = 'approved')
        );
        CREATE INDEX review_candidates_batch ON review_candidates (batch_id, created_at);
        CREATE INDEX review_candidates_waiting ON review_candidates (media_id) WHERE decision IS NULL;

        INSERT INTO settings (key, value, category, description, encrypted) VALUES
            ('aiImageReviewBeforeReplace', 'false', 'AI_IMAGE',
             'Batches hold their results for review: only approved ones replace the images', false)
        ON CONFLICT (key) DO NOTHING;
        """#)
}
