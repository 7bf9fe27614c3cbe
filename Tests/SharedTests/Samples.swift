import Foundation
import Shared

/// The messages of the golden files (Golden/*.json) and of docs/messages.md, built in Swift.
enum Samples {
    static let jobId = UUID(uuidString: "3F2504E0-4F89-41D3-9A0C-0305E82C3301")!
    static let mediaId = UUID(uuidString: "9B2D5E7A-1C3F-4A6B-8D9E-0F1A2B3C4D5E")!
    static let versionId = UUID(uuidString: "C8246639-D1FC-4DB0-A50E-17D4B625ACCC")!
    static let previousVersionId = UUID(uuidString: "D935774A-E20D-4EC1-B61F-28E5C736BDDD")!
    static let settingsRequestId = UUID(uuidString: "95F19306-AEC9-4A8D-B2DB-E4A183F27F99")!
    static let settingsChangedId = UUID(uuidString: "B7135528-C0EB-4CAF-94FD-06C3A5149BBB")!
    static let replyTo = ReplyAddress(exchange: "erp.events", routingKey: "cyclorama.outcome")
    static let backendJobId = "local-5d41402abc4b2a76"

    static func id(_ text: String) -> UUID { UUID(uuidString: text)! }
    static func at(_ text: String) -> Date { MessageCoding.parseTimestamp(text)! }

    static let resolvedOptions = ResolvedGenerationOptions(
        shadowStyle: .soft, backgroundColor: BackgroundColor("#f3f4f6")!,
        customInstructions: "Keep the cap's embossed logo sharp.", removeWatermark: true, upscale: .x2,
        framing: FramingPreset.amazon.spec)

    static let prompt = """
        Replace the background with a clean professional light gray studio background.
        Add a soft realistic drop shadow beneath the product for depth and dimension.
        Keep the product in the exact same position, scale, and orientation.
        Preserve all original product details, textures, colors, and any text or labels that are part of the product itself.
        Remove any watermarks, logos, brand overlays, or text overlays that are not part of the original product packaging or design.
        Professional commercial product photography style with even studio lighting.
        High quality, sharp focus, commercial e-commerce standard.
        Clean and professional finish without any distracting elements or watermarks.
        Keep the cap's embossed logo sharp.
        """

    static let requestGeneration = RequestGeneration(
        messageId: id("1D7F1B8E-2C41-4E0B-9A53-6C2F0B7A9D11"), occurredAt: at("2026-11-29T10:15:30.123Z"),
        jobId: jobId, mediaId: mediaId, kind: .single,
        options: GenerationOptions(
            shadowStyle: .soft, backgroundColor: BackgroundColor("#F3F4F6"),
            customInstructions: "Keep the cap's embossed logo sharp.", removeWatermark: true, upscale: .x2,
            framing: .preset(.amazon)),
        replyTo: replyTo, requestedBy: "erp-sync")

    static let dispatchGeneration = DispatchGeneration(
        messageId: id("2E8A2C9F-3D52-4F1C-8B64-7D3A1C8B0E22"), occurredAt: at("2026-11-29T10:15:30.241Z"),
        jobId: jobId, mediaId: mediaId, kind: .single, backend: .local, prompt: prompt,
        input: [
            "image": "https://cyclorama.example.com/api/media/9B2D5E7A-1C3F-4A6B-8D9E-0F1A2B3C4D5E/file",
            "background": "#F3F4F6", "shadow": "soft", "removeWatermark": true, "upscale": 2, "outputFormat": "png",
            "framing": ["aspect": "1:1", "fill": 0.85, "align": "center", "minSide": 1600, "maxSide": 2000],
        ],
        options: resolvedOptions, replyTo: replyTo, attempt: 1, source: source)

    /// The photo the job is made from, as the prompt-service names it.
    static let source = JobSource(path: "3a/7f/3a7f5c2e9b1d4f6a8c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a3c5e7b9d2f4a.jpg", width: 1600, height: 1200)

    static let generationSubmitted = GenerationSubmitted(
        messageId: id("3F9B3DA0-4E63-4A2D-9C75-8E4B2D9C1F33"), occurredAt: at("2026-11-29T10:15:30.388Z"),
        jobId: jobId, mediaId: mediaId, backend: .local, backendJobId: backendJobId,
        deadline: at("2026-11-29T10:30:29.120Z"))

    static let generationProgressedPrompting = GenerationProgressed(
        messageId: id("2B8E1F07-3C46-4D19-A5E2-7F0C9D3B6A11"), occurredAt: at("2026-11-29T10:15:30.201Z"),
        jobId: jobId, mediaId: mediaId, stage: .prompting, replyTo: replyTo)

    static let generationProgressed = GenerationProgressed(
        messageId: id("40AC4EB1-5F74-4B3E-8D86-9F5C3EAD2A44"), occurredAt: at("2026-11-29T10:15:33.002Z"),
        jobId: jobId, mediaId: mediaId, stage: .inProgress, detail: "4/10")

