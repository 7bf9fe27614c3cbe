import CImagingBridge
import CImagingBridgeChecks
@testable import Imaging  // bridgeCall: a failing bridge call throws its message
import Testing

/// The striped filters (`bridge_internal.hpp`): OpenCV's single-threaded neighbourhood filters run
/// in horizontal stripes over the threads give the whole-image result, edges included: exactly for
/// the median and the Gaussian, to the last bit of a running sum for the box mean.
@Suite("Striped filters", .blockingWork)
struct StripedFilterTests {
    @Test("equal the whole-image filter", arguments: [
        (kind: 0, size: 9, width: 512, height: 300),  // the watermark fit's median
        (kind: 0, size: 15, width: 97, height: 200),  // a large kernel on a narrow image
        (kind: 1, size: 13, width: 640, height: 480),  // the guided filter's box means
        (kind: 1, size: 35, width: 50, height: 333),
        (kind: 2, size: 8, width: 512, height: 512),  // Gaussian, sigma 2
        (kind: 2, size: 6, width: 31, height: 200),  // sigma 1.5
    ])
    func equalWholeImage(_ c: (kind: Int, size: Int, width: Int, height: Int)) throws {
        var difference = -1.0, largest = 0.0
        try bridgeCall {
            CImagingBridge_stripedFilterCheck(
                Int32(c.width), Int32(c.height), Int32(c.kind), Int32(c.size), &difference, &largest, $0, $1)
        }
        #expect(largest > 0)
        if c.kind == 1 {
            // A running sum restarted at each stripe: float rounding, a few ulps of the largest value.
            #expect(difference <= 1e-6 * largest, "\(difference) of \(largest)")
        } else {
            #expect(difference == 0)
        }
    }
}
