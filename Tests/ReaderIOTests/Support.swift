import Synchronization
import ReaderIO
import ReaderPipeline
import SwipeDecoder
import SwipeSynth
import Magstripe
import AudioFile
@_exported import TestSupport


/// One swipe of `texts` (one head each) at a constant speed, with silence around it.
func synthesizedSwipe(_ texts: [(String, TrackFormat)], speed: Double = 400, rate: Int = 44_100,
                      lead: Double = 0.2, trail: Double = 0.3, seed: UInt64 = 3) -> SynthesizedSwipe {
    var audio = AudioPath(sampleRate: rate)
    audio.snr = 35
    audio.level = -14
    audio.highPass = 30
    audio.leadingSilence = lead
    audio.trailingSilence = trail
    let scenario = SwipeScenario(tracks: texts.map { try! StripeTrack(text: $0.0, format: $0.1) },
                                 motion: Motion(speed: .constant(speed)), audio: audio, seed: seed)
    return SwipeSynthesizer.render(scenario)
}

/// Several single-head swipes one after the other, as one recording.
func swipeSequence(_ texts: [(String, TrackFormat)], rate: Int = 44_100) -> PCMAudio {
    var samples: [Float] = []
    for (k, t) in texts.enumerated() {
        samples += synthesizedSwipe([t], rate: rate, seed: UInt64(k + 1)).channels[0]
    }
    return PCMAudio(sampleRate: rate, channels: [samples])
}

/// Collects a session's events; `waitForEnd` blocks until `.ended` (or a timeout).
final class EventLog: @unchecked Sendable {
    private let events = Mutex<[ReaderEvent]>([])
    private let ended = Atomic<Bool>(false)
    let startTime = monotonicSeconds()
    private let times = Mutex<[Double]>([])

    func add(_ event: ReaderEvent) {
        events.withLock { $0.append(event) }
        times.withLock { $0.append(monotonicSeconds()) }
        if case .ended = event { ended.store(true, ordering: .releasing) }
    }

    var all: [ReaderEvent] { events.withLock { $0 } }
    var arrivalTimes: [Double] { times.withLock { $0 } }

    var swipes: [Swipe] {
        all.compactMap { if case .swipe(let s) = $0 { s } else { nil } }
    }

    var end: CaptureEnd?? {
        for event in all { if case .ended(let reason) = event { return .some(reason) } }
        return nil
    }

    var okTexts: [String] { swipes.flatMap { $0.tracks.filter(\.isOK).compactMap { $0.text?.revealed() } } }

    @discardableResult
    func waitForEnd(seconds: Double) -> Bool {
        let deadline = monotonicSeconds() + seconds
        while !ended.load(ordering: .acquiring) {
            if monotonicSeconds() > deadline { return false }
            sleepMilliseconds(5)
        }
        return true
    }
}

func sleepMilliseconds(_ ms: Int) {
    _ = EventFD().wait(timeoutMilliseconds: Int32(ms))
}
