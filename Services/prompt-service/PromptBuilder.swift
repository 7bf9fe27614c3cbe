import Foundation
import RunPod
import Shared

/// Builds the FLUX.1 Kontext prompt for a generation (a faithful port of the seed's
/// `promptBuilder.js`), and the backend-specific `input` of the RunPod `/run` body.
///
/// Additions to the seed: the `none` shadow, the `transparent` background, `removeWatermark: false`
/// (the watermark lines give way to an instruction to keep overlays), and sanitised custom instructions.
enum PromptBuilder {
    /// The seed's SHADOW_PRESETS (`none` has its own sentence, see ``shadowLine(_:)``).
    static let shadowPresets: [ShadowStyle: String] = [
        .minimal: "subtle minimal drop shadow barely visible",
        .soft: "soft realistic drop shadow beneath the product for depth and dimension",
        .dramatic: "strong dramatic shadow with defined edges for visual impact",
    ]

    /// The seed's BACKGROUND_COLORS; keys are upper case like a normalised ``BackgroundColor``.
    static let backgroundColors: [String: String] = [
        "#FFFFFF": "pure white",
        "#F3F4F6": "light gray",
        "#FFF8F0": "warm white with slight cream tone",
        "#F0F9FF": "cool white with slight blue tone",
    ]

    /// `pure white`, or `custom color #12AB34` for colours the seed has no name for.
    static func backgroundDescription(_ color: BackgroundColor) -> String {
        backgroundColors[color.rawValue] ?? "custom color \(color.rawValue)"
    }

    /// The complete prompt for `options`, line by line as in the seed.
    static func prompt(for options: ResolvedGenerationOptions) -> String {
        var lines = [
            backgroundLine(options.backgroundColor),
            shadowLine(options.shadowStyle),
            "Keep the product in the exact same position, scale, and orientation.",
            "Preserve all original product details, textures, colors, and any text or labels that are part of the product itself.",
        ]
        if options.removeWatermark {
            lines.append(
                "Remove any watermarks, logos, brand overlays, or text overlays that are not part of the original product packaging or design.")
        } else {
            // Without this the model tends to clean overlays away as "distracting elements".
            lines.append("Leave any existing watermarks, logos, and text overlays exactly as they are.")
        }
        lines.append("Professional commercial product photography style with even studio lighting.")
        lines.append("High quality, sharp focus, commercial e-commerce standard.")
        lines.append(
            options.removeWatermark
                ? "Clean and professional finish without any distracting elements or watermarks."
                : "Clean and professional finish without any distracting elements.")
        let instructions = sanitizeInstructions(options.customInstructions ?? "")
        if !instructions.isEmpty { lines.append(instructions) }
        return lines.joined(separator: "\n")
    }

    static func backgroundLine(_ color: BackgroundColor) -> String {
        if color.isTransparent {
            return "Remove the background completely and leave it fully transparent, with no studio backdrop, floor, or color."
        }
        return "Replace the background with a clean professional \(backgroundDescription(color)) studio background."
    }

    static func shadowLine(_ style: ShadowStyle) -> String {
        guard let description = shadowPresets[style] else {
            return "Do not add any shadow; the product sits on the background with no cast or drop shadow."
        }
        return "Add a \(description)."
    }

    /// Makes publisher text safe to append as the prompt's last line: control characters and line
    /// breaks become spaces, invisible format characters (bidi overrides, zero-width) go, runs of whitespace
    /// collapse to one space, the ends are trimmed, and the length is capped at 500 characters.
    static func sanitizeInstructions(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        var pendingSpace = false
        for scalar in text.unicodeScalars {
            let category = scalar.properties.generalCategory
            // Invisible format characters (bidi overrides, zero-width spaces) carry no words: drop them.
            if category == .format { continue }
            let isBreak = category == .control || category == .lineSeparator || category == .paragraphSeparator
                || scalar.properties.isWhitespace
            if isBreak {
                pendingSpace = !scalars.isEmpty
                continue
            }
            if pendingSpace { scalars.append(" ") }
            pendingSpace = false
            scalars.append(scalar)
        }
        let cleaned = String(scalars)
        let limit = GenerationOptions.maxCustomInstructionsLength
        guard cleaned.count > limit else { return cleaned }
        var capped = String(cleaned.prefix(limit))
        while capped.last == " " { capped.removeLast() }
        return capped
    }

    /// One A/B variation: its name, its options and its prompt.
    struct PromptVariation: Sendable, Hashable {
        var name: String
        var options: ResolvedGenerationOptions
        var prompt: String
    }

    /// The seed's A/B set (Minimal / Soft (Recommended) / Dramatic shadow) on top of `base`'s other options.
    static func abTestPrompts(base: ResolvedGenerationOptions = GenerationOptions().resolved()) -> [PromptVariation] {
        StandardVariations.all.map { variation in
            var options = base
            options.shadowStyle = variation.shadowStyle
            return PromptVariation(name: variation.name, options: options, prompt: prompt(for: options))
        }
    }
}

