public import AudioFile
public import SwipeDecoder
import Magstripe
import ReaderIO
import PosminiProtocol
import ReaderPipeline

/// `posminid decode`: offline decoding of recordings, one result per swipe.
public struct DecodeTool: Sendable {
    public var json = false
    public var reveal = false
    public var configuration = DecoderConfiguration()

    public init(json: Bool = false, reveal: Bool = false) {
        self.json = json
        self.reveal = reveal
    }

    /// What happened to one file.
    public enum FileOutcome: Sendable {
        case decoded([Swipe])
        case unreadable(String)
    }

    /// Exit status of the command: 0 when at least one track read, 1 when none, 2 when an input
    /// could not be read.
    public static func exitStatus(_ outcomes: [FileOutcome]) -> Int32 {
        var anyRead = false
        for outcome in outcomes {
            switch outcome {
            case .unreadable: return 2
            case .decoded(let swipes): if swipes.contains(where: { !$0.readTracks.isEmpty }) { anyRead = true }
            }
        }
        return anyRead ? 0 : 1
    }

    /// Decodes every channel of a WAV file's bytes. Stereo channels are separate heads. Audio
    /// at a rate outside `SampleRate.supported` is refused (the WAV reader refuses it first).
    public func decode(_ audio: PCMAudio) throws(UnsupportedSampleRate) -> [Swipe] {
        var swipes: [Swipe] = []
        for (channel, samples) in audio.channels.enumerated() {
            let decoder = try SwipeDecoder(sampleRate: audio.sampleRate, channel: channel, configuration: configuration)
            swipes += decoder.push(samples)
            swipes += decoder.finish()
        }
        return swipes.sorted { $0.start < $1.start }
    }

    /// Reads and decodes one file.
    public func decodeFile(_ path: String) -> FileOutcome {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path)
        } catch {
            return .unreadable(error.description)
        }
        let audio: PCMAudio
        do {
            audio = try WAV.decode(bytes)
        } catch {
            return .unreadable("\(path): \(error.description)")
        }
        do {
            return .decoded(try decode(audio))
        } catch {
            return .unreadable("\(path): \(error.description)")
        }
    }

    /// Runs the command over `paths`, writing results to `out` and problems to `err`.
    public func run(_ paths: [String], out: (String) -> Void, err: (String) -> Void) -> Int32 {
        if reveal {
            err("posminid decode: --reveal prints clear card data (PAN and track text). Use it only with test cards, never where the output is kept or shared.")
        }
        var outcomes: [FileOutcome] = []
        for path in paths {
            let outcome = decodeFile(path)
            outcomes.append(outcome)
            switch outcome {
            case .unreadable(let message):
                err("posminid decode: cannot read \(message)")
            case .decoded(let swipes):
                if !json && swipes.isEmpty { out("\(path): no swipe found") }
                for (index, swipe) in swipes.enumerated() {
                    out(json ? jsonLine(swipe, file: path) : text(swipe, file: path, index: index + 1))
                }
                // One object per file, after its swipes, even when there were none: a script
                // tells "no swipe in this file" from "no output" (class SWIPE vs FILE).
                if json {
                    out(JSONValue.object(["class": "FILE", "file": .string(path), "swipes": .number(Double(swipes.count))]).text)
                }
            }
        }
        return DecodeTool.exitStatus(outcomes)
    }

    // MARK: Output

    /// The swipe's JSON line: `SwipeFigures`' object, plus each read track's clear text under
    /// `--reveal` only.
    func jsonLine(_ swipe: Swipe, file: String) -> String {
        var json = SwipeFigures(swipe).json(file: file)
        if reveal, case .object(var fields) = json, case .array(var tracks)? = fields["tracks"] {
            for (k, track) in swipe.tracks.enumerated() where k < tracks.count && track.isOK {
                guard let text = track.text, case .object(var t) = tracks[k] else { continue }
                t["data"] = .string(text.revealed())
                tracks[k] = .object(t)
            }
            fields["tracks"] = .array(tracks)
            json = .object(fields)
        }
        return json.text
    }

    func text(_ swipe: Swipe, file: String, index: Int) -> String {
        let r = SwipeFigures.round
        var line = "\(file): swipe \(index), channel \(swipe.tracks.first?.channel ?? 0), \(r(swipe.start, 3))-\(r(swipe.end, 3)) s"
        if let direction = swipe.direction { line += ", \(direction.rawValue)" }
        if let speed = swipe.speed { line += ", \(r(speed.mean, 1)) cm/s (\(r(speed.min, 1))-\(r(speed.max, 1)))" }
        for track in swipe.tracks {
            var name = track.format.map { "Track \($0.rawValue)" } ?? "no track"
            if let basis = track.densityBasis { name += " (\(basis.phrase))" }
            if track.isOK {
                line += "\n  \(name): ok\(track.corrections > 0 ? " (\(track.corrections) bit corrected)" : "")  \(track.masked?.text ?? "")"
                if reveal, let text = track.text { line += "\n  \(name) data: \(text.revealed())" }
            } else if case .failed(let failure) = track.status {
                line += "\n  \(name): \(failure.description)"
            }
        }
        if let problem = swipe.problem { line += "\n  problem: \(problem.rawValue)" }
        let q = swipe.quality
        line += "\n  quality: peak \(r(q.peakDBFS, 1)) dBFS, SNR \(r(q.snrDB, 1)) dB, jitter \(r(q.jitter * 100, 1)) %, \(r(q.minimumSamplesPerHalfCell, 1)) samples per half-cell"
        return line
    }
}

extension DensityBasis {
    /// How `decode` says what named a 5-bit track.
    var phrase: String {
        switch self {
        case .characters: "by its length"
        case .speed: "by the swipe's speed"
        case .assumed: "assumed"
        }
    }
}
