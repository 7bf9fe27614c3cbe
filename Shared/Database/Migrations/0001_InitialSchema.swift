extension CycloramaMigrations {
    /// Media and their versions, the generation ledger, batches, variations, settings, API tokens,
    /// and remembered answers for idempotent HTTP requests.
    static let initialSchema = Migration(version: 1, name: "initial schema", sql: #"""
        CREATE TABLE media (
            id uuid PRIMARY KEY,
            collection text NOT NULL DEFAULT 'PRODUCTS' CHECK (collection <> ''),
            original_filename text,
            file_path text NOT NULL CHECK (file_path <> ''),
            mime_type text NOT NULL,
            width integer NOT NULL CHECK (width > 0),
            height integer NOT NULL CHECK (height > 0),
            bytes bigint NOT NULL CHECK (bytes >= 0),
            sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            current_version_id uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            deleted_at timestamptz
        );
        CREATE INDEX media_collection_listing ON media (collection, created_at DESC, id) WHERE deleted_at IS NULL;
        CREATE INDEX media_listing ON media (created_at DESC, id) WHERE deleted_at IS NULL;

        CREATE TABLE media_versions (
            id uuid PRIMARY KEY,
            media_id uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            version_number integer NOT NULL CHECK (version_number > 0),
            source text NOT NULL CHECK (source IN ('upload', 'generation', 'variation', 'revert')),
            job_id uuid UNIQUE,
            reverted_from_version_id uuid REFERENCES media_versions (id),
            file_path text NOT NULL CHECK (file_path <> ''),
            mime_type text NOT NULL,
            width integer NOT NULL CHECK (width > 0),
            height integer NOT NULL CHECK (height > 0),
            bytes bigint NOT NULL CHECK (bytes >= 0),
            sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (media_id, version_number),
            CHECK (source NOT IN ('generation', 'variation') OR job_id IS NOT NULL)
        );
        CREATE INDEX media_versions_history ON media_versions (media_id, version_number DESC);

        -- Deferred, so a media row and its first version can be inserted in either order in one transaction.
        ALTER TABLE media ADD CONSTRAINT media_current_version_fk
            FOREIGN KEY (current_version_id) REFERENCES media_versions (id) DEFERRABLE INITIALLY DEFERRED;

        CREATE TABLE batches (
            id uuid PRIMARY KEY,
            status text NOT NULL DEFAULT 'QUEUED'
                CHECK (status IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'CANCELLED')),
            options jsonb NOT NULL DEFAULT '{}'::jsonb,
            item_count integer NOT NULL CHECK (item_count BETWEEN 0 AND 500),
            idempotency_key text UNIQUE,
            correlation_id text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        );
        CREATE INDEX batches_recent ON batches (created_at DESC);

        CREATE TABLE generation_jobs (
            id uuid PRIMARY KEY,
            kind text NOT NULL CHECK (kind IN ('single', 'batch', 'variation')),
            batch_id uuid REFERENCES batches (id) ON DELETE SET NULL,
            media_id uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            status text NOT NULL DEFAULT 'QUEUED' CHECK (status IN (
                'QUEUED', 'PROMPTING', 'SUBMITTED', 'IN_PROGRESS', 'DOWNLOADING',
                'COMPLETED', 'FAILED', 'CANCELLED')),
            backend text NOT NULL DEFAULT 'local' CHECK (backend IN ('local', 'runpod')),
            backend_job_id text,
            prompt text,
            options jsonb NOT NULL DEFAULT '{}'::jsonb,
            error_code text,
            error text,
            cost numeric(12, 6) NOT NULL DEFAULT 0 CHECK (cost >= 0),
            attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
            variation_name text,
            idempotency_key text UNIQUE,
            correlation_id text,
            webhook_token_sha256 text CHECK (webhook_token_sha256 ~ '^[0-9a-f]{64}$'),
            result_version_id uuid REFERENCES media_versions (id) ON DELETE SET NULL,
            deadline_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            submitted_at timestamptz,
            completed_at timestamptz,
            CHECK (kind <> 'batch' OR batch_id IS NOT NULL),
            CHECK (kind <> 'variation' OR variation_name IS NOT NULL),
            UNIQUE (backend, backend_job_id)
        );
        CREATE INDEX generation_jobs_media ON generation_jobs (media_id, created_at DESC);
        CREATE INDEX generation_jobs_batch ON generation_jobs (batch_id) WHERE batch_id IS NOT NULL;
        -- Recovery sweeps and dashboards look at unfinished jobs only.
        CREATE INDEX generation_jobs_unfinished ON generation_jobs (status, updated_at)
            WHERE status NOT IN ('COMPLETED', 'FAILED', 'CANCELLED');
        -- Monthly spend (the budget check) sums cost by creation time.
        CREATE INDEX generation_jobs_created ON generation_jobs (created_at);

        ALTER TABLE media_versions ADD CONSTRAINT media_versions_job_fk
            FOREIGN KEY (job_id) REFERENCES generation_jobs (id);

        CREATE TABLE variations (
            id uuid PRIMARY KEY,
            set_id uuid NOT NULL,
            media_id uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
            name text NOT NULL CHECK (name <> ''),
            prompt text,
            job_id uuid NOT NULL UNIQUE REFERENCES generation_jobs (id) ON DELETE CASCADE,
            file_path text,
            mime_type text,
            width integer CHECK (width > 0),
            height integer CHECK (height > 0),
            bytes bigint CHECK (bytes >= 0),
            sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
            chosen_at timestamptz,
            chosen_version_id uuid REFERENCES media_versions (id) ON DELETE SET NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (set_id, name)
        );
        CREATE INDEX variations_media ON variations (media_id, created_at DESC);
        -- At most one winner per set of variations.
        CREATE UNIQUE INDEX variations_one_winner ON variations (set_id) WHERE chosen_at IS NOT NULL;

        CREATE TABLE settings (
            key text PRIMARY KEY CHECK (key ~ '^[A-Za-z][A-Za-z0-9_]*$'),
            value text NOT NULL DEFAULT '',
            category text NOT NULL CHECK (category <> ''),
            description text NOT NULL DEFAULT '',
            encrypted boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE api_tokens (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL CHECK (name <> ''),
            role text NOT NULL CHECK (role ~ '^[A-Z][A-Z_]*$'),
            token_sha256 text NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
            created_at timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz,
            revoked_at timestamptz
        );

        -- The first answer to a POST with an Idempotency-Key, replayed to repeats.
        CREATE TABLE idempotency_records (
            key text NOT NULL CHECK (key <> ''),
            scope text NOT NULL,
            request_sha256 text NOT NULL,
            status_code integer,
            response_body jsonb,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (scope, key)
        );
        CREATE INDEX idempotency_records_age ON idempotency_records (created_at);
        """#)
}
