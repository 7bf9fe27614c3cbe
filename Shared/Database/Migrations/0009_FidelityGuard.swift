extension CycloramaMigrations {
    /// The fidelity guard (docs/fidelity.md): what a RunPod result that changed the product gets,
    /// and, on the job, the guard's score and decision (`{"score", "threshold", "decision"}`),
    /// written by the result-ingestor.
    static let fidelityGuard = Migration(version: 9, name: "fidelity guard", sql: #"""
        INSERT INTO settings (key, value, category, description, encrypted) VALUES
            ('aiImageFidelityMode', 'restore', 'AI_IMAGE',
             'When a RunPod result changed the product: restore (put the photo''s product back), reject (fail the job) or off', false)
        ON CONFLICT (key) DO NOTHING;
        ALTER TABLE generation_jobs ADD COLUMN fidelity jsonb;
        """#)
}
