extension CycloramaMigrations {
    /// The dispatcher's record of a RunPod job (its submission intent, the backend's job id, whether
    /// it finished) kept beside the job, not only in Redis: a Redis that loses its data (a replaced
    /// instance, a failover to a replica that lagged, `FLUSHALL`) must not make a follower submit a
    /// job the backend already has — a second paid run (docs/reliability.md, "A submission is
    /// recorded before it is sent"). Written by the dispatcher alone, JSON it alone reads.
    static let dispatchRecordCopy = Migration(version: 15, name: "dispatch record copy", sql: #"""
        ALTER TABLE generation_jobs ADD COLUMN dispatch_record jsonb;
        """#)
}
