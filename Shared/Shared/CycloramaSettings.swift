import Foundation

/// Every setting as the type it means, read once from the settings' strings by
/// ``SettingsCatalog``'s rules: a value the catalog refuses (or a missing one) keeps the default the
/// seed migration stores. The one place the strings are parsed; services read these properties.
public struct CycloramaSettings: Sendable, Equatable {
    public var enabled = true
    public var backend = GenerationBackend.local
    /// `runpodImageDelivery`: `auto`, `url` or `inline`.
    public var imageDelivery = "auto"
    public var defaultShadow = ShadowStyle.soft
    public var defaultBackground = BackgroundColor.white
    public var enableUpscaling = false
    /// `aiImageDefaultFraming`: the preset jobs take when they name none.
    public var defaultFraming = FramingPreset.none
    /// `aiImageFidelityMode`: what a RunPod result that changed the product gets.
    public var fidelityMode = FidelityMode.restore
    public var inferenceSteps = 28
    public var guidance = 3.5
    public var resolution = 1024
    public var maxConcurrent = 3
    public var abTestEnabled = false
    /// `aiImageReviewBeforeReplace`: batches that do not say hold their results for review.
    public var reviewBeforeReplace = false
    public var enableWebhooks = false
    /// `aiImageWebhookUrl`; nil when empty.
    public var webhookURL: String?
    /// `aiImageNotifyUrl`: where jobs asked for over HTTP without a `notifyUrl` of their own POST
    /// their terminal event (docs/notifications.md); nil when empty.
    public var notifyURL: String?
    public var pricePerMegapixel = 0.03
    /// USD; 0 means no budget.
    public var monthlyBudget = 0.0
    /// Stored values the catalog refuses (key → reason), which kept their default: never written by
    /// the settings-service, so only a database changed behind its back has any.
    public private(set) var unreadable: [String: String] = [:]

    /// The defaults.
    public init() {}

    /// Reads `values` (as the settings-service stores and sends them; secrets are not read here).
    public init(_ values: [String: String]) {
        var unreadable: [String: String] = [:]
        func value(_ key: String) -> String? {
            guard let raw = values[key] else { return nil }
            // What was stored is read as an update would be written, but a value edited into the
            // database by hand may carry surrounding white space: that much is forgiven.
            switch SettingsCatalog.normalize(key, raw.trimmingCharacters(in: .whitespacesAndNewlines)) {
            case .success(let normalized): return normalized
            case .failure(let error):
                unreadable[key] = error.reason
                return nil
            }
        }
        func flag(_ key: String) -> Bool? { value(key).map { $0 == "true" } }
        if let flag = flag("aiImageEnabled") { enabled = flag }
        if let name = value("aiImageBackend"), let choice = GenerationBackend(rawValue: name) { backend = choice }
        if let choice = value("runpodImageDelivery") { imageDelivery = choice }
        if let name = value("aiImageDefaultShadow"), let shadow = ShadowStyle(rawValue: name) { defaultShadow = shadow }
        if let text = value("aiImageDefaultBackground"), let color = BackgroundColor(text) { defaultBackground = color }
        if let flag = flag("aiImageEnableUpscaling") { enableUpscaling = flag }
        if let name = value("aiImageDefaultFraming"), let preset = FramingPreset(rawValue: name) { defaultFraming = preset }
        if let name = value("aiImageFidelityMode"), let mode = FidelityMode(rawValue: name) { fidelityMode = mode }
        if let number = value("aiImageInferenceSteps").flatMap(Int.init) { inferenceSteps = number }
        if let number = value("aiImageGuidance").flatMap(Double.init) { guidance = number }
        if let number = value("aiImageResolution").flatMap(Int.init) { resolution = number }
        if let number = value("aiImageMaxConcurrent").flatMap(Int.init) { maxConcurrent = number }
        if let flag = flag("aiImageAbTestEnabled") { abTestEnabled = flag }
        if let flag = flag("aiImageReviewBeforeReplace") { reviewBeforeReplace = flag }
        if let flag = flag("aiImageEnableWebhooks") { enableWebhooks = flag }
        if let url = value("aiImageWebhookUrl") { webhookURL = url.isEmpty ? nil : url }
        if let url = value("aiImageNotifyUrl") { notifyURL = url.isEmpty ? nil : url }
        if let number = value("aiImagePricePerMegapixel").flatMap(Double.init) { pricePerMegapixel = number }
        if let number = value("aiImageMonthlyBudget").flatMap(Double.init) { monthlyBudget = number }
        self.unreadable = unreadable
    }
}
