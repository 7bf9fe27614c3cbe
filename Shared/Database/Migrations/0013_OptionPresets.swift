extension CycloramaMigrations {
    /// Saved option presets (docs/api.md, "Presets"): a name and the generation options it stands for,
    /// offered by the AI dialog and the batch set-up.
    static let optionPresets = Migration(version: 13, name: "option presets", sql: #"""
        CREATE TABLE option_presets (
            id uuid PRIMARY KEY,
            name text NOT NULL CHECK (name <> '' AND length(name) <= 80),
            options jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNIQUE INDEX option_presets_name ON option_presets (lower(name));
        """#)
}
