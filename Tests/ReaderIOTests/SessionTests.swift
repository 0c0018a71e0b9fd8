import Testing
import Synchronization
import ReaderIO
import ReaderPipeline
import SwipeDecoder
import SwipeSynth
import Magstripe
import AudioFile

@Suite("Reader session on file sources")
struct SessionTests {
    @Test("an unpaced recording of three swipes gives three reads, then the end of the source")
    func unpaced() {
        let audio = swipeSequence([(track1Text, .track1), (track2Text, .track2), (track3Text, .track3)])
        let log = EventLog()
        let session = ReaderSession(source: FileSource(name: "three", audio: audio, paced: false), onEvent: log.add)
        session.start()
        #expect(log.waitForEnd(seconds: 30))
        session.waitUntilFinished()
        #expect(log.okTexts == [track1Text, track2Text, track3Text])
        #expect(log.end == .some(.endOfSource))
        #expect(session.statistics.framesCaptured == audio.frameCount)
        #expect(session.statistics.dropped == 0)
        #expect(session.isFinished)
    }

    @Test("a source at a rate the decoder does not take (500 Hz, 192 001 Hz, 0, negative) ends the session at start, naming the rate; no trap, no thread",
          arguments: [500, 7_999, 192_001, 0, -44_100])
    func unsupportedRate(rate: Int) {
        let log = EventLog()
        let source = FileSource(name: "odd-rate", audio: PCMAudio(sampleRate: rate, channels: [[Float](repeating: 0, count: 100)]), paced: false)
        let session = ReaderSession(source: source, onEvent: log.add)
        session.start()
        #expect(session.isFinished)
        #expect(log.end == .some(.failed("odd-rate: unsupported sample rate \(rate) Hz: 8000-192000 Hz are read")), "\(log.all)")
        session.waitUntilFinished()
        #expect(session.statistics.framesCaptured == 0)
    }