/// FLUX Kontext knobs from the settings `aiImageResolution`, `aiImageInferenceSteps`, `aiImageGuidance`.
struct FluxKontextParameters: Sendable, Hashable {
    /// The output's scale: a square photo comes back `resolution` x `resolution` (seed: 1024, 1536
    /// or 2048). Default 1024.
    var resolution = 1024
    /// 1-50 (RunPod's range). Default 28.
    var inferenceSteps = 28
    /// 0-10 (RunPod's range). Default 3.5.
    var guidance = 3.5

    init() {}

    /// The sizes FLUX.1 Kontext was trained at (about one megapixel, multiples of 16), widest first;
    /// at other resolutions they are scaled and kept to multiples of 16.
    static let trainedSizes: [(width: Int, height: Int)] = [
        (1568, 672), (1504, 688), (1456, 720), (1392, 752), (1328, 800), (1248, 832), (1184, 880), (1104, 944), (1024, 1024),
        (944, 1104), (880, 1184), (832, 1248), (800, 1328), (752, 1392), (720, 1456), (688, 1504), (672, 1568),
    ]

    /// Kontext's `size` ("W*H") for a photo of `width` x `height`: the trained aspect nearest the
    /// photo's, at `resolution` (square when the photo's size is unknown).
    func size(forWidth width: Int?, height: Int?) -> String {
        guard let width, let height, width > 0, height > 0 else { return "\(resolution)*\(resolution)" }
        let aspect = log(Double(width) / Double(height))
        let nearest = Self.trainedSizes.min { a, b in
            abs(log(Double(a.width) / Double(a.height)) - aspect) < abs(log(Double(b.width) / Double(b.height)) - aspect)
        } ?? (1024, 1024)
        func scaled(_ side: Int) -> Int { max(16, Int((Double(side) * Double(resolution) / 1024 / 16).rounded()) * 16) }
        return "\(scaled(nearest.width))*\(scaled(nearest.height))"
    }

    /// From the settings (the catalog keeps them within RunPod's ranges: 20-40 steps, guidance 2-5,
    /// 1024 / 1536 / 2048).
    init(settings: CycloramaSettings) {
        resolution = settings.resolution
        inferenceSteps = settings.inferenceSteps
        guidance = settings.guidance
    }
}

extension PromptBuilder {
    /// The `input` object of the RunPod `/run` body for `backend`.
    ///
    /// - `local`: the local engine's structured input (it does not read prompts).
    /// - `runpod`: FLUX.1 Kontext [dev]'s input (see RUNPOD.md); upscaling happens later in the ingestor.
    static func input(
        for backend: GenerationBackend, prompt: String, imageURL: String,
        options: ResolvedGenerationOptions, flux: FluxKontextParameters = FluxKontextParameters(),
        imageSize: (width: Int, height: Int)? = nil
    ) -> JSONValue {
        switch backend {
        case .local:
            return localInput(imageURL: imageURL, options: options).json
        case .runpod:
            return [
                "prompt": .string(prompt),
                "image": .string(imageURL),
                "negative_prompt": "",
                "size": .string(flux.size(forWidth: imageSize?.width, height: imageSize?.height)),
                "num_inference_steps": .int(flux.inferenceSteps),
                "guidance": .double(flux.guidance),
                "seed": -1,
                "output_format": "png",
                "enable_safety_checker": true,
            ]
        }
    }

    /// The local engine's input for `options`. The message vocabulary and the engine's are the same
    /// words (a test walks every choice); a word the engine lacked would fall back to its default.
    static func localInput(imageURL: String, options: ResolvedGenerationOptions) -> StudioShotInput {
        StudioShotInput(
            image: imageURL,
            background: StudioShotInput.Background(text: options.backgroundColor.rawValue) ?? .color(red: 255, green: 255, blue: 255),
            shadow: StudioShotInput.Shadow(rawValue: options.shadowStyle.rawValue) ?? .soft,
            removeWatermark: options.removeWatermark,
            upscale: options.upscale.rawValue,
            framing: options.framing)
    }

    /// The dispatch command for an accepted request: options resolved against `defaults`, the
    /// prompt built, the input shaped for `backend`. Pure, so the handler is testable without a broker.
    static func dispatch(
        for request: RequestGeneration, defaults: GenerationDefaults, backend: GenerationBackend,
        imageURL: String, flux: FluxKontextParameters = FluxKontextParameters(), source: JobSource? = nil,
        now: Date = Date()
    ) -> DispatchGeneration {
        let options = request.options.resolved(with: defaults)
        let prompt = prompt(for: options)
        return DispatchGeneration(
            correlationId: request.correlationId, occurredAt: now, jobId: request.jobId, mediaId: request.mediaId,
            kind: request.kind, batchId: request.batchId, variationName: request.variationName, backend: backend,
            prompt: prompt,
            input: input(
                for: backend, prompt: prompt, imageURL: imageURL, options: options, flux: flux,
                imageSize: source.map { ($0.width, $0.height) }),
            options: options, replyTo: request.replyTo, attempt: 1, source: source)
    }
}
