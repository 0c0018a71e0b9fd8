import AudioFile
import Magstripe
import PosminiProtocol
public import ReaderIO
import SwipeSynth
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The test mode for integrators (`posminid --test-key --simulate`): a reader with no hardware
/// whose swipes are published test cards (or recordings), decoded by the real pipeline. Never
/// outside the test key: the daemon refuses `--simulate` without `--test-key`.
public enum SimulatedCard: String, Sendable, Hashable, CaseIterable {
    case visa, mc, amex, unionpay
    /// A swipe pulled back at 45 % of the card: SWIPE_FAILED, partialSwipe.
    case partial
    /// A plug click: no message at all (STATUS counts it in noise_bursts).
    case noise
    /// A loyalty card (no PAN): a nonPayment CARD.
    case loyalty

    /// The cards a `--simulate` reader plays in turn, one for each arm.
    public static let rotation: [SimulatedCard] = [.visa, .mc, .amex, .unionpay]

    /// The Visa test number (4, then fifteen 1s), built at run time: the daemon's memory test
    /// searches its writable memory, where Linux Swift binaries keep `.rodata`, for that number,
    /// and a literal here would be found there in every daemon, simulating or not.
    static var visaNumber: String { "4" + String(repeating: "1", count: 15) }

    /// What is on the card (published test numbers only).
    var track: (text: String, format: TrackFormat)? {
        switch self {
        case .visa, .partial: ("%B\(Self.visaNumber)^CARDHOLDER/TEST A^2812101987654321000000?", .track1)
        case .mc: (";5555555555554444=28122010000000000000?", .track2)
        case .amex: ("%B378282246310005^AMEX/TEST CARD^2812201123456789012345?", .track1)
        case .unionpay: (";6212345678901234=30122010000000000000?", .track2)
        case .loyalty: (";8800123456:0001?", .track2)
        case .noise: nil
        }
    }

    /// The head's signal at `sampleRate`: a hand's swipe at about 40 cm/s, or a plug click.
    func audio(sampleRate: Int) -> [Float] {
        guard let (text, format) = track, let stripe = try? StripeTrack(text: text, format: format) else {
            // A few ms of decaying full-scale ringing.
            return (0..<(sampleRate / 250)).map { k in Float(exp(-Double(k) / 40) * sin(Double(k) * 0.35)) }
        }
        var audio = AudioPath(sampleRate: sampleRate)
        audio.snr = 40
        audio.leadingSilence = 0.1
        audio.trailingSilence = 0.1
        var motion = Motion(speed: .riseAndFall(slowest: 250, fastest: 500))
        if self == .partial { motion.travel = 0...0.45 }
        return SwipeSynthesizer.render(SwipeScenario(tracks: [stripe], motion: motion, audio: audio)).channels[0]
    }
}

/// The simulated reader's audio: a faint noise floor for ever, paced like a sound card, with
/// each queued swipe played over it in turn, in real time or (not `paced`) as fast as the
/// decoder takes it.
public final class SimulatedSource: CaptureSource, @unchecked Sendable {
    public let name = "simulated reader"
    public let sampleRate: Int
    public let channels = 1
    public let periodFrames: Int
    public let isRealTime: Bool
    public let overruns = 0
    /// Swipes waiting to play. Taken by the capture thread only when the lock is free at once:
    /// it never waits on it.
    private let queue = Mutex<[[Float]]>([])
    // The capture thread's own.
    private var clip: [Float] = []
    private var clipAt = 0
    private let idle: [Float]
    private var idleAt = 0
    /// Frame 0 of the paced clock (monotonic seconds), and frames since.
    private var clockStart = 0.0
    private var clockFrames = 0