    @Test("a repeat count whose play would pass Int.max frames does not trap: the recording plays on")
    func hugeRepeat() throws {
        let source = FileSource(name: "forever", audio: PCMAudio(sampleRate: 8_000, channels: [[Float](repeating: 0.25, count: 100)]),
                                paced: false, repeats: .max)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 80)
        defer { buffer.deallocate() }
        var frames = 0
        for _ in 0..<10 { frames += try source.read(into: buffer, frames: 80) }
        #expect(frames == 500 && buffer[0] == 0.25)  // 80 + 20 frames per pass of the 100-frame recording
    }

    @Test("a paced recording arrives in real time and the read follows the swipe's end closely")
    func paced() {
        let swipe = synthesizedSwipe([(track2Text, .track2)], lead: 0.1, trail: 0.25)
        let audio = PCMAudio(sampleRate: swipe.sampleRate, channels: swipe.channels)
        let log = EventLog()
        let session = ReaderSession(source: FileSource(name: "paced", audio: audio, paced: true), onEvent: log.add)
        let started = monotonicSeconds()
        session.start()
        #expect(log.waitForEnd(seconds: 10))
        session.waitUntilFinished()
        let elapsed = monotonicSeconds() - started
        #expect(elapsed >= audio.duration - 0.02, "played in \(elapsed) s, the audio lasts \(audio.duration) s")
        #expect(log.okTexts == [track2Text])
        // Arrival of the read, against the time of the swipe's last transition in the paced stream.
        let events = log.all, times = log.arrivalTimes
        if let k = events.firstIndex(where: { if case .swipe = $0 { true } else { false } }) {
            let latency = times[k] - started - swipe.swipeEnd
            // The benchmark states the figure; here a margin for a loaded test machine.
            #expect(latency < 0.1, "latency \(latency * 1_000) ms")
        }
    }

    @Test("a decoder that stalls while the audio runs on: the ring drops what it cannot hold and marks the gap, the swipe the gap cuts is read on neither side, and the swipes before and after it read")
    func stalledConsumer() {
        let first = synthesizedSwipe([(track2Text, .track2)], lead: 0.1, trail: 0.15, seed: 1)
        // Slow (about 0.55 s): the ring overflows while it passes.
        let cut = synthesizedSwipe([(track1Text, .track1)], speed: 150, lead: 0.1, trail: 0.1, seed: 2)
        let last = synthesizedSwipe([(track3Text, .track3)], lead: 1.5, trail: 0.3, seed: 3)
        let audio = PCMAudio(sampleRate: 44_100, channels: [first.channels[0] + cut.channels[0] + last.channels[0]])
        let log = EventLog()
        let stalled = Atomic<Bool>(false)
        var configuration = ReaderSession.Configuration()
        configuration.ringSeconds = 0.2      // 16 384 samples: 0.37 s
        let session = ReaderSession(source: FileSource(name: "stall", audio: audio, paced: true), configuration: configuration) { event in
            log.add(event)
            // The first swipe's delivery holds the decoder thread for 1.2 s.
            if case .swipe = event, !stalled.exchange(true, ordering: .relaxed) { sleepMilliseconds(1_200) }
        }
        session.start()
        #expect(log.waitForEnd(seconds: 20))
        session.waitUntilFinished()
        let statistics = session.statistics
        #expect(statistics.dropped > 20_000, "\(statistics)")
        #expect(statistics.gaps >= 1, "\(statistics)")
        #expect(log.okTexts == [track2Text, track3Text])
    }

    @Test("stop() ends a paced session promptly, with both threads joined")
    func stop() {
        let silence = PCMAudio(sampleRate: 44_100, channels: [[Float](repeating: 0, count: 44_100 * 20)])
        let log = EventLog()
        let session = ReaderSession(source: FileSource(name: "silence", audio: silence, paced: true), onEvent: log.add)
        session.start()
        sleepMilliseconds(100)
        let before = monotonicSeconds()
        session.stop()
        #expect(monotonicSeconds() - before < 0.5)
        #expect(log.end == .some(nil))
        #expect(session.isFinished)
        #expect(log.swipes.isEmpty)
    }

    /// The events of a session on `swipe`'s channels, replayed flat out to the end.
    func played(_ swipe: SynthesizedSwipe, name: String) -> EventLog {
        let log = EventLog()
        let source = FileSource(name: name, audio: PCMAudio(sampleRate: swipe.sampleRate, channels: swipe.channels), paced: false)
        let session = ReaderSession(source: source, onEvent: log.add)
        session.start()
        #expect(log.waitForEnd(seconds: 30))
        session.waitUntilFinished()
        return log
    }

    /// Seconds of audio from the synthesized swipe's end to where `merged` was decided.
    func latency(_ merged: Swipe, after swipe: SynthesizedSwipe) throws -> Double {
        let decided = try #require(merged.decidedAt)
        return Double(decided) / Double(swipe.sampleRate) - swipe.swipeEnd
    }

    @Test("two heads: the tracks of one swipe arrive merged as one result")
    func twoHeads() {
        let swipe = synthesizedSwipe([(track1Text, .track1), (track2Text, .track2)])
        #expect(swipe.channels.count == 2)
        let log = played(swipe, name: "stereo")
        #expect(log.swipes.count == 1)
        let tracks = log.swipes.first?.tracks ?? []
        #expect(tracks.map(\.channel) == [0, 1])
        #expect(Set(log.okTexts) == [track1Text, track2Text])
    }

    @Test("two heads: the merged result is stamped where the merge let it go, within 50 ms of audio after the swipe's end")
    func twoHeadsDecidedAt() throws {
        let swipe = synthesizedSwipe([(track1Text, .track1), (track2Text, .track2)], trail: 1)
        let log = played(swipe, name: "stereo")
        let merged = try #require(log.swipes.first)
        #expect(merged.tracks.count == 2)
        let latency = try latency(merged, after: swipe)
        #expect(latency >= 0 && latency <= 0.050, "decided \(latency * 1000) ms after the swipe's end")
    }

    @Test("two heads, one of which was digitally silent until 0.3 s before the swipe: the merged result is still decided within 50 ms of audio after the swipe's end")
    func twoHeadsOneStepped() throws {
        var swipe = synthesizedSwipe([(track1Text, .track1), (track2Text, .track2)], lead: 0.8, trail: 1)
        let change = Int((swipe.swipeStart - 0.3) * Double(swipe.sampleRate))
        for i in 0..<change { swipe.channels[1][i] = 0 }
        let log = played(swipe, name: "stepped")
        #expect(Set(log.okTexts) == [track1Text, track2Text])
        let merged = try #require(log.swipes.first { $0.tracks.count == 2 })
        let latency = try latency(merged, after: swipe)
        #expect(latency >= 0 && latency <= 0.050, "decided \(latency * 1000) ms after the swipe's end")
    }

    @Test("heads whose swipes do not overlap stay separate results")
    func separateSwipes() {
        let a = synthesizedSwipe([(track1Text, .track1)], trail: 0.5).channels[0]
        let b = synthesizedSwipe([(track2Text, .track2)], seed: 9).channels[0]
        // Channel 0 swipes first, channel 1 after it is over.
        let n = a.count + b.count
        let left = a + [Float](repeating: 0, count: b.count)
        let right = [Float](repeating: 0, count: a.count) + b
        #expect(left.count == n && right.count == n)
        let log = EventLog()
        let session = ReaderSession(source: FileSource(name: "apart", audio: PCMAudio(sampleRate: 44_100, channels: [left, right]), paced: false),
                                    onEvent: log.add)
        session.start()
        #expect(log.waitForEnd(seconds: 30))
        session.waitUntilFinished()
        #expect(log.swipes.count == 2)
        #expect(log.okTexts == [track1Text, track2Text])
    }

    @Test("a broken or missing file is refused with its name and what is wrong")
    func badFiles() throws {
        #expect(throws: FileSource.Failure.self) { try FileSource(wav: "/nonexistent/swipe.wav", paced: false) }
        do {
            _ = try FileSource(wav: "/nonexistent/swipe.wav", paced: false)
        } catch {
            #expect(error.description.contains("/nonexistent/swipe.wav"))
        }
        let path = "/tmp/posmini-test-\(getpidValue())-odd.raw"
        try writeBytes([1, 2, 3], to: path)
        do {
            _ = try FileSource(raw: path, rate: 44_100, channels: 1, format: .s16le, paced: false)
            Issue.record("a 3-byte file of 2-byte frames was accepted")
        } catch {
            #expect(error.description.contains("not a whole number"))
        }
    }
}
