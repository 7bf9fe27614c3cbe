extension CycloramaMigrations {
    /// Every unfinished job has a deadline (docs/reliability.md): the gateway's reaper ends a job
    /// still open past it. `reply_to` keeps the requester's extra address (from the job's first
    /// event) so that a job ended that way is reported there too.
    static let jobDeadlines = Migration(version: 4, name: "job deadlines", sql: #"""
        ALTER TABLE generation_jobs ADD COLUMN reply_to jsonb;
        UPDATE generation_jobs SET deadline_at = created_at + interval '24 hours'
            WHERE deadline_at IS NULL AND status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED');
        CREATE INDEX generation_jobs_deadline ON generation_jobs (deadline_at)
            WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED');
        """#)
}
