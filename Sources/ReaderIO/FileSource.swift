public import AudioFile
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A gate that holds replays at the frame they reached until it opens. Two uses, both for tests
/// and demonstrations: `--replay-hold` opens it at the first arm and never closes it (a scripted
/// client arms first, so no swipe is played to nobody, however fast the machine); the replay
/// test seam opens it while the replay's reader is armed and closes it when the arm ends, so a
/// replay played flat out never runs ahead of the client that is to receive its cards. It holds
/// no descriptor: the daemon keeps it for its whole life.
public final class ReplayHold: Sendable {
    private let opened = Atomic<Bool>(false)

    public init() {}

    public func open() { opened.store(true, ordering: .releasing) }

    /// Holds the replay again at the next period.
    public func close() { opened.store(false, ordering: .releasing) }

    public var isOpen: Bool { opened.load(ordering: .acquiring) }

    /// Waits until open (looking every 2 ms: held replays are for tests and demonstrations) or
    /// until `stop` is signalled; false: stopped.
    public func wait(stop: EventFD) -> Bool {
        while !isOpen {
            if stop.wait(timeoutMilliseconds: 2) { return false }
        }
        return !stop.isSignalled
    }
}

/// A recording played as a capture source: as fast as the consumer takes it (tests, `decode`),
/// or paced in real time like a sound card (`--replay`), so that the daemon's timeouts and its
/// latency can be exercised without hardware.
public final class FileSource: CaptureSource, @unchecked Sendable {
    public let name: String
    public let sampleRate: Int
    public let channels: Int
    public let periodFrames: Int
    public let isRealTime: Bool
    public let overruns = 0
    /// Interleaved frames.
    private let samples: [Float]
    /// Frames of the recording, and of the whole play (the recording `repeats` times).
    private let recordingFrames: Int
    private let frameCount: Int
    private let position = Atomic<Int>(0)
    /// When the first period was due (paced sources), monotonic seconds.
    private var startTime = 0.0
    /// Set before `start()`: nothing is played while it is closed, and a paced play's clock stands still.
    public var hold: ReplayHold?
    /// Set before `start()` (a test seam): the play stops for good at this frame, as a device
    /// that goes quiet mid-stream, and `stopped` is told once. A test then acts "in the middle"
    /// of what it plays by an event, not by the clock.
    public var stopAt: Int?
    public var stopped: (@Sendable (_ frame: Int) -> Void)?

    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        case unreadable(FileReadError)
        case notAudio(path: String, WAVError)
        case rawSize(path: String, bytes: Int, frameBytes: Int)
        /// A rate outside `SampleRate.supported` (a WAV's own is refused by the WAV reader, as `notAudio`).
        case unsupportedRate(path: String, UnsupportedSampleRate)
        case badParameters(String)

