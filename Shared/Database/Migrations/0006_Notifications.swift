extension CycloramaMigrations {
    /// HTTP notifications to other systems (docs/notifications.md). A job asked for with a
    /// `notifyUrl` keeps it in `generation_jobs.notify_url`; the trigger writes the job's
    /// notification in the same transaction that ends the job, whichever service ends it, so a job
    /// that ended always has its notification and never two (`job_id` is unique). The gateway's
    /// sender claims due rows, POSTs them and records each attempt.
    static let notifications = Migration(version: 6, name: "notifications", sql: #"""
        INSERT INTO settings (key, value, category, description, encrypted) VALUES
            ('aiImageNotifyUrl', '', 'AI_IMAGE', 'Where a job asked for without a notifyUrl POSTs its terminal event (empty: nowhere)', false),
            ('aiImageNotifySecret', '', 'API_KEYS', 'The secret notifications are signed with (HMAC-SHA256 of the timestamp and body)', true)
        ON CONFLICT (key) DO NOTHING;

        ALTER TABLE generation_jobs ADD COLUMN notify_url text CHECK (notify_url <> '');

        CREATE TABLE notifications (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            job_id uuid NOT NULL UNIQUE REFERENCES generation_jobs (id) ON DELETE CASCADE,
            url text NOT NULL CHECK (url <> ''),
            event text NOT NULL CHECK (event IN ('job.completed', 'job.failed', 'job.cancelled')),
            status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'DELIVERED', 'ABANDONED')),
            attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            body text,
            last_error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        );
        CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'PENDING';

        CREATE TABLE notification_attempts (
            notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
            number integer NOT NULL CHECK (number > 0),
            started_at timestamptz NOT NULL DEFAULT now(),
            duration_ms integer CHECK (duration_ms >= 0),
            status_code integer,
            error text,
            PRIMARY KEY (notification_id, number)
        );

        CREATE FUNCTION generation_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $fn$
        BEGIN
            INSERT INTO notifications (job_id, url, event)
            VALUES (NEW.id, NEW.notify_url, 'job.' || lower(NEW.status))
            ON CONFLICT (job_id) DO NOTHING;
            RETURN NULL;
        END
        $fn$;

        CREATE TRIGGER generation_jobs_notify AFTER UPDATE OF status ON generation_jobs
            FOR EACH ROW
            WHEN (NEW.notify_url IS NOT NULL
                  AND NEW.status IN ('COMPLETED', 'FAILED', 'CANCELLED')
                  AND OLD.status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED'))
            EXECUTE FUNCTION generation_jobs_notify();
        """#)
}
