import Crypto
import Foundation

/// The segmenter's coarse maps of the photos rendered last, by the exact pixels it was given (after
/// the watermark stage): a photo rendered again with other options — A/B variations, another
/// background, a retry, the fidelity guard's cut-out of a photo it already rendered — skips the
/// model's forward pass, the larger part of a render (docs/engine.md, "Segmentation cache").
///
/// The key is the SHA-256 of the pixels with their size, so a hit is the map the segmenter would
/// compute again (its output depends on nothing else; the sides and the model are the pipeline's).
/// Concurrent renders of the same photo compute it once: the later ones wait for the first
/// (variations arrive together). Least recently used maps go first, beyond `capacity` maps or
/// ``maxBytes`` (a map is side² floats: 0.4 MB at 320², 4 MB at 1024²); `capacity` 0 turns it off.
/// Thread-safe; blocking, as the pipeline is.
final class SegmentationCache: @unchecked Sendable {
    struct Key: Hashable {
        var digest: SHA256.Digest
        var width: Int
        var height: Int
    }

    let capacity: Int
    /// The most the maps may hold together, whatever `capacity` says (the newest map is always kept).
    static let maxBytes = 64 << 20
    /// Guards everything below.
    private let condition = NSCondition()
    private var maps: [Key: [Float]] = [:]
    /// Keys from least to most recently used.
    private var order: [Key] = []
    private var computing: Set<Key> = []
    private var bytes = 0
    private var hits = 0
    private var misses = 0

    init(capacity: Int) { self.capacity = max(0, capacity) }

    /// The map for these pixels: the cached one (`reused`), or `compute()`'s, kept for next time.
    func map(
        for rgb: [UInt8], width: Int, height: Int, compute: () throws(ImagingError) -> [Float]
    ) throws(ImagingError) -> (map: [Float], reused: Bool) {
        guard capacity > 0 else {
            condition.lock()
            misses += 1
            condition.unlock()
            return (try compute(), false)
        }
        let key = Key(digest: SHA256.hash(data: rgb), width: width, height: height)
        condition.lock()
        while true {
            if let map = maps[key] {
                touch(key)
                hits += 1
                condition.unlock()
                return (map, true)
            }
            guard computing.contains(key) else { break }
            // Another render of the same photo is computing it: its map serves this one too (if it
            // fails, the loop finds no map and no one computing, and this render computes its own).
            condition.wait()
        }
        computing.insert(key)
        misses += 1
        condition.unlock()
        defer {
            condition.lock()
            computing.remove(key)
            condition.broadcast()
            condition.unlock()
        }
        let map = try compute()
        condition.lock()
        if let replaced = maps.updateValue(map, forKey: key) { bytes -= replaced.count * 4 }
        bytes += map.count * 4
        touch(key)
        while order.count > capacity || (bytes > Self.maxBytes && order.count > 1) {
            if let evicted = maps.removeValue(forKey: order.removeFirst()) { bytes -= evicted.count * 4 }
        }
        condition.unlock()
        return (map, false)
    }

    /// Called with the lock held.
    private func touch(_ key: Key) {
        if let index = order.firstIndex(of: key) { order.remove(at: index) }
        order.append(key)
    }

    /// How many renders reused a map and how many computed one (for tests and `/health`).
    var counts: (hits: Int, misses: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (hits, misses)
    }
}