        public var description: String {
            switch self {
            case .unreadable(let error): "\(error)"
            case .notAudio(let path, let error): "\(path): \(error)"
            case .rawSize(let path, let bytes, let frameBytes):
                "\(path): \(bytes) bytes is not a whole number of \(frameBytes)-byte frames"
            case .unsupportedRate(let path, let error): "\(path): \(error)"
            case .badParameters(let what): what
            }
        }
    }

    /// Audio already in memory (the tests' synthesized swipes), played `repeats` times over.
    public init(name: String, audio: PCMAudio, paced: Bool, periodTime: Double = 0.01, repeats: Int = 1) {
        self.name = name
        sampleRate = audio.sampleRate
        channels = audio.channels.count
        recordingFrames = audio.frameCount
        // `--replay-repeat` is anyone's number: a product past Int.max plays for ever instead of trapping.
        let (total, overflow) = audio.frameCount.multipliedReportingOverflow(by: max(1, repeats))
        frameCount = overflow ? Int.max : total
        var interleaved = [Float](repeating: 0, count: audio.frameCount * audio.channels.count)
        for (c, channel) in audio.channels.enumerated() {
            for i in 0..<audio.frameCount { interleaved[i * audio.channels.count + c] = channel[i] }
        }
        samples = interleaved
        isRealTime = paced
        periodFrames = max(1, Int(Double(audio.sampleRate) * periodTime))
    }

    /// A WAV file (16/24/32-bit integer or 32-bit float, mono or stereo).
    public convenience init(wav path: String, paced: Bool, periodTime: Double = 0.01, repeats: Int = 1) throws(Failure) {
        self.init(name: path, audio: try Self.audio(wav: path), paced: paced, periodTime: periodTime, repeats: repeats)
    }

    /// A WAV file's audio, or what is wrong with it (unreadable, not audio), naming the file.
    public static func audio(wav path: String) throws(Failure) -> PCMAudio {
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path) } catch { throw .unreadable(error) }
        do { return try WAV.decode(bytes) } catch { throw .notAudio(path: path, error) }
    }

    /// Headerless samples with an explicit rate, channel count and encoding.
    public convenience init(raw path: String, rate: Int, channels: Int, format: CaptureFormat, paced: Bool,
                            periodTime: Double = 0.01) throws(Failure) {
        do throws(UnsupportedSampleRate) { try SampleRate.check(rate) } catch { throw .unsupportedRate(path: path, error) }
        guard (1...8).contains(channels) else { throw .badParameters("raw audio needs 1-8 channels, not \(channels)") }
        let bytes: [UInt8]
        do { bytes = try FileBytes.read(path) } catch { throw .unreadable(error) }
        let frameBytes = channels * format.bytesPerSample
        guard bytes.count % frameBytes == 0 else { throw .rawSize(path: path, bytes: bytes.count, frameBytes: frameBytes) }
        var flat = [Float](repeating: 0, count: bytes.count / format.bytesPerSample)
        // An empty file is no audio, and an empty array's buffer may have no address.
        if !flat.isEmpty {
            bytes.withUnsafeBytes { raw in
                flat.withUnsafeMutableBufferPointer { format.convert(raw.baseAddress!, count: $0.count, into: $0.baseAddress!) }
            }
        }
        var perChannel = [[Float]](repeating: [], count: channels)
        for c in 0..<channels { perChannel[c] = stride(from: c, to: flat.count, by: channels).map { flat[$0] } }
        self.init(name: path, audio: PCMAudio(sampleRate: rate, channels: perChannel), paced: paced, periodTime: periodTime)
    }

    /// When playing started (monotonic seconds): frame k is due at `startedAt + k / rate`.
    public var startedAt: Double { startTime }

    /// Frames delivered so far.
    public var framesRead: Int { position.load(ordering: .relaxed) }

    public func start() throws(CaptureEnd) {
        startTime = monotonicSeconds()
    }

    public func waitForData(stop: EventFD) -> Bool {
        if let stopAt, position.load(ordering: .relaxed) >= stopAt {
            stopped?(stopAt)
            stopped = nil
            while !stop.wait(timeoutMilliseconds: 1_000) {}
            return false
        }
        if let hold, !hold.isOpen {
            // Held where it is; a paced play's clock does not run meanwhile.
            let heldAt = monotonicSeconds()
            guard hold.wait(stop: stop) else { return false }
            startTime += monotonicSeconds() - heldAt
        }
        guard isRealTime else { return !stop.isSignalled }
        // The next period is due when the wall clock reaches its last frame's time.
        let next = min(frameCount, position.load(ordering: .relaxed) + periodFrames)
        let due = startTime + Double(next) / Double(sampleRate)
        let wait = due - monotonicSeconds()
        if wait <= 0 { return !stop.isSignalled }
        return !stop.wait(timeoutMilliseconds: Int32((wait * 1_000).rounded(.up)))
    }

    public func read(into buffer: UnsafeMutablePointer<Float>, frames: Int) throws(CaptureEnd) -> Int {
        let at = position.load(ordering: .relaxed)
        guard at < frameCount else { throw .endOfSource }
        let offset = recordingFrames > 0 ? at % recordingFrames : 0
        // Within one pass of the recording (a repeat starts a new read).
        var n = min(frames, periodFrames, frameCount - at, recordingFrames - offset)
        if let stopAt { n = min(n, max(0, stopAt - at)) }
        if isRealTime {
            // Never ahead of the clock.
            let due = Int((monotonicSeconds() - startTime) * Double(sampleRate))
            n = min(n, max(0, due - at))
        }
        samples.withUnsafeBufferPointer { all in
            buffer.update(from: all.baseAddress! + offset * channels, count: n * channels)
        }
        position.store(at + n, ordering: .relaxed)
        return n
    }

    public func close() {}
}
