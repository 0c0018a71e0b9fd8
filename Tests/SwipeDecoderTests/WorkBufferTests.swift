import Testing
import Magstripe
import SwipeSynth
@testable import SwipeDecoder

/// The analyser keeps its work buffers between segments up to a second long; a longer segment's
/// buffers are given back once it is analysed, so that one long stretch does not set the
/// decoder's memory for good.
@Suite("work buffers after long segments")
struct WorkBufferTests {
    @Test("a swipe's buffers stay; after 3 s of noise they are given back; the next swipe reads the same")
    func longSegmentGivesBack() throws {
        let rate = 44_100
        let swipe = SwipeSynthesizer.render(scenario(.track2, speed: .constant(400))).channels[0]
        let analyzer = SwipeAnalyzer(sampleRate: rate, channel: 0, maskPolicy: .standard)
        let first = swipe.withUnsafeBufferPointer { analyzer.analyze($0, startTime: 0, noiseRMS: 1e-4) }
        #expect(first?.readTracks.first?.isOK == true)
        #expect(analyzer.workCapacity >= swipe.count, "a short segment's buffers are kept for the next")
        var random = TestRandom(seed: 9)
        let noise = (0..<(3 * rate)).map { _ in Float(random.next() >> 40) / Float(1 << 24) - 0.5 }
        _ = noise.withUnsafeBufferPointer { analyzer.analyze($0, startTime: 1, noiseRMS: 1e-4) }
        #expect(analyzer.workCapacity < rate, "3 s of buffers kept: \(analyzer.workCapacity) samples")
        let again = swipe.withUnsafeBufferPointer { analyzer.analyze($0, startTime: 5, noiseRMS: 1e-4) }
        #expect(again?.readTracks.first?.isOK == true)
        #expect(again?.readTracks.first?.text == first?.readTracks.first?.text)
    }

    @Test("the segment buffer is resident only as far as audio filled it, and past a second not after the segment")
    func segmentPages() {
        let rate = 44_100
        let decoder = try! SwipeDecoder(sampleRate: rate)
        #expect(decoder.residentSegmentBytes == 0, "nothing held yet")
        var random = TestRandom(seed: 4)
        let quiet = [Float](repeating: 0, count: rate / 2)
        let loud = (0..<(3 * rate)).map { _ in Float(random.next() >> 40) / Float(1 << 24) - 0.5 }
        _ = decoder.push(quiet)
        _ = decoder.push(loud)
        let holding = decoder.residentSegmentBytes
        #expect(holding >= 2 * rate * 4, "3 s of noise in the open segment: \(holding) bytes")
        _ = decoder.push(quiet + quiet)
        #expect(decoder.segmentsAnalyzed == 1)
        let after = decoder.residentSegmentBytes
        #expect(after <= Int(SwipeAnalyzer.keptSeconds * Double(rate)) * 4 + 8_192, "after the segment: \(after) bytes")
    }
}
