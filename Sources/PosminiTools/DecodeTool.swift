public import AudioFile
public import SwipeDecoder
import Magstripe
import ReaderIO
import PosminiProtocol

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
            }
        }
        return DecodeTool.exitStatus(outcomes)
    }

    // MARK: Output

    struct SwipeJSON {
        struct Speed { var mean: Double; var min: Double; var max: Double }
        struct Track {
            var track: Int?
            var status: String
            var corrected: Int
            var masked: String?
            var data: String?
            var detail: String?
        }
        struct Quality {
            var peak_dbfs: Double
            var snr_db: Double
            var jitter: Double
            var min_samples_per_half_cell: Double
            var clipped_fraction: Double
            var candidate: Int?
            var candidates_tried: Int
        }
        var file: String
        var channel: Int
        var start_s: Double
        var end_s: Double
        var direction: String?
        var speed_cm_s: Speed?
        var tracks: [Track]
        var quality: Quality
        var problem: String?
        /// The stream position (samples) at which the result was decided.
        var decided_at: Int64?

        /// One JSON object, keys sorted, absent values left out.
        var json: JSONValue {
            func optional(_ fields: inout [String: JSONValue], _ key: String, _ value: JSONValue?) {
                if let value { fields[key] = value }
            }
            var fields: [String: JSONValue] = ["file": .string(file), "channel": .number(Double(channel)),
                                               "start_s": .number(start_s), "end_s": .number(end_s)]
            optional(&fields, "direction", direction.map { .string($0) })
            optional(&fields, "speed_cm_s", speed_cm_s.map { ["mean": .number($0.mean), "min": .number($0.min), "max": .number($0.max)] })
            fields["tracks"] = .array(tracks.map { t in
                var f: [String: JSONValue] = ["status": .string(t.status), "corrected": .number(Double(t.corrected))]
                optional(&f, "track", t.track.map { .number(Double($0)) })
                optional(&f, "masked", t.masked.map { .string($0) })
                optional(&f, "data", t.data.map { .string($0) })
                optional(&f, "detail", t.detail.map { .string($0) })
                return .object(f)
            })
            var q: [String: JSONValue] = ["peak_dbfs": .number(quality.peak_dbfs), "snr_db": .number(quality.snr_db),
                                          "jitter": .number(quality.jitter),
                                          "min_samples_per_half_cell": .number(quality.min_samples_per_half_cell),
                                          "clipped_fraction": .number(quality.clipped_fraction),
                                          "candidates_tried": .number(Double(quality.candidates_tried))]
            optional(&q, "candidate", quality.candidate.map { .number(Double($0)) })
            fields["quality"] = .object(q)
            optional(&fields, "problem", problem.map { .string($0) })
            optional(&fields, "decided_at", decided_at.map { .number(Double($0)) })
            return .object(fields)
        }
    }

    static func rounded(_ x: Double, _ places: Int) -> Double {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        return (x * scale).rounded() / scale
    }

    func record(_ swipe: Swipe, file: String) -> SwipeJSON {
        let r = DecodeTool.rounded
        let q = swipe.quality
        return SwipeJSON(
            file: file,
            channel: swipe.tracks.first?.channel ?? 0,
            start_s: r(swipe.start, 4), end_s: r(swipe.end, 4),
            direction: swipe.direction?.rawValue,
            speed_cm_s: swipe.speed.map { .init(mean: r($0.mean, 1), min: r($0.min, 1), max: r($0.max, 1)) },
            tracks: swipe.tracks.map { track in
                var detail: String?
                if case .failed(let failure) = track.status { detail = failure.description }
                return .init(track: track.format?.rawValue, status: track.status.code, corrected: track.corrections,
                             masked: track.masked?.text, data: reveal && track.isOK ? track.text?.revealed() : nil, detail: detail)
            },
            quality: .init(peak_dbfs: r(q.peakDBFS, 1), snr_db: r(q.snrDB, 1), jitter: r(q.jitter, 4),
                           min_samples_per_half_cell: r(q.minimumSamplesPerHalfCell, 2),
                           clipped_fraction: r(q.clippedFraction, 4), candidate: q.candidate,
                           candidates_tried: q.candidatesTried),
            problem: swipe.problem?.rawValue,
            decided_at: swipe.decidedAt)
    }

    func jsonLine(_ swipe: Swipe, file: String) -> String {
        record(swipe, file: file).json.text
    }

    func text(_ swipe: Swipe, file: String, index: Int) -> String {
        let r = DecodeTool.rounded
        var line = "\(file): swipe \(index), channel \(swipe.tracks.first?.channel ?? 0), \(r(swipe.start, 3))-\(r(swipe.end, 3)) s"
        if let direction = swipe.direction { line += ", \(direction.rawValue)" }
        if let speed = swipe.speed { line += ", \(r(speed.mean, 1)) cm/s (\(r(speed.min, 1))-\(r(speed.max, 1)))" }
        for track in swipe.tracks {
            let name = track.format.map { "Track \($0.rawValue)" } ?? "no track"
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
