import CImagingBridge

/// Calls a bridge function that reports failure as a status plus a message in an error buffer.
func bridgeCall(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(ImagingError) {
    var buffer = [CChar](repeating: 0, count: 512)
    let status = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    guard status != 0 else { return }
    let message = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    throw ImagingError(ImagingError.Code(bridgeStatus: status), message.isEmpty ? "imaging failed" : message)
}

extension ImagingError.Code {
    init(bridgeStatus: Int32) {
        switch UInt32(bitPattern: bridgeStatus) {
        case CImagingBridgeStatusEmptyInput.rawValue: self = .emptyInput
        case CImagingBridgeStatusUndecodable.rawValue: self = .undecodable
        case CImagingBridgeStatusTooLarge.rawValue: self = .tooLarge
        case CImagingBridgeStatusUnsupported.rawValue: self = .unsupported
        default: self = .internal
        }
    }
}

/// Copies a malloc'd bridge buffer into a Swift array and frees it.
func takeBuffer(_ pointer: UnsafeMutablePointer<UInt8>?, count: Int) -> [UInt8] {
    guard let pointer else { return [] }
    defer { CImagingBridge_free(pointer) }
    return Array(UnsafeBufferPointer(start: pointer, count: count))
}

/// Owns the C segmenter (a pool of OpenCV networks, thread-safe on the C++ side).
final class SegmenterHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(pointer: OpaquePointer) { self.pointer = pointer }

    deinit { CImagingBridge_segmenterDestroy(pointer) }
}
