import PosminiClient
import Testing
import AudioFile
import Magstripe
import SwipeSynth
import TestSupport
import PosminiDaemon
import PosminiProtocol
#if canImport(Glibc)
import Glibc
#endif

let packageRoot: String = {
    let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    return parts.dropLast(3).joined(separator: "/")
}()

/// The executable `swift build` put beside the test bundle (or `$POSMINID_EXECUTABLE`: the
/// sanitizer runs point it at their own build).
let posminidExecutable: String = {
    if let given = getenv("POSMINID_EXECUTABLE") { return String(cString: given) }
    for configuration in ["debug", "release"] {
        let path = packageRoot + "/.build/\(configuration)/posminid"
        if access(path, X_OK) == 0 { return path }
    }
    return packageRoot + "/.build/debug/posminid"
}()

/// `posminictl`, beside `posminid`.
let posminictlExecutable: String = {
    let parts = posminidExecutable.split(separator: "/", omittingEmptySubsequences: false)
    return (parts.dropLast() + ["posminictl"]).joined(separator: "/")
}()

/// Every suite that starts processes (posminid, PulseAudio) lives in here: one at a time.
@Suite(.serialized) enum ProcessSuites {}

/// Runs the built `posminid` and makes test files: shared by the command suites.
protocol CommandTesting {}

/// What a run of the executable printed, and its exit status.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// A shell word.
func shellQuoted(_ word: String) -> String {
    "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
}

extension CommandTesting {
    /// Runs the executable with `arguments` (and `environment` added), capturing both streams.
    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let directory = try temporaryDirectory()
        let out = directory + "/stdout", err = directory + "/stderr"
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuoted($0.value))" }
        let command = (["env"] + assignments + [shellQuoted(posminidExecutable)] + arguments.map(shellQuoted)).joined(separator: " ")
        let status = system(command + " >'\(out)' 2>'\(err)'")
        let code = (status >> 8) & 0xFF
        return Run(status: code, stdout: readText(out), stderr: readText(err))
    }

    func temporaryDirectory() throws -> String {
        var template = Array("/tmp/posminid-test-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        return try #require(made.map { String(cString: $0) })
    }

    func write(_ bytes: [UInt8], to path: String) {
        let f = fopen(path, "wb")!
        _ = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }

    static var track2: String { track2Text }
    static var track3: String { track3Text }
    static var track1: String { track1Text }

    /// A WAV of swipes of `texts` (one channel per text when `stereo`), at `rate` and `speed`.
    func swipeFile(_ texts: [(String, TrackFormat)], stereo: Bool = false, rate: Int = 44_100, speed: Double = 300) throws -> String {
        var audio = AudioPath(sampleRate: rate)
        audio.snr = 35
        audio.leadingSilence = 0.1
        audio.trailingSilence = 0.1
        let tracks = try texts.map { try StripeTrack(text: $0.0, format: $0.1) }
        var channels: [[Float]]
        if stereo {
            channels = SwipeSynthesizer.render(SwipeScenario(tracks: tracks, motion: Motion(speed: .constant(speed)), audio: audio)).channels
        } else {
            channels = [tracks.flatMap { track in
                SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(speed)), audio: audio)).channels[0]
            }]
        }
        let path = try temporaryDirectory() + "/swipe.wav"
        write(WAV.encode16(PCMAudio(sampleRate: rate, channels: channels)), to: path)
        return path
    }

    /// A 16-bit WAV of a tenth of a second of a tone whose header then says `rate` Hz and, when
    /// given, `channels` channels (block align and byte rate to match): the fields as a file
    /// could carry them, whatever the values.
    func wavClaiming(rate: UInt32, channels: UInt16? = nil) throws -> String {
        var bytes = WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [(0..<4_410).map { Float(sin(Double($0) * 0.3)) * 0.5 }]))
        func put16(_ at: Int, _ v: UInt16) { bytes[at] = UInt8(v & 0xFF); bytes[at + 1] = UInt8(v >> 8) }
        func put32(_ at: Int, _ v: UInt32) { for k in 0..<4 { bytes[at + k] = UInt8((v >> UInt32(8 * k)) & 0xFF) } }
        let n = channels ?? 1
        put16(22, n)
        put32(24, rate)
        put32(28, rate &* UInt32(n) &* 2)
        put16(32, n &* 2)
        let path = try temporaryDirectory() + "/claims-\(rate)-hz-\(n)-channels.wav"
        write(bytes, to: path)
        return path
    }
}

extension ControlClient {
    /// Sends `request` (an `arm`) and reads up to its ARMED, skipping what else comes meanwhile
    /// (READER updates, watch events). A refusal fails the test with the daemon's ERROR text;
    /// nothing within 5 s per message, or 50 messages without the answer, fails it too.
    @discardableResult
    func armed(_ request: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        try send(request)
        for _ in 0..<50 {
            guard let m = try nextReply(timeout: 5) else { break }
            if case .armed = m { return true }
            if case .error(let error, _, _) = m {
                Issue.record("the arm was refused: \(error.code): \(error.message)", sourceLocation: sourceLocation)
                return false
            }
        }
        Issue.record("no ARMED for \(request.text)", sourceLocation: sourceLocation)
        return false
    }
}

extension Reply {
    /// A field of the message as the socket carries it (tests read replies as the POS app would).
    subscript(key: String) -> JSONValue? { json[key] }
    /// The line as the socket carries it.
    var text: String { json.text }
    /// The `code` of an ERROR; nil for any other message.
    var errorCode: String? {
        if case .error(let error, _, _) = self { return error.code }
        return nil
    }
}
