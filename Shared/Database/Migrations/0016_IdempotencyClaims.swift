extension CycloramaMigrations {
    /// Each claim of an `Idempotency-Key` gets an id of its own, kept when an abandoned claim is
    /// taken over (the same request run again) and new when the key is used again after its record
    /// expired (24 h): the gateway derives the ids of what a request creates from the key *and* this
    /// id. Derived from the key alone, the same key a day later made the same job id, and the new
    /// request found the old job and answered with it instead of starting one. Rows from before
    /// have none (null: ids derived from the key alone, as when they were claimed).
    ///
    /// A claim given back after a failure (a 5xx, a refusal about the moment) is marked `released`
    /// instead of deleted: the same request sent again takes it back with its claim id, so it finds
    /// whatever the failed run created (a job inserted before the connection dropped) instead of
    /// creating it again under new ids; another request under the key replaces it.
    ///
    /// `take_id` names each take of a claim (the first, and every take-over or take-back): only the
    /// request holding the current take may store its answer or give the claim back, so a request
    /// that stalled past its claim cannot answer for, or release, the one that took it over.
    static let idempotencyClaims = Migration(version: 16, name: "idempotency claims", sql: #"""
        ALTER TABLE idempotency_records ADD COLUMN claim_id uuid;
        ALTER TABLE idempotency_records ADD COLUMN released boolean NOT NULL DEFAULT false;
        ALTER TABLE idempotency_records ADD COLUMN take_id uuid;
        """#)
}