    public init(sampleRate: Int = 44_100, paced: Bool = true) {
        self.sampleRate = sampleRate
        periodFrames = sampleRate / 100
        isRealTime = paced
        // One second of noise about 66 dB below full scale (a quiet reader's floor), repeated.
        var state: UInt64 = 0x5EED
        idle = (0..<sampleRate).map { _ in
            var sum = 0.0
            for _ in 0..<4 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                sum += Double(state >> 11) / Double(1 << 53) - 0.5
            }
            return Float(sum * 0.0009)
        }
    }

    /// Queues a swipe's audio (played after those queued before it).
    public func play(_ samples: [Float]) { queue.withLock { $0.append(samples) } }

    public func start() throws(CaptureEnd) {
        clockStart = monotonicSeconds()
        clockFrames = 0
    }

    private var playingAtOnce: Bool { !isRealTime && clipAt < clip.count }

    public func waitForData(stop: EventFD) -> Bool {
        if playingAtOnce { return !stop.isSignalled }
        let due = clockStart + Double(clockFrames + periodFrames) / Double(sampleRate)
        let wait = due - monotonicSeconds()
        if wait <= 0 { return !stop.isSignalled }
        return !stop.wait(timeoutMilliseconds: Int32((wait * 1_000).rounded(.up)))
    }

    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(CaptureEnd) -> Int {
        if clipAt >= clip.count, let next = queue.withLockIfAvailable({ $0.isEmpty ? nil : $0.removeFirst() }) ?? nil {
            clip = next
            clipAt = 0
        }
        let atOnce = playingAtOnce
        var n = min(frames, periodFrames)
        if !atOnce {
            let due = Int((monotonicSeconds() - clockStart) * Double(sampleRate))
            n = min(n, max(0, due - clockFrames))
        } else {
            n = min(n, clip.count - clipAt)
        }
        for i in 0..<n {
            var x = idle[idleAt]
            idleAt = idleAt + 1 == idle.count ? 0 : idleAt + 1
            if clipAt < clip.count {
                x += clip[clipAt]
                clipAt += 1
            }
            buffer[i] = x
        }
        if atOnce {
            // The paced clock starts again where the quick play ended.
            clockStart = monotonicSeconds() - Double(clockFrames) / Double(sampleRate)
        } else {
            clockFrames += n
        }
        return n
    }

    public func close() {}
}

/// The simulated reader's swipes: the built-in cards, or the recordings given, in turn (one for
/// each arm unless `manual`), and any card on demand (`posminictl simulate swipe --card`).
final class Simulator: Sendable {
    static let readerID = "simulator"
    let source: SimulatedSource
    /// The recordings given (`--replay` with `--simulate`): played in turn instead of the cards.
    private let recordings: [(name: String, audio: [Float])]
    private let turn = Mutex(0)
    /// No swipe when a client arms: only on `simulate swipe`.
    let manual: Bool

    /// `recordings` must share one rate (the reader's); their first channel is played.
    init(recordings: [(name: String, audio: PCMAudio)], paced: Bool, manual: Bool) {
        source = SimulatedSource(sampleRate: recordings.first?.audio.sampleRate ?? 44_100, paced: paced)
        self.recordings = recordings.map { ($0.name, $0.audio.channels.first ?? []) }
        self.manual = manual
    }

    /// Plays the next swipe of the rotation; returns its name.
    @discardableResult
    func playNext() -> String {
        let k = turn.withLock { k in
            defer { k += 1 }
            return k
        }
        if !recordings.isEmpty {
            let recording = recordings[k % recordings.count]
            source.play(recording.audio)
            return recording.name
        }
        let card = SimulatedCard.rotation[k % SimulatedCard.rotation.count]
        source.play(card.audio(sampleRate: source.sampleRate))
        return card.rawValue
    }

    /// Plays `name` (one of `SimulatedCard`), or the next of the rotation.
    func play(_ name: String?) -> Result<String?, ProtocolError> {
        guard let name else { return .success(playNext()) }
        guard let card = SimulatedCard(rawValue: name) else {
            let names = SimulatedCard.allCases.map(\.rawValue).joined(separator: ", ")
            return .failure(ProtocolError("invalid_request", "no simulated card \"\(name.prefix(64))\": use \(names)"))
        }
        source.play(card.audio(sampleRate: source.sampleRate))
        return .success(card.rawValue)
    }
}
