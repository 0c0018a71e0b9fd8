import Testing
import AudioFile
import Magstripe
import SwipeSynth
import TestSupport
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

    /// A WAV of swipes of `texts` (one channel per text when `stereo`).
    func swipeFile(_ texts: [(String, TrackFormat)], stereo: Bool = false) throws -> String {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 35
        audio.leadingSilence = 0.1
        audio.trailingSilence = 0.1
        let tracks = try texts.map { try StripeTrack(text: $0.0, format: $0.1) }
        var channels: [[Float]]
        if stereo {
            channels = SwipeSynthesizer.render(SwipeScenario(tracks: tracks, motion: Motion(speed: .constant(300)), audio: audio)).channels
        } else {
            channels = [tracks.flatMap { track in
                SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: .constant(300)), audio: audio)).channels[0]
            }]
        }
        let path = try temporaryDirectory() + "/swipe.wav"
        write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: channels)), to: path)
        return path
    }
}
