extension CycloramaMigrations {
    /// The seed document's settings with its descriptions and categories, plus the backend choice.
    /// `runpodApiKey` ships empty (never a key in code) and is marked encrypted: the settings-service
    /// stores it with AES-GCM once someone sets it.
    static let seedSettings = Migration(version: 2, name: "seed settings", sql: #"""
        INSERT INTO settings (key, value, category, description, encrypted) VALUES
            ('runpodApiKey', '', 'API_KEYS', 'RunPod API key for AI image generation with FLUX models', true),
            ('aiImageEnabled', 'true', 'AI_IMAGE', 'Enable AI product image generation', false),
            ('aiImageDefaultShadow', 'soft', 'AI_IMAGE', 'Default shadow style: minimal, soft, dramatic', false),
            ('aiImageDefaultBackground', '#FFFFFF', 'AI_IMAGE', 'Default background color (hex)', false),
            ('aiImageInferenceSteps', '28', 'AI_IMAGE', 'Number of inference steps (20-40)', false),
            ('aiImageGuidance', '3.5', 'AI_IMAGE', 'Guidance scale (2-5)', false),
            ('aiImageResolution', '1024', 'AI_IMAGE', 'Output resolution (1024, 1536, 2048)', false),
            ('aiImageEnableUpscaling', 'false', 'AI_IMAGE', 'Enable automatic upscaling after generation', false),
            ('aiImageMaxConcurrent', '3', 'AI_IMAGE', 'Maximum concurrent generations in batch mode', false),
            ('aiImageAbTestEnabled', 'false', 'AI_IMAGE', 'Enable A/B testing with multiple prompt variations', false),
            ('aiImageEnableWebhooks', 'false', 'AI_IMAGE', 'Use webhooks instead of polling (beta)', false),
            ('aiImageWebhookUrl', '', 'AI_IMAGE', 'Webhook URL for completion notifications', false),
            ('aiImageBackend', 'local', 'AI_IMAGE', 'Generation backend: local (the offline local engine) or runpod (FLUX.1 Kontext on RunPod)', false)
        ON CONFLICT (key) DO NOTHING;
        """#)
}
