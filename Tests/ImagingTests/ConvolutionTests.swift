import CImagingBridge
import CImagingBridgeChecks
import Foundation
@testable import Imaging  // bridgeCall: a failing bridge call throws its message
import Testing

/// The segmentation model's convolution layer (`CImagingBridge/convolution.cpp`) against OpenCV's
/// own: every path (Winograd, im2col, pointwise) and the edges (sizes that are not a multiple of the
/// tile, no padding, dilation, a fused ReLU) give the same numbers.
@Suite("Convolution", .blockingWork)
struct ConvolutionTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var channels, outputs, height, width: Int
        var kernel = 3, dilation = 1, pad = 1
        var relu = false
        var winograd: Bool
        var testDescription: String {
            "\(channels)->\(outputs) \(width)x\(height) k\(kernel) d\(dilation) p\(pad)\(relu ? " relu" : "")"
                + (winograd ? " winograd" : " im2col")
        }
    }

    static let cases: [Case] = [
        Case(channels: 128, outputs: 64, height: 64, width: 64, relu: true, winograd: true),
        Case(channels: 32, outputs: 16, height: 37, width: 45, winograd: true),  // partial tiles
        Case(channels: 16, outputs: 24, height: 40, width: 36, pad: 0, relu: true, winograd: true),
        Case(channels: 8, outputs: 8, height: 20, width: 20, winograd: false),  // map too small
        Case(channels: 16, outputs: 16, height: 33, width: 35, dilation: 2, pad: 2, relu: true, winograd: false),
        Case(channels: 16, outputs: 16, height: 30, width: 30, dilation: 8, pad: 8, winograd: false),
        Case(channels: 3, outputs: 64, height: 50, width: 50, relu: true, winograd: false),  // 3 channels in
        Case(channels: 64, outputs: 1, height: 40, width: 40, winograd: false),  // one channel out
        Case(channels: 16, outputs: 8, height: 24, width: 24, kernel: 1, pad: 0, winograd: false),
    ]

    @Test("matches OpenCV's convolution", arguments: cases)
    func matchesOpenCV(_ c: Case) throws {
        var difference = 0.0, reference = 0.0
        var winograd: Int32 = 0
        try bridgeCall {
            CImagingBridge_convolutionCheck(
                Int32(c.channels), Int32(c.outputs), Int32(c.height), Int32(c.width), Int32(c.kernel),
                Int32(c.dilation), Int32(c.pad), c.relu ? 1 : 0, &difference, &reference, &winograd, $0, $1)
        }
        #expect(reference > 1, "the reference output is not trivially small")
        // Winograd F(4x4, 3x3) reorders float sums; its error is known to be ~1e-5 of the output scale.
        #expect(difference <= 1e-4 * reference, "largest difference \(difference) against \(reference)")
        #expect((winograd == 1) == c.winograd)
    }
}

/// The whole model as the engine loads it: every convolution runs in the engine's layer, and the
/// output (the mask's source) matches OpenCV's own convolutions.
@Suite("Model convolutions", .blockingWork)
struct ModelConvolutionTests {
    /// Every model `scripts/fetch-model.sh` knows (`make test-models` fetches them all).
    @Test(arguments: PipelineConfiguration.knownModels)
    func everyConvolutionOfTheModelRunsInOurLayerAndTheOutputMatches(model: String) async throws {
        let path = PipelineConfiguration.modelPath(for: model)
        try #require(FileManager.default.fileExists(atPath: path), "fetched by make test-models")
        var convolutions: Int32 = 0, fast: Int32 = 0, difference = -1.0
        try bridgeCall { CImagingBridge_modelConvolutionCheck(path, &convolutions, &fast, &difference, $0, $1) }
        #expect(convolutions == 119, "U²-Net and U²-Net-p have 119 Conv nodes")
        #expect(fast == convolutions, "all of them run in FastConvolution")
        // The output is a sigmoid in 0...1; measured difference ~3e-8.
        #expect(difference >= 0 && difference <= 1e-4, "largest output difference \(difference)")
    }
}