    static let generationRendered = GenerationRendered(
        messageId: id("51BD5FC2-6A85-4C4F-9E97-A06D4FBE3B55"), occurredAt: at("2026-11-29T10:15:36.410Z"),
        jobId: jobId, mediaId: mediaId, kind: .single, backend: .local, backendJobId: backendJobId,
        outputUrl: "http://127.0.0.1:8090/v2/local/results/5d41402a-bc4b-4a76-9a1e-8b3f2c7d9e10.png", cost: 0, executionTimeMs: 2870,
        options: resolvedOptions, replyTo: replyTo, source: source)

    static let generationCompleted = GenerationCompleted(
        messageId: id("62CE60D3-7B96-4D5A-8FA8-B17E50CF4C66"), occurredAt: at("2026-11-29T10:15:37.015Z"),
        applying: generationRendered, mediaVersionId: versionId)

    static let generationFailed = GenerationFailed(
        messageId: id("73DF71E4-8CA7-4E6B-90B9-C28F61D05D77"), occurredAt: at("2026-11-29T10:25:30.500Z"),
        jobId: jobId, mediaId: mediaId, kind: .single, backendJobId: "b7f3c1d2-runpod-e1",
        reason: "RunPod job stayed IN_QUEUE for 600 s (no workers available)", code: .timedOut, retryable: true)

    static let mediaUpdated = MediaUpdated(
        messageId: id("84E082F5-9DB8-4F7C-A1CA-D39072E16E88"), occurredAt: at("2026-11-29T10:15:37.002Z"),
        jobId: jobId, mediaId: mediaId, versionId: versionId, previousVersionId: previousVersionId,
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", width: 2048, height: 2048,
        mime: "image/png")

    static let settingsRequest = SettingsRequest(
        messageId: settingsRequestId, occurredAt: at("2026-11-29T09:00:00.000Z"),
        keys: ["aiImageDefaultShadow", "aiImageDefaultBackground", "runpodApiKey"])

    static let settingsUpdate = SettingsRequest(
        messageId: id("C4E2A981-0B7D-4F3E-9A56-1D8C7B2E4F90"), occurredAt: at("2026-11-29T09:30:07.500Z"),
        updates: ["aiImageDefaultShadow": "dramatic"], notAfter: at("2026-11-29T09:30:12.500Z"),
        // HMAC-SHA256 with the example key of docs/messages.md (SettingsAuthorityTests checks it).
        authorization: "2f4ecb9dab49440036bcef593bca6c0e4716698f332d16cac6baf7f055572b86")

    static let settingsReply = SettingsReply(
        messageId: id("A6024417-BFDA-4B9E-83EC-F5B294038AAA"), correlationId: settingsRequestId.uuidString,
        occurredAt: at("2026-11-29T09:00:00.012Z"), requestMessageId: settingsRequestId,
        settings: SecretSettings.masking([
            "aiImageDefaultShadow": "soft", "aiImageDefaultBackground": "#FFFFFF",
            "runpodApiKey": "rpa_SECRETSECRETSECRET7Q2Z",
        ]))

    static let settingsChanged = SettingsChanged(
        messageId: settingsChangedId, occurredAt: at("2026-11-29T09:30:12.500Z"),
        changedKeys: ["aiImageDefaultShadow"],
        settings: [
            "aiImageAbTestEnabled": "false", "aiImageDefaultBackground": "#FFFFFF", "aiImageDefaultShadow": "dramatic",
            "aiImageEnableUpscaling": "false", "aiImageEnableWebhooks": "false", "aiImageEnabled": "true",
            "aiImageGuidance": "3.5", "aiImageInferenceSteps": "28", "aiImageMaxConcurrent": "3",
            "aiImageResolution": "1024", "aiImageWebhookUrl": "", "runpodApiKey": "rpa_…7Q2Z",
        ])

    static let backendWebhookReceived = BackendWebhookReceived(
        messageId: id("6A1C9E42-73B5-4F0D-8E21-5B7D3C9A0F64"), occurredAt: at("2026-11-29T10:15:41.902Z"),
        jobId: jobId, backendJobId: "sync-7f3e2b1a-9c4d-4e8f-a1b2-c3d4e5f60718-e1", backendStatus: "COMPLETED")

    /// Golden file name (without `.json`) → the message it holds.
    static let golden: [(file: String, message: AnyMessage)] = [
        ("RequestGeneration", .requestGeneration(requestGeneration)),
        ("DispatchGeneration", .dispatchGeneration(dispatchGeneration)),
        ("GenerationSubmitted", .generationSubmitted(generationSubmitted)),
        ("GenerationProgressed", .generationProgressed(generationProgressed)),
        ("GenerationProgressed.prompting", .generationProgressed(generationProgressedPrompting)),
        ("GenerationRendered", .generationRendered(generationRendered)),
        ("GenerationCompleted", .generationCompleted(generationCompleted)),
        ("GenerationFailed", .generationFailed(generationFailed)),
        ("MediaUpdated", .mediaUpdated(mediaUpdated)),
        ("SettingsRequest", .settingsRequest(settingsRequest)),
        ("SettingsRequest.update", .settingsRequest(settingsUpdate)),
        ("SettingsReply", .settingsReply(settingsReply)),
        ("SettingsChanged", .settingsChanged(settingsChanged)),
        ("BackendWebhookReceived", .backendWebhookReceived(backendWebhookReceived)),
    ]
}
