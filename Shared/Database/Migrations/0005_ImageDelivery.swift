extension CycloramaMigrations {
    /// How a RunPod job's photo reaches RunPod: `auto` sends it inline when the gateway's media links
    /// are not reachable from the internet (docs/architecture.md, "Getting the photo to RunPod").
    static let imageDelivery = Migration(version: 5, name: "image delivery", sql: #"""
        INSERT INTO settings (key, value, category, description, encrypted) VALUES
            ('runpodImageDelivery', 'auto', 'AI_IMAGE', 'How RunPod gets the photo: auto (inline when the media links are not public), url (a signed link RunPod fetches) or inline (in the request)', false)
        ON CONFLICT (key) DO NOTHING;
        """#)
}
