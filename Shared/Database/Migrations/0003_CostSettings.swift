extension CycloramaMigrations {
    /// Costs: the price RunPod is assumed to charge when a result reports no `cost`, and a monthly
    /// budget for RunPod (0 means none).
    static let costSettings = Migration(version: 3, name: "cost settings", sql: #"""
        INSERT INTO settings (key, value, category, description, encrypted) VALUES
            ('aiImagePricePerMegapixel', '0.03', 'AI_IMAGE', 'USD per output megapixel charged by RunPod when a result reports no cost', false),
            ('aiImageMonthlyBudget', '0', 'AI_IMAGE', 'Monthly RunPod budget in USD; once this month''s spend reaches it, new RunPod requests are refused (0 = no budget)', false)
        ON CONFLICT (key) DO NOTHING;
        """#)
}
