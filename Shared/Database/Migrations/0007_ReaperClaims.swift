extension CycloramaMigrations {
    /// The reaper's claim on an overdue job gets its own column. It used `updated_at`, which every
    /// status change also touches, so a job whose deadline passed less than 30 s after its last
    /// change was ended up to 30 s late. `reaped_at` is written only by the claim: an overdue job
    /// is ended within one reaper interval, and one whose event did not get out is claimed again
    /// 30 s after the last claim, as before.
    static let reaperClaims = Migration(version: 7, name: "reaper claims", sql: #"""
        ALTER TABLE generation_jobs ADD COLUMN reaped_at timestamptz;
        """#)
}
