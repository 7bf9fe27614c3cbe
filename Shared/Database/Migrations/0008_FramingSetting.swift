extension CycloramaMigrations {
    /// The framing jobs take when they name none (docs/framing.md): `none` keeps the photo's frame.
    static let framingSetting = Migration(version: 8, name: "framing setting", sql: #"""
        INSERT INTO settings (key, value, category, description, encrypted) VALUES
            ('aiImageDefaultFraming', 'none', 'AI_IMAGE',
             'Default framing: none (the photo''s frame), amazon, google, shopify or ebay', false)
        ON CONFLICT (key) DO NOTHING;
        """#)
}
